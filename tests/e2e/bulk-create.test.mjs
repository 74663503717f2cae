// POST /api-customers-bulk-create: the importer. Only external_id identifies an existing customer;
// an email or phone that already belongs to someone fails the item instead of merging two records.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UUID, api, assertError, assertNotStored, batchLookup, bulkCreate, getCustomer, newBusiness, sync, unique } from './support.mjs';

async function stored(key, param, value) {
  const res = await getCustomer(key, param, value);
  assert.equal(res.status, 200, `looking up ${param}=${value}: ${res.text}`);
  return res.body;
}

/** The seed's importCustomers: customers sent in batches of 1000, counts added up. */
async function importCustomers(key, customers) {
  const totals = { created: 0, updated: 0, failed: 0, errors: [], customers: [] };
  for (let at = 0; at < customers.length; at += 1000) {
    const body = await bulkCreate(key, customers.slice(at, at + 1000));
    totals.created += body.created;
    totals.updated += body.updated;
    totals.failed += body.failed;
    totals.errors.push(...body.errors);
    totals.customers.push(...body.customers.map((c) => ({ ...c, index: c.index + at })));
  }
  return totals;
}

describe('bulk create', () => {
  test('new customers are created and each is reported with its index, external_id and id', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const res = await api(key, 'POST', '/api-customers-bulk-create', {
      customers: [
        { name: 'Ann', external_id: 'IMP-1', email: 'ann@example.com', phone: '087 100 0001', tags: ['import'] },
        { name: 'Bob', external_id: 2, phone: '+353 87 100 0002' },
        { name: 'Cat', email: 'cat@example.com' },
      ],
    });
    assert.equal(res.status, 200, res.text);
    const body = res.body;
    assert.deepEqual(
      Object.keys(body).sort(),
      ['created', 'customers', 'errors', 'failed', 'success', 'total', 'updated'],
    );
    assert.deepEqual(
      [body.success, body.total, body.created, body.updated, body.failed],
      [true, 3, 3, 0, 0],
    );
    assert.deepEqual(body.errors, []);
    assert.deepEqual(
      body.customers.map((c) => [c.index, c.external_id, c.action]),
      [
        [0, 'IMP-1', 'created'],
        [1, '2', 'created'],
        [2, null, 'created'],
      ],
    );
    for (const c of body.customers) {
      assert.match(c.customer_id, UUID);
      assert.deepEqual(Object.keys(c).sort(), ['action', 'customer_id', 'external_id', 'index']);
    }
    const ann = await stored(key, 'external_id', 'IMP-1');
    assert.equal(ann.id, body.customers[0].customer_id);
    assert.equal(ann.phone, '+353871000001');
    assert.deepEqual(ann.tags, ['import']);
    assert.equal((await stored(key, 'external_id', '2')).phone, '+353871000002');
    assert.equal((await stored(key, 'email', 'cat@example.com')).id, body.customers[2].customer_id);
  });

  test('a customer whose external_id is already stored is updated', async () => {
    const { key } = await newBusiness();
    const first = await bulkCreate(key, [
      { name: 'Old Name', external_id: 'UPD-1', email: 'upd@example.com', notes: 'keep me', custom_fields: { a: 1 } },
    ]);
    const body = await bulkCreate(key, [
      { name: 'New Name', external_id: 'UPD-1', email: 'UPD@example.com', custom_fields: { b: 2 } },
    ]);
    assert.deepEqual([body.success, body.created, body.updated, body.failed], [true, 0, 1, 0]);
    assert.equal(body.customers[0].action, 'updated');
    assert.equal(body.customers[0].customer_id, first.customers[0].customer_id);
    const customer = await stored(key, 'external_id', 'UPD-1');
    assert.equal(customer.name, 'New Name');
    assert.equal(customer.notes, 'keep me');
    assert.deepEqual(customer.custom_fields, { a: 1, b: 2 });
  });

  test('an item whose email or phone already belongs to another customer fails with conflict instead of merging', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [
      { name: 'Owner', external_id: 'OWN-1', email: 'owner@example.com', phone: '087 500 0001' },
      { name: 'Unlinked', email: 'unlinked@example.com', phone: '087 500 0002' },
    ]);
    const owner = await stored(key, 'external_id', 'OWN-1');
    const unlinked = await stored(key, 'email', 'unlinked@example.com');
    const body = await bulkCreate(key, [
      { name: 'Same email, no id', email: 'OWNER@example.com' },
      { name: 'Same email, new id', external_id: 'NEW-1', email: 'owner@example.com' },
      { name: 'Same phone, new id', external_id: 'NEW-2', phone: '+353875000001' },
      { name: 'Email of an unlinked customer', external_id: 'NEW-3', email: 'unlinked@example.com' },
      { name: 'Phone of an unlinked customer', phone: '0875000002', email: 'fresh-email@example.com' },
      { name: 'Fine', external_id: 'NEW-4', email: 'fine@example.com' },
    ]);
    assert.equal(body.success, false);
    assert.deepEqual([body.total, body.created, body.updated, body.failed], [6, 1, 0, 5]);
    assert.deepEqual(
      body.errors.map((e) => [e.index, e.external_id, e.code, e.field]),
      [
        [0, null, 'conflict', 'email'],
        [1, 'NEW-1', 'conflict', 'email'],
        [2, 'NEW-2', 'conflict', 'phone'],
        [3, 'NEW-3', 'conflict', 'email'],
        [4, null, 'conflict', 'phone'],
      ],
    );
    for (const error of body.errors) {
      assert.deepEqual(Object.keys(error).sort(), ['code', 'external_id', 'field', 'index', 'message']);
      assert.ok(error.message, 'each error has a message');
    }
    assert.deepEqual(body.customers.map((c) => [c.index, c.action]), [[5, 'created']]);
    assert.deepEqual(await stored(key, 'external_id', 'OWN-1'), owner, 'the owner is untouched');
    assert.deepEqual(await stored(key, 'email', 'unlinked@example.com'), unlinked, 'the unlinked customer is untouched');
    for (const externalId of ['NEW-1', 'NEW-2', 'NEW-3']) {
      assertError(await getCustomer(key, 'external_id', externalId), 404, 'not_found', `${externalId} was not stored`);
    }
    await assertNotStored(key, ['fresh-email@example.com']);
  });

  test("an update by external_id that would take another customer's email fails with conflict on email", async () => {
    const { key } = await newBusiness();
    await bulkCreate(key, [
      { name: 'A', external_id: 'A', email: 'a@example.com' },
      { name: 'B', external_id: 'B', email: 'b@example.com' },
    ]);
    const body = await bulkCreate(key, [{ name: 'A takes B', external_id: 'A', email: 'b@example.com' }]);
    assert.deepEqual(body.errors.map((e) => [e.index, e.code, e.field]), [[0, 'conflict', 'email']]);
    assert.equal((await stored(key, 'external_id', 'A')).email, 'a@example.com');
  });

  test('an email given up by one item can be used by a new customer later in the same batch', async () => {
    const { key } = await newBusiness();
    const first = await bulkCreate(key, [{ name: 'One', external_id: 'CRM-1', email: 'one@example.com' }]);
    const res = await api(key, 'POST', '/api-customers-bulk-create', {
      customers: [
        { name: 'One', external_id: 'CRM-1', email: 'uno@example.com' },
        { name: 'Newcomer', external_id: 'CRM-3', email: 'one@example.com' },
      ],
    });
    assert.equal(res.status, 200, `the batch is accepted: ${res.text}`);
    assert.deepEqual(res.body.customers.map((c) => [c.index, c.action]), [[0, 'updated'], [1, 'created']]);
    assert.equal((await stored(key, 'email', 'uno@example.com')).id, first.customers[0].customer_id);
    assert.equal((await stored(key, 'email', 'one@example.com')).external_id, 'CRM-3');
  });

  test('the same external_id twice in one batch is created once and then updated', async () => {
    const { key } = await newBusiness();
    const body = await bulkCreate(key, [
      { name: 'First', external_id: 'DUP', email: 'dup@example.com' },
      { name: 'Second', external_id: 'DUP', email: 'dup@example.com' },
    ]);
    assert.deepEqual(body.customers.map((c) => c.action), ['created', 'updated']);
    assert.equal(body.customers[0].customer_id, body.customers[1].customer_id);
    assert.deepEqual([body.created, body.updated], [1, 1]);
    assert.equal((await stored(key, 'external_id', 'DUP')).name, 'Second');
  });

  test('the same email twice in one batch without external_ids creates the first and fails the second', async () => {
    const { key } = await newBusiness();
    const body = await bulkCreate(key, [
      { name: 'First', email: 'twice@example.com' },
      { name: 'Second', email: 'Twice@example.com' },
    ]);
    assert.deepEqual(body.customers.map((c) => [c.index, c.action]), [[0, 'created']]);
    assert.deepEqual(body.errors.map((e) => [e.index, e.code, e.field]), [[1, 'conflict', 'email']]);
    assert.equal((await stored(key, 'email', 'twice@example.com')).name, 'First');
  });

  test('invalid items are reported in errors with their field and the rest are created', async () => {
    const { key } = await newBusiness();
    const body = await bulkCreate(key, [
      { name: 'Good', external_id: 'G-1', email: 'good@example.com' },
      { external_id: 'G-2', email: 'nameless@example.com' },
      { name: 'No contact', external_id: 'G-3' },
      { name: 'Bad email', external_id: 44, email: 'bad@' },
      { name: 'National phone without a country', phone: '087 123 4567' },
      { name: 'Good too', email: 'good2@example.com' },
    ]);
    assert.deepEqual([body.success, body.total, body.created, body.failed], [false, 6, 2, 4]);
    assert.deepEqual(
      body.errors.map((e) => [e.index, e.external_id, e.code, e.field]),
      [
        [1, 'G-2', 'validation_failed', 'name'],
        [2, 'G-3', 'validation_failed', 'email'],
        [3, '44', 'validation_failed', 'email'],
        [4, null, 'validation_failed', 'phone'],
      ],
    );
    assert.deepEqual(body.customers.map((c) => c.index), [0, 5]);
    await assertNotStored(key, ['nameless@example.com']);
  });

  test('the request default_country completes national numbers', async () => {
    const { key } = await newBusiness();
    const body = await bulkCreate(key, [{ name: 'Brit', phone: '020 7946 0958' }], { default_country: 'GB' });
    assert.equal(body.created, 1, JSON.stringify(body));
    assert.equal((await stored(key, 'phone', '+442079460958')).name, 'Brit');
  });

  test('5000 customers imported in 5 batches of 1000 are all created, and re-importing a batch updates it', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const tag = unique('imp');
    const customers = Array.from({ length: 5000 }, (_, n) => ({
      external_id: `${tag}-${n}`,
      name: `Imported ${n}`,
      email: `${tag}-${n}@example.com`,
      phone: `+35386${String(n).padStart(7, '0')}`,
      tags: ['import', `batch-${Math.floor(n / 1000)}`],
      custom_fields: { row: n },
    }));
    const totals = await importCustomers(key, customers);
    assert.deepEqual(totals.errors, [], 'no item failed');
    assert.deepEqual([totals.created, totals.updated, totals.failed], [5000, 0, 0]);
    assert.equal(totals.customers.length, 5000);
    assert.equal(new Set(totals.customers.map((c) => c.customer_id)).size, 5000, '5000 distinct customers');
    for (const [n, c] of totals.customers.entries()) {
      if (c.index !== n || c.external_id !== `${tag}-${n}`) {
        assert.fail(`customer ${n} is reported at index ${c.index} with external_id ${c.external_id}`);
      }
    }

    // Every one of them can be found again, 1000 at a time.
    let found = 0;
    for (let at = 0; at < 5000; at += 1000) {
      const lookup = await batchLookup(key, { external_ids: customers.slice(at, at + 1000).map((c) => c.external_id) });
      assert.deepEqual(lookup.not_found.external_ids, [], `batch ${at / 1000}: nothing missing`);
      found += lookup.customers.length;
    }
    assert.equal(found, 5000);
    const last = await stored(key, 'external_id', `${tag}-4999`);
    assert.deepEqual(
      [last.name, last.email, last.phone, last.tags, last.custom_fields],
      ['Imported 4999', `${tag}-4999@example.com`, '+353860004999', ['import', 'batch-4'], { row: 4999 }],
    );

    const again = await bulkCreate(key, customers.slice(2000, 3000).map((c) => ({ ...c, name: `${c.name} (again)` })));
    assert.deepEqual([again.created, again.updated, again.failed], [0, 1000, 0]);
    for (const [n, c] of again.customers.entries()) {
      if (c.customer_id !== totals.customers[2000 + n].customer_id) {
        assert.fail(`re-imported item ${n} updated ${c.customer_id}, not ${totals.customers[2000 + n].customer_id}`);
      }
    }
    assert.equal((await stored(key, 'external_id', `${tag}-2500`)).name, 'Imported 2500 (again)');
  });

  test('a full batch of 1000 new customers without external_ids is created', async () => {
    const { key } = await newBusiness();
    const tag = unique('full');
    const body = await bulkCreate(
      key,
      Array.from({ length: 1000 }, (_, n) => ({ name: `Full ${n}`, email: `${tag}-${n}@example.com` })),
    );
    assert.deepEqual([body.success, body.total, body.created, body.updated, body.failed], [true, 1000, 1000, 0, 0]);
    assert.equal(body.customers.length, 1000);
    assert.equal((await stored(key, 'email', `${tag}-999@example.com`)).name, 'Full 999');
  });

  test('eight simultaneous imports of the same new external_id create exactly one customer', async () => {
    const { key } = await newBusiness();
    const externalId = unique('RACE');
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        api(key, 'POST', '/api-customers-bulk-create', {
          customers: [{ name: `Racer ${n}`, external_id: externalId, email: `${externalId}@example.com` }],
        }),
      ),
    );
    for (const res of responses) assert.equal(res.status, 200, res.text.slice(0, 300));
    const outcomes = responses.map((res) => res.body.customers[0]);
    assert.equal(outcomes.filter((c) => c?.action === 'created').length, 1, 'exactly one created');
    assert.equal(outcomes.filter((c) => c?.action === 'updated').length, 7, 'the rest updated');
    assert.equal(new Set(outcomes.map((c) => c.customer_id)).size, 1, 'all name the same customer');
    const lookup = await batchLookup(key, { external_ids: [externalId], emails: [`${externalId}@example.com`] });
    assert.equal(lookup.customers.length, 1);
  });

  test('an empty batch answers 200 with zero counts', async () => {
    const { key } = await newBusiness();
    const body = await bulkCreate(key, []);
    assert.deepEqual(body, { success: true, total: 0, created: 0, updated: 0, failed: 0, customers: [], errors: [] });
  });
});
