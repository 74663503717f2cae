// The audit log, end to end: admin and security actions on a business are recorded with who
// (the admin token, or the API key by its prefix), what, when and from where, and
// `GET /admin/businesses/{id}/audit-log` lists them newest first, a page at a time. No secret
// appears in it: not a key, a provider secret, a webhook signing secret or an SSO token.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { RFC3339_UTC, UUID, admin, api, assertError, newBusiness, sync, unique } from './support.mjs';

let acme;
let other;
/** Every secret value this file hands the API or receives from it. */
const secrets = [];

const digits = (n) => Array.from({ length: n }, () => randomInt(10)).join('');

async function auditLog(businessId, query = '') {
  const res = await admin('GET', `/admin/businesses/${businessId}/audit-log${query}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function allEntries(businessId) {
  const entries = [];
  let cursor = null;
  do {
    const page = await auditLog(businessId, cursor ? `?limit=3&before=${encodeURIComponent(cursor)}` : '?limit=3');
    entries.push(...page.entries);
    cursor = page.next_cursor;
  } while (cursor);
  return entries;
}

before(async () => {
  [acme, other] = await Promise.all([newBusiness({ default_country: 'IE' }), newBusiness()]);
  secrets.push(acme.key, other.key);

  // Admin actions: a second key issued and revoked, a channel account created and its secret rotated.
  const issued = await admin('POST', `/admin/businesses/${acme.id}/api-keys`, { name: 'ci job' });
  assert.equal(issued.status, 201, issued.text);
  secrets.push(issued.body.key);
  assert.equal((await admin('DELETE', `/admin/api-keys/${issued.body.id}`)).status, 200);
  const accountSecrets = { app_secret: `app-${digits(20)}`, verify_token: `vt-${digits(12)}`, access_token: `EAAG${digits(30)}` };
  secrets.push(...Object.values(accountSecrets));
  const account = await admin('POST', `/admin/businesses/${acme.id}/channel-accounts`, {
    channel: 'whatsapp',
    provider: 'meta',
    address: digits(15),
    secrets: accountSecrets,
  });
  assert.equal(account.status, 201, account.text);
  const rotated = `EAAG${digits(30)}`;
  secrets.push(rotated);
  const patched = await admin('PATCH', `/admin/channel-accounts/${account.body.id}`, { secrets: { access_token: rotated } });
  assert.equal(patched.status, 200, patched.text);
  const frames = await admin('PATCH', `/admin/businesses/${acme.id}`, { embed_frame_ancestors: ['https://crm.example.com'] });
  assert.equal(frames.status, 200, frames.text);

  // Key actions: a webhook created and its secret rotated, an SSO token issued and revoked.
  const hook = await api(acme.key, 'POST', '/api-webhooks', { name: 'crm', url: 'https://crm.example.com/hooks' });
  assert.equal(hook.status, 201, hook.text);
  secrets.push(hook.body.secret);
  const rotation = await api(acme.key, 'POST', `/api-webhooks/${hook.body.webhook.id}/rotate-secret`, { grace_seconds: 60 });
  assert.equal(rotation.status, 200, rotation.text);
  secrets.push(rotation.body.secret);
  const customer = await sync(acme.key, [{ external_id: unique('c'), name: 'Aoife', email: `${unique('a')}@example.com` }]);
  const token = await api(acme.key, 'POST', '/api-sso-generate-token', { customer_id: customer.results.details[0].customer_id });
  assert.equal(token.status, 201, token.text);
  secrets.push(token.body.token);
  const revoked = await api(acme.key, 'POST', '/api-sso-revoke-token', { token_id: token.body.token_id });
  assert.equal(revoked.status, 200, revoked.text);
});

describe('what is recorded', () => {
  test('every action, newest first, with who, what, when and from where', async () => {
    const entries = await allEntries(acme.id);
    const actions = entries.map((e) => e.action).reverse();
    assert.deepEqual(actions, [
      'business.created',
      'business.updated',
      'api_key.issued',
      'api_key.issued',
      'api_key.revoked',
      'channel_account.created',
      'channel_account.updated',
      'business.updated',
      'webhook.created',
      'webhook.secret_rotated',
      'sso_token.issued',
      'sso_token.revoked',
    ]);
    const keyPrefix = acme.key.slice(0, 12);
    for (const entry of entries) {
      assert.match(entry.id, UUID);
      assert.match(entry.at, RFC3339_UTC);
      const byKey = entry.action.startsWith('webhook.') || entry.action.startsWith('sso_token.');
      assert.equal(entry.actor, byKey ? `key:${keyPrefix}` : 'admin', entry.action);
      assert.equal(entry.target.type, entry.action.split('.')[0]);
      assert.equal(typeof entry.target.id, 'string');
      assert.ok('client_ip' in entry);
    }
    const times = entries.map((e) => Date.parse(e.at));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  });

  test('details say what changed, and never a secret', async () => {
    const entries = await allEntries(acme.id);
    const text = JSON.stringify(entries);
    for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked into the audit log: ${secret.slice(0, 6)}…`);
    const updated = entries.find((e) => e.action === 'channel_account.updated');
    assert.deepEqual(updated.detail, { changed: { secrets: ['access_token'] } });
    const created = entries.find((e) => e.action === 'channel_account.created');
    assert.deepEqual(created.detail.secrets.sort(), ['access_token', 'app_secret', 'verify_token']);
    const rotation = entries.find((e) => e.action === 'webhook.secret_rotated');
    assert.deepEqual(rotation.detail, { grace_seconds: 60 });
    const issued = entries.filter((e) => e.action === 'api_key.issued');
    assert.ok(issued.every((e) => /^cek_[0-9a-f]{8}$/.test(e.detail.prefix)));
    const [frames, limit] = entries.filter((e) => e.action === 'business.updated');
    assert.deepEqual(frames.detail, { changed: { embed_frame_ancestors: true } });
    assert.deepEqual(limit.detail, { changed: { rate_limit: ['burst', 'per_minute'] } });
  });

  test("a business sees only its own entries", async () => {
    const entries = await allEntries(other.id);
    assert.deepEqual(entries.map((e) => e.action).reverse(), ['business.created', 'business.updated', 'api_key.issued']);
  });

  test('refused actions are not recorded', async () => {
    const before = (await allEntries(other.id)).length;
    assertError(await admin('PATCH', `/admin/businesses/${other.id}`, {}), 422, 'validation_failed');
    assertError(await api(other.key, 'POST', '/api-webhooks', { name: 'x' }), 422, 'validation_failed');
    assert.equal((await allEntries(other.id)).length, before);
  });
});

describe('reading it', () => {
  test('pages follow next_cursor without repeating or skipping an entry', async () => {
    const whole = await auditLog(acme.id, '?limit=500');
    assert.equal(whole.next_cursor, null);
    const paged = await allEntries(acme.id);
    assert.deepEqual(paged.map((e) => e.id), whole.entries.map((e) => e.id));
    const first = await auditLog(acme.id, '?limit=1');
    assert.equal(first.entries.length, 1);
    assert.equal(typeof first.next_cursor, 'string');
  });

  test('bad queries, unknown businesses and missing tokens are refused', async () => {
    assertError(await admin('GET', `/admin/businesses/${acme.id}/audit-log?before=forged`), 422, 'validation_failed');
    assertError(await admin('GET', `/admin/businesses/${acme.id}/audit-log?limit=0`), 422, 'validation_failed');
    assertError(await admin('GET', `/admin/businesses/${acme.id}/audit-log?limit=501`), 422, 'validation_failed');
    assertError(await admin('GET', '/admin/businesses/00000000-0000-4000-8000-000000000000/audit-log'), 404, 'not_found');
    assertError(await admin('POST', `/admin/businesses/${acme.id}/audit-log`, {}), 405, 'method_not_allowed');
    assertError(await api(acme.key, 'GET', `/admin/businesses/${acme.id}/audit-log`), 401, 'unauthorized');
  });
});
