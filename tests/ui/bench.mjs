// The UI with a large tree: how long the first page, a tree level of 100,000 subnets, its
// next page and a subnet's view take to become usable in headless Chromium, against the same
// measurements with 400 subnets in the container (the baseline, same process, same browser).
// Medians of ROUNDS runs; a ratio near 1 means the UI does not slow down with the tree's size.
//
// Run: cargo build --release -p ipam-central && cd tests/ui && npm ci &&
//      IPAM_CENTRAL_BIN=../../target/release/ipam-central node bench.mjs [--subnets N] [--json FILE]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const SUBNETS = Number(arg('--subnets', 100000));
const JSON_OUT = arg('--json', path.join(root, 'target/bench-ui.json'));
const ROUNDS = Number(arg('--rounds', 7));
const BIN = process.env.IPAM_CENTRAL_BIN || path.join(root, 'target/release/ipam-central');
const PW = 'bench-admin-pw-1';

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const dir = mkdtempSync(path.join(tmpdir(), 'ipam-ui-bench-'));
const env = { ...process.env, IPAM_ADMIN_PASSWORD: PW };
for (const k of ['IPAM_CONFIG', 'IPAM_DATABASE', 'IPAM_LISTEN', 'IPAM_DATA_DIR']) delete env[k];
const central = spawn(BIN, ['--listen', '127.0.0.1:0', '--data-dir', dir, '--log', 'warn', '--max-bulk-items', '10000'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const killer = setTimeout(() => { console.error('bench: over 20 minutes, stopping'); central.kill('SIGKILL'); process.exit(2); }, 20 * 60_000);
let browser;
try {
  const base = await new Promise((resolve, reject) => {
    let buf = '';
    central.stdout.on('data', (d) => { buf += d; const m = buf.match(/listening on (https:\/\/[0-9.:]+)\//); if (m) resolve(m[1]); });
    central.on('exit', (c) => reject(new Error(`ipam-central exited with ${c}: ${buf}`)));
  });
  browser = await chromium.launch({ executablePath: process.env.IPAM_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(60_000);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${base}/`);
  await page.getByLabel('User name').fill('administrator');
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#who').filter({ hasText: 'administrator' }).waitFor();
  const api = (method, p, body) => page.evaluate(async ([method, p, body]) => {
    const s = (await (await fetch('/ui/session')).json()).result;
    const r = await fetch(`/mmws/api/v2/${p}`, { method, headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrfToken }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
    return r.json();
  }, [method, p, body]);
  const container = (await api('POST', 'ranges', { range: { name: '10.0.0.0/8', isContainer: true } })).result.ref;

  let loads = 0;
  async function measure() {
    const out = { firstPage: [], expand: [], nextPage: [], subnetView: [] };
    for (let i = 0; i < ROUNDS; i++) {
      // First page: a fresh load of the UI (session cookie set) until the tree is usable.
      let t = performance.now();
      await page.goto(`${base}/?load=${++loads}#/ranges`);
      const item = page.getByRole('treeitem', { name: /^10\.0\.0\.0\/8/ });
      await item.waitFor();
      out.firstPage.push(performance.now() - t);
      // Expand the container: its first page of children shows.
      await item.focus();
      t = performance.now();
      await page.keyboard.press('ArrowRight');
      const kids = item.locator('[role=group] > [role=treeitem]');
      await kids.first().waitFor();
      out.expand.push(performance.now() - t);
      const more = item.locator('[role=group] > li.load-more button');
      if (await more.count()) {
        const before = await kids.count();
        t = performance.now();
        await more.click();
        await kids.nth(before).waitFor();
        out.nextPage.push(performance.now() - t);
      }
      // A subnet's view: details, address map and records.
      const first = await kids.first().getAttribute('data-ref');
      t = performance.now();
      await page.goto(`${base}/?load=${++loads}#/range/${first.split('/').pop()}`);
      await page.locator('#address-map [role=gridcell]').first().waitFor();
      out.subnetView.push(performance.now() - t);
    }
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.length ? median(v) : null]));
  }

  // Baseline: the same container with 400 subnets (two pages of a tree level), so that the
  // ratio isolates the level's size from the work of showing one page.
  const BASE = 400;
  await api('POST', 'rangeBatches', { ranges: Array.from({ length: BASE }, (_, i) => ({ name: `10.255.${i >> 2}.${(i & 3) * 64}/26` })) });
  const baseline = await measure();
  // Fill the container: SUBNETS /26 subnets, 10,000 a batch.
  const t0 = performance.now();
  for (let done = BASE; done < SUBNETS; done += 10000) {
    const n = Math.min(10000, SUBNETS - done);
    const ranges = Array.from({ length: n }, (_, j) => {
      const k = done - BASE + j;
      return { name: `10.${(k >> 10) & 255}.${(k >> 2) & 255}.${(k & 3) * 64}/26` };
    });
    await api('POST', 'rangeBatches', { ranges });
  }
  const fill = (performance.now() - t0) / 1000;
  const count = (await api('GET', `ranges?parentRef=${container}&limit=1`)).result.totalResults;
  const large = await measure();
  const ratio = Object.fromEntries(Object.keys(baseline).map((k) => [k, baseline[k] && large[k] ? +(large[k] / baseline[k]).toFixed(2) : null]));
  const report = {
    what: 'UI in headless Chromium: medians (ms) of first page (tree usable), expanding a container (first 200 children), the next page of that level, and a subnet view (address map shown)',
    rounds: ROUNDS, subnets: count, fillSeconds: +fill.toFixed(1),
    baselineMs: Object.fromEntries(Object.entries(baseline).map(([k, v]) => [k, v && +v.toFixed(1)])),
    largeMs: Object.fromEntries(Object.entries(large).map(([k, v]) => [k, v && +v.toFixed(1)])),
    ratioLargeToBaseline: ratio,
    browserErrors: errors,
  };
  console.log(JSON.stringify(report, null, 2));
  writeFileSync(JSON_OUT, JSON.stringify(report, null, 2));
  if (errors.length) process.exitCode = 1;
} finally {
  clearTimeout(killer);
  if (browser) await browser.close();
  central.kill('SIGTERM');
  await new Promise((r) => { if (central.exitCode !== null) r(); else central.on('exit', r); });
  rmSync(dir, { recursive: true, force: true });
}
