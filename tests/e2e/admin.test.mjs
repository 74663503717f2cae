// The gateway's own answers and the admin API: businesses, API keys, and the admin token.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  ADMIN_TOKEN,
  RFC3339_UTC,
  UUID,
  admin,
  assertError,
  newBusiness,
  request,
  unique,
} from './support.mjs';

const KEY_SHAPE = /^cek_[0-9a-f]{48}$/;

describe('gateway', () => {
  test('GET /health answers {"status":"ok"}', async () => {
    const res = await request('GET', '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('a path that is no endpoint answers 404 not_found', async () => {
    const paths = [
      ['/', 'the root'],
      ['/nope', 'an unknown path'],
      ['/api-customers-syncx', 'a known path with a suffix'],
      ['/api-customer', 'a known path missing a letter'],
      ['/api-customers-sync/extra', 'a known path with an extra segment'],
      ['/admin', 'the admin prefix alone'],
      ['/API-CUSTOMERS', 'a known path in upper case'],
    ];
    for (const [path, description] of paths) {
      const res = await request('GET', path);
      assertError(res, 404, 'not_found', description);
    }
  });
});

describe('businesses', () => {
  test('creating a business returns its id, name, upper-cased default country and creation time', async () => {
    const before = Date.now();
    const name = unique('Acme');
    const res = await admin('POST', '/admin/businesses', { name, default_country: 'ie' });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['created_at', 'default_country', 'embed_frame_ancestors', 'id', 'name', 'rate_limit']);
    assert.deepEqual(res.body.embed_frame_ancestors, [], 'no site may frame the embedded inbox until one is allowed');
    assert.deepEqual(res.body.rate_limit, { per_minute: 600, burst: 100 }, 'the default limit of its keys');
    assert.match(res.body.id, UUID);
    assert.equal(res.body.name, name);
    assert.equal(res.body.default_country, 'IE');
    assert.match(res.body.created_at, RFC3339_UTC);
    const created = Date.parse(res.body.created_at);
    assert.ok(Math.abs(created - before) < 5 * 60_000, `created_at ${res.body.created_at} is about now`);
  });

  test('a business created without a default country has default_country null', async () => {
    const res = await admin('POST', '/admin/businesses', { name: 'No Country Ltd' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.default_country, null);
    assert.equal(res.body.name, 'No Country Ltd');
  });

  test('a created business can be read back unchanged, and each business gets its own id', async () => {
    const first = await admin('POST', '/admin/businesses', { name: 'Acme', default_country: 'GB' });
    const second = await admin('POST', '/admin/businesses', { name: 'Acme', default_country: 'GB' });
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.notEqual(first.body.id, second.body.id, 'two businesses with the same name are two businesses');
    const read = await admin('GET', `/admin/businesses/${first.body.id}`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body, first.body);
  });

  test('a name of exactly 200 characters is accepted', async () => {
    const name = 'N'.repeat(200);
    const res = await admin('POST', '/admin/businesses', { name });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.name, name);
  });

  test('a business with a missing, blank or too long name or an unknown country is refused with the field at fault', async () => {
    const cases = [
      [{}, 'name', 'no name at all'],
      [{ name: '' }, 'name', 'an empty name'],
      [{ name: '    ' }, 'name', 'a blank name'],
      [{ name: 'N'.repeat(201) }, 'name', 'a 201-character name'],
      [{ name: 'Acme', default_country: 'XX' }, 'default_country', 'an unassigned country code'],
      [{ name: 'Acme', default_country: 'IRL' }, 'default_country', 'an alpha-3 country code'],
      [{ name: 'Acme', default_country: 'Ireland' }, 'default_country', 'a country name'],
      [{ name: 'Acme', default_country: 'I' }, 'default_country', 'a single letter'],
      [{ name: 'Acme', default_country: '35' }, 'default_country', 'digits'],
    ];
    for (const [body, field, description] of cases) {
      const res = await admin('POST', '/admin/businesses', body);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, field, `${description}: field`);
    }
  });

  test('a default country that is not a string is refused with field default_country', async () => {
    const cases = [
      [{ name: 'Acme', default_country: 353 }, 'a number'],
      [{ name: 'Acme', default_country: ['IE'] }, 'an array'],
    ];
    for (const [body, description] of cases) {
      const res = await admin('POST', '/admin/businesses', body);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, 'default_country', `${description}: field`);
    }
  });

  test('a business body that is not JSON is refused with 400 malformed_request', async () => {
    const cases = [
      ['{"name": "Acme"', 'truncated JSON'],
      ['name=Acme', 'a form body'],
      ['', 'an empty body'],
    ];
    for (const [body, description] of cases) {
      const res = await admin('POST', '/admin/businesses', body, { 'content-type': 'application/json' });
      assertError(res, 400, 'malformed_request', description);
    }
  });

  test('an unknown or malformed business id answers 404', async () => {
    const cases = [
      [randomUUID(), 'a well-formed id that names no business'],
      ['not-a-uuid', 'an id that is not a UUID'],
      ["' OR 1=1 --", 'an injection attempt'],
    ];
    for (const [id, description] of cases) {
      const res = await admin('GET', `/admin/businesses/${encodeURIComponent(id)}`);
      assertError(res, 404, 'not_found', description);
    }
  });
});

describe('API keys', () => {
  test('issuing a key returns it once, as cek_ and 48 hex digits, with its 12-character prefix', async () => {
    const { id } = await newBusiness();
    const res = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'Zapier' });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(
      Object.keys(res.body).sort(),
      ['business_id', 'created_at', 'id', 'key', 'name', 'prefix', 'revoked_at'],
    );
    assert.match(res.body.id, UUID);
    assert.equal(res.body.business_id, id);
    assert.equal(res.body.name, 'Zapier');
    assert.match(res.body.key, KEY_SHAPE);
    assert.equal(res.body.prefix, res.body.key.slice(0, 12));
    assert.match(res.body.created_at, RFC3339_UTC);
    assert.equal(res.body.revoked_at, null);
  });

  test('a key can be issued without a body, and then has no name', async () => {
    const { id } = await newBusiness();
    const res = await admin('POST', `/admin/businesses/${id}/api-keys`);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.name, null);
    assert.match(res.body.key, KEY_SHAPE);
  });

  test('every issued key is different', async () => {
    const { id } = await newBusiness();
    const keys = new Set();
    for (let n = 0; n < 5; n += 1) {
      const res = await admin('POST', `/admin/businesses/${id}/api-keys`, {});
      assert.equal(res.status, 201, res.text);
      keys.add(res.body.key);
    }
    assert.equal(keys.size, 5);
  });

  test('issuing a key for an unknown or malformed business answers 404', async () => {
    for (const [id, description] of [
      [randomUUID(), 'an unknown business'],
      ['not-a-uuid', 'a malformed business id'],
    ]) {
      const res = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'x' });
      assertError(res, 404, 'not_found', description);
      const listed = await admin('GET', `/admin/businesses/${id}/api-keys`);
      assertError(listed, 404, 'not_found', `listing keys of ${description}`);
    }
  });

  test("listing a business's keys shows each of them by prefix and never the key itself", async () => {
    const { id, key, keyId } = await newBusiness();
    const second = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'second' });
    assert.equal(second.status, 201);
    const other = await newBusiness();

    const res = await admin('GET', `/admin/businesses/${id}/api-keys`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body), ['api_keys']);
    assert.equal(res.body.api_keys.length, 2, 'only this business’s two keys');
    const [first, next] = res.body.api_keys;
    assert.deepEqual(Object.keys(first).sort(), ['business_id', 'created_at', 'id', 'name', 'prefix', 'revoked_at']);
    assert.equal(first.id, keyId);
    assert.equal(first.name, 'e2e');
    assert.equal(first.prefix, key.slice(0, 12));
    assert.equal(first.business_id, id);
    assert.equal(first.revoked_at, null);
    assert.equal(next.id, second.body.id);
    assert.equal(next.prefix, second.body.prefix);

    for (const secret of [key, second.body.key, key.slice(12), second.body.key.slice(12)]) {
      assert.ok(!res.text.includes(secret), 'the listing must not contain a key or its secret part');
    }
    assert.ok(!res.text.includes(other.keyId), "another business's key is not listed");
  });

  test('a business without keys lists none', async () => {
    const created = await admin('POST', '/admin/businesses', { name: unique('Keyless') });
    const res = await admin('GET', `/admin/businesses/${created.body.id}/api-keys`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { api_keys: [] });
  });

  test('revoking a key sets revoked_at, and revoking it again answers the same revocation', async () => {
    const { id, key, keyId } = await newBusiness();
    const res = await admin('DELETE', `/admin/api-keys/${keyId}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['business_id', 'created_at', 'id', 'name', 'prefix', 'revoked_at']);
    assert.equal(res.body.id, keyId);
    assert.equal(res.body.business_id, id);
    assert.equal(res.body.prefix, key.slice(0, 12));
    assert.match(res.body.revoked_at, RFC3339_UTC);
    assert.ok(!res.text.includes(key), 'the revocation does not show the key');

    const listed = await admin('GET', `/admin/businesses/${id}/api-keys`);
    assert.equal(listed.body.api_keys[0].revoked_at, res.body.revoked_at, 'the listing shows the revocation');

    const again = await admin('DELETE', `/admin/api-keys/${keyId}`);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, res.body, 'revoking twice changes nothing');
  });

  test('revoking an unknown or malformed key id answers 404', async () => {
    for (const [id, description] of [
      [randomUUID(), 'an unknown key id'],
      ['not-a-uuid', 'a malformed key id'],
    ]) {
      const res = await admin('DELETE', `/admin/api-keys/${id}`);
      assertError(res, 404, 'not_found', description);
    }
  });

  test('a key name longer than 200 characters is refused', async () => {
    const { id } = await newBusiness();
    const res = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'k'.repeat(201) });
    const error = assertError(res, 422, 'validation_failed', 'a 201-character key name');
    assert.equal(error.field, 'name');
  });
});

describe('admin access', () => {
  test('every admin endpoint refuses a missing or wrong admin token with 401', async () => {
    const { id, keyId } = await newBusiness();
    const endpoints = [
      ['POST', '/admin/businesses', { name: 'Sneaky' }],
      ['GET', `/admin/businesses/${id}`],
      ['POST', `/admin/businesses/${id}/api-keys`, { name: 'sneaky' }],
      ['GET', `/admin/businesses/${id}/api-keys`],
      ['DELETE', `/admin/api-keys/${keyId}`],
      ['POST', '/admin/maintenance/sweep'],
    ];
    const credentials = [
      [{}, 'no Authorization header'],
      [{ authorization: 'Bearer wrong-token' }, 'a wrong token'],
      [{ authorization: `Bearer ${ADMIN_TOKEN}x` }, 'the token with an extra character'],
      [{ authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }, 'the token missing its last character'],
      [{ authorization: ADMIN_TOKEN }, 'the token without the Bearer scheme'],
      [{ authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }, 'basic auth'],
      [{ authorization: 'Bearer ' }, 'an empty bearer token'],
      [{ 'x-api-key': ADMIN_TOKEN }, 'the token in x-api-key'],
    ];
    for (const [method, path, body] of endpoints) {
      for (const [headers, description] of credentials) {
        const res = await request(method, path, { body, headers });
        assertError(res, 401, 'unauthorized', `${method} ${path} with ${description}`);
      }
    }
    const still = await admin('GET', `/admin/businesses/${id}/api-keys`);
    assert.equal(still.body.api_keys.length, 1, 'no key was issued by the refused requests');
    assert.equal(still.body.api_keys[0].revoked_at, null, 'the key was not revoked by a refused request');
  });

  test('a wrong method on a known admin path answers 405 with an Allow header', async () => {
    const { id, keyId } = await newBusiness();
    const cases = [
      ['GET', '/admin/businesses', 'POST'],
      ['DELETE', '/admin/businesses', 'POST'],
      ['PUT', `/admin/businesses/${id}`, 'GET, PATCH'],
      ['DELETE', `/admin/businesses/${id}`, 'GET, PATCH'],
      ['PATCH', `/admin/businesses/${id}/api-keys`, 'GET, POST'],
      ['DELETE', `/admin/businesses/${id}/api-keys`, 'GET, POST'],
      ['GET', `/admin/api-keys/${keyId}`, 'DELETE'],
      ['POST', `/admin/api-keys/${keyId}`, 'DELETE'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await admin(method, path);
      assertError(res, 405, 'method_not_allowed', `${method} ${path}`);
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}: Allow header`);
    }
    const listed = await admin('GET', `/admin/businesses/${id}/api-keys`);
    assert.equal(listed.body.api_keys[0].revoked_at, null, 'a refused method revoked nothing');
  });

  test('an unknown admin path answers 404', async () => {
    for (const path of ['/admin/users', '/admin/businesses/x/y/z', '/admin/api-keys']) {
      const res = await admin('GET', path);
      assertError(res, 404, 'not_found', path);
    }
  });
});
