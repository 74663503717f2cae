// Fetching a link's data: on add, in the background (the POST answers before the CRM has), with
// Shopify's Link pagination and HubSpot's paging.next followed to the end and later pages'
// records numbered on; CSV and text files; and the scheduled refresh (the maintenance sweep picks
// a link up once its next_fetch_at has passed), after which exactly the CRM's current data is
// searchable and only the changed records were embedded again.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RFC3339_UTC } from '../support.mjs';
import { PINNED_SHOPIFY } from './crm-data.mjs';
import { startCrm } from './crm-server.mjs';
import { CUSTOM_EXAMPLE, HUBSPOT_EXAMPLE, SHOPIFY_EXAMPLE, asGuide, guideJohnDoe } from './guide.mjs';
import {
  addLink,
  businessWithPages,
  documentOf,
  findEntry,
  logMark,
  loggedEmbeddings,
  makeDue,
  pastSecondOf,
  resultsOf,
  sleep,
  sweep,
  textsContaining,
  waitForFetched,
} from './links.mjs';

/** The local CRM's Shopify store for these tests: 8 customers, 3 a page (3 pages). */
const STORE = { shopify: { customers: 8, pageSize: 3 }, hubspot: { contacts: 5, pageSize: 2 }, custom: 4 };
/** How long the CRM takes to answer the first page when the test slows it. */
const CRM_DELAY_MS = 3_000;

let crm;
let business;
let page;
let shopifyUrl;
let shopifyLink;

before(async () => {
  crm = await startCrm(STORE);
  business = await businessWithPages(1);
  page = business.page;
  shopifyUrl = asGuide(SHOPIFY_EXAMPLE, page, crm.url).url;
});
after(async () => {
  await crm?.close();
});

describe('fetching on add', () => {
  test('adding a link answers at once, before the CRM has answered, and its data becomes searchable', async () => {
    crm.slow(CRM_DELAY_MS, { match: (r) => r.path === '/admin/api/2024-01/customers.json' && !r.query.page_info });
    const started = Date.now();
    const created = await addLink(business, asGuide(SHOPIFY_EXAMPLE, page, crm.url));
    const answeredIn = Date.now() - started;
    shopifyLink = created.crm_link;
    assert.ok(answeredIn < CRM_DELAY_MS, `the POST took ${answeredIn} ms; the CRM takes ${CRM_DELAY_MS} ms to answer`);
    assert.ok(crm.requestsTo('shopify').every((r) => r.answeredAt === null), 'the CRM had not answered any request when the POST was answered');
    assert.ok(['pending', 'ok'].includes(created.crm_link.status.state), 'the new link is pending');
    const entry = await waitForFetched(business, page, shopifyUrl, { records: 8 });
    assert.equal(entry.status.chunks, 8, 'one chunk per customer (each is well under a chunk)');
    const found = await resultsOf(business, { page_id: page, channel: 'messenger', q: 'Priya Nair', mode: 'keyword' }, shopifyLink.id);
    assert.ok(found[0]?.text.includes('customers[0].email: priya.nair@mailbox.example'), `Priya Nair's record is found first (got ${found[0]?.text.slice(0, 200)})`);
  });

  test("Shopify's Link pagination is followed to the end, and later pages' customers are searchable under their own numbers", async () => {
    const requests = crm.requestsTo('shopify');
    const followUps = requests.filter((r) => r.query.page_info);
    assert.ok(requests.length >= 3, `the first page and two more were asked for (${requests.length} requests)`);
    assert.ok(followUps.length >= 2, 'two page_info follow-ups');
    assert.equal(new Set(followUps.map((r) => r.query.page_info)).size, 2, 'each page once per fetch (two distinct cursors)');
    for (const r of followUps) {
      assert.deepEqual(Object.keys(r.query).sort(), ['limit', 'page_info'], 'the follow-up is the Link URL as given');
      assert.equal(r.headers['x-shopify-access-token'], 'shppa_1234567890', 'follow-ups carry the custom headers');
      assert.equal(r.headers.authorization, 'Bearer shppa_1234567890', 'and the Bearer key');
    }
    for (const index of [6, 7]) {
      const customer = crm.data.shopify[index];
      const found = await resultsOf(business, { page_id: page, channel: 'messenger', q: customer.email, mode: 'keyword' }, shopifyLink.id);
      const hit = found.find((r) => r.text.includes(`customers[${index}].email: ${customer.email}`));
      assert.ok(hit, `customer ${index} (page 3) is searchable as customers[${index}]`);
      assert.equal(hit.record, `customers[${index}]`, 'its record continues the numbering');
    }
  });

  test("HubSpot's paging.next.link is followed to the end", async () => {
    const body = asGuide(HUBSPOT_EXAMPLE, page, crm.url);
    const { crm_link: link } = await addLink(business, { ...body, channels: ['messenger'] });
    await waitForFetched(business, page, body.url);
    const requests = crm.requestsTo('hubspot');
    assert.ok(requests.filter((r) => r.query.after).length >= 2, 'two follow-ups with after');
    assert.ok(requests.every((r) => r.headers.authorization === 'Bearer pat-na1-1234567890'), 'every page with the Bearer key');
    const last = crm.data.hubspot[4];
    const found = await resultsOf(business, { page_id: page, channel: 'messenger', q: last.properties.email, mode: 'keyword' }, link.id);
    const hit = found.find((r) => r.text.includes(`results[4].properties.email: ${last.properties.email}`));
    assert.ok(hit, 'the last contact (page 3) is searchable as results[4]');
    assert.ok(hit.text.includes('results[4].id: 505'), 'with its own id line');
  });

  test('a CSV file is read as rows and a text file as text', async () => {
    const { crm_link: csv } = await addLink(business, { page_id: page, channels: ['messenger'], name: 'Customer export', url: crm.urls.csv, type: 'file', is_active: true });
    const { crm_link: text } = await addLink(business, { page_id: page, channels: ['messenger'], name: 'Returns policy', url: crm.urls.text, type: 'file', is_active: true });
    await waitForFetched(business, page, crm.urls.csv, { records: STORE.custom });
    await waitForFetched(business, page, crm.urls.text);
    const rows = await resultsOf(business, { page_id: page, channel: 'messenger', q: 'John Doe', mode: 'keyword' }, csv.id);
    const johnRow = guideJohnDoe(0).replaceAll('customers[0]', 'rows[0]');
    assert.equal(rows[0]?.text, johnRow, `the CSV row is one line per column (got ${rows[0]?.text})`);
    const policy = await resultsOf(business, { page_id: page, channel: 'messenger', q: 'how long do I have to return an item?' }, text.id);
    assert.ok(policy.some((r) => r.text.includes('within 30 days of delivery')), 'the text file is searchable as written');
  });

  test('a custom API with only an X-API-Key header is fetched as the guide shows', async () => {
    const body = asGuide(CUSTOM_EXAMPLE, page, crm.url);
    const { crm_link: link } = await addLink(business, { ...body, channels: ['messenger'] });
    await waitForFetched(business, page, body.url, { records: STORE.custom });
    const found = await resultsOf(business, { page_id: page, channel: 'messenger', q: 'John Doe', mode: 'keyword' }, link.id);
    assert.equal(found[0]?.text, guideJohnDoe(0), "the guide's processed text");
  });
});

describe('the scheduled refresh', () => {
  let earlier;
  let changed;
  let added;
  let removed;
  let mark;

  test('a link is not fetched again before it is due, and is due one interval after its fetch', async () => {
    earlier = await findEntry(business, page, shopifyUrl, 'messenger');
    const fetchedAt = Date.parse(earlier.status.last_fetched_at);
    assert.match(earlier.status.next_fetch_at, RFC3339_UTC, 'next_fetch_at');
    const due = Date.parse(earlier.status.next_fetch_at) - fetchedAt;
    assert.ok(Math.abs(due - 30 * 60_000) <= 60_000, `next_fetch_at is 30 minutes after the fetch (${Math.round(due / 1000)} s)`);
    const asked = crm.requestsTo('shopify').length;
    await sweep();
    await sleep(3_000);
    assert.equal(crm.requestsTo('shopify').length, asked, 'the sweep did not fetch a link that is not due');
  });

  test('a due link is fetched by the sweep, and exactly the CRM’s current data is searchable', async () => {
    // One customer changes, two are added at the end and the last one is removed: indexes of the
    // others do not move, so their chunks are the same text as before.
    changed = crm.update('shopify', PINNED_SHOPIFY[2].id, { note: 'Moved to Kinsale; deliver to the harbour office.', tags: 'gold-support' });
    removed = crm.remove('shopify', crm.data.shopify.at(-1).id);
    added = crm.add('shopify', 2);
    assert.equal(crm.data.shopify.length, 9);
    await pastSecondOf(earlier.status.last_fetched_at);
    makeDue(business, page, shopifyUrl);
    mark = logMark();
    await sweep();
    const entry = await waitForFetched(business, page, shopifyUrl, { channel: 'messenger', after: earlier.status.last_fetched_at, records: 9 });
    assert.equal(entry.status.chunks, 9, 'chunks follow the records');
    const where = { page_id: page, channel: 'messenger' };
    assert.deepEqual(await textsContaining(business, where, removed.email), [], `the removed customer's email is in no result`);
    assert.deepEqual(await textsContaining(business, where, removed.first_name, `${removed.first_name} ${removed.last_name}`), [], 'nor the removed name');
    assert.deepEqual(await textsContaining(business, where, PINNED_SHOPIFY[2].note), [], 'the old note is in no result');
    const note = await textsContaining(business, where, 'customers[2].note: Moved to Kinsale; deliver to the harbour office.', 'Kinsale harbour office');
    assert.ok(note.length > 0, 'the changed note is searchable');
    assert.ok(note.every((r) => r.text.includes('customers[2].tags: gold-support')), 'with the changed tags in the same chunk');
    for (const [offset, customer] of added.entries()) {
      const index = 7 + offset;
      const found = await textsContaining(business, where, `customers[${index}].email: ${customer.email}`, customer.email);
      assert.ok(found.length > 0, `added customer ${customer.email} is searchable as customers[${index}]`);
    }
    const document = await documentOf(business, page, shopifyLink.id);
    assert.ok(document, 'the link has a document');
    assert.deepEqual([document.records, document.chunks, document.embeddings], [9, 9, 9], 'records, chunks and embeddings match the CRM');
    assert.equal(changed.id, PINNED_SHOPIFY[2].id, 'the changed customer kept its id');
  });

  test('a refresh embeds only the changed and the new records again', { skip: !process.env.CRM_EDGE_STATE && 'needs the stack log (CRM_EDGE_STATE)' }, async () => {
    const counts = loggedEmbeddings(page, mark);
    assert.ok(counts.length > 0, 'the fetch logged "Stored <n> embeddings from CRM data"');
    assert.equal(counts.at(-1), 3, `one changed and two new customers were embedded, not the six unchanged (logged: ${counts.join(', ')})`);
  });
});
