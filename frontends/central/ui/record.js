// One IPAM record: state, typed custom properties, DNS hosts, DHCP reservations and leases
// (when present), and its history.
import { api, idOf } from './api.js';
import { h, show, notify, confirmDialog, table, link } from './dom.js';
import { can } from './app.js';
import { propertyFields, propertyValues } from './range.js';

const STATES = ['Free', 'Assigned', 'Claimed', 'Reserved'];

export async function recordView(el, space, addr) {
  const path = `ipamRecords/${space}/${addr}`;
  const [rec, defs, hist] = await Promise.all([
    api.get(path).then((x) => x.ipamRecord),
    api.get('ipamRecords/propertyDefinitions').then((x) => x.propertyDefinitions || []),
    api.get(`${path}/history`, { limit: 50 }).catch(() => ({ events: [], totalResults: 0 })),
  ]);
  const reload = () => recordView(el, space, addr);
  const writable = can('Modify');
  const form = h('form', { class: 'editor', id: 'record-form' });
  const stateSel = h('select', { id: 'rec-state', name: 'state', disabled: !writable },
    [...STATES, ...(STATES.includes(rec.state) ? [] : [rec.state])].map((s) => h('option', { value: s, selected: s === rec.state }, s)));
  form.append(h('div', { class: 'field' }, h('label', { for: 'rec-state' }, 'State'), stateSel));
  if (rec.holdInfo) form.append(h('p', { class: 'muted' }, `Held by ${rec.holdInfo.username} until ${rec.holdInfo.expiryTime}`));
  const inputs = [];
  propertyFields(defs, rec.customProperties || {}).forEach((f, i) => {
    const id = `rec-prop-${i}`;
    const input = f.type === 'checkbox'
      ? h('input', { id, type: 'checkbox', checked: f.value, disabled: !writable || f.readOnly })
      : h('input', { id, type: f.type || 'text', value: f.value, required: f.required, pattern: f.pattern,
        readonly: !writable || f.readOnly, 'aria-describedby': f.help ? `${id}-help` : undefined });
    inputs.push([f, input]);
    form.append(h('div', { class: f.type === 'checkbox' ? 'field check' : 'field' }, h('label', { for: id, text: f.label }), input,
      f.help ? h('small', { id: `${id}-help`, text: f.help }) : null));
  });
  const err = h('p', { class: 'error', role: 'alert' });
  form.append(err);
  if (writable) {
    form.append(h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'rec-save' }, 'Save'),
      rec.state !== 'Free' ? h('button', { type: 'button', class: 'danger', id: 'rec-release', onclick: release }, 'Release') : null));
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const v = {};
    for (const [f, input] of inputs) v[f.name] = f.type === 'checkbox' ? input.checked : input.value;
    const properties = { ...propertyValues(v) };
    if (stateSel.value !== rec.state) properties.state = stateSel.value;
    try {
      await api.put(path, { properties, saveComment: 'edited in the UI' });
      notify(`Saved ${addr}`);
      await reload();
    } catch (ex) { err.textContent = ex.message; }
  });
  async function release() {
    if (!await confirmDialog(`Release ${addr}?`, `${addr} becomes free and its properties are cleared.`, 'Release')) return;
    try { await api.del(path, { saveComment: 'released in the UI' }); notify(`Released ${addr}`); await reload(); } catch (ex) { notify(ex.message, 'error'); }
  }

  const dns = rec.dnsHosts || [];
  const res = rec.dhcpReservations || [];
  const leases = rec.dhcpLeases || [];
  show(el,
    rec.rangeRef ? h('p', {}, link(`#/range/${idOf(rec.rangeRef)}`, '← range')) : null,
    h('h1', { text: addr }),
    form,
    h('h2', { text: 'DNS hosts' }),
    dns.length ? table([{ label: 'Name', get: (d) => d.dnsHost?.name || d.name || '' }, { label: 'PTR', get: () => rec.ptrStatus }], dns) : h('p', { class: 'muted', text: 'No DNS host points at this address.' }),
    h('h2', { text: 'DHCP reservations and leases' }),
    res.length || leases.length
      ? [table([{ label: 'Reservation', get: (x) => x.name || x.ref || '' }, { label: 'Client', get: (x) => (x.clientIdentifier || x.mac || '') }], res),
        table([{ label: 'Lease', get: (x) => x.name || x.address || '' }, { label: 'MAC', get: (x) => x.mac || '' }, { label: 'Expires', get: (x) => x.expires || '' }], leases)]
      : h('p', { class: 'muted', text: 'No DHCP reservation or lease.' }),
    h('h2', { text: 'History' }),
    historyTable(hist.events),
    hist.totalResults > hist.events.length ? link(`#/history?objectRef=${encodeURIComponent(rec.addrRef)}`, 'All history') : null);
}

/** A table of history events. */
export function historyTable(events) {
  return table([
    { label: 'Time', get: (e) => e.timestamp, sort: (e) => e.id },
    { label: 'User', get: (e) => e.username, sort: (e) => e.username },
    { label: 'Object', get: (e) => objectLink(e), sort: (e) => e.objName },
    { label: 'Event', get: (e) => e.eventType },
    { label: 'What', get: (e) => e.eventText },
    { label: 'Comment', get: (e) => e.saveComment },
  ], events, { empty: 'No change recorded.' });
}

function objectLink(e) {
  const [coll, ...rest] = String(e.objRef).split('/');
  if (e.eventType !== 'Deletion') {
    if (coll === 'ranges') return link(`#/range/${rest[0]}`, e.objName);
    if (coll === 'ipamRecords') return link(`#/record/${rest.length > 1 ? rest[0] : 1}/${rest[rest.length - 1]}`, e.objName);
  }
  return `${e.objName}`;
}
