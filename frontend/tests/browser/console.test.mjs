// The console in real headless Chromium (Debian's `chromium` package), driven by playwright-core.
//
// Starts its own `syncline` (a fresh data directory, a free port, the sandbox emulators), creates
// the first platform admin and a tenant with the CLI, then clicks through the console as the
// tenant's owner and as the platform admin, saving a screenshot of each main page under
// `target/screenshots/`.
//
//   node --test frontend/tests/browser/
//
// Environment: SYNCLINE_BIN (default: target/debug/syncline under CARGO_TARGET_DIR or the repository's
// target/), CHROMIUM_PATH (default /usr/bin/chromium), SYNCLINE_SMTP_URL or SYNCLINE_TEST_SMTP_URL
// (given to the server if set), SCREENSHOT_DIR (default target/screenshots/ under the repository).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const targetDir = path.resolve(repo, process.env.CARGO_TARGET_DIR || 'target');
const bin = path.resolve(repo, process.env.SYNCLINE_BIN || path.join(targetDir, 'debug/syncline'));
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const shots = path.resolve(repo, process.env.SCREENSHOT_DIR || 'target/screenshots');

const ADMIN_EMAIL = 'admin@syncline.test';
const ADMIN_PASSWORD = 'admin-password-for-browser-tests';
const OWNER_EMAIL = 'owner@acme.test';
const OWNER_PASSWORD = 'owner-password-for-browser-tests';
const TENANT = 'Acme Outdoor';
const PAIR = 'Acme store to D365';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Environment of every syncline process: nothing inherited that could point it elsewhere. */
function baseEnv(dataDir, base) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SYNCLINE_') || key === 'DATABASE_URL' || key === 'REDIS_URL') continue;
    env[key] = value;
  }
  return {
    ...env,
    SYNCLINE_DATA_DIR: dataDir,
    SYNCLINE_LISTEN: base.host,
    SYNCLINE_PUBLIC_URL: base.href,
    SYNCLINE_LOG: 'warn',
    SYNCLINE_SANDBOX: 'on',
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A running `syncline serve`, its output kept for failure reports. */
class Server {
  constructor(dataDir) {
    this.dataDir = dataDir;
    this.output = '';
    this.child = null;
    this.exited = null;
  }

  async start() {
    // The free port can be taken between the probe and the bind: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      this.base = new URL(`http://127.0.0.1:${port}/`);
      this.env = baseEnv(this.dataDir, this.base);
      const smtp = process.env.SYNCLINE_SMTP_URL || process.env.SYNCLINE_TEST_SMTP_URL;
      const serverEnv = { ...this.env };
      if (smtp) serverEnv.SYNCLINE_SMTP_URL = smtp;
      if (process.env.SYNCLINE_MAIL_FROM) serverEnv.SYNCLINE_MAIL_FROM = process.env.SYNCLINE_MAIL_FROM;
      this.child = spawn(bin, ['serve'], { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
      const keep = (chunk) => { this.output += chunk.toString(); };
      this.child.stdout.on('data', keep);
      this.child.stderr.on('data', keep);
      if (await this.ready()) return;
      if (attempt >= 3) throw new Error(`syncline did not start:\n${this.output}`);
      await this.stop();
    }
  }

  /** Waits for /readyz, or for the process to exit. */
  async ready() {
    const deadline = Date.now() + 60_000;
    let gone = false;
    this.exited.then(() => { gone = true; });
    while (Date.now() < deadline && !gone) {
      try {
        const response = await fetch(new URL('readyz', this.base), { signal: AbortSignal.timeout(2000) });
        if (response.ok) return true;
      } catch {
        // not listening yet
      }
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 100))]);
    }
    return false;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Runs `syncline admin …` against the same data directory, without SMTP (links are printed). */
  async admin(args, extraEnv = {}) {
    const { stdout } = await run(bin, ['admin', ...args], { env: { ...this.env, ...extraEnv }, timeout: 60_000 });
    return stdout;
  }
}

let dataDir;
let server;
let browser;

before(async () => {
  assert.ok(existsSync(bin), `syncline binary not found at ${bin}: build it with cargo build -p syncline, or set SYNCLINE_BIN`);
  assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath}: apt-get install chromium, or set CHROMIUM_PATH`);
  await mkdir(shots, { recursive: true });
  dataDir = await mkdtemp(path.join(tmpdir(), 'syncline-browser-'));
  server = new Server(dataDir);
  await server.start();
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A fresh browser context (own cookies) whose pages fail the test on server errors or script errors. */
async function newPage(t) {
  const context = await browser.newContext({ baseURL: server.base.href, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('response', (r) => { if (r.status() >= 500) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  t.after(async () => {
    await context.close();
    assert.deepEqual(problems, [], 'no server errors or script errors');
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page, email, password) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname !== '/login');
  if (new URL(page.url()).pathname === '/console/select-tenant') {
    await page.getByRole('button', { name: TENANT }).click();
    await page.waitForURL((url) => url.pathname === '/console');
  }
}

async function nav(page, name, pathname) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  await page.waitForURL((url) => url.pathname === pathname);
}

test('a tenant owner and the platform admin use the console in Chromium', { timeout: 180_000 }, async (t) => {
  try {
    await run_scenario(t);
  } catch (error) {
    // eslint-disable-next-line no-control-regex
    const output = server.output.replace(/\x1b\[[0-9;]*m/g, '').slice(-8000);
    error.message += `\n--- syncline output ---\n${output}`;
    throw error;
  }
});

async function run_scenario(t) {
  const bootstrap = await server.admin(['bootstrap', '--email', ADMIN_EMAIL], { SYNCLINE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD });
  assert.match(bootstrap, /Platform admin created/);
  const created = await server.admin(['create-tenant', '--name', TENANT, '--owner-email', OWNER_EMAIL]);
  const link = created.match(/https?:\/\/\S+\/invite\/\S+/)?.[0];
  assert.ok(link, `no invitation link in:\n${created}`);

  // --- The owner accepts the invitation and signs in ------------------------------------------
  const owner = await newPage(t);
  const invitation = new URL(link);
  await owner.goto(invitation.pathname + invitation.search);
  await owner.getByRole('heading', { name: `Join ${TENANT}` }).waitFor();
  await owner.getByLabel('Your name').fill('Olivia Owner');
  await owner.getByLabel('Choose a password').fill(OWNER_PASSWORD);
  await owner.getByLabel('Repeat it').fill(OWNER_PASSWORD);
  await owner.getByRole('button', { name: 'Accept invitation' }).click();
  await owner.waitForURL((url) => url.pathname === '/login');
  await owner.getByText('Welcome aboard!').waitFor();
  await shot(owner, 'login');

  await signIn(owner, OWNER_EMAIL, OWNER_PASSWORD);
  assert.equal(new URL(owner.url()).pathname, '/console');
  await owner.getByRole('heading', { level: 1, name: TENANT }).waitFor();
  assert.equal(await owner.title(), 'Dashboard · Syncline');
  await shot(owner, 'dashboard');

  // --- Sandbox connections, each tested --------------------------------------------------------
  await nav(owner, 'Connections', '/console/connections');
  await owner.getByText('No connections yet').waitFor();
  await owner.locator('#create-sandbox').click();
  await owner.locator('#result.notice').filter({ hasText: 'Created' }).waitFor();
  const rows = owner.getByTestId('connection');
  await assertCount(rows, 2);
  for (const kind of ['shopify', 'd365']) {
    const row = owner.locator(`[data-testid="connection"][data-kind="${kind}"]`);
    await row.getByRole('button', { name: 'Test connection' }).click();
    await owner.locator('#result.notice').filter({ hasText: 'Connected to' }).waitFor();
    const status = owner.locator(`[data-testid="connection"][data-kind="${kind}"] .status`);
    await status.and(owner.locator('.status-ok')).waitFor();
    assert.equal((await status.textContent()).trim(), 'ok');
    // The green of a passed test, as the stylesheet renders it.
    assert.equal(await status.evaluate((e) => getComputedStyle(e).color), 'rgb(19, 115, 51)');
  }
  assert.equal(await owner.locator('#result.error').count(), 0);
  await shot(owner, 'connections');

  // --- A pair with the orders flow: create, open, activate, pause ---------------------------
  await nav(owner, 'Pairs', '/console/pairs');
  await owner.getByText('No pairs yet').waitFor();
  await owner.getByLabel('Name').fill(PAIR);
  await owner.getByLabel('Environment').selectOption('sandbox');
  const flows = owner.getByRole('group', { name: 'Flows' }).getByRole('checkbox');
  for (const box of await flows.all()) {
    if ((await box.getAttribute('value')) === 'orders') await box.check();
    else await box.uncheck();
  }
  await owner.getByRole('button', { name: 'Create pair' }).click();
  await owner.waitForURL((url) => /^\/console\/pairs\/[^/]+$/.test(url.pathname));
  await nav(owner, 'Pairs', '/console/pairs');
  const listed = owner.getByTestId('pair').filter({ hasText: PAIR });
  await assertText(listed.locator('.status'), 'draft');
  await shot(owner, 'pairs');
  await listed.getByRole('link', { name: PAIR }).click();
  await owner.waitForURL((url) => /^\/console\/pairs\/[^/]+$/.test(url.pathname));
  const pairUrl = new URL(owner.url()).pathname;
  await owner.getByRole('heading', { level: 1, name: PAIR }).waitFor();
  await owner.getByText('None registered').waitFor();

  await owner.locator('#activate').click();
  await assertText(owner.locator('#pair-status'), 'active');
  await owner.getByText('Active: Shopify webhooks are registered.').waitFor();
  const topics = owner.locator('#webhooks tbody tr td:first-child');
  await topics.first().waitFor();
  const registered = (await topics.allTextContents()).map((s) => s.trim());
  assert.ok(registered.includes('ORDERS_CREATE'), `registered topics: ${registered.join(', ')}`);
  await shot(owner, 'pair');

  // The same page after a reload: the state is the server's, not the POST response's.
  await owner.goto(pairUrl);
  await assertText(owner.locator('#pair-status'), 'active');

  const reason = 'Stock count in the warehouse';
  await owner.getByLabel('Reason').fill(reason);
  let confirmed = '';
  owner.once('dialog', (dialog) => { confirmed = dialog.message(); dialog.accept(); });
  await owner.locator('#pause').click();
  await assertText(owner.locator('#pair-status'), 'paused');
  assert.match(confirmed, /Pause this pair\?/);
  await assertText(owner.locator('#pause-reason'), `Paused: ${reason}`);
  await owner.locator('#webhooks').getByText('None registered').waitFor();
  await owner.locator('#activate').waitFor();
  await shot(owner, 'pair-paused');

  // --- Settings -----------------------------------------------------------------------------
  await nav(owner, 'Members', '/console/settings/members');
  await owner.getByRole('row').filter({ hasText: OWNER_EMAIL }).waitFor();
  await shot(owner, 'members');
  await nav(owner, 'API keys', '/console/settings/api-keys');
  await owner.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
  await shot(owner, 'api-keys');

  // --- The platform admin sees the tenant -----------------------------------------------------
  const admin = await newPage(t);
  await signIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD);
  await admin.waitForURL((url) => url.pathname === '/console/admin/tenants');
  await admin.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
  const tenantRow = admin.getByRole('row').filter({ hasText: TENANT });
  await assertText(tenantRow.locator('.status'), 'active');
  await shot(admin, 'admin-tenants');
}

test('the owner maps with a real drag, publishes, and follows orders to D365 through runs and replay', { timeout: 240_000 }, async (t) => {
  try {
    await mapping_scenario(t);
  } catch (error) {
    // eslint-disable-next-line no-control-regex
    const output = server.output.replace(/\x1b\[[0-9;]*m/g, '').slice(-8000);
    error.message += `\n--- syncline output ---\n${output}`;
    throw error;
  }
});

/** Drags a Shopify field onto a D365 field with the mouse: press, move in steps, release. */
async function dragField(page, sourcePath, target) {
  await page.locator('#source-search').fill(sourcePath.split('.').pop().replace('[]', ''));
  const source = page.locator(`.field-chip[data-path="${sourcePath}"]`);
  const drop = page.locator(`.target[data-target="${target}"]`);
  // The panes fit the window; bring them in, then each field within its own pane.
  await page.locator('#mapper').evaluate((e) => e.scrollIntoView());
  await source.evaluate((e) => e.scrollIntoView({ block: 'nearest' }));
  await drop.evaluate((e) => e.scrollIntoView({ block: 'nearest' }));
  const from = await source.boundingBox();
  const to = await drop.boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 12 });
  await page.locator('.target.drop-over').waitFor();
  await page.mouse.up();
  await drop.locator('.mapping').filter({ hasText: sourcePath }).waitFor();
}

/** Publishes the editor's document and waits for the page to show the new live version. */
async function publishMapping(page, note, version) {
  await page.locator('#publish-note').fill(note);
  // The page reloads itself after publishing, to show the version history.
  const reloaded = page.waitForEvent('load');
  await page.locator('#publish').click();
  await page.locator('#save-status').filter({ hasText: `Published ${version}` }).waitFor();
  await reloaded;
  await assertText(page.locator('#published-version'), version);
  await page.locator('.version-row').filter({ hasText: note }).waitFor();
}

/** Reloads the runs page until its newest run has `status`; answers that row. */
async function newestRunWithStatus(page, status) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    await page.goto('/console/runs');
    const first = page.getByTestId('run').first();
    if (await first.count()) {
      const text = (await first.locator('.status').textContent()).trim();
      if (text === status) return first;
    }
    if (Date.now() > deadline) throw new Error(`the newest run never became ${status}`);
    await page.waitForTimeout(500);
  }
}

async function sendTestOrder(page, pairUrl) {
  await page.goto(pairUrl);
  await page.locator('#test-order').click();
  await page.getByText(/Test order \d+ placed in the sandbox shop/).waitFor();
}

async function mapping_scenario(t) {
  const owner = await newPage(t);
  await signIn(owner, OWNER_EMAIL, OWNER_PASSWORD);
  await nav(owner, 'Pairs', '/console/pairs');
  await owner.getByTestId('pair').filter({ hasText: PAIR }).getByRole('link', { name: PAIR }).click();
  await owner.waitForURL((url) => /^\/console\/pairs\/[^/]+$/.test(url.pathname));
  const pairUrl = new URL(owner.url()).pathname;
  if ((await owner.locator('#pair-status').textContent()).trim() !== 'active') {
    await owner.locator('#activate').click();
    await assertText(owner.locator('#pair-status'), 'active');
  }
  await nav(owner, 'Runs', '/console/runs');
  await owner.getByText('No runs yet — send a test order').waitFor();
  await shot(owner, 'runs-empty');

  // --- The mapper: a real pointer drag changes the live preview, then publish -------------------
  await owner.goto(pairUrl);
  await owner.locator('#mapping-orders').click();
  await owner.waitForURL((url) => url.pathname.endsWith('/mappings/orders'));
  assert.match(await owner.title(), /^Mapping · orders · /);
  await owner.locator('#mapper[data-preview-state="ok"]').waitFor();
  const output = owner.locator('#preview-output');
  assert.ok((await output.textContent()).includes('"LineDescription": "Aviator sunglasses"'), 'the template maps the line name');
  await dragField(owner, 'line_items[].sku', 'SalesOrderLines.LineDescription');
  await output.filter({ hasText: '"LineDescription": "SKU2006-001"' }).waitFor();
  await owner.locator('#origin').filter({ hasText: 'editing default' }).waitFor();
  await shot(owner, 'mapper');
  await publishMapping(owner, 'SKU as line description', 'v1');

  // --- An order through the Shopify emulator arrives in D365, with v1 --------------------------
  await sendTestOrder(owner, pairUrl);
  const done = await newestRunWithStatus(owner, 'succeeded');
  const salesOrder = (await done.locator('td').nth(5).textContent()).trim();
  assert.match(salesOrder, /\S/, 'the run shows the D365 sales order number');
  await shot(owner, 'runs');
  await done.getByRole('link').first().click();
  await owner.waitForURL((url) => /^\/console\/runs\/[^/]+$/.test(url.pathname));
  await assertText(owner.getByTestId('d365-ref'), salesOrder);
  await owner.getByText('v1', { exact: true }).waitFor();
  await shot(owner, 'run');

  // --- Break the mapping: item numbers from product titles; the run fails and says why ---------
  await owner.goto(`${pairUrl}/mappings/orders`);
  await owner.locator('#mapper[data-preview-state="ok"]').waitFor();
  await dragField(owner, 'line_items[].title', 'SalesOrderLines.ItemNumber');
  await output.filter({ hasText: '"ItemNumber": "AVIATOR SUNGLASSES"' }).waitFor();
  await publishMapping(owner, 'item number from title (wrong)', 'v2');
  await sendTestOrder(owner, pairUrl);
  const dead = await newestRunWithStatus(owner, 'dead');
  // Product titles are no item numbers: too long for the field, or no such released product.
  const broken = /SalesOrderLines\.ItemNumber|unknown SKU/;
  assert.match(await dead.textContent(), broken);
  await dead.getByRole('link').first().click();
  await owner.waitForURL((url) => /^\/console\/runs\/[^/]+$/.test(url.pathname));
  const deadRunUrl = new URL(owner.url()).pathname;
  await owner.getByTestId('run-error').filter({ hasText: broken }).waitFor();
  await shot(owner, 'run-dead');

  // --- Fix it (keyboard/click alternative this time), publish, replay: it succeeds -------------
  await owner.goto(`${pairUrl}/mappings/orders`);
  await owner.locator('#source-search').fill('sku');
  await owner.locator('.field-chip[data-path="line_items[].sku"]').press('Enter');
  await owner.locator('.target[data-target="SalesOrderLines.ItemNumber"]').click();
  await owner.locator('.target[data-target="SalesOrderLines.ItemNumber"] .mapping').filter({ hasText: 'line_items[].sku' }).waitFor();
  await output.filter({ hasText: '"ItemNumber": "SKU2006-001"' }).waitFor();
  await publishMapping(owner, 'item number from SKU again', 'v3');
  await owner.getByRole('link', { name: 'Compare versions' }).click();
  await owner.locator('tr.diff-changed').filter({ hasText: 'SalesOrderLines.ItemNumber' }).waitFor();
  await shot(owner, 'mapping-diff');

  await owner.goto(deadRunUrl);
  await owner.getByRole('button', { name: 'Replay' }).click();
  const deadline = Date.now() + 60_000;
  for (;;) {
    await owner.goto(deadRunUrl);
    const status = (await owner.locator('h1 .status').textContent()).trim();
    if (status === 'succeeded') break;
    if (Date.now() > deadline) throw new Error(`the replayed run is still ${status}`);
    await owner.waitForTimeout(500);
  }
  assert.match((await owner.getByTestId('d365-ref').textContent()).trim(), /\S/);
  await owner.getByText('v3', { exact: true }).waitFor();
  await shot(owner, 'run-replayed');
}

/** Waits (with Playwright's polling) until a locator's trimmed text is `expected`. */
async function assertText(locator, expected) {
  await locator.filter({ hasText: new RegExp(`^\\s*${escape(expected)}\\s*$`) }).waitFor();
}

async function assertCount(locator, expected) {
  await locator.nth(expected - 1).waitFor();
  assert.equal(await locator.count(), expected);
}

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
