// Webhook links: the CRM pushes its data instead of being fetched. Adding one answers its
// webhook_url and, that once, its Standard Webhooks secret; a push signed with it (JSON or CSV)
// becomes the link's data exactly as a fetch would, a later push replaces it, and a push with a
// bad signature, a stale or future timestamp, or to an unknown link is refused without effect.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PUBLIC_URL, assertError } from '../support.mjs';
import { generateSource } from './crm-data.mjs';
import { startCrm } from './crm-server.mjs';
import { guideJohnDoe } from './guide.mjs';
import { LINKS, addLink, businessWithPages, dashboard, findEntry, pastSecondOf, pushWebhook, resultsOf, sleep, standardWebhookHeaders, textsContaining, waitForFetched } from './links.mjs';

let crm;
let business;
let page;
let url;
let link;
let secret;
const customers = generateSource('custom', { size: 4 }).records;

before(async () => {
  crm = await startCrm({ shopify: 1, hubspot: 1, custom: 1 });
  business = await businessWithPages(1);
  page = business.page;
  url = `${crm.url}/hooks/customers`;
});
after(async () => {
  await crm?.close();
});

const where = () => ({ page_id: page, channel: 'messenger' });

describe('a webhook link', () => {
  test('its POST answer carries the webhook URL and a Standard Webhooks secret, shown only there', async () => {
    const created = await addLink(business, { page_id: page, channels: ['messenger'], name: 'CRM push', url, type: 'webhook', description: 'pushed by the CRM', is_active: true });
    link = created.crm_link;
    secret = link.webhook_secret;
    assert.equal(link.type, 'webhook');
    assert.ok(typeof link.webhook_url === 'string' && link.webhook_url.startsWith(`${PUBLIC_URL}/`), `webhook_url is on the stack's public origin (${link.webhook_url})`);
    assert.match(secret ?? '', /^whsec_[A-Za-z0-9+/]+={0,2}$/, 'webhook_secret is whsec_ and base64');
    assert.ok(Buffer.from(secret.slice(6), 'base64').length >= 24, 'the key is at least 24 bytes');
    const entry = await findEntry(business, page, url, 'messenger');
    assert.equal(entry.webhook_url, link.webhook_url, 'the list shows the webhook URL');
    assert.equal('webhook_secret' in entry, false, 'but not the secret');
    for (const path of [`${LINKS}?page_id=${page}`, `${LINKS}/all`, `/api/dashboard/rag/documents/details?page_id=${page}&source=crm`]) {
      const res = await dashboard(business.key, 'GET', path);
      assert.ok(!res.text.includes(secret.slice(6)), `${path} does not show the secret`);
    }
    await sleep(2_000);
    assert.equal(crm.requestsTo('/hooks/customers').length, 0, 'a webhook link is not fetched from its url');
  });

  test('a signed JSON push becomes its data, as a fetch would', async () => {
    const body = JSON.stringify({ customers });
    const res = await pushWebhook(link.webhook_url, secret, body);
    assert.equal(res.status, 202, res.text);
    await waitForFetched(business, page, url, { records: customers.length });
    const found = await resultsOf(business, { ...where(), q: 'John Doe', mode: 'keyword' }, link.id);
    assert.equal(found[0]?.text, guideJohnDoe(0), "John Doe in the guide's processed text");
    const semantic = await resultsOf(business, { ...where(), q: 'which tier did Jon pay for' }, link.id);
    assert.ok(semantic.length > 0, 'semantic search finds the pushed data');
  });

  test('a later push replaces the data exactly', async () => {
    const earlier = await findEntry(business, page, url, 'messenger');
    await pastSecondOf(earlier.status.last_fetched_at);
    const kept = customers.slice(1, 3);
    const res = await pushWebhook(link.webhook_url, secret, JSON.stringify({ customers: kept }));
    assert.equal(res.status, 202, res.text);
    await waitForFetched(business, page, url, { records: 2, after: earlier.status.last_fetched_at });
    assert.deepEqual(await textsContaining(business, where(), 'john@example.com', 'John Doe'), [], 'John Doe, no longer pushed, is gone');
    // An unchanged record is not written again, so it keeps the number it was first indexed under.
    for (const [index, customer] of kept.entries()) {
      const found = await textsContaining(business, where(), `customers[${index + 1}].email: ${customer.email}`, customer.name);
      assert.ok(found.length > 0, `${customer.name} is still found, as customers[${index + 1}]`);
    }
  });

  test('a CSV push is read as rows', async () => {
    const earlier = await findEntry(business, page, url, 'messenger');
    await pastSecondOf(earlier.status.last_fetched_at);
    const csv = `id,name,email,subscription,support_level\r\n${customers.map((c) => [c.id, c.name, c.email, c.subscription, c.support_level].join(',')).join('\r\n')}\r\n`;
    const res = await pushWebhook(link.webhook_url, secret, csv, { contentType: 'text/csv' });
    assert.equal(res.status, 202, res.text);
    await waitForFetched(business, page, url, { records: customers.length, after: earlier.status.last_fetched_at });
    const found = await resultsOf(business, { ...where(), q: 'John Doe', mode: 'keyword' }, link.id);
    assert.equal(found[0]?.text, guideJohnDoe(0).replaceAll('customers[0]', 'rows[0]'), 'one line per column');
  });

  test('a push with a bad signature, or a stale or future timestamp, is refused with 401 and changes nothing', async () => {
    const body = JSON.stringify({ customers: [{ id: 'cust-666', name: 'Mallory Intruder', email: 'mallory@evil.example' }] });
    const now = Math.floor(Date.now() / 1000);
    const otherSecret = `whsec_${Buffer.from('another-secret-of-24-bytes!!').toString('base64')}`;
    const signedFor = (text, options) => standardWebhookHeaders(secret, text, options);
    const cases = [
      ['signed with another secret', standardWebhookHeaders(otherSecret, body)],
      ['signed over another body', signedFor(JSON.stringify({ customers: [] }))],
      ['a signature that is not base64', { ...signedFor(body), 'webhook-signature': 'v1,not-a-signature' }],
      ['a v1a (asymmetric) signature only', { ...signedFor(body), 'webhook-signature': signedFor(body)['webhook-signature'].replace('v1,', 'v1a,') }],
      ['the id changed after signing', { ...signedFor(body), 'webhook-id': 'msg_tampered' }],
      ['no signature header', (({ 'webhook-signature': _, ...rest }) => rest)(signedFor(body))],
      ['no timestamp header', (({ 'webhook-timestamp': _, ...rest }) => rest)(signedFor(body))],
      ['a timestamp 10 minutes old', signedFor(body, { timestamp: now - 600 })],
      ['a timestamp 10 minutes ahead', signedFor(body, { timestamp: now + 600 })],
      ['a timestamp in milliseconds', signedFor(body, { timestamp: Date.now() })],
    ];
    for (const [description, headers] of cases) {
      assertError(await pushWebhook(link.webhook_url, secret, body, { headers }), 401, 'unauthorized', description);
    }
    await sleep(2_000);
    assert.deepEqual(await textsContaining(business, where(), 'Mallory'), [], 'nothing of a refused push is searchable');
    assert.equal((await findEntry(business, page, url, 'messenger')).status.records, customers.length, 'the data is unchanged');
  });

  test('a signature list with one valid entry is accepted, as the standard says', async () => {
    const earlier = await findEntry(business, page, url, 'messenger');
    await pastSecondOf(earlier.status.last_fetched_at);
    const body = JSON.stringify({ customers });
    const otherSecret = `whsec_${Buffer.from('yet-another-secret-24-bytes!').toString('base64')}`;
    const good = standardWebhookHeaders(secret, body);
    const headers = { ...good, 'webhook-signature': `${standardWebhookHeaders(otherSecret, body, { id: good['webhook-id'], timestamp: Number(good['webhook-timestamp']) })['webhook-signature']} ${good['webhook-signature']}` };
    const res = await pushWebhook(link.webhook_url, secret, body, { headers });
    assert.equal(res.status, 202, res.text);
    await waitForFetched(business, page, url, { records: customers.length, after: earlier.status.last_fetched_at });
  });

  test('a push to a link that does not exist is 404', async () => {
    const target = new URL(link.webhook_url);
    const segments = target.pathname.split('/');
    const last = segments.at(-1);
    segments[segments.length - 1] = last.replace(/[0-9a-z]/gi, (c) => (c === 'a' ? 'b' : 'a'));
    target.pathname = segments.join('/');
    const body = JSON.stringify({ customers });
    assertError(await pushWebhook(target.toString(), secret, body), 404, 'not_found', 'an unknown webhook link');
  });

  test('a push to a deleted link is 404', async () => {
    const res = await dashboard(business.key, 'DELETE', LINKS, { page_id: page, url });
    assert.equal(res.status, 200, res.text);
    assertError(await pushWebhook(link.webhook_url, secret, JSON.stringify({ customers })), 404, 'not_found', 'the deleted link');
    assert.equal(await findEntry(business, page, url, 'messenger'), undefined, 'the deleted link is not listed');
  });
});

describe('a webhook link pushed to while inactive', () => {
  test('keeps the push out of search, and indexes it once the link is activated', async () => {
    const quietUrl = `${crm.url}/hooks/quiet-customers`;
    const created = await addLink(business, { page_id: page, channels: ['messenger'], name: 'Quiet push', url: quietUrl, type: 'webhook', is_active: false });
    const quiet = created.crm_link;
    const res = await pushWebhook(quiet.webhook_url, quiet.webhook_secret, JSON.stringify({ customers }));
    assert.equal(res.status, 202, res.text);
    await sleep(2_000);
    const before = await findEntry(business, page, quietUrl, 'messenger');
    assert.equal(before.status.records, 0, 'nothing of an inactive link is indexed');
    assert.equal((await resultsOf(business, { ...where(), q: 'John Doe', mode: 'keyword' }, quiet.id)).length, 0, 'nor searchable');
    const activated = await dashboard(business.key, 'PUT', `${LINKS}/status`, { page_id: page, url: quietUrl, is_active: true });
    assert.equal(activated.status, 200, activated.text);
    await waitForFetched(business, page, quietUrl, { records: customers.length });
    const found = await resultsOf(business, { ...where(), q: 'John Doe', mode: 'keyword' }, quiet.id);
    assert.equal(found[0]?.text, guideJohnDoe(0), 'the data pushed while inactive is searchable once active');
    assert.equal(crm.requestsTo('/hooks/quiet-customers').length, 0, 'and the link was never fetched from its url');
  });
});
