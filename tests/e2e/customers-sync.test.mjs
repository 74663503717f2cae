// POST /api-customers-sync: the smart upsert. Customers are matched by external_id, then email,
// then phone; what matches is updated, the rest created, and one bad item never sinks the others.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RFC3339_UTC,
  UUID,
  api,
  assertError,
  assertNotStored,
  getCustomer,
  newBusiness,
  sync,
  unique,
} from './support.mjs';

const CUSTOMER_KEYS = [
  'address',
  'created_at',
  'custom_fields',
  'email',
  'external_id',
  'external_system',
  'first_name',
  'id',
  'last_name',
  'name',
  'notes',
  'phone',
  'tags',
  'updated_at',
  'whatsapp_number',
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function stored(key, param, value) {
  const res = await getCustomer(key, param, value);
  assert.equal(res.status, 200, `looking up ${param}=${value}: ${res.text}`);
  return res.body;
}

describe('syncing new customers', () => {
  test('a new customer is created with every field stored as sent, normalised where documented', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const externalId = unique('CRM');
    const sent = {
      external_id: externalId,
      external_system: 'hubspot',
      name: 'John Doe',
      first_name: 'John',
      last_name: 'Doe',
      email: 'John.Doe@Example.COM',
      phone: '087 123 4567',
      whatsapp_number: '+353 86 765 4321',
      address: '123 Main St, Dublin',
      notes: 'VIP customer - handle with priority',
      tags: ['vip', 'enterprise'],
      custom_fields: { crm_segment: 'enterprise', contract_value: 50000, nested: { a: [1, 2] } },
    };
    const before = Date.now();
    const res = await api(key, 'POST', '/api-customers-sync', { customers: [sent] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.success, true);
    assert.deepEqual(Object.keys(res.body).sort(), ['results', 'success']);
    const { results } = res.body;
    assert.equal(results.total, 1);
    assert.equal(results.created, 1);
    assert.equal(results.updated, 0);
    assert.equal(results.failed, 0);
    assert.equal(results.details.length, 1);
    const [detail] = results.details;
    assert.match(detail.customer_id, UUID);
    assert.deepEqual(detail, {
      index: 0,
      external_id: externalId,
      customer_id: detail.customer_id,
      action: 'created',
      matched_by: null,
    });

    const customer = await stored(key, 'id', detail.customer_id);
    assert.deepEqual(Object.keys(customer).sort(), CUSTOMER_KEYS);
    assert.deepEqual(
      { ...customer, created_at: undefined, updated_at: undefined },
      {
        id: detail.customer_id,
        name: 'John Doe',
        email: 'john.doe@example.com',
        phone: '+353871234567',
        whatsapp_number: '+353867654321',
        first_name: 'John',
        last_name: 'Doe',
        address: '123 Main St, Dublin',
        notes: 'VIP customer - handle with priority',
        tags: ['vip', 'enterprise'],
        external_id: externalId,
        external_system: 'hubspot',
        custom_fields: { crm_segment: 'enterprise', contract_value: 50000, nested: { a: [1, 2] } },
        created_at: undefined,
        updated_at: undefined,
      },
    );
    assert.match(customer.created_at, RFC3339_UTC);
    assert.equal(customer.updated_at, customer.created_at, 'a new customer was last updated when created');
    assert.ok(Math.abs(Date.parse(customer.created_at) - before) < 5 * 60_000, 'created_at is about now');
  });

  test('a customer with only a name and an email is created with every other field empty', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [{ name: 'Minimal', email: 'minimal@example.com' }]);
    const customer = await stored(key, 'id', body.results.details[0].customer_id);
    assert.deepEqual(
      { ...customer, id: undefined, created_at: undefined, updated_at: undefined },
      {
        id: undefined,
        name: 'Minimal',
        email: 'minimal@example.com',
        phone: null,
        whatsapp_number: null,
        first_name: null,
        last_name: null,
        address: null,
        notes: null,
        tags: [],
        external_id: null,
        external_system: null,
        custom_fields: {},
        created_at: undefined,
        updated_at: undefined,
      },
    );
  });

  test('a customer with only a name and a phone is created', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [{ name: 'Phone Only', phone: '+44 20 7946 0958' }]);
    assert.equal(body.results.details[0].action, 'created');
    const customer = await stored(key, 'phone', '+442079460958');
    assert.equal(customer.email, null);
    assert.equal(customer.name, 'Phone Only');
  });

  test('an integer external_id is stored, reported and found as a string', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [
      { name: 'Numeric', email: 'numeric@example.com', external_id: 12345 },
      { name: 'Zero-padded', email: 'padded@example.com', external_id: '012345' },
    ]);
    assert.deepEqual(
      body.results.details.map((d) => [d.external_id, d.action]),
      [
        ['12345', 'created'],
        ['012345', 'created'],
      ],
      'the number 12345 and the text "012345" are two different ids',
    );
    const customer = await stored(key, 'external_id', '12345');
    assert.equal(customer.external_id, '12345');
    assert.equal(customer.name, 'Numeric');
    const again = await sync(key, [{ name: 'Numeric Again', email: 'numeric@example.com', external_id: '12345' }]);
    assert.equal(again.results.details[0].action, 'updated');
    assert.equal(again.results.details[0].matched_by, 'external_id');
  });

  test('tags are trimmed and deduplicated, keeping their first order', async () => {
    const { key } = await newBusiness();
    await sync(key, [{ name: 'Tagged', email: 'tagged@example.com', tags: [' vip ', 'b2b', 'vip', 'b2b ', 'new'] }]);
    const customer = await stored(key, 'email', 'tagged@example.com');
    assert.deepEqual(customer.tags, ['vip', 'b2b', 'new']);
  });

  test('empty-string fields are treated as absent', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [
      {
        name: 'Blank Cells',
        email: 'blank@example.com',
        phone: '',
        whatsapp_number: '',
        first_name: '',
        last_name: '',
        address: '',
        notes: '',
        external_id: '',
        external_system: '',
      },
    ]);
    const customer = await stored(key, 'email', 'blank@example.com');
    for (const field of ['phone', 'whatsapp_number', 'first_name', 'last_name', 'address', 'notes', 'external_id', 'external_system']) {
      assert.equal(customer[field], null, `${field} sent as "" is stored as null`);
    }
  });

  test('emails are stored lowercased and phones in E.164', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [{ name: 'Case', email: '  MiXeD.Case@Example.IE ', phone: '(087) 765-4321' }]);
    const customer = await stored(key, 'email', 'mixed.case@example.ie');
    assert.equal(customer.email, 'mixed.case@example.ie');
    assert.equal(customer.phone, '+353877654321');
  });
});

describe('phone numbers and default countries', () => {
  test('a national number is completed with the business default country IE', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [{ name: 'Irish', phone: '087 123 4567' }]);
    const customer = await stored(key, 'phone', '+353871234567');
    assert.equal(customer.phone, '+353871234567');
  });

  test('every common way of writing one Irish number matches the same customer', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const created = await sync(key, [{ name: 'Original', email: 'original@example.com', phone: '+353871234567' }]);
    const id = created.results.details[0].customer_id;
    const formats = [
      '087 123 4567',
      '0871234567',
      '087-123-4567',
      '(087) 123 4567',
      '087.123.4567',
      '+353 87 123 4567',
      '+353 (0)87 123 4567',
      '00353 87 123 4567',
      '+353-87-123-4567',
    ];
    const body = await sync(key, formats.map((phone, n) => ({ name: `Format ${n}`, phone })));
    for (const [n, detail] of body.results.details.entries()) {
      assert.equal(detail.action, 'updated', `"${formats[n]}" matches the stored customer`);
      assert.equal(detail.matched_by, 'phone', `"${formats[n]}" matched by phone`);
      assert.equal(detail.customer_id, id, `"${formats[n]}" matches the same customer`);
    }
    const customer = await stored(key, 'id', id);
    assert.equal(customer.phone, '+353871234567');
    assert.equal(customer.name, `Format ${formats.length - 1}`, 'updates apply in request order');
  });

  test('without a default country a national number fails the item with field phone', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [
      { name: 'National', email: 'national@example.com', phone: '087 123 4567' },
      { name: 'International', email: 'international@example.com', phone: '+353 87 999 0000' },
    ]);
    assert.equal(body.success, false);
    const [failed, ok] = body.results.details;
    assert.equal(failed.action, 'failed');
    assert.equal(failed.customer_id, null);
    assert.equal(failed.error.code, 'validation_failed');
    assert.equal(failed.error.field, 'phone');
    assert.equal(ok.action, 'created');
    await assertNotStored(key, ['national@example.com']);
    assert.equal((await stored(key, 'email', 'international@example.com')).phone, '+353879990000');
  });

  test('default_country in the request overrides the business default for that request only', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const gb = await sync(key, [{ name: 'British', email: 'brit@example.com', phone: '07911 123456' }], {
      default_country: 'gb',
    });
    assert.equal(gb.success, true, JSON.stringify(gb));
    assert.equal((await stored(key, 'email', 'brit@example.com')).phone, '+447911123456');

    await sync(key, [{ name: 'Irish', email: 'irish@example.com', phone: '087 111 2222' }]);
    assert.equal((await stored(key, 'email', 'irish@example.com')).phone, '+353871112222', 'the next request uses IE again');
  });

  test('default_country in the request completes national numbers for a business without one', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [{ name: 'US', phone: '(415) 555-0100' }], { default_country: 'US' });
    assert.equal(body.success, true, JSON.stringify(body));
    assert.equal((await stored(key, 'phone', '+14155550100')).name, 'US');
  });

  test('an unknown default_country in the request refuses the whole request and stores nothing', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    for (const [country, description] of [
      ['XX', 'an unassigned code'],
      ['GBR', 'an alpha-3 code'],
      ['United Kingdom', 'a country name'],
    ]) {
      const res = await api(key, 'POST', '/api-customers-sync', {
        customers: [{ name: 'Nobody', email: 'nobody-country@example.com' }],
        default_country: country,
      });
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, 'default_country', `${description}: field`);
    }
    await assertNotStored(key, ['nobody-country@example.com']);
  });

  test('whatsapp numbers are normalised like phones', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [{ name: 'Chatty', email: 'chatty@example.com', whatsapp_number: '086 765 4321' }]);
    assert.equal((await stored(key, 'email', 'chatty@example.com')).whatsapp_number, '+353867654321');
  });
});

describe('matching and updating', () => {
  test('a customer is matched by external_id first, then email, then phone', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const created = await sync(key, [
      { name: 'One', external_id: 'CRM-1', email: 'one@example.com', phone: '+353871111111' },
      { name: 'Two', email: 'two@example.com', phone: '+353872222222' },
      { name: 'Three', phone: '+353873333333' },
    ]);
    const [one, two, three] = created.results.details.map((d) => d.customer_id);

    const body = await sync(key, [
      // external_id wins even though the email names nobody and the phone names Two.
      { name: 'One by id', external_id: 'CRM-1', email: 'one-new@example.com' },
      // email wins over phone: the email is Two's, the phone Three's.
      { name: 'Two by email', email: 'TWO@example.com' },
      { name: 'Three by phone', phone: '087 333 3333' },
      { name: 'Four', email: 'four@example.com' },
    ]);
    assert.equal(body.success, true, JSON.stringify(body));
    assert.deepEqual(
      body.results.details.map((d) => [d.index, d.action, d.matched_by, d.customer_id]),
      [
        [0, 'updated', 'external_id', one],
        [1, 'updated', 'email', two],
        [2, 'updated', 'phone', three],
        [3, 'created', null, body.results.details[3].customer_id],
      ],
    );
    assert.deepEqual(
      [body.results.total, body.results.created, body.results.updated, body.results.failed],
      [4, 1, 3, 0],
    );
    assert.equal((await stored(key, 'id', one)).email, 'one-new@example.com', 'the update changed the email');
    assertError(await getCustomer(key, 'email', 'one@example.com'), 404, 'not_found', 'the old email is free');
  });

  test('an item with an email and a phone is matched by email when they belong to no one else', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [{ name: 'Emailed', email: 'emailed@example.com' }]);
    const body = await sync(key, [{ name: 'Emailed', email: 'emailed@example.com', phone: '087 444 4444' }]);
    assert.equal(body.results.details[0].matched_by, 'email');
    assert.equal((await stored(key, 'email', 'emailed@example.com')).phone, '+353874444444');
  });

  test('emails are matched case-insensitively', async () => {
    const { key } = await newBusiness();
    const first = await sync(key, [{ name: 'Lower', email: 'case@example.com' }]);
    const body = await sync(key, [{ name: 'Upper', email: 'CASE@EXAMPLE.COM' }]);
    assert.equal(body.results.details[0].action, 'updated');
    assert.equal(body.results.details[0].matched_by, 'email');
    assert.equal(body.results.details[0].customer_id, first.results.details[0].customer_id);
  });

  test('emails with accented capitals are matched case-insensitively too', async () => {
    const { key } = await newBusiness();
    const first = await sync(key, [{ name: 'Élodie', email: 'ÉLODIE@Exemple.FR' }]);
    assert.equal((await stored(key, 'email', 'élodie@exemple.fr')).email, 'élodie@exemple.fr');
    const body = await sync(key, [{ name: 'Élodie B', email: 'élodie@EXEMPLE.fr' }]);
    assert.equal(body.results.details[0].action, 'updated');
    assert.equal(body.results.details[0].customer_id, first.results.details[0].customer_id);
  });

  test('custom_fields arrays and values replaced by a different type are replaced whole', async () => {
    const { key } = await newBusiness();
    await sync(key, [{ name: 'Lists', email: 'lists@example.com', custom_fields: { list: [1, 2], obj: { a: 1 }, n: 1 } }]);
    await sync(key, [{ name: 'Lists', email: 'lists@example.com', custom_fields: { list: [3], obj: 'flat', n: { deep: true } } }]);
    assert.deepEqual((await stored(key, 'email', 'lists@example.com')).custom_fields, {
      list: [3],
      obj: 'flat',
      n: { deep: true },
    });
  });

  test('an update keeps absent fields, merges custom_fields and replaces tags', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [
      {
        name: 'Before',
        external_id: 'MERGE-1',
        external_system: 'pipedrive',
        email: 'merge@example.com',
        phone: '087 123 4567',
        whatsapp_number: '087 123 4567',
        first_name: 'Be',
        last_name: 'Fore',
        address: 'Old Street',
        notes: 'old notes',
        tags: ['a', 'b'],
        custom_fields: { keep: 1, overwrite: 'old', remove: true, nested: { x: 1, y: 2 } },
      },
    ]);
    const original = await stored(key, 'external_id', 'MERGE-1');
    await sleep(5);

    const body = await sync(key, [
      {
        name: 'After',
        external_id: 'MERGE-1',
        email: 'MERGE@example.com',
        notes: '',
        phone: '',
        tags: ['c', ' c '],
        custom_fields: { overwrite: 'new', remove: null, added: [1], nested: { y: null, z: 3 } },
      },
    ]);
    assert.equal(body.results.details[0].action, 'updated');
    const after = await stored(key, 'external_id', 'MERGE-1');
    assert.deepEqual(
      { ...after, updated_at: undefined },
      {
        ...original,
        name: 'After',
        tags: ['c'],
        custom_fields: { keep: 1, overwrite: 'new', added: [1], nested: { x: 1, z: 3 } },
        updated_at: undefined,
      },
      'absent and empty fields keep their stored values',
    );
    assert.equal(after.created_at, original.created_at, 'created_at never changes');
    assert.ok(after.updated_at > original.updated_at, `updated_at moves forward (${original.updated_at} -> ${after.updated_at})`);
  });

  test('an update without tags or custom_fields keeps them', async () => {
    const { key } = await newBusiness();
    await sync(key, [{ name: 'Keep', email: 'keep@example.com', tags: ['x'], custom_fields: { a: 1 } }]);
    await sync(key, [{ name: 'Keep 2', email: 'keep@example.com' }]);
    const customer = await stored(key, 'email', 'keep@example.com');
    assert.deepEqual(customer.tags, ['x']);
    assert.deepEqual(customer.custom_fields, { a: 1 });
    assert.equal(customer.name, 'Keep 2');
  });

  test('an empty tag list clears the tags', async () => {
    const { key } = await newBusiness();
    await sync(key, [{ name: 'Clear', email: 'clear@example.com', tags: ['x', 'y'] }]);
    await sync(key, [{ name: 'Clear', email: 'clear@example.com', tags: [] }]);
    assert.deepEqual((await stored(key, 'email', 'clear@example.com')).tags, []);
  });

  test('a customer found by email gains the external_id it is synced with', async () => {
    const { key } = await newBusiness();
    const first = await sync(key, [{ name: 'Unlinked', email: 'unlinked@example.com' }]);
    const body = await sync(key, [{ name: 'Linked', email: 'unlinked@example.com', external_id: 'LINK-1' }]);
    assert.equal(body.results.details[0].matched_by, 'email');
    const customer = await stored(key, 'external_id', 'LINK-1');
    assert.equal(customer.id, first.results.details[0].customer_id);
  });

  test('the same person twice in one batch is created once and then updated', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const body = await sync(key, [
      { name: 'Joe', email: 'joe@example.com' },
      { name: 'Joe B', email: 'Joe@Example.com', phone: '+353871234567' },
      { name: 'Joe C', phone: '087 123 4567' },
      { name: 'Ext', external_id: 'TWICE', email: 'ext@example.com' },
      { name: 'Ext 2', external_id: 'TWICE', email: 'ext@example.com' },
    ]);
    assert.equal(body.success, true, JSON.stringify(body));
    const d = body.results.details;
    assert.deepEqual(
      d.map((x) => [x.action, x.matched_by]),
      [
        ['created', null],
        ['updated', 'email'],
        ['updated', 'phone'],
        ['created', null],
        ['updated', 'external_id'],
      ],
    );
    assert.equal(d[1].customer_id, d[0].customer_id);
    assert.equal(d[2].customer_id, d[0].customer_id);
    assert.equal(d[4].customer_id, d[3].customer_id);
    assert.deepEqual([body.results.created, body.results.updated], [2, 3]);
    const joe = await stored(key, 'id', d[0].customer_id);
    assert.equal(joe.name, 'Joe C');
    assert.equal(joe.phone, '+353871234567');
    assert.equal((await stored(key, 'id', d[3].customer_id)).name, 'Ext 2');
  });

  test('details come back in request order, one per item, with the external_id as sent', async () => {
    const { key } = await newBusiness();
    const items = Array.from({ length: 30 }, (_, n) => ({
      name: `Order ${n}`,
      email: n % 7 === 3 ? 'not-an-email' : `order${n}@example.com`,
      external_id: n % 2 ? n : `ORD-${n}`,
    }));
    const body = await sync(key, items);
    assert.equal(body.results.details.length, 30);
    for (const [n, detail] of body.results.details.entries()) {
      assert.equal(detail.index, n, `detail ${n} is at its own index`);
      assert.equal(detail.external_id, n % 2 ? String(n) : `ORD-${n}`, `detail ${n} external_id`);
      assert.equal(detail.action, n % 7 === 3 ? 'failed' : 'created', `detail ${n} action`);
    }
    assert.equal(body.results.failed, 4);
    assert.equal(body.results.created, 26);
    assert.equal(body.success, false);
  });
});

describe('conflicts', () => {
  test('an item whose email belongs to a customer linked to another external_id fails with conflict on external_id', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const first = await sync(key, [{ name: 'Linked', external_id: 'CRM-A', email: 'linked@example.com', phone: '087 100 0000' }]);
    const before = await stored(key, 'external_id', 'CRM-A');
    const body = await sync(key, [
      { name: 'Impostor by email', external_id: 'CRM-B', email: 'LINKED@example.com' },
      { name: 'Impostor by phone', external_id: 'CRM-C', phone: '+353871000000' },
      { name: 'Innocent', email: 'innocent@example.com' },
    ]);
    assert.equal(body.success, false);
    assert.deepEqual([body.results.created, body.results.updated, body.results.failed], [1, 0, 2]);
    for (const detail of body.results.details.slice(0, 2)) {
      assert.equal(detail.action, 'failed');
      assert.equal(detail.customer_id, null);
      assert.equal(detail.error.code, 'conflict');
      assert.equal(detail.error.field, 'external_id');
      assert.equal(typeof detail.error.message, 'string');
    }
    assert.equal(body.results.details[0].external_id, 'CRM-B');
    assert.equal(body.results.details[2].action, 'created');
    assert.deepEqual(await stored(key, 'external_id', 'CRM-A'), before, 'the linked customer is untouched');
    assert.equal(before.id, first.results.details[0].customer_id);
    assertError(await getCustomer(key, 'external_id', 'CRM-B'), 404, 'not_found', 'CRM-B was not stored');
  });

  test("an update that would take another customer's email or phone fails with conflict on that field", async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [
      { name: 'Ann', external_id: 'ANN', email: 'ann@example.com', phone: '087 200 0001' },
      { name: 'Bob', external_id: 'BOB', email: 'bob@example.com', phone: '087 200 0002' },
    ]);
    const ann = await stored(key, 'external_id', 'ANN');
    const bob = await stored(key, 'external_id', 'BOB');
    const body = await sync(key, [
      { name: 'Ann takes email', external_id: 'ANN', email: 'BOB@example.com' },
      { name: 'Ann takes phone', external_id: 'ANN', phone: '+353872000002' },
      { name: 'Bob renamed', external_id: 'BOB', email: 'bob@example.com' },
    ]);
    const [byEmail, byPhone, fine] = body.results.details;
    assert.equal(byEmail.action, 'failed');
    assert.equal(byEmail.error.code, 'conflict');
    assert.equal(byEmail.error.field, 'email');
    assert.equal(byPhone.action, 'failed');
    assert.equal(byPhone.error.code, 'conflict');
    assert.equal(byPhone.error.field, 'phone');
    assert.equal(fine.action, 'updated');
    assert.deepEqual(await stored(key, 'external_id', 'ANN'), ann, 'Ann is untouched');
    const bobAfter = await stored(key, 'external_id', 'BOB');
    assert.equal(bobAfter.name, 'Bob renamed');
    assert.equal(bobAfter.email, bob.email);
    assert.equal(bobAfter.phone, bob.phone);
  });

  test('an email given up by one item can be used by a new customer later in the same batch', async () => {
    const { key } = await newBusiness();
    const first = await sync(key, [{ name: 'One', external_id: 'CRM-1', email: 'one@example.com' }]);
    const res = await api(key, 'POST', '/api-customers-sync', {
      customers: [
        { name: 'One', external_id: 'CRM-1', email: 'uno@example.com' },
        { name: 'Newcomer', email: 'one@example.com' },
      ],
    });
    assert.equal(res.status, 200, `the batch is accepted: ${res.text}`);
    assert.deepEqual(
      res.body.results.details.map((d) => [d.action, d.matched_by]),
      [['updated', 'external_id'], ['created', null]],
    );
    assert.equal((await stored(key, 'email', 'uno@example.com')).id, first.results.details[0].customer_id);
    assert.equal((await stored(key, 'email', 'one@example.com')).name, 'Newcomer');
  });

  test('a phone given up by one customer can be taken by another customer later in the same batch', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [
      { name: 'Ann', external_id: 'ANN', email: 'ann@example.com', phone: '087 600 0001' },
      { name: 'Bob', external_id: 'BOB', email: 'bob@example.com', phone: '087 600 0002' },
    ]);
    const res = await api(key, 'POST', '/api-customers-sync', {
      customers: [
        { name: 'Bob', external_id: 'BOB', email: 'bob@example.com', phone: '087 600 0003' },
        { name: 'Ann', external_id: 'ANN', email: 'ann@example.com', phone: '087 600 0002' },
      ],
    });
    assert.equal(res.status, 200, `the batch is accepted: ${res.text}`);
    assert.deepEqual(res.body.results.details.map((d) => d.action), ['updated', 'updated']);
    assert.equal((await stored(key, 'external_id', 'ANN')).phone, '+353876000002');
    assert.equal((await stored(key, 'external_id', 'BOB')).phone, '+353876000003');
  });

  test('two items with different external_ids and the same new email: the second fails with conflict', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [
      { name: 'X', external_id: 'X', email: 'shared@example.com' },
      { name: 'Y', external_id: 'Y', email: 'shared@example.com' },
    ]);
    assert.equal(body.results.details[0].action, 'created');
    assert.equal(body.results.details[1].action, 'failed');
    assert.equal(body.results.details[1].error.code, 'conflict');
    assert.equal(body.results.details[1].error.field, 'external_id');
    assertError(await getCustomer(key, 'external_id', 'Y'), 404, 'not_found', 'Y was not stored');
  });

  test('an item whose email names one customer and phone another fails with conflict on phone', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    await sync(key, [
      { name: 'Email Owner', email: 'owner@example.com' },
      { name: 'Phone Owner', phone: '087 300 0003' },
    ]);
    const body = await sync(key, [{ name: 'Mixed', email: 'owner@example.com', phone: '087 300 0003' }]);
    const [detail] = body.results.details;
    assert.equal(detail.action, 'failed');
    assert.equal(detail.error.code, 'conflict');
    assert.equal(detail.error.field, 'phone');
    assert.equal((await stored(key, 'email', 'owner@example.com')).phone, null);
  });
});

describe('invalid items', () => {
  test('each invalid item fails with the field at fault while the valid ones are stored', async () => {
    const { key } = await newBusiness();
    const cases = [
      [{ email: 'noname@example.com' }, 'name', 'no name'],
      [{ name: '   ', email: 'blankname@example.com' }, 'name', 'a blank name'],
      [{ name: 'N'.repeat(201), email: 'longname@example.com' }, 'name', 'a 201-character name'],
      [{ name: 'Nul\u0000Byte', email: 'nul@example.com' }, 'name', 'a NUL character in the name'],
      [{ name: 'Bell\u0007', email: 'bell@example.com' }, 'name', 'a control character in the name'],
      [{ name: 'No Contact' }, 'email', 'neither email nor phone'],
      [{ name: 'Blank Contact', email: '', phone: '' }, 'email', 'blank email and phone'],
      [{ name: 'WhatsApp Only', whatsapp_number: '+353871234567' }, 'email', 'only a whatsapp number'],
      [{ name: 'Bad Email', email: 'not-an-email' }, 'email', 'an email without @'],
      [{ name: 'Bad Email', email: 'john@localhost' }, 'email', 'an email domain without a dot'],
      [{ name: 'Bad Email', email: 'john doe@example.com' }, 'email', 'a space in an email'],
      [{ name: 'Bad Phone', phone: 'call me maybe' }, 'phone', 'prose as a phone'],
      [{ name: 'Bad Phone', phone: '+12' }, 'phone', 'a too short phone'],
      [{ name: 'Bad Phone', phone: '+3538712345678901234' }, 'phone', 'a too long phone'],
      [{ name: 'Bad WhatsApp', email: 'wa@example.com', whatsapp_number: 'abc' }, 'whatsapp_number', 'a bad whatsapp number'],
      [{ name: 'Tags', email: 'tags@example.com', tags: Array.from({ length: 51 }, (_, n) => `t${n}`) }, 'tags', '51 tags'],
      [{ name: 'Tags', email: 'longtag@example.com', tags: ['t'.repeat(65)] }, 'tags', 'a 65-character tag'],
      [{ name: 'CF', email: 'cf@example.com', custom_fields: { big: 'x'.repeat(16 * 1024) } }, 'custom_fields', 'custom_fields over 16 KiB'],
    ];
    const valid = { name: 'Valid Neighbour', email: 'valid-neighbour@example.com' };
    const items = [valid, ...cases.map(([item]) => item), { name: 'Last Valid', email: 'last-valid@example.com' }];
    const body = await sync(key, items);
    assert.equal(body.success, false);
    assert.equal(body.results.total, items.length);
    assert.equal(body.results.created, 2, 'both valid items are created');
    assert.equal(body.results.failed, cases.length);
    for (const [n, [, field, description]] of cases.entries()) {
      const detail = body.results.details[n + 1];
      assert.equal(detail.index, n + 1, `${description}: index`);
      assert.equal(detail.action, 'failed', `${description}: action`);
      assert.equal(detail.customer_id, null, `${description}: no customer id`);
      assert.equal(detail.matched_by, null, `${description}: matched_by`);
      assert.equal(detail.error?.code, 'validation_failed', `${description}: code`);
      assert.equal(detail.error?.field, field, `${description}: field`);
      assert.ok(detail.error?.message, `${description}: message`);
    }
    await assertNotStored(
      key,
      cases.map(([item]) => item.email).filter((email) => email && email.includes('@') && !email.includes(' ') && !email.endsWith('localhost')),
      'invalid items',
    );
    assert.equal((await stored(key, 'email', 'valid-neighbour@example.com')).name, 'Valid Neighbour');
    assert.equal((await stored(key, 'email', 'last-valid@example.com')).name, 'Last Valid');
  });

  test('items of the wrong type fail on their own', async () => {
    const { key } = await newBusiness();
    const cases = [
      ['a string', 'John'],
      ['a number', 42],
      ['null', null],
      ['an array', [{ name: 'x', email: 'nested@example.com' }]],
      ['a name that is a number', { name: 7, email: 'seven@example.com' }],
      ['tags that are a string', { name: 'T', email: 'tagstring@example.com', tags: 'vip' }],
      ['tags that hold a number', { name: 'T', email: 'tagnum@example.com', tags: ['ok', 5] }],
      ['custom_fields that are an array', { name: 'C', email: 'cfarray@example.com', custom_fields: [1] }],
      ['custom_fields that are a string', { name: 'C', email: 'cfstring@example.com', custom_fields: '{"a":1}' }],
      ['an external_id that is a fraction', { name: 'E', email: 'fraction@example.com', external_id: 4.5 }],
      ['an external_id that is a boolean', { name: 'E', email: 'bool@example.com', external_id: true }],
      ['an email that is an object', { name: 'E', email: { address: 'obj@example.com' } }],
    ];
    const body = await sync(key, [...cases.map(([, item]) => item), { name: 'Survivor', email: 'survivor@example.com' }]);
    for (const [n, [description]] of cases.entries()) {
      const detail = body.results.details[n];
      assert.equal(detail.action, 'failed', `${description}: fails`);
      assert.equal(detail.error?.code, 'validation_failed', `${description}: code`);
    }
    assert.equal(body.results.details.at(-1).action, 'created', 'the valid item is still created');
    await assertNotStored(key, ['nested@example.com', 'seven@example.com', 'tagstring@example.com', 'tagnum@example.com',
      'cfarray@example.com', 'cfstring@example.com', 'fraction@example.com', 'bool@example.com']);
  });

  test('a batch of only invalid items answers 200 with success false and stores nothing', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, [{ name: 'No Contact' }, { email: 'nameless@example.com' }]);
    assert.equal(body.success, false);
    assert.deepEqual([body.results.total, body.results.created, body.results.updated, body.results.failed], [2, 0, 0, 2]);
    await assertNotStored(key, ['nameless@example.com']);
  });

  test('an empty batch answers 200 with zero counts', async () => {
    const { key } = await newBusiness();
    const body = await sync(key, []);
    assert.deepEqual(body, { success: true, results: { total: 0, created: 0, updated: 0, failed: 0, details: [] } });
  });
});

describe('concurrent syncs', () => {
  async function fireTogether(key, count, customer) {
    const responses = await Promise.all(
      Array.from({ length: count }, (_, n) =>
        api(key, 'POST', '/api-customers-sync', { customers: [{ ...customer, name: `${customer.name} ${n}` }] }),
      ),
    );
    for (const res of responses) {
      assert.equal(res.status, 200, `every concurrent sync succeeds: ${res.status} ${res.text.slice(0, 300)}`);
    }
    return responses.map((res) => res.body.results.details[0]);
  }

  function assertOneCreatedRestUpdated(details, matchedBy) {
    const actions = details.map((d) => d.action);
    assert.equal(actions.filter((a) => a === 'created').length, 1, `exactly one created: ${actions}`);
    assert.equal(actions.filter((a) => a === 'updated').length, details.length - 1, `the rest updated: ${actions}`);
    const ids = new Set(details.map((d) => d.customer_id));
    assert.equal(ids.size, 1, 'all name the same customer');
    for (const d of details.filter((x) => x.action === 'updated')) {
      assert.equal(d.matched_by, matchedBy);
    }
    return [...ids][0];
  }

  test('eight simultaneous syncs of the same new email create exactly one customer', async () => {
    const { key } = await newBusiness();
    const email = `${unique('race')}@example.com`;
    const details = await fireTogether(key, 8, { name: 'Racer', email });
    const id = assertOneCreatedRestUpdated(details, 'email');
    const lookup = await api(key, 'POST', '/api-customers-batch-lookup', { emails: [email] });
    assert.equal(lookup.body.customers.length, 1);
    assert.equal(lookup.body.customers[0].id, id);
  });

  test('eight simultaneous syncs of the same new external_id create exactly one customer', async () => {
    const { key } = await newBusiness();
    const externalId = unique('RACE');
    const details = await fireTogether(key, 8, { name: 'Racer', external_id: externalId, email: `${externalId}@example.com` });
    const id = assertOneCreatedRestUpdated(details, 'external_id');
    const found = await stored(key, 'external_id', externalId);
    assert.equal(found.id, id);
  });

  test('eight simultaneous syncs of the same new phone create exactly one customer', async () => {
    const { key } = await newBusiness({ default_country: 'IE' });
    const details = await fireTogether(key, 8, { name: 'Racer', phone: '087 654 3210' });
    const id = assertOneCreatedRestUpdated(details, 'phone');
    assert.equal((await stored(key, 'phone', '+353876543210')).id, id);
  });

  test('two simultaneous syncs of the same 50 new customers store 50 customers', async () => {
    const { key } = await newBusiness();
    const tag = unique('pair');
    const batch = Array.from({ length: 50 }, (_, n) => ({ name: `Pair ${n}`, email: `${tag}-${n}@example.com` }));
    const responses = await Promise.all([0, 1].map(() => api(key, 'POST', '/api-customers-sync', { customers: batch })));
    for (const res of responses) assert.equal(res.status, 200, res.text.slice(0, 300));
    const created = responses.reduce((sum, res) => sum + res.body.results.created, 0);
    const updated = responses.reduce((sum, res) => sum + res.body.results.updated, 0);
    assert.equal(created, 50, 'each customer is created once over both requests');
    assert.equal(updated, 50, 'and updated by the other request');
    for (let n = 0; n < 50; n += 1) {
      const [a, b] = responses.map((res) => res.body.results.details[n].customer_id);
      assert.equal(a, b, `item ${n} names the same customer in both responses`);
    }
    const lookup = await api(key, 'POST', '/api-customers-batch-lookup', { emails: batch.map((c) => c.email) });
    assert.equal(lookup.body.customers.length, 50);
    assert.deepEqual(lookup.body.not_found.emails, []);
  });
});
