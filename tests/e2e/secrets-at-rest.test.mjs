// Secrets at rest: webhook and provider secrets are sealed (AES-256-GCM, `v1:<key id>:…`) in
// D1, so reading the database file shows none of them, while everything that uses them works as
// before. The rows are read straight from the local stack's SQLite file (store.mjs), as a D1
// export would show them.
//
// Key rotation is not driven from here: the keyring is a process secret of the running stack.
// The unit tests of shared/domain/src/sealed.rs cover it (the new key seals, the old one still
// opens and asks for resealing); this file covers the resealing of values found in clear.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness, request, unique } from './support.mjs';
import { d1 } from './store.mjs';
import { standardSignatureMatches, startWebhookReceiver } from './receivers/webhook-receiver.mjs';
import { businessWithEndpoint } from './receivers/webhook-api.mjs';

const SEALED = /^v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/;

let receiver;
before(async () => {
  receiver = await startWebhookReceiver();
});
after(() => receiver?.close());

/** Every column of the row, as text, for `id` in `table`. */
function storedRow(table, id) {
  const [row] = d1(`SELECT * FROM ${table} WHERE id = ?`, [id]);
  assert.ok(row, `${table} ${id} is stored`);
  return row.map((value) => (value === null ? '' : String(value)));
}

/** Asserts that no column of the row contains any of `secrets` (nor a secret's base64 part). */
function assertNoSecretIn(table, id, secrets, description) {
  const row = storedRow(table, id);
  for (const secret of secrets) {
    const needles = [secret, secret.replace(/^whsec_/, '')];
    for (const needle of needles) {
      assert.ok(!row.some((column) => column.includes(needle)), `${description}: ${table} ${id} shows a secret in clear: ${row.join(' | ')}`);
    }
  }
}

const numericId = () => String(Date.now()) + String(Math.floor(Math.random() * 1e6));

/** A Meta (WhatsApp) account created through the admin API, with secrets of its own. */
async function metaAccount() {
  const business = await newBusiness();
  const secrets = { app_secret: unique('app'), verify_token: unique('verify'), access_token: unique('access') };
  const created = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'whatsapp', provider: 'meta', address: numericId(), secrets,
  });
  assert.equal(created.status, 201, created.text);
  return { business, account: created.body, secrets };
}

/** Meta's subscription handshake against the account: it needs the opened verify token. */
function handshake(account, token) {
  const query = `hub.mode=subscribe&hub.verify_token=${encodeURIComponent(token)}&hub.challenge=4242`;
  return request('GET', `${account.webhook_path}?${query}`);
}

function storedSecretsOfAccount(id) {
  return d1('SELECT secrets FROM channel_accounts WHERE id = ?', [id])[0][0];
}

describe('webhook secrets at rest', () => {
  test('an endpoint stores its secret sealed, and deliveries verify with the secret the API returned', async () => {
    const endpoint = receiver.endpoint([200]);
    const { key, webhook, secret } = await businessWithEndpoint(endpoint);
    const [stored, previous] = d1('SELECT secret, previous_secret FROM webhook_endpoints WHERE id = ?', [webhook.id])[0];
    assert.match(stored, SEALED, 'the secret column holds a sealed value');
    assert.equal(previous, null);
    assertNoSecretIn('webhook_endpoints', webhook.id, [secret], 'after creation');

    const sent = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.body.delivered, true, sent.text);
    const [delivery] = endpoint.requests;
    assert.equal(delivery.seedVerified, true, "the seed's signature verifies with the returned secret");
    assert.equal(delivery.standardVerified, true, 'the Standard Webhooks signature verifies with it');
  });

  test('after a rotation both secrets are stored sealed and both sign', async () => {
    const endpoint = receiver.endpoint([200]);
    const { key, webhook, secret: first } = await businessWithEndpoint(endpoint);
    const rotated = await api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, {});
    assert.equal(rotated.status, 200, rotated.text);
    const second = rotated.body.secret;
    const [stored, previous] = d1('SELECT secret, previous_secret FROM webhook_endpoints WHERE id = ?', [webhook.id])[0];
    assert.match(stored, SEALED, 'the new secret is sealed');
    assert.match(previous, SEALED, 'the previous secret is sealed');
    assertNoSecretIn('webhook_endpoints', webhook.id, [first, second], 'after a rotation');

    endpoint.secrets = [second];
    const sent = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(sent.body.delivered, true, sent.text);
    const [delivery] = endpoint.requests;
    assert.equal(delivery.seedVerified, true, 'the new secret signs');
    const [byNew, byOld] = standardSignatureMatches(delivery.headers, delivery.raw, [second, first]);
    assert.ok(byNew >= 0 && byOld >= 0, `both secrets sign during the grace period (${byNew}, ${byOld})`);
  });

  test('a secret stored in clear before sealing still signs, and is sealed by the read that finds it', async () => {
    const endpoint = receiver.endpoint([200]);
    const { key, webhook } = await businessWithEndpoint(endpoint);
    const legacy = `whsec_${Buffer.from(unique('legacy-secret-bytes')).toString('base64')}`;
    d1('UPDATE webhook_endpoints SET secret = ? WHERE id = ?', [legacy, webhook.id]);
    endpoint.secrets = [legacy];

    const sent = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.body.delivered, true, sent.text);
    assert.equal(endpoint.requests[0].seedVerified, true, 'the clear secret signed the delivery');
    assert.match(d1('SELECT secret FROM webhook_endpoints WHERE id = ?', [webhook.id])[0][0], SEALED, 'resealed');
    assertNoSecretIn('webhook_endpoints', webhook.id, [legacy], 'after the read');
  });

  test("a sealed secret copied into another endpoint's row does not open there", async () => {
    const victim = await businessWithEndpoint(receiver.endpoint([200]));
    const thief = await businessWithEndpoint(receiver.endpoint([200]));
    const [sealed] = d1('SELECT secret FROM webhook_endpoints WHERE id = ?', [victim.webhook.id])[0];
    d1('UPDATE webhook_endpoints SET secret = ? WHERE id = ?', [sealed, thief.webhook.id]);
    const res = await api(thief.key, 'POST', `/api-webhooks/${thief.webhook.id}/test`, {});
    assertError(res, 500, 'internal_error', 'a secret bound to another row');
    assert.ok(!res.text.includes('whsec_'), 'the answer shows no secret');
  });
});

describe('provider secrets at rest', () => {
  test('an account stores its secrets sealed, opens them to verify, and keeps them sealed after a rotation', async () => {
    const { account, secrets } = await metaAccount();
    assert.match(storedSecretsOfAccount(account.id), SEALED, 'the secrets column holds a sealed value');
    assertNoSecretIn('channel_accounts', account.id, Object.values(secrets), 'after creation');

    const good = await handshake(account, secrets.verify_token);
    assert.equal(good.status, 200, good.text);
    assert.equal(good.text, '4242', 'the verify token was opened and matched');

    const newToken = unique('verify-rotated');
    const rotated = await admin('PATCH', `/admin/channel-accounts/${account.id}`, { secrets: { verify_token: newToken } });
    assert.equal(rotated.status, 200, rotated.text);
    assert.deepEqual(rotated.body.secrets_set, ['access_token', 'app_secret', 'verify_token'], 'the others are kept');
    assert.match(storedSecretsOfAccount(account.id), SEALED);
    assertNoSecretIn('channel_accounts', account.id, [...Object.values(secrets), newToken], 'after a rotation');
    assert.equal((await handshake(account, newToken)).status, 200, 'the rotated token verifies');
    assertError(await handshake(account, secrets.verify_token), 403, 'forbidden', 'the old token no longer does');

    const removed = await admin('PATCH', `/admin/channel-accounts/${account.id}`, { secrets: { access_token: null } });
    assert.deepEqual(removed.body.secrets_set, ['app_secret', 'verify_token'], 'null removes a secret');
  });

  test('secrets stored in clear before sealing still verify, and are sealed by the read that finds them', async () => {
    const { account } = await metaAccount();
    const legacy = { app_secret: unique('legacy-app'), verify_token: unique('legacy-verify'), access_token: unique('legacy-access') };
    d1('UPDATE channel_accounts SET secrets = ? WHERE id = ?', [JSON.stringify(legacy), account.id]);
    const res = await handshake(account, legacy.verify_token);
    assert.equal(res.status, 200, res.text);
    assert.match(storedSecretsOfAccount(account.id), SEALED, 'resealed by the read');
    assertNoSecretIn('channel_accounts', account.id, Object.values(legacy), 'after the read');
    assert.equal((await handshake(account, legacy.verify_token)).status, 200, 'and still opens');
  });

  test("sealed secrets copied into another account's row do not open there", async () => {
    const victim = await metaAccount();
    const thief = await metaAccount();
    d1('UPDATE channel_accounts SET secrets = ? WHERE id = ?', [storedSecretsOfAccount(victim.account.id), thief.account.id]);
    const res = await handshake(thief.account, victim.secrets.verify_token);
    assertError(res, 500, 'internal_error', 'secrets bound to another row');
    assert.notEqual(res.text, '4242');
  });
});
