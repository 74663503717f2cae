// What the CRM-links and search endpoints refuse, and how: malformed and hostile bodies name the
// bad field (422 validation_failed), URLs that would point our fetches at a private network or a
// metadata service are refused, a body over 1 MiB is 413, a missing or wrong API key 401, another
// business's page 404 (the same as a page that does not exist), the wrong method 405, a link that
// already exists 409; search refuses a top_k outside 1..20, an empty q and unknown modes.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, assertError, request } from '../support.mjs';
import { startCrm } from './crm-server.mjs';
import { DETAILS, LINKS, SEARCH, SMALL, addLink, businessWithPages, dashboard, listLinks, pageAddress, query, waitForFetched } from './links.mjs';

let crm;
let business;
let other;

before(async () => {
  crm = await startCrm(SMALL);
  business = await businessWithPages(1);
  other = await businessWithPages(1);
});
after(async () => {
  await crm?.close();
});

const valid = () => ({ page_id: business.page, channels: ['messenger'], name: 'Customer Database', url: crm.urls.custom, type: 'api', headers: { 'X-API-Key': 'internal-key-123' }, is_active: true });
const without = (field) => {
  const body = valid();
  delete body[field];
  return body;
};
const manyHeaders = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-Header-${i}`, 'v']));

describe('a new link with a bad body', () => {
  const cases = [
    ['a JSON array', () => [], 'body'],
    ['no page_id', () => without('page_id'), 'page_id'],
    ['a page_id that is not a page id', () => ({ ...valid(), page_id: 'abc' }), 'page_id'],
    ['no channels', () => without('channels'), 'channels'],
    ['an empty channels list', () => ({ ...valid(), channels: [] }), 'channels'],
    ['an unknown channel', () => ({ ...valid(), channels: ['messenger', 'email'] }), 'channels[1]'],
    ['channels and channel both', () => ({ ...valid(), channel: 'facebook' }), 'channel'],
    ['no name', () => without('name'), 'name'],
    ['a blank name', () => ({ ...valid(), name: '   ' }), 'name'],
    ['a name over 100 characters', () => ({ ...valid(), name: 'n'.repeat(101) }), 'name'],
    ['no url', () => without('url'), 'url'],
    ['no is_active', () => without('is_active'), 'is_active'],
    ['is_active as text', () => ({ ...valid(), is_active: 'yes' }), 'is_active'],
    ['an unknown field', () => ({ ...valid(), status: 'active' }), 'status'],
    ['an unknown type', () => ({ ...valid(), type: 'graphql' }), 'type'],
    ['an api_key with "Bearer " in it', () => ({ ...valid(), api_key: 'Bearer abc' }), 'api_key'],
    ['an api_key with a space', () => ({ ...valid(), api_key: 'a b' }), 'api_key'],
    ['headers as a list', () => ({ ...valid(), headers: ['X-A'] }), 'headers'],
    ['too many headers (21)', () => ({ ...valid(), headers: manyHeaders }), 'headers'],
    ['a header value with a line break (header injection)', () => ({ ...valid(), headers: { 'X-A': 'v\r\nX-Injected: 1' } }), 'headers.X-A'],
    ['a header name with a space', () => ({ ...valid(), headers: { 'X A': 'v' } }), 'headers.X A'],
    ['a Host header', () => ({ ...valid(), headers: { Host: 'evil.example' } }), 'headers.Host'],
    ['an Authorization header and an api_key', () => ({ ...valid(), api_key: 'k', headers: { Authorization: 'Basic eDp5' } }), 'headers.Authorization'],
    ['fetch_interval_minutes under 5', () => ({ ...valid(), fetch_interval_minutes: 4 }), 'fetch_interval_minutes'],
    ['fetch_interval_minutes over a day', () => ({ ...valid(), fetch_interval_minutes: 1441 }), 'fetch_interval_minutes'],
    ['plain http to a public host', () => ({ ...valid(), url: 'http://api.crm.example/customers' }), 'url'],
    ['a private-network address (10.0.0.1)', () => ({ ...valid(), url: 'https://10.0.0.1/api/customers' }), 'url'],
    ['a private-network address (192.168.1.20)', () => ({ ...valid(), url: 'https://192.168.1.20/customers' }), 'url'],
    ['the cloud metadata service (169.254.169.254)', () => ({ ...valid(), url: 'https://169.254.169.254/latest/meta-data/' }), 'url'],
    ['the metadata service spelled as one number', () => ({ ...valid(), url: 'https://2852039166/latest/meta-data/' }), 'url'],
    ['a unique-local IPv6 address', () => ({ ...valid(), url: 'https://[fd00::1]/customers' }), 'url'],
    ['an IPv4-mapped private address', () => ({ ...valid(), url: 'https://[::ffff:10.0.0.1]/customers' }), 'url'],
    ['a javascript: URL', () => ({ ...valid(), url: 'javascript:alert(document.cookie)' }), 'url'],
    ['a file: URL', () => ({ ...valid(), url: 'file:///etc/passwd' }), 'url'],
    ['a database connection string', () => ({ ...valid(), url: 'postgres://db.example.com/crm' }), 'url'],
    ['credentials in the URL', () => ({ ...valid(), url: 'https://user:pass@crm.example.com/customers' }), 'url'],
    ['a relative URL', () => ({ ...valid(), url: '/api/customers' }), 'url'],
  ];
  for (const [description, body, field] of cases) {
    test(`${description} is refused naming ${field}`, async () => {
      const res = await dashboard(business.key, 'POST', LINKS, body());
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, field, `${description}: the field named`);
    });
  }

  test('a body that is not JSON is refused with 400', async () => {
    const res = await dashboard(business.key, 'POST', LINKS, '{"page_id": "1", "name": ', { 'content-type': 'application/json' });
    assertError(res, 400, 'malformed_request', 'broken JSON');
  });

  test('a body over 1 MiB is refused with 413', async () => {
    const res = await dashboard(business.key, 'POST', LINKS, { ...valid(), description: 'd'.repeat(1024 * 1024 + 10) });
    assertError(res, 413, 'payload_too_large', 'a 1 MiB description');
  });

  test('a refused body adds nothing', async () => {
    assert.equal((await listLinks(business, business.page)).total, 0, 'no link was stored by any refused body');
  });

  test('loopback (the local CRM) is allowed in the local stack, over http, by address and by name', async () => {
    const byName = crm.urls.csv.replace('127.0.0.1', 'localhost');
    for (const url of [crm.urls.text, byName]) {
      const res = await dashboard(business.key, 'POST', LINKS, { ...valid(), url, type: 'file', headers: undefined });
      assert.equal(res.status, 201, `${url}: ${res.text}`);
    }
  });
});

describe('who may call', () => {
  const endpoints = () => [
    ['GET', `${LINKS}?${query({ page_id: business.page })}`],
    ['POST', LINKS, valid()],
    ['PUT', `${LINKS}/status`, { page_id: business.page, url: crm.urls.custom, is_active: false }],
    ['DELETE', LINKS, { page_id: business.page, url: crm.urls.custom }],
    ['GET', `${LINKS}/all`],
    ['POST', `${LINKS}/refresh`, { page_id: business.page, url: crm.urls.custom }],
    ['GET', `${SEARCH}?${query({ page_id: business.page, channel: 'messenger', q: 'John Doe' })}`],
    ['GET', `${DETAILS}?${query({ page_id: business.page, source: 'crm' })}`],
  ];

  test('without an API key, or with a wrong one, every endpoint answers 401', async () => {
    for (const [method, path, body] of endpoints()) {
      assertError(await request(method, path, { body }), 401, 'unauthorized', `${method} ${path} without a key`);
      assertError(await dashboard('ck_wrong_key', method, path, body), 401, 'unauthorized', `${method} ${path} with a wrong Bearer key`);
      assertError(await api('ck_wrong_key', method, path, body), 401, 'unauthorized', `${method} ${path} with a wrong x-api-key`);
      assertError(await request(method, path, { body, headers: { authorization: `Basic ${Buffer.from(`x:${business.key}`).toString('base64')}` } }), 401, 'unauthorized', `${method} ${path} with Basic`);
    }
  });

  test('the key is taken as x-api-key as well as Bearer', async () => {
    const res = await api(business.key, 'GET', `${LINKS}?${query({ page_id: business.page })}`);
    assert.equal(res.status, 200, res.text);
  });

  test("another business's page is not found, exactly like a page that does not exist", async () => {
    const strangers = [other.page, pageAddress()];
    for (const page of strangers) {
      const calls = [
        ['GET', `${LINKS}?${query({ page_id: page })}`],
        ['POST', LINKS, { ...valid(), page_id: page }],
        ['PUT', `${LINKS}/status`, { page_id: page, url: crm.urls.custom, is_active: false }],
        ['DELETE', LINKS, { page_id: page, url: crm.urls.custom }],
        ['POST', `${LINKS}/refresh`, { page_id: page, url: crm.urls.custom }],
        ['GET', `${SEARCH}?${query({ page_id: page, channel: 'messenger', q: 'John Doe' })}`],
        ['GET', `${DETAILS}?${query({ page_id: page, source: 'crm' })}`],
      ];
      for (const [method, path, body] of calls) {
        assertError(await dashboard(business.key, method, path, body), 404, 'not_found', `${method} ${path} for ${page === other.page ? "another business's page" : 'an unknown page'}`);
      }
    }
    assert.equal((await listLinks(other, other.page)).total, 0, 'nothing was added to the other business');
  });
});

describe('methods, duplicates and missing links', () => {
  test('a method an endpoint does not have is 405', async () => {
    const wrong = [
      ['PATCH', LINKS],
      ['PUT', LINKS],
      ['GET', `${LINKS}/status`],
      ['DELETE', `${LINKS}/status`],
      ['POST', `${LINKS}/all`],
      ['GET', `${LINKS}/refresh`],
      ['DELETE', SEARCH],
      ['POST', DETAILS],
    ];
    for (const [method, path] of wrong) {
      assertError(await dashboard(business.key, method, path, method === 'GET' ? undefined : {}), 405, 'method_not_allowed', `${method} ${path}`);
    }
  });

  test('the same url on the same page and channel twice is 409; another channel adds it there with the new settings', async () => {
    const owner = await businessWithPages(1);
    const body = { ...valid(), page_id: owner.page };
    await addLink(owner, body);
    assertError(await dashboard(owner.key, 'POST', LINKS, body), 409, 'conflict', 'the same link again');
    assertError(await dashboard(owner.key, 'POST', LINKS, { ...body, name: 'Renamed' }), 409, 'conflict', 'the same url and channel with another name');
    const more = await dashboard(owner.key, 'POST', LINKS, { ...body, channels: ['facebook'], name: 'Renamed CRM' });
    assert.equal(more.status, 201, `adding facebook: ${more.text}`);
    const { crm_links: links } = await listLinks(owner, owner.page);
    assert.equal(links.length, 2, 'one entry per channel');
    for (const link of links) {
      assert.equal(link.name, 'Renamed CRM', `${link.channel}: the new settings apply to every channel`);
      assert.deepEqual([...link.channels].sort(), ['facebook', 'messenger'], `${link.channel}: channels`);
    }
  });

  test('status, delete and refresh of a url the page does not have are 404; bad bodies 422', async () => {
    const missing = `${crm.url}/not-linked`;
    assertError(await dashboard(business.key, 'PUT', `${LINKS}/status`, { page_id: business.page, url: missing, is_active: false }), 404, 'not_found', 'status of an unknown url');
    assertError(await dashboard(business.key, 'DELETE', LINKS, { page_id: business.page, url: missing }), 404, 'not_found', 'delete of an unknown url');
    assertError(await dashboard(business.key, 'POST', `${LINKS}/refresh`, { page_id: business.page, url: missing }), 404, 'not_found', 'refresh of an unknown url');
    const noActive = await dashboard(business.key, 'PUT', `${LINKS}/status`, { page_id: business.page, url: crm.urls.text });
    assert.equal(assertError(noActive, 422, 'validation_failed', 'status without is_active').field, 'is_active');
    const noPage = await dashboard(business.key, 'GET', LINKS);
    assert.equal(assertError(noPage, 422, 'validation_failed', 'a list without page_id').field, 'page_id');
    const badChannel = await dashboard(business.key, 'GET', `${LINKS}?${query({ page_id: business.page, channel: 'email' })}`);
    assert.equal(assertError(badChannel, 422, 'validation_failed', 'a list of an unknown channel').field, 'channel');
  });
});

describe('a search with bad parameters', () => {
  before(async () => {
    await waitForFetched(business, business.page, crm.urls.text);
  });

  const cases = [
    ['top_k 0', { top_k: 0 }, 'top_k'],
    ['top_k 21', { top_k: 21 }, 'top_k'],
    ['top_k -1', { top_k: -1 }, 'top_k'],
    ['top_k as a word', { top_k: 'five' }, 'top_k'],
    ['an empty q', { q: '' }, 'q'],
    ['a blank q', { q: '   ' }, 'q'],
    ['no q', { q: undefined }, 'q'],
    ['an unknown mode', { mode: 'fuzzy' }, 'mode'],
    ['an unknown channel', { channel: 'email' }, 'channel'],
    ['no page_id', { page_id: undefined }, 'page_id'],
  ];
  for (const [description, change, field] of cases) {
    test(`${description} is refused naming ${field}`, async () => {
      const params = { page_id: business.page, channel: 'messenger', q: 'refund', ...change };
      const res = await dashboard(business.key, 'GET', `${SEARCH}?${query(params)}`);
      assert.equal(assertError(res, 422, 'validation_failed', `GET: ${description}`).field, field, `GET: ${description}`);
      const posted = await dashboard(business.key, 'POST', SEARCH, params);
      assert.equal(assertError(posted, 422, 'validation_failed', `POST: ${description}`).field, field, `POST: ${description}`);
    });
  }

  test('top_k 1 and 20 are the bounds; POST takes the same fields as JSON', async () => {
    for (const top_k of [1, 20]) {
      const res = await dashboard(business.key, 'GET', `${SEARCH}?${query({ page_id: business.page, channel: 'messenger', q: 'refund', top_k })}`);
      assert.equal(res.status, 200, `top_k ${top_k}: ${res.text}`);
      assert.ok(res.body.results.length <= top_k, `top_k ${top_k}: at most that many results`);
    }
    const posted = await dashboard(business.key, 'POST', SEARCH, { page_id: business.page, channel: 'messenger', q: 'refund', top_k: 3, mode: 'hybrid' });
    assert.equal(posted.status, 200, posted.text);
    assert.equal(posted.body.mode, 'hybrid');
    assert.ok(posted.body.results.some((r) => r.text.includes('30 days')), 'the returns policy is found');
  });
});
