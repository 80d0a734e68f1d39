// The console in real headless Chromium (Debian's `chromium` package), driven by playwright-core.
//
// With the harness in harness.mjs (its own `syncline`, Chromium, page helpers), creates
// the first platform admin and a tenant with the CLI, then clicks through the console as the
// tenant's owner and as the platform admin, saving a screenshot of each main page under
// `target/screenshots/`.
//
//   node --test frontend/tests/browser/    (environment: see harness.mjs)

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  OWNER_PASSWORD,
  TENANT,
  run,
  server,
  useServer,
  newPage,
  shot,
  signIn,
  nav,
  withServerOutput,
} from './harness.mjs';

const OWNER_EMAIL = 'owner@acme.test';
const PAIR = 'Acme store to D365';

useServer('syncline-browser-');

test('a tenant owner and the platform admin use the console in Chromium', { timeout: 180_000 }, async (t) => {
  await withServerOutput(() => run_scenario(t));
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
