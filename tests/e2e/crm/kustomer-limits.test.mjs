// The connector within Kustomer's limits: its own budget keeps every worker under the configured
// rate, a 429 pauses the whole connector for as long as Kustomer asks, 5xx are retried with
// backoff and then succeed, and nothing of the API key or customers' data reaches the logs.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, sync, unique, waitFor } from '../support.mjs';
import { connectedBusiness, connectorOf, settledLog, stackLog } from './connectors.mjs';

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
  test('a budget of 3 a second holds across workers: no second window ever sees more', async () => {
    const { business, connector, kustomer } = await setUp({ rate_limit: { per_second: 3, per_minute: null, per_day: null } });
    await sync(business.key, customers(15, unique('burst')));
    await settledLog(connector.id, 15, 60_000);
    const times = kustomer.requests.filter((r) => r.path.startsWith('/v1/')).map((r) => r.at).sort((a, b) => a - b);
    assert.ok(times.length >= 15, `${times.length} requests`);
    for (let i = 0; i + 3 < times.length; i += 1) {
      assert.ok(times[i + 3] - times[i] >= 1000 - 50, `requests ${i}..${i + 3} within ${times[i + 3] - times[i]} ms`);
    }
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
