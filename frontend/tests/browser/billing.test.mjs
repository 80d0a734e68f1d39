// Billing in real headless Chromium, with the same harness as console.test.mjs: the platform
// admin adds the "Connect" plan ($599 per production pair per month, billed annually),
// subscribes the tenant to two production pairs with 20% tax and issues the current period's
// invoice; the tenant owner opens Billing (plan, entitlement, fair-use meters, usage chart)
// and the invoice, which is screenshotted, printed to PDF by Chromium (`page.pdf()`) and
// downloaded as CSV. Artifacts: target/screenshots/billing*.png, invoice.png, invoice.pdf.
//
//   SYNCLINE_BIN=$CARGO_TARGET_DIR/debug/syncline node --test frontend/tests/browser/billing.test.mjs

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
const OWNER_EMAIL = 'billing-owner@acme.test';
const OWNER_PASSWORD = 'owner-password-for-browser-tests';
const TENANT = 'Acme Outdoor';

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
  dataDir = await mkdtemp(path.join(tmpdir(), 'syncline-billing-'));
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

test('the admin bills a tenant per pair and the owner reads, prints and downloads the invoice', { timeout: 180_000 }, async (t) => {
  try {
    await billingScenario(t);
  } catch (error) {
    // eslint-disable-next-line no-control-regex
    const output = server.output.replace(/\x1b\[[0-9;]*m/g, '').slice(-8000);
    error.message += `\n--- syncline output ---\n${output}`;
    throw error;
  }
});

async function billingScenario(t) {
  const bootstrap = await server.admin(['bootstrap', '--email', ADMIN_EMAIL], { SYNCLINE_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD });
  assert.match(bootstrap, /Platform admin created/);
  const created = await server.admin(['create-tenant', '--name', TENANT, '--owner-email', OWNER_EMAIL]);
  const link = created.match(/https?:\/\/\S+\/invite\/\S+/)?.[0];
  assert.ok(link, `no invitation link in:\n${created}`);

  const owner = await newPage(t);
  const invitation = new URL(link);
  await owner.goto(invitation.pathname + invitation.search);
  await owner.getByLabel('Your name').fill('Olivia Owner');
  await owner.getByLabel('Choose a password').fill(OWNER_PASSWORD);
  await owner.getByLabel('Repeat it').fill(OWNER_PASSWORD);
  await owner.getByRole('button', { name: 'Accept invitation' }).click();
  await owner.waitForURL((url) => url.pathname === '/login');
  await signIn(owner, OWNER_EMAIL, OWNER_PASSWORD);
  // Billing sits in the user menu (owners only), keeping the main navigation on one line.
  await owner.locator('.usermenu').getByRole('link', { name: 'Billing', exact: true }).click();
  await owner.waitForURL((url) => url.pathname === '/console/billing');
  await owner.locator('#no-subscription').waitFor();

  // --- The platform admin: the plan catalogue, the subscription, the invoice -----------------
  const admin = await newPage(t);
  await signIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD);
  await nav(admin, 'Plans & billing', '/console/admin/billing');
  const form = admin.locator('#plan-form');
  await form.getByLabel('Code').fill('connect');
  await form.getByLabel('Plan name').fill('Connect');
  await form.getByLabel('Monthly price per pair').fill('599.00');
  await form.getByLabel('Currency').fill('USD');
  await form.getByLabel('Billing').selectOption('year');
  await form.getByLabel('Included transactions').fill('10000');
  await form.getByLabel('Included API calls').fill('100000');
  await form.getByLabel('Free sandbox pairs').fill('2');
  await form.getByRole('button', { name: 'Add plan' }).click();
  await admin.getByText('Added the Connect plan.').waitFor();
  await assertCount(admin.getByTestId('plan'), 1);

  const row = admin.locator(`[data-testid="tenant-billing"][data-tenant="${TENANT}"]`);
  const subscription = row.getByRole('form', { name: `Subscription of ${TENANT}` });
  await subscription.getByLabel('Plan').selectOption('connect');
  await subscription.getByLabel('Pairs').fill('2');
  await subscription.getByLabel('Tax %').fill('20');
  await subscription.getByRole('button', { name: 'Save' }).click();
  await admin.getByText('Subscription saved: Connect plan, 2 production pair(s).').waitFor();
  await shot(admin, 'billing-admin');

  await admin.locator(`[data-testid="tenant-billing"][data-tenant="${TENANT}"]`).getByRole('button', { name: 'Issue current period' }).click();
  await admin.waitForURL((url) => /\/console\/admin\/billing\/tenants\/[^/]+\/invoices\/[^/]+$/.test(url.pathname));
  await admin.locator('#invoice').waitFor();
  await assertText(admin.locator('#invoice-state'), 'open');

  // --- The owner: billing page and the invoice --------------------------------------------------
  await owner.goto('/console/billing');
  await assertText(owner.locator('#plan-name'), 'Connect');
  await owner.locator('#pairs-in-use').filter({ hasText: '0 in use of 2 entitled' }).waitFor();
  await assertCount(owner.getByTestId('meter'), 2);
  await owner.locator('svg.usage-chart').waitFor();
  assert.match(await owner.locator('svg.usage-chart desc').textContent(), /billable transactions in the last \d+ day\(s\) of this period/);
  const invoiceRow = owner.getByTestId('invoice');
  await assertCount(invoiceRow, 1);
  await shot(owner, 'billing');

  await invoiceRow.getByRole('link', { name: /^SYN-\d{6}$/ }).click();
  await owner.waitForURL((url) => /^\/console\/billing\/invoices\/[^/]+$/.test(url.pathname));
  await owner.getByRole('heading', { level: 1, name: /^Invoice SYN-\d{6}$/ }).waitFor();
  await assertText(owner.locator('#billed-to'), TENANT);
  await assertCount(owner.getByTestId('invoice-line'), 2);
  // A full year for each of two pairs: 2 × 12 × 599.00, 20% tax.
  await assertText(owner.locator('#subtotal'), '14376.00');
  await assertText(owner.locator('#tax'), '2875.20');
  await assertText(owner.locator('#total'), '17251.20 USD');
  await owner.locator('#instructions').filter({ hasText: 'by bank transfer' }).waitFor();
  await shot(owner, 'invoice');

  // Printed by Chromium: the navigation is hidden by the print stylesheet.
  await owner.emulateMedia({ media: 'print' });
  assert.equal(await owner.locator('header.topbar').isVisible(), false, 'no navigation on paper');
  const pdf = await owner.pdf({ path: path.join(shots, 'invoice.pdf'), format: 'A4', printBackground: true });
  assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
  assert.ok(pdf.length > 5000, `a real PDF (${pdf.length} bytes)`);
  await owner.emulateMedia({ media: 'screen' });

  // The CSV download.
  const csvHref = await owner.locator('#download-csv').getAttribute('href');
  const csv = await owner.request.get(csvHref);
  assert.equal(csv.status(), 200);
  assert.match(csv.headers()['content-type'], /^text\/csv/);
  const text = await csv.text();
  const lines = text.trim().split(/\r?\n/);
  assert.equal(lines.length, 1 + 2 + 3, text);
  assert.match(lines.at(-1), /"Total",,,,17251\.20,"USD"$/);

  // --- The admin records the bank transfer; the owner sees it paid ----------------------------
  await admin.goto('/console/admin/billing');
  const open = admin.locator(`[data-testid="tenant-billing"][data-tenant="${TENANT}"]`);
  await open.getByPlaceholder('transfer reference').fill('TRF-2026-001');
  await open.getByRole('button', { name: 'Mark paid' }).click();
  await admin.getByText(/Invoice SYN-\d{6} marked paid\./).waitFor();
  await owner.goto('/console/billing');
  await assertText(owner.getByTestId('invoice').locator('.status'), 'paid');
}

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
