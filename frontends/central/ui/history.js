// The change history: everything (administrators) or one object's, filtered by object,
// user and time, paged.
import { api } from './api.js';
import { h, show } from './dom.js';
import { can } from './app.js';
import { historyTable } from './record.js';

const PAGE = 50;

export async function historyView(el, params) {
  const objectRef = h('input', { id: 'h-object', value: params.get('objectRef') || '', placeholder: 'ranges/12 or ipamRecords/10.0.0.7' });
  const user = h('input', { id: 'h-user', value: params.get('user') || '', placeholder: 'user name' });
  const since = h('input', { id: 'h-since', type: 'datetime-local', value: params.get('since') || '' });
  const until = h('input', { id: 'h-until', type: 'datetime-local', value: params.get('until') || '' });
  const err = h('p', { class: 'error', role: 'alert' });
  const out = h('div', { id: 'history-table' });
  const pager = h('div', { class: 'pager' });
  let offset = 0;
  const form = h('form', { class: 'toolbar filters', role: 'search', onsubmit: (e) => { e.preventDefault(); offset = 0; load(); } },
    h('label', { for: 'h-object' }, 'Object'), objectRef,
    h('label', { for: 'h-user' }, 'User'), user,
    h('label', { for: 'h-since' }, 'From'), since,
    h('label', { for: 'h-until' }, 'To'), until,
    h('button', { type: 'submit' }, 'Apply'));
  show(el, h('h1', { text: 'Change history' }), form, err, out, pager);

  async function load() {
    err.textContent = '';
    const ms = (x) => (x.value ? String(new Date(x.value).getTime()) : undefined);
    const q = { user: user.value.trim(), since: ms(since), until: ms(until), offset, limit: PAGE };
    const obj = objectRef.value.trim();
    let r;
    try {
      // Everything needs Administer; one object's history (objectRef) needs only Read on it.
      r = await api.get('changes', { ...q, objectRef: obj });
    } catch (e) { err.textContent = e.message; return; }
    show(out, h('p', { class: 'muted' }, `${r.totalResults} change(s)`), historyTable(r.events));
    show(pager,
      offset > 0 ? h('button', { type: 'button', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, 'Newer') : null,
      offset + PAGE < r.totalResults ? h('button', { type: 'button', onclick: () => { offset += PAGE; load(); } }, 'Older') : null);
  }
  if (can('Administer') || objectRef.value) await load();
  else show(out, h('p', { class: 'muted', text: 'Give an object (e.g. ranges/12) to see its history; all changes need administrator rights.' }));
}
