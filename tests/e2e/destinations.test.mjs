// Where a business may point our outbound calls: webhook endpoint URLs and a channel account's
// `api_base_url` follow one rule, and an address inside a network (private, link-local, the
// cloud metadata service, ...) is refused with 422 naming the field, in every spelling.
//
// The local stack allows loopback (its test servers listen on 127.0.0.1), so loopback
// spellings are covered by the unit tests of shared/domain/src/destination.rs; here are the
// internal hosts that stay refused even locally.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness } from './support.mjs';
import { createWebhook, whatsappAccount } from './receivers/webhook-api.mjs';

const HOSTILE = [
  ['a private address', 'https://10.0.0.5/hooks'],
  ['a private address in 192.168/16', 'https://192.168.1.1/hooks'],
  ['a private address written as one number', 'https://3232235777/hooks'],
  ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data/'],
  ['the metadata address in hex', 'https://0xa9fea9fe/'],
  ['the metadata address in octal', 'https://0251.0376.0251.0376/'],
  ['the metadata address in a short form', 'https://169.254.43518/'],
  ['the metadata name', 'https://metadata.google.internal/computeMetadata/v1/'],
  ['the unspecified address', 'https://0.0.0.0/'],
  ['a carrier-grade NAT address', 'https://100.64.0.1/'],
  ['a multicast address', 'https://224.0.0.1/'],
  ['the broadcast address', 'https://255.255.255.255/'],
  ['IPv6 link-local', 'https://[fe80::1]/'],
  ['IPv6 unique local', 'https://[fd00::1]/'],
  ['IPv6 unspecified', 'https://[::]/'],
  ['an IPv4-mapped private address', 'https://[::ffff:10.0.0.5]/'],
  ['an IPv4-mapped loopback address', 'https://[::ffff:127.0.0.1]/'],
  ['a NAT64 metadata address', 'https://[64:ff9b::a9fe:a9fe]/'],
  ['an mDNS name', 'https://printer.local/'],
  ['a .corp name', 'https://crm.corp/'],
  ['a .home.arpa name', 'https://router.home.arpa/'],
  ['a single-label name', 'https://intranet/'],
  ['credentials in front of a private address', 'https://crm.example.com@10.0.0.5/'],
  ['http to a private address', 'http://10.0.0.5/hooks'],
];

describe('configured destinations', () => {
  test('a webhook endpoint at an internal address is refused with 422 naming url, and nothing is stored', async () => {
    const { key } = await newBusiness();
    for (const [description, url] of HOSTILE) {
      const res = await api(key, 'POST', '/api-webhooks', { name: 'hostile', url });
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, 'url', `${description}: the field named`);
    }
    const list = await api(key, 'GET', '/api-webhooks');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.webhooks, [], 'no refused endpoint was stored');
  });

  test('a webhook endpoint cannot be moved to an internal address', async () => {
    const { key } = await newBusiness();
    const { webhook } = await createWebhook(key, { url: 'https://crm.example.com/hooks' });
    for (const [description, url] of HOSTILE) {
      const res = await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, { url });
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, 'url', `${description}: the field named`);
    }
    const read = await api(key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.equal(read.body.webhook.url, 'https://crm.example.com/hooks', 'the url did not change');
  });

  test('a channel account whose api_base_url is internal is refused with 422 naming settings.api_base_url', async () => {
    const business = await newBusiness();
    const { account } = await whatsappAccount(business);
    for (const [description, url] of HOSTILE) {
      const patched = await admin('PATCH', `/admin/channel-accounts/${account.id}`, { settings: { api_base_url: url } });
      const error = assertError(patched, 422, 'validation_failed', `PATCH with ${description}`);
      assert.equal(error.field, 'settings.api_base_url', `PATCH with ${description}: the field named`);
    }
    const created = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
      channel: 'facebook',
      provider: 'meta',
      address: `9${Date.now()}`,
      secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' },
      settings: { api_base_url: 'https://169.254.169.254/' },
    });
    const error = assertError(created, 422, 'validation_failed', 'create with the metadata address');
    assert.equal(error.field, 'settings.api_base_url', 'create: the field named');

    const listed = await admin('GET', `/admin/businesses/${business.id}/channel-accounts`);
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(
      listed.body.channel_accounts.map((a) => [a.id, a.settings]),
      [[account.id, {}]],
      'nothing refused was stored',
    );
  });

  test('public destinations and, in the local stack, loopback stubs are accepted', async () => {
    const business = await newBusiness();
    const { account } = await whatsappAccount(business);
    for (const url of ['https://graph.example.com/v21.0', 'https://[2606:4700::1111]/v21.0', 'http://127.0.0.1:9/v21.0']) {
      const res = await admin('PATCH', `/admin/channel-accounts/${account.id}`, { settings: { api_base_url: url } });
      assert.equal(res.status, 200, `${url}: ${res.text}`);
      assert.equal(res.body.settings.api_base_url, url);
    }
    const removed = await admin('PATCH', `/admin/channel-accounts/${account.id}`, { settings: { api_base_url: null } });
    assert.equal(removed.status, 200, removed.text);
    assert.deepEqual(removed.body.settings, {}, 'null removes the setting');
  });
});
