// The range tree: address spaces' ranges level by level, each level paged from the server
// (GET ranges?parentRef=...&cursor=...), so 100,000 subnets never load at once. The filter
// box takes the API's filter grammar and shows a flat, paged list of matches.
import { api, sizeText, idOf, cidrBounds, ipToBig } from './api.js';
import { h, show, notify, formDialog } from './dom.js';
import { can } from './app.js';

const PAGE = 200;

export async function treeView(el, params) {
  const spaces = (await api.get('addressSpaces')).addressSpaces || [];
  let space = params.get('space') || '';
  const filterInput = h('input', { id: 'tree-filter', type: 'search', value: params.get('filter') || '',
    placeholder: 'e.g. 10.0.0.0/16, name^=lab, Title=dmz', 'aria-describedby': 'tree-filter-help tree-filter-error' });
  const filterError = h('p', { id: 'tree-filter-error', class: 'error', role: 'alert' });
  const tree = h('ul', { role: 'tree', 'aria-label': 'Ranges', class: 'tree', id: 'range-tree' });
  const more = h('div', { class: 'more' });
  const spaceSelect = spaces.length > 1
    ? h('select', { id: 'tree-space', onchange: (e) => { space = e.target.value; load(); } },
      spaces.map((s) => h('option', { value: s.ref, selected: s.ref === space }, s.name)))
    : null;
  const toolbar = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); load(); } },
    spaceSelect ? [h('label', { for: 'tree-space' }, 'Address space'), spaceSelect] : null,
    h('label', { for: 'tree-filter' }, 'Filter'), filterInput,
    h('button', { type: 'submit' }, 'Apply'),
    can('Create') ? h('button', { type: 'button', id: 'new-range', onclick: () => newRange(space, null, load) }, 'New range') : null);
  show(el, h('h1', { text: 'Ranges' }), toolbar,
    h('small', { id: 'tree-filter-help', class: 'muted', text: 'Filter: a CIDR or address, or field=value terms joined with and/or (the API filter grammar). Arrow keys move in the tree; Right and Left expand and collapse; Enter opens.' }),
    filterError, tree, more);
  tree.addEventListener('keydown', (e) => treeKeys(e, tree));

  let generation = 0;
  async function load() {
    const gen = ++generation;
    filterError.textContent = '';
    tree.replaceChildren();
    more.replaceChildren();
    const filter = filterInput.value.trim();
    try {
      if (filter) {
        await flat(filter, null, gen);
      } else {
        await level(tree, '', 1, null, gen);
      }
    } catch (e) {
      // A filter error names the position; show it where the filter is typed.
      if (e.code === 4011 || e.code === 4001) {
        filterError.textContent = e.message;
        filterInput.setAttribute('aria-invalid', 'true');
        filterInput.focus();
      } else {
        notify(e.message, 'error');
      }
      return;
    }
    filterInput.removeAttribute('aria-invalid');
    const first = tree.querySelector('[role=treeitem]');
    if (first) first.tabIndex = 0;
  }

  async function flat(filter, cursor, gen = generation) {
    const r = await api.get('ranges', { filter, limit: PAGE, cursor, addressSpaceRef: space });
    if (gen !== generation) return; // a newer load replaced this one
    for (const rg of r.ranges) tree.append(item(rg, 1));
    more.replaceChildren();
    if (r.totalResults === 0) tree.append(h('li', { class: 'muted', role: 'none' }, 'No range matches.'));
    if (r.nextCursor) {
      more.append(h('button', { type: 'button', onclick: (e) => { e.target.disabled = true; flat(filter, r.nextCursor).catch((x) => notify(x.message, 'error')); } },
        `Show more (${tree.querySelectorAll('[role=treeitem]').length} of ${r.totalResults})`));
    }
  }

  async function level(ul, parentRef, depth, cursor, gen = generation) {
    const r = await api.get('ranges', { parentRef, limit: PAGE, cursor, addressSpaceRef: space });
    if (gen !== generation) return; // a newer load replaced this one
    ul.querySelector(':scope > li.load-more')?.remove();
    for (const rg of r.ranges) ul.append(item(rg, depth));
    if (!cursor && r.ranges.length === 0) ul.append(h('li', { role: 'none', class: 'muted' }, parentRef ? 'No sub-ranges.' : 'No ranges yet.'));
    if (r.nextCursor) {
      const shown = ul.querySelectorAll(':scope > [role=treeitem]').length;
      const b = h('button', { type: 'button' },
        r.totalResults ? `Show more (${shown} of ${r.totalResults})` : 'Show more');
      b.addEventListener('click', () => {
        b.disabled = true;
        level(ul, parentRef, depth, r.nextCursor).catch((e) => { b.disabled = false; notify(e.message, 'error'); });
      });
      ul.append(h('li', { role: 'none', class: 'load-more' }, b));
    }
  }

  function item(rg, depth) {
    const leaf = rg.numChildren === 0;
    const pct = Number(rg.utilizationPercentage) || 0;
    const li = h('li', { role: 'treeitem', 'aria-level': depth, tabindex: -1, dataset: { ref: rg.ref },
      'aria-expanded': leaf ? undefined : 'false', 'aria-label': `${rg.name}, ${sizeText(rg.from, rg.to)} addresses, ${pct}% used` });
    const twisty = h('span', { class: 'twisty', 'aria-hidden': 'true', text: leaf ? '' : '▸' });
    const row = h('div', { class: 'row' }, twisty,
      h('a', { href: `#/range/${idOf(rg.ref)}`, tabindex: -1, class: 'name' }, rg.name),
      rg.isContainer ? h('span', { class: 'tag', text: 'container' }) : null,
      rg.locked ? h('span', { class: 'tag', text: 'locked' }) : null,
      h('span', { class: 'size', text: `${sizeText(rg.from, rg.to)} addr.` }),
      h('meter', { min: 0, max: 100, value: pct, low: 70, high: 90, optimum: 0, 'aria-hidden': 'true' }),
      h('span', { class: 'pct', text: `${pct}%` }));
    li.append(row);
    twisty.addEventListener('click', () => toggle(li));
    row.addEventListener('click', (e) => { if (e.target === row) focusItem(tree, li); });
    li.toggle = () => toggle(li);
    return li;
  }

  async function toggle(li) {
    if (!li.hasAttribute('aria-expanded')) return;
    const open = li.getAttribute('aria-expanded') === 'true';
    let group = li.querySelector(':scope > ul');
    if (open) {
      li.setAttribute('aria-expanded', 'false');
      li.querySelector('.twisty').textContent = '▸';
      if (group) group.hidden = true;
      return;
    }
    li.setAttribute('aria-expanded', 'true');
    li.querySelector('.twisty').textContent = '▾';
    if (group) { group.hidden = false; return; }
    group = h('ul', { role: 'group' });
    li.append(group);
    try {
      await level(group, li.dataset.ref, Number(li.getAttribute('aria-level')) + 1, null);
    } catch (e) {
      notify(e.message, 'error');
    }
  }

  await load();
}

function visible(tree) {
  return [...tree.querySelectorAll('[role=treeitem]')].filter((x) => !x.closest('ul[hidden]'));
}

function focusItem(tree, li) {
  tree.querySelectorAll('[role=treeitem]').forEach((x) => { x.tabIndex = -1; });
  li.tabIndex = 0;
  li.focus();
}

function treeKeys(e, tree) {
  const li = e.target.closest('[role=treeitem]');
  if (!li) return;
  const items = visible(tree);
  const i = items.indexOf(li);
  const go = (x) => { if (x) { e.preventDefault(); focusItem(tree, x); } };
  switch (e.key) {
    case 'ArrowDown': go(items[i + 1]); break;
    case 'ArrowUp': go(items[i - 1]); break;
    case 'Home': go(items[0]); break;
    case 'End': go(items[items.length - 1]); break;
    case 'ArrowRight':
      e.preventDefault();
      if (li.getAttribute('aria-expanded') === 'false') li.toggle();
      else if (li.getAttribute('aria-expanded') === 'true') go(li.querySelector(':scope > ul [role=treeitem]'));
      break;
    case 'ArrowLeft':
      e.preventDefault();
      if (li.getAttribute('aria-expanded') === 'true') li.toggle();
      else go(li.parentElement.closest('[role=treeitem]'));
      break;
    case 'Enter':
      e.preventDefault();
      location.hash = `#/range/${idOf(li.dataset.ref)}`;
      break;
    default:
  }
}

/** The "new range" form; `parent` pre-fills a CIDR inside it. */
export async function newRange(space, parent, done) {
  await formDialog('New range', [
    { name: 'cidr', label: 'CIDR or from-to', required: true, value: parent || '', placeholder: '10.0.0.0/24 or 10.0.0.10-10.0.0.99' },
    { name: 'name', label: 'Name (empty: the CIDR)' },
    { name: 'kind', label: 'Kind', type: 'select', value: 'subnet', options: [['subnet', 'Subnet'], ['container', 'Container'], ['range', 'Range (not a subnet)']] },
    { name: 'title', label: 'Title' },
  ], 'Create', async (v) => {
    const range = { isContainer: v.kind === 'container', subnet: v.kind === 'subnet' };
    const s = v.cidr.trim();
    if (s.includes('/')) {
      // Checked here (octets, prefix length, host bits): an impossible CIDR is an error, never
      // another range.
      const [a, len] = s.split('/');
      cidrBounds(a, len === '' ? NaN : Number(len));
      range.name = s;
    } else {
      const [from, to] = s.split('-').map((x) => x.trim());
      if (!to) throw new Error('give a CIDR (10.0.0.0/24) or a from-to range');
      ipToBig(from); ipToBig(to);
      Object.assign(range, { from, to, name: s });
      range.subnet = false;
    }
    if (v.name.trim()) {
      if (s.includes('/')) {
        // Name and CIDR: the bounds come from the CIDR.
        const [a, len] = s.split('/');
        range.from = a; range.len = len;
      }
      range.name = v.name.trim();
    }
    if (range.len) {
      const [from, to] = cidrBounds(range.from, Number(range.len));
      range.from = from; range.to = to; delete range.len;
    }
    if (v.title.trim()) range.customProperties = { Title: v.title.trim() };
    const r = await api.post('ranges', { range, addressSpaceRef: space || undefined, saveComment: 'created in the UI' });
    notify(`Created ${range.name}`);
    if (done) await done(r.ref);
  });
}
