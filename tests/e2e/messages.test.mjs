// Reading messages: polling with /api-messages-since (the seed's loop and the cursor), and a
// customer's conversations. Messages arrive through the WhatsApp webhook, signed like Meta signs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { admin, api, assertError, newBusiness, request, sync, unique } from './support.mjs';
import { whatsappNotification } from './providers/meta.mjs';

const EPOCH = '1970-01-01T00:00:00Z';

/** A business with a WhatsApp account; returns what is needed to deliver and read messages. */
async function whatsappBusiness() {
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
  return { ...business, appSecret, phoneNumberId, webhookPath: account.body.webhook_path };
}

/** Delivers one WhatsApp webhook carrying `messages` ([{from, body}]); returns their wamids. */
async function deliver(biz, messages) {
  const ids = messages.map(() => `wamid.${randomUUID()}`);
  const payload = JSON.stringify(whatsappNotification(biz.phoneNumberId, {
    contacts: messages.map(({ from }) => ({ profile: { name: `Sender ${from}` }, wa_id: from })),
    messages: messages.map(({ from, body }, n) => ({
      from, id: ids[n], timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body },
    })),
  }));
  const signature = `sha256=${createHmac('sha256', biz.appSecret).update(payload).digest('hex')}`;
  const res = await request('POST', biz.webhookPath, {
    body: payload,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
  });
  assert.equal(res.status, 200, `webhook delivery: ${res.text}`);
  return ids;
}

const since = (key, query) => api(key, 'GET', `/api-messages-since?${new URLSearchParams(query)}`);

/** The seed's polling loop, verbatim in spirit: since = the last message's created_at. */
async function pollLikeTheSeed(key, limit) {
  let lastCheckTimestamp = EPOCH;
  const seen = [];
  for (let round = 0; round < 1000; round++) {
    const res = await since(key, { since: lastCheckTimestamp, limit });
    assert.equal(res.status, 200, res.text);
    const { messages, has_more } = res.body;
    seen.push(...messages);
    if (messages.length > 0) lastCheckTimestamp = messages[messages.length - 1].created_at;
    if (!has_more) return seen;
  }
  throw new Error('polling did not finish');
}

async function pollByCursor(key, limit) {
  const seen = [];
  let res = await since(key, { since: EPOCH, limit });
  for (let round = 0; round < 1000; round++) {
    assert.equal(res.status, 200, res.text);
    seen.push(...res.body.messages);
    if (!res.body.has_more) return seen;
    res = await since(key, { cursor: res.body.next_cursor, limit });
  }
  throw new Error('polling did not finish');
}

describe('GET /api-messages-since', () => {
  test('the seed\'s polling loop sees every message exactly once when many share a millisecond', async () => {
    const biz = await whatsappBusiness();
    // One webhook with 40 messages: they are stored within the same few milliseconds.
    const batch = Array.from({ length: 40 }, (_, n) => ({ from: `3538700${String(n % 5).padStart(5, '0')}`, body: `message ${n}` }));
    const ids = await deliver(biz, batch);
    const seen = await pollLikeTheSeed(biz.key, 7);
    assert.equal(seen.length, 40, 'every message once');
    assert.equal(new Set(seen.map((m) => m.id)).size, 40, 'no message twice');
    assert.deepEqual(seen.map((m) => m.content), batch.map((m) => m.body), 'in the order they arrived');
    const millis = new Set(seen.map((m) => m.created_at.slice(0, 23)));
    assert.ok(millis.size < 40, `the test is meaningful only if some messages share a millisecond (${millis.size} distinct)`);
    assert.equal(seen.every((m) => ids.includes(m.id) === false), true, 'our ids are ours, not the provider\'s');
  });

  test('the cursor pages through the same messages, and a poll during delivery misses nothing', async () => {
    const biz = await whatsappBusiness();
    const delivered = [];
    const polled = new Map();
    let cursor = null;
    const pollOnce = async () => {
      const res = cursor ? await since(biz.key, { cursor, limit: 5 }) : await since(biz.key, { since: EPOCH, limit: 5 });
      assert.equal(res.status, 200, res.text);
      for (const m of res.body.messages) {
        assert.ok(!polled.has(m.id), `message ${m.id} seen twice`);
        polled.set(m.id, m);
      }
      if (res.body.next_cursor) cursor = res.body.next_cursor;
    };
    for (let round = 0; round < 6; round++) {
      const batch = Array.from({ length: 6 }, (_, n) => ({ from: '353870099999', body: `round ${round} message ${n}` }));
      const [ids] = await Promise.all([deliver(biz, batch), pollOnce()]);
      delivered.push(...ids);
    }
    for (let round = 0; round < 20 && polled.size < 36; round++) await pollOnce();
    assert.equal(polled.size, 36, 'every delivered message was polled exactly once');
    const byCursor = await pollByCursor(biz.key, 8);
    assert.deepEqual(byCursor.map((m) => m.id), [...polled.keys()], 'the cursor sees the same order');
  });

  test('messages have the seed\'s fields and a business sees only its own', async () => {
    const biz = await whatsappBusiness();
    const other = await whatsappBusiness();
    await deliver(biz, [{ from: '353871112223', body: 'Hello, I need help with my order' }]);
    await deliver(other, [{ from: '353871112223', body: 'not yours' }]);
    const res = await since(biz.key, { since: EPOCH, include_attachments: 'true' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.messages.length, 1);
    const [message] = res.body.messages;
    assert.equal(message.content, 'Hello, I need help with my order');
    assert.equal(message.platform, 'whatsapp');
    assert.equal(message.channel, 'whatsapp');
    assert.equal(message.direction, 'inbound');
    assert.equal(message.status, 'received');
    assert.match(message.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    assert.deepEqual(message.attachments, []);
    assert.equal(res.body.has_more, false);
    assert.equal(typeof res.body.next_cursor, 'string');
    const later = await since(biz.key, { since: message.created_at });
    assert.deepEqual(later.body.messages, [], 'since is exclusive');
    assert.equal(later.body.next_cursor, null);
  });

  test('bad queries are refused with the parameter at fault', async () => {
    const { key } = await newBusiness();
    const cases = [
      [{}, 400, 'malformed_request', 'neither since nor cursor'],
      [{ since: 'yesterday' }, 422, 'validation_failed', 'a since that is not a timestamp'],
      [{ cursor: 'forged' }, 422, 'validation_failed', 'a forged cursor'],
      [{ since: EPOCH, limit: '0' }, 422, 'validation_failed', 'limit 0'],
      [{ since: EPOCH, limit: '501' }, 422, 'validation_failed', 'limit over 500'],
    ];
    for (const [query, status, code, description] of cases) {
      assertError(await since(key, query), status, code, description);
    }
    assertError(await api(null, 'GET', `/api-messages-since?since=${EPOCH}`), 401, 'unauthorized', 'no key');
  });
});

describe('GET /api-conversations-by-customer', () => {
  test('a CRM customer\'s WhatsApp conversation is found by external_id, with its messages in order', async () => {
    const biz = await whatsappBusiness();
    const externalId = unique('CRM');
    const synced = await sync(biz.key, [{ external_id: externalId, name: 'Joe Bloggs', phone: '+353871234999' }]);
    assert.equal(synced.results.created, 1);
    await deliver(biz, [{ from: '353871234999', body: 'first' }, { from: '353871234999', body: 'second' }]);
    const res = await api(biz.key, 'GET', `/api-conversations-by-customer?external_id=${externalId}&include_messages=true&include_attachments=true`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.customer.external_id, externalId);
    assert.equal(res.body.customer.name, 'Joe Bloggs', 'the inbound message found the synced customer by phone');
    assert.equal(res.body.conversations.length, 1);
    const [conversation] = res.body.conversations;
    assert.equal(conversation.channel, 'whatsapp');
    assert.equal(conversation.status, 'open');
    assert.equal(conversation.message_count, 2);
    assert.deepEqual(conversation.messages.map((m) => m.content), ['first', 'second']);
    assert.deepEqual(conversation.messages.map((m) => m.attachments), [[], []]);
    const without = await api(biz.key, 'GET', `/api-conversations-by-customer?customer_id=${res.body.customer.id}`);
    assert.equal(without.status, 200, without.text);
    assert.equal(without.body.conversations[0].messages, undefined, 'messages only when asked for');
  });

  test('unknown, ambiguous and other businesses\' customers are refused', async () => {
    const biz = await whatsappBusiness();
    const other = await newBusiness();
    const externalId = unique('CRM');
    await sync(biz.key, [{ external_id: externalId, name: 'Mine', email: `${unique('m')}@example.com` }]);
    assertError(await api(other.key, 'GET', `/api-conversations-by-customer?external_id=${externalId}`), 404, 'not_found', 'another business');
    assertError(await api(biz.key, 'GET', '/api-conversations-by-customer?external_id=nobody'), 404, 'not_found', 'unknown');
    assertError(await api(biz.key, 'GET', '/api-conversations-by-customer'), 422, 'validation_failed', 'no key');
    assertError(await api(biz.key, 'GET', `/api-conversations-by-customer?external_id=a&customer_id=${randomUUID()}`), 422, 'validation_failed', 'two keys');
    // customer_id is our id or, failing that, the CRM's, as everywhere a customer is named.
    assertError(await api(biz.key, 'GET', '/api-conversations-by-customer?customer_id=x'), 404, 'not_found', 'an id that is neither ours nor the CRM\'s');
    assertError(await api(biz.key, 'GET', `/api-conversations-by-customer?external_id=${externalId}&include_messages=maybe`), 422, 'validation_failed', 'a bad flag');
  });
});
