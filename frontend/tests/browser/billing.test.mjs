// Billing in real headless Chromium, with the same harness as console.test.mjs: the platform
// admin adds the "Connect" plan ($599 per production pair per month, billed annually),
// subscribes the tenant to two production pairs with 20% tax and issues the current period's
// invoice; the tenant owner opens Billing (plan, entitlement, fair-use meters, usage chart)
// and the invoice, which is screenshotted, printed to PDF by Chromium (`page.pdf()`) and
// downloaded as CSV. Artifacts: target/screenshots/billing*.png, invoice.png, invoice.pdf.
//
//   SYNCLINE_BIN=$CARGO_TARGET_DIR/debug/syncline node --test frontend/tests/browser/billing.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  OWNER_PASSWORD,
  TENANT,
  shots,
  server,
  useServer,
  newPage,
  shot,
  signIn,
  nav,
  withServerOutput,
} from './harness.mjs';

const OWNER_EMAIL = 'billing-owner@acme.test';

useServer('syncline-billing-');

test('the admin bills a tenant per pair and the owner reads, prints and downloads the invoice', { timeout: 180_000 }, async (t) => {
  await withServerOutput(() => billingScenario(t));
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
