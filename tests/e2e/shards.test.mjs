// Businesses spread over several D1 databases (shards, docs/scaling.md): a new business lands on
// any of them, the directory says where, everything of a business stays on its own shard, nothing
// a user sees differs by shard, and the sweep visits every shard.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ADMIN_TOKEN, BASE_URL, admin, api, assertError, getCustomer, newBusiness, sync, unique } from './support.mjs';
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

const CLI = process.env.CRM_EDGE_CLI || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'cli', 'crm-edge');
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** The shard (its number in SHARDS) the directory says a business lives on. */
function directoryShard(id) {
  const rows = d1('SELECT shard FROM business_shards WHERE business_id = ?', [id]);
  assert.equal(rows.length, 1, `the directory has business ${id} once`);
  return rows[0][0];
}

/** How many rows of each of a business's tables each shard holds, by the shards' file order. */
function rowsOnEachShard(id) {
  const tables = ['businesses WHERE id = ?', 'customers WHERE business_id = ?', 'customer_identities WHERE business_id = ?',
    'api_keys WHERE business_id = ?', 'channel_accounts WHERE business_id = ?', 'audit_log WHERE business_id = ?'];
  const sql = `SELECT ${tables.map((from) => `(SELECT count(*) FROM ${from})`).join(', ')}`;
  return d1Shards(sql, tables.map(() => id)).map(([counts]) => counts);
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
    // The held shard is not the first, which holds the directory: while the first does not
    // answer, a business no isolate has looked up lately cannot be placed, whatever its shard.
    const [a, b] = (await onTwoShards()).sort((x, y) => directoryShard(y.id) - directoryShard(x.id));
    assert.notEqual(directoryShard(a.id), 0);
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

  test('a business moves to another shard: its writes wait meanwhile, then everything of it is there and nothing is left behind', async () => {
    const { id, key } = await newBusiness();
    const emails = Array.from({ length: 230 }, (_, n) => `${unique(`m${n}`)}@example.com`);
    const synced = await sync(key, emails.map((email, n) => ({ email, name: `Moved ${n}` })));
    assert.equal(synced.results.created, emails.length);
    const account = await admin('POST', `/admin/businesses/${id}/channel-accounts`, {
      channel: 'whatsapp', provider: 'meta', address: `${Date.now()}${Math.floor(Math.random() * 1000)}`,
      secrets: { app_secret: 's', verify_token: 'v', access_token: 't' },
    });
    assert.equal(account.status, 201, account.text);
    const from = directoryShard(id);
    const to = 1 - from;
    const before = rowsOnEachShard(id);
    const held = before.find((counts) => counts[0] === 1);
    assert.ok(held && held[1] === emails.length, `all of it on one shard first: ${JSON.stringify(before)}`);

    const path = `/admin/businesses/${id}/move`;
    let step = await admin('POST', path, { to_shard: to });
    assert.equal(step.status, 200, step.text);
    assert.equal(step.body.phase, 'pausing');
    assert.ok(step.body.wait_seconds > 0, step.text);
    await sleep(step.body.wait_seconds);
    // Every isolate has seen the pause: the business's writes wait, its reads go on.
    const waiting = await api(key, 'POST', '/api-customers-sync', { customers: [{ email: `${unique('late')}@example.com`, name: 'Late' }] });
    assertError(waiting, 503, 'service_unavailable', 'a write while the business is moved');
    assert.ok(Number(waiting.headers.get('retry-after')) > 0);
    assert.match(waiting.body.error.message, /being moved/);
    assert.equal((await getCustomer(key, 'email', emails[7])).body.name, 'Moved 7', 'reads go on');
    const another = await admin('POST', path, { to_shard: to, cursor: 'copy:99:0' });
    assertError(another, 422, 'validation_failed', 'a cursor no step answered');

    const phases = [];
    let rows = 0;
    for (let n = 0; n < 40 && step.body.phase !== 'done'; n += 1) {
      if (step.body.wait_seconds > 0) await sleep(step.body.wait_seconds);
      step = await admin('POST', path, { to_shard: to, cursor: step.body.cursor });
      assert.equal(step.status, 200, step.text);
      phases.push(step.body.phase);
      rows += step.body.rows;
    }
    assert.equal(step.body.phase, 'done', `the move ends: ${phases.join(' ')}`);
    assert.ok(phases.filter((phase) => phase === 'copying').length >= 2, `the copy took several bounded steps: ${phases.join(' ')}`);
    assert.ok(phases.includes('switched'), phases.join(' '));
    assert.ok(rows >= 2 * emails.length, `copied and deleted every row (${rows})`);
    assert.equal(directoryShard(id), to, 'the directory names the new shard');

    const after = rowsOnEachShard(id);
    const there = after.find((counts) => counts[0] === 1);
    const was = before.find((counts) => counts[0] === 1);
    assert.deepEqual(there.slice(0, -1), was.slice(0, -1), 'every row is on the new shard');
    assert.equal(there.at(-1), was.at(-1) + 1, 'the audit log too, and the move recorded in it');
    assert.ok(after.filter((counts) => counts !== there).every((counts) => counts.every((count) => count === 0)),
      `nothing is left on the old shard: ${JSON.stringify(after)}`);
    assert.equal((await getCustomer(key, 'email', emails[200])).body.name, 'Moved 200', 'the same answers');
    const written = await sync(key, [{ email: emails[0], name: 'Renamed after the move' }]);
    assert.equal(written.results.updated, 1, 'writes go on, on the new shard');
    const audit = await admin('GET', `/admin/businesses/${id}/audit-log`);
    assert.ok(audit.body.entries.some((entry) => entry.action === 'business.moved'), audit.text);
    assert.equal((await admin('POST', path, { to_shard: to })).body.phase, 'done', 'moving it where it is does nothing');

    // The operator's command does the same, step after step, and back.
    const moved = await promisify(execFile)(CLI, ['--json', 'admin', 'businesses', 'move', id, '--to', String(from)], {
      env: { PATH: process.env.PATH, CRM_EDGE_CONFIG: '/nonexistent', CRM_EDGE_URL: BASE_URL, CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    assert.equal(JSON.parse(moved.stdout).phase, 'done', moved.stderr);
    assert.match(moved.stderr, /pausing.*\n(.|\n)*copying(.|\n)*switched/, moved.stderr);
    assert.equal(directoryShard(id), from);
    assert.equal((await getCustomer(key, 'email', emails[0])).body.name, 'Renamed after the move');
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
