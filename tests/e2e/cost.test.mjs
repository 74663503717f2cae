// Each business's running cost, end to end: every invocation's units (its D1 rows, queue, KV, R2
// and Durable Object operations, and the request Cloudflare bills) go to the business it served,
// are tallied in the isolate and stored some seconds later (20 in production; scripts/test starts
// the stack with 2). GET /api-cost and the operator's /admin/businesses/{id}/cost read the month,
// priced at the table `crm-edge prices` prints; GET /admin/cost adds every business up.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness, waitFor } from './support.mjs';

/** A count of `meter` in a cost answer's units. */
const count = (out, meter) => out.units.find((unit) => unit.meter === meter)?.count ?? 0;

describe('running cost', () => {
  test('a business\'s calls and the work they leave are counted, priced by kind, for it alone', async () => {
    const acme = await newBusiness();
    const other = await newBusiness();
    const before = (await api(acme.key, 'GET', '/api-cost')).body;
    const synced = await api(acme.key, 'POST', '/api-customers-sync', {
      customers: [1, 2, 3].map((n) => ({ external_id: `cost-${n}`, name: `Cost ${n}`, email: `cost-${n}-${acme.id}@example.com` })),
    });
    assert.equal(synced.status, 200, synced.text);
    for (let i = 0; i < 3; i += 1) assert.equal((await api(acme.key, 'GET', '/api-webhooks')).status, 200);
    const otherBefore = (await admin('GET', `/admin/businesses/${other.id}/cost`)).body;

    const after = await waitFor(async () => {
      const out = (await admin('GET', `/admin/businesses/${acme.id}/cost`)).body;
      // The first read, the sync, three lists: at least five requests billed.
      return count(out, 'worker_requests') - count(before, 'worker_requests') >= 5 ? out : null;
    }, 60_000, 'the calls counted', 500);
    assert.ok(count(after, 'd1_rows_written') - count(before, 'd1_rows_written') >= 3, 'three customers written');
    assert.equal(after.business_id, acme.id);
    assert.match(after.month, /^\d{4}-\d{2}$/);
    const priced = after.units.reduce((sum, unit) => sum + unit.cost.picodollars, 0);
    assert.equal(after.month_to_date.picodollars, priced, 'the month is the sum of its units');
    assert.ok(after.projected.picodollars >= priced);
    assert.match(after.month_to_date.usd, /^\$\d+\.\d+$/);
    const otherAfter = (await admin('GET', `/admin/businesses/${other.id}/cost`)).body;
    assert.ok(count(otherAfter, 'd1_rows_written') === count(otherBefore, 'd1_rows_written'), 'the other business wrote nothing');

    const total = await admin('GET', '/admin/cost');
    assert.equal(total.status, 200, total.text);
    assert.ok(total.body.businesses_counted >= 2, total.text);
    assert.ok(total.body.projected_bill.picodollars >= 5_000_000_000_000, 'the plan\'s $5 at least');
  });

  test('cost is the business\'s own to read, and asked wrongly it says so', async () => {
    const acme = await newBusiness();
    assertError(await api(undefined, 'GET', '/api-cost'), 401, 'unauthorized', 'no key');
    assertError(await api(acme.key, 'GET', '/admin/cost'), 401, 'unauthorized', 'a key is no admin token');
    assertError(await api(acme.key, 'POST', '/api-cost', {}), 405, 'method_not_allowed');
    assertError(await admin('GET', '/admin/businesses/00000000-0000-4000-8000-000000000000/cost'), 404, 'not_found');
    assertError(await admin('GET', '/admin/businesses/..%2F..%2Fcost/cost'), 404, 'not_found', 'a path for an id');
  });
});
