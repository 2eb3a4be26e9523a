// The UI's entry point: log in, the navigation, and the router (#/ranges, #/range/ID,
// #/record/SPACE/ADDRESS, #/history, #/admin/..., #/import).
import { api, session, login, logout } from './api.js';
import { h, show, notify } from './dom.js';
import { treeView } from './tree.js';
import { rangeView } from './range.js';
import { recordView } from './record.js';
import { historyView } from './history.js';
import { adminView } from './admin.js';
import { importView } from './import.js';

/** Who is logged in and what they may do everywhere (the engine still checks each call). */
export const me = { user: null, permissions: new Set() };

/** Whether the logged-in user has a permission (Read, Modify, Create, Delete, Allocate, Administer). */
export function can(p) {
  return me.permissions.has(p);
}

const $ = (id) => document.getElementById(id);

async function start() {
  $('login').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  window.addEventListener('hashchange', route);
  window.addEventListener('ipam:logged-out', () => { if (me.user) { notify('Your session has ended: log in again.', 'error'); showLogin(); } });
  let s = null;
  try { s = await session(); } catch (e) { notify(e.message, 'error'); }
  if (s) await enter(s); else showLogin();
}

function showLogin() {
  me.user = null;
  me.permissions = new Set();
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  show($('view'));
  $('login').hidden = false;
  $('login-name').focus();
}

async function onLogin(e) {
  e.preventDefault();
  const err = $('login-error');
  err.textContent = '';
  const btn = e.submitter || $('login').querySelector('button');
  btn.disabled = true;
  try {
    const s = await login($('login-name').value, $('login-password').value);
    $('login-password').value = '';
    await enter(s);
  } catch (ex) {
    err.textContent = ex.message;
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  try { await logout(); } catch (e) { notify(e.message, 'error'); }
  showLogin();
}

async function enter(s) {
  const info = (await api.get('micetro')).micetro;
  me.user = s.user;
  me.userRef = s.userRef;
  me.permissions = new Set(info.permissions);
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `${s.user}${can('Administer') ? ' (administrator)' : can('Modify') ? '' : ' (read only)'}`;
  // Hide what the user may not do at all.
  document.querySelector('[data-nav="admin"]').hidden = !can('Administer');
  document.querySelector('[data-nav="import"]').hidden = !can('Create') && !can('Modify');
  if (!location.hash || location.hash === '#') location.hash = '#/ranges';
  else route();
}

let routing = 0;
async function route() {
  if (!me.user) return;
  const n = ++routing;
  const [path, query] = location.hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  const view = $('view');
  document.querySelectorAll('#nav a').forEach((a) => a.removeAttribute('aria-current'));
  const nav = document.querySelector(`#nav a[data-nav="${parts[0] === 'range' || parts[0] === 'record' ? 'ranges' : parts[0]}"]`);
  if (nav) nav.setAttribute('aria-current', 'page');
  const el = h('div', { class: 'page' });
  show(view, el);
  try {
    // Route parameters go into API paths: only ids and addresses pass (a crafted link must
    // not make the UI call another API path with the user's session).
    const id = (x) => { if (!/^\d+$/.test(x || '')) throw new Error(`not an id: ${x}`); return x; };
    const address = (x) => { if (!/^[0-9A-Fa-f:.]+$/.test(x || '')) throw new Error(`not an address: ${x}`); return x; };
    switch (parts[0]) {
      case 'range': await rangeView(el, id(parts[1]), params); break;
      case 'record': await recordView(el, id(parts[1]), address(parts.slice(2).join('/'))); break;
      case 'history': await historyView(el, params); break;
      case 'admin': await adminView(el, parts[1] || 'users'); break;
      case 'import': await importView(el); break;
      default: await treeView(el, params);
    }
  } catch (e) {
    if (n === routing) show(el, h('p', { class: 'error', role: 'alert', text: e.message }));
  }
  const heading = el.querySelector('h1');
  if (heading && n === routing) { heading.tabIndex = -1; }
}

start();
