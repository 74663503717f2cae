// A CRM that fails: a 401 or 404 marks the link failing with the reason; a 429 is reported as
// such, its Retry-After honoured, and the data fetched before stays searchable; a 500, a timeout,
// a page over 4 MiB and a CRM that is down keep the previous data and record the error; the link
// recovers on a later run. Failures mid-pagination must not leave half a refresh behind: the
// refresh is all the pages or nothing. Pages are read one at a time, so only a page is bounded,
// not the data.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stackLog } from '../crm/connectors.mjs';
import { PINNED_SHOPIFY } from './crm-data.mjs';
import { SHOPIFY_PATH, startCrm } from './crm-server.mjs';
import { SHOPIFY_EXAMPLE, asGuide } from './guide.mjs';
import {
  addLink,
  addPage,
  businessWithPages,
  documentOf,
  findEntry,
  logMark,
  makeDue,
  pastSecondOf,
  refresh,
  sleep,
  sweep,
  textsContaining,
  waitForEntry,
  waitForFailure,
  waitForFetched,
} from './links.mjs';

/** Six customers, two a page: three pages, so a failure can hit a later page. */
const STORE = { shopify: { customers: 6, pageSize: 2 }, hubspot: 1, custom: 1 };
const CUSTOMERS = 6;
/** Longer than the stack's 10 s fetch timeout. */
const TOO_SLOW_MS = 12_000;

let business;
const crms = [];

before(async () => {
  business = await businessWithPages(0);
});
after(async () => {
  await Promise.all(crms.map((crm) => crm.close()));
});

/**
 * A new local Shopify store linked on a new page of the business and fetched once: `{ crm, page,
 * url, link, where }`. A page per store keeps each test's search to its own link.
 */
async function fetchedStore() {
  const crm = await startCrm(STORE);
  crms.push(crm);
  const page = await addPage(business);
  const body = asGuide(SHOPIFY_EXAMPLE, page, crm.url);
  const { crm_link: link } = await addLink(business, body);
  await waitForFetched(business, page, body.url, { records: CUSTOMERS });
  return { crm, page, url: body.url, link, where: { page_id: page, channel: 'messenger' } };
}

const laterPages = (r) => r.path === SHOPIFY_PATH && Boolean(r.query.page_info);

/** Asserts the data of the last good fetch is what search and the documents view show. */
async function assertPreviousDataKept({ page, link, where }, description) {
  const lastPage = PINNED_SHOPIFY[CUSTOMERS - 1];
  const found = await textsContaining(business, where, `customers[${CUSTOMERS - 1}].email: ${lastPage.email}`, lastPage.email);
  assert.ok(found.length > 0, `${description}: a customer of the last page is still searchable`);
  const document = await documentOf(business, page, link.id);
  assert.deepEqual([document.records, document.chunks, document.embeddings], [CUSTOMERS, CUSTOMERS, CUSTOMERS], `${description}: the documents view still counts the previous data`);
}

describe('a CRM that refuses', () => {
  test('a 401 marks the link failing with the reason, and it recovers once the CRM accepts again', async () => {
    const store = await fetchedStore();
    store.crm.fail({ status: 401, times: Infinity });
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url, (s) => s.state === 'failing' && s.last_http_status === 401);
    assert.match(status.last_error, /401|unauthori[sz]ed/i, 'last_error gives the reason');
    store.crm.clearFailures();
    await refresh(business, store.page, store.url);
    await waitForEntry(business, store.page, store.url, ({ status: s }) => s.state === 'ok' && s.last_error === null, { description: 'the link recovered' });
  });

  test('a 404 marks the link failing with the reason', async () => {
    const store = await fetchedStore();
    store.crm.fail({ status: 404, times: Infinity });
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url, (s) => s.state === 'failing' && s.last_http_status === 404);
    assert.match(status.last_error, /404|not found/i, 'last_error gives the reason');
    store.crm.clearFailures();
  });
});

describe('a CRM that is busy or broken', () => {
  test('a 429 on a later page: last_error says 429, Retry-After is honoured, and the previous data stays searchable', async () => {
    const store = await fetchedStore();
    const retryAfterSeconds = 30;
    const mark = logMark();
    store.crm.fail({ status: 429, retryAfter: retryAfterSeconds, times: Infinity, match: laterPages });
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url, (s) => s.last_http_status === 429);
    assert.match(status.last_error, /429 Too Many Requests/, 'last_error says 429 Too Many Requests');
    const throttled = store.crm.requestsTo('shopify').find((r) => r.status === 429);
    assert.ok(throttled, 'the CRM answered 429');
    assert.ok(
      Date.parse(status.next_fetch_at) >= throttled.answeredAt + (retryAfterSeconds - 1) * 1000,
      `the next fetch (${status.next_fetch_at}) is not before Retry-After (${retryAfterSeconds} s after ${new Date(throttled.answeredAt).toISOString()})`,
    );
    await sleep(3_000);
    const early = store.crm.requestsTo('shopify').filter((r) => r.at > throttled.answeredAt && r.at < throttled.answeredAt + retryAfterSeconds * 1000);
    assert.deepEqual(early.map((r) => r.url), [], 'nothing was asked of the CRM within Retry-After');
    await assertPreviousDataKept(store, 'after the 429');
    if (process.env.CRM_EDGE_STATE) assert.match(stackLog().slice(mark), /Failed to fetch CRM data: 429 Too Many Requests/, 'the log says so');
    store.crm.clearFailures();
  });

  test('a 500 on a later page keeps the previous data (no half refresh), and the next run takes the new data', async () => {
    const store = await fetchedStore();
    const newNote = 'Now buys for four boutiques.';
    store.crm.update('shopify', PINNED_SHOPIFY[0].id, { note: newNote });
    store.crm.fail({ status: 500, times: Infinity, match: laterPages });
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url, (s) => s.last_http_status === 500);
    assert.match(status.last_error, /500/, 'last_error gives the status');
    assert.deepEqual(await textsContaining(business, store.where, newNote), [], 'the first page of the failed refresh was not stored');
    assert.ok((await textsContaining(business, store.where, `customers[0].note: ${PINNED_SHOPIFY[0].note}`, PINNED_SHOPIFY[0].note)).length > 0, 'the old note is still searchable');
    await assertPreviousDataKept(store, 'after the 500');
    store.crm.clearFailures();
    makeDue(business, store.page, store.url);
    await sweep();
    await waitForEntry(business, store.page, store.url, ({ status: s }) => s.state === 'ok' && s.last_error === null, { description: 'the next run succeeded' });
    assert.ok((await textsContaining(business, store.where, newNote)).length > 0, 'the next run took the new note');
  });

  test('a CRM slower than the 10 s timeout: the error is recorded and the previous data kept', async () => {
    const store = await fetchedStore();
    store.crm.slow(TOO_SLOW_MS, { match: (r) => r.path === SHOPIFY_PATH });
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url);
    assert.ok(status.last_error.length > 0, `last_error: ${status.last_error}`);
    await assertPreviousDataKept(store, 'after the timeout');
    store.crm.clearFailures();
  });
});

describe('a CRM that answers too much', () => {
  test('a page over 4 MiB is refused with a clear error and the previous data kept', async () => {
    const store = await fetchedStore();
    store.crm.oversize({ times: Infinity, match: laterPages });
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url);
    assert.match(status.last_error, /4 MiB/, 'last_error says the limit');
    await assertPreviousDataKept(store, 'after the oversized page');
    store.crm.clearFailures();
  });

  test('pages that are each under 4 MiB are read however large they are together', async () => {
    const store = await fetchedStore();
    const before = await findEntry(business, store.page, store.url, 'messenger');
    store.crm.oversize({ times: Infinity, bytes: 1.5 * 1024 * 1024, match: (r) => r.path === SHOPIFY_PATH });
    await pastSecondOf(before.status.last_fetched_at);
    await refresh(business, store.page, store.url);
    const entry = await waitForFetched(business, store.page, store.url, { after: before.status.last_fetched_at, records: CUSTOMERS });
    assert.equal(entry.status.last_error, null, 'no error');
    const pages = store.crm.requestsTo('shopify').slice(-3);
    assert.ok(pages.every((r) => r.bytes > 1024 * 1024 && r.bytes < 4 * 1024 * 1024), 'three pages of 1.5 MiB each were read');
    await assertPreviousDataKept(store, 'after pages over 4 MiB together');
    store.crm.clearFailures();
  });
});

describe('a CRM that is down', () => {
  test('the failed run is recorded, the previous data kept, and a later run recovers', async () => {
    const store = await fetchedStore();
    const earlier = await findEntry(business, store.page, store.url, 'messenger');
    await store.crm.down();
    await refresh(business, store.page, store.url);
    const { status } = await waitForFailure(business, store.page, store.url);
    assert.ok(status.last_error.length > 0, `last_error: ${status.last_error}`);
    await assertPreviousDataKept(store, 'while the CRM is down');
    await store.crm.up();
    await pastSecondOf(earlier.status.last_fetched_at);
    makeDue(business, store.page, store.url);
    await sweep();
    const recovered = await waitForEntry(business, store.page, store.url, ({ status: s }) => s.state === 'ok' && s.last_error === null, { description: 'the link recovered' });
    assert.ok(Date.parse(recovered.status.last_fetched_at) > Date.parse(earlier.status.last_fetched_at), 'a new fetch succeeded');
    await assertPreviousDataKept(store, 'after recovering');
  });
});
