// Each business's running cost, end to end: every invocation's units (its D1 rows, queue, KV, R2
// and Durable Object operations, and the request Cloudflare bills) go to the business it served,
// are tallied in the isolate and stored some seconds later (20 in production; scripts/test starts
// the stack with 2). GET /api-cost and the operator's /admin/businesses/{id}/cost read the month,
// priced at the table `crm-edge prices` prints; GET /admin/cost adds every business up.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness, waitFor } from './support.mjs';

/**
 * A business's cost once what it did is all stored: its rows written the same in two reads a
 * store period (2 s on the local stack) and more apart (each read's own invocation stores what
 * its isolate tallied when it is due).
 */
async function settled(id) {
  let last = (await admin('GET', `/admin/businesses/${id}/cost`)).body;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const now = (await admin('GET', `/admin/businesses/${id}/cost`)).body;
    if (count(now, 'd1_rows_written') === count(last, 'd1_rows_written')) return now;
    last = now;
  }
}

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

    // More of acme's writes are none of the other business's: its rows written stay as they were
    // (reading its cost writes nothing).
    const otherBefore = await settled(other.id);
    const more = await api(acme.key, 'POST', '/api-customers-sync', {
      customers: [4, 5].map((n) => ({ external_id: `cost-${n}`, name: `Cost ${n}`, email: `cost-${n}-${acme.id}@example.com` })),
    });
    assert.equal(more.status, 200, more.text);
    await waitFor(async () => {
      const out = (await admin('GET', `/admin/businesses/${acme.id}/cost`)).body;
      return count(out, 'd1_rows_written') - count(after, 'd1_rows_written') >= 2;
    }, 60_000, 'the second sync counted', 500);
    const otherAfter = (await admin('GET', `/admin/businesses/${other.id}/cost`)).body;
    assert.equal(count(otherAfter, 'd1_rows_written'), count(otherBefore, 'd1_rows_written'), 'the other business wrote nothing');

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
