// The CRM API a business calls: escalations (on demand and when a customer asks for a person),
// internal notes, a customer's Kustomer history and the analytics; each with the API key, and each
// refusing bad input with the one error shape.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness, request, unique, waitFor } from '../support.mjs';
import { GRAPH_VERSION, startMeta } from '../providers/meta.mjs';
import { receiveWhatsapp, uniquePhone, whatsappAccount } from '../receivers/webhook-api.mjs';
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

/** A business on WhatsApp (through the local Meta) and Kustomer with one synced conversation. */
async function withConversation(fields = {}, text = 'Hello there') {
  const setup = await connectedBusiness(fields);
  servers.push(setup.kustomer);
  const whatsapp = await whatsappAccount(setup.business, `${meta.url}/${GRAPH_VERSION}`);
  accessTokens.set(whatsapp.address, whatsapp.secrets.access_token);
  const from = uniquePhone();
  await receiveWhatsapp(whatsapp, { from, text });
  const log = await settledLog(setup.connector.id, 3);
  const conversationId = log.find((entry) => entry.operation === 'conversation.created').record_id;
  const customerId = log.find((entry) => entry.operation === 'customer.created').record_id;
  return { ...setup, whatsapp, from, conversationId, customerId };
}

describe('escalations', () => {
  test('an API escalation raises the Kustomer conversation to the team with a note, and tells the customer once', async () => {
    const setup = await withConversation({ settings: { handoff_message: 'A person will reply soon.' } });
    const { kustomer } = setup;
    const teams = await admin('GET', `/admin/connectors/${setup.connector.id}/teams`);
    assert.equal(teams.status, 200, teams.text);
    const support = teams.body.teams.find((team) => team.name === 'Support');
    assert.ok(support, 'the teams are listed from Kustomer');
    const configured = await admin('PATCH', `/admin/connectors/${setup.connector.id}`, { settings: { auto_assignment: true, default_team_id: support.id } });
    assert.equal(configured.status, 200, configured.text);
    const res = await api(setup.business.key, 'POST', '/api-escalations', { conversation_id: setup.conversationId, reason: 'refund over limit' });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.escalation.trigger, 'api');
    assert.equal(res.body.work.length, 1);
    await waitFor(async () => (await syncLog(setup.connector.id)).some((e) => e.operation === 'escalate' && e.status !== 'pending'), 20_000, 'the escalation done');
    const escalation = (await syncLog(setup.connector.id)).find((e) => e.operation === 'escalate');
    assert.equal(escalation.status, 'succeeded', JSON.stringify(escalation));
    const [conversation] = kustomer.conversations;
    assert.equal(conversation.attributes.priority, 4, 'high priority');
    assert.deepEqual(conversation.attributes.assignedTeams, [support.id], 'the default team');
    const [note] = kustomer.notes(conversation.id);
    assert.match(note.attributes.body, /refund over limit/);
    assert.match(note.attributes.body, /Hello there/, 'the chat history is in the note');
    await meta.waitFor(setup.from.slice(1), 1);
    assert.equal(meta.for(setup.from.slice(1))[0].body.text.body, 'A person will reply soon.');
  });

  test('a customer asking for a human escalates once, and not with Automatic Ticket Creation off', async () => {
    const setup = await withConversation({}, 'I want to talk to a person please');
    await waitFor(async () => (await syncLog(setup.connector.id)).some((e) => e.operation === 'escalate' && e.status === 'succeeded'), 20_000, 'the escalation');
    const escalations = (await syncLog(setup.connector.id)).filter((e) => e.operation === 'escalate');
    assert.equal(escalations.length, 1);
    assert.match(setup.kustomer.notes(setup.kustomer.conversations[0].id)[0].attributes.body, /talk to a person/);

    const off = await withConversation({ settings: { ticket_creation: false } }, 'get me a human');
    const log = await syncLog(off.connector.id);
    assert.ok(!log.some((e) => e.operation === 'escalate'), 'no escalation recorded');
    const forced = await api(off.business.key, 'POST', '/api-escalations', { conversation_id: off.conversationId, reason: 'asked' });
    assert.equal(forced.status, 202);
    await waitFor(async () => (await syncLog(off.connector.id)).some((e) => e.operation === 'escalate' && e.status === 'skipped'), 20_000, 'skipped');
    const skipped = (await syncLog(off.connector.id)).find((e) => e.operation === 'escalate');
    assert.equal(skipped.last_error, 'Automatic Ticket Creation is off');
  });

  test('bad escalations are refused with the error shape, another business’s conversation is not found', async () => {
    const setup = await withConversation();
    const other = await newBusiness();
    const cases = [
      [{}, 422, 'validation_failed', 'no conversation or reason'],
      [{ conversation_id: setup.conversationId }, 422, 'validation_failed', 'no reason'],
      [{ conversation_id: setup.conversationId, reason: 'x'.repeat(501) }, 422, 'validation_failed', 'a long reason'],
      [{ conversation_id: 'nope', reason: 'r' }, 404, 'not_found', 'not an id'],
      [{ conversation_id: setup.conversationId, reason: 'r', extra: 1 }, 422, 'validation_failed', 'an unknown field'],
      [{ conversation_id: 5, reason: 'r' }, 422, 'validation_failed', 'a number'],
    ];
    for (const [body, status, code, why] of cases) {
      assertError(await api(setup.business.key, 'POST', '/api-escalations', body), status, code, why);
    }
    const malformed = await request('POST', '/api-escalations', { body: '{"conversation_id":', headers: { 'x-api-key': setup.business.key } });
    assertError(malformed, 400, 'malformed_request', 'not JSON');
    assertError(await api(other.key, 'POST', '/api-escalations', { conversation_id: setup.conversationId, reason: 'r' }), 404, 'not_found', 'another business');
    assertError(await request('POST', '/api-escalations', { body: JSON.stringify({ conversation_id: setup.conversationId, reason: 'r' }) }), 401, 'unauthorized', 'no key');
    assertError(await api(setup.business.key, 'GET', '/api-escalations'), 405, 'method_not_allowed', 'GET');
  });

  test('without an enabled connector an escalation is still recorded, counted and told to the customer', async () => {
    const setup = await withConversation();
    const disabled = await admin('PATCH', `/admin/connectors/${setup.connector.id}`, { enabled: false });
    assert.equal(disabled.status, 200, disabled.text);
    const noCrm = await api(setup.business.key, 'POST', '/api-escalations', { conversation_id: setup.conversationId, reason: 'no CRM here' });
    assert.equal(noCrm.status, 202, noCrm.text);
    assert.equal(noCrm.body.escalation.trigger, 'api');
    assert.deepEqual(noCrm.body.work, [], 'no connector has work');
    await meta.waitFor(setup.from.slice(1), 1);
    assert.match(meta.for(setup.from.slice(1))[0].body.text.body, /member of our team/, 'the default hand-off message');
    const analytics = await api(setup.business.key, 'GET', '/api-crm-analytics');
    assert.equal(analytics.status, 200, analytics.text);
    assert.equal(analytics.body.escalations.count, 1, analytics.text);
  });
});

describe('notes, history and analytics', () => {
  test('a note lands on the Kustomer conversation', async () => {
    const setup = await withConversation();
    const res = await api(setup.business.key, 'POST', '/api-crm-notes', { conversation_id: setup.conversationId, body: 'VIP: handle with care' });
    assert.equal(res.status, 202, res.text);
    await waitFor(() => setup.kustomer.notes(setup.kustomer.conversations[0].id).length === 1, 20_000, 'the note');
    assert.equal(setup.kustomer.notes(setup.kustomer.conversations[0].id)[0].attributes.body, 'VIP: handle with care');
    assertError(await api(setup.business.key, 'POST', '/api-crm-notes', { conversation_id: setup.conversationId, body: 'x'.repeat(10_241) }), 422, 'validation_failed', 'too long');
    assertError(await api(setup.business.key, 'POST', '/api-crm-notes', { conversation_id: setup.conversationId, body: 'x', connector_id: objectId() }), 422, 'validation_failed', 'not a connector of the business');
  });

  test('history loads the customer’s past Kustomer conversations; unknown customers are 404, Kustomer down is 502', async () => {
    const setup = await withConversation();
    const { kustomer } = setup;
    const customerId = kustomer.customers[0].id;
    kustomer.seedConversation(customerId, { name: 'Old order question', status: 'done' });
    const res = await api(setup.business.key, 'GET', `/api-crm-history?customer_id=${setup.customerId}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.crm_customer_id, customerId);
    const names = res.body.conversations.map((c) => c.name).sort();
    assert.equal(names.length, 2);
    assert.ok(names.includes('Old order question'));
    assertError(await api(setup.business.key, 'GET', `/api-crm-history?customer_id=${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`), 404, 'not_found', 'no such customer');
    await kustomer.down();
    const down = await api(setup.business.key, 'GET', `/api-crm-history?customer_id=${setup.customerId}`);
    assertError(down, 502, 'crm_failed', 'Kustomer down');
    await kustomer.up();
  });

  test('analytics count escalations, response and resolution times, satisfaction and the sync success rate', async () => {
    const setup = await withConversation({ secrets: { webhook_secret: 'tok' } });
    await api(setup.business.key, 'POST', '/api-escalations', { conversation_id: setup.conversationId, reason: 'why not' });
    const sent = await api(setup.business.key, 'POST', '/api-send-message', { customer_id: setup.customerId, channel: 'whatsapp', content: 'On it!' });
    assert.equal(sent.status, 202, sent.text);
    const agent = objectId();
    const { headers, body } = setup.kustomer.webhook('tok', {
      name: 'kustomer.conversation.update',
      data: { type: 'conversation', id: setup.kustomer.conversations[0].id, attributes: { status: 'done', assignedUsers: [agent], satisfaction: 5 } },
      changes: { attributes: { status: { before: 'open', after: 'done' } } },
    });
    const hook = await request('POST', setup.connector.webhook_path, { body, headers });
    assert.equal(hook.status, 200, hook.text);
    const res = await api(setup.business.key, 'GET', '/api-crm-analytics');
    assert.equal(res.status, 200, res.text);
    const report = res.body;
    assert.equal(report.conversations, 1);
    assert.deepEqual(report.escalations, { count: 1, rate: 1 });
    assert.equal(report.first_response.count, 1);
    assert.ok(report.first_response.p50_seconds >= 0);
    assert.equal(report.resolution.count, 1);
    assert.deepEqual(report.satisfaction, { average: 5, count: 1 });
    assert.equal(report.agents[0].assignee, agent);
    assert.equal(report.agents[0].resolved, 1);
    assert.equal(report.sync[0].connector_id, setup.connector.id);
    assert.ok(report.sync[0].succeeded >= 3);
    for (const [query, why] of [['from=yesterday', 'not a time'], ['from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'backwards'], ['from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'too long']]) {
      assertError(await api(setup.business.key, 'GET', `/api-crm-analytics?${query}`), 422, 'validation_failed', why);
    }
    assertError(await request('GET', '/api-crm-analytics'), 401, 'unauthorized', 'no key');
    const res2 = await admin('GET', `/admin/connectors/${setup.connector.id}`);
    assert.equal(res2.body.status.success_rate, 1);
  });
});
