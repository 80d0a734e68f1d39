// What the browser tests share: a `syncline serve` of their own (a fresh data directory, a
// free port, the sandbox emulators), headless Chromium (Debian's `chromium` package) driven by
// playwright-core, and helpers for pages, sign-in and screenshots.
//
// Environment: SYNCLINE_BIN (default: target/debug/syncline under CARGO_TARGET_DIR or the repository's
// target/), CHROMIUM_PATH (default /usr/bin/chromium), SYNCLINE_SMTP_URL or SYNCLINE_TEST_SMTP_URL
// (given to the server if set), SCREENSHOT_DIR (default target/screenshots/ under the repository).

import { before, after } from 'node:test';
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

export const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const targetDir = path.resolve(repo, process.env.CARGO_TARGET_DIR || 'target');
export const bin = path.resolve(repo, process.env.SYNCLINE_BIN || path.join(targetDir, 'debug/syncline'));
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const shots = path.resolve(repo, process.env.SCREENSHOT_DIR || 'target/screenshots');

export const ADMIN_EMAIL = 'admin@syncline.test';
export const ADMIN_PASSWORD = 'admin-password-for-browser-tests';
export const OWNER_PASSWORD = 'owner-password-for-browser-tests';
export const TENANT = 'Acme Outdoor';

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
/** The running server of this test file (set by `useServer`). */
export let server;
let browser;

/** Starts a fresh `syncline serve` and Chromium before this file's tests and stops them after;
 * `prefix` names the temporary data directory. */
export function useServer(prefix) {
  before(async () => {
    assert.ok(existsSync(bin), `syncline binary not found at ${bin}: build it with cargo build -p syncline, or set SYNCLINE_BIN`);
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath}: apt-get install chromium, or set CHROMIUM_PATH`);
    await mkdir(shots, { recursive: true });
    dataDir = await mkdtemp(path.join(tmpdir(), prefix));
    server = new Server(dataDir);
    await server.start();
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });
}

/** A fresh browser context (own cookies) whose pages fail the test on server errors or script errors. */
export async function newPage(t) {
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

export async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

export async function signIn(page, email, password) {
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

export async function nav(page, name, pathname) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  await page.waitForURL((url) => url.pathname === pathname);
}

/** Runs a scenario; a failure carries the end of the server's output. */
export async function withServerOutput(scenario) {
  try {
    await scenario();
  } catch (error) {
    // eslint-disable-next-line no-control-regex
    const output = server.output.replace(/\x1b\[[0-9;]*m/g, '').slice(-8000);
    error.message += `\n--- syncline output ---\n${output}`;
    throw error;
  }
}
