// Finding customers: GET /api-customers by one key, and POST /api-customers-batch-lookup by many.
// Lookups normalise emails and phones exactly as syncs store them.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { api, assertError, batchLookup, getCustomer, newBusiness, sync, unique } from './support.mjs';

/** A business (default country IE) with two customers, and each customer as stored. */
async function businessWithCustomers() {
  const business = await newBusiness({ default_country: 'IE' });
  const john = {
    name: 'John Doe',
    email: 'john@x.com',
    phone: '087 123 4567',
    external_id: unique('CRM'),
    tags: ['vip'],
    custom_fields: { tier: 'gold' },
  };
  const mary = { name: 'Mary Major', email: 'mary@example.ie', phone: '+353 86 000 1111', external_id: 777 };
  const body = await sync(business.key, [john, mary]);
  assert.equal(body.success, true, JSON.stringify(body));
  const [johnId, maryId] = body.results.details.map((d) => d.customer_id);
  const johnStored = await api(business.key, 'GET', `/api-customers?id=${johnId}`);
  const maryStored = await api(business.key, 'GET', `/api-customers?id=${maryId}`);
  assert.equal(johnStored.status, 200);
  assert.equal(maryStored.status, 200);
  return { ...business, john: johnStored.body, mary: maryStored.body, johnExternalId: john.external_id };
}

describe('GET /api-customers', () => {
  let ctx;
  before(async () => {
    ctx = await businessWithCustomers();
  });

  test('a customer is found by id, external_id, email and phone, always the same and complete', async () => {
    const { key, john, johnExternalId } = ctx;
    assert.equal(john.email, 'john@x.com');
    assert.equal(john.phone, '+353871234567');
    for (const [param, value] of [
      ['id', john.id],
      ['external_id', johnExternalId],
      ['email', 'john@x.com'],
      ['phone', '+353871234567'],
    ]) {
      const res = await getCustomer(key, param, value);
      assert.equal(res.status, 200, `by ${param}: ${res.text}`);
      assert.deepEqual(res.body, john, `by ${param}: the whole customer`);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/, `by ${param}: JSON`);
    }
  });

  test('an integer external_id is found by its digits', async () => {
    const res = await getCustomer(ctx.key, 'external_id', '777');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, ctx.mary);
  });

  test('email lookups ignore case and surrounding spaces', async () => {
    for (const email of ['JOHN@X.COM', 'John@X.com', '  john@x.com  ']) {
      const res = await getCustomer(ctx.key, 'email', email);
      assert.equal(res.status, 200, `email=${JSON.stringify(email)}: ${res.text}`);
      assert.equal(res.body.id, ctx.john.id, `email=${JSON.stringify(email)}`);
    }
  });

  test('phone lookups normalise the number, whatever its encoding in the query string', async () => {
    const queries = [
      ['phone=087%201234567', 'a national number with the default country IE'],
      ['phone=0871234567', 'a national number without spaces'],
      ['phone=%2B353871234567', 'an encoded +'],
      ['phone=+353871234567', "an unencoded + (arrives as a space)"],
      ['phone=+353%2087%20123%204567', 'an unencoded + and encoded spaces'],
      ['phone=00353871234567', 'the 00 international prefix'],
      ['phone=%2B353%20(0)87%20123-4567', 'the (0) trunk prefix and separators'],
    ];
    for (const [query, description] of queries) {
      const res = await api(ctx.key, 'GET', `/api-customers?${query}`);
      assert.equal(res.status, 200, `${description} (${query}): ${res.text}`);
      assert.equal(res.body.id, ctx.john.id, `${description} (${query})`);
    }
  });

  test('an id in upper case finds the customer', async () => {
    const res = await getCustomer(ctx.key, 'id', ctx.john.id.toUpperCase());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, ctx.john.id);
  });

  test('a key that names no customer answers 404 not_found', async () => {
    const cases = [
      ['id', randomUUID(), 'an unknown id'],
      ['external_id', unique('nobody'), 'an unknown external_id'],
      ['email', 'nobody@x.com', 'an unknown email'],
      ['phone', '+353879999999', 'an unknown phone'],
      ['external_id', ctx.johnExternalId.toLowerCase() === ctx.johnExternalId ? `${ctx.johnExternalId}x` : ctx.johnExternalId.toLowerCase(), 'an external_id differing in case'],
    ];
    for (const [param, value, description] of cases) {
      assertError(await getCustomer(ctx.key, param, value), 404, 'not_found', description);
    }
  });

  test('a query naming the customer twice, or blank, answers 422, like every request that names a customer; none lists', async () => {
    for (const [query, description] of [['', 'no query'], ['?', 'an empty query']]) {
      const listed = await api(ctx.key, 'GET', `/api-customers${query}`);
      assert.equal(listed.status, 200, `${description} lists the customers: ${listed.text.slice(0, 200)}`);
      assert.ok(Array.isArray(listed.body.customers), description);
    }
    const cases = [
      ['?name=John', 'an unsupported parameter only'],
      ['?email=', 'a blank email'],
      [`?email=john%40x.com&phone=%2B353871234567`, 'email and phone'],
      [`?id=${ctx.john.id}&external_id=x`, 'id and external_id'],
      [`?id=${ctx.john.id}&email=john%40x.com&phone=1&external_id=2`, 'all four'],
    ];
    for (const [query, description] of cases) {
      const res = await api(ctx.key, 'GET', `/api-customers${query}`);
      assertError(res, 422, 'validation_failed', description);
    }
  });

  test('a malformed id, email or phone answers 422 with the parameter as field', async () => {
    const cases = [
      ['id', 'not-a-uuid', 'an id that is not a UUID'],
      ['id', "' OR 1=1 --", 'an injection attempt as id'],
      ['email', 'not-an-email', 'an email without @'],
      ['email', "' OR 1=1 --", 'an injection attempt as email'],
      ['phone', 'call me', 'prose as a phone'],
    ];
    for (const [param, value, description] of cases) {
      const res = await getCustomer(ctx.key, param, value);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, param, `${description}: field`);
    }
  });

  test('a national phone number cannot be looked up in a business without a default country', async () => {
    const { key } = await newBusiness();
    await sync(key, [{ name: 'Intl', phone: '+353871234567' }]);
    const res = await getCustomer(key, 'phone', '087 123 4567');
    const error = assertError(res, 422, 'validation_failed', 'a national number without a default country');
    assert.equal(error.field, 'phone');
    const found = await api(key, 'GET', '/api-customers?phone=+353871234567');
    assert.equal(found.status, 200, 'the international form is found');
  });

  test('the wrong method answers 405 with Allow: GET', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await api(ctx.key, method, `/api-customers?id=${ctx.john.id}`);
      assertError(res, 405, 'method_not_allowed', method);
      assert.equal(res.headers.get('allow'), 'GET', `${method}: Allow header`);
    }
    const still = await getCustomer(ctx.key, 'id', ctx.john.id);
    assert.deepEqual(still.body, ctx.john, 'the customer is untouched');
  });
});

describe('POST /api-customers-batch-lookup', () => {
  let ctx;
  before(async () => {
    ctx = await businessWithCustomers();
  });

  test('customers are found by any mix of keys, each once, and the misses are listed as given', async () => {
    const { key, john, mary, johnExternalId } = ctx;
    const unknownId = randomUUID();
    const res = await api(key, 'POST', '/api-customers-batch-lookup', {
      ids: [john.id, unknownId],
      external_ids: [johnExternalId, 777, 'NOPE-1'],
      emails: ['JOHN@X.COM', 'Nobody@X.com'],
      phones: ['087 123 4567', '+353 86 000 1111', '087 000 0000'],
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['customers', 'invalid', 'not_found']);
    const byId = Object.fromEntries(res.body.customers.map((c) => [c.id, c]));
    assert.equal(res.body.customers.length, 2, 'John (named four times) and Mary (twice), each once');
    assert.deepEqual(byId[john.id], john);
    assert.deepEqual(byId[mary.id], mary);
    assert.deepEqual(res.body.not_found, {
      ids: [unknownId],
      external_ids: ['NOPE-1'],
      emails: ['Nobody@X.com'],
      phones: ['087 000 0000'],
    });
    assert.deepEqual(res.body.invalid, []);
  });

  test('keys that cannot be keys are listed as invalid with their position, and the rest still answered', async () => {
    const { key, john } = ctx;
    const res = await api(key, 'POST', '/api-customers-batch-lookup', {
      ids: ['not-a-uuid'],
      emails: ['john@x.com', 'not-an-email', 7],
      phones: ['call me'],
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.customers.map((c) => c.id), [john.id]);
    assert.deepEqual(
      res.body.invalid.map((i) => [i.field, i.value]),
      [
        ['ids[0]', 'not-a-uuid'],
        ['emails[1]', 'not-an-email'],
        ['emails[2]', 7],
        ['phones[0]', 'call me'],
      ],
    );
    for (const entry of res.body.invalid) {
      assert.deepEqual(Object.keys(entry).sort(), ['field', 'message', 'value']);
      assert.ok(entry.message, `${entry.field}: has a message`);
    }
    assert.deepEqual(res.body.not_found, { ids: [], external_ids: [], emails: [], phones: [] });
  });

  test('a lookup with nothing to look up answers 422 validation_failed', async () => {
    const cases = [
      [{}, 'no lists'],
      [{ ids: [], external_ids: [], emails: [], phones: [] }, 'four empty lists'],
      [{ names: ['John'] }, 'only an unsupported list'],
    ];
    for (const [body, description] of cases) {
      const res = await api(ctx.key, 'POST', '/api-customers-batch-lookup', body);
      assertError(res, 422, 'validation_failed', description);
    }
  });

  test('more than 1000 keys in all answers 422 batch_too_large, 1000 are answered', async () => {
    const tooMany = [
      [{ external_ids: Array.from({ length: 1001 }, (_, n) => `K-${n}`) }, '1001 external ids'],
      [
        {
          ids: Array.from({ length: 250 }, () => randomUUID()),
          external_ids: Array.from({ length: 250 }, (_, n) => `K-${n}`),
          emails: Array.from({ length: 250 }, (_, n) => `k${n}@example.com`),
          phones: Array.from({ length: 251 }, (_, n) => `+3538700${String(n).padStart(5, '0')}`),
        },
        '1001 keys over four lists',
      ],
    ];
    for (const [body, description] of tooMany) {
      const res = await api(ctx.key, 'POST', '/api-customers-batch-lookup', body);
      assertError(res, 422, 'batch_too_large', description);
    }
    const emails = [...Array.from({ length: 999 }, (_, n) => `miss${n}@example.com`), 'john@x.com'];
    const body = await batchLookup(ctx.key, { emails });
    assert.deepEqual(body.customers.map((c) => c.id), [ctx.john.id]);
    assert.equal(body.not_found.emails.length, 999);
  });

  test('a lookup whose lists are not lists answers 422 validation_failed', async () => {
    const cases = [
      [{ emails: 'john@x.com' }, 'emails as a string'],
      [{ ids: { a: 1 } }, 'ids as an object'],
      [{ phones: null }, 'phones as null'],
    ];
    for (const [body, description] of cases) {
      const res = await api(ctx.key, 'POST', '/api-customers-batch-lookup', body);
      assertError(res, 422, 'validation_failed', description);
    }
  });

  test('a national phone in a batch lookup uses the business default country', async () => {
    const body = await batchLookup(ctx.key, { phones: ['0871234567'] });
    assert.deepEqual(body.customers.map((c) => c.id), [ctx.john.id]);
  });
});
