// The embedded inbox in a real browser (Debian's chromium, headless, driven by playwright-core):
// a CRM page on another origin puts it in a 600 px iframe, as the seed's client code does. The
// test checks what a CRM user sees: the seeded conversations on several channels, a message
// that arrives while the page is open, a reply sent from the box (only with the reply scope),
// that any site frames it until the business names its CRM's origins, and that another site then
// cannot. Screenshots at 375 px and 1280 px go to tests/browser/screenshots/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BASE_URL, admin, api, newBusiness, sync, unique } from '../e2e/support.mjs';
import { seedInbox } from '../e2e/sso-seed.mjs';

const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const CHROMIUM = process.env.CRM_EDGE_CHROMIUM || '/usr/bin/chromium';
/** The network is closed: without these, chromium waits on services it cannot reach. */
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
const WAIT_MS = 20_000;

let browser;
let host;
let seed;

/** A CRM's customer page on its own origin, embedding `?src=` as the seed's snippet does. */
function hostPage(src) {
  const escaped = src.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Acme CRM</title>
<style>
  body { margin: 0; font-family: system-ui, sans-serif; background: #eef0f4; color: #1c2230; }
  header { background: #1c2230; color: #fff; padding: 12px 20px; font-weight: 600; }
  main { padding: 16px; display: grid; gap: 16px; grid-template-columns: minmax(0, 1fr); }
  @media (min-width: 900px) { main { grid-template-columns: 280px minmax(0, 1fr); } }
  .card { background: #fff; border-radius: 10px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
  .card h2 { margin: 0 0 8px; font-size: 15px; }
  .card p { margin: 4px 0; font-size: 14px; color: #5b6474; }
  #conversation-container { background: #fff; border-radius: 10px; overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
</style></head><body>
<header>Acme CRM · Contacts</header>
<main>
  <section class="card"><h2>Joe Bloggs</h2><p>Customer since 2023</p><p>Plan: Premium</p><p>Owner: Ann Agent</p></section>
  <section id="conversation-container">
    <iframe id="inbox" title="Conversations with Joe Bloggs" src="${escaped}" style="width:100%;height:600px;border:none;display:block"></iframe>
  </section>
</main></body></html>`;
}

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  host = createServer((req, res) => {
    const src = new URL(req.url, 'http://host').searchParams.get('src') || 'about:blank';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(hostPage(src));
  });
  await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
  // Another port is another origin: the CRM is not the inbox's own site.
  host.origin = `http://127.0.0.1:${host.address().port}`;
  assert.notEqual(host.origin, new URL(BASE_URL).origin);
  seed = await seedInbox({ frameAncestors: [host.origin] });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await seed?.close();
  await new Promise((resolve) => (host ? host.close(resolve) : resolve()));
});

/** Opens the CRM page with the inbox of `embedUrl` at `width` px; returns the page and the inbox's frame. */
async function openCrm(embedUrl, width) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
  await page.goto(`${host.origin}/crm?src=${encodeURIComponent(embedUrl)}`);
  const frame = page.frameLocator('#inbox');
  return { context, page, frame, errors };
}

describe('the embedded inbox in a CRM page', () => {
  test('shows every channel, takes a new message without reloading, and sends a reply (1280 px)', async () => {
    const { embed_url } = await seed.token({ scope: 'inbox:reply' });
    const { context, page, frame, errors } = await openCrm(embed_url, 1280);
    try {
      await frame.locator('#customer-name', { hasText: 'Joe Bloggs' }).waitFor({ timeout: WAIT_MS });
      const bubbles = frame.locator('li.msg');
      assert.equal(await bubbles.count(), 4, 'the four seeded messages');
      const badges = await frame.locator('li.msg .badge').allTextContents();
      assert.deepEqual([...new Set(badges)].sort(), ['Email', 'WhatsApp']);
      assert.equal(await frame.locator('li.msg.inbound').count(), 2);
      assert.equal(await frame.locator('li.msg.outbound').count(), 2);
      await frame.locator('li.msg', { hasText: 'Where is my parcel?' }).waitFor();

      // The image is previewed (it really loaded), the PDF is a download link.
      const image = frame.locator('.files img[alt="tracking-label.png"]');
      await image.waitFor({ timeout: WAIT_MS });
      await image.evaluate((img) => img.decode());
      assert.ok(await image.evaluate((img) => img.complete && img.naturalWidth > 0), 'the image loaded');
      const pdf = frame.locator('a.file', { hasText: 'invoice-1234.pdf' });
      assert.equal(await pdf.getAttribute('download'), 'invoice-1234.pdf');

      // Times are shown in the viewer's zone, as the browser formats them.
      const stamp = await frame.locator('li.msg time').first().getAttribute('datetime');
      assert.ok(!Number.isNaN(Date.parse(stamp)), stamp);

      // A message arrives while the page is open: it appears without a reload.
      await frame.locator('body').evaluate(() => { window.loadedOnce = 'yes'; });
      await seed.whatsappFromCustomer('Just checking: will someone be home to sign?');
      await frame.locator('li.msg.inbound', { hasText: 'will someone be home to sign?' }).waitFor({ timeout: WAIT_MS });
      assert.equal(await frame.locator('body').evaluate(() => window.loadedOnce), 'yes', 'the page was not reloaded');
      assert.match(await frame.locator('#announcer').textContent(), /will someone be home to sign/);

      // The reply box starts on the channel the customer last wrote from, and sends.
      assert.equal(await frame.locator('#reply-channel').inputValue(), 'whatsapp');
      await frame.locator('#reply-text').fill('No signature needed, the driver will leave it with a neighbour.');
      await frame.locator('#reply-text').press('Enter');
      const sent = frame.locator('li.msg.outbound', { hasText: 'leave it with a neighbour' });
      await sent.waitFor({ timeout: WAIT_MS });
      await sent.locator('.status', { hasText: 'Sent' }).waitFor({ timeout: 30_000 });
      assert.equal(await frame.locator('#reply-text').inputValue(), '', 'the box is emptied');
      const stored = await api(seed.business.key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500');
      const reply = stored.body.messages.find((m) => m.content.includes('leave it with a neighbour'));
      assert.equal(reply?.status, 'sent', 'the reply went out through the dispatcher');
      assert.equal(reply?.channel, 'whatsapp');

      await frame.locator('#timeline').evaluate((node) => { node.scrollTop = node.scrollHeight; });
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(SCREENSHOTS, 'inbox-1280.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no script errors');
    } finally {
      await context.close();
    }
  });

  test('fits a 375 px phone, and the read-only scope shows no reply box', async () => {
    const { embed_url } = await seed.token({ scope: 'inbox' });
    const { context, page, frame, errors } = await openCrm(embed_url, 375);
    try {
      await frame.locator('li.msg').first().waitFor({ timeout: WAIT_MS });
      assert.ok(await frame.locator('li.msg').count() >= 5);
      assert.equal(await frame.locator('#reply').isVisible(), false, 'no reply box with the inbox scope');
      const overflow = await frame.locator('body').evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `nothing wider than the frame (overflow ${overflow}px)`);
      await frame.locator('#timeline').evaluate((node) => { node.scrollTop = node.scrollHeight; });
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(SCREENSHOTS, 'inbox-375.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no script errors');
    } finally {
      await context.close();
    }
  });

  test('any site frames the inbox of a business that set nothing, one it did not name cannot; a bad link shows why', async () => {
    const business = await newBusiness();
    const synced = await sync(business.key, [{ name: 'Framed Anywhere', email: `${unique('nf')}@example.com` }]);
    const issue = async () => {
      const issued = await api(business.key, 'POST', '/api-sso-generate-token', {
        customer_id: synced.results.details[0].customer_id,
      });
      assert.equal(issued.status, 201, issued.text);
      return issued.body.embed_url;
    };
    // The guide's "Option B" as written: no setting, any CRM page may embed it.
    const anywhere = await openCrm(await issue(), 1280);
    try {
      await anywhere.frame.locator('#customer-name', { hasText: 'Framed Anywhere' }).waitFor({ timeout: WAIT_MS });
    } finally {
      await anywhere.context.close();
    }

    const narrowed = await admin('PATCH', `/admin/businesses/${business.id}`, { embed_frame_ancestors: ['https://crm.example.com'] });
    assert.equal(narrowed.status, 200, narrowed.text);
    const blocked = await openCrm(await issue(), 1280);
    try {
      await blocked.page.waitForTimeout(1500);
      const frame = blocked.page.frames().find((f) => f !== blocked.page.mainFrame());
      const rendered = frame ? await frame.locator('#messages').count().catch(() => 0) : 0;
      assert.equal(rendered, 0, 'the browser refused to render the inbox in a frame the business did not allow');
    } finally {
      await blocked.context.close();
    }

    const forged = await openCrm(`${BASE_URL}/embed/inbox?token=sso_${'A'.repeat(43)}`, 375);
    try {
      await forged.frame.locator('h1', { hasText: 'This link is not valid' }).waitFor({ timeout: WAIT_MS });
      await forged.page.screenshot({ path: join(SCREENSHOTS, 'invalid-link-375.png'), fullPage: true });
    } finally {
      await forged.context.close();
    }
  });
});
