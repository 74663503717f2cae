// The business console in a real browser (Debian's chromium, headless, driven by playwright-core),
// used as a business admin who has only a console link would use it: open the link, create an API
// key, add a webhook and send it a test, connect a local Kustomer and a local Krayin (choosing
// Krayin's stages from its pipeline), add a CRM link and search it, set the page's bot and ask it
// as a customer would, read the analytics' charts
// and the audit log. Every page is checked with axe-core (no serious or critical violation), is
// used once with the keyboard alone, and is photographed at 1280 px and 375 px into
// tests/browser/screenshots/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { PUBLIC_URL, admin, api, newBusiness, unique, waitFor } from '../e2e/support.mjs';
import { kustomerOrg } from '../e2e/crm/connectors.mjs';
import { DEFAULT_SCOPES, OAUTH, startHubSpot } from '../e2e/crm/hubspot.mjs';
import { sanctumToken, startKrayin } from '../e2e/crm/krayin.mjs';
import { startSalesforce } from '../e2e/crm/salesforce.mjs';
import { CUSTOM_PATH, DEFAULT_CREDENTIALS, TEXT_PATH, startCrm } from '../e2e/links/crm-server.mjs';

const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const CHROMIUM = process.env.CRM_EDGE_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT_MS = 20_000;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PAGES = ['overview', 'alerts', 'api-access', 'webhooks', 'channels', 'connectors', 'links', 'bot', 'analytics', 'audit'];

let browser;
let business;
let receiver;
let kustomer;
let krayin;
let crm;
/** Krayin's API token (a Sanctum token: `id|secret`). */
let krayinToken;
let hubspot;
let salesforce;
const HUBSPOT_TOKEN = 'pat-na1-console-test';

/** A customer's webhook endpoint: answers 200 and keeps what it was sent. */
async function startReceiver() {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hooks/chat`, received, close: () => new Promise((r) => server.close(r)) };
}

/** Opens a new console link in a fresh browser at `width` px, signed in; returns the page. */
async function signedIn(width) {
  const issued = await api(business.key, 'POST', '/api-console-links');
  assert.equal(issued.status, 201, issued.text);
  const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => message.type() === 'error' && !/status of 4\d\d/.test(message.text()) && errors.push(message.text()));
  await page.goto(issued.body.url);
  // What the console asked for during the sign-in, and how each ended, so that a sign-in that
  // does not arrive says which request it waits for.
  const asked = new Map();
  const started = Date.now();
  const label = (req) => `${req.method()} ${new URL(req.url()).pathname}${new URL(req.url()).search}`;
  page.on('request', (req) => asked.set(req, `${label(req)} (asked at ${Date.now() - started} ms) pending`));
  page.on('requestfinished', async (req) => {
    const res = await req.response().catch(() => null);
    asked.set(req, `${label(req)} ${res ? res.status() : '?'} at ${Date.now() - started} ms`);
  });
  page.on('requestfailed', (req) => asked.set(req, `${label(req)} failed at ${Date.now() - started} ms: ${req.failure()?.errorText}`));
  await page.getByRole('button', { name: 'Open the console' }).click();
  try {
    await page.getByRole('heading', { level: 1, name: business.business.name }).waitFor({ timeout: WAIT_MS });
  } catch (error) {
    const main = await page.locator('main').innerText().catch(() => '(no main)');
    throw new Error(`${error.message}\nrequests: ${[...asked.values()].join('; ')}\nerrors: ${errors.join(' | ')}\nmain shows: ${main.slice(0, 300)}`);
  }
  return { context, page, errors };
}

/** Shows the console's page `name` (loaded again when it is the one shown). */
async function show(page, name) {
  const address = `${PUBLIC_URL}/console#/${name}`;
  if (page.url() === address) await page.reload();
  else await page.goto(address);
  await page.locator('main h1').waitFor({ timeout: WAIT_MS });
  await page.locator('main .loading').waitFor({ state: 'detached', timeout: WAIT_MS });
}

/** Runs `click`, and waits for the change it sends to be answered 200 (a toast of an earlier save
 * may still be on the screen). */
async function saved(page, click) {
  const [answer] = await Promise.all([
    page.waitForResponse((res) => res.request().method() === 'PATCH', { timeout: WAIT_MS }),
    click(),
  ]);
  assert.equal(answer.status(), 200, `${answer.url()}: ${await answer.text()}`);
}

/** Runs `click`, and waits for the `method` call to `path` it sends to be answered `status`. */
async function answered(page, method, path, status, click) {
  const [answer] = await Promise.all([
    page.waitForResponse((res) => res.request().method() === method && new URL(res.url()).pathname === path, { timeout: WAIT_MS }),
    click(),
  ]);
  assert.equal(answer.status(), status, `${method} ${path}: ${await answer.text()}`);
}

/** axe-core's serious and critical violations on the page as it is now. */
async function violations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
}

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  business = await newBusiness({ name: unique('Acme Outdoor'), default_country: 'IE' });
  receiver = await startReceiver();
  // The key expires in ten days (the seed's "Monitor API key expiration") and holds every role
  // the fake knows, two of which no feature uses ("least privilege").
  kustomer = await kustomerOrg({ key: { expiresAt: Date.now() + 10 * 86_400_000 } });
  krayinToken = sanctumToken(1);
  krayin = await startKrayin({ tokens: { [krayinToken]: { user: { id: 1, name: 'Krayin Admin' } } }, rateLimit: null });
  crm = await startCrm();
  hubspot = await startHubSpot({ tokens: { [HUBSPOT_TOKEN]: {} }, rateLimit: null });
  salesforce = await startSalesforce();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await receiver?.close();
  await kustomer?.kustomer?.close();
  await krayin?.close();
  await crm?.close();
  await hubspot?.close();
  await salesforce?.close();
});

describe('the business console', () => {
  test('a link signs in once; the session shows the business, and signing out ends it', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      const cookies = await context.cookies();
      const cookie = cookies.find((c) => c.name === '__Host-crm-edge-console');
      assert.ok(cookie?.httpOnly && cookie.secure && cookie.sameSite === 'Strict', JSON.stringify(cookie));
      assert.equal(await page.evaluate(() => document.cookie), '', 'no script can read the session');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Signed out' }).waitFor({ timeout: WAIT_MS });
      await page.reload();
      await page.getByRole('heading', { name: 'Signed out' }).waitFor({ timeout: WAIT_MS });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('API access: a key is created and shown once, works, its use shows by endpoint and period, and it is revoked; the returning customers’ window is saved', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      await show(page, 'api-access');
      await page.getByLabel('Name', { exact: true }).fill('Salesforce production');
      await page.getByRole('button', { name: 'Create API key' }).click();
      const shown = page.locator('[data-secret]');
      await shown.waitFor({ timeout: WAIT_MS });
      const key = (await shown.textContent()).trim();
      assert.match(key, /^cek_[0-9a-f]{48}$/);
      assert.equal((await api(key, 'GET', '/api-business')).status, 200, 'the new key works');

      // Its use shows: its last use in the list, its requests in the usage of the key chosen.
      const prefix = key.slice(0, 12);
      await waitFor(async () => (await api(business.key, 'GET', '/api-keys')).body.api_keys
        .find((one) => one.prefix === prefix)?.last_used_at, WAIT_MS, 'the new key\'s request counted');
      await show(page, 'api-access');
      const keyRow = page.locator('tr', { hasText: 'Salesforce production' });
      await keyRow.getByText('GET /api-business from').waitFor({ timeout: WAIT_MS });
      await page.getByLabel('Key', { exact: true }).selectOption({ label: `Salesforce production (${prefix})` });
      await page.waitForURL(/#\/api-access\?key=/, { timeout: WAIT_MS });
      const usage = page.getByRole('region', { name: 'Usage' });
      await usage.getByRole('cell', { name: 'GET /api-business' }).waitFor({ timeout: WAIT_MS });
      await usage.getByRole('link', { name: 'last 48 hours' }).click();
      await page.waitForURL(/by=hour&key=/, { timeout: WAIT_MS });
      await page.getByRole('region', { name: 'Usage' }).getByRole('cell', { name: 'GET /api-business' }).waitFor({ timeout: WAIT_MS });
      assert.equal(await page.getByLabel('Key', { exact: true }).inputValue() !== '', true, 'the key stays chosen');
      await page.getByRole('region', { name: 'Usage' }).screenshot({ path: join(SCREENSHOTS, 'console-api-usage-1280.png') });
      await show(page, 'api-access');

      const returning = page.getByRole('form', { name: 'Returning customers' });
      const hours = returning.getByLabel('Hours before a returning customer gets a new conversation');
      assert.equal(await hours.inputValue(), '96', 'four days unless set');
      await hours.fill('9000');
      await returning.getByRole('button', { name: 'Save' }).click();
      await returning.locator('[aria-invalid="true"][name="new_conversation_after_hours"]').waitFor({ timeout: WAIT_MS });
      await hours.fill('24');
      await returning.getByRole('button', { name: 'Save' }).click();
      await waitFor(async () => (await api(key, 'GET', '/api-business')).body.new_conversation_after_hours === 24, WAIT_MS, 'the window saved');
      const row = page.locator('tr', { hasText: 'Salesforce production' });
      await row.waitFor();
      page.once('dialog', (dialog) => dialog.accept());
      await row.getByRole('button', { name: 'Revoke' }).click();
      await row.getByText(/revoked/).waitFor({ timeout: WAIT_MS });
      assert.equal((await api(key, 'GET', '/api-business')).status, 401, 'the revoked key stops');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  for (const width of [375, 1280]) {
    test(`API access at ${width} px: the month's running cost shows what the business's own calls used, priced by kind`, async () => {
      const before = (await api(business.key, 'GET', '/api-cost')).body;
      assert.equal((await api(business.key, 'GET', '/api-keys')).status, 200);
      // Stored off the request path, every couple of seconds on the local stack.
      const counted = await waitFor(async () => {
        const out = (await api(business.key, 'GET', '/api-cost')).body;
        return out.month_to_date.picodollars > before.month_to_date.picodollars ? out : null;
      }, WAIT_MS, 'the calls counted in the cost');
      assert.ok(counted.units.some((unit) => unit.meter === 'worker_requests' && unit.count > 0), JSON.stringify(counted));
      const { context, page, errors } = await signedIn(width);
      try {
        await show(page, 'api-access');
        const region = page.getByRole('region', { name: `Running cost, ${counted.month}` });
        await region.waitFor({ timeout: WAIT_MS });
        const figure = region.locator('.figure').first();
        assert.match(await figure.textContent(), /^\$\d+\.\d+$/, 'the month to date in dollars');
        await region.getByRole('cell', { name: 'Requests' }).waitFor({ timeout: WAIT_MS });
        await region.getByRole('cell', { name: 'Database rows read' }).waitFor({ timeout: WAIT_MS });
        await region.screenshot({ path: join(SCREENSHOTS, `console-cost-${width}.png`) });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });

    test(`API access at ${width} px: a customer is erased after a confirm, and the answer says what was deleted`, async () => {
      const synced = await api(business.key, 'POST', '/api-customers-sync', {
        customers: [{ name: 'Erin Erased', email: `${unique('erin')}@example.com` }],
      });
      assert.equal(synced.status, 200, synced.text);
      const id = synced.body.results.details[0].customer_id;
      const { context, page, errors } = await signedIn(width);
      try {
        await show(page, 'api-access');
        const erase = page.getByRole('form', { name: 'Erase a customer' });
        await erase.getByLabel('Customer id').fill(id);
        let asked = '';
        page.once('dialog', (dialog) => {
          asked = dialog.message();
          return dialog.accept();
        });
        await erase.getByRole('button', { name: 'Erase' }).click();
        const region = page.getByRole('region', { name: 'Erase a customer' });
        await region.getByText('Erased', { exact: true }).waitFor({ timeout: WAIT_MS });
        assert.match(asked, new RegExp(`Erase customer ${id}\\?`), 'asked first, naming the customer');
        await region.getByText('0 messages, 0 conversations, 0 files and 0 CRM link records deleted.').waitFor({ timeout: WAIT_MS });
        assert.equal((await api(business.key, 'GET', `/api-customers?id=${id}`)).status, 404, 'the customer is gone');
        await region.screenshot({ path: join(SCREENSHOTS, `console-erase-customer-${width}.png`) });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  }

  test('webhooks: an error is shown by its field; a webhook with every event is added, tested and its delivery seen', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      await show(page, 'webhooks');
      await page.getByLabel('Name (required)').fill('CRM sync');
      await page.getByLabel('URL (required)').fill('ftp://not-a-webhook');
      await page.getByRole('button', { name: 'Add webhook' }).click();
      const url = page.getByLabel('URL (required)');
      await page.locator('[aria-invalid="true"][name="url"]').waitFor({ timeout: WAIT_MS });
      const described = await url.getAttribute('aria-describedby');
      const message = await page.locator(`#${described.split(' ').pop()}`).textContent();
      assert.match(message, /url/i, `the error names the URL: ${message}`);

      await url.fill(receiver.url);
      assert.equal(await page.locator('input[type=checkbox][name^="events."]:checked').count(), 10);
      await page.getByRole('button', { name: 'Add webhook' }).click();
      const secret = page.locator('[data-secret]');
      await secret.waitFor({ timeout: WAIT_MS });
      assert.match((await secret.textContent()).trim(), /^whsec_/);
      await page.getByRole('link', { name: 'Open CRM sync' }).click();
      await page.getByRole('heading', { level: 1, name: 'CRM sync' }).waitFor({ timeout: WAIT_MS });
      await page.getByRole('button', { name: 'Send a test event' }).click();
      await page.getByText(/delivered: HTTP 200/).waitFor({ timeout: WAIT_MS });
      assert.ok(receiver.received.length >= 1, 'the receiver got the test event');
      assert.ok(receiver.received[0].headers['webhook-signature'], 'signed');
      // Changed from its page: one event fewer.
      const edit = page.getByRole('form', { name: 'Change the webhook' });
      await edit.getByLabel('customer.updated').uncheck();
      await saved(page, () => edit.getByRole('button', { name: 'Save changes' }).click());
      const hooks = await api(business.key, 'GET', '/api-webhooks');
      const hook = hooks.body.webhooks.find((w) => w.name === 'CRM sync');
      assert.equal(hook.events.length, 9);
      assert.ok(!hook.events.includes('customer.updated'));
      await page.getByRole('heading', { level: 1, name: 'CRM sync' }).waitFor({ timeout: WAIT_MS });
      await page.locator('main td', { hasText: 'delivered' }).first().waitFor({ timeout: WAIT_MS }).catch(() => {});
      assert.deepEqual(await violations(page), [], 'a webhook\'s page');
      await page.screenshot({ path: join(SCREENSHOTS, 'console-webhook-1280.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('CRM integrations: Kustomer and Krayin connect, test, change their settings (a bad field mapping refused beside its field) and rollout, show their KPIs beside the targets, Krayin takes its stages from its pipeline, and a connector is deleted', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      await show(page, 'connectors');
      const kForm = page.getByRole('form', { name: 'Connect Kustomer' });
      await kForm.getByLabel('API key (required)').fill(kustomer.apiKey);
      await kForm.getByLabel('Organization ID').fill(kustomer.org);
      await kForm.getByText('Another API address').click();
      await kForm.getByLabel('API base URL').fill(kustomer.kustomer.url);
      await kForm.getByRole('button', { name: 'Connect Kustomer' }).click();
      await page.getByRole('heading', { level: 1, name: 'Kustomer' }).waitFor({ timeout: WAIT_MS });
      await page.getByRole('button', { name: 'Test the connection' }).click();
      await page.getByText('The CRM answered as ChatBot Integration.').waitFor({ timeout: WAIT_MS });
      // The test's warnings (the key's expiry, the roles beyond need) and the permissions it read.
      await page.getByText(/the API key expires at .* \(in (9|10) days\)/).waitFor({ timeout: WAIT_MS });
      await page.getByText(/holds 2 role\(s\) no feature here uses \(org\.permission\.message\.read, org\.permission\.note\.read\)/).first().waitFor({ timeout: WAIT_MS });
      const facts = page.locator('dl.facts');
      assert.equal(await facts.locator('dt', { hasText: 'Roles no feature uses' }).locator('xpath=following-sibling::dd[1]').textContent(),
        'org.permission.message.read, org.permission.note.read');
      assert.equal(await facts.locator('dt', { hasText: 'Missing' }).locator('xpath=following-sibling::dd[1]').textContent(), 'none');
      // The key's expiry, read as it was saved, on the connector's page.
      await page.getByRole('heading', { level: 2, name: 'API key' }).waitFor({ timeout: WAIT_MS });
      await page.getByText(/^(9|10) day\(s\) left$/).waitFor({ timeout: WAIT_MS });
      await page.screenshot({ path: join(SCREENSHOTS, 'console-connector-test-1280.png'), fullPage: true });
      // The guide's "Testing the Integration" by hand: a customer Kustomer has, found by email,
      // then a titled conversation opened on them (the id found filled in).
      const seeded = kustomer.kustomer.seedCustomer({ name: 'Test Customer', emails: [{ email: 'test@example.com', type: 'home' }] });
      const lookup = page.getByRole('form', { name: 'Find a Kustomer customer' });
      await lookup.getByLabel('Email (required)').fill('nobody@example.com');
      await lookup.getByRole('button', { name: 'Find in Kustomer' }).click();
      await page.getByText('Kustomer has no customer with that email.').waitFor({ timeout: WAIT_MS });
      await lookup.getByLabel('Email (required)').fill('test@example.com');
      await lookup.getByRole('button', { name: 'Find in Kustomer' }).click();
      await page.getByText(`Found Test Customer (${seeded.id}).`).waitFor({ timeout: WAIT_MS });
      const opener = page.getByRole('form', { name: 'Open a Kustomer conversation' });
      assert.equal(await opener.getByLabel('Kustomer customer id (required)').inputValue(), seeded.id, 'the id found is filled in');
      await opener.getByRole('button', { name: 'Open the conversation' }).click();
      await page.getByText(/^Kustomer opened conversation [0-9a-f]{24}: "Test Support Request"\.$/).waitFor({ timeout: WAIT_MS });
      const openedThere = kustomer.kustomer.conversations.filter((c) => c.attributes.name === 'Test Support Request');
      assert.equal(openedThere.length, 1, 'one conversation in Kustomer');
      assert.equal(openedThere[0].attributes.replyChannel, 'chat');
      await page.getByRole('region', { name: 'Try Kustomer' }).screenshot({ path: join(SCREENSHOTS, 'console-connector-try-kustomer-1280.png') });
      const kSettings = page.getByRole('form', { name: 'Kustomer settings' });
      await kSettings.getByLabel('Field mapping (JSON)').fill('{ "customerEmail": ');
      await kSettings.getByRole('button', { name: 'Save settings' }).click();
      await kSettings.locator('.field .error').getByText('not a JSON object').waitFor({ timeout: WAIT_MS });
      await kSettings.getByLabel('Field mapping (JSON)').fill('{ "customerEmail": "attributes.emails[0].email" }');
      await kSettings.getByLabel('Team for new conversations').selectOption({ label: 'Support' });
      await kSettings.getByLabel('Hand-off message').fill('Sales will call you within the hour.');
      await kSettings.getByLabel('Priority of an escalation').selectOption('5');
      await saved(page, () => kSettings.getByRole('button', { name: 'Save settings' }).click());
      const kStored = (await api(business.key, 'GET', '/api-connectors')).body.connectors.find((c) => c.kind === 'kustomer');
      assert.equal(kStored.settings.handoff_message, 'Sales will call you within the hour.');
      assert.equal(kStored.settings.escalation_priority, 5);
      assert.ok(kStored.settings.default_team_id, 'the team chosen is stored');
      // Re-enabled for a few customers first (the rollback plan), shown beside its health.
      const rollout = page.getByRole('form', { name: 'Rollout' });
      await rollout.getByLabel('Share of customers (%) (required)').fill('10');
      await saved(page, () => rollout.getByRole('button', { name: 'Save rollout' }).click());
      await page.getByText('for 10% of customers', { exact: true }).waitFor({ timeout: WAIT_MS });
      assert.equal((await api(business.key, 'GET', `/api-connectors/${kStored.id}`)).body.rollout_percent, 10);
      await page.screenshot({ path: join(SCREENSHOTS, 'console-connector-rollout-1280.png') });
      // The checklist's KPIs of its calls so far (the connection tests, the teams), each beside its target.
      const kpis = page.getByRole('region', { name: 'Health, last 24 hours' });
      await kpis.getByRole('cell', { name: 'above 99.5 %' }).waitFor({ timeout: WAIT_MS });
      await kpis.getByRole('cell', { name: 'under 2000 ms' }).waitFor({ timeout: WAIT_MS });
      const uptime = kpis.locator('tr', { hasText: 'Uptime' });
      assert.equal(await uptime.getByRole('cell').nth(1).textContent(), '100.0 %', 'every call answered');
      await uptime.getByText('met', { exact: true }).waitFor({ timeout: WAIT_MS });
      await kpis.screenshot({ path: join(SCREENSHOTS, 'console-connector-kpis-1280.png') });

      await show(page, 'connectors');
      const krForm = page.getByRole('form', { name: 'Connect Krayin' });
      await krForm.getByLabel('API URL (required)').fill(`${new URL(krayin.url).origin}/api/admin`);
      await krForm.getByLabel('API token (required)').fill(krayinToken);
      await krForm.getByLabel('Conversations as activities').check();
      await krForm.getByRole('button', { name: 'Connect Krayin' }).click();
      await page.getByRole('heading', { level: 1, name: 'Krayin' }).waitFor({ timeout: WAIT_MS });
      await page.getByLabel('Move leads through the pipeline').check();
      const stages = await page.getByLabel('When the conversation is resolved').locator('option').allTextContents();
      assert.ok(stages.length > 2, `the pipeline's own stages: ${stages}`);
      await page.getByLabel('When the conversation is resolved').selectOption({ index: stages.length - 1 });
      await page.getByLabel('Organizations').check();
      await saved(page, () => page.getByRole('button', { name: 'Save settings' }).click());
      const connectors = await api(business.key, 'GET', '/api-connectors');
      const stored = connectors.body.connectors.find((c) => c.kind === 'krayin');
      assert.equal(stored.settings.stage_progression, true);
      assert.ok(stored.settings.stage_on_resolved, 'the stage chosen is stored');
      assert.equal(stored.settings.sync_organizations, true, 'a sync option changed after connecting');
      assert.deepEqual(await violations(page), [], 'a connector\'s page');
      await page.screenshot({ path: join(SCREENSHOTS, 'console-connector-1280.png'), fullPage: true });

      await show(page, 'overview');
      assert.equal(await page.locator('main .badge').count() >= 2, true, 'both show their health');

      // Deleting says what goes with it, and the connector is gone.
      await show(page, `connectors/${stored.id}`);
      let warning = '';
      page.once('dialog', (dialog) => { warning = dialog.message(); dialog.accept(); });
      await answered(page, 'DELETE', `/api-connectors/${stored.id}`, 200, () => page.getByRole('button', { name: 'Delete connector' }).click());
      assert.match(warning, /still waiting will be dropped/);
      const left = (await api(business.key, 'GET', '/api-connectors')).body.connectors.map((c) => c.kind);
      assert.deepEqual(left, ['kustomer']);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('CRM integrations: HubSpot connects with a private app token, its test names the account, and a ticket stage HubSpot lacks is refused beside its field', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      await show(page, 'connectors');
      const form = page.getByRole('form', { name: 'Connect HubSpot', exact: true });
      await form.getByLabel('Access token (required)').fill(HUBSPOT_TOKEN);
      await form.getByText('Another API address').click();
      await form.getByLabel('API URL').fill(hubspot.url);
      await form.getByRole('button', { name: 'Connect HubSpot' }).click();
      await page.getByRole('heading', { level: 1, name: 'HubSpot' }).waitFor({ timeout: WAIT_MS });
      await page.getByRole('button', { name: 'Test the connection' }).click();
      await page.getByText(`The CRM answered as HubSpot account ${hubspot.portalId}.`).waitFor({ timeout: WAIT_MS });
      const settings = page.getByRole('form', { name: 'HubSpot settings' });
      await settings.getByLabel('Ticket stage id').fill('9');
      await settings.getByRole('button', { name: 'Save settings' }).click();
      await settings.locator('.field .error').getByText('its stages are 1 (New)').waitFor({ timeout: WAIT_MS });
      await settings.getByLabel('Ticket stage id').fill('2');
      await settings.getByLabel('Ticket priority').selectOption('urgent');
      await saved(page, () => settings.getByRole('button', { name: 'Save settings' }).click());
      const stored = (await api(business.key, 'GET', '/api-connectors')).body.connectors.find((c) => c.kind === 'hubspot');
      assert.equal(stored.settings.ticket_stage, '2');
      assert.equal(stored.settings.ticket_priority, 'urgent');
      assert.ok(hubspot.requests.some((r) => r.path === '/crm/pipelines/2026-03/tickets'), 'the stage was checked against HubSpot');
      assert.deepEqual(await violations(page), [], 'a HubSpot connector\'s page');
      await page.screenshot({ path: join(SCREENSHOTS, 'console-hubspot-1280.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('CRM integrations: HubSpot connects with OAuth on its consent page, back to the console, and its test names the account', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      hubspot.registerApp('console-app', {
        clientSecret: 'console-app-secret', redirectUri: `${PUBLIC_URL}/console`, scopes: [...DEFAULT_SCOPES, OAUTH], name: 'crm-edge',
      });
      await show(page, 'connectors');
      const form = page.getByRole('form', { name: 'Connect HubSpot with OAuth' });
      await form.getByLabel('Name').fill('HubSpot (OAuth)');
      await form.getByLabel('App client id (required)').fill('console-app');
      await form.getByLabel('App client secret (required)').fill('console-app-secret');
      await form.getByText(`${PUBLIC_URL}/console`).waitFor({ timeout: WAIT_MS });
      await form.getByText('Another API address').click();
      await form.getByLabel('API URL').fill(hubspot.url);
      await form.getByRole('button', { name: 'Continue to HubSpot' }).click();
      await page.getByRole('heading', { level: 1, name: 'Connect crm-edge to your HubSpot account' }).waitFor({ timeout: WAIT_MS });
      await page.screenshot({ path: join(SCREENSHOTS, 'console-hubspot-oauth-consent-1280.png') });
      await page.getByRole('button', { name: 'Connect app' }).click();
      await page.getByRole('heading', { level: 1, name: 'HubSpot (OAuth)' }).waitFor({ timeout: WAIT_MS });
      assert.equal(new URL(page.url()).search, '', 'the code and state are gone from the address');
      await page.getByRole('button', { name: 'Test the connection' }).click();
      await page.getByText(`The CRM answered as HubSpot account ${hubspot.portalId}.`).waitFor({ timeout: WAIT_MS });
      const stored = (await api(business.key, 'GET', '/api-connectors')).body.connectors.find((c) => c.name === 'HubSpot (OAuth)');
      assert.deepEqual(stored.secrets_set, ['access_token', 'access_token_expires_ms', 'client_id', 'client_secret', 'refresh_token']);
      assert.equal(hubspot.authorizations.length, 1, 'one consent');
      assert.deepEqual(errors, []);

      // Declined on HubSpot's page: the console says so on the integrations' page, in its own
      // words: a link's `error_description` is anyone's text, never shown.
      await page.goto(`${PUBLIC_URL}/console?error=access_denied&error_description=${encodeURIComponent('Call +1 555 0100 to verify your account')}&state=x`);
      await page.getByRole('alert').getByText("HubSpot did not connect: the authorisation was declined on HubSpot's page.").waitFor({ timeout: WAIT_MS });
      assert.equal(await page.getByText('Call +1 555 0100').count(), 0, 'the link\'s text is not shown');
      await page.goto(`${PUBLIC_URL}/console?error=${encodeURIComponent('Call +1 555 0100')}&state=x`);
      await page.getByRole('alert').getByText('HubSpot did not connect: its consent page answered an error.', { exact: false }).waitFor({ timeout: WAIT_MS });
      assert.equal(await page.getByText('Call +1 555 0100').count(), 0, 'nor an error code of its own');
    } finally {
      await context.close();
    }
  });

  test('CRM integrations: Salesforce connects with OAuth and PKCE on its consent page, its test names the org, its settings are saved and it is given an Outbound Message address', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      salesforce.registerApp('console-sf-app', {
        clientSecret: 'console-sf-secret', redirectUri: `${PUBLIC_URL}/console`, scopes: ['api', 'id', 'refresh_token'], name: 'crm-edge',
      });
      await show(page, 'connectors');
      const form = page.getByRole('form', { name: 'Connect Salesforce with OAuth' });
      await form.getByLabel('Name').fill('Salesforce');
      await form.getByLabel('My Domain URL (required)').fill(salesforce.url);
      await form.getByLabel('Consumer key (required)').fill('console-sf-app');
      await form.getByLabel('Consumer secret (required)').fill('console-sf-secret');
      await page.screenshot({ path: join(SCREENSHOTS, 'console-salesforce-connect-1280.png'), fullPage: true });
      await form.getByRole('button', { name: 'Continue to Salesforce' }).click();
      await page.getByRole('heading', { level: 1, name: 'Allow Access?' }).waitFor({ timeout: WAIT_MS });
      const consent = new URL(page.url());
      assert.equal(consent.searchParams.get('code_challenge_method'), 'S256', 'PKCE');
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.getByRole('heading', { level: 1, name: 'Salesforce' }).waitFor({ timeout: WAIT_MS });
      assert.equal(new URL(page.url()).search, '', 'the code and state are gone from the address');
      await page.getByRole('button', { name: 'Test the connection' }).click();
      await page.getByText(`The CRM answered as Salesforce org ${salesforce.orgId}.`).waitFor({ timeout: WAIT_MS });

      const settings = page.getByRole('form', { name: 'Salesforce settings' });
      await settings.getByLabel('External ID field').fill('Chat_Customer_Id__c');
      await settings.getByLabel('Share of the daily API allowance (%)').fill('30');
      await settings.getByLabel('Session timeout (minutes)').fill('480');
      await settings.getByLabel('A customer becomes').selectOption('lead');
      await settings.getByRole('button', { name: 'Save settings' }).click();
      await page.getByText('Saved').waitFor({ timeout: WAIT_MS });
      const address = page.getByRole('form', { name: 'Outbound Message address' });
      await address.getByRole('button', { name: 'New Outbound Message address' }).click();
      const shown = page.getByText('Endpoint URL:');
      await shown.waitFor({ timeout: WAIT_MS });
      await page.screenshot({ path: join(SCREENSHOTS, 'console-salesforce-1280.png'), fullPage: true });
      const stored = (await api(business.key, 'GET', '/api-connectors')).body.connectors.find((c) => c.kind === 'salesforce');
      assert.equal(stored.settings.organization_id, salesforce.orgId);
      assert.equal(stored.settings.external_id_field, 'Chat_Customer_Id__c');
      assert.equal(stored.settings.api_share_percent, 30);
      assert.equal(stored.settings.session_timeout_minutes, 480);
      assert.equal(stored.settings.customer_object, 'lead');
      assert.ok(stored.secrets_set.includes('refresh_token') && stored.secrets_set.includes('outbound_token'), stored.secrets_set.join());
      const url = (await shown.locator('code').textContent()) ?? '';
      assert.ok(url.startsWith(`${PUBLIC_URL}${stored.webhook_path}/`), url);
      assert.deepEqual(await violations(page), [], 'a Salesforce connector\'s page');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('CRM links: a link is added, indexed (its fetches’ KPIs shown), and the search finds what the bot would; it is switched, refreshed and deleted by its id though its URL shows a masked credential', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      // A link belongs to one of the business's Facebook pages: the page is added first.
      await show(page, 'links');
      await page.getByRole('link', { name: 'Add your page as a Facebook channel account' }).click();
      await page.getByRole('heading', { level: 1, name: 'Channel accounts' }).waitFor({ timeout: WAIT_MS });
      const pageId = `9${Date.now()}`;
      const account = page.getByRole('form', { name: 'Add account' });
      await account.getByLabel('Channel').selectOption('facebook');
      for (const secret of ['app_secret', 'verify_token', 'access_token']) {
        await account.getByLabel(`${secret} (required)`).fill(`${secret}-${pageId}`);
      }
      await account.getByLabel('Address (required)').fill(pageId);
      await account.getByLabel('Name', { exact: true }).fill('Acme Outdoor Shop');
      await account.getByRole('button', { name: 'Add account' }).click();
      await page.getByRole('cell', { name: pageId, exact: true }).waitFor({ timeout: WAIT_MS });
      // Its access token rotated from the same page: only what is filled in changes.
      const secrets = page.getByRole('form', { name: `Secrets of ${pageId}` });
      await page.locator('summary', { hasText: 'Rotate a secret' }).last().click();
      await secrets.getByLabel('access_token').fill(`rotated-${pageId}`);
      await secrets.getByRole('button', { name: 'Save secrets' }).click();
      await page.getByText('Saved: access_token').waitFor({ timeout: WAIT_MS });

      await show(page, 'links');
      const form = page.getByRole('form', { name: 'Add CRM link' });
      await form.getByLabel('Page (required)').selectOption(pageId);
      await form.getByLabel('Name (required)').fill('Customers');
      // A credential in the query is shown masked (`api_token=***`): the actions name the link by its id.
      await form.getByLabel('URL (required)').fill(`${crm.url}${CUSTOM_PATH}?api_token=console-${pageId}`);
      await form.getByLabel('Headers').fill(`X-API-Key: ${DEFAULT_CREDENTIALS.custom}`);
      // Its records name customers: without saying whose they are, the link is refused beside Holds.
      await answered(page, 'POST', '/api/dashboard/crm-links', 422, () => form.getByRole('button', { name: 'Add CRM link' }).click());
      await form.locator('.field .error').first().waitFor({ timeout: WAIT_MS });
      assert.match(await form.locator('.field .error').first().innerText(), /holds is required for this link: its records name customers/);
      // The form reads the data's fields and proposes the one its records name customers by.
      await answered(page, 'POST', '/api/dashboard/crm-links/preview', 200, () => form.getByRole('button', { name: 'Read its fields' }).click());
      await form.getByText(/each names a customer by email/).waitFor({ timeout: WAIT_MS });
      assert.equal(await form.getByLabel('Holds', { exact: true }).inputValue(), 'customers');
      assert.equal(await form.getByLabel('The field that holds the customer\'s key').inputValue(), 'email');
      await form.screenshot({ path: join(SCREENSHOTS, 'console-link-holds-1280.png') });
      await answered(page, 'POST', '/api/dashboard/crm-links', 201, () => form.getByRole('button', { name: 'Add CRM link' }).click());
      await page.getByRole('heading', { name: `Page ${pageId}` }).waitFor({ timeout: WAIT_MS });
      await waitFor(async () => {
        await show(page, `links/${pageId}`);
        return (await page.locator('main .badge', { hasText: 'ok' }).count()) > 0;
      }, 60_000, 'the link fetched and indexed', 1000);
      await page.getByLabel('Ask as a customer would (required)').fill('premium support subscription');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.locator('main ol li').first().waitFor({ timeout: WAIT_MS });

      const row = page.locator('tr', { hasText: 'Customers' });
      await row.getByText('api_token=***').waitFor({ timeout: WAIT_MS });
      // Its fetches as the checklist's KPIs, beside the uptime's target.
      await waitFor(async () => {
        await show(page, `links/${pageId}`);
        return (await row.getByText(/^24 h: uptime 100\.0 % \(target above 99\.5 %\), \d+ ms on average, 0 of \d+ fetch\(es\) failed$/).count()) > 0;
      }, WAIT_MS, 'the link\'s fetches counted', 500);
      await row.screenshot({ path: join(SCREENSHOTS, 'console-link-health-1280.png') });
      await row.getByText('customers\' records, by email').waitFor({ timeout: WAIT_MS });
      // Changed in place: a slower schedule, its header's value kept as it is shown (***).
      await page.locator('summary', { hasText: 'Change Customers' }).click();
      const change = page.getByRole('form', { name: 'Change Customers' });
      await change.getByLabel('Fetch every (minutes)').fill('120');
      await answered(page, 'PATCH', '/api/dashboard/crm-links', 200, () => change.getByRole('button', { name: 'Save changes' }).click());
      await page.getByText('Saved: fetch interval minutes').waitFor({ timeout: WAIT_MS });
      const changed = await api(business.key, 'GET', `/api/dashboard/crm-links?page_id=${pageId}`);
      assert.equal(changed.body.crm_links[0].fetch_interval_minutes, 120, changed.text);
      await answered(page, 'PUT', '/api/dashboard/crm-links/status', 200, () => row.getByRole('checkbox').uncheck());
      await answered(page, 'PUT', '/api/dashboard/crm-links/status', 200, () => row.getByRole('checkbox').check());
      await answered(page, 'POST', '/api/dashboard/crm-links/refresh', 202, () => row.getByRole('button', { name: 'Refresh' }).click());
      page.once('dialog', (dialog) => dialog.accept());
      await answered(page, 'DELETE', '/api/dashboard/crm-links', 200, () => row.getByRole('button', { name: 'Delete' }).click());
      await page.getByText('No links on this page').waitFor({ timeout: WAIT_MS });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('bot: a time zone it does not know is refused beside its field, the settings are saved, the try box answers as a customer picked by name would from the page\'s CRM links, and the turn shows in the log', async () => {
    const pageId = `8${Date.now()}`;
    const annEmail = `ann.${pageId}@example.com`;
    const synced = await api(business.key, 'POST', '/api-customers-sync', { customers: [{ name: 'Ann Murphy', email: annEmail }] });
    assert.equal(synced.status, 200, synced.text);
    const account = await admin('POST', `/admin/businesses/${business.business.id}/channel-accounts`, {
      channel: 'facebook', provider: 'meta', address: pageId, name: 'Acme Outdoor Bot',
      secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' },
    });
    assert.equal(account.status, 201, account.text);
    const link = await api(business.key, 'POST', '/api/dashboard/crm-links', {
      page_id: pageId, channels: ['messenger'], name: 'Returns policy', url: `${crm.url}${TEXT_PATH}`, type: 'file', is_active: true,
    });
    assert.equal(link.status, 201, link.text);
    await waitFor(async () => {
      const listed = await api(business.key, 'GET', `/api/dashboard/crm-links?page_id=${pageId}&channel=messenger`);
      return listed.body.crm_links?.[0]?.status?.state === 'ok';
    }, 60_000, 'the link fetched and indexed', 500);
    for (const width of [1280, 375]) {
      const { context, page, errors } = await signedIn(width);
      try {
        await show(page, `bot/${encodeURIComponent(pageId)}`);
        const form = page.getByRole('form', { name: 'Save bot' });
        if (width === 1280) {
          await form.getByLabel('The bot answers').check();
          await form.getByLabel('Instructions').fill('Be warm and brief. Talk only about returns.');
          await form.getByLabel('Time zone').fill('Mars/Olympus');
          await answered(page, 'PUT', '/api/dashboard/bots', 422, () => form.getByRole('button', { name: 'Save bot' }).click());
          await form.locator('.field .error').first().waitFor({ timeout: WAIT_MS });
          assert.match(await form.locator('.field .error').first().innerText(), /time zone/);
          await form.getByLabel('Time zone').fill('');
          await answered(page, 'PUT', '/api/dashboard/bots', 200, () => form.getByRole('button', { name: 'Save bot' }).click());
          await page.getByText('Bot saved').waitFor({ timeout: WAIT_MS });
          const stored = await api(business.key, 'GET', `/api/dashboard/bots?page_id=${pageId}&channel=messenger`);
          assert.equal(stored.body.settings.enabled, true);
          assert.equal(stored.body.settings.instructions, 'Be warm and brief. Talk only about returns.');
          assert.equal(stored.body.active_links, 1);
        }
        const ask = page.getByRole('form', { name: 'Ask as a customer would' });
        await ask.getByLabel('Question (required)').fill('What is your returns policy?');
        // Asked as a customer picked by name: the list offers the business's matches.
        await answered(page, 'GET', '/api/dashboard/bots/customers', 200, () => ask.getByLabel('As customer (name or email)').fill('Ann'));
        await ask.getByLabel('As customer (name or email)').fill(`Ann Murphy <${annEmail}>`);
        await answered(page, 'POST', '/api/dashboard/bots/try', 200, () => ask.getByRole('button', { name: 'Ask the bot' }).click());
        await page.locator('main .card .badge').last().waitFor({ timeout: WAIT_MS });
        assert.match(await page.locator('main [aria-live] .card').innerText(), /(reply|handoff)[\s\S]*crm-edge-local-composer/);
        await page.screenshot({ path: join(SCREENSHOTS, `console-bot-try-${width}.png`), fullPage: true });
        await show(page, `bot/${encodeURIComponent(pageId)}`);
        await page.getByRole('region', { name: 'The bot\'s turns' }).getByText('What is your returns policy?').first().waitFor({ timeout: WAIT_MS });
        assert.deepEqual(await violations(page), [], `the bot's page at ${width} px`);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 0, `the bot's page at ${width} px: nothing wider than the screen (${overflow}px)`);
        await page.screenshot({ path: join(SCREENSHOTS, `console-bot-log-${width}.png`), fullPage: true });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    }
  });

  test('alerts: a threshold out of bounds is refused beside its field; rules and recipients are saved; an alert raised shows on the overview and in the history', async () => {
    const { context, page, errors } = await signedIn(1280);
    try {
      await show(page, 'alerts');
      const rules = page.getByRole('form', { name: 'Alert rules' });
      const threshold = rules.locator('[name="rules.error_rate.threshold"]');
      await threshold.fill('500');
      await rules.getByRole('button', { name: 'Save rules' }).click();
      await page.locator('[aria-invalid="true"][name="rules.error_rate.threshold"]').waitFor({ timeout: WAIT_MS });
      const described = await threshold.getAttribute('aria-describedby');
      const message = await page.locator(`#${described.split(' ').pop()}`).textContent();
      assert.match(message, /1 to 100/, `the error says the bounds: ${message}`);

      await threshold.fill('1');
      await rules.getByRole('group', { name: 'API requests refused by the rate limit' }).getByLabel('On').uncheck();
      await rules.getByLabel('Email alerts to').fill('ops@acme.example\ncto@acme.example');
      await saved(page, () => rules.getByRole('button', { name: 'Save rules' }).click());
      const settings = (await api(business.key, 'GET', '/api-alert-settings')).body;
      const rule = (kind) => settings.rules.find((r) => r.kind === kind);
      assert.equal(rule('error_rate').threshold, 1);
      assert.equal(rule('rate_limited').enabled, false);
      assert.equal(rule('connector_failing').threshold, 10, 'the others kept their defaults');
      assert.deepEqual(settings.email_to, ['ops@acme.example', 'cto@acme.example']);

      // Requests the API refuses, then the sweep the cron runs every minute: an error rate alert.
      for (let n = 0; n < 30; n++) await api(business.key, 'POST', '/api-customers-batch-lookup', {});
      await waitFor(async () => {
        const swept = await admin('POST', '/admin/maintenance/sweep');
        assert.equal(swept.status, 200, swept.text);
        return (await api(business.key, 'GET', '/api-alerts?state=open')).body.open > 0;
      }, WAIT_MS, 'an alert raised');
      await show(page, 'overview');
      const card = page.getByRole('region', { name: 'Alerts' });
      await card.getByText(/of the API requests of this hour and the last were answered with an error/).waitFor({ timeout: WAIT_MS });
      assert.deepEqual(await violations(page), [], 'the overview with an alert');
      await card.screenshot({ path: join(SCREENSHOTS, 'console-alerts-overview-1280.png') });
      await card.getByRole('link', { name: 'Alerts, their history and their rules' }).click();
      await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor({ timeout: WAIT_MS });
      const history = page.getByRole('region', { name: 'Alert history' });
      await history.getByRole('cell', { name: /raised: / }).first().waitFor({ timeout: WAIT_MS });
      assert.equal(await page.locator('[name="rules.error_rate.threshold"]').inputValue(), '1', 'the saved threshold is shown');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test('every page: no serious accessibility violation, usable by keyboard, and photographed at 1280 px and 375 px', async () => {
    for (const width of [1280, 375]) {
      const { context, page, errors } = await signedIn(width);
      try {
        for (const name of PAGES) {
          await show(page, name);
          if (name === 'analytics') assert.equal(await page.locator('figure.chart svg').count(), 6, 'six charts');
          if (name === 'audit') await page.locator('td code', { hasText: 'console:' }).first().waitFor({ timeout: WAIT_MS });
          const found = await violations(page);
          assert.deepEqual(found, [], `${name} at ${width} px`);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 0, `${name} at ${width} px: nothing wider than the screen (${overflow}px)`);
          await page.screenshot({ path: join(SCREENSHOTS, `console-${name}-${width}.png`), fullPage: true });
        }
        // The keyboard alone, from a fresh load: skip to the content, reach the menu, open a page.
        await page.goto(`${PUBLIC_URL}/console#/overview`);
        await page.reload();
        await page.locator('main h1').waitFor();
        await page.keyboard.press('Tab');
        assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
        if (width === 375) {
          await page.keyboard.press('Tab');
          assert.equal(await page.evaluate(() => document.activeElement.id), 'menu');
          await page.keyboard.press('Enter');
          assert.equal(await page.locator('#menu').getAttribute('aria-expanded'), 'true');
        }
        const webhooksLink = page.locator('nav a', { hasText: 'Webhooks' });
        for (let presses = 0; presses < 10 && !(await webhooksLink.evaluate((a) => a === document.activeElement)); presses++) {
          await page.keyboard.press('Tab');
        }
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor({ timeout: WAIT_MS });
        assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'focus moves to the new page');
        assert.deepEqual(errors, [], `no script errors at ${width} px`);
      } finally {
        await context.close();
      }
    }
  });
});
