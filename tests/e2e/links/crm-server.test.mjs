// The local CRM of the CRM-links tests, checked on its own (no stack needed): it pages as Shopify
// and HubSpot do to the end with the right totals, refuses wrong credentials in each CRM's shape,
// throttles with Retry-After, serves CSV and text with their types, fails, slows, grows and goes
// down when told, changes its data between fetches; and its data and the labelled questions keep
// the promises the search-quality test relies on.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FULL_SIZES, PINNED_CUSTOM, PINNED_HUBSPOT, PINNED_SHOPIFY, SOURCES, generateSource, recordEmail, recordId, recordName } from './crm-data.mjs';
import { CSV_PATH, DEFAULT_CREDENTIALS, HUBSPOT_PATH, OVERSIZE_BYTES, SHOPIFY_PATH, startCrm } from './crm-server.mjs';
import { QUESTIONS } from './questions.mjs';

const SHOPIFY_AUTH = { 'x-shopify-access-token': DEFAULT_CREDENTIALS.shopify };
const HUBSPOT_AUTH = { authorization: `Bearer ${DEFAULT_CREDENTIALS.hubspot}` };
const CUSTOM_AUTH = { 'x-api-key': DEFAULT_CREDENTIALS.custom };

async function get(url, headers = {}) {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // text stays text
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** `Link: <a>; rel="next", <b>; rel="previous"` as { next: a, previous: b }. */
function parseLink(header) {
  const links = {};
  for (const part of (header ?? '').split(/,\s*(?=<)/)) {
    const match = /^<([^>]+)>;\s*rel="([a-z]+)"$/.exec(part.trim());
    if (match) links[match[2]] = match[1];
  }
  return links;
}

/** The guide's flattened text of one record at `prefix` (`customers[12]`): one line per leaf. */
function flatten(value, prefix) {
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) => flatten(child, Array.isArray(value) ? `${prefix}[${key}]` : `${prefix}.${key}`));
  }
  return [`${prefix}: ${value}`];
}

describe('the local CRM', () => {
  let crm;
  before(async () => {
    crm = await startCrm();
  });
  after(async () => {
    await crm?.close();
  });

  test('Shopify pages by Link headers to the end: 300 customers in 6 pages of 50, each once', async () => {
    const seen = [];
    let url = crm.urls.shopify;
    let pages = 0;
    let previous;
    while (url) {
      const page = await get(url, SHOPIFY_AUTH);
      assert.equal(page.status, 200, `page ${pages + 1}: ${page.text.slice(0, 200)}`);
      assert.match(page.headers.get('x-shopify-shop-api-call-limit'), /^\d+\/40$/, 'the call limit header');
      const links = parseLink(page.headers.get('link'));
      if (pages === 0) assert.equal(links.previous, undefined, 'the first page has no previous link');
      else assert.ok(links.previous, `page ${pages + 1} links back`);
      for (const link of Object.values(links)) {
        const parsed = new URL(link);
        assert.equal(parsed.origin, crm.url, 'links point at the server itself');
        assert.deepEqual([...parsed.searchParams.keys()].sort(), ['limit', 'page_info'], 'a page link carries only limit and page_info');
      }
      seen.push(...page.body.customers.map((c) => c.id));
      previous = url;
      url = links.next;
      pages += 1;
    }
    assert.equal(pages, 6, 'pages');
    assert.equal(seen.length, 300, 'customers over all pages');
    assert.equal(new Set(seen).size, 300, 'no customer twice');
    assert.deepEqual(seen, crm.data.shopify.map((c) => c.id), 'in list order');
    const followUps = crm.requestsTo('shopify').filter((r) => r.query.page_info);
    assert.equal(followUps.length, 5, 'five page_info follow-ups were recorded');
    assert.ok(previous.includes('page_info='));
    const small = await get(`${crm.urls.shopify}?limit=250`, SHOPIFY_AUTH);
    assert.equal(small.body.customers.length, 250, 'limit is honoured up to 250');
    assert.equal((await get(`${crm.urls.shopify}?limit=999`, SHOPIFY_AUTH)).body.customers.length, 250, 'and capped there');
    assert.equal((await get(`${crm.urls.shopify}?page_info=garbage`, SHOPIFY_AUTH)).status, 400, 'a made-up page_info is refused');
  });

  test('a Shopify customer has the fields the REST Admin API gives', async () => {
    const page = await get(`${crm.urls.shopify}?limit=20`, SHOPIFY_AUTH);
    const priya = page.body.customers.find((c) => c.id === 7310243561001);
    assert.ok(priya, 'a pinned customer is on the first page');
    for (const field of ['id', 'email', 'first_name', 'last_name', 'phone', 'tags', 'note', 'orders_count', 'total_spent', 'currency', 'state', 'verified_email', 'created_at', 'updated_at', 'default_address']) {
      assert.ok(field in priya, `${field} is present`);
    }
    assert.equal(typeof priya.id, 'number', 'ids are numbers');
    assert.equal(priya.tags, 'gold-support, vip', 'tags are one comma-separated string');
    assert.match(priya.total_spent, /^\d+\.\d{2}$/, 'total_spent is a decimal string');
    assert.match(priya.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/, 'times carry the shop zone');
    assert.deepEqual(Object.keys(priya.default_address), ['address1', 'city', 'province', 'country', 'country_code', 'zip']);
  });

  test('HubSpot pages by paging.next to the end: 250 contacts, 10 a page by default', async () => {
    const seen = [];
    let url = crm.urls.hubspot;
    let pages = 0;
    while (url) {
      const page = await get(url, HUBSPOT_AUTH);
      assert.equal(page.status, 200, `page ${pages + 1}`);
      seen.push(...page.body.results.map((c) => c.id));
      const next = page.body.paging?.next;
      if (next) {
        assert.equal(new URL(next.link).searchParams.get('after'), next.after, 'the link carries the after cursor');
        assert.equal(new URL(next.link).origin, crm.url, 'the link is a full URL on the server');
      }
      url = next?.link;
      pages += 1;
    }
    assert.equal(pages, 25, 'pages');
    assert.equal(seen.length, 250, 'contacts');
    assert.equal(new Set(seen).size, 250, 'no contact twice');
    const big = await get(`${crm.urls.hubspot}?limit=100`, HUBSPOT_AUTH);
    assert.equal(big.body.results.length, 100, 'limit up to 100');
    const contact = big.body.results.find((c) => c.id === '501');
    assert.ok(contact, 'contact 501 is among the first 100');
    assert.equal(typeof contact.id, 'string', 'HubSpot ids are strings');
    assert.equal(contact.archived, false);
    assert.equal(contact.properties.hs_object_id, '501');
    for (const field of ['firstname', 'lastname', 'email', 'phone', 'company', 'lifecyclestage', 'createdate', 'lastmodifieddate', 'support_plan']) {
      assert.ok(field in contact.properties, `property ${field}`);
    }
    const last = await get(`${crm.urls.hubspot}?limit=100&after=${big.body.paging.next.after}`, HUBSPOT_AUTH);
    assert.equal(last.body.results[0].id, crm.data.hubspot[100].id, 'after continues where the page ended');
  });

  test('each CRM refuses a wrong or missing credential in its own shape', async () => {
    const shopify = await get(crm.urls.shopify, { 'x-shopify-access-token': 'shppa_wrong' });
    assert.equal(shopify.status, 401);
    assert.deepEqual(shopify.body, { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' });
    assert.equal((await get(crm.urls.shopify, { authorization: `Bearer ${DEFAULT_CREDENTIALS.shopify}` })).status, 401, 'Shopify wants its own header, not Bearer');
    const hubspot = await get(crm.urls.hubspot);
    assert.equal(hubspot.status, 401);
    assert.equal(hubspot.body.status, 'error');
    assert.equal(hubspot.body.category, 'INVALID_AUTHENTICATION');
    assert.match(hubspot.body.message, /^Authentication credentials not found/);
    assert.equal(typeof hubspot.body.correlationId, 'string');
    assert.equal((await get(crm.urls.hubspot, { authorization: 'Bearer pat-na1-wrong' })).status, 401);
    assert.equal((await get(crm.urls.custom)).status, 401, 'the custom API without X-API-Key');
    const custom = await get(crm.urls.custom, CUSTOM_AUTH);
    assert.equal(custom.status, 200);
    assert.equal(custom.body.customers.length, 60);
    assert.deepEqual(Object.keys(custom.body.customers[0]), ['id', 'name', 'email', 'subscription', 'support_level'], "the guide's example shape");
    assert.equal((await get(`${crm.url}/nothing-here`)).status, 404);
  });

  test('a 429 is answered with Retry-After in each CRM’s form, and the full Shopify bucket throttles itself', async () => {
    crm.fail({ status: 429, retryAfter: 2 });
    const shopify = await get(crm.urls.shopify, SHOPIFY_AUTH);
    assert.equal(shopify.status, 429);
    assert.equal(shopify.headers.get('retry-after'), '2.0', 'Shopify writes seconds with a decimal');
    assert.match(shopify.body.errors, /^Exceeded 2 calls per second/);
    crm.fail({ status: 429, retryAfter: 7, match: (r) => r.path === HUBSPOT_PATH });
    assert.equal((await get(crm.urls.custom, CUSTOM_AUTH)).status, 200, 'a failure for one path leaves the others alone');
    const hubspot = await get(crm.urls.hubspot, HUBSPOT_AUTH);
    assert.equal(hubspot.status, 429);
    assert.equal(hubspot.headers.get('retry-after'), '7');
    assert.equal(hubspot.body.errorType, 'RATE_LIMIT');
    assert.equal((await get(crm.urls.hubspot, HUBSPOT_AUTH)).status, 200, 'one failure, then normal answers');

    const busy = await startCrm({ shopify: 3, hubspot: 1, custom: 1 });
    try {
      const statuses = [];
      for (let i = 0; i < 42; i += 1) statuses.push((await get(busy.urls.shopify, SHOPIFY_AUTH)).status);
      assert.ok(statuses.slice(0, 40).every((s) => s === 200), 'forty calls fit in the bucket');
      assert.equal(statuses.at(-1), 429, 'a burst past forty is throttled');
      busy.setBucket(false);
      assert.equal((await get(busy.urls.shopify, SHOPIFY_AUTH)).status, 200, 'the bucket can be turned off');
    } finally {
      await busy.close();
    }
  });

  test('every injected status answers the next N requests, then the CRM answers normally', async () => {
    for (const status of [401, 404, 500, 503]) {
      crm.fail({ status, times: 2, match: (r) => r.path === SHOPIFY_PATH });
      assert.equal((await get(crm.urls.shopify, SHOPIFY_AUTH)).status, status, `${status} once`);
      assert.equal((await get(crm.urls.shopify, SHOPIFY_AUTH)).status, status, `${status} twice`);
      assert.equal((await get(crm.urls.shopify, SHOPIFY_AUTH)).status, 200, `after ${status}`);
    }
    crm.fail({ status: 500, times: Infinity, match: (r) => Boolean(r.query.page_info) });
    assert.equal((await get(crm.urls.shopify, SHOPIFY_AUTH)).status, 200, 'the first page is not matched');
    assert.equal((await get(parseLink((await get(crm.urls.shopify, SHOPIFY_AUTH)).headers.get('link')).next, SHOPIFY_AUTH)).status, 500, 'later pages fail');
    crm.clearFailures();
    assert.equal((await get(`${crm.urls.shopify}?limit=1`, SHOPIFY_AUTH)).status, 200, 'cleared');
  });

  test('the CSV export and the text file are served with their content types', async () => {
    const csv = await get(crm.urls.csv);
    assert.equal(csv.status, 200);
    assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
    const lines = csv.text.trimEnd().split('\r\n');
    assert.equal(lines[0], 'id,name,email,subscription,support_level');
    assert.equal(lines.length, 61, 'a header and one row per custom customer');
    assert.ok(lines.includes('cust-123,John Doe,john@example.com,Premium,Gold'), "the guide's John Doe is a row");
    const text = await get(crm.urls.text);
    assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.match(text.text, /within 30 days of delivery/);
  });

  test('a slow answer comes after the delay; an oversized one is over 4 MiB and still valid', async () => {
    crm.slow(600);
    const started = Date.now();
    assert.equal((await get(crm.urls.custom, CUSTOM_AUTH)).status, 200);
    assert.ok(Date.now() - started >= 550, 'the answer waited');
    crm.oversize({ match: (r) => r.path === SHOPIFY_PATH });
    const big = await get(crm.urls.shopify, SHOPIFY_AUTH);
    assert.ok(Number(big.headers.get('content-length')) > OVERSIZE_BYTES, 'over the limit by its length');
    assert.equal(big.body.customers.length, 50, 'the JSON stays whole');
    crm.oversize({ bytes: 1000, match: (r) => r.path === CSV_PATH });
    assert.ok((await get(crm.urls.csv)).text.length > 1000, 'text grows by lines');
  });

  test('a CRM that is down refuses connections, and comes back on the same port with its data', async () => {
    const downed = await startCrm({ shopify: 3, hubspot: 2, custom: 2 });
    try {
      const url = downed.urls.custom;
      await downed.down();
      await assert.rejects(fetch(url, { headers: CUSTOM_AUTH }), 'refused while down');
      await downed.up();
      const back = await get(url, CUSTOM_AUTH);
      assert.equal(back.status, 200);
      assert.equal(back.body.customers.length, 2);
    } finally {
      await downed.close();
    }
  });

  test('changed, added and removed records show in the next fetch', async () => {
    const small = await startCrm({ shopify: { customers: 5, pageSize: 2 }, hubspot: 4, custom: 3 });
    try {
      const first = small.data.shopify[0];
      small.update('shopify', first.id, { note: 'Moved to the platinum plan', default_address: { city: 'Kinsale' } });
      const [added] = small.add('shopify', 1);
      const removed = small.remove('shopify', small.data.shopify[2].id);
      const all = [];
      let url = small.urls.shopify;
      while (url) {
        const page = await get(url, SHOPIFY_AUTH);
        all.push(...page.body.customers);
        url = parseLink(page.headers.get('link')).next;
      }
      assert.equal(all.length, 5, 'one added, one removed');
      assert.equal(all[0].note, 'Moved to the platinum plan', 'the change');
      assert.equal(all[0].default_address.city, 'Kinsale', 'nested fields merge');
      assert.equal(all[0].default_address.country, first.default_address.country, 'the rest of the address stays');
      assert.ok(all.some((c) => c.id === added.id), 'the added customer');
      assert.ok(!all.some((c) => c.id === removed.id), 'not the removed one');
      assert.equal(all.at(-1).id, added.id, 'added at the end');
      assert.notEqual(recordName(added), recordName(removed), 'an added customer is someone new');
      small.update('hubspot', small.data.hubspot[0].id, { properties: { lifecyclestage: 'customer' } });
      const contact = (await get(small.urls.hubspot, HUBSPOT_AUTH)).body.results[0];
      assert.equal(contact.properties.lifecyclestage, 'customer');
      assert.equal(contact.properties.lastmodifieddate, contact.updatedAt, 'the change moves updatedAt');
      assert.throws(() => small.remove('custom', 'cust-nope'));
    } finally {
      await small.close();
    }
  });

  test('every request is recorded with its method, path, query and headers', async () => {
    const before = crm.requests.length;
    await get(`${crm.urls.hubspot}?limit=3`, { ...HUBSPOT_AUTH, 'x-custom-header': 'value' });
    const [record] = crm.requests.slice(before);
    assert.equal(record.method, 'GET');
    assert.equal(record.path, HUBSPOT_PATH);
    assert.deepEqual(record.query, { limit: '3' });
    assert.equal(record.headers.authorization, HUBSPOT_AUTH.authorization);
    assert.equal(record.headers['x-custom-header'], 'value');
    assert.equal(record.status, 200);
  });
});

describe('the generated data', () => {
  const full = Object.fromEntries(SOURCES.map((s) => [s, generateSource(s, { size: FULL_SIZES[s] }).records]));

  test('is the same for the same seed and differs for another', () => {
    assert.deepEqual(generateSource('shopify', { size: 40 }).records, generateSource('shopify', { size: 40 }).records);
    assert.notDeepEqual(generateSource('shopify', { size: 40, seed: 4 }).records, generateSource('shopify', { size: 40 }).records);
  });

  test('every source has its size, distinct ids, names and emails, and every pinned record', () => {
    const pinned = { shopify: PINNED_SHOPIFY, hubspot: PINNED_HUBSPOT, custom: PINNED_CUSTOM };
    for (const source of SOURCES) {
      const records = full[source];
      assert.equal(records.length, FULL_SIZES[source], `${source} size`);
      for (const [what, of] of [['ids', recordId], ['names', recordName], ['emails', recordEmail]]) {
        assert.equal(new Set(records.map(of)).size, records.length, `${source}: distinct ${what}`);
      }
      for (const pin of pinned[source]) assert.ok(records.some((r) => recordId(r) === String(pin.id)), `${source} has ${pin.id}`);
    }
    const small = generateSource('shopify', { size: 4 }).records;
    assert.deepEqual(small.map((r) => r.id), [7310243561001, 7310243561002, 7310243561003, 7310243561004], 'a small store is the first pinned customers');
    assert.ok(generateSource('custom', { size: 5, pinned: false }).records.every((r) => !r.id.startsWith('cust-1')), 'pinned: false');
  });

  test('no filler record shares a first or last name with a pinned one, in any source', () => {
    const pinnedNames = [
      ...PINNED_SHOPIFY.map((c) => [c.first_name, c.last_name]),
      ...PINNED_HUBSPOT.map((c) => [c.firstname, c.lastname]),
      ...PINNED_CUSTOM.map((c) => c.name.split(' ')),
    ];
    const pinnedWords = new Set(pinnedNames.flat().map((w) => w.toLowerCase()));
    const pinnedIds = new Set([...PINNED_SHOPIFY, ...PINNED_HUBSPOT, ...PINNED_CUSTOM].map((c) => String(c.id)));
    for (const source of SOURCES) {
      for (const record of full[source].filter((r) => !pinnedIds.has(recordId(r)))) {
        for (const word of recordName(record).toLowerCase().split(' ')) assert.ok(!pinnedWords.has(word), `${source} filler ${recordName(record)} shares "${word}"`);
      }
    }
  });

  test('every record flattens to under 1,200 characters, one chunk at the default size', () => {
    const widest = { shopify: 'customers[999]', hubspot: 'results[999]', custom: 'customers[999]' };
    for (const source of SOURCES) {
      for (const record of full[source]) {
        const text = flatten(record, widest[source]).join('\n');
        assert.ok(text.length < 1_200, `${source} ${recordId(record)} flattens to ${text.length} characters`);
      }
    }
  });
});

describe('the labelled questions', () => {
  const full = Object.fromEntries(SOURCES.map((s) => [s, generateSource(s, { size: FULL_SIZES[s] }).records]));
  const FIELD_NAMES = ['first_name', 'last_name', 'orders_count', 'total_spent', 'verified_email', 'default_address', 'support_level', 'subscription', 'lifecyclestage', 'jobtitle', 'support_plan', 'hs_object_id', 'createdate'];

  test('there are at least 50, a third of them paraphrased, over all three sources', () => {
    assert.ok(QUESTIONS.length >= 50, `${QUESTIONS.length} questions`);
    const paraphrased = QUESTIONS.filter((q) => q.paraphrased).length;
    assert.ok(paraphrased * 3 >= QUESTIONS.length, `${paraphrased} paraphrased`);
    for (const source of SOURCES) assert.ok(QUESTIONS.filter((q) => q.source === source).length >= 10, `${source} questions`);
    assert.equal(new Set(QUESTIONS.map((q) => q.question)).size, QUESTIONS.length, 'no question twice');
  });

  test('each expects a record that is in its source exactly once', () => {
    for (const q of QUESTIONS) {
      assert.equal(typeof q.expect, 'string', `${q.question}: expect is the id as text`);
      assert.equal(full[q.source].filter((r) => recordId(r) === q.expect).length, 1, `${q.question}: ${q.source} ${q.expect}`);
      assert.equal(typeof q.paraphrased, 'boolean');
    }
  });

  test('a paraphrased question names no field and neither the full name, email nor id of its record', () => {
    for (const q of QUESTIONS.filter((x) => x.paraphrased)) {
      const record = full[q.source].find((r) => recordId(r) === q.expect);
      const asked = q.question.toLowerCase();
      for (const value of [recordName(record), recordEmail(record), q.expect, ...FIELD_NAMES]) {
        assert.ok(!asked.includes(value.toLowerCase()), `"${q.question}" contains "${value}"`);
      }
    }
  });

  test('a plain question names its record as stored', () => {
    for (const q of QUESTIONS.filter((x) => !x.paraphrased)) {
      const record = full[q.source].find((r) => recordId(r) === q.expect);
      assert.ok(q.question.includes(recordName(record)), `"${q.question}" names ${recordName(record)}`);
    }
  });
});
