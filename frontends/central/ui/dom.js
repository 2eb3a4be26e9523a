// Small DOM helpers. Text is always set as text (textContent, text nodes): nothing a user
// or the API supplies is ever parsed as HTML.

/** Creates an element: h('a', {href: '#', class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

/** Replaces an element's children. */
export function show(el, ...kids) {
  el.replaceChildren();
  append(el, kids);
  return el;
}

let statusTimer = null;
/** A message in the status line (kind: 'ok' or 'error'). */
export function notify(message, kind = 'ok') {
  const s = document.getElementById('status');
  s.className = `status ${kind}`;
  s.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  s.textContent = message;
  clearTimeout(statusTimer);
  if (kind !== 'error') statusTimer = setTimeout(() => { s.textContent = ''; s.className = 'status'; }, 6000);
}

/** Shows a modal dialog; resolves with the button's value (or null when cancelled). */
export function dialog(title, body, buttons = [['ok', 'OK']]) {
  return new Promise((resolve) => {
    const d = h('dialog', { class: 'dlg', 'aria-labelledby': 'dlg-title' });
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'dlg-title', text: title }),
      h('div', { class: 'dlg-body' }, body),
      h('p', { class: 'error', role: 'alert' }),
      h('div', { class: 'actions' },
        buttons.map(([v, label]) => h('button', { value: v, type: 'submit' }, label)),
        h('button', { value: '', type: 'submit', formnovalidate: true }, 'Cancel')));
    d.append(form);
    document.body.append(d);
    d.addEventListener('close', () => { d.remove(); resolve(d.returnValue || null); });
    d.showModal();
  });
}

/** Asks yes or no. */
export async function confirmDialog(title, text, yes = 'Delete') {
  return (await dialog(title, h('p', { text }), [['yes', yes]])) === 'yes';
}

/**
 * A form in a dialog. fields: [{name, label, type: text|number|checkbox|select|password,
 * value, options: [[value, label]], required, help}]. Resolves with {name: value} or null.
 * `submit(values)` may throw to keep the dialog open with the error shown.
 */
export function formDialog(title, fields, submitLabel = 'Save', submit = null) {
  return new Promise((resolve) => {
    const inputs = {};
    const rows = fields.map((f, i) => {
      const id = `f-${i}-${f.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
      let input;
      if (f.type === 'select') {
        input = h('select', { id, name: f.name },
          f.options.map(([v, l]) => h('option', { value: v, selected: String(f.value) === String(v) }, l)));
      } else if (f.type === 'checkbox') {
        input = h('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
      } else if (f.type === 'textarea') {
        input = h('textarea', { id, name: f.name, rows: 4, value: f.value ?? '' });
      } else {
        input = h('input', { id, name: f.name, type: f.type || 'text', value: f.value ?? '',
          required: !!f.required, placeholder: f.placeholder, min: f.min, max: f.max,
          pattern: f.pattern, readonly: !!f.readOnly, autocomplete: f.type === 'password' ? 'new-password' : 'off' });
      }
      inputs[f.name] = [input, f];
      const help = f.help ? h('small', { id: `${id}-help`, text: f.help }) : null;
      if (help) input.setAttribute('aria-describedby', `${id}-help`);
      return h('div', { class: f.type === 'checkbox' ? 'field check' : 'field' },
        h('label', { for: id, text: f.label }), input, help);
    });
    const err = h('p', { class: 'error', role: 'alert' });
    const d = h('dialog', { class: 'dlg', 'aria-labelledby': 'dlg-title' });
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const ok = h('button', { type: 'submit', class: 'primary' }, submitLabel);
    const form = h('form', {}, h('h2', { id: 'dlg-title', text: title }), rows, err,
      h('div', { class: 'actions' }, ok, cancel));
    let done = false;
    const finish = (v) => { if (done) return; done = true; d.close(); d.remove(); resolve(v); };
    cancel.addEventListener('click', () => finish(null));
    d.addEventListener('cancel', (e) => { e.preventDefault(); finish(null); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const values = {};
      for (const [name, [input, f]] of Object.entries(inputs)) {
        values[name] = f.type === 'checkbox' ? input.checked : input.value;
      }
      if (submit) {
        ok.disabled = true;
        try { await submit(values); } catch (ex) { err.textContent = ex.message; ok.disabled = false; return; }
      }
      finish(values);
    });
    d.append(form);
    document.body.append(d);
    d.showModal();
  });
}

/** A table: columns [{label, get(row) -> Node|string, sort?: key fn}], rows. */
export function table(columns, rows, { caption, empty = 'Nothing to show.' } = {}) {
  const body = h('tbody');
  const t = h('table', { class: 'grid-table' },
    caption ? h('caption', { text: caption }) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))), body);
  const fill = (list) => {
    body.replaceChildren();
    if (!list.length) body.append(h('tr', {}, h('td', { colspan: columns.length, class: 'muted', text: empty })));
    for (const r of list) body.append(h('tr', {}, columns.map((c) => h('td', {}, c.get(r)))));
  };
  fill(rows);
  // Sortable headers: buttons that sort the rows shown; aria-sort says how.
  t.querySelectorAll('th').forEach((th, i) => {
    const c = columns[i];
    if (!c.sort) return;
    const label = th.textContent;
    const b = h('button', { type: 'button', class: 'sort' }, label);
    th.replaceChildren(b);
    th.setAttribute('aria-sort', 'none');
    b.addEventListener('click', () => {
      const dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
      t.querySelectorAll('th').forEach((x) => x.hasAttribute('aria-sort') && x.setAttribute('aria-sort', 'none'));
      th.setAttribute('aria-sort', dir);
      const sorted = [...rows].sort((a, z) => compare(c.sort(a), c.sort(z)) * (dir === 'ascending' ? 1 : -1));
      fill(sorted);
    });
  });
  return t;
}

function compare(a, b) {
  if (typeof a === 'bigint' || typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** A link inside the app. */
export function link(href, text) {
  return h('a', { href }, text);
}

/** Formats a millisecond timestamp or an API date. */
export function when(v) {
  if (!v) return '';
  return String(v);
}
