// Requests that really overlap on the real runtime: the native tests run them one after another
// (or interleave them at the waits they script), so what decides a real race (D1's own ordering,
// workerd's scheduling of concurrent requests) is shown here. Each of these tests was one of a
// file whose other tests moved to tests/pipelines (TESTING.md).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { admin, api, newBusiness, request, unique, waitFor } from './support.mjs';
import { whatsappNotification } from './providers/meta.mjs';
import { standardSignatureMatches } from './receivers/webhook-receiver.mjs';
import { businessWithEndpoint, receiveWhatsapp, sleep, uniquePhone } from './receivers/webhook-api.mjs';
import { localPartners } from './partners.mjs';
import { objectId } from './crm/kustomer.mjs';
import { connectedBusiness, settledLog } from './crm/connectors.mjs';

const EPOCH = '1970-01-01T00:00:00Z';
const partners = localPartners();

describe('concurrent requests on the real runtime', () => {
  test('concurrent rotations of a webhook secret are applied one after another: none is lost', async () => {
    const endpoint = partners.receiver.endpoint();
    const { key, webhook, secret: original } = await businessWithEndpoint(endpoint);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, {})),
    );
    for (const res of answers) assert.equal(res.status, 200, `every rotation lands: ${res.text}`);
    const secrets = answers.map((res) => res.body.secret);
    assert.equal(new Set(secrets).size, 4, 'four different secrets');
    const sent = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(sent.status, 200, sent.text);
    const delivery = endpoint.requests.at(-1);
    const matches = standardSignatureMatches(delivery.headers, delivery.raw, [original, ...secrets]);
    const signedBy = [original, ...secrets].filter((_, i) => matches[i] >= 0);
    assert.equal(signedBy.length, 2, `two secrets sign during the grace period (${delivery.headers['webhook-signature']})`);
    assert.ok(!signedBy.includes(original), 'the original secret was rotated out by the first rotation, not kept by a later one that read it');
  });

  test('the same Kustomer reply delivered three times at once reaches the customer once', async () => {
    const token = unique('hook-token');
    const setup = await connectedBusiness({ secrets: { webhook_secret: token } });
    partners.closeAfter(setup.kustomer);
    const whatsapp = await partners.whatsappOf(setup.business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'I need help' });
    await waitFor(() => setup.kustomer.conversations.length === 1, 30_000, 'the conversation in Kustomer');
    await settledLog(setup.connector.id, 3);
    const [conversation] = setup.kustomer.conversations;
    const event = {
      name: 'kustomer.message.create',
      id: objectId(),
      data: {
        type: 'message',
        id: objectId(),
        attributes: { direction: 'out', channel: 'whatsapp', preview: 'Only once, please' },
        relationships: {
          conversation: { data: { type: 'conversation', id: conversation.id } },
          createdBy: { data: { type: 'user', id: objectId() } },
        },
      },
    };
    const post = () => {
      const { headers, body } = setup.kustomer.webhook(token, event);
      return request('POST', setup.connector.webhook_path, { body, headers });
    };
    const answers = await Promise.all([post(), post(), post()]);
    const outcomes = answers.map((res) => `${res.status} ${res.body?.outcome}`).sort();
    assert.deepEqual(outcomes, ['200 duplicate: already handled', '200 duplicate: already handled', '200 sent to the customer']);
    await partners.meta.waitFor(from.slice(1), 1);
    await sleep(1_500);
    assert.equal(partners.meta.for(from.slice(1)).length, 1, 'one message to the customer');
  });

  test('a poll of /api-messages-since during a delivery misses nothing, and the cursor sees the same order', async () => {
    const business = await newBusiness();
    const appSecret = unique('secret');
    const phoneNumberId = String(Date.now()) + String(Math.floor(Math.random() * 1e6));
    const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
      channel: 'whatsapp',
      provider: 'meta',
      address: phoneNumberId,
      secrets: { app_secret: appSecret, verify_token: unique('verify'), access_token: unique('token') },
    });
    assert.equal(account.status, 201, account.text);
    const since = (query) => api(business.key, 'GET', `/api-messages-since?${new URLSearchParams(query)}`);
    const deliver = async (messages) => {
      const payload = JSON.stringify(whatsappNotification(phoneNumberId, {
        contacts: messages.map(({ from }) => ({ profile: { name: `Sender ${from}` }, wa_id: from })),
        messages: messages.map(({ from, body }) => ({
          from, id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body },
        })),
      }));
      const signature = `sha256=${createHmac('sha256', appSecret).update(payload).digest('hex')}`;
      const res = await request('POST', account.body.webhook_path, {
        body: payload,
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
      });
      assert.equal(res.status, 200, `webhook delivery: ${res.text}`);
    };
    const polled = new Map();
    let cursor = null;
    const pollOnce = async () => {
      const res = cursor ? await since({ cursor, limit: 5 }) : await since({ since: EPOCH, limit: 5 });
      assert.equal(res.status, 200, res.text);
      for (const m of res.body.messages) {
        assert.ok(!polled.has(m.id), `message ${m.id} seen twice`);
        polled.set(m.id, m);
      }
      if (res.body.next_cursor) cursor = res.body.next_cursor;
    };
    for (let round = 0; round < 6; round++) {
      const batch = Array.from({ length: 6 }, (_, n) => ({ from: '353870099999', body: `round ${round} message ${n}` }));
      await Promise.all([deliver(batch), pollOnce()]);
    }
    for (let round = 0; round < 20 && polled.size < 36; round++) await pollOnce();
    assert.equal(polled.size, 36, 'every delivered message was polled exactly once');
    const byCursor = [];
    let res = await since({ since: EPOCH, limit: 8 });
    for (let round = 0; round < 100; round++) {
      assert.equal(res.status, 200, res.text);
      byCursor.push(...res.body.messages);
      if (!res.body.has_more) break;
      res = await since({ cursor: res.body.next_cursor, limit: 8 });
    }
    assert.deepEqual(byCursor.map((m) => m.id), [...polled.keys()], 'the cursor sees the same order');
  });
});
