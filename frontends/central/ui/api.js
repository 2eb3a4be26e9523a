// The API client of the UI: the same /mmws/api/v2 every integrator uses, with the session
// cookie and its CSRF token.

const BASE = '/mmws/api/v2/';
let csrf = null;

/** An error answer of the API. */
export class ApiError extends Error {
  constructor(status, code, message, index) {
    super(message);
    this.status = status;
    this.code = code;
    this.index = index;
  }
}

/**
 * Query string of the defined values of an object. Every value is percent-encoded, a space as
 * %20: the API (like Micetro) reads a `+` as a plus, so URLSearchParams' `+` would turn
 * `Site=LON and VLAN>=330` into another filter.
 */
export function qs(params = {}) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

async function send(method, url, body, headers = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (csrf) h['X-CSRF-Token'] = csrf;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 0, `Central cannot be reached (${e.message})`);
  }
  if (r.status === 204) return null;
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!r.ok) {
    const e = json && json.error;
    const err = new ApiError(r.status, e ? e.code : 0, e ? e.message : `HTTP ${r.status}`, e ? e.index : undefined);
    if (r.status === 401 && url.startsWith(BASE)) window.dispatchEvent(new CustomEvent('ipam:logged-out', { detail: err.message }));
    throw err;
  }
  return json && 'result' in json ? json.result : json;
}

/** Calls the API: api.get('ranges/12'), api.post('ranges', {...}). */
export const api = {
  get: (path, params) => send('GET', BASE + path + qs(params)),
  post: (path, body = {}, headers) => send('POST', BASE + path, body, headers),
  put: (path, body = {}) => send('PUT', BASE + path, body),
  del: (path, params) => send('DELETE', BASE + path + qs(params)),
};

/** The logged-in user of the cookie, or null. */
export async function session() {
  const s = await send('GET', '/ui/session');
  csrf = s ? s.csrfToken : null;
  return s;
}

/** Logs in; answers the user. */
export async function login(loginName, password) {
  const s = await send('POST', '/ui/session', { loginName, password }, { 'X-Requested-With': 'ipam' });
  csrf = s.csrfToken;
  return s;
}

/** Logs out. */
export async function logout() {
  try { await send('DELETE', '/ui/session'); } finally { csrf = null; }
}

// Addresses as BigInt, for sizes and arithmetic on IPv4 and IPv6 alike.

/** An address as a BigInt, and whether it is IPv6; throws on anything that is not one. */
export function ipToBig(s) {
  const bad = () => new Error(`${s} is not an IP address`);
  s = String(s).trim();
  if (s.includes(':')) {
    if (!/^[0-9a-fA-F:.]+$/.test(s) || (s.match(/::/g) || []).length > 1) throw bad();
    let [head, tail] = s.split('::');
    const part = (x) => (x ? x.split(':') : []);
    let hs = part(head);
    let ts = tail === undefined ? [] : part(tail);
    // An embedded IPv4 tail.
    const fix = (arr) => {
      const last = arr[arr.length - 1];
      if (last && last.includes('.')) {
        const v4 = ipToBig(last).value;
        arr.splice(arr.length - 1, 1, ((v4 >> 16n) & 0xffffn).toString(16), (v4 & 0xffffn).toString(16));
      }
      return arr;
    };
    hs = fix(hs); ts = fix(ts);
    if (hs.length + ts.length > (tail === undefined ? 8 : 7) || (tail === undefined && hs.length !== 8)) throw bad();
    if ([...hs, ...ts].some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) throw bad();
    const fill = tail === undefined ? [] : Array(8 - hs.length - ts.length).fill('0');
    const groups = [...hs, ...fill, ...ts];
    return { v6: true, value: groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g || '0', 16)), 0n) };
  }
  const octets = s.split('.');
  // Four decimal octets of 0 to 255 (no leading zeros beyond "0" itself).
  if (octets.length !== 4 || octets.some((o) => !/^(0|[1-9][0-9]{0,2})$/.test(o) || Number(o) > 255)) throw bad();
  return { v6: false, value: octets.reduce((acc, o) => (acc << 8n) + BigInt(Number(o)), 0n) };
}

/** Whether a text is an IPv4 or IPv6 address. */
export function isIp(s) {
  try { ipToBig(s); return true; } catch { return false; }
}

/** A BigInt as an address. */
export function bigToIp(n, v6) {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  const g = [];
  for (let i = 7n; i >= 0n; i--) g.push(((n >> (i * 16n)) & 0xffffn).toString(16));
  // The longest run of zero groups becomes '::'.
  let best = [-1, 0];
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > best[1] && j - i > 1) best = [i, j - i];
    i = j;
  }
  if (best[0] < 0) return g.join(':');
  return `${g.slice(0, best[0]).join(':')}::${g.slice(best[0] + best[1]).join(':')}`;
}

/** Number of addresses from..to, as text ("256", "2^64"). */
export function sizeText(from, to) {
  const n = ipToBig(to).value - ipToBig(from).value + 1n;
  if (n > 1000000000000n && (n & (n - 1n)) === 0n) return `2^${n.toString(2).length - 1}`;
  return n.toLocaleString('en');
}

/** The CIDR of a range that is exactly one block, else null. */
export function cidrOf(from, to) {
  const a = ipToBig(from); const b = ipToBig(to);
  const n = b.value - a.value + 1n;
  if (n <= 0n || (n & (n - 1n)) !== 0n || a.value % n !== 0n) return null;
  const bits = a.v6 ? 128 : 32;
  return `${from}/${bits - (n.toString(2).length - 1)}`;
}

/** The id in a ref ("ranges/12" -> "12"). */
export function idOf(ref) {
  return String(ref).split('/').pop();
}

/** First and last address of a CIDR block; throws when host bits are set. */
export function cidrBounds(addr, len) {
  const a = ipToBig(addr);
  const bits = a.v6 ? 128n : 32n;
  if (!Number.isInteger(len) || len < 0 || BigInt(len) > bits) throw new Error(`/${len} is not a prefix length`);
  const l = BigInt(len);
  const size = 1n << (bits - l);
  if (a.value % size !== 0n) throw new Error(`${addr}/${len} has host bits set`);
  return [bigToIp(a.value, a.v6), bigToIp(a.value + size - 1n, a.v6)];
}
