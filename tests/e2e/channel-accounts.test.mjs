// Channel accounts: per-business provider credentials, configured through the admin API and
// never returned in clear.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { admin, assertError, newBusiness, unique } from './support.mjs';

const numericId = () => String(Date.now()) + String(Math.floor(Math.random() * 1e6));

describe('channel accounts', () => {
  test('an account is created with its secrets, which are listed by name only', async () => {
    const { id } = await newBusiness();
    const secrets = { app_secret: unique('app'), verify_token: unique('verify'), access_token: unique('access') };
    const created = await admin('POST', `/admin/businesses/${id}/channel-accounts`, {
      channel: 'whatsapp', provider: 'meta', address: numericId(), name: 'Support line', secrets,
      settings: { api_base_url: 'http://127.0.0.1:9' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.channel, 'whatsapp');
    assert.equal(created.body.provider, 'meta');
    assert.deepEqual(created.body.secrets_set, ['access_token', 'app_secret', 'verify_token']);
    assert.equal(created.body.webhook_path, `/webhooks/meta/${created.body.id}`);
    assert.deepEqual(created.body.settings, { api_base_url: 'http://127.0.0.1:9' });
    const listed = await admin('GET', `/admin/businesses/${id}/channel-accounts`);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.channel_accounts.length, 1);
    for (const value of Object.values(secrets)) {
      assert.ok(!created.text.includes(value), 'no secret in the create response');
      assert.ok(!listed.text.includes(value), 'no secret in the listing');
    }
  });

  test('a secret is rotated by naming only what changes', async () => {
    const { id } = await newBusiness();
    const created = await admin('POST', `/admin/businesses/${id}/channel-accounts`, {
      channel: 'sms', provider: 'twilio', address: '+1 415 555 0100'.replace('0100', String(Math.floor(Math.random() * 9000) + 1000)),
      secrets: { auth_token: 'old' }, settings: { account_sid: 'AC123' },
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.address, /^\+1415555\d{4}$/, 'the Twilio number is stored in E.164');
    const rotated = await admin('PATCH', `/admin/channel-accounts/${created.body.id}`, { secrets: { auth_token: 'new-token' } });
    assert.equal(rotated.status, 200, rotated.text);
    assert.deepEqual(rotated.body.secrets_set, ['auth_token']);
    assert.deepEqual(rotated.body.settings, { account_sid: 'AC123' });
    assert.ok(!rotated.text.includes('new-token'));
    assertError(await admin('PATCH', `/admin/channel-accounts/${randomUUID()}`, { name: 'x' }), 404, 'not_found', 'unknown account');
  });

  test('incomplete or inconsistent accounts are refused with the field at fault', async () => {
    const { id } = await newBusiness();
    const meta = { app_secret: 'a', verify_token: 'v', access_token: 't' };
    const cases = [
      [{ provider: 'meta', address: '1', secrets: meta }, 'channel', 'no channel'],
      [{ channel: 'telegram', provider: 'meta', address: '1', secrets: meta }, 'channel', 'an unknown channel'],
      [{ channel: 'email', provider: 'meta', address: '1', secrets: meta }, 'provider', 'meta does not carry email'],
      [{ channel: 'whatsapp', provider: 'meta', address: 'abc', secrets: meta }, 'address', 'a non-numeric Meta id'],
      [{ channel: 'whatsapp', provider: 'meta', address: '1', secrets: { app_secret: 'a' } }, 'secrets.verify_token', 'a missing secret'],
      [{ channel: 'sms', provider: 'twilio', address: 'not a phone', secrets: { auth_token: 't' }, settings: { account_sid: 'AC1' } }, 'address', 'a bad phone'],
      [{ channel: 'sms', provider: 'twilio', address: '+14155550100', secrets: { auth_token: 't' } }, 'settings.account_sid', 'a missing setting'],
      [{ channel: 'email', provider: 'mailgun', address: 'nope', secrets: { signing_key: 's', api_key: 'k' }, settings: { domain: 'd' } }, 'address', 'a bad email'],
      [{ channel: 'whatsapp', provider: 'meta', address: '1', secrets: { ...meta, app_secret: 7 } }, 'secrets.app_secret', 'a secret that is not a string'],
    ];
    for (const [body, field, description] of cases) {
      const res = await admin('POST', `/admin/businesses/${id}/channel-accounts`, body);
      assertError(res, 422, 'validation_failed', description);
      assert.equal(res.body.error.field, field, description);
    }
  });

  test('one provider address belongs to one account', async () => {
    const first = await newBusiness();
    const second = await newBusiness();
    const body = { channel: 'facebook', provider: 'meta', address: numericId(), secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' } };
    assert.equal((await admin('POST', `/admin/businesses/${first.id}/channel-accounts`, body)).status, 201);
    assertError(await admin('POST', `/admin/businesses/${second.id}/channel-accounts`, body), 409, 'conflict', 'the same page twice');
    assertError(await admin('POST', `/admin/businesses/${randomUUID()}/channel-accounts`, { ...body, address: numericId() }), 404, 'not_found', 'unknown business');
    assertError(await admin('GET', `/admin/businesses/${first.id}/channel-accounts`, undefined, { authorization: 'Bearer wrong' }), 401, 'unauthorized', 'wrong admin token');
  });
});
