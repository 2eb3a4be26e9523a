// Bulk import of ranges or IPAM records from CSV, in the layouts `ipamctl export` writes:
// - ranges: `cidr` (or `from` and `to`), `name`, `subnet`, `container`, `locked`,
//   `auto_assign`, and one column per custom property;
// - records: `address`, `state`, `hold_seconds`, and one column per custom property.
// Rows go in batches of 500 (rangeBatches / ipamRecordBatches, all or nothing each, keyed
// by their content so a rerun does not apply a batch twice). A row the server refuses is
// reported with its line and left out, and the rest of its batch is sent again.
import { api, cidrBounds, ipToBig } from './api.js';
import { h, show, table } from './dom.js';

const BATCH = 500;
const STATES = ['Free', 'Assigned', 'Claimed', 'Held', 'Reserved'];

/** Parses CSV (RFC 4180: quotes, doubled quotes, CRLF); answers rows of cells with line numbers. */
export function parseCsv(text) {
  const rows = [];
  let row = []; let cell = ''; let quoted = false; let line = 1; let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else { if (c === '\n') line++; cell += c; }
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell); cell = '';
      if (row.length > 1 || row[0] !== '') rows.push({ line: rowLine, cells: row });
      row = []; line++; rowLine = line;
    } else cell += c;
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push({ line: rowLine, cells: row }); }
  return rows;
}

function flag(col, v) {
  const s = v.toLowerCase();
  if (['true', '1', 'yes', 'y'].includes(s)) return true;
  if (['false', '0', 'no', 'n'].includes(s)) return false;
  throw new Error(`${col}: ${JSON.stringify(v)} is not true/false`);
}

/** One row as a batch item; throws why it is bad. */
export function item(kind, headers, cells) {
  const o = {}; const props = {};
  headers.forEach((col, i) => {
    const v = (cells[i] ?? '').trim();
    if (!v) return;
    if (kind === 'records') {
      if (col === 'address') {
        if (!/^[0-9a-fA-F:.]+$/.test(v) || (!v.includes(':') && v.split('.').length !== 4)) throw new Error(`address: ${JSON.stringify(v)} is not an IP address`);
        o.address = v;
      } else if (col === 'state') {
        const s = STATES.find((x) => x.toLowerCase() === v.toLowerCase());
        if (!s) throw new Error(`state: ${JSON.stringify(v)} is not one of ${STATES.join(', ')}`);
        o.state = s;
      } else if (col === 'hold_seconds') {
        if (!/^\d+$/.test(v)) throw new Error(`hold_seconds: ${JSON.stringify(v)} is not a number`);
        o.holdSeconds = Number(v);
      } else props[col] = v;
    } else if (col === 'cidr') {
      const [a, l] = v.split('/');
      if (l === undefined) throw new Error(`cidr: ${JSON.stringify(v)} is not a CIDR`);
      let b;
      try { b = cidrBounds(a, Number(l)); } catch (e) { throw new Error(`cidr: ${e.message}`); }
      [o.from, o.to] = b;
      o.name = o.name || v;
      o.cidr = true;
    } else if (col === 'from' || col === 'to') {
      try { ipToBig(v); } catch (e) { throw new Error(`${col}: ${e.message}`); }
      o[col] = v;
    } else if (col === 'name') o[col] = v;
    else if (['subnet', 'container', 'locked', 'auto_assign'].includes(col)) {
      o[{ container: 'isContainer', auto_assign: 'autoAssign' }[col] || col] = flag(col, v);
    } else props[col] = v;
  });
  if (kind === 'records' && !o.address) throw new Error('no address');
  if (kind === 'ranges' && (!o.from || !o.to)) throw new Error('no cidr, and no from and to');
  if (o.cidr && o.subnet === undefined) o.subnet = !o.isContainer;
  delete o.cidr;
  if (Object.keys(props).length) o[kind === 'records' ? 'properties' : 'customProperties'] = props;
  return o;
}

/** The batch's idempotency key: this run's nonce and the batch's content (a retry within
 * the run is not applied twice; another run, or another user, is a new import). */
async function keyOf(run, items) {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(run + JSON.stringify(items)));
  return `ui-import-${[...new Uint8Array(d)].slice(0, 16).map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export async function importView(el) {
  const file = h('input', { id: 'import-file', type: 'file', accept: '.csv,text/csv', required: true });
  const kind = h('select', { id: 'import-kind' }, h('option', { value: 'auto' }, 'from the header'), h('option', { value: 'ranges' }, 'ranges'), h('option', { value: 'records' }, 'IPAM records'));
  const progress = h('progress', { id: 'import-progress', max: 1, value: 0, 'aria-label': 'Import progress' });
  const status = h('p', { id: 'import-status', 'aria-live': 'polite' });
  const report = h('div', { id: 'import-report' });
  const go = h('button', { type: 'submit', class: 'primary' }, 'Import');
  const form = h('form', { class: 'editor' },
    h('div', { class: 'field' }, h('label', { for: 'import-file' }, 'CSV file'), file),
    h('div', { class: 'field' }, h('label', { for: 'import-kind' }, 'The file holds'), kind),
    h('div', { class: 'actions' }, go));
  show(el, h('h1', { text: 'Import' }),
    h('p', { class: 'muted', text: 'Ranges: columns cidr (or from, to), name, subnet, container, locked, auto_assign, and one column per custom property. Records: address, state, hold_seconds, and custom properties. The layouts ipamctl export writes.' }),
    form, progress, status, report);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    go.disabled = true;
    try { await run(await file.files[0].text(), kind.value, progress, status, report); } finally { go.disabled = false; }
  });
}

async function run(text, wanted, progress, status, report) {
  report.replaceChildren();
  const rows = parseCsv(text);
  if (!rows.length) { status.textContent = 'The file is empty.'; return; }
  const headers = rows[0].cells.map((x) => x.trim().toLowerCase() === 'address' || ['cidr', 'from', 'to', 'name', 'state', 'hold_seconds', 'subnet', 'container', 'locked', 'auto_assign'].includes(x.trim().toLowerCase()) ? x.trim().toLowerCase() : x.trim());
  const kind = wanted !== 'auto' ? wanted : headers.includes('address') ? 'records' : (headers.includes('cidr') || headers.includes('from')) ? 'ranges' : null;
  if (!kind) { status.textContent = 'The header needs address (records) or cidr / from,to (ranges).'; return; }
  const bad = [];
  const good = [];
  for (const r of rows.slice(1)) {
    try { good.push({ line: r.line, item: item(kind, headers, r.cells) }); } catch (e) { bad.push({ line: r.line, reason: e.message }); }
  }
  const total = rows.length - 1;
  const run = crypto.randomUUID();
  progress.max = total;
  let done = bad.length; let applied = 0;
  const tick = () => { progress.value = done; status.textContent = `${done} of ${total} rows processed, ${applied} applied, ${bad.length} refused`; };
  tick();
  for (let i = 0; i < good.length; i += BATCH) {
    let batch = good.slice(i, i + BATCH);
    while (batch.length) {
      const items = batch.map((b) => b.item);
      const body = kind === 'records' ? { records: items, saveComment: 'imported in the UI' } : { ranges: items, saveComment: 'imported in the UI' };
      try {
        await api.post(kind === 'records' ? 'ipamRecordBatches' : 'rangeBatches', body, { 'Idempotency-Key': await keyOf(run, items) });
        applied += batch.length; done += batch.length; batch = [];
      } catch (e) {
        if (e.index === undefined || e.index >= batch.length) {
          // Not about one row (database down, no permission): stop here.
          status.textContent = `Stopped after ${applied} applied rows: ${e.message}`;
          showReport(report, bad);
          return;
        }
        bad.push({ line: batch[e.index].line, reason: e.message });
        done += 1;
        batch = batch.filter((_, j) => j !== e.index);
      }
      tick();
    }
  }
  tick();
  status.textContent = `Done: ${applied} of ${total} rows applied, ${bad.length} refused.`;
  showReport(report, bad);
}

function showReport(el, bad) {
  if (!bad.length) return;
  bad.sort((a, b) => a.line - b.line);
  show(el, h('h2', { text: 'Refused rows' }),
    table([{ label: 'Line', get: (b) => String(b.line), sort: (b) => b.line }, { label: 'Why', get: (b) => b.reason }], bad, { caption: `${bad.length} row(s) refused` }));
}
