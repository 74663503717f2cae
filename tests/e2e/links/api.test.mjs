// The CRM-links API as the guide (seed 003) shows it: its three curl examples work against the
// stack with only the base URL changed (and our own page id), authenticated as the guide does
// (`Authorization: Bearer <key>`, the business's API key); the list, per-channel lists and /all
// count a link on two channels as two entries; status changes and deletes answer the guide's
// shapes; the documents view counts what was fetched; and credentials are `***` in every answer
// while the CRM receives the real ones.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RFC3339_UTC, unique } from '../support.mjs';
import { startCrm } from './crm-server.mjs';
import { CUSTOM_EXAMPLE, HUBSPOT_EXAMPLE, SHOPIFY_EXAMPLE, asGuide, guideJohnDoe } from './guide.mjs';
import { LINKS, SMALL, addLink, businessWithPages, dashboard, documents, findEntry, listLinks, query, search, sleep, waitForFetched } from './links.mjs';

const sorted = (list) => [...list].sort();

describe("the guide's curl examples", () => {
  let crm;
  let business;
  let page;
  let emptyPage;
  const added = {};
  const bodies = {};

  before(async () => {
    crm = await startCrm(SMALL);
    business = await businessWithPages(2);
    [page, emptyPage] = business.pages;
    bodies.shopify = asGuide(SHOPIFY_EXAMPLE, page, crm.url);
    bodies.hubspot = asGuide(HUBSPOT_EXAMPLE, page, crm.url);
    bodies.custom = asGuide(CUSTOM_EXAMPLE, page, crm.url);
  });
  after(async () => {
    await crm?.close();
  });

  test('the three example bodies are added as the guide answers them', async () => {
    for (const [source, body] of Object.entries(bodies)) {
      const res = await dashboard(business.key, 'POST', LINKS, body, { 'content-type': 'application/json' });
      assert.equal(res.status, 201, `${source}: ${res.text}`);
      assert.equal(res.body.message, 'CRM link added successfully', `${source}: message`);
      assert.deepEqual(res.body.channels, body.channels, `${source}: channels`);
      assert.equal(res.body.page_id, page, `${source}: page_id`);
      const link = res.body.crm_link;
      added[source] = link;
      assert.equal(typeof link.id, 'string', `${source}: id`);
      assert.equal(link.name, body.name, `${source}: name`);
      assert.equal(link.url, body.url, `${source}: url`);
      assert.equal(link.type, 'api', `${source}: type`);
      assert.ok(body.channels.includes(link.channel), `${source}: channel ${link.channel} is one of the link's`);
      assert.deepEqual(sorted(link.channels), sorted(body.channels), `${source}: the entry's channels`);
      assert.equal(link.api_key, body.api_key === undefined ? null : '***', `${source}: api_key`);
      assert.equal(link.description, body.description, `${source}: description`);
      assert.equal(link.is_active, true, `${source}: is_active`);
      assert.equal(link.fetch_interval_minutes, 30, `${source}: the default interval`);
      assert.equal(link.fetchable, true, `${source}: fetchable`);
      assert.ok(['pending', 'ok'].includes(link.status.state), `${source}: state ${link.status.state}`);
      assert.match(link.created_at, RFC3339_UTC, `${source}: created_at`);
      assert.match(link.updated_at, RFC3339_UTC, `${source}: updated_at`);
      assert.equal('webhook_url' in link, false, `${source}: only webhook links have a webhook_url`);
    }
    assert.deepEqual(added.shopify.headers, { 'X-Shopify-Access-Token': '***' }, 'the Shopify token header is masked');
    assert.deepEqual(added.hubspot.headers, { 'Content-Type': '***' }, 'a plain header is named, its value masked');
    assert.deepEqual(added.custom.headers, { 'X-API-Key': '***', 'X-Client-ID': '***' }, 'every header value is masked, whatever its name');
  });

  test('each link is fetched with its key as a Bearer token and its headers as given', async () => {
    await waitForFetched(business, page, bodies.shopify.url, { records: SMALL.shopify });
    for (const channel of ['facebook', 'messenger']) await waitForFetched(business, page, bodies.hubspot.url, { channel });
    await waitForFetched(business, page, bodies.custom.url, { records: SMALL.custom });
    const [shopify] = crm.requestsTo('shopify');
    assert.equal(shopify.headers.authorization, 'Bearer shppa_1234567890', 'Shopify: api_key as a Bearer token');
    assert.equal(shopify.headers['x-shopify-access-token'], 'shppa_1234567890', 'Shopify: the access token header');
    assert.equal(shopify.status, 200, 'Shopify accepted the request');
    const [hubspot] = crm.requestsTo('hubspot');
    assert.equal(hubspot.headers.authorization, 'Bearer pat-na1-1234567890', 'HubSpot: api_key as a Bearer token');
    assert.equal(hubspot.status, 200, 'HubSpot accepted the request');
    const [custom] = crm.requestsTo('custom');
    assert.equal(custom.headers['x-api-key'], 'internal-key-123', 'custom: X-API-Key as given');
    assert.equal(custom.headers['x-client-id'], 'facebook-bot', 'custom: X-Client-ID as given');
    assert.equal(custom.headers.authorization, undefined, 'custom: no api_key, so no Authorization');
    assert.equal(custom.status, 200, 'the custom CRM accepted the request');
  });

  test("the page's list counts a link on two channels as two entries, and filters by channel", async () => {
    const all = await listLinks(business, page);
    assert.equal(all.page_id, page, 'page_id');
    assert.equal(all.channel, null, 'channel is null when not given');
    assert.equal(all.total, 4, 'Shopify (messenger), HubSpot (facebook, messenger), custom (facebook)');
    assert.equal(all.active_count, 4, 'active_count');
    assert.equal(all.inactive_count, 0, 'inactive_count');
    assert.equal(all.crm_links.length, 4, 'entries');
    const hubspotEntries = all.crm_links.filter((l) => l.url === bodies.hubspot.url);
    assert.deepEqual(sorted(hubspotEntries.map((l) => l.channel)), ['facebook', 'messenger'], 'HubSpot is one entry per channel');
    for (const entry of hubspotEntries) assert.deepEqual(sorted(entry.channels), ['facebook', 'messenger'], 'each entry names every channel of its url');
    for (const entry of all.crm_links) {
      assert.equal(entry.status.state, 'ok', `${entry.name} (${entry.channel}) was fetched`);
      assert.equal(entry.status.last_error, null, `${entry.name}: no error`);
      assert.equal(entry.status.last_http_status, 200, `${entry.name}: the CRM answered 200`);
      assert.match(entry.status.last_fetched_at, RFC3339_UTC, `${entry.name}: last_fetched_at`);
      assert.match(entry.status.next_fetch_at, RFC3339_UTC, `${entry.name}: next_fetch_at`);
      assert.ok(entry.status.chunks >= entry.status.records && entry.status.records > 0, `${entry.name}: records ${entry.status.records}, chunks ${entry.status.chunks}`);
    }
    const messenger = await listLinks(business, page, 'messenger');
    assert.equal(messenger.channel, 'messenger');
    assert.deepEqual(sorted(messenger.crm_links.map((l) => l.name)), ['HubSpot Contacts', 'Shopify Customers'], 'messenger: Shopify and HubSpot');
    assert.ok(messenger.crm_links.every((l) => l.channel === 'messenger'), 'messenger entries only');
    assert.equal(messenger.total, 2);
    const facebook = await listLinks(business, page, 'facebook');
    assert.deepEqual(sorted(facebook.crm_links.map((l) => l.name)), ['HubSpot Contacts', 'Internal CRM'], 'facebook: HubSpot and the custom CRM');
    const instagram = await listLinks(business, page, 'instagram');
    assert.deepEqual([instagram.total, instagram.crm_links], [0, []], 'nothing on instagram');
  });

  test('/all shows every Facebook page of the business with its links grouped by channel', async () => {
    const res = await dashboard(business.key, 'GET', `${LINKS}/all`);
    assert.equal(res.status, 200, res.text);
    const all = res.body;
    assert.equal(all.company_id, business.id, 'company_id is the business');
    assert.equal(all.company_name, business.business.name, 'company_name');
    assert.equal(all.total_pages, 2, 'both pages, the one without links too');
    assert.equal(all.total_crm_links, 4, 'entries over all pages');
    assert.equal(all.total_active, 4);
    assert.equal(all.total_inactive, 0);
    const ours = all.pages_data.find((p) => p.page_id === page);
    assert.ok(ours, 'the page with links');
    assert.deepEqual(sorted(ours.facebook_crm_links.map((l) => l.name)), ['HubSpot Contacts', 'Internal CRM'], 'facebook group');
    assert.deepEqual(sorted(ours.messenger_crm_links.map((l) => l.name)), ['HubSpot Contacts', 'Shopify Customers'], 'messenger group');
    assert.deepEqual(ours.instagram_crm_links, [], 'instagram group');
    assert.deepEqual(ours.whatsapp_crm_links, [], 'whatsapp group');
    assert.deepEqual(ours.legacy_crm_links, [], 'legacy group');
    assert.equal(ours.total_active, 4);
    assert.equal(ours.total_inactive, 0);
    const empty = all.pages_data.find((p) => p.page_id === emptyPage);
    assert.ok(empty, 'the page without links is listed');
    assert.deepEqual([empty.facebook_crm_links, empty.messenger_crm_links, empty.total_active, empty.total_inactive], [[], [], 0, 0], 'and is empty');
  });

  test("search finds the guide's John Doe in the guide's processed text format", async () => {
    const found = await search(business, { page_id: page, channel: 'facebook', q: 'John Doe', mode: 'keyword' });
    assert.equal(found.query, 'John Doe');
    assert.equal(found.page_id, page);
    assert.equal(found.channel, 'facebook');
    assert.equal(found.mode, 'keyword');
    assert.equal(found.embedder, 'local:all-minilm-l6-v2');
    assert.equal(found.count, found.results.length, 'count');
    const [top] = found.results;
    assert.ok(top, 'a result');
    assert.equal(top.text, guideJohnDoe(0), 'the chunk is the guide\'s five lines for John Doe, the custom CRM\'s first record');
    assert.equal(top.record, 'customers[0]');
    assert.equal(top.part, 0);
    assert.equal(typeof top.score, 'number');
    assert.deepEqual(top.link, { id: added.custom.id, name: 'Internal CRM', url: bodies.custom.url, type: 'api' }, 'the result names its link');
    const semantic = await search(business, { page_id: page, channel: 'facebook', q: 'What plan is John Doe on?' });
    assert.equal(semantic.mode, 'semantic', 'semantic is the default mode');
    assert.ok(semantic.results.some((r) => r.text === guideJohnDoe(0)), 'semantic search finds him too');
    const messenger = await search(business, { page_id: page, channel: 'messenger', q: 'John Doe', top_k: 20, mode: 'keyword' });
    assert.ok(!messenger.results.some((r) => r.link.url === bodies.custom.url), 'the custom CRM is not linked on messenger');
  });

  test('the documents view counts records, chunks and embeddings of each link', async () => {
    const view = await documents(business, page);
    assert.equal(view.page_id, page);
    assert.equal(view.source, 'crm');
    assert.equal(view.documents.length, 3, 'one document per linked url');
    assert.equal(view.total_documents, 3);
    let chunks = 0;
    let embeddings = 0;
    for (const document of view.documents) {
      const name = document.link.name;
      assert.equal(document.state, 'ok', `${name}: state`);
      assert.equal(document.last_error, null, `${name}: last_error`);
      assert.equal(document.embeddings, document.chunks, `${name}: every chunk embedded`);
      assert.ok(document.records > 0 && document.chunks >= document.records, `${name}: ${document.records} records, ${document.chunks} chunks`);
      assert.equal(document.embedder, 'local:all-minilm-l6-v2', `${name}: embedder`);
      chunks += document.chunks;
      embeddings += document.embeddings;
    }
    const byName = Object.fromEntries(view.documents.map((d) => [d.link.name, d]));
    assert.equal(byName['Shopify Customers'].records, SMALL.shopify, 'Shopify: one record per customer');
    assert.equal(byName['Internal CRM'].records, SMALL.custom, 'custom: one record per customer');
    assert.deepEqual(sorted(byName['HubSpot Contacts'].channels), ['facebook', 'messenger'], 'HubSpot channels');
    assert.deepEqual(sorted(byName['HubSpot Contacts'].active_channels), ['facebook', 'messenger'], 'HubSpot active channels');
    assert.equal(view.total_chunks, chunks, 'total_chunks');
    assert.equal(view.total_embeddings, embeddings, 'total_embeddings');
  });

  test("PUT status deactivates the channels given, with the guide's answer", async () => {
    const body = { page_id: page, url: bodies.hubspot.url, channels: ['facebook'], is_active: false };
    const res = await dashboard(business.key, 'PUT', `${LINKS}/status`, body);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { message: 'CRM link status updated successfully', updated_count: 1, url: body.url, channels: ['facebook'], is_active: false });
    const facebook = await findEntry(business, page, body.url, 'facebook');
    const messenger = await findEntry(business, page, body.url, 'messenger');
    assert.equal(facebook.is_active, false, 'facebook is inactive');
    assert.equal(messenger.is_active, true, 'messenger stays active');
    const list = await listLinks(business, page);
    assert.deepEqual([list.total, list.active_count, list.inactive_count], [4, 3, 1], 'the counts');
    const all = (await dashboard(business.key, 'GET', `${LINKS}/all`)).body;
    assert.deepEqual([all.total_crm_links, all.total_active, all.total_inactive], [4, 3, 1], '/all counts');
  });

  test("DELETE removes the link from the channels given, with the guide's answer", async () => {
    const body = { page_id: page, url: bodies.hubspot.url, channels: ['facebook', 'messenger'] };
    const res = await dashboard(business.key, 'DELETE', LINKS, body);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { message: 'CRM link deleted successfully', deleted_count: 2, url: body.url, channels: ['facebook', 'messenger'] });
    const list = await listLinks(business, page);
    assert.deepEqual([list.total, list.active_count, list.inactive_count], [2, 2, 0], 'Shopify and the custom CRM are left');
    const all = (await dashboard(business.key, 'GET', `${LINKS}/all`)).body;
    assert.equal(all.total_crm_links, 2, '/all agrees');
    const again = await dashboard(business.key, 'DELETE', LINKS, body);
    assert.equal(again.status, 404, `deleting it again: ${again.text}`);
  });

  test('a database link is stored but never fetched', async () => {
    const url = `${crm.url}/db/customers`;
    const { crm_link: link } = await addLink(business, { page_id: page, channels: ['messenger'], name: 'Warehouse DB', url, type: 'database', is_active: true });
    assert.equal(link.type, 'database');
    assert.equal(link.fetchable, false, 'not fetchable');
    assert.equal(link.status.state, 'not_fetched', 'state not_fetched');
    await sleep(3_000);
    assert.equal(crm.requestsTo('/db/customers').length, 0, 'the stack never called it');
    assert.equal((await findEntry(business, page, url, 'messenger')).status.state, 'not_fetched', 'still not fetched');
  });
});

describe('credentials in answers', () => {
  const apiKey = `sk-live-${unique('key')}`;
  const headerKey = `hdr-${unique('apikey')}`;
  const cookie = `session=${unique('cookie')}`;
  const clientSecret = `cs-${unique('secret')}`;
  // A credential under a name that does not look like one (Supabase's): still never shown.
  const supabaseKey = `sb-${unique('apikey')}`;
  const secrets = [apiKey, headerKey, cookie, clientSecret, supabaseKey];
  let crm;
  let business;
  let url;
  const answers = [];

  before(async () => {
    crm = await startCrm({ ...SMALL, credentials: { custom: headerKey } });
    business = await businessWithPages(1);
    url = crm.urls.custom;
  });
  after(async () => {
    await crm?.close();
  });

  test('the key and every header value are *** in every answer, the header names as given', async () => {
    const body = {
      page_id: business.page,
      channels: ['facebook', 'messenger'],
      name: 'Secret CRM',
      url,
      type: 'api',
      api_key: apiKey,
      headers: { 'X-API-Key': headerKey, Cookie: cookie, 'X-Client-Secret': clientSecret, 'X-Client-ID': 'facebook-bot', apikey: supabaseKey },
      is_active: true,
    };
    const created = await dashboard(business.key, 'POST', LINKS, body);
    assert.equal(created.status, 201, created.text);
    answers.push(['POST', created]);
    const expectedHeaders = { 'X-API-Key': '***', Cookie: '***', 'X-Client-Secret': '***', 'X-Client-ID': '***', apikey: '***' };
    assert.equal(created.body.crm_link.api_key, '***', 'POST: api_key');
    assert.deepEqual(created.body.crm_link.headers, expectedHeaders, 'POST: headers');
    await waitForFetched(business, business.page, url, { channel: 'facebook' });
    await waitForFetched(business, business.page, url, { channel: 'messenger' });
    const calls = [
      ['GET list', 'GET', `${LINKS}?${query({ page_id: business.page })}`],
      ['GET list of a channel', 'GET', `${LINKS}?${query({ page_id: business.page, channel: 'messenger' })}`],
      ['GET /all', 'GET', `${LINKS}/all`],
      ['documents', 'GET', `/api/dashboard/rag/documents/details?${query({ page_id: business.page, source: 'crm' })}`],
      ['search', 'GET', `/api/dashboard/rag/search?${query({ page_id: business.page, channel: 'facebook', q: 'John Doe', top_k: 20 })}`],
      ['refresh', 'POST', `${LINKS}/refresh`, { page_id: business.page, url }],
      ['PUT status', 'PUT', `${LINKS}/status`, { page_id: business.page, url, channels: ['facebook'], is_active: false }],
    ];
    for (const [what, method, path, payload] of calls) {
      const res = await dashboard(business.key, method, path, payload);
      assert.ok(res.status < 300, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
      answers.push([what, res]);
    }
    const list = answers.find(([what]) => what === 'GET list')[1].body;
    assert.equal(list.crm_links.length, 2);
    for (const entry of list.crm_links) {
      assert.equal(entry.api_key, '***', `list (${entry.channel}): api_key`);
      assert.deepEqual(entry.headers, expectedHeaders, `list (${entry.channel}): headers`);
    }
    const all = answers.find(([what]) => what === 'GET /all')[1].body;
    for (const entry of [...all.pages_data[0].facebook_crm_links, ...all.pages_data[0].messenger_crm_links]) {
      assert.deepEqual([entry.api_key, entry.headers], ['***', expectedHeaders], `/all (${entry.channel}): masked`);
    }
    for (const [what, res] of answers) {
      for (const secret of secrets) assert.ok(!res.text.includes(secret), `${what}: the answer shows a secret (${secret.slice(0, 8)}…)`);
    }
  });

  test('the CRM received the real key as a Bearer token and the real headers', async () => {
    const requests = crm.requestsTo('custom');
    assert.ok(requests.length >= 1, 'the CRM was called');
    for (const request of requests) {
      assert.equal(request.headers.authorization, `Bearer ${apiKey}`, 'Authorization: Bearer <api_key>');
      assert.equal(request.headers['x-api-key'], headerKey, 'X-API-Key');
      assert.equal(request.headers.cookie, cookie, 'Cookie');
      assert.equal(request.headers['x-client-secret'], clientSecret, 'X-Client-Secret');
      assert.equal(request.headers['x-client-id'], 'facebook-bot', 'X-Client-ID');
      assert.equal(request.headers.apikey, supabaseKey, 'apikey');
    }
  });
});
