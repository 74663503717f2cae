// A CRM backlog at reduced size (scripts/bench runs 5,000 jobs after ten minutes down): 500
// customers created while Kustomer is down become 500 pieces of work that wait; when it is back
// they drain, each customer created exactly once, with every invocation inside Cloudflare's
// per-invocation limits (the stack fails loudly past them, and the suite's usage report fails on
// any `[limit]` line).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, unique, waitFor } from '../support.mjs';
import { connectedBusiness, connectorOf, stackLog, syncLog } from './connectors.mjs';

const CUSTOMERS = 500;

let kustomer;
after(async () => {
  await kustomer?.close();
});

test('500 pieces of work recorded while Kustomer is down drain once it is back: each customer once, no limit crossed', { timeout: 300_000 }, async () => {
  // The budget is far above the backlog, so that what is measured is the drain, not the budget.
  const setup = await connectedBusiness({ rate_limit: { per_minute: 6_000, per_second: null, per_day: null } });
  kustomer = setup.kustomer;
  const limitsBefore = (stackLog().match(/\[limit\] /g) ?? []).length;
  await kustomer.down();
  const tag = unique('backlog');
  for (let at = 0; at < CUSTOMERS; at += 100) {
    const customers = Array.from({ length: 100 }, (_, i) => ({ name: `Backlog ${at + i}`, email: `${tag}-${at + i}@example.com`, external_id: `${tag}-${at + i}` }));
    const res = await api(setup.business.key, 'POST', '/api-customers-sync', { customers });
    assert.equal(res.status, 200, res.text);
  }
  await waitFor(async () => (await connectorOf(setup.connector.id)).status.backlog >= CUSTOMERS, 60_000, 'the backlog recorded', 1_000);
  // Long enough for every piece of work to be tried and put off at least once.
  await waitFor(async () => (await connectorOf(setup.connector.id)).status.last_error, 60_000, 'the outage seen', 1_000);
  await kustomer.up();
  await waitFor(
    async () => {
      // The sweep runs every minute in production (the cron); the local stack has no cron.
      await admin('POST', '/admin/maintenance/sweep');
      return (await connectorOf(setup.connector.id)).status.backlog === 0 && kustomer.customers.length >= CUSTOMERS;
    },
    240_000,
    'the backlog drained',
    2_000,
  );
  const creates = kustomer.requests
    .filter((r) => r.method === 'POST' && r.path === '/v1/customers' && r.status !== null && r.status < 300)
    .map((r) => r.body?.externalId);
  assert.equal(creates.length, CUSTOMERS, 'each customer created once');
  assert.equal(new Set(creates).size, CUSTOMERS);
  assert.equal(kustomer.customers.length, CUSTOMERS);
  const log = await syncLog(setup.connector.id, 'status=failed');
  assert.equal(log.length, 0, JSON.stringify(log.slice(0, 3)));
  const limitsAfter = (stackLog().match(/\[limit\] /g) ?? []).length;
  assert.equal(limitsAfter, limitsBefore, 'no invocation crossed a production limit');
});
