// The connector within Kustomer's limits: its own budget keeps every worker under the configured
// rate, a 429 pauses the whole connector for as long as Kustomer asks, 5xx are retried with
// backoff and then succeed, and nothing of the API key or customers' data reaches the logs.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, assertError, sync, unique, waitFor } from '../support.mjs';
import { d1 } from '../store.mjs';
import { connectedBusiness, connectorOf, settledLog, stackLog, syncLog } from './connectors.mjs';

const servers = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function setUp(fields) {
  const setup = await connectedBusiness(fields);
  servers.push(setup.kustomer);
  return setup;
}

const customers = (n, tag) =>
  Array.from({ length: n }, (_, i) => ({ name: `Customer ${i}`, external_id: `${tag}-${i}`, email: `${tag}-${i}@example.com` }));

describe('the request budget', () => {
  test('a budget of 3 a second holds across workers: no second window ever sees more grants', async () => {
    const { business, connector, kustomer } = await setUp({ rate_limit: { per_second: 3, per_minute: null, per_day: null } });
    await sync(business.key, customers(15, unique('burst')));
    await settledLog(connector.id, 15, 60_000);
    // The budget counts grants, when each call was allowed (in D1, shared by every worker); the
    // call itself reaches Kustomer a few milliseconds later.
    const grants = d1('SELECT at_us FROM crm_requests WHERE connector_id = ? ORDER BY at_us', [connector.id]).map(([at]) => at);
    const calls = kustomer.requests.filter((r) => r.path.startsWith('/v1/'));
    assert.equal(grants.length, calls.length, 'one grant per call made');
    assert.ok(grants.length >= 15, `${grants.length} grants`);
    for (let i = 0; i + 3 < grants.length; i += 1) {
      assert.ok(grants[i + 3] - grants[i] >= 1_000_000, `grants ${i}..${i + 3} within ${(grants[i + 3] - grants[i]) / 1000} ms`);
    }
    const seconds = (calls[calls.length - 1].at - calls[0].at) / 1000;
    assert.ok(seconds >= (calls.length / 3) - 1.5, `${calls.length} calls took ${seconds} s at 3 a second`);
    assert.equal(kustomer.customers.length, 15);
  });

  test('a 429 with Retry-After pauses the connector and the work then succeeds', async () => {
    const { business, connector, kustomer } = await setUp();
    kustomer.fail({ status: 429, retryAfter: 3, times: 1 });
    await sync(business.key, customers(1, unique('throttled')));
    const status = await waitFor(async () => {
      const shown = await connectorOf(connector.id);
      return shown.status.paused_until ? shown.status : null;
    }, 20_000, 'the pause shown');
    assert.match(status.last_error, /^429/);
    const [entry] = await settledLog(connector.id, 1, 30_000);
    assert.equal(entry.status, 'succeeded');
    assert.equal(entry.attempts, 2, 'one throttled try, one success');
    const [throttledAt, next] = kustomer.requests.filter((r) => r.path.startsWith('/v1/')).map((r) => r.at);
    assert.ok(next - throttledAt >= 2_900, `waited ${next - throttledAt} ms of the 3 s asked`);
  });

  test('5xx answers are retried with backoff until Kustomer succeeds', async () => {
    const { business, connector, kustomer } = await setUp();
    kustomer.fail({ status: 503, times: 2 });
    await sync(business.key, customers(1, unique('flaky')));
    const [entry] = await settledLog(connector.id, 1, 40_000);
    assert.equal(entry.status, 'succeeded');
    assert.equal(entry.attempts, 3);
    assert.equal(kustomer.customers.length, 1);
  });
});

describe('a Kustomer that does not answer', () => {
  test('a call that hangs is given up after 10 s and tried again', { timeout: 60_000 }, async () => {
    const { business, connector, kustomer } = await setUp();
    kustomer.hang(1);
    await sync(business.key, customers(1, unique('hung')));
    const [entry] = await settledLog(connector.id, 1, 45_000);
    assert.equal(entry.status, 'succeeded');
    assert.equal(entry.attempts, 2, 'the timed-out try, then the one that worked');
    assert.equal(kustomer.customers.length, 1);
  });
});

describe('the sync log and replay', () => {
  test('failed work is found by status and by record, and a replay of its time range does it again', async () => {
    const { business, connector, kustomer } = await setUp();
    kustomer.fail({ status: 400, times: 2, match: (req) => req.method === 'POST' && req.path === '/v1/customers' });
    const tag = unique('replay');
    const { results } = await sync(business.key, customers(2, tag));
    const log = await settledLog(connector.id, 2);
    assert.deepEqual(log.map((entry) => entry.status), ['failed', 'failed']);
    const mine = results.details[0].customer_id;
    const byRecord = await syncLog(connector.id, `record=${mine}`);
    assert.equal(byRecord.length, 1);
    assert.equal(byRecord[0].record_id, mine);
    assert.equal((await syncLog(connector.id, 'status=succeeded')).length, 0);
    assertError(await admin('GET', `/admin/connectors/${connector.id}/sync-log?status=lost`), 422, 'validation_failed', 'an unknown status');
    assertError(await admin('POST', `/admin/connectors/${connector.id}/replay`, { statuses: ['succeeded'] }), 422, 'validation_failed', 'only dead and failed');
    assertError(await admin('POST', `/admin/connectors/${connector.id}/replay`, { from: 'yesterday' }), 422, 'validation_failed', 'not a time');

    const nothing = await admin('POST', `/admin/connectors/${connector.id}/replay`, { statuses: ['failed'], to: '2020-01-01T00:00:00Z', from: '2019-01-01T00:00:00Z' });
    assert.equal(nothing.status, 200, nothing.text);
    assert.equal(nothing.body.contacts, 0, 'outside the range: nothing replayed');
    const replayed = await admin('POST', `/admin/connectors/${connector.id}/replay`, { statuses: ['failed'], from: log[1].created_at });
    assert.equal(replayed.status, 200, replayed.text);
    assert.equal(replayed.body.contacts, 2);
    await waitFor(async () => (await syncLog(connector.id, 'status=succeeded')).length === 2, 20_000, 'both done on replay');
    assert.equal(kustomer.customers.length, 2);
  });
});

describe('the logs', () => {
  test('outside debug mode no API key, email, phone or name of a customer is logged', async () => {
    const { business, connector, apiKey } = await setUp();
    const tag = unique('private');
    const secretish = { name: `Zelda ${tag}`, email: `${tag}@private.example`, phone: '+353 87 765 4321', external_id: tag };
    await sync(business.key, [secretish]);
    await settledLog(connector.id, 1);
    await admin('POST', `/admin/connectors/${connector.id}/test`);
    const log = stackLog();
    assert.ok(log.includes(`kustomer ${connector.id}`), 'the calls are logged');
    for (const value of [apiKey, secretish.email, encodeURIComponent(secretish.email), `Zelda ${tag}`, '+353877654321']) {
      assert.ok(!log.includes(value), `${value} is not in the log`);
    }
  });
});
