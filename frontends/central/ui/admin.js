// Administration: users, groups, roles and their memberships; custom property
// definitions; folders.
import { api, idOf } from './api.js';
import { h, show, notify, formDialog, confirmDialog, table } from './dom.js';
import { me, can } from './app.js';

const TABS = [['users', 'Users'], ['groups', 'Groups'], ['roles', 'Roles'], ['properties', 'Custom properties'], ['folders', 'Folders']];
const PERMISSIONS = ['Read', 'Modify', 'Create', 'Delete', 'Allocate', 'Administer'];

export async function adminView(el, tab) {
  if (!can('Administer')) {
    // Reached by URL: offer nothing the server would refuse.
    show(el, h('h1', { text: 'Administration' }),
      h('p', { class: 'notice', role: 'status', text: 'Administration needs the Administer permission, which your account does not have.' }));
    return;
  }
  const body = h('div', { id: 'admin-body' });
  show(el, h('h1', { text: 'Administration' }),
    h('nav', { class: 'tabs', 'aria-label': 'Administration' },
      TABS.map(([t, label]) => h('a', { href: `#/admin/${t}`, 'aria-current': t === tab ? 'page' : undefined }, label))),
    body);
  const reload = () => adminView(el, tab);
  switch (tab) {
    case 'groups': return groups(body, reload);
    case 'roles': return roles(body, reload);
    case 'properties': return properties(body, reload);
    case 'folders': return folders(body, reload);
    default: return users(body, reload);
  }
}

const names = (list) => (list || []).map((x) => x.name).join(', ');

async function act(f, done, ok) {
  try { await f(); if (ok) notify(ok); await done(); } catch (e) { notify(e.message, 'error'); }
}

async function users(el, reload) {
  const [us, gs, rs] = await Promise.all([api.get('users'), api.get('groups'), api.get('roles')]);
  show(el,
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-user', onclick: () => formDialog('New user', [
      { name: 'name', label: 'Login name', required: true },
      { name: 'fullName', label: 'Full name' },
      { name: 'email', label: 'Email', type: 'email' },
      { name: 'password', label: 'Password', type: 'password', required: true },
    ], 'Create', (v) => api.post('users', { user: v, saveComment: 'created in the UI' })).then((v) => v && reload()) }, 'New user')),
    table([
      { label: 'Name', get: (u) => u.name, sort: (u) => u.name },
      { label: 'Full name', get: (u) => u.fullName, sort: (u) => u.fullName },
      { label: 'Groups', get: (u) => names(u.groups) },
      { label: 'Roles', get: (u) => names(u.roles) },
      { label: 'Actions', get: (u) => h('span', { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => memberships(`users/${idOf(u.ref)}`, u.name, [['groups', gs.groups, 'groups/{x}/users/{me}'], ['roles', rs.roles, 'users/{me}/roles/{x}']], u, reload) }, 'Memberships'),
        h('button', { type: 'button', onclick: () => passwordDialog(u) }, 'Password'),
        h('button', { type: 'button', class: 'danger', onclick: async () => { if (await confirmDialog(`Delete user ${u.name}?`, `${u.name} can no longer log in.`)) act(() => api.del(`users/${idOf(u.ref)}`), reload, `Deleted ${u.name}`); } }, 'Delete')) },
    ], us.users, { caption: 'Users' }));
}

/** Sets a user's password; one's own needs the current one. */
function passwordDialog(u) {
  const self = u.ref === me.userRef;
  const fields = [{ name: 'password', label: 'New password', type: 'password', required: true }];
  if (self) fields.unshift({ name: 'currentPassword', label: 'Current password', type: 'password', required: true });
  return formDialog(`Password of ${u.name}`, fields, 'Set', (v) => api.put(`users/${idOf(u.ref)}`,
    { user: { password: v.password }, ...(self ? { currentPassword: v.currentPassword } : {}), saveComment: 'password set in the UI' }))
    .then((v) => v && notify('Password set'));
}

/** Adds and removes memberships of one user or group. */
async function memberships(ref, name, kinds, current, reload) {
  const fields = [];
  for (const [kind, all] of kinds) {
    const have = new Set((current[kind] || current.groupMembers || []).map((x) => x.ref));
    for (const x of all) fields.push({ name: `${kind}|${x.ref}`, label: `${kind === 'groups' ? 'Group' : kind === 'roles' ? 'Role' : 'User'} ${x.name}`, type: 'checkbox', value: have.has(x.ref) });
  }
  const v = await formDialog(`Memberships of ${name}`, fields, 'Save', async (vals) => {
    for (const [kind, all, pattern] of kinds) {
      const have = new Set((current[kind] || []).map((x) => x.ref));
      for (const x of all) {
        const want = vals[`${kind}|${x.ref}`];
        if (want === have.has(x.ref)) continue;
        const path = pattern.replace('{me}', idOf(ref)).replace('{x}', idOf(x.ref));
        if (want) await api.put(path, { saveComment: 'membership set in the UI' });
        else await api.del(path, { saveComment: 'membership removed in the UI' });
      }
    }
  });
  if (v) { notify('Memberships saved'); await reload(); }
}

async function groups(el, reload) {
  const [gs, us, rs] = await Promise.all([api.get('groups'), api.get('users'), api.get('roles')]);
  show(el,
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-group', onclick: () => formDialog('New group', [
      { name: 'name', label: 'Name', required: true }, { name: 'description', label: 'Description' },
    ], 'Create', (v) => api.post('groups', { group: v, saveComment: 'created in the UI' })).then((v) => v && reload()) }, 'New group')),
    table([
      { label: 'Name', get: (g) => g.name, sort: (g) => g.name },
      { label: 'Description', get: (g) => g.description },
      { label: 'Members', get: (g) => names(g.groupMembers) },
      { label: 'Roles', get: (g) => names(g.roles) },
      { label: 'Actions', get: (g) => h('span', { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => memberships(`groups/${idOf(g.ref)}`, g.name,
          [['users', us.users, 'groups/{me}/users/{x}'], ['roles', rs.roles, 'groups/{me}/roles/{x}']], { users: g.groupMembers, roles: g.roles }, reload) }, 'Members and roles'),
        h('button', { type: 'button', class: 'danger', onclick: async () => { if (await confirmDialog(`Delete group ${g.name}?`, 'Its members lose the roles they had through it.')) act(() => api.del(`groups/${idOf(g.ref)}`), reload, `Deleted ${g.name}`); } }, 'Delete')) },
    ], gs.groups, { caption: 'Groups' }));
}

async function roles(el, reload) {
  const rs = await api.get('roles');
  const permFields = (have) => PERMISSIONS.map((p) => ({ name: `perm|${p}`, label: p, type: 'checkbox', value: have.includes(p) }));
  const perms = (v) => PERMISSIONS.filter((p) => v[`perm|${p}`]);
  show(el,
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-role', onclick: () => formDialog('New role', [
      { name: 'name', label: 'Name', required: true }, { name: 'description', label: 'Description' }, ...permFields(['Read']),
    ], 'Create', (v) => api.post('roles', { role: { name: v.name, description: v.description, permissions: perms(v) }, saveComment: 'created in the UI' })).then((v) => v && reload()) }, 'New role')),
    table([
      { label: 'Name', get: (r) => r.name, sort: (r) => r.name },
      { label: 'Permissions', get: (r) => (r.builtIn ? 'everything' : r.permissions.join(', ')) },
      { label: 'Users', get: (r) => names(r.users) },
      { label: 'Groups', get: (r) => names(r.groups) },
      { label: 'Actions', get: (r) => (r.builtIn ? h('span', { class: 'muted' }, 'built in') : h('span', { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => formDialog(`Permissions of ${r.name}`, [{ name: 'description', label: 'Description', value: r.description }, ...permFields(r.permissions)], 'Save',
          (v) => api.put(`roles/${idOf(r.ref)}`, { role: { description: v.description, permissions: perms(v) }, saveComment: 'changed in the UI' })).then((v) => v && reload()) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: async () => { if (await confirmDialog(`Delete role ${r.name}?`, 'Its users and groups lose its permissions.')) act(() => api.del(`roles/${idOf(r.ref)}`), reload, `Deleted ${r.name}`); } }, 'Delete'))) },
    ], rs.roles, { caption: 'Roles' }));
}

async function properties(el, reload) {
  const kinds = [['ranges', 'Ranges'], ['ipamRecords', 'IPAM records']];
  const lists = await Promise.all(kinds.map(([k]) => api.get(`${k}/propertyDefinitions`)));
  show(el, kinds.map(([k, label], i) => [
    h('h2', { text: label }),
    h('div', { class: 'actions' }, h('button', { type: 'button', id: `new-prop-${k}`, onclick: () => formDialog(`New ${label} property`, [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', value: 'String', options: ['String', 'Integer', 'Boolean', 'IPAddress', 'HexStr', 'IPOrHostname'].map((t) => [t, t]) },
      { name: 'mandatory', label: 'Mandatory', type: 'checkbox' },
      { name: 'readOnly', label: 'Read only', type: 'checkbox' },
      { name: 'defaultValue', label: 'Default value' },
    ], 'Create', (v) => api.post(`${k}/propertyDefinitions`, { propertyDefinition: v, saveComment: 'created in the UI' })).then((v) => v && reload()) }, 'New property')),
    table([
      { label: 'Name', get: (d) => d.name, sort: (d) => d.name },
      { label: 'Type', get: (d) => d.type },
      { label: 'Mandatory', get: (d) => (d.mandatory ? 'yes' : 'no') },
      { label: 'Read only', get: (d) => (d.readOnly ? 'yes' : 'no') },
      { label: 'Default', get: (d) => d.defaultValue },
      { label: 'Actions', get: (d) => h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (await confirmDialog(`Delete property ${d.name}?`, `The property and its values are removed from every ${label.toLowerCase()} object.`)) {
          act(() => api.del(`${k}/propertyDefinitions/${encodeURIComponent(d.name)}`), reload, `Deleted ${d.name}`);
        }
      } }, 'Delete') },
    ], lists[i].propertyDefinitions || []),
  ]));
}

async function folders(el, reload) {
  const fs = (await api.get('folders')).folders || [];
  const byRef = Object.fromEntries(fs.map((f) => [f.ref, f]));
  const options = [['', '(top level)'], ...fs.map((f) => [f.ref, f.name])];
  show(el,
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'new-folder', onclick: () => formDialog('New folder', [
      { name: 'name', label: 'Name', required: true }, { name: 'parentRef', label: 'Inside', type: 'select', value: '', options },
    ], 'Create', (v) => api.post('folders', { folder: { name: v.name, ...(v.parentRef ? { parentRef: v.parentRef } : {}) }, saveComment: 'created in the UI' })).then((v) => v && reload()) }, 'New folder')),
    table([
      { label: 'Name', get: (f) => f.name, sort: (f) => f.name },
      { label: 'Inside', get: (f) => (f.parentRef ? byRef[f.parentRef]?.name || f.parentRef : '') },
      { label: 'Actions', get: (f) => h('span', { class: 'row-actions' },
        h('button', { type: 'button', onclick: () => formDialog(`Rename ${f.name}`, [{ name: 'name', label: 'Name', value: f.name, required: true }], 'Save',
          (v) => api.put(`folders/${idOf(f.ref)}`, { folder: { name: v.name }, saveComment: 'renamed in the UI' })).then((v) => v && reload()) }, 'Rename'),
        h('button', { type: 'button', class: 'danger', onclick: async () => { if (await confirmDialog(`Delete folder ${f.name}?`, 'The folder must be empty.')) act(() => api.del(`folders/${idOf(f.ref)}`), reload, `Deleted ${f.name}`); } }, 'Delete')) },
    ], fs, { caption: 'Folders' }));
}
