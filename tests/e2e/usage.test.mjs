// API usage per key, end to end: the gateway counts each request of a key in its isolate and
// reports the counts to the key's limiter object some seconds after the first (20 in production;
// scripts/test starts the stack with 2), which stores them by the hour and endpoint. GET
// /api-usage (and the operator's /admin/businesses/{id}/usage) reads them; each key shows its
// last use. Nothing of it is on the request's path: the answers come first.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness, waitFor } from './support.mjs';

/** The business's usage as the operator reads it (itself no key's request). */
async function usage(id, query = 'by=hour') {
  const res = await admin('GET', `/admin/businesses/${id}/usage?${query}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

const classes = (counts) =>
  ['requests', 'status_2xx', 'status_4xx', 'status_5xx', 'rate_limited'].map((name) => counts?.[name]);

describe('usage per key', () => {
  test('a key\'s requests appear within a minute, by endpoint and class, refusals counted, with its last use', async () => {
    const { id, key, keyId } = await newBusiness();
    const limited = await admin('PATCH', `/admin/businesses/${id}`, { rate_limit: { per_minute: 6, burst: 6 } });
    assert.equal(limited.status, 200, limited.text);
    const from = { 'cf-connecting-ip': '198.51.100.23' };
    const started = Date.now();
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await api(key, 'GET', '/api-webhooks', undefined, from)).status, 200);
    }
    assertError(await api(key, 'GET', '/api-customers?email=nobody@example.com', undefined, from), 404, 'not_found');
    assertError(await api(key, 'POST', '/api-customers-sync', { customers: 'not a list' }, from), 422, 'validation_failed');
    const statuses = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await api(key, 'GET', '/api-webhooks', undefined, from)).status);
    const refused = statuses.filter((status) => status === 429).length;
    assert.ok(refused >= 4, `the limit of 6 refused ${refused}: ${statuses}`);
    // A key no business has is counted nowhere.
    assertError(await api(`cek_${'0'.repeat(48)}`, 'GET', '/api-webhooks'), 401, 'unauthorized');

    const read = await waitFor(async () => {
      const now = await usage(id);
      return now.totals.requests === 11 ? now : null;
    }, 60_000, 'the 11 requests counted', 500);
    assert.ok(Date.now() - started < 60_000, 'within a minute');
    const endpoint = (name) => read.endpoints.find((one) => one.endpoint === name);
    assert.deepEqual(classes(endpoint('GET /api-webhooks')), [9, 9 - refused, refused, 0, refused]);
    assert.deepEqual(classes(endpoint('GET /api-customers')), [1, 0, 1, 0, 0]);
    assert.deepEqual(classes(endpoint('POST /api-customers-sync')), [1, 0, 1, 0, 0]);
    assert.deepEqual(classes(read.totals), [11, 9 - refused, 2 + refused, 0, refused]);
    assert.equal(read.series.length, 48);
    assert.equal(read.series.at(-1).requests + (read.series.at(-2)?.requests ?? 0), 11, 'in this hour (or the last)');
    assert.deepEqual(read.keys.map((one) => [one.key_id, one.requests]), [[keyId, 11]]);

    const keys = await admin('GET', `/admin/businesses/${id}/api-keys`);
    const listed = keys.body.api_keys.find((one) => one.id === keyId);
    assert.equal(listed.last_used_address, '198.51.100.23');
    assert.equal(listed.last_used_endpoint, 'GET /api-webhooks');
    assert.ok(Date.parse(listed.last_used_at) >= started - 1000, listed.last_used_at);

    const days = await usage(id, 'by=day');
    assert.equal(days.series.length, 30);
    assert.equal(days.totals.requests, 11);
  });

  test('a business reads its own usage with its key, and bad or foreign queries get a clear error', async () => {
    const acme = await newBusiness();
    const other = await newBusiness();
    assert.equal((await api(acme.key, 'GET', '/api-webhooks')).status, 200);
    const own = await waitFor(async () => {
      const res = await api(acme.key, 'GET', '/api-usage?by=hour');
      assert.equal(res.status, 200, res.text);
      return res.body.totals.requests >= 1 ? res.body : null;
    }, 60_000, 'the key\'s request counted', 500);
    assert.equal(own.by, 'hour');
    assert.equal(own.key_id, null);
    const one = await api(acme.key, 'GET', `/api-usage?key_id=${acme.keyId}`);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.key_id, acme.keyId);
    assertError(await api(acme.key, 'GET', `/api-usage?key_id=${other.keyId}`), 404, 'not_found', 'another business\'s key');
    assertError(await api(acme.key, 'GET', '/api-usage?key_id=..%2F..%2Fadmin'), 404, 'not_found', 'a path for a key id');
    const wrong = await api(acme.key, 'GET', '/api-usage?by=%3Cscript%3E');
    assertError(wrong, 422, 'validation_failed', 'a period that is neither hour nor day');
    assert.equal(wrong.body.error.field, 'by');
    assertError(await api(undefined, 'GET', '/api-usage'), 401, 'unauthorized', 'no key');
    assertError(await api(acme.key, 'POST', '/api-usage', {}), 405, 'method_not_allowed');
    const others = await usage(other.id);
    assert.equal(others.totals.requests, 0, 'the other business\'s usage is its own');
  });
});
