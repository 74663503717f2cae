// A CRM link at a customer's size, reduced for the suite (scripts/bench runs 100,000 records;
// here the local embedder's throughput on two cores sets the size): 1,000 Shopify customers on
// 10 pages are indexed completely, in slices of one invocation each
// (the stack holds every invocation to Cloudflare's limits, and fails loudly past them), with the
// run's progress shown while it goes; a refresh after 1% of the records changed embeds only what
// changed and removes what left; a CRM that refuses a page mid-run for a moment makes the run wait
// as long as it asks and go on from that page, not start over.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCrm } from './crm-server.mjs';
import { SHOPIFY_EXAMPLE, asGuide } from './guide.mjs';
import { BIG_FETCH_TIMEOUT_MS, addLink, businessWithPages, findEntry, pastSecondOf, refresh, resultsOf, sleep, waitForFetched } from './links.mjs';

const CUSTOMERS = 1_000;
const PAGE_SIZE = 100;
const PAGES = CUSTOMERS / PAGE_SIZE;

let crm;
let business;
let page;
let url;
let link;

before(async () => {
  crm = await startCrm({ shopify: { customers: CUSTOMERS, pageSize: PAGE_SIZE }, hubspot: 1, custom: 1, bucket: false });
  business = await businessWithPages(1);
  page = business.page;
  url = asGuide(SHOPIFY_EXAMPLE, page, crm.url).url;
});
after(async () => {
  await crm?.close();
});

describe('a CRM link of 1,000 records on 10 pages', () => {
  test('is indexed completely, in slices, its progress shown while the run goes on', async () => {
    ({ crm_link: link } = await addLink(business, asGuide(SHOPIFY_EXAMPLE, page, crm.url)));
    const progress = [];
    const deadline = Date.now() + BIG_FETCH_TIMEOUT_MS;
    let entry;
    for (;;) {
      entry = await findEntry(business, page, url, 'messenger');
      if (entry?.status.indexing) progress.push(entry.status.indexing.records_seen);
      if (entry?.status.state === 'ok' && entry.status.records === CUSTOMERS) break;
      assert.ok(Date.now() < deadline, `indexed within ${BIG_FETCH_TIMEOUT_MS} ms (last: ${JSON.stringify(entry?.status)})`);
      await sleep(250);
    }
    assert.ok(progress.some((seen) => seen > 0 && seen < CUSTOMERS), `the run's progress was shown as it went (${progress.slice(0, 5).join(', ')}…)`);
    assert.equal(entry.status.chunks, entry.status.last_embedded, 'every piece embedded once');
    assert.ok(entry.status.chunks >= CUSTOMERS, `at least a piece a customer (${entry.status.chunks})`);
    assert.equal(entry.status.indexing, undefined, 'no run in progress once it is done');
    const pages = crm.requestsTo('shopify');
    assert.equal(pages.length, PAGES, 'each page read once');
    const last = crm.data.shopify.at(-1);
    const found = await resultsOf(business, { page_id: page, channel: 'messenger', q: last.email, mode: 'keyword' }, link.id);
    assert.ok(found.some((result) => result.text.includes(`customers[${CUSTOMERS - 1}].email: ${last.email}`)), 'the last page’s last customer is searchable');
  });

  test('a refresh after 1% changed embeds only the changed records and removes what left', async () => {
    const before = await findEntry(business, page, url, 'messenger');
    const changed = crm.data.shopify.slice(100, 110).map((customer) => crm.update('shopify', customer.id, { note: `Changed ${customer.id}` }));
    const removed = crm.data.shopify.slice(500, 510).map((customer) => customer.id);
    for (const id of removed) crm.remove('shopify', id);
    await pastSecondOf(before.status.last_fetched_at);
    await refresh(business, page, url);
    const entry = await waitForFetched(business, page, url, { after: before.status.last_fetched_at, records: CUSTOMERS - removed.length, timeoutMs: BIG_FETCH_TIMEOUT_MS });
    assert.equal(entry.status.last_embedded, changed.length, 'only the changed records were embedded again');
    assert.equal(entry.status.last_removed, changed.length + removed.length, 'the changed records’ old pieces and the removed records’ pieces were removed');
    assert.equal(entry.status.chunks, before.status.chunks - removed.length, 'the pieces follow the records');
    const note = await resultsOf(business, { page_id: page, channel: 'messenger', q: `Changed ${changed[0].id}`, mode: 'keyword' }, link.id);
    assert.ok(note.some((result) => result.text.includes(`note: Changed ${changed[0].id}`)), 'a changed record is searchable as it is now');
  });

  test('a page refused for a moment mid-run makes the run wait as asked and go on from that page', async () => {
    const before = await findEntry(business, page, url, 'messenger');
    const asked = crm.requestsTo('shopify').length;
    let refusedPage = 0;
    crm.fail({
      status: 429,
      retryAfter: 1,
      times: 1,
      match: (request) => {
        if (!request.query.page_info) return false;
        refusedPage += 1;
        return refusedPage === 6;
      },
    });
    await pastSecondOf(before.status.last_fetched_at);
    await refresh(business, page, url);
    const entry = await waitForFetched(business, page, url, { after: before.status.last_fetched_at, timeoutMs: BIG_FETCH_TIMEOUT_MS });
    assert.equal(entry.status.last_embedded, 0, 'nothing changed, nothing embedded');
    const requests = crm.requestsTo('shopify').slice(asked);
    assert.equal(requests.length, PAGES + 1, `each page once, the refused one twice (${requests.length} requests)`);
    assert.equal(requests.filter((request) => !request.query.page_info).length, 1, 'the first page once: the run went on, it did not start over');
    // Shopify sends its Retry-After with a fraction (`1.0`): the run waits what it asks, not the
    // minute of backoff a CRM that names no wait gets.
    const refused = requests.findIndex((request) => request.status === 429);
    assert.ok(refused >= 0, 'the CRM refused a page');
    const waited = requests[refused + 1].at - requests[refused].at;
    assert.ok(waited >= 1_000 && waited < 30_000, `the refused page was asked again after the ${waited} ms its Retry-After asked (1 s), not a minute`);
  });
});
