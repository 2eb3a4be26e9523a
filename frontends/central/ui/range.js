// One range: its details, actions (next free, allocate N, free blocks, split, edit, delete),
// sub-ranges, the address map (IPv4 subnets up to a /16, 256 addresses a page) and the
// record list (filter, paging, sorting).
import { api, sizeText, idOf, ipToBig, cidrOf } from './api.js';
import { h, show, notify, formDialog, confirmDialog, dialog, table, link } from './dom.js';
import { can } from './app.js';
import { newRange } from './tree.js';

const MAP_PAGE = 256;
const LIST_PAGE = 100;

/** What a cell shows for each state: class (colour and pattern), symbol, words. */
const STATES = {
  Free: ['free', '·', 'free'],
  Assigned: ['assigned', 'A', 'assigned'],
  Claimed: ['claimed', 'C', 'claimed'],
  Held: ['held', 'H', 'held'],
  Reserved: ['reserved', 'R', 'reserved'],
  Leased: ['leased', 'L', 'leased (DHCP)'],
  Named: ['named', 'D', 'has a DNS name'],
};

function cellState(rec) {
  if (rec.dhcpLeases && rec.dhcpLeases.length) return STATES.Leased;
  if (rec.state === 'Free' && rec.dnsHosts && rec.dnsHosts.length) return STATES.Named;
  return STATES[rec.state] || STATES.Assigned;
}

export async function rangeView(el, id, params) {
  const [r, stats, defs, recDefs] = await Promise.all([
    api.get(`ranges/${id}`).then((x) => x.range),
    api.get(`ranges/${id}/statistics`),
    api.get('ranges/propertyDefinitions').then((x) => x.propertyDefinitions || []),
    api.get('ipamRecords/propertyDefinitions').then((x) => x.propertyDefinitions || []),
  ]);
  const cidr = cidrOf(r.from, r.to);
  const v6 = r.from.includes(':');
  const size = ipToBig(r.to).value - ipToBig(r.from).value + 1n;
  const pct = Number(stats.utilizationPercentage) || 0;
  const reload = () => rangeView(el, id, params);
  const props = Object.entries(r.customProperties || {}).filter(([, v]) => v !== '');

  const actions = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Range actions' },
    !r.isContainer && can('Allocate') ? h('button', { type: 'button', id: 'act-next-free', onclick: () => nextFree(r, reload) }, 'Next free address') : null,
    !r.isContainer && can('Allocate') ? h('button', { type: 'button', id: 'act-allocate', onclick: () => allocateN(r, reload) }, 'Allocate N') : null,
    can('Create') ? h('button', { type: 'button', id: 'act-blocks', onclick: () => freeBlocks(r, reload) }, 'Find free blocks') : null,
    can('Create') ? h('button', { type: 'button', id: 'act-new-sub', onclick: () => newRange(r.addressSpaceRef, '', () => reload()) }, 'New sub-range') : null,
    cidr && can('Create') && can('Delete') ? h('button', { type: 'button', id: 'act-split', onclick: () => split(r, cidr) }, 'Split') : null,
    can('Modify') ? h('button', { type: 'button', id: 'act-edit', onclick: () => edit(r, defs, reload) }, 'Edit properties') : null,
    can('Delete') ? h('button', { type: 'button', id: 'act-delete', class: 'danger', onclick: () => remove(r) }, 'Delete') : null,
    h('a', { href: `#/history?objectRef=${encodeURIComponent(r.ref)}`, class: 'button' }, 'History'));

  const details = h('dl', { class: 'details' },
    h('dt', {}, 'Addresses'), h('dd', {}, `${r.from} – ${r.to}${cidr && cidr !== r.name ? ` (${cidr})` : ''}`),
    h('dt', {}, 'Size'), h('dd', {}, sizeText(r.from, r.to)),
    h('dt', {}, 'Kind'), h('dd', {}, [r.isContainer ? 'container' : r.subnet ? 'subnet' : 'range', r.locked ? ', locked' : '', r.autoAssign ? ', auto-assign' : ''].join('')),
    h('dt', {}, 'Utilization'), h('dd', {}, h('meter', { min: 0, max: 100, value: pct, low: 70, high: 90, optimum: 0, 'aria-label': 'utilization' }),
      ` ${pct}% (${stats.used} used, ${stats.free} free${Number(stats.numInSubranges) ? `, ${stats.numInSubranges} in sub-ranges` : ''})`),
    r.parentRef ? [h('dt', {}, 'Parent'), h('dd', {}, link(`#/range/${idOf(r.parentRef)}`, 'parent range'))] : null,
    props.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));

  const parts = [h('p', {}, link('#/ranges', '← all ranges')), h('h1', { text: r.name }), details, actions];
  if (r.numChildren > 0) {
    const subs = await api.get('ranges', { parentRef: r.ref, limit: 200 });
    parts.push(h('h2', { text: `Sub-ranges (${r.numChildren})` }),
      table([
        { label: 'Name', get: (x) => link(`#/range/${idOf(x.ref)}`, x.name), sort: (x) => x.name },
        { label: 'From', get: (x) => x.from, sort: (x) => ipToBig(x.from).value },
        { label: 'To', get: (x) => x.to },
        { label: 'Size', get: (x) => sizeText(x.from, x.to) },
        { label: 'Used', get: (x) => `${x.utilizationPercentage}%`, sort: (x) => Number(x.utilizationPercentage) },
      ], subs.ranges),
      subs.nextCursor ? h('p', { class: 'muted' }, `The first ${subs.ranges.length} are shown; the tree shows all.`) : null);
  }
  if (!r.isContainer && !v6 && size <= 65536n) {
    parts.push(addressMap(r, size, Number(params.get('page') || 0)));
  }
  if (!r.isContainer) parts.push(recordList(r, recDefs));
  show(el, ...parts);
}

/** The address map: a grid of 256 cells a page, coloured and marked by state. */
function addressMap(r, size, page0) {
  const pages = Number((size + BigInt(MAP_PAGE) - 1n) / BigInt(MAP_PAGE));
  const wrap = h('section', { class: 'map', 'aria-labelledby': 'map-title' });
  const grid = h('div', { role: 'grid', class: 'addr-grid', id: 'address-map', 'aria-labelledby': 'map-title' });
  const info = h('div', { class: 'cell-info', id: 'cell-info', 'aria-live': 'polite' }, 'Hover over or move to an address for details.');
  const pageSel = pages > 1 ? h('select', { id: 'map-page', 'aria-label': 'Block of the map' }) : null;
  const base = ipToBig(r.from).value;
  if (pageSel) {
    for (let p = 0; p < pages; p++) {
      const a = base + BigInt(p * MAP_PAGE);
      pageSel.append(h('option', { value: p, selected: p === page0 }, `${bigIp(a)} …`));
    }
    pageSel.addEventListener('change', () => load(Number(pageSel.value)));
  }
  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    Object.values(STATES).map(([cls, sym, words]) => h('li', {}, h('span', { class: `cell ${cls}`, 'aria-hidden': 'true', text: sym }), ` ${words}`)));
  show(wrap, h('h2', { id: 'map-title', text: 'Address map' }), legend,
    pageSel ? h('p', {}, h('label', { for: 'map-page' }, 'Show '), pageSel) : null, grid, info);

  let shown = 0;
  async function load(page) {
    const mine = ++shown;
    let recs;
    try {
      recs = (await api.get(`ranges/${idOf(r.ref)}/ipamRecords`, { offset: page * MAP_PAGE, limit: MAP_PAGE })).ipamRecords;
    } catch (e) { notify(e.message, 'error'); return; }
    if (mine !== shown) return; // another page was asked for meanwhile
    grid.replaceChildren();
    let row = null;
    recs.forEach((rec, i) => {
      if (i % 16 === 0) { row = h('div', { role: 'row' }); grid.append(row); }
      const [cls, sym, words] = cellState(rec);
      const cell = h('div', { role: 'gridcell', class: `cell ${cls}`, tabindex: i === 0 ? 0 : -1, title: `${rec.address}: ${words}`,
        'aria-label': `${rec.address} ${words}`, dataset: { addr: rec.address } }, sym);
      cell.rec = rec;
      row.append(cell);
    });
  }
  const open = (cell) => { location.hash = `#/record/${idOf(cell.rec.addressSpaceRef)}/${cell.rec.address}`; };
  const describe = (cell) => {
    const rec = cell.rec;
    const props = Object.entries(rec.customProperties || {}).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${v}`);
    info.textContent = [`${rec.address}`, cellState(rec)[2], rec.holdInfo ? `held by ${rec.holdInfo.username} until ${rec.holdInfo.expiryTime}` : '',
      (rec.dnsHosts || []).map((d) => d.dnsHost?.name || d.name || '').join(' '), ...props].filter(Boolean).join(' · ');
  };
  grid.addEventListener('mouseover', (e) => { const c = e.target.closest('[role=gridcell]'); if (c) describe(c); });
  grid.addEventListener('focusin', (e) => { const c = e.target.closest('[role=gridcell]'); if (c) describe(c); });
  grid.addEventListener('click', (e) => { const c = e.target.closest('[role=gridcell]'); if (c) open(c); });
  grid.addEventListener('keydown', (e) => {
    const c = e.target.closest('[role=gridcell]');
    if (!c) return;
    const cells = [...grid.querySelectorAll('[role=gridcell]')];
    const i = cells.indexOf(c);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 16, ArrowUp: -16, Home: -(i % 16), End: 15 - (i % 16) }[e.key];
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(c); return; }
    if (step === undefined) return;
    const n = cells[i + step];
    if (n) { e.preventDefault(); c.tabIndex = -1; n.tabIndex = 0; n.focus(); }
  });
  load(page0);
  return wrap;
}

function bigIp(n) {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

/** The record list: API filter, pages of 100 (cursor), sorting of the page shown. */
function recordList(r, defs) {
  const wrap = h('section', { 'aria-labelledby': 'records-title' });
  const filter = h('input', { id: 'records-filter', type: 'search', placeholder: 'e.g. state=Assigned, Owner^=team', 'aria-describedby': 'records-error' });
  const err = h('p', { id: 'records-error', class: 'error', role: 'alert' });
  const onlyUsed = h('input', { id: 'records-used', type: 'checkbox', checked: true });
  const out = h('div');
  const nav = h('div', { class: 'pager' });
  const cursors = [];
  wrap.append(h('h2', { id: 'records-title', text: 'IPAM records' }),
    h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); cursors.length = 0; load(null); } },
      h('label', { for: 'records-filter' }, 'Filter'), filter,
      h('span', { class: 'check' }, onlyUsed, h('label', { for: 'records-used' }, 'Only used or annotated')),
      h('button', { type: 'submit' }, 'Apply')), err, out, nav);
  async function load(cursor) {
    err.textContent = '';
    let f = filter.value.trim();
    if (onlyUsed.checked) f = f ? `(${f}) and state!=Free` : 'state!=Free';
    let res;
    try {
      res = await api.get(`ranges/${idOf(r.ref)}/ipamRecords`, { filter: f, limit: LIST_PAGE, cursor });
    } catch (e) {
      err.textContent = e.message;
      filter.setAttribute('aria-invalid', 'true');
      return;
    }
    filter.removeAttribute('aria-invalid');
    const cols = [
      { label: 'Address', get: (x) => link(`#/record/${idOf(x.addressSpaceRef)}/${x.address}`, x.address), sort: (x) => ipToBig(x.address).value },
      { label: 'State', get: (x) => x.state, sort: (x) => x.state },
      ...defs.map((d) => ({ label: d.name, get: (x) => (x.customProperties || {})[d.name] ?? '', sort: (x) => (x.customProperties || {})[d.name] ?? '' })),
    ];
    show(out, table(cols, res.ipamRecords, { caption: `${res.totalResults} record(s)`, empty: 'No record matches.' }));
    nav.replaceChildren();
    if (cursors.length) {
      nav.append(h('button', { type: 'button', onclick: () => { cursors.pop(); load(cursors[cursors.length - 1] || null); } }, 'Previous page'));
    }
    if (res.nextCursor) {
      nav.append(h('button', { type: 'button', onclick: () => { cursors.push(res.nextCursor); load(res.nextCursor); } }, 'Next page'));
    }
  }
  load(null);
  return wrap;
}

async function nextFree(r, reload) {
  const v = await formDialog(`Next free address in ${r.name}`, [
    { name: 'mode', label: 'Then', type: 'select', value: 'claim', options: [['show', 'only show it'], ['claim', 'claim it'], ['hold', 'hold it for a while']] },
    { name: 'seconds', label: 'Hold for (seconds)', type: 'number', value: 300, min: 1 },
  ], 'Find');
  if (!v) return;
  try {
    const q = { claim: v.mode === 'claim' ? 'true' : undefined, temporaryClaimTime: v.mode === 'hold' ? v.seconds : undefined };
    const a = (await api.get(`ranges/${idOf(r.ref)}/nextFreeAddress`, q)).address;
    notify(v.mode === 'show' ? `Next free address: ${a}` : `${a} ${v.mode === 'claim' ? 'claimed' : 'held'}`);
    const res = h('p', { id: 'next-free-result' }, 'Address: ', link(`#/record/${idOf(r.addressSpaceRef)}/${a}`, a));
    await reload();
    document.querySelector('.page h1')?.after(res);
  } catch (e) { notify(e.message, 'error'); }
}

async function allocateN(r, reload) {
  let got = null;
  await formDialog(`Allocate addresses in ${r.name}`, [
    { name: 'count', label: 'How many', type: 'number', value: 10, min: 1, required: true },
    { name: 'mode', label: 'As', type: 'select', value: 'assign', options: [['assign', 'assigned'], ['claim', 'claimed'], ['hold', 'held']] },
    { name: 'holdSeconds', label: 'Hold for (seconds, when held)', type: 'number', value: 300, min: 1 },
    { name: 'comment', label: 'Comment' },
  ], 'Allocate', async (v) => {
    const body = { pool: [r.ref], count: Number(v.count), mode: v.mode, saveComment: v.comment || 'allocated in the UI' };
    if (v.mode === 'hold') body.holdSeconds = Number(v.holdSeconds);
    got = await api.post('addressAllocations', body, { 'Idempotency-Key': `ui-${crypto.randomUUID()}` });
  });
  if (!got) return;
  notify(`${got.addresses.length} address(es) allocated`);
  await reload();
  await dialog('Allocated', h('p', { id: 'allocated-list', class: 'mono', text: got.addresses.join(', ') }), [['ok', 'Close']]);
}

async function freeBlocks(r, reload) {
  const v = await formDialog(`Free blocks in ${r.name}`, [
    { name: 'by', label: 'By', type: 'select', value: 'mask', options: [['mask', 'prefix length'], ['size', 'number of addresses']] },
    { name: 'value', label: 'Prefix length or size', type: 'number', value: 28, min: 1, required: true },
    { name: 'limit', label: 'How many to list', type: 'number', value: 10, min: 1, max: 1000 },
  ], 'Find');
  if (!v) return;
  let blocks;
  try {
    blocks = (await api.get(`ranges/${idOf(r.ref)}/availableAddressBlocks`, { [v.by]: v.value, limit: v.limit })).addressBlocks;
  } catch (e) { notify(e.message, 'error'); return; }
  const list = table([
    { label: 'Block', get: (b) => cidrOf(b.from, b.to) || `${b.from}-${b.to}` },
    { label: 'Size', get: (b) => sizeText(b.from, b.to) },
    { label: '', get: (b) => (can('Create') ? h('button', { type: 'button', class: 'create-block', onclick: async (e) => {
      e.target.disabled = true;
      const name = cidrOf(b.from, b.to) || `${b.from}-${b.to}`;
      try {
        await api.post('ranges', { range: { name, from: b.from, to: b.to, subnet: !!cidrOf(b.from, b.to) }, addressSpaceRef: r.addressSpaceRef, saveComment: 'created from a free block in the UI' });
        notify(`Created ${name}`);
        e.target.closest('dialog').close();
        await reload();
      } catch (ex) { notify(ex.message, 'error'); e.target.disabled = false; }
    } }, 'Create subnet') : '') },
  ], blocks, { empty: 'No free block of that size.' });
  await dialog('Free blocks', list, [['ok', 'Close']]);
}

async function split(r, cidr) {
  const len = Number(cidr.split('/')[1]);
  const v = await formDialog(`Split ${r.name}`, [
    { name: 'prefixLength', label: `Into blocks of prefix length (longer than /${len})`, type: 'number', value: len + 1, min: len + 1, max: cidr.includes(':') ? 128 : 32, required: true },
  ], 'Split', async (x) => {
    const res = await api.post(`ranges/${idOf(r.ref)}/split`, { prefixLength: Number(x.prefixLength), saveComment: 'split in the UI' });
    notify(`Split into ${res.objRefs.length} ranges`);
  });
  if (v) location.hash = r.parentRef ? `#/range/${idOf(r.parentRef)}` : '#/ranges';
}

/** Typed inputs for custom properties from their definitions. */
export function propertyFields(defs, values) {
  return defs.map((d) => {
    const value = values[d.name] ?? '';
    const base = { name: `prop:${d.name}`, label: `${d.name}${d.mandatory ? ' *' : ''}`, value, required: d.mandatory, readOnly: d.readOnly };
    switch (d.type) {
      case 'Boolean': return { ...base, type: 'checkbox', value: value === '1' || value === 'true' || value === true };
      case 'Integer': return { ...base, type: 'number' };
      case 'IPAddress': return { ...base, help: 'an IPv4 or IPv6 address', pattern: '[0-9A-Fa-f:.]+' };
      case 'HexStr': return { ...base, help: 'hexadecimal digits', pattern: '[0-9A-Fa-f:.\\-]*' };
      default: return base;
    }
  });
}

/** The properties of a submitted form, as the API takes them. */
export function propertyValues(v) {
  const out = {};
  for (const [k, x] of Object.entries(v)) if (k.startsWith('prop:')) out[k.slice(5)] = x;
  return out;
}

async function edit(r, defs, reload) {
  const builtIn = ['Title', 'Description'].filter((n) => !defs.some((d) => d.name === n)).map((name) => ({ name, type: 'String' }));
  const v = await formDialog(`Edit ${r.name}`, [
    { name: 'name', label: 'Name', value: r.name, required: true },
    { name: 'locked', label: 'Locked', type: 'checkbox', value: r.locked },
    { name: 'autoAssign', label: 'Auto-assign', type: 'checkbox', value: r.autoAssign },
    ...propertyFields([...builtIn, ...defs], r.customProperties || {}),
  ], 'Save', async (x) => {
    await api.put(`ranges/${idOf(r.ref)}`, { properties: { name: x.name, locked: x.locked, autoAssign: x.autoAssign, ...propertyValues(x) }, saveComment: 'edited in the UI' });
  });
  if (v) { notify('Saved'); await reload(); }
}

async function remove(r) {
  if (!await confirmDialog(`Delete ${r.name}?`, `The range ${r.name} is deleted; its sub-ranges move up to its parent, and its addresses' records are kept.`)) return;
  try {
    await api.del(`ranges/${idOf(r.ref)}`, { saveComment: 'deleted in the UI' });
    notify(`Deleted ${r.name}`);
    location.hash = r.parentRef ? `#/range/${idOf(r.parentRef)}` : '#/ranges';
  } catch (e) { notify(e.message, 'error'); }
}
