// Rate limits, end to end: each API key has a token bucket (the business's `rate_limit`, 600 a
// minute with bursts of 100 unless set) counted at the gateway; every response to a keyed request
// carries X-RateLimit-Limit/-Remaining/-Reset, and a request over the limit is 429 with
// Retry-After before it reaches its function. A client address that keeps failing to
// authenticate is refused with 429 without its requests being looked up.
//
// Loopback clients are exempt from the address limit (the local stack and every other test run
// from 127.0.0.1); these tests name other addresses with cf-connecting-ip, which the local stack
// passes through and Cloudflare sets itself in production.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { admin, api, assertError, getCustomer, request, unique } from './support.mjs';

/** A business at the default limit, whose key has made no request yet. */
async function businessWithLimit(rateLimit) {
  const created = await admin('POST', '/admin/businesses', { name: unique('Limited'), default_country: 'IE' });
  assert.equal(created.status, 201, created.text);
  if (rateLimit) {
    const patched = await admin('PATCH', `/admin/businesses/${created.body.id}`, { rate_limit: rateLimit });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.rate_limit, { per_minute: 600, burst: 100, ...rateLimit });
  }
  const issued = await admin('POST', `/admin/businesses/${created.body.id}/api-keys`, {});
  assert.equal(issued.status, 201, issued.text);
  return { id: created.body.id, key: issued.body.key, business: created.body };
}

const headerNumber = (res, name) => {
  const value = res.headers.get(name);
  assert.match(value ?? '', /^\d+$/, `${name}: ${value}`);
  return Number(value);
};

/**
 * A client address (TEST-NET-3) no earlier call of this file gave: an address one test blocked
 * must never be another test's, or the same test's "another address" (a random pick of 254 did
 * that about once in 120 runs).
 */
let nextAddress = randomInt(0, 254);
const address = () => `203.0.113.${(nextAddress++ % 254) + 1}`;

describe('the limit of an API key', () => {
  test('a new business has the default limit, and its keyed responses say where they stand', async () => {
    const { id, key, business } = await businessWithLimit();
    assert.deepEqual(business.rate_limit, { per_minute: 600, burst: 100 });
    const shown = await admin('GET', `/admin/businesses/${id}`);
    assert.deepEqual(shown.body.rate_limit, { per_minute: 600, burst: 100 });
    const first = await getCustomer(key, 'email', 'nobody@example.com');
    assertError(first, 404, 'not_found', 'the error of a keyed request carries the headers too');
    assert.equal(headerNumber(first, 'x-ratelimit-limit'), 100);
    assert.equal(headerNumber(first, 'x-ratelimit-remaining'), 99);
    assert.ok(headerNumber(first, 'x-ratelimit-reset') <= 1);
    const second = await api(key, 'GET', '/api-webhooks');
    assert.equal(second.status, 200);
    assert.ok(headerNumber(second, 'x-ratelimit-remaining') <= 98);
  });

  test('a burst past the limit is refused with 429 and Retry-After, and nothing of it is done', async () => {
    const { key } = await businessWithLimit({ per_minute: 30, burst: 5 });
    const emails = Array.from({ length: 8 }, (_, i) => `${unique(`burst${i}`)}@example.com`);
    const answers = await Promise.all(
      emails.map((email) => api(key, 'POST', '/api-customers-sync', { customers: [{ name: 'Burst', email }] })),
    );
    const allowed = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(allowed.length, 5, answers.map((a) => a.status).join(','));
    assert.equal(refused.length, 3);
    for (const res of refused) {
      assertError(res, 429, 'rate_limited');
      assert.ok(headerNumber(res, 'retry-after') >= 1);
      assert.equal(headerNumber(res, 'x-ratelimit-remaining'), 0);
      assert.equal(headerNumber(res, 'x-ratelimit-limit'), 5);
    }
    // The refused syncs stored nothing. (One lookup each: the bucket refills one every 2 s.)
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const refusedEmails = emails.filter((_, i) => answers[i].status === 429);
    const lookup = await getCustomer(key, 'email', refusedEmails[0]);
    assertError(lookup, 404, 'not_found', 'a refused sync stored nothing');
  });

  test('a burst served from leased tokens lets exactly the burst through, in order or at once', async () => {
    // A burst of 100 is leased 10 tokens at a time (docs/limits.md): the gateway spends them itself
    // and asks for the next lease in the background. One refill a minute makes the count exact.
    const { key } = await businessWithLimit({ per_minute: 1, burst: 100 });
    const statuses = [];
    const remaining = [];
    for (let i = 0; i < 60; i++) {
      const res = await api(key, 'GET', '/api-webhooks');
      statuses.push(res.status);
      if (res.status === 200) remaining.push(headerNumber(res, 'x-ratelimit-remaining'));
    }
    const atOnce = await Promise.all(Array.from({ length: 60 }, () => api(key, 'GET', '/api-webhooks')));
    statuses.push(...atOnce.map((res) => res.status));
    assert.equal(statuses.filter((status) => status === 200).length, 100, statuses.join(','));
    assert.equal(statuses.filter((status) => status === 429).length, 20, statuses.join(','));
    assert.deepEqual(remaining, Array.from({ length: 60 }, (_, i) => 99 - i), 'one place counts exactly');
    for (const res of atOnce.filter((res) => res.status === 429)) {
      assert.equal(headerNumber(res, 'x-ratelimit-remaining'), 0);
      assert.ok(headerNumber(res, 'retry-after') >= 1);
    }
  });

  test('after Retry-After the key works again', async () => {
    const { key } = await businessWithLimit({ per_minute: 60, burst: 2 });
    for (let i = 0; i < 2; i++) assert.equal((await api(key, 'GET', '/api-webhooks')).status, 200);
    const refused = await api(key, 'GET', '/api-webhooks');
    assertError(refused, 429, 'rate_limited');
    await new Promise((resolve) => setTimeout(resolve, headerNumber(refused, 'retry-after') * 1000 + 100));
    assert.equal((await api(key, 'GET', '/api-webhooks')).status, 200);
  });

  test('each key has its own bucket, and the key may come as a bearer token', async () => {
    const { id, key } = await businessWithLimit({ per_minute: 60, burst: 2 });
    const other = (await admin('POST', `/admin/businesses/${id}/api-keys`, {})).body.key;
    for (let i = 0; i < 2; i++) assert.equal((await api(key, 'GET', '/api-webhooks')).status, 200);
    assertError(await api(key, 'GET', '/api-webhooks'), 429, 'rate_limited');
    assert.equal((await api(other, 'GET', '/api-webhooks')).status, 200, 'the other key is untouched');
    const bearer = await request('GET', '/api/dashboard/crm-links/all', { headers: { authorization: `Bearer ${key}` } });
    assertError(bearer, 429, 'rate_limited', 'the same key as a bearer token is the same bucket');
  });

  test('a bad limit is refused, naming the field', async () => {
    const { id } = await businessWithLimit();
    for (const [rateLimit, field] of [
      [{ per_minute: 0 }, 'rate_limit.per_minute'],
      [{ burst: 10_001 }, 'rate_limit.burst'],
      [{ burst: '5' }, 'rate_limit.burst'],
      [{ per_second: 5 }, 'rate_limit.per_second'],
      ['fast', 'rate_limit'],
    ]) {
      const res = await admin('PATCH', `/admin/businesses/${id}`, { rate_limit: rateLimit });
      assertError(res, 422, 'validation_failed', JSON.stringify(rateLimit));
      assert.equal(res.body.error.field, field);
    }
    assert.deepEqual((await admin('GET', `/admin/businesses/${id}`)).body.rate_limit, { per_minute: 600, burst: 100 });
  });

  test('requests without a valid key carry no rate-limit headers', async () => {
    const res = await api('cek_' + '0'.repeat(48), 'GET', '/api-webhooks');
    assertError(res, 401, 'unauthorized');
    assert.equal(res.headers.get('x-ratelimit-limit'), null);
  });
});

describe('failed authentications from one address', () => {
  test('are refused with 429 once the address used its budget, whatever it sends next', async () => {
    const from = address();
    const { key } = await businessWithLimit();
    const statuses = [];
    for (let i = 0; i < 130 && !statuses.includes(429); i++) {
      const res = await api(`cek_${'f'.repeat(47)}${i % 10}`, 'GET', '/api-webhooks', undefined, { 'cf-connecting-ip': from });
      statuses.push(res.status);
      if (res.status === 429) {
        assertError(res, 429, 'rate_limited');
        assert.ok(headerNumber(res, 'retry-after') >= 1);
      }
    }
    assert.ok(statuses.includes(429), 'the address was refused within 130 failures');
    assert.ok(statuses.filter((s) => s === 401).length >= 120, 'not before its budget of 120');
    // Refused before any lookup: a valid key from that address, and a bad admin token, are 429 too.
    assertError(await api(key, 'GET', '/api-webhooks', undefined, { 'cf-connecting-ip': from }), 429, 'rate_limited');
    assertError(await request('GET', '/admin/businesses/x', { headers: { authorization: 'Bearer nope', 'cf-connecting-ip': from } }), 429, 'rate_limited');
    // Another address, and the same key from it, are not affected.
    assert.equal((await api(key, 'GET', '/api-webhooks', undefined, { 'cf-connecting-ip': address() })).status, 200);
  });

  test('bad webhook signatures count as failed authentications too', async () => {
    const { id } = await businessWithLimit();
    const account = await admin('POST', `/admin/businesses/${id}/channel-accounts`, {
      channel: 'whatsapp',
      provider: 'meta',
      address: String(randomInt(100_000_000, 999_999_999)),
      secrets: { app_secret: 'app-secret', verify_token: 'verify', access_token: 'EAAGtoken' },
    });
    assert.equal(account.status, 201, account.text);
    const from = address();
    const statuses = [];
    for (let i = 0; i < 130 && !statuses.includes(429); i++) {
      const res = await request('POST', account.body.webhook_path, {
        body: { object: 'whatsapp_business_account', entry: [] },
        headers: { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}`, 'cf-connecting-ip': from },
      });
      statuses.push(res.status);
    }
    assert.deepEqual([...new Set(statuses)], [401, 429], 'forged signatures, then the refusal');
  });

  test('loopback is never limited (the local stack and its tests)', async () => {
    for (let i = 0; i < 130; i++) {
      const res = await api('cek_' + 'e'.repeat(48), 'GET', '/api-webhooks');
      assert.equal(res.status, 401, `request ${i}`);
    }
  });
});
