// Businesses spread over several D1 databases (shards, docs/scaling.md): a new business lands on
// any of them, the directory says where, everything of a business stays on its own shard, nothing
// a user sees differs by shard, and the sweep visits every shard.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, getCustomer, newBusiness, sync, unique } from './support.mjs';
import { d1, d1Shards, holdShardOf } from './store.mjs';

/**
 * The shard (its place in d1Shards' order) that holds each business's row, by id: one read a
 * shard for all of them (the store is read synchronously, and a long pause between requests lets
 * the stack close a kept-alive connection under the next one).
 */
function shardsOf(ids) {
  const marks = ids.map(() => '?').join(', ');
  const found = new Map();
  d1Shards(`SELECT id FROM businesses WHERE id IN (${marks})`, ids).forEach((rows, shard) => {
    for (const [id] of rows) {
      assert.ok(!found.has(id), `business ${id} is on one shard only`);
      found.set(id, shard);
    }
  });
  for (const id of ids) assert.ok(found.has(id), `business ${id} is on a shard`);
  return found;
}

/** New businesses until two of them live on different shards. */
async function onTwoShards() {
  const shards = d1Shards('SELECT 1').length;
  assert.ok(shards >= 2, `the local stack runs several shards (${shards})`);
  const created = [];
  for (let round = 0; round < 10; round += 1) {
    for (let n = 0; n < 4; n += 1) created.push(await newBusiness());
    const placed = shardsOf(created.map(({ id }) => id));
    const first = created[0];
    const other = created.find(({ id }) => placed.get(id) !== placed.get(first.id));
    if (other) return [first, other].map((business) => ({ shard: placed.get(business.id), ...business }));
  }
  assert.fail('forty new businesses all landed on one shard');
}

describe('shards', () => {
  test('new businesses land on every shard, and the directory says where each lives', async () => {
    const created = [];
    for (let n = 0; n < 12; n += 1) created.push(await newBusiness());
    const ids = created.map(({ id }) => id);
    const placed = shardsOf(ids);
    assert.ok(new Set(placed.values()).size >= 2, `twelve new businesses on ${new Set(placed.values()).size} shard(s)`);
    const entries = d1(`SELECT business_id FROM business_shards WHERE business_id IN (${ids.map(() => '?').join(', ')})`, ids);
    assert.equal(entries.length, ids.length, 'the directory has each business once');
  });

  test("everything of a business stays on its shard, and two businesses on two shards see only their own", async () => {
    const [a, b] = await onTwoShards();
    const email = `${unique('same')}@example.com`;
    for (const [business, name] of [[a, 'On A'], [b, 'On B']]) {
      const synced = await sync(business.key, [{ email, name, external_id: unique('X') }]);
      assert.equal(synced.results.created, 1, 'the same email is a new customer in each business');
    }
    assert.equal((await getCustomer(a.key, 'email', email)).body.name, 'On A');
    assert.equal((await getCustomer(b.key, 'email', email)).body.name, 'On B');
    for (const business of [a, b]) {
      const counts = d1Shards('SELECT count(*) FROM customers WHERE business_id = ?', [business.id]).map(([[count]]) => count);
      assert.equal(counts[business.shard], 1, 'the customer is on its business\'s shard');
      assert.equal(counts.reduce((sum, count) => sum + count, 0), 1, 'and on no other');
      const keys = d1Shards('SELECT count(*) FROM api_keys WHERE business_id = ?', [business.id]).map(([[count]]) => count);
      assert.equal(keys[business.shard], 1, 'its key too');
    }
    // One business's ids are not found through the other, whichever shard each is on.
    const customerOfA = (await getCustomer(a.key, 'email', email)).body.id;
    const crossed = await api(b.key, 'GET', `/api-customers?id=${customerOfA}`);
    assert.equal(crossed.status, 404, crossed.text);
  });

  test("a channel address is one business's whatever the shards", async () => {
    const [a, b] = await onTwoShards();
    const address = String(Date.now()) + String(Math.floor(Math.random() * 1000));
    const body = {
      channel: 'whatsapp', provider: 'meta', address,
      secrets: { app_secret: 's', verify_token: 'v', access_token: 't' },
    };
    const first = await admin('POST', `/admin/businesses/${a.id}/channel-accounts`, body);
    assert.equal(first.status, 201, first.text);
    const second = await admin('POST', `/admin/businesses/${b.id}/channel-accounts`, body);
    assert.equal(second.status, 409, `another shard's business cannot take the address: ${second.text}`);
  });

  test('a shard that does not answer: its businesses are told to try again, the others go on', async () => {
    const [a, b] = await onTwoShards();
    const email = `${unique('held')}@example.com`;
    const held = await holdShardOf(a.id);
    let refused;
    try {
      refused = await api(a.key, 'POST', '/api-customers-sync', { customers: [{ email, name: 'Waits' }] });
      const other = await sync(b.key, [{ email, name: 'Goes on' }]);
      assert.equal(other.results.created, 1, "the other shard's business writes as ever");
      assert.equal((await getCustomer(b.key, 'email', email)).body.name, 'Goes on');
    } finally {
      await held.release();
    }
    assertError(refused, 503, 'service_unavailable', 'a write to the shard that does not answer');
    assert.ok(Number(refused.headers.get('retry-after')) > 0, `Retry-After: ${refused.headers.get('retry-after')}`);
    assert.ok(!/shard|SQLITE|D1/.test(refused.body.error.message), `no internals: ${refused.body.error.message}`);
    assert.equal((await api(a.key, 'GET', `/api-customers?email=${encodeURIComponent(email)}`)).status, 404,
      'nothing of the refused write was kept');
    const retried = await sync(a.key, [{ email, name: 'Waits' }]);
    assert.equal(retried.results.created, 1, 'the same write, tried again once the shard answers');
  });

  test('the sweep visits every shard', async () => {
    const businesses = await onTwoShards();
    const keys = [];
    for (const business of businesses) {
      const key = unique('old-key');
      const res = await api(business.key, 'POST', '/api-customers-sync',
        { customers: [{ email: `${unique('k')}@example.com` }] }, { 'idempotency-key': key });
      assert.equal(res.status, 200, res.text);
      keys.push(key);
    }
    // Both keys as old as the sweep deletes (past the idempotency window), each on its own shard.
    const old = (Date.now() - 40 * 24 * 3600 * 1000) * 1000;
    for (const key of keys) d1('UPDATE idempotency_keys SET created_us = ? WHERE key = ?', [old, key]);
    const swept = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(swept.status, 200, swept.text);
    assert.ok(swept.body.idempotency_keys_deleted >= 2, `the sweep deleted both: ${swept.text}`);
    for (const key of keys) {
      assert.deepEqual(d1('SELECT count(*) FROM idempotency_keys WHERE key = ?', [key]), [[0]], 'deleted on its shard');
    }
  });
});
