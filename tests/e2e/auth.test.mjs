// API keys at work: who may call the customer API, how fast a revocation bites, and that one
// business never sees or changes another's customers.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { kvKeys } from './store.mjs';
import {
  ADMIN_TOKEN,
  admin,
  api,
  assertError,
  batchLookup,
  bulkCreate,
  getCustomer,
  newBusiness,
  sync,
  unique,
} from './support.mjs';

/** One harmless, valid request to each customer endpoint. */
function everyEndpoint(tag) {
  return [
    ['GET', `/api-customers?email=${encodeURIComponent(`${tag}@example.com`)}`, undefined],
    ['POST', '/api-customers-sync', { customers: [{ name: 'Probe', email: `${tag}-sync@example.com` }] }],
    ['POST', '/api-customers-bulk-create', { customers: [{ name: 'Probe', email: `${tag}-bulk@example.com` }] }],
    ['POST', '/api-customers-batch-lookup', { emails: [`${tag}@example.com`] }],
  ];
}

/** A key of the right shape that was never issued. */
function neverIssuedKey() {
  return `cek_${randomBytes(24).toString('hex')}`;
}

describe('API key authentication', () => {
  test('every customer endpoint refuses a request without x-api-key with 401', async () => {
    const { key } = await newBusiness();
    const tag = unique('nokey');
    for (const [method, path, body] of everyEndpoint(tag)) {
      const res = await api(null, method, path, body);
      assertError(res, 401, 'unauthorized', `${method} ${path} without a key`);
    }
    await assertNothingStoredFor(key, tag);
  });

  test('every customer endpoint refuses malformed, unknown and misplaced keys with 401', async () => {
    const { key } = await newBusiness();
    const tag = unique('badkey');
    const badKeys = [
      ['', 'an empty key'],
      ['   ', 'a blank key'],
      ['cek_', 'the scheme alone'],
      [key.slice(0, -1), 'a real key missing its last character'],
      [`${key}0`, 'a real key with an extra character'],
      [`${key.slice(0, -1)}${key.at(-1) === '0' ? '1' : '0'}`, 'a real key with its last digit changed'],
      [key.toUpperCase(), 'a real key in upper case'],
      [key.replace('cek_', 'sk_'), 'a real secret under another scheme'],
      [neverIssuedKey(), 'a well-formed key that was never issued'],
      [`Bearer ${key}`, 'a real key with a Bearer prefix'],
      [ADMIN_TOKEN, 'the admin token'],
      ["' OR 1=1 --", 'an injection attempt'],
      ['x'.repeat(10_000), 'a very long key'],
    ];
    for (const [method, path, body] of everyEndpoint(tag)) {
      for (const [badKey, description] of badKeys) {
        const res = await api(badKey, method, path, body);
        assertError(res, 401, 'unauthorized', `${method} ${path} with ${description}`);
      }
      const inAuthorization = await api(null, method, path, body, { authorization: `Bearer ${key}` });
      assertError(inAuthorization, 401, 'unauthorized', `${method} ${path} with the key in Authorization`);
    }
    await assertNothingStoredFor(key, tag);
  });

  test('a valid key is accepted by every customer endpoint', async () => {
    const { key } = await newBusiness();
    const tag = unique('goodkey');
    const statuses = [];
    for (const [method, path, body] of everyEndpoint(tag)) {
      const res = await api(key, method, path, body);
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [404, 200, 200, 200], 'lookup of an unknown email is 404, the rest succeed');
  });

  test('a revoked key is refused at once, on every endpoint, even right after it was used', async () => {
    const { id, key, keyId } = await newBusiness();
    const tag = unique('revoked');
    // Use the key on every endpoint first, so that any cache of it is warm.
    for (const [method, path, body] of everyEndpoint(tag)) {
      const res = await api(key, method, path, body);
      assert.notEqual(res.status, 401, `${method} ${path} works before the revocation`);
    }
    const revoked = await admin('DELETE', `/admin/api-keys/${keyId}`);
    assert.equal(revoked.status, 200, revoked.text);

    const late = unique('late');
    for (const [method, path, body] of everyEndpoint(late)) {
      const res = await api(key, method, path, body);
      assertError(res, 401, 'unauthorized', `${method} ${path} with the revoked key`);
    }
    const other = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'check' });
    await assertNothingStoredFor(other.body.key, late);
  });

  test('another key of the same business keeps working after one is revoked, and sees the same customers', async () => {
    const { id, key, keyId } = await newBusiness();
    const second = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'second' });
    assert.equal(second.status, 201);
    const email = `${unique('shared')}@example.com`;
    const created = await sync(key, [{ name: 'Shared Customer', email }]);
    const customerId = created.results.details[0].customer_id;

    const revoked = await admin('DELETE', `/admin/api-keys/${keyId}`);
    assert.equal(revoked.status, 200);
    assertError(await getCustomer(key, 'email', email), 401, 'unauthorized', 'the revoked key');

    const res = await getCustomer(second.body.key, 'email', email);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, customerId);
    const updated = await sync(second.body.key, [{ name: 'Shared Customer Renamed', email }]);
    assert.equal(updated.results.details[0].action, 'updated');
    assert.equal(updated.results.details[0].customer_id, customerId);
  });

  test('unknown keys are refused without filling the shared key cache', async () => {
    const keys = Array.from({ length: 20 }, neverIssuedKey);
    for (const key of keys) {
      const res = await api(key, 'POST', '/api-customers-batch-lookup', { emails: ['a@example.com'] });
      assertError(res, 401, 'unauthorized', 'an unknown key');
      const again = await api(key, 'GET', '/api/download-media?id=00000000-0000-4000-8000-000000000000');
      assertError(again, 401, 'unauthorized', 'an unknown key on download-media, before any attachment is looked up');
    }
    const cached = new Set(kvKeys('api-key:v2:'));
    const filled = keys.filter((key) => cached.has(`api-key:v2:${createHash('sha256').update(key).digest('hex')}`));
    assert.deepEqual(filled, [], 'no unknown key has a KV entry');
    const { key } = await newBusiness();
    await api(key, 'POST', '/api-customers-batch-lookup', { emails: ['a@example.com'] });
    assert.ok(kvKeys(`api-key:v2:${createHash('sha256').update(key).digest('hex')}`).length === 1, 'a known key is cached');
  });

  test('a key issued after another was revoked works at once', async () => {
    const { id, keyId } = await newBusiness();
    await admin('DELETE', `/admin/api-keys/${keyId}`);
    const fresh = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'fresh' });
    const res = await api(fresh.body.key, 'POST', '/api-customers-batch-lookup', { emails: ['a@example.com'] });
    assert.equal(res.status, 200, res.text);
  });
});

describe('isolation between businesses', () => {
  async function twoBusinessesWithACustomerInA() {
    const a = await newBusiness({ default_country: 'IE' });
    const b = await newBusiness({ default_country: 'IE' });
    const customer = {
      name: 'Alice of A',
      email: `${unique('alice')}@example.com`,
      phone: '087 123 4567',
      external_id: unique('CRM'),
      notes: 'belongs to A',
      tags: ['a-only'],
      custom_fields: { owner: 'A' },
    };
    const result = await sync(a.key, [customer]);
    assert.equal(result.results.details[0].action, 'created');
    const stored = await getCustomer(a.key, 'email', customer.email);
    assert.equal(stored.status, 200);
    return { a, b, customer, stored: stored.body };
  }

  test("business B cannot read business A's customer by id, external_id, email or phone", async () => {
    const { b, customer, stored } = await twoBusinessesWithACustomerInA();
    const lookups = [
      ['id', stored.id],
      ['external_id', customer.external_id],
      ['email', customer.email],
      ['phone', '+353871234567'],
      ['phone', '087 123 4567'],
    ];
    for (const [param, value] of lookups) {
      const res = await getCustomer(b.key, param, value);
      assertError(res, 404, 'not_found', `B looking up A's customer by ${param}=${value}`);
      assert.ok(!res.text.includes('Alice of A'), `B's answer for ${param} does not leak A's customer`);
      if (param !== 'id') {
        assert.ok(!res.text.includes(stored.id), `B's answer for ${param} does not leak A's customer id`);
      }
    }
  });

  test("business B's batch lookup finds none of business A's customers", async () => {
    const { b, customer, stored } = await twoBusinessesWithACustomerInA();
    const res = await batchLookup(b.key, {
      ids: [stored.id],
      external_ids: [customer.external_id],
      emails: [customer.email],
      phones: ['+353871234567'],
    });
    assert.deepEqual(res.customers, []);
    assert.deepEqual(res.not_found, {
      ids: [stored.id],
      external_ids: [customer.external_id],
      emails: [customer.email],
      phones: ['+353871234567'],
    });
    assert.deepEqual(res.invalid, []);
  });

  test("business B syncing A's external_id, email and phone creates B's own customer and leaves A's untouched", async () => {
    const { a, b, customer, stored } = await twoBusinessesWithACustomerInA();
    const takeover = {
      name: 'Mallory of B',
      email: customer.email,
      phone: customer.phone,
      external_id: customer.external_id,
      notes: 'overwritten?',
      tags: ['b'],
      custom_fields: { owner: 'B' },
    };
    const result = await sync(b.key, [takeover]);
    const detail = result.results.details[0];
    assert.equal(detail.action, 'created', 'B gets a customer of its own');
    assert.equal(detail.matched_by, null);
    assert.notEqual(detail.customer_id, stored.id);

    const inA = await getCustomer(a.key, 'id', stored.id);
    assert.equal(inA.status, 200);
    assert.deepEqual(inA.body, stored, "A's customer is exactly as it was");

    const inB = await getCustomer(b.key, 'external_id', customer.external_id);
    assert.equal(inB.status, 200);
    assert.equal(inB.body.id, detail.customer_id);
    assert.equal(inB.body.name, 'Mallory of B');

    // Each business keeps seeing only its own customer under the shared keys.
    const aByEmail = await getCustomer(a.key, 'email', customer.email);
    assert.equal(aByEmail.body.id, stored.id);
    assertError(await getCustomer(b.key, 'id', stored.id), 404, 'not_found', "B by A's id");
    assertError(await getCustomer(a.key, 'id', detail.customer_id), 404, 'not_found', "A by B's id");
  });

  test("business B bulk-creating A's external_id creates B's own customer and leaves A's untouched", async () => {
    const { a, b, customer, stored } = await twoBusinessesWithACustomerInA();
    const result = await bulkCreate(b.key, [
      { name: 'Mallory of B', email: customer.email, external_id: customer.external_id, notes: 'mine now' },
    ]);
    assert.equal(result.created, 1, JSON.stringify(result));
    assert.equal(result.updated, 0);
    assert.notEqual(result.customers[0].customer_id, stored.id);
    const inA = await getCustomer(a.key, 'id', stored.id);
    assert.deepEqual(inA.body, stored, "A's customer is exactly as it was");
  });
});

async function assertNothingStoredFor(key, tag) {
  for (const email of [`${tag}-sync@example.com`, `${tag}-bulk@example.com`]) {
    const res = await getCustomer(key, 'email', email);
    assert.equal(res.status, 404, `a refused request stored nothing (${email}): ${res.text}`);
  }
}
