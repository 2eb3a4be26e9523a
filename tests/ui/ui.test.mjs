// End-to-end tests of Central's browser UI: the real `ipam-central` binary on loopback, and
// Debian's headless Chromium driven by playwright-core. Every step fails on a browser
// console error or page error (API refusals are allowed only inside the steps that expect
// them), and screenshots go to target/ui-screenshots/.
//
// Run: `cd tests/ui && npm ci && IPAM_CENTRAL_BIN=../../target/debug/ipam-central npm test`
// (cargo test -p ipam-central runs it too; see frontends/central/tests/it/ui.rs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const BIN = process.env.IPAM_CENTRAL_BIN || path.join(root, 'target/debug/ipam-central');
const BROWSER = process.env.IPAM_CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(root, 'target/ui-screenshots');
const ADMIN_PW = 'ui-admin-pw-1';
const STEP_TIMEOUT = 20_000;

let central; let dataDir; let base; let browser; let context; let page;
const problems = [];
let allowApiErrors = 0;

function fail(msg) {
  throw new Error(msg);
}

function cleanEnv() {
  const env = { ...process.env, IPAM_ADMIN_PASSWORD: ADMIN_PW };
  for (const k of ['IPAM_CONFIG', 'IPAM_DATABASE', 'IPAM_LISTEN', 'IPAM_DATA_DIR']) delete env[k];
  return env;
}

async function startCentral() {
  if (!existsSync(BIN)) fail(`no ipam-central binary at ${BIN}: run \`cargo build -p ipam-central\` (or set IPAM_CENTRAL_BIN)`);
  dataDir = mkdtempSync(path.join(tmpdir(), 'ipam-ui-'));
  central = spawn(BIN, ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log', 'warn', '--insecure-fast-passwords'], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  base = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('ipam-central did not start in 30 s')), 30_000);
    let buf = '';
    central.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening on (https:\/\/[0-9.:]+)\//);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    central.on('exit', (code) => { clearTimeout(t); reject(new Error(`ipam-central exited with ${code}: ${buf}`)); });
  });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await startCentral();
  if (!existsSync(BROWSER)) fail(`no Chromium at ${BROWSER}: apt-get install chromium chromium-driver (or set IPAM_CHROMIUM)`);
  browser = await chromium.launch({ executablePath: BROWSER, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 });
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const text = m.text();
    // A refused API call shows as a failed resource load; allowed only where a step expects it.
    if (allowApiErrors > 0 && /Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    if (m.type() === 'error' || /Content[- ]Security[- ]Policy/i.test(text)) problems.push(`console ${m.type()}: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`unexpected browser dialog: ${d.message()}`); d.dismiss(); });
});

after(async () => {
  try { if (browser) await browser.close(); } finally {
    if (central && central.exitCode === null) {
      central.kill('SIGTERM');
      await new Promise((r) => { const t = setTimeout(() => { central.kill('SIGKILL'); r(); }, 10_000); central.on('exit', () => { clearTimeout(t); r(); }); });
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Runs a step, then fails on any console or page error it caused; saves a screenshot. */
async function step(name, f) {
  const before = problems.length;
  try {
    await f();
  } finally {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true }).catch(() => {});
  }
  assert.deepEqual(problems.slice(before), [], `browser errors during ${name}`);
}

/**
 * Every visible control has an accessible name (a label, aria-label or aria-labelledby, or
 * text for buttons and links), and the view has one h1.
 */
async function checkLabels(where) {
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('input, select, textarea, button, a[href], [role=gridcell], [role=treeitem]')) {
      if (!el.checkVisibility()) continue;
      const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
        || (['BUTTON', 'A'].includes(el.tagName) && el.textContent.trim());
      if (!named) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  });
  assert.deepEqual(unnamed, [], `controls without a name on ${where}`);
  assert.equal(await page.locator('#view h1').count(), 1, `one h1 on ${where}`);
}

/** Runs f while failed API calls (4xx) are expected. */
async function expectingRefusals(f) {
  allowApiErrors++;
  try { return await f(); } finally { allowApiErrors--; }
}

async function login(name, password) {
  await page.goto(`${base}/`);
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#who').filter({ hasText: name }).waitFor();
}

async function logout() {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('#login').waitFor();
}

let loads = 0;
/** Loads the UI afresh at a route (a full page load, so no view is left over). */
async function nav(hash) {
  await page.goto(`${base}/?load=${++loads}${hash}`);
  await page.locator('#view .page').waitFor();
}

/** Fills and submits the dialog that is open. */
async function fillDialog(values, submit) {
  const d = page.locator('dialog[open]');
  await d.waitFor();
  for (const [label, v] of Object.entries(values)) {
    const input = d.getByLabel(label, { exact: true });
    if (typeof v === 'boolean') await input.setChecked(v);
    else if ((await input.evaluate((e) => e.tagName)) === 'SELECT') await input.selectOption(v);
    else await input.fill(String(v));
  }
  await d.getByRole('button', { name: submit, exact: true }).click();
}

/** An API call from the page, with the UI's session (cookie and CSRF token unless told). */
async function pageFetch(method, apiPath, body, { csrf = true } = {}) {
  return page.evaluate(async ([method, apiPath, body, csrf]) => {
    const s = await (await fetch('/ui/session')).json();
    const headers = { 'Content-Type': 'application/json' };
    if (csrf && s.result) headers['X-CSRF-Token'] = s.result.csrfToken;
    const r = await fetch(`/mmws/api/v2/${apiPath}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
    return { status: r.status, body: await r.text() };
  }, [method, apiPath, body, csrf]);
}

test('the UI, end to end', { timeout: 300_000 }, async (t) => {
  await t.test('security headers, and the login page shows', async () => {
    const r = await page.goto(`${base}/`);
    const h = r.headers();
    assert.match(h['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);
    assert.equal(h['x-content-type-options'], 'nosniff');
    await page.locator('#login').waitFor({ state: 'visible' });
    assert.deepEqual(problems, []);
  });

  await t.test('a wrong password is refused, the right one logs in', () => step('01-login', async () => {
    await page.getByLabel('User name').fill('administrator');
    await page.getByLabel('Password').fill('wrong');
    await expectingRefusals(async () => {
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.locator('#login-error').filter({ hasText: /Invalid username or password/ }).waitFor();
    });
    await login('administrator', ADMIN_PW);
    await page.locator('h1', { hasText: 'Ranges' }).waitFor();
    const cookies = await context.cookies();
    const c = cookies.find((x) => x.name === '__Host-ipam_session');
    assert.ok(c && c.httpOnly && c.secure && c.sameSite === 'Strict', `session cookie flags: ${JSON.stringify(c)}`);
    assert.match(await page.locator('#who').textContent(), /administrator/);
  }));

  await t.test('create a container and a subnet; the tree expands with the keyboard', () => step('02-tree', async () => {
    await page.getByRole('button', { name: 'New range' }).click();
    await fillDialog({ 'CIDR or from-to': '10.20.0.0/16', Kind: 'container', Title: 'lab' }, 'Create');
    await page.getByRole('treeitem', { name: /^10\.20\.0\.0\/16/ }).waitFor();
    await page.getByRole('button', { name: 'New range' }).click();
    await fillDialog({ 'CIDR or from-to': '10.20.1.0/24', Kind: 'subnet' }, 'Create');
    await nav(`#/ranges`);
    const container = page.getByRole('treeitem', { name: /^10\.20\.0\.0\/16/ });
    await container.waitFor();
    assert.equal(await container.getAttribute('aria-expanded'), 'false');
    // The subnet was adopted by the container: it is not on the top level.
    assert.equal(await page.locator('#range-tree > [role=treeitem]').count(), 1);
    await container.focus();
    await page.keyboard.press('ArrowRight');
    const subnet = page.getByRole('treeitem', { name: /^10\.20\.1\.0\/24, 256 addresses/ });
    await subnet.waitFor();
    assert.equal(await container.getAttribute('aria-expanded'), 'true');
    await page.keyboard.press('ArrowRight');
    assert.equal(await subnet.evaluate((e) => e === document.activeElement), true, 'Right moves into the children');
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: '10.20.1.0/24' }).waitFor();
  }));

  let claimed;
  await t.test('next free address, claimed, shows on the address map', () => step('03-next-free', async () => {
    await page.getByRole('button', { name: 'Next free address' }).click();
    await fillDialog({ Then: 'claim' }, 'Find');
    const res = page.locator('#next-free-result a');
    await res.waitFor();
    claimed = (await res.textContent()).trim();
    assert.match(claimed, /^10\.20\.1\.\d+$/);
    const cell = page.locator(`#address-map [data-addr="${claimed}"]`);
    await cell.waitFor();
    assert.match(await cell.getAttribute('class'), /\bclaimed\b/);
    assert.equal((await cell.textContent()).trim(), 'C', 'state is also shown by a symbol');
    assert.equal(await cell.getAttribute('aria-label'), `${claimed} claimed`);
    assert.equal(await page.locator('#address-map .cell.free').count(), 255);
    // Keyboard: the grid moves with arrows and opens with Enter.
    await page.locator('#address-map [tabindex="0"]').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.addr), '10.20.1.1');
    await checkLabels('the range view');
  }));

  await t.test('allocate N addresses', () => step('04-allocate', async () => {
    await page.getByRole('button', { name: 'Allocate N' }).click();
    await fillDialog({ 'How many': 5, As: 'assign' }, 'Allocate');
    const list = page.locator('#allocated-list');
    await list.waitFor();
    assert.equal((await list.textContent()).split(',').length, 5);
    await page.locator('dialog[open]').getByRole('button', { name: 'Close' }).click();
    await page.locator('#address-map .cell.assigned').first().waitFor();
    assert.equal(await page.locator('#address-map .cell.assigned').count(), 5);
  }));

  await t.test('a custom property edited on a record shows in its history', () => step('05-property', async () => {
    await nav(`#/admin/properties`);
    await page.locator('#new-prop-ipamRecords').click();
    await fillDialog({ Name: 'Owner', Type: 'String' }, 'Create');
    await page.getByRole('cell', { name: 'Owner', exact: true }).waitFor();
    await nav(`#/record/1/${claimed}`);
    await page.locator('h1', { hasText: claimed }).waitFor();
    await page.getByLabel('Owner').fill('alice-team');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#status', { hasText: `Saved ${claimed}` }).waitFor();
    const row = page.getByRole('row').filter({ hasText: 'alice-team' });
    await row.first().waitFor();
    assert.match(await row.first().textContent(), /Owner/);
    assert.match(await row.first().textContent(), /administrator/);
    assert.equal(await page.getByLabel('Owner').inputValue(), 'alice-team');
    await checkLabels('the record editor');
    // The whole history, filtered by user.
    await nav(`#/history`);
    await page.getByLabel('User', { exact: true }).fill('administrator');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('#history-table').getByText('alice-team').first().waitFor();
    await checkLabels('the history');
  }));

  await t.test('find a free /28 in the container and create it', () => step('06-free-block', async () => {
    await nav(`#/ranges`);
    await page.getByRole('link', { name: '10.20.0.0/16' }).click();
    await page.getByRole('button', { name: 'Find free blocks' }).click();
    await fillDialog({ By: 'prefix length', 'Prefix length or size': 28, 'How many to list': 3 }, 'Find');
    const first = page.locator('dialog[open] tbody tr').first();
    await first.waitFor();
    const block = (await first.locator('td').first().textContent()).trim();
    assert.match(block, /^10\.20\.\d+\.\d+\/28$/);
    await first.getByRole('button', { name: 'Create subnet' }).click();
    await page.locator('#status', { hasText: `Created ${block}` }).waitFor();
    await page.getByRole('link', { name: block }).waitFor();
  }));

  await t.test('the filter box takes the API grammar and shows its errors in place', () => step('07-filter', async () => {
    await nav(`#/ranges`);
    await expectingRefusals(async () => {
      await page.getByLabel('Filter', { exact: true }).fill('(name=x');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.locator('#tree-filter-error').filter({ hasText: /\S/ }).waitFor();
    });
    assert.equal(await page.getByLabel('Filter', { exact: true }).getAttribute('aria-invalid'), 'true');
    await page.getByLabel('Filter', { exact: true }).fill('10.20.1.7');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('treeitem', { name: /^10\.20\.1\.0\/24/ }).waitFor();
    assert.equal(await page.locator('#tree-filter-error').textContent(), '');
    await checkLabels('the range tree');
  }));

  await t.test('a range name with <script> is shown as text', () => step('08-injection', async () => {
    const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const r = await pageFetch('POST', 'ranges', { range: { name: evil, from: '10.99.0.0', to: '10.99.0.255' } });
    assert.equal(r.status, 201, r.body);
    await nav(`#/ranges`);
    const item = page.locator('#range-tree a.name', { hasText: '<script>alert(1)</script>' });
    await item.waitFor();
    assert.equal(await item.textContent(), evil);
    await item.click();
    await page.locator('h1').filter({ hasText: '<script>' }).waitFor();
    assert.equal(await page.locator('main script, main img').count(), 0, 'no element was made from the name');
  }));

  await t.test('split a subnet', () => step('09-split', async () => {
    await nav(`#/ranges`);
    await page.getByLabel('Filter', { exact: true }).fill('10.20.1.0/24');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('link', { name: '10.20.1.0/24' }).click();
    await page.getByRole('button', { name: 'Split' }).click();
    await fillDialog({}, 'Split');
    await page.locator('#status', { hasText: 'Split into 2 ranges' }).waitFor();
    await page.getByRole('link', { name: '10.20.1.128/25' }).waitFor();
    await page.getByRole('link', { name: '10.20.1.0/25' }).click();
    // The records stayed: the claimed address is still claimed.
    await page.locator(`#address-map [data-addr="${claimed}"].claimed`).waitFor();
  }));

  await t.test('a crafted link cannot make the UI call another API path', () => step('10b-crafted-link', async () => {
    const urls = [];
    const seen = (r) => urls.push(r.url());
    page.on('request', seen);
    try {
      await expectingRefusals(async () => {
        await nav('#/range/1%2FnextFreeAddress%3Fclaim%3Dtrue');
        await page.locator('#view .error', { hasText: 'not an id' }).waitFor();
        await nav('#/record/1/..%2F..%2Franges%2F1%2FnextFreeAddress%3Fclaim%3Dtrue');
        await page.locator('#view .error', { hasText: 'not an address' }).waitFor();
        await nav(`#/history?objectRef=${encodeURIComponent('ranges/1/nextFreeAddress?claim=true')}`);
        await page.locator('#view .error').filter({ hasText: /objectRef/ }).waitFor();
      });
    } finally {
      page.off('request', seen);
    }
    const bad = urls.filter((u) => /nextFreeAddress/i.test(new URL(u).pathname));
    assert.deepEqual(bad, [], 'no request went to another API path');
  }));

  await t.test('CSRF: a cookie call without the token is refused', () => step('10-csrf', async () => {
    const r = await expectingRefusals(() => pageFetch('POST', 'ranges', { range: { name: '10.98.0.0/24' } }, { csrf: false }));
    assert.equal(r.status, 403, r.body);
    assert.equal(JSON.parse(r.body).error.code, 4031);
  }));

  await t.test('bulk import from CSV reports the bad rows', () => step('11-import', async () => {
    await nav(`#/import`);
    const csv = 'address,state,Owner\n10.20.1.200,Assigned,imp\nnot-an-ip,Assigned,x\n10.20.1.201,Reserved,imp\n10.20.1.202,Held,no-hold-time\n';
    await page.getByLabel('CSV file').setInputFiles({ name: 'records.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await expectingRefusals(async () => {
      await page.getByRole('button', { name: 'Import' }).click();
      await page.locator('#import-status', { hasText: /^Done/ }).waitFor();
    });
    assert.match(await page.locator('#import-status').textContent(), /2 of 4 rows applied, 2 refused/);
    const report = await page.locator('#import-report').textContent();
    assert.match(report, /3.*not an IP address/s);
    assert.match(report, /5/);
    assert.equal(await page.locator('#import-progress').evaluate((e) => [e.value, e.max].join('/')), '4/4');
    await checkLabels('the import');
  }));

  await t.test('administration: a role with Read only, a user in it', () => step('12-admin', async () => {
    await nav(`#/admin/roles`);
    await page.locator('#new-role').click();
    await fillDialog({ Name: 'readers', Read: true }, 'Create');
    await page.getByRole('cell', { name: 'readers', exact: true }).waitFor();
    await nav(`#/admin/users`);
    await page.locator('#new-user').click();
    await fillDialog({ 'Login name': 'viewer', Password: 'viewer-pw-1' }, 'Create');
    const row = page.getByRole('row').filter({ hasText: 'viewer' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Memberships' }).click();
    await fillDialog({ 'Role readers': true }, 'Save');
    await page.getByRole('row').filter({ hasText: 'viewer' }).filter({ hasText: 'readers' }).waitFor();
    await checkLabels('the administration');
    for (const tab of ['groups', 'properties', 'folders']) {
      await nav(`#/admin/${tab}`);
      await page.locator('#admin-body table').first().waitFor();
      await checkLabels(`administration: ${tab}`);
    }
  }));

  await t.test('a filter with spaces works in the tree; impossible addresses are refused, not turned into other ranges', () => step('12a-filters-octets', async () => {
    await nav('#/ranges');
    // URLSearchParams would send `Title=lab+and+...`, which the API reads as another filter.
    await page.getByLabel('Filter', { exact: true }).fill('Title=lab and name=^10.20');
    await page.getByLabel('Filter', { exact: true }).press('Enter');
    await page.getByRole('treeitem', { name: /^10\.20\.0\.0\/16/ }).waitFor();
    assert.equal(await page.getByText('No range matches').count(), 0);
    await nav('#/ranges');
    for (const bad of ['10.30.256.0/24', '10.30.1.0/33', '10.30.1.1/24', '10.20.300.1-10.20.300.9']) {
      await page.getByRole('button', { name: 'New range' }).click();
      await fillDialog({ 'CIDR or from-to': bad, Kind: 'range' }, 'Create');
      await page.locator('dialog[open] .error').filter({ hasText: /not an IP address|not a prefix length|host bits/ }).waitFor();
      await page.locator('dialog[open]').getByRole('button', { name: 'Cancel' }).click();
    }
    const r = await pageFetch('GET', 'ranges?filter=name%3D%5E10.30');
    assert.equal(JSON.parse(r.body).result.ranges.length, 0, `no range was made: ${r.body}`);
  }));

  await t.test('edit a range, sort sub-ranges, delete a range after confirming', () => step('12b-edit-delete', async () => {
    await nav('#/ranges');
    await page.getByRole('link', { name: '10.20.0.0/16' }).click();
    await page.getByRole('button', { name: 'Edit properties' }).click();
    await fillDialog({ Title: 'lab west', Locked: false }, 'Save');
    await page.locator('.details').getByText('lab west').waitFor();
    // Sub-ranges sort by a click on a column header, and say how.
    const header = page.getByRole('columnheader', { name: 'From' });
    await header.getByRole('button').click();
    await header.getByRole('button').click();
    assert.equal(await header.getAttribute('aria-sort'), 'descending');
    const firstFrom = await page.locator('table tbody tr').first().locator('td').nth(1).textContent();
    assert.equal(firstFrom, '10.20.1.128');
    // Delete asks first; cancelling keeps the range.
    await page.getByRole('link', { name: '10.20.1.128/25' }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Cancel' }).click();
    await page.locator('h1', { hasText: '10.20.1.128/25' }).waitFor();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Delete' }).click();
    await page.locator('#status', { hasText: 'Deleted 10.20.1.128/25' }).waitFor();
    await page.locator('h1', { hasText: '10.20.0.0/16' }).waitFor();
    assert.equal(await page.getByRole('link', { name: '10.20.1.128/25' }).count(), 0);
  }));

  await t.test('a user without write permission sees no actions, and writes are refused', () => step('13-read-only', async () => {
    await logout();
    await login('viewer', 'viewer-pw-1');
    assert.match(await page.locator('#who').textContent(), /read only/);
    assert.equal(await page.locator('[data-nav="admin"]').isHidden(), true);
    assert.equal(await page.getByRole('button', { name: 'New range' }).count(), 0);
    await page.getByRole('treeitem', { name: /^10\.20\.0\.0\/16/ }).waitFor();
    await page.getByRole('link', { name: '10.20.0.0/16' }).click();
    await page.getByRole('link', { name: '10.20.1.0/25' }).click();
    await page.locator('#address-map').waitFor();
    for (const name of ['Next free address', 'Allocate N', 'Split', 'Edit properties', 'Delete']) {
      assert.equal(await page.getByRole('button', { name }).count(), 0, `${name} is hidden`);
    }
    await page.locator(`#address-map [data-addr="${claimed}"]`).click();
    await page.locator('h1', { hasText: claimed }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Save' }).count(), 0);
    assert.equal(await page.getByLabel('Owner').getAttribute('readonly'), '');
    // Administration reached by URL offers nothing.
    await nav('#/admin/users');
    await page.getByText('needs the Administer permission').waitFor();
    for (const name of ['New user', 'Password', 'Delete', 'Memberships']) {
      assert.equal(await page.getByRole('button', { name }).count(), 0, `${name} is not offered`);
    }
    // The engine refuses what the UI hides.
    const r = await expectingRefusals(() => pageFetch('GET', 'ranges/10.20.1.0/25/nextFreeAddress?claim=true'));
    assert.equal(r.status, 400, r.body);
    assert.equal(JSON.parse(r.body).error.code, 1028);
  }));

  await t.test('log out ends the session on the server', () => step('14-logout', async () => {
    const before = (await context.cookies()).find((x) => x.name === '__Host-ipam_session');
    assert.ok(before, 'logged in');
    await logout();
    assert.equal((await context.cookies()).find((x) => x.name === '__Host-ipam_session'), undefined, 'the browser dropped the cookie');
    // The old token, sent again, is dead: the server closed the session.
    await context.addCookies([before]);
    const r = await page.evaluate(async () => (await fetch('/ui/session')).json());
    assert.equal(r.result, null);
    await context.clearCookies();
  }));

  assert.deepEqual(problems, [], 'no browser errors at all');
});
