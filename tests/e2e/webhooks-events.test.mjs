// What the outbound webhooks carry: every customer the sync and bulk endpoints create or update,
// every inbound message with its customer, conversation and downloadable attachments, and every
// change of a conversation's status or assignee, each delivered once, signed so that the seed's
// receiver and a Standard Webhooks receiver both verify it, to its own business's endpoints only
// and only for the events each endpoint subscribed to. Polling sees the same messages.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RFC3339_UTC, api, assertClientError, assertError, bulkCreate, newBusiness, sync, unique, waitFor } from './support.mjs';
import { startWebhookReceiver, verifySeedSignature, verifyStandardSignature } from './receivers/webhook-receiver.mjs';
import { GRAPH_VERSION, startMeta } from './providers/meta.mjs';
import {
  businessWithEndpoint,
  deliveriesOf,
  messagesOf,
  receiveWhatsapp,
  sleep,
  startMediaHost,
  uniquePhone,
  whatsappAccount,
} from './receivers/webhook-api.mjs';

/** How long a test waits for deliveries that should come at once (queue batching included). */
const ARRIVAL_MS = 20_000;
/** How long a test keeps listening to be sure that something does not arrive. */
const QUIET_MS = 1_500;

let receiver;
let media;
before(async () => {
  [receiver, media] = await Promise.all([startWebhookReceiver(), startMediaHost()]);
});
after(async () => {
  await Promise.all([receiver?.close(), media?.close()]);
});

/** Asserts what every delivery must be: a signed POST of `{id, event, timestamp, business_id, data}`. */
function assertSignedEvent(delivery, business, description) {
  const label = `${description} (${delivery.text.slice(0, 300)})`;
  assert.equal(delivery.method, 'POST', `${label}: POST`);
  assert.match(delivery.headers['content-type'] ?? '', /^application\/json/, `${label}: content-type`);
  assert.ok(delivery.body && typeof delivery.body === 'object', `${label}: a JSON body`);
  assert.equal(delivery.body.business_id, business.id, `${label}: business_id`);
  assert.match(delivery.body.timestamp ?? '', RFC3339_UTC, `${label}: timestamp`);
  assert.equal(typeof delivery.body.id, 'string', `${label}: id`);
  assert.equal(delivery.id, delivery.body.id, `${label}: webhook-id is the event id`);
  assert.match(delivery.headers['x-webhook-timestamp'] ?? '', /^\d{10}$/, `${label}: X-Webhook-Timestamp in Unix seconds`);
  assert.match(delivery.headers['x-webhook-signature'] ?? '', /^[0-9a-f]{64}$/, `${label}: X-Webhook-Signature in hex`);
  assert.match(delivery.headers['webhook-timestamp'] ?? '', /^\d{10}$/, `${label}: webhook-timestamp`);
  assert.match(delivery.headers['webhook-signature'] ?? '', /^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$/, `${label}: webhook-signature`);
  assert.equal(delivery.seedVerified, true, `${label}: the seed's signature verifies`);
  assert.equal(delivery.standardVerified, true, `${label}: the Standard Webhooks signature verifies`);
}

/** Lets the queue settle, then returns the requests of `endpoint`. */
async function afterQuiet(endpoint) {
  await sleep(QUIET_MS);
  return endpoint.requests;
}

const conversationIdOf = (data) => data?.conversation?.id ?? data?.conversation_id;

describe('events from the customer endpoints', () => {
  test('a sync that creates two customers and updates one delivers three signed events, to its own business only', async () => {
    const mine = receiver.endpoint();
    const theirs = receiver.endpoint();
    const business = await newBusiness({ default_country: 'IE' });
    const tag = unique('sync');
    // Stored before any endpoint exists: no event is recorded for it.
    const existing = { external_id: `CRM-${tag}-0`, name: 'Before Hooks', email: `${tag}-0@example.com` };
    await sync(business.key, [existing]);
    const { secret, webhook } = await businessWithEndpoint(mine, {}, business);
    const other = await businessWithEndpoint(theirs);

    const result = await sync(business.key, [
      { external_id: `CRM-${tag}-1`, name: 'Ada Lovelace', email: `${tag}-1@example.com`, phone: '087 123 4567' },
      { external_id: `CRM-${tag}-2`, name: 'Grace Hopper', email: `${tag}-2@example.com` },
      { ...existing, name: 'After Hooks', custom_fields: { crm_segment: 'enterprise' } },
    ]);
    assert.equal(result.results.created, 2, JSON.stringify(result));
    assert.equal(result.results.updated, 1, JSON.stringify(result));
    const [first, second, updated] = result.results.details.map((d) => d.customer_id);

    await mine.waitForCount(3, ARRIVAL_MS);
    const received = await afterQuiet(mine);
    assert.equal(received.length, 3, `exactly three events: ${received.map((r) => r.event)}`);
    for (const delivery of received) assertSignedEvent(delivery, business.business, delivery.event);
    assert.ok(verifySeedSignature(received[0].headers, received[0].raw, secret), 'the secret shown at creation signs');
    assert.equal(new Set(received.map((r) => r.id)).size, 3, 'three distinct event ids');

    const byCustomer = new Map(received.map((r) => [r.body.data.customer.id, r]));
    assert.equal(byCustomer.get(first)?.event, 'customer.created', 'Ada is created');
    assert.equal(byCustomer.get(second)?.event, 'customer.created', 'Grace is created');
    assert.equal(byCustomer.get(updated)?.event, 'customer.updated', 'the existing customer is updated');
    const ada = byCustomer.get(first).body.data.customer;
    assert.equal(ada.name, 'Ada Lovelace');
    assert.equal(ada.email, `${tag}-1@example.com`);
    assert.equal(ada.phone, '+353871234567', 'the phone as stored, in E.164');
    assert.equal(ada.external_id, `CRM-${tag}-1`);
    const after = byCustomer.get(updated).body.data.customer;
    assert.equal(after.name, 'After Hooks', 'the update carries the new values');
    assert.deepEqual(after.custom_fields, { crm_segment: 'enterprise' });

    await waitFor(
      async () => {
        const deliveries = await deliveriesOf(business.key, webhook.id);
        return deliveries.length === 3 && deliveries.every((d) => d.status === 'delivered' && d.attempts === 1) && deliveries;
      },
      10_000,
      'three deliveries, each delivered at the first attempt',
    );

    // The other business gets its own customer's event, and nothing of the first one's.
    const own = await sync(other.key, [{ name: 'Their Customer', email: `${tag}-theirs@example.com` }]);
    await theirs.waitForCount(1, ARRIVAL_MS);
    const theirsReceived = await afterQuiet(theirs);
    assert.equal(theirsReceived.length, 1, `one event for the other business: ${theirsReceived.map((r) => r.text)}`);
    assertSignedEvent(theirsReceived[0], other.business, 'the other business');
    assert.equal(theirsReceived[0].body.data.customer.id, own.results.details[0].customer_id);
    assert.equal(mine.requests.length, 3, "the other business's event does not reach the first");
  });

  test('every customer a bulk create stores is a customer.created or customer.updated event', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint);
    const tag = unique('bulk');
    await bulkCreate(key, [
      { external_id: `SF-${tag}-1`, name: 'One', email: `${tag}-1@example.com` },
      { external_id: `SF-${tag}-2`, name: 'Two', email: `${tag}-2@example.com` },
    ]);
    await endpoint.waitForCount(2, ARRIVAL_MS);
    await bulkCreate(key, [{ external_id: `SF-${tag}-1`, name: 'One Again', email: `${tag}-1@example.com` }]);
    await endpoint.waitForCount(3, ARRIVAL_MS);
    const received = await afterQuiet(endpoint);
    assert.deepEqual(
      received.map((r) => [r.event, r.body.data.customer.external_id]).sort(),
      [
        ['customer.created', `SF-${tag}-1`],
        ['customer.created', `SF-${tag}-2`],
        ['customer.updated', `SF-${tag}-1`],
      ].sort(),
    );
    for (const delivery of received) assertSignedEvent(delivery, business, delivery.event);
  });

  test('a sync that changes nothing is no event and leaves updated_at alone; the next change is one', async () => {
    const endpoint = receiver.endpoint();
    const { key } = await businessWithEndpoint(endpoint);
    const tag = unique('same');
    const ann = { external_id: `CRM-${tag}`, name: 'Ann', email: `${tag}@example.com`, tags: ['vip'], custom_fields: { tier: 'gold', score: 5 } };
    const first = await sync(key, [ann]);
    await endpoint.waitForCount(1, ARRIVAL_MS);
    const stored = await api(key, 'GET', `/api-customers?external_id=${ann.external_id}`);
    // The same customer again, and with only what it keeps (an absent field keeps its value).
    const again = await sync(key, [ann]);
    const sparse = await sync(key, [{ external_id: ann.external_id, name: 'Ann', email: ann.email, custom_fields: { score: 5 } }]);
    for (const answer of [again, sparse]) {
      assert.deepEqual(
        [answer.results.updated, answer.results.details[0].action, answer.results.details[0].customer_id],
        [1, 'updated', first.results.details[0].customer_id],
        'still answered as matched and up to date',
      );
    }
    const unchanged = await api(key, 'GET', `/api-customers?external_id=${ann.external_id}`);
    assert.equal(unchanged.body.updated_at, stored.body.updated_at, 'not rewritten');
    await sync(key, [{ ...ann, custom_fields: { score: 6 } }]);
    await endpoint.waitForCount(2, ARRIVAL_MS);
    const received = await afterQuiet(endpoint);
    assert.deepEqual(received.map((r) => r.event), ['customer.created', 'customer.updated'], 'no event for the syncs that changed nothing');
    assert.deepEqual(received[1].body.data.customer.custom_fields, { tier: 'gold', score: 6 });
    const changed = await api(key, 'GET', `/api-customers?external_id=${ann.external_id}`);
    assert.notEqual(changed.body.updated_at, stored.body.updated_at, 'a change is stamped');
  });

  test('awkward content (unicode, emoji, line separators, HTML, quotes, odd numbers, numeric keys) still verifies the seed\'s way', async () => {
    const endpoint = receiver.endpoint();
    const { business, key, secret } = await businessWithEndpoint(endpoint);
    const tag = unique('odd');
    const name = 'Zoë "Q" O\'Brien \u2028\u2029 </script><b>&amp;</b> 🦀👩🏽‍💻 \\ back slash é́ 中文';
    // Written by hand so that the numbers reach the server exactly as spelled here.
    const raw =
      `{"customers":[{"external_id":"CRM-${tag}","name":${JSON.stringify(name)},"email":"${tag}@example.com",` +
      '"notes":"line one\\nline two\\r\\n\\ud83e\\udd80 crab as an escaped pair",' +
      '"custom_fields":{"big":1e21,"bigger":1.5e300,"tenth":0.1,"negative_zero":-0,"one_point_zero":1.0,' +
      '"huge_integer":12345678901234567890,"tiny":5e-7,"small":0.000001,"negative":-1.5e-10,"max_safe":9007199254740993,' +
      '"10":"ten","2":"two","b":"bee","a":"ay","0":"zero","01":"zero-one","4294967295":"not an index",' +
      '"control":"\\u0000\\u0007\\u001f\\u007f","nested":{"z":[1,2.50,{"y":null,"x":true}],"\u2028key":"\u00e9"},"empty":{},"list":[]}}]}';
    const res = await api(key, 'POST', '/api-customers-sync', raw, { 'content-type': 'application/json' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.results.created, 1, res.text);

    await endpoint.waitForCount(1, ARRIVAL_MS);
    const [delivery] = endpoint.requests;
    assertSignedEvent(delivery, business, 'awkward content');
    assert.ok(verifySeedSignature(delivery.headers, delivery.raw, secret), "the seed's way");
    assert.ok(verifyStandardSignature(delivery.headers, delivery.raw, secret), 'the Standard Webhooks way');
    const customer = delivery.body.data.customer;
    assert.equal(customer.name, name, 'the name arrives as written');
    assert.equal(customer.notes, 'line one\nline two\r\n🦀 crab as an escaped pair');
    // What a JS receiver holds after the seed's parse-and-stringify (-0 is printed as 0).
    const expected = JSON.parse(JSON.stringify(JSON.parse(raw).customers[0].custom_fields));
    assert.deepEqual(customer.custom_fields, expected, 'custom_fields arrive as a JS runtime reads them');
  });

  test('an endpoint subscribed only to customer.created gets no customer.updated', async () => {
    const onlyCreated = receiver.endpoint();
    const everything = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(onlyCreated, { events: ['customer.created'] });
    await businessWithEndpoint(everything, {}, business);
    const tag = unique('sub');
    await sync(key, [{ external_id: `CRM-${tag}`, name: 'First', email: `${tag}@example.com` }]);
    await onlyCreated.waitForCount(1, ARRIVAL_MS);
    const second = await sync(key, [{ external_id: `CRM-${tag}`, name: 'Second', email: `${tag}@example.com` }]);
    assert.equal(second.results.updated, 1, JSON.stringify(second));
    await everything.waitFor((list) => list.some((r) => r.event === 'customer.updated'), ARRIVAL_MS, 'the update at the endpoint that wants everything');
    const received = await afterQuiet(onlyCreated);
    assert.deepEqual(received.map((r) => r.event), ['customer.created'], 'only the creation');
    assert.deepEqual(everything.requests.map((r) => r.event).sort(), ['customer.created', 'customer.updated']);
    assert.equal(received[0].id, everything.requests.find((r) => r.event === 'customer.created').id, 'one event, the same id at both endpoints');
  });

  test("an endpoint's changes apply to the next event: a new url receives it, a deleted endpoint receives nothing", async () => {
    const before = receiver.endpoint();
    const moved = receiver.endpoint();
    const removed = receiver.endpoint();
    const sentinel = receiver.endpoint();
    const { business, key, webhook, secret } = await businessWithEndpoint(before, { events: ['customer.created'] });
    const doomed = await businessWithEndpoint(removed, { events: ['customer.created'] }, business);
    await businessWithEndpoint(sentinel, { events: ['customer.created'] }, business);
    moved.secrets = [secret];
    const patched = await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, { url: moved.url });
    assert.equal(patched.status, 200, patched.text);
    const deleted = await api(key, 'DELETE', `/api-webhooks/${doomed.webhook.id}`);
    assert.equal(deleted.status, 204, deleted.text);
    const tag = unique('moved');
    const result = await sync(key, [{ name: 'After the changes', email: `${tag}@example.com` }]);
    const id = result.results.details[0].customer_id;
    await sentinel.waitFor((list) => list.some((r) => r.body?.data?.customer?.id === id), ARRIVAL_MS, 'the event at the untouched endpoint');
    await moved.waitFor((list) => list.some((r) => r.body?.data?.customer?.id === id), ARRIVAL_MS, 'the event at the new url');
    await afterQuiet(moved);
    assert.equal(before.requests.length, 0, 'the old url gets nothing');
    assert.equal(removed.requests.length, 0, 'the deleted endpoint gets nothing');
    assertSignedEvent(moved.requests[0], business, 'at the new url, with the same secret');
  });

  test('a sync of 200 new customers delivers exactly 200 customer.created events, none lost or repeated', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint);
    const tag = unique('many');
    const customers = Array.from({ length: 200 }, (_, i) => ({ external_id: `CRM-${tag}-${i}`, name: `Customer ${i}`, email: `${tag}-${i}@example.com` }));
    const result = await sync(key, customers);
    assert.equal(result.results.created, 200, JSON.stringify(result.results).slice(0, 500));
    await endpoint.waitForCount(200, 45_000);
    const received = await afterQuiet(endpoint);
    assert.equal(received.length, 200, `exactly 200 requests (got ${received.length})`);
    assert.equal(new Set(received.map((r) => r.id)).size, 200, '200 distinct webhook-ids');
    assert.ok(received.every((r) => r.event === 'customer.created'), 'all customer.created');
    assert.deepEqual(
      new Set(received.map((r) => r.body.data.customer.id)),
      new Set(result.results.details.map((d) => d.customer_id)),
      'one event per created customer',
    );
    const unverified = received.filter((r) => !r.seedVerified || !r.standardVerified || r.body.business_id !== business.id);
    assert.equal(unverified.length, 0, `every delivery verifies and names the business (${unverified.length} do not)`);
  });
});

describe('events from conversations and messages', () => {
  test('an inbound WhatsApp image makes customer.created, conversation.created and message.received with a downloadable attachment', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint);
    const setup = await whatsappAccount(business, media.url);
    const from = uniquePhone();
    const mediaId = `1${Date.now()}`;
    await receiveWhatsapp(setup, { from, name: 'Photo Sender', text: 'The broken part', mediaId });

    await endpoint.waitFor(
      (list) => ['customer.created', 'conversation.created', 'message.received'].every((e) => list.some((r) => r.event === e)),
      ARRIVAL_MS,
      'customer.created, conversation.created and message.received',
    );
    const received = await afterQuiet(endpoint);
    assert.deepEqual(received.map((r) => r.event).sort(), ['conversation.created', 'customer.created', 'message.received']);
    for (const delivery of received) assertSignedEvent(delivery, business, delivery.event);
    const byEvent = Object.fromEntries(received.map((r) => [r.event, r.body.data]));

    const { message, customer, attachments } = byEvent['message.received'];
    assert.equal(message.content, 'The broken part');
    assert.equal(message.platform, 'whatsapp');
    assert.equal(message.channel, 'whatsapp');
    assert.equal(message.direction, 'inbound');
    assert.equal(message.status, 'received');
    assert.match(message.created_at, RFC3339_UTC);
    assert.equal(message.customer_id, customer.id);
    assert.equal(customer.phone, from);
    assert.equal(customer.name, 'Photo Sender');
    assert.equal(byEvent['customer.created'].customer.id, customer.id, 'customer.created names the same customer');
    assert.equal(conversationIdOf(byEvent['conversation.created']), message.conversation_id, 'conversation.created names the message\'s conversation');
    assert.equal(byEvent['conversation.created'].customer?.id, customer.id, 'conversation.created carries its customer');
    assert.equal(byEvent['conversation.created'].conversation?.channel, 'whatsapp');

    assert.equal(attachments.length, 1, JSON.stringify(attachments));
    const [attachment] = attachments;
    assert.equal(attachment.type, 'image/png');
    assert.equal(attachment.size, media.image.length);
    assert.equal(typeof attachment.id, 'string');
    assert.equal(typeof attachment.filename, 'string');
    const download = await fetch(attachment.download_url);
    assert.equal(download.status, 200, `the download_url works without an API key (${attachment.download_url})`);
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), media.image, 'byte for byte');
    const link = new URL(attachment.download_url);
    const signature = link.searchParams.get('signature');
    assert.ok(signature, `the download_url is a signed link (${attachment.download_url})`);
    link.searchParams.set('signature', `${signature[0] === 'a' ? 'b' : 'a'}${signature.slice(1)}`);
    const tampered = await fetch(link);
    assert.ok([401, 403, 404].includes(tampered.status), `a tampered link is refused (got ${tampered.status})`);

    // The same sender again: a message on the same conversation, no new customer or conversation.
    await receiveWhatsapp(setup, { from, text: 'Any news?' });
    await endpoint.waitFor((list) => list.filter((r) => r.event === 'message.received').length === 2, ARRIVAL_MS, 'the second message.received');
    const later = await afterQuiet(endpoint);
    assert.deepEqual(later.slice(3).map((r) => r.event), ['message.received'], 'only message.received for a known sender');
    assert.equal(later[3].body.data.message.conversation_id, message.conversation_id);
    assert.deepEqual(later[3].body.data.attachments, [], 'a text has no attachments');
  });

  test('a message sent from the CRM makes conversation.created once and message.sent for each message', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint, { events: ['conversation.created', 'message.sent'] });
    const tokens = new Map();
    const meta = await startMeta(tokens);
    try {
      const setup = await whatsappAccount(business, `${meta.url}/${GRAPH_VERSION}`);
      tokens.set(setup.address, setup.secrets.access_token);
      const phone = uniquePhone();
      const tag = unique('send');
      const created = await sync(key, [{ external_id: `CRM-${tag}`, name: 'Send Target', email: `${tag}@example.com`, phone, whatsapp_number: phone }]);
      const customerId = created.results.details[0].customer_id;
      const send = async (content) => {
        const res = await api(key, 'POST', '/api-send-message', { customer_id: `CRM-${tag}`, channel: 'whatsapp', content });
        assert.equal(res.status, 202, `sending: ${res.text}`);
        return res.body.message;
      };
      const first = await send('Your order is ready');
      await endpoint.waitFor(
        (list) => list.some((r) => r.event === 'message.sent' && r.body.data.message.id === first.id) && list.some((r) => r.event === 'conversation.created'),
        ARRIVAL_MS,
        'conversation.created and message.sent',
      );
      const second = await send('It ships tomorrow');
      await endpoint.waitFor((list) => list.some((r) => r.event === 'message.sent' && r.body.data.message.id === second.id), ARRIVAL_MS, 'the second message.sent');
      const received = await afterQuiet(endpoint);
      for (const delivery of received) assertSignedEvent(delivery, business, delivery.event);
      assert.deepEqual(received.map((r) => r.event).sort(), ['conversation.created', 'message.sent', 'message.sent'], 'one conversation, two messages');
      const conversation = received.find((r) => r.event === 'conversation.created').body.data;
      assert.equal(conversationIdOf(conversation), first.conversation_id, 'conversation.created names the conversation of the send');
      assert.equal(conversation.customer?.id, customerId);
      for (const [message, content] of [[first, 'Your order is ready'], [second, 'It ships tomorrow']]) {
        const data = received.find((r) => r.event === 'message.sent' && r.body.data.message.id === message.id).body.data;
        assert.equal(data.message.content, content);
        assert.equal(data.message.direction, 'outbound');
        assert.equal(data.message.channel, 'whatsapp');
        assert.equal(data.message.conversation_id, first.conversation_id);
        assert.equal(data.customer.id, customerId);
        assert.deepEqual(data.attachments, []);
      }
    } finally {
      await meta.close();
    }
  });

  test('the messages delivered as message.received are the messages polling returns', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint, { events: ['message.received'] });
    const setup = await whatsappAccount(business);
    const [ann, bob] = [uniquePhone(), uniquePhone()];
    for (const [from, text] of [[ann, 'one'], [bob, 'two'], [ann, 'three'], [bob, 'four ✓']]) {
      await receiveWhatsapp(setup, { from, text });
    }
    await endpoint.waitForCount(4, ARRIVAL_MS);
    const received = await afterQuiet(endpoint);
    assert.equal(received.length, 4, 'one event per message');
    const polled = await messagesOf(key);
    assert.deepEqual(
      received.map((r) => r.body.data.message.id).sort(),
      polled.map((m) => m.id).sort(),
      'the same message ids both ways',
    );
    for (const delivery of received) {
      const twin = polled.find((m) => m.id === delivery.body.data.message.id);
      for (const field of ['conversation_id', 'customer_id', 'content', 'channel', 'direction', 'created_at']) {
        assert.deepEqual(delivery.body.data.message[field], twin[field], `${field} agrees for ${twin.content}`);
      }
    }
  });

  test('PATCH of a conversation delivers conversation.assigned and conversation.status_changed with the previous values, and nothing when nothing changes', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint, { events: ['conversation.assigned', 'conversation.status_changed'] });
    const setup = await whatsappAccount(business);
    await receiveWhatsapp(setup, { from: uniquePhone(), text: 'Where is my order?' });
    const [message] = await messagesOf(key);
    const id = message.conversation_id;
    const patch = (body) => api(key, 'PATCH', `/api-conversations/${id}`, body);

    const assigned = await patch({ assignee: 'agent-7' });
    assert.equal(assigned.status, 200, assigned.text);
    const conversation = assigned.body.conversation;
    assert.equal(conversation.id, id);
    assert.equal(conversation.assignee, 'agent-7');
    assert.equal(conversation.channel, 'whatsapp');
    assert.equal(conversation.customer_id, message.customer_id);
    for (const field of ['created_at', 'updated_at', 'last_message_at']) assert.match(conversation[field], RFC3339_UTC, field);
    const initialStatus = conversation.status;
    assert.ok(['open', 'pending'].includes(initialStatus), `a new conversation is open or pending (${initialStatus})`);

    const resolved = await patch({ status: 'resolved' });
    assert.equal(resolved.status, 200, resolved.text);
    assert.equal(resolved.body.conversation.status, 'resolved');
    assert.equal(resolved.body.conversation.assignee, 'agent-7', 'the assignee is kept');

    await endpoint.waitForCount(2, ARRIVAL_MS);
    const unchanged = await patch({ status: 'resolved', assignee: 'agent-7' });
    assert.equal(unchanged.status, 200, unchanged.text);
    const both = await patch({ status: 'closed', assignee: null });
    assert.equal(both.status, 200, both.text);
    assert.equal(both.body.conversation.assignee, null);
    await endpoint.waitForCount(4, ARRIVAL_MS);
    const received = await afterQuiet(endpoint);
    for (const delivery of received) assertSignedEvent(delivery, business, delivery.event);

    const assignedEvents = received.filter((r) => r.event === 'conversation.assigned').map((r) => r.body.data);
    const statusEvents = received.filter((r) => r.event === 'conversation.status_changed').map((r) => r.body.data);
    assert.equal(received.length, 4, `four changes, four events; the unchanged PATCH made none (${received.map((r) => r.event)})`);
    assert.deepEqual(assignedEvents.map((d) => [d.previous_assignee, d.conversation?.assignee]), [[null, 'agent-7'], ['agent-7', null]]);
    assert.deepEqual(statusEvents.map((d) => [d.previous_status, d.conversation?.status]), [[initialStatus, 'resolved'], ['resolved', 'closed']]);
    for (const data of [...assignedEvents, ...statusEvents]) assert.equal(conversationIdOf(data), id, 'each event names the conversation');
  });

  test('each event carries the record as it was when its change happened, however soon the next change follows', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint);
    const tag = unique('snap');
    for (const name of ['One', 'Two', 'Three']) {
      await sync(key, [{ external_id: `CRM-${tag}`, name, email: `${tag}@example.com` }]);
    }
    const setup = await whatsappAccount(business);
    await receiveWhatsapp(setup, { from: uniquePhone(), name: 'Snapshot', text: 'Hello' });
    const [message] = await messagesOf(key);
    for (const body of [{ status: 'resolved' }, { status: 'closed' }, { assignee: 'agent-a' }, { assignee: 'agent-b' }]) {
      const res = await api(key, 'PATCH', `/api-conversations/${message.conversation_id}`, body);
      assert.equal(res.status, 200, res.text);
    }
    await endpoint.waitForCount(10, ARRIVAL_MS);
    const byTime = (event) =>
      endpoint.events(event).sort((a, b) => (a.body.timestamp < b.body.timestamp ? -1 : a.body.timestamp > b.body.timestamp ? 1 : 0)).map((r) => r.body.data);
    const customerEvents = [...byTime('customer.created'), ...byTime('customer.updated')].filter((d) => d.customer.external_id === `CRM-${tag}`);
    assert.deepEqual(customerEvents.map((d) => d.customer.name), ['One', 'Two', 'Three'], 'each customer event shows the customer as that sync left it');
    assert.deepEqual(
      byTime('conversation.status_changed').map((d) => [d.previous_status, d.conversation?.status]),
      [['open', 'resolved'], ['resolved', 'closed']],
      'each status change shows the status it changed to',
    );
    assert.deepEqual(
      byTime('conversation.assigned').map((d) => [d.previous_assignee, d.conversation?.assignee]),
      [[null, 'agent-a'], ['agent-a', 'agent-b']],
      'each assignment shows the assignee it set',
    );
    const [created] = byTime('conversation.created');
    assert.deepEqual([created.conversation?.status, created.conversation?.assignee], ['open', null], 'conversation.created shows the new conversation');
  });

  test('a bad conversation PATCH is refused and another business\'s conversation is 404', async () => {
    const endpoint = receiver.endpoint();
    const { business, key } = await businessWithEndpoint(endpoint, { events: ['conversation.assigned', 'conversation.status_changed'] });
    const setup = await whatsappAccount(business);
    await receiveWhatsapp(setup, { from: uniquePhone(), text: 'Hi' });
    const [message] = await messagesOf(key);
    const id = message.conversation_id;
    const cases = [
      ['an unknown status', { status: 'archived' }, 'status'],
      ['a status in the wrong case', { status: 'Open' }, 'status'],
    ];
    for (const [description, body, field] of cases) {
      const res = await api(key, 'PATCH', `/api-conversations/${id}`, body);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, field, `${description}: the field`);
    }
    assertClientError(await api(key, 'PATCH', `/api-conversations/${id}`, { assignee: 42 }), 'a numeric assignee');
    assertError(await api(key, 'PATCH', `/api-conversations/${id}`, '{"status":', { 'content-type': 'application/json' }), 400, 'malformed_request', 'truncated JSON');
    assertError(await api(null, 'PATCH', `/api-conversations/${id}`, { status: 'closed' }), 401, 'unauthorized', 'no API key');

    const intruder = await newBusiness();
    for (const [description, target] of [["another business's conversation", id], ['an unknown conversation', randomUUID()]]) {
      assertError(await api(intruder.key, 'PATCH', `/api-conversations/${target}`, { status: 'closed' }), 404, 'not_found', description);
    }
    assertError(await api(key, 'PATCH', `/api-conversations/${randomUUID()}`, { status: 'closed' }), 404, 'not_found', 'an unknown conversation of the owner');
    const received = await afterQuiet(endpoint);
    assert.deepEqual(received.map((r) => r.event), [], 'no refused PATCH made an event');
  });
});
