// Kustomer's webhooks at /api/webhooks/kustomer/{connector}: signed with the hook's token,
// deduplicated by event id, an agent's reply sent to the customer on their channel (and not put
// back on the timeline), status and assignment changes applied here without being sent back, and
// satisfaction kept. Anything unsigned, mis-signed or malformed is refused.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, request, unique, waitFor } from '../support.mjs';
import { GRAPH_VERSION, startMeta } from '../providers/meta.mjs';
import { receiveWhatsapp, sleep, uniquePhone, whatsappAccount } from '../receivers/webhook-api.mjs';
import { objectId } from './kustomer.mjs';
import { connectedBusiness, settledLog, syncLog } from './connectors.mjs';

const servers = [];
const accessTokens = new Map();
let meta;
before(async () => {
  meta = await startMeta(accessTokens);
  servers.push(meta);
});
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

/** A business on WhatsApp (sending through the local Meta) and Kustomer, with one customer's
 * conversation synced; returns everything a test needs. */
async function syncedConversation() {
  const token = unique('hook-token');
  const setup = await connectedBusiness({ secrets: { webhook_secret: token } });
  servers.push(setup.kustomer);
  const whatsapp = await whatsappAccount(setup.business, `${meta.url}/${GRAPH_VERSION}`);
  accessTokens.set(whatsapp.address, whatsapp.secrets.access_token);
  const from = uniquePhone();
  await receiveWhatsapp(whatsapp, { from, text: 'I need help' });
  await waitFor(() => setup.kustomer.conversations.length === 1 && setup.kustomer.messages(setup.kustomer.conversations[0].id).length === 1, 30_000, 'the conversation in Kustomer');
  const [conversation] = setup.kustomer.conversations;
  const log = await settledLog(setup.connector.id, 3);
  const ours = log.find((entry) => entry.operation === 'conversation.created').record_id;
  const customerId = log.find((entry) => entry.operation === 'customer.created').record_id;
  return { ...setup, token, whatsapp, from, conversation, ours, customerId };
}

function post(setup, event, token = setup.token) {
  const { headers, body } = setup.kustomer.webhook(token, event);
  return request('POST', setup.connector.webhook_path, { body, headers });
}

const agentReply = (conversation, text, extra = {}) => ({
  name: 'kustomer.message.create',
  id: objectId(),
  data: {
    type: 'message',
    id: objectId(),
    attributes: { direction: 'out', channel: 'whatsapp', preview: text, ...extra },
    relationships: {
      conversation: { data: { type: 'conversation', id: conversation.id } },
      createdBy: { data: { type: 'user', id: objectId() } },
    },
  },
});

describe('agents replying in Kustomer', () => {
  test('a reply reaches the customer on WhatsApp once, and is not put on the timeline again', async () => {
    const setup = await syncedConversation();
    const event = agentReply(setup.conversation, 'A person here: how can I help?');
    const first = await post(setup, event);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.outcome, 'sent to the customer');
    await meta.waitFor(setup.from.slice(1), 1);
    const [sent] = meta.for(setup.from.slice(1));
    assert.equal(sent.body.text.body, 'A person here: how can I help?');

    const again = await post(setup, event);
    assert.equal(again.status, 200);
    assert.equal(again.body.outcome, 'duplicate: already handled');
    await sleep(1_500);
    assert.equal(meta.for(setup.from.slice(1)).length, 1, 'a repeated delivery sends nothing');

    await waitFor(async () => (await syncLog(setup.connector.id)).some((e) => e.operation === 'message.sent'), 20_000, 'message.sent followed');
    const sentEntry = (await syncLog(setup.connector.id)).find((entry) => entry.operation === 'message.sent');
    assert.equal(sentEntry.status, 'succeeded');
    assert.equal(sentEntry.crm_id, event.data.id, 'linked to the agent’s Kustomer message');
    assert.equal(setup.kustomer.messages(setup.conversation.id).length, 1, 'the timeline has the customer’s message only');
  });

  test('the same reply delivered three times at once reaches the customer once', async () => {
    const setup = await syncedConversation();
    const event = agentReply(setup.conversation, 'Only once, please');
    const answers = await Promise.all([post(setup, event), post(setup, event), post(setup, event)]);
    const outcomes = answers.map((res) => `${res.status} ${res.body?.outcome}`).sort();
    assert.deepEqual(outcomes, ['200 duplicate: already handled', '200 duplicate: already handled', '200 sent to the customer']);
    await meta.waitFor(setup.from.slice(1), 1);
    await sleep(1_500);
    assert.equal(meta.for(setup.from.slice(1)).length, 1, 'one message to the customer');
  });

  test('messages crm-edge put on the timeline, inbound ones and other channels’ are left alone', async () => {
    const setup = await syncedConversation();
    const [ours] = setup.kustomer.messages(setup.conversation.id);
    const cases = [
      [agentReply(setup.conversation, 'echo', { externalId: ours.attributes.externalId }), 'ignored: a message crm-edge put on the timeline'],
      [agentReply(setup.conversation, 'inbound', { direction: 'in' }), 'ignored: not an agent\'s reply'],
      [agentReply(setup.conversation, 'by email', { channel: 'email' }), 'ignored: a reply on another channel, which Kustomer delivers'],
      [agentReply({ id: objectId() }, 'elsewhere'), 'ignored: not a conversation crm-edge synced'],
    ];
    for (const [event, outcome] of cases) {
      const res = await post(setup, event);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.outcome, outcome);
    }
    await sleep(1_000);
    assert.equal(meta.for(setup.from.slice(1)).length, 0, 'nothing sent');
  });
});

describe('conversation changes in Kustomer', () => {
  test('done in Kustomer resolves ours, emits our event, and is not sent back; satisfaction is kept', async () => {
    const setup = await syncedConversation();
    const agent = objectId();
    const res = await post(setup, {
      name: 'kustomer.conversation.update',
      data: {
        type: 'conversation',
        id: setup.conversation.id,
        attributes: { status: 'done', assignedUsers: [agent], satisfaction: 4, satisfactionLevel: { rating: 'satisfied', answers: [{ answer: 'Quick and kind' }] } },
      },
      changes: { attributes: { status: { before: 'open', after: 'done' }, assignedUsers: { before: [], after: [agent] } } },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, 'applied');
    const conversations = await api(setup.business.key, 'GET', `/api-conversations-by-customer?customer_id=${setup.customerId}`);
    assert.equal(conversations.status, 200, conversations.text);
    const [conversation] = conversations.body.conversations;
    assert.equal(conversation.status, 'resolved');
    assert.equal(conversation.assignee, agent);

    await waitFor(async () => (await syncLog(setup.connector.id)).filter((e) => e.operation.startsWith('conversation.') && e.status === 'skipped').length === 2, 20_000, 'the changes recorded as skipped');
    const skipped = (await syncLog(setup.connector.id)).filter((e) => e.status === 'skipped');
    assert.ok(skipped.every((e) => e.last_error === 'the change came from this CRM; it is not sent back'), JSON.stringify(skipped));
    assert.ok(!setup.kustomer.requests.some((r) => r.method === 'PATCH'), 'nothing PATCHed back to Kustomer');
  });
});

describe('refused deliveries', () => {
  test('unsigned, mis-signed, unknown and malformed deliveries are refused; a connector without a token refuses all', async () => {
    const setup = await syncedConversation();
    const event = agentReply(setup.conversation, 'x');
    assertError(await post(setup, event, 'wrong-token'), 401, 'unauthorized', 'signed with another token');
    const { body } = setup.kustomer.webhook(setup.token, event);
    assertError(await request('POST', setup.connector.webhook_path, { body, headers: { 'content-type': 'application/json' } }), 401, 'unauthorized', 'unsigned');
    const tampered = body.replace('"x"', '"y"');
    const { headers } = setup.kustomer.webhook(setup.token, event);
    assertError(await request('POST', setup.connector.webhook_path, { body: tampered, headers }), 401, 'unauthorized', 'tampered');
    const { createHmac } = await import('node:crypto');
    for (const [raw, why] of [['{not json', 'not JSON'], ['[]', 'not an object'], ['{"id":5}', 'wrong types'], ['{"a":'.repeat(5000), 'deeply nested']]) {
      const signature = createHmac('sha256', setup.token).update(raw).digest('hex');
      const res = await request('POST', setup.connector.webhook_path, { body: raw, headers: { 'content-type': 'application/json', 'x-kustomer-webhook-signature': signature } });
      assertError(res, 400, 'malformed_request', why);
    }
    assertError(await request('POST', `/api/webhooks/kustomer/${objectId()}`, { body: '{}' }), 404, 'not_found', 'not a connector id');
    assertError(await request('POST', '/api/webhooks/kustomer/00000000-0000-4000-8000-000000000000', { body: '{}' }), 404, 'not_found', 'no such connector');
    assertError(await request('GET', setup.connector.webhook_path), 405, 'method_not_allowed', 'GET');
    const huge = 'x'.repeat(1024 * 1024 + 10);
    assertError(await request('POST', setup.connector.webhook_path, { body: huge, headers }), 413, 'payload_too_large', 'over 1 MiB');

    const cleared = await admin('PATCH', `/admin/connectors/${setup.connector.id}`, { secrets: { webhook_secret: null } });
    assert.equal(cleared.status, 200, cleared.text);
    assertError(await post(setup, event), 401, 'unauthorized', 'no token configured');
  });
});
