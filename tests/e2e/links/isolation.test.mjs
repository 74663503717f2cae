// Tenancy: two businesses, and two pages of one business, never see each other's links or chunks,
// even when they link the very same CRM url; switching a url off or deleting it on one page leaves
// the same url on every other page alone.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertError } from '../support.mjs';
import { startCrm } from './crm-server.mjs';
import { CUSTOM_EXAMPLE, HUBSPOT_EXAMPLE, asGuide } from './guide.mjs';
import { LINKS, SEARCH, SMALL, addLink, businessWithPages, dashboard, documents, listLinks, query, search, waitForFetched } from './links.mjs';

let crm;
let first;
let second;
/** Link ids by where they are: `ids.A1.custom` … */
const ids = { A1: {}, A2: {}, B1: {} };
let customUrl;
let hubspotUrl;

before(async () => {
  crm = await startCrm(SMALL);
  first = await businessWithPages(2);
  second = await businessWithPages(1);
  customUrl = asGuide(CUSTOM_EXAMPLE, first.pages[0], crm.url).url;
  hubspotUrl = asGuide(HUBSPOT_EXAMPLE, first.pages[0], crm.url).url;
  const link = async (business, page, example, where) => {
    const body = { ...asGuide(example, page, crm.url), channels: ['messenger'] };
    ids[where][example === CUSTOM_EXAMPLE ? 'custom' : 'hubspot'] = (await addLink(business, body)).crm_link.id;
    await waitForFetched(business, page, body.url);
  };
  // A1: the custom CRM; A2: HubSpot and the same custom CRM url; B1 (another business): the custom CRM.
  await link(first, first.pages[0], CUSTOM_EXAMPLE, 'A1');
  await link(first, first.pages[1], HUBSPOT_EXAMPLE, 'A2');
  await link(first, first.pages[1], CUSTOM_EXAMPLE, 'A2');
  await link(second, second.page, CUSTOM_EXAMPLE, 'B1');
});
after(async () => {
  await crm?.close();
});

/** Every result of every search on `page` (keyword and semantic, for each query). */
async function allResults(business, page, queries) {
  const results = [];
  for (const q of queries) {
    for (const mode of ['keyword', 'semantic']) results.push(...(await search(business, { page_id: page, channel: 'messenger', q, top_k: 20, mode })).results);
  }
  return results;
}

const QUERIES = ['John Doe', 'Sofia Marquez', 'Which support plan is Rafael Oliveira on?', 'What plan is John Doe on?'];

describe('two pages of one business', () => {
  test('each page lists only its own links', async () => {
    const a1 = await listLinks(first, first.pages[0]);
    const a2 = await listLinks(first, first.pages[1]);
    assert.deepEqual(a1.crm_links.map((l) => l.id), [ids.A1.custom], 'page 1: the custom CRM only');
    assert.deepEqual(a2.crm_links.map((l) => l.id).sort(), [ids.A2.custom, ids.A2.hubspot].sort(), 'page 2: HubSpot and its own custom link');
    assert.notEqual(ids.A1.custom, ids.A2.custom, 'the same url on two pages is two links');
  });

  test("a page's search returns only its own links' chunks", async () => {
    const a1 = await allResults(first, first.pages[0], QUERIES);
    assert.ok(a1.length > 0, 'page 1 finds something');
    assert.deepEqual([...new Set(a1.map((r) => r.link.id))], [ids.A1.custom], "page 1 sees only its custom link, never page 2's HubSpot or custom chunks");
    const a2 = await allResults(first, first.pages[1], QUERIES);
    assert.ok(a2.every((r) => [ids.A2.custom, ids.A2.hubspot].includes(r.link.id)), 'page 2 sees only its own links');
    assert.ok(a2.some((r) => r.link.id === ids.A2.hubspot), 'page 2 finds HubSpot contacts');
  });

  test("each page's documents are its own", async () => {
    const a1 = await documents(first, first.pages[0]);
    assert.deepEqual(a1.documents.map((d) => d.link.id), [ids.A1.custom], 'page 1');
    assert.equal(a1.total_chunks, a1.documents[0].chunks, 'page 1 totals count page 1 only');
  });

  test('switching the shared url off on one page leaves it on the other; deleting it too', async () => {
    const off = await dashboard(first.key, 'PUT', `${LINKS}/status`, { page_id: first.pages[0], url: customUrl, is_active: false });
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.updated_count, 1, 'one entry, on page 1');
    assert.ok((await allResults(first, first.pages[1], ['John Doe'])).some((r) => r.link.id === ids.A2.custom), 'page 2 still finds John Doe');
    assert.ok((await allResults(second, second.page, ['John Doe'])).some((r) => r.link.id === ids.B1.custom), 'the other business still finds John Doe');
    const gone = await dashboard(first.key, 'DELETE', LINKS, { page_id: first.pages[0], url: customUrl });
    assert.equal(gone.status, 200, gone.text);
    assert.equal(gone.body.deleted_count, 1, 'one entry, on page 1');
    assert.ok((await allResults(first, first.pages[1], ['John Doe'])).some((r) => r.link.id === ids.A2.custom), 'page 2 still finds John Doe after the delete');
    assert.equal((await listLinks(first, first.pages[1])).total, 2, 'page 2 keeps both links');
  });
});

describe('two businesses', () => {
  test("a business's search, lists and /all hold only its own links, even for the same url", async () => {
    const b1 = await allResults(second, second.page, QUERIES);
    assert.ok(b1.length > 0, 'the second business finds its own data');
    assert.deepEqual([...new Set(b1.map((r) => r.link.id))], [ids.B1.custom], "only its own link, never the first business's");
    const all = (await dashboard(second.key, 'GET', `${LINKS}/all`)).body;
    assert.deepEqual(all.pages_data.map((p) => p.page_id), [second.page], 'its /all lists only its page');
    assert.equal(all.total_crm_links, 1);
    const firstAll = (await dashboard(first.key, 'GET', `${LINKS}/all`)).body;
    assert.deepEqual(firstAll.pages_data.map((p) => p.page_id).sort(), [...first.pages].sort(), "the first business's /all lists its two pages");
    assert.ok(!JSON.stringify(firstAll).includes(ids.B1.custom), "and nothing of the second business's");
  });

  test("one business's key cannot read or change the other's page", async () => {
    const page = first.pages[1];
    const calls = [
      ['GET', `${LINKS}?${query({ page_id: page })}`],
      ['GET', `${SEARCH}?${query({ page_id: page, channel: 'messenger', q: 'John Doe' })}`],
      ['GET', `/api/dashboard/rag/documents/details?${query({ page_id: page, source: 'crm' })}`],
      ['PUT', `${LINKS}/status`, { page_id: page, url: hubspotUrl, is_active: false }],
      ['DELETE', LINKS, { page_id: page, url: hubspotUrl }],
      ['POST', `${LINKS}/refresh`, { page_id: page, url: hubspotUrl }],
      ['POST', LINKS, { ...asGuide(CUSTOM_EXAMPLE, page, crm.url), url: `${crm.url}/api/customers?intruder=1` }],
    ];
    for (const [method, path, body] of calls) assertError(await dashboard(second.key, method, path, body), 404, 'not_found', `${method} ${path} with the other business's key`);
    const a2 = await listLinks(first, page);
    assert.ok(a2.crm_links.every((l) => l.is_active), "the first business's links are unchanged");
    assert.equal(a2.total, 2);
  });
});
