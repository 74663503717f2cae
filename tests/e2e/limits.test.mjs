// Malformed, oversized and hostile input: every such request is refused with a 4xx and the
// common error shape (never a 5xx), and nothing it carried is stored.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE_URL,
  REQUEST_TIMEOUT_MS,
  admin,
  api,
  assertClientError,
  assertError,
  assertNotStored,
  batchLookup,
  getCustomer,
  newBusiness,
  request,
  sync,
  unique,
} from './support.mjs';

const JSON_TYPE = { 'content-type': 'application/json' };
const WRITE_ENDPOINTS = ['/api-customers-sync', '/api-customers-bulk-create'];

/** Raw bodies that must be refused, each carrying would-be customers with the given emails. */
function badWriteBodies(tag) {
  const email = (n) => `${tag}-${n}@example.com`;
  const customer = (n) => ({ name: `Would Be ${n}`, email: email(n) });
  const valid = (n) => JSON.stringify({ customers: [customer(n)] });
  const deep = (levels, inner) => '['.repeat(levels) + inner + ']'.repeat(levels);
  const deepObject = (levels) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
  return [
    // [description, body, headers, status, code, emails that must not be stored]
    ['a body that is not JSON', `customers=${email(1)}`, JSON_TYPE, 400, 'malformed_request', [email(1)]],
    ['truncated JSON', valid(2).slice(0, -2), JSON_TYPE, 400, 'malformed_request', [email(2)]],
    ['JSON followed by garbage', `${valid(3)} and more`, JSON_TYPE, 400, 'malformed_request', [email(3)]],
    ['two JSON documents', `${valid(4)}${valid(4)}`, JSON_TYPE, 400, 'malformed_request', [email(4)]],
    ['JSON with single quotes', valid(5).replaceAll('"', "'"), JSON_TYPE, 400, 'malformed_request', [email(5)]],
    ['an empty body', '', JSON_TYPE, 400, 'malformed_request', []],
    ['a body of whitespace', ' \n\t ', JSON_TYPE, 400, 'malformed_request', []],
    ['bytes that are not UTF-8', Buffer.concat([Buffer.from(valid(6).slice(0, 30)), Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from(valid(6).slice(30))]), JSON_TYPE, 400, 'malformed_request', [email(6)]],
    ['customers as a string', JSON.stringify({ customers: 'x' }), JSON_TYPE, 422, 'validation_failed', []],
    ['customers as an object', JSON.stringify({ customers: customer(7) }), JSON_TYPE, 422, 'validation_failed', [email(7)]],
    ['customers as null', JSON.stringify({ customers: null }), JSON_TYPE, 422, 'validation_failed', []],
    ['a top-level array of customers', JSON.stringify([customer(8)]), JSON_TYPE, 422, 'validation_failed', [email(8)]],
    ['an empty array', '[]', JSON_TYPE, 422, 'validation_failed', []],
    ['an object without customers', JSON.stringify({ customer: [customer(9)] }), JSON_TYPE, 422, 'validation_failed', [email(9)]],
    ['an empty object', '{}', JSON_TYPE, 422, 'validation_failed', []],
    ['null', 'null', JSON_TYPE, 422, 'validation_failed', []],
    ['a number', '42', JSON_TYPE, 422, 'validation_failed', []],
    ['a string', '"customers"', JSON_TYPE, 422, 'validation_failed', []],
    [
      '1001 customers',
      JSON.stringify({ customers: Array.from({ length: 1001 }, (_, n) => customer(100 + n)) }),
      JSON_TYPE,
      422,
      'batch_too_large',
      [email(100), email(600), email(1100)],
    ],
    [
      'a body of about 5 MB',
      JSON.stringify({ customers: [customer(10), { ...customer(11), notes: 'x'.repeat(5 * 1024 * 1024) }] }),
      JSON_TYPE,
      413,
      'payload_too_large',
      [email(10), email(11)],
    ],
    [
      'many customers adding up to about 5 MB',
      JSON.stringify({ customers: Array.from({ length: 1000 }, (_, n) => ({ ...customer(2000 + n), notes: 'y'.repeat(5000) })) }),
      JSON_TYPE,
      413,
      'payload_too_large',
      [email(2000), email(2999)],
    ],
    ['a multipart upload', multipartBody(valid(12)), { 'content-type': 'multipart/form-data; boundary=XyZ' }, 415, 'unsupported_media_type', [email(12)]],
    // Deeper than 128 levels anywhere is refused whole (422): past it, the parser would skip what
    // the scan for repeated names and NULs could not read.
    ['10000 levels of nested arrays', deep(10_000, ''), JSON_TYPE, 422, 'validation_failed', []],
    ['10000 levels of nesting inside customers', `{"customers":[${JSON.stringify(customer(13))},${deep(10_000, '1')}]}`, JSON_TYPE, 422, 'validation_failed', [email(13)]],
    [
      '10000 levels of nesting in custom_fields',
      `{"customers":[{"name":"Deep","email":"${email(14)}","custom_fields":${deepObject(10_000)}}]}`,
      JSON_TYPE,
      422,
      'validation_failed',
      [email(14)],
    ],
  ];
}

/** POSTs `value` as JSON in 64 KiB chunks, without a content-length (chunked transfer). */
async function postStreamed(key, path, value) {
  const bytes = Buffer.from(JSON.stringify(value));
  const body = new ReadableStream({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 64 * 1024) controller.enqueue(bytes.subarray(at, at + 64 * 1024));
      controller.close();
    },
  });
  const response = await fetch(`${BASE_URL}${path}`, {
    method: 'POST',
    body,
    duplex: 'half',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

function multipartBody(json) {
  return [
    '--XyZ',
    'Content-Disposition: form-data; name="payload"; filename="customers.json"',
    'Content-Type: application/json',
    '',
    json,
    '--XyZ--',
    '',
  ].join('\r\n');
}

describe('malformed and oversized bodies', () => {
  for (const path of WRITE_ENDPOINTS) {
    test(`${path} refuses every malformed or oversized body with a 4xx and stores nothing`, async () => {
      const { key } = await newBusiness();
      const tag = unique('bad');
      const cases = badWriteBodies(tag);
      for (const [description, body, headers, status, code] of cases) {
        const res = await api(key, 'POST', path, body, headers);
        assertClientError(res, description);
        assertError(res, status, code, description);
      }
      for (const [description, , , , , emails] of cases) {
        await assertNotStored(key, emails, description);
      }
    });
  }

  test('a form-encoded body is refused as a body of the wrong type', async () => {
    const { key } = await newBusiness();
    const email = `${unique('form')}@example.com`;
    for (const path of WRITE_ENDPOINTS) {
      const res = await api(key, 'POST', path, `name=Form&email=${encodeURIComponent(email)}`, {
        'content-type': 'application/x-www-form-urlencoded',
      });
      assertError(res, 415, 'unsupported_media_type', path);
    }
    await assertNotStored(key, [email]);
  });

  test('the batch lookup refuses malformed, oversized and hostile bodies with a 4xx', async () => {
    const { key } = await newBusiness();
    const cases = [
      ['a body that is not JSON', 'emails=a@example.com', JSON_TYPE, 400, 'malformed_request'],
      ['truncated JSON', '{"emails": ["a@example.com"', JSON_TYPE, 400, 'malformed_request'],
      ['an empty body', '', JSON_TYPE, 400, 'malformed_request'],
      ['a top-level array', '["a@example.com"]', JSON_TYPE, 422, 'validation_failed'],
      ['null', 'null', JSON_TYPE, 422, 'validation_failed'],
      ['emails as a string', '{"emails":"a@example.com"}', JSON_TYPE, 422, 'validation_failed'],
      ['no keys at all', '{}', JSON_TYPE, 422, 'validation_failed'],
      ['1001 keys', JSON.stringify({ emails: Array.from({ length: 1001 }, (_, n) => `k${n}@example.com`) }), JSON_TYPE, 422, 'batch_too_large'],
      ['a body of about 5 MB', JSON.stringify({ external_ids: ['x'.repeat(5 * 1024 * 1024)] }), JSON_TYPE, 413, 'payload_too_large'],
      ['a multipart upload', multipartBody('{"emails":["a@example.com"]}'), { 'content-type': 'multipart/form-data; boundary=XyZ' }, 415, 'unsupported_media_type'],
      ['10000 levels of nesting', `{"emails":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, JSON_TYPE, 422, 'validation_failed'],
    ];
    for (const [description, body, headers, status, code] of cases) {
      const res = await api(key, 'POST', '/api-customers-batch-lookup', body, headers);
      assertClientError(res, description);
      assertError(res, status, code, description);
    }
  });

  test('the admin API refuses oversized, deeply nested and multipart bodies with a 4xx and creates nothing', async () => {
    const name = unique('Hostile');
    const cases = [
      ['a body over 64 KiB', JSON.stringify({ name, padding: 'x'.repeat(70 * 1024) }), JSON_TYPE, 413, 'payload_too_large'],
      ['10000 levels of nesting as the name', `{"name":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, JSON_TYPE, null, null],
      ['10000 levels of nesting as the whole body', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, JSON_TYPE, null, null],
      ['a multipart upload', multipartBody(JSON.stringify({ name })), { 'content-type': 'multipart/form-data; boundary=XyZ' }, 415, 'unsupported_media_type'],
    ];
    for (const [description, body, headers, status, code] of cases) {
      const res = await admin('POST', '/admin/businesses', body, headers);
      assertClientError(res, description);
      if (status !== null) assertError(res, status, code, description);
    }
    const { id } = await newBusiness();
    const key = await admin('POST', `/admin/businesses/${id}/api-keys`, JSON.stringify({ name: 'k'.repeat(70 * 1024) }), JSON_TYPE);
    assertError(key, 413, 'payload_too_large', 'an oversized key request');
    const keys = await admin('GET', `/admin/businesses/${id}/api-keys`);
    assert.equal(keys.body.api_keys.length, 1, 'no key was issued by the refused request');
  });

  // Unknown fields are ignored (CRMs send more than we store), but not past 128 levels: the parser
  // would skip such a field unread, and with it a repeated name or a NUL the scan could not reach.
  // The whole body is refused, and nothing of it is stored.
  test('10000 levels of nesting in a field the API does not know refuse the whole body, and store nothing', async () => {
    const { key } = await newBusiness();
    const tag = unique('deepx');
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const cases = [
      ['/api-customers-sync', `{"customers":[{"name":"Deep","email":"${tag}-1@example.com"}],"extra":${deep}}`],
      ['/api-customers-bulk-create', `{"customers":[{"name":"Deep","email":"${tag}-2@example.com"}],"extra":${deep}}`],
      ['/api-customers-batch-lookup', `{"emails":["${tag}-1@example.com"],"extra":${deep}}`],
    ];
    for (const [path, body] of cases) {
      const res = await api(key, 'POST', path, body, JSON_TYPE);
      assertError(res, 422, 'validation_failed', `${path} with deep nesting in an unknown field`);
      assert.match(res.body.error.message, /nested deeper than 128 levels/);
    }
    await assertNotStored(key, [`${tag}-1@example.com`, `${tag}-2@example.com`]);
    const name = unique('Deep');
    const business = await admin('POST', '/admin/businesses', `{"name":"${name}","extra":${deep}}`, JSON_TYPE);
    assertError(business, 422, 'validation_failed', 'the admin API with deep nesting in an unknown field');
  });

  test('a body over 4 MiB sent in chunks without a length is refused with 413, and the next request is still served', async () => {
    const { key } = await newBusiness();
    const refusedEmail = `${unique('chunked')}@example.com`;
    const refused = await postStreamed(key, '/api-customers-sync', {
      customers: [{ name: 'Chunked', email: refusedEmail, notes: 'x'.repeat(5 * 1024 * 1024) }],
    });
    assertError(refused, 413, 'payload_too_large', 'a 5 MB chunked body');

    // A POST (never a GET: a GET the local proxy failed to deliver is queued for a retry that
    // may never come) right after the refusal, then a second one.
    const nextEmail = `${unique('next')}@example.com`;
    const next = await api(key, 'POST', '/api-customers-sync', { customers: [{ name: 'Next', email: nextEmail }] });
    const lookup = await api(key, 'POST', '/api-customers-batch-lookup', { emails: [refusedEmail, nextEmail] });
    assert.equal(lookup.status, 200, lookup.text.slice(0, 300));
    assert.ok(
      !lookup.body.customers.some((c) => c.email === refusedEmail),
      'nothing of the refused body was stored',
    );
    assert.equal(next.status, 200, `the valid request right after the refusal is served: ${next.status} ${next.text.slice(0, 200)}`);
  });

  test('a batch of 1000 customers just under 4 MiB is accepted in full', async () => {
    const { key } = await newBusiness();
    const tag = unique('near');
    const customers = Array.from({ length: 1000 }, (_, n) => ({
      name: `Near Limit ${n}`,
      email: `${tag}-${n}@example.com`,
      notes: 'n'.repeat(2500),
      custom_fields: { blob: 'b'.repeat(1200), n },
    }));
    const body = JSON.stringify({ customers });
    assert.ok(body.length > 3.5 * 1024 * 1024 && body.length < 4 * 1024 * 1024, `the body is ${body.length} bytes`);
    const res = await api(key, 'POST', '/api-customers-sync', body, JSON_TYPE);
    assert.equal(res.status, 200, res.text.slice(0, 500));
    assert.equal(res.body.results.created, 1000);
    const last = await getCustomer(key, 'email', `${tag}-999@example.com`);
    assert.equal(last.status, 200);
    assert.deepEqual(last.body.custom_fields, { blob: 'b'.repeat(1200), n: 999 });
  });
});

describe('wrong methods', () => {
  test('the batch endpoints answer other methods with 405 and Allow: POST, storing nothing', async () => {
    const { key } = await newBusiness();
    const email = `${unique('method')}@example.com`;
    const body = { customers: [{ name: 'Method', email }], emails: [email] };
    for (const path of [...WRITE_ENDPOINTS, '/api-customers-batch-lookup']) {
      for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
        const res = await api(key, method, path, method === 'GET' ? undefined : body);
        assertError(res, 405, 'method_not_allowed', `${method} ${path}`);
        assert.equal(res.headers.get('allow'), 'POST', `${method} ${path}: Allow header`);
      }
    }
    await assertNotStored(key, [email]);
  });

  test('a wrong method is refused with 405 even without an API key', async () => {
    const res = await api(null, 'GET', '/api-customers-sync');
    assertError(res, 405, 'method_not_allowed', 'GET on sync without a key');
    assert.equal(res.headers.get('allow'), 'POST');
  });
});

describe('hostile values are just data', () => {
  test('SQL-looking values are stored and found exactly, and match nothing else', async () => {
    const { key } = await newBusiness();
    const hostile = {
      name: "Robert'); DROP TABLE customers;--",
      external_id: "' OR 1=1 --",
      email: "o'reilly@example.com",
      notes: '1; DELETE FROM customers WHERE 1=1; --',
      address: '" OR ""="',
      tags: ["' OR 'x'='x", '%'],
      custom_fields: { "'; DROP TABLE businesses; --": "' OR 1=1 --" },
    };
    const body = await sync(key, [hostile, { name: 'Bystander', email: 'bystander@example.com', external_id: 'SAFE-1' }]);
    assert.equal(body.success, true, JSON.stringify(body));
    assert.equal(body.results.details[0].external_id, "' OR 1=1 --");

    const found = await getCustomer(key, 'external_id', "' OR 1=1 --");
    assert.equal(found.status, 200, found.text);
    assert.deepEqual(
      { ...found.body, id: undefined, created_at: undefined, updated_at: undefined },
      {
        id: undefined,
        name: hostile.name,
        email: hostile.email,
        phone: null,
        whatsapp_number: null,
        first_name: null,
        last_name: null,
        address: hostile.address,
        notes: hostile.notes,
        tags: hostile.tags,
        external_id: hostile.external_id,
        external_system: null,
        custom_fields: hostile.custom_fields,
        created_at: undefined,
        updated_at: undefined,
      },
    );
    assert.equal((await getCustomer(key, 'email', "O'Reilly@example.com")).body.id, found.body.id);

    const lookups = [
      ['external_id', "x' OR 'x'='x", 404, 'a tautology as external_id'],
      ['external_id', '%', 404, 'a LIKE wildcard as external_id'],
      ['external_id', '*', 404, 'a glob as external_id'],
      ['email', "' OR 1=1 --", 422, 'a tautology as email'],
      ['id', "' OR 1=1 --", 422, 'a tautology as id'],
      ['phone', "' OR 1=1 --", 422, 'a tautology as phone'],
    ];
    for (const [param, value, status, description] of lookups) {
      const res = await getCustomer(key, param, value);
      assertClientError(res, description);
      assert.equal(res.status, status, `${description}: ${res.text}`);
    }

    const batch = await batchLookup(key, {
      external_ids: ["' OR 1=1 --", "x' OR 'x'='x", '%'],
      emails: ["' OR 1=1 --"],
    });
    assert.deepEqual(batch.customers.map((c) => c.id), [found.body.id], 'only the customer with that exact external_id');
    assert.deepEqual(batch.not_found.external_ids, ["x' OR 'x'='x", '%']);
    assert.deepEqual(batch.invalid.map((i) => i.field), ['emails[0]']);

    const bystander = await getCustomer(key, 'external_id', 'SAFE-1');
    assert.equal(bystander.status, 200, 'the other customer is still there');
    const health = await request('GET', '/health');
    assert.equal(health.status, 200);

    const other = await newBusiness();
    assertError(await getCustomer(other.key, 'external_id', "' OR 1=1 --"), 404, 'not_found', 'another business');
  });

  test('a 201-character name fails only its item, and 200 characters (even accented) are accepted', async () => {
    const { key } = await newBusiness();
    const tag = unique('len');
    const body = await sync(key, [
      { name: 'L'.repeat(201), email: `${tag}-201@example.com` },
      { name: 'é'.repeat(200), email: `${tag}-200@example.com` },
      { name: 'Neighbour', email: `${tag}-n@example.com` },
    ]);
    assert.equal(body.results.details[0].action, 'failed');
    assert.equal(body.results.details[0].error.field, 'name');
    assert.deepEqual(body.results.details.slice(1).map((d) => d.action), ['created', 'created']);
    await assertNotStored(key, [`${tag}-201@example.com`]);
    assert.equal((await getCustomer(key, 'email', `${tag}-200@example.com`)).body.name, 'é'.repeat(200));
  });

  test('custom_fields over 16 KiB fail only their item, and exactly 16 KiB are accepted', async () => {
    const { key } = await newBusiness();
    const tag = unique('cf');
    // {"big":"…"} is 10 bytes of JSON around the value.
    const exact = { big: 'x'.repeat(16 * 1024 - 10) };
    const over = { big: 'x'.repeat(16 * 1024 - 9) };
    assert.equal(JSON.stringify(exact).length, 16 * 1024);
    const body = await sync(key, [
      { name: 'Over', email: `${tag}-over@example.com`, custom_fields: over },
      { name: 'Exact', email: `${tag}-exact@example.com`, custom_fields: exact },
      { name: 'Many keys', email: `${tag}-many@example.com`, custom_fields: Object.fromEntries(Array.from({ length: 2000 }, (_, n) => [`k${n}`, n])) },
    ]);
    const [overDetail, exactDetail, manyDetail] = body.results.details;
    assert.equal(overDetail.action, 'failed');
    assert.equal(overDetail.error.code, 'validation_failed');
    assert.equal(overDetail.error.field, 'custom_fields');
    assert.equal(exactDetail.action, 'created');
    assert.equal(manyDetail.action, 'failed', '2000 keys is more than 16 KiB of JSON');
    assert.equal(manyDetail.error.field, 'custom_fields');
    await assertNotStored(key, [`${tag}-over@example.com`, `${tag}-many@example.com`]);
    assert.deepEqual((await getCustomer(key, 'email', `${tag}-exact@example.com`)).body.custom_fields, exact);
  });

  test('NUL and other control characters fail only their item, naming the field', async () => {
    const { key } = await newBusiness();
    const tag = unique('nul');
    const cases = [
      [{ name: 'Nul\u0000Name' }, 'name', 'NUL in the name'],
      [{ name: '\u0000' }, 'name', 'a name that is only NUL'],
      [{ name: 'Escape\u001b[31m' }, 'name', 'an ANSI escape in the name'],
      [{ name: 'Notes', notes: 'a\u0000b' }, 'notes', 'NUL in the notes'],
      [{ name: 'Ext', external_id: 'E\u0000' }, 'external_id', 'NUL in the external_id'],
      [{ name: 'First', first_name: 'F\u0000' }, 'first_name', 'NUL in the first name'],
      [{ name: 'Tag', tags: ['ok', 't\u0000'] }, 'tags', 'NUL in a tag'],
    ];
    const items = cases.map(([item], n) => ({ ...item, email: `${tag}-${n}@example.com` }));
    const body = await sync(key, [...items, { name: 'Line\nbreaks\tand tabs are fine', email: `${tag}-ok@example.com` }]);
    for (const [n, [, field, description]] of cases.entries()) {
      const detail = body.results.details[n];
      assert.equal(detail.action, 'failed', `${description}: fails`);
      assert.equal(detail.error?.code, 'validation_failed', `${description}: code`);
      assert.equal(detail.error?.field, field, `${description}: field`);
    }
    assert.equal(body.results.details.at(-1).action, 'created', 'the clean item is stored');
    await assertNotStored(key, items.map((item) => item.email));
    assert.equal((await getCustomer(key, 'email', `${tag}-ok@example.com`)).body.name, 'Line\nbreaks\tand tabs are fine');
  });

  test('fields over their length limits fail only their item', async () => {
    const { key } = await newBusiness();
    const tag = unique('max');
    const cases = [
      [{ notes: 'n'.repeat(10_001) }, 'notes', 'notes over 10000 characters'],
      [{ address: 'a'.repeat(1001) }, 'address', 'an address over 1000 characters'],
      [{ external_id: 'e'.repeat(256) }, 'external_id', 'an external_id over 255 characters'],
      [{ external_system: 's'.repeat(65) }, 'external_system', 'an external_system over 64 characters'],
      [{ first_name: 'f'.repeat(201) }, 'first_name', 'a first name over 200 characters'],
      [{ last_name: 'l'.repeat(201) }, 'last_name', 'a last name over 200 characters'],
    ];
    const items = cases.map(([item], n) => ({ name: `Max ${n}`, email: `${tag}-${n}@example.com`, ...item }));
    const atLimit = {
      name: 'At Limits',
      email: `${tag}-limit@example.com`,
      notes: 'n'.repeat(10_000),
      address: 'a'.repeat(1000),
      external_id: 'e'.repeat(255),
      external_system: 's'.repeat(64),
    };
    const body = await sync(key, [...items, atLimit]);
    for (const [n, [, field, description]] of cases.entries()) {
      const detail = body.results.details[n];
      assert.equal(detail.action, 'failed', `${description}: fails`);
      assert.equal(detail.error?.field, field, `${description}: field`);
    }
    assert.equal(body.results.details.at(-1).action, 'created', 'values exactly at their limits are accepted');
    await assertNotStored(key, items.map((item) => item.email));
  });

  test('emoji, right-to-left and combining characters are stored exactly', async () => {
    const { key } = await newBusiness();
    const tag = unique('uni');
    const customer = {
      name: 'Zoë 🦄 مرحبا e\u0301',
      email: `${tag}@example.com`,
      notes: '𝕳𝖊𝖑𝖑𝖔 \u202e reversed',
      tags: ['🏷️', 'ñ'],
      custom_fields: { '키': '값', emoji: '😀' },
    };
    await sync(key, [customer]);
    const res = await getCustomer(key, 'email', customer.email);
    assert.equal(res.status, 200);
    assert.equal(res.body.name, customer.name);
    assert.equal(res.body.notes, customer.notes);
    assert.deepEqual(res.body.tags, customer.tags);
    assert.deepEqual(res.body.custom_fields, customer.custom_fields);
  });

  test('very long and odd query values are looked up without a server error', async () => {
    const { key } = await newBusiness();
    const cases = [
      [`external_id=${'x'.repeat(8000)}`, 404, 'an 8000-character external_id'],
      ['external_id=%00', 404, 'a NUL external_id'],
      ['email=%00', 422, 'a NUL email'],
      ['phone=%2B%2B%2B', 422, 'a phone of plus signs'],
      ['email=%E2%80%AE%40example.com', 422, 'a right-to-left override as an email'],
      ['id=%F0%9F%98%80', 422, 'an emoji id'],
      ['external_id=%FF%FE', 404, 'invalid UTF-8 percent-encoded'],
      ['email=', 422, 'an empty email'],
    ];
    for (const [query, status, description] of cases) {
      const res = await api(key, 'GET', `/api-customers?${query}`);
      assertClientError(res, description);
      assert.equal(res.status, status, `${description}: ${res.text.slice(0, 300)}`);
    }
  });
});
