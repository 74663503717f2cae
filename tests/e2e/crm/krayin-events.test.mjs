// The Krayin connector following our own events: a synced customer as one Krayin person and lead
// (custom fields mapped as Chatwoot's attributes are), a WhatsApp conversation as a call with
// every message received or sent a done call, resolving it marking it done, twenty messages at
// once making one person, the toggles honoured, and Krayin's refusals failing at once with its
// reason.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, sync, unique, waitFor } from '../support.mjs';
import { GRAPH_VERSION, startMeta } from '../providers/meta.mjs';
import { receiveWhatsapp, uniquePhone, whatsappAccount } from '../receivers/webhook-api.mjs';
import { connectorOf, krayinBusiness, krayinContact, krayinContactByExternalId, settledLog, syncLog } from './connectors.mjs';

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

async function setUp(fields, serverOptions) {
  const setup = await krayinBusiness(fields, serverOptions);
  servers.push(setup.krayin);
  return setup;
}

/** A WhatsApp account of the business that sends through the local Meta. */
async function whatsappOf(business) {
  const whatsapp = await whatsappAccount(business, `${meta.url}/${GRAPH_VERSION}`);
  accessTokens.set(whatsapp.address, whatsapp.secrets.access_token);
  return whatsapp;
}

const conversationActivities = (krayin) => krayin.activities.filter((a) => /^Conversation #/.test(a.title ?? ''));
const messageActivities = (krayin) => krayin.activities.filter((a) => (a.title ?? '').startsWith('Message from '));
const recordOf = (log, operation) => log.find((entry) => entry.operation === operation)?.record_id;

describe('customers', () => {
  test('a synced customer becomes one person and one lead with its custom fields, and an update changes both', async () => {
    const { business, connector, krayin } = await setUp({ settings: { pipeline_id: 2, lead_source_id: 5, lead_type_id: 2, user_id: 1 } });
    const tag = unique('k');
    const email = `${tag}@example.com`;
    const [created] = (await sync(business.key, [
      {
        external_id: `CRM-${tag}`,
        name: 'Ada Lovelace',
        email,
        phone: '087 123 4567',
        notes: 'Met at the Dublin fair',
        custom_fields: { job_title: 'Head of Operations', company_name: 'Analytical Engines', company_city: 'Dublin', lead_value: 1200 },
      },
    ])).results.details;
    await waitFor(() => krayin.persons.length === 1 && krayin.leads.length === 1, 20_000, 'the person and lead');
    await settledLog(connector.id, 1);

    const [person] = krayin.persons;
    assert.equal(person.name, 'Ada Lovelace');
    assert.deepEqual(person.emails, [{ value: email, label: 'work' }]);
    assert.deepEqual(person.contact_numbers, [{ value: '+353871234567', label: 'work' }], 'the phone in E.164');
    assert.equal(person.job_title, 'Head of Operations');
    assert.equal(krayin.organizations.length, 1);
    const [organization] = krayin.organizations;
    assert.equal(organization.name, 'Analytical Engines');
    assert.equal(organization.address?.city, 'Dublin', `the company’s city: ${JSON.stringify(organization.address)}`);
    assert.equal(person.organization_id, organization.id);

    const [lead] = krayin.leads;
    assert.equal(lead.title, 'Ada Lovelace');
    assert.equal(lead.person_id, person.id);
    assert.equal(Number(lead.lead_value), 1200);
    assert.match(lead.description ?? '', /Met at the Dublin fair/, 'the notes describe the lead');
    assert.deepEqual([lead.lead_pipeline_id, lead.lead_pipeline_stage_id], [2, 7]);
    assert.deepEqual([lead.lead_source_id, lead.lead_type_id, lead.user_id], [5, 2, 1]);

    const expected = {
      contact: created.customer_id,
      external_id: `krayin:person:${person.id}|krayin:lead:${lead.id}|krayin:organization:${organization.id}`,
      person_id: person.id,
      lead_id: lead.id,
      organization_id: organization.id,
    };
    const linked = await krayinContact(connector.id, created.customer_id);
    assert.equal(linked.status, 200, linked.text);
    assert.deepEqual(pick(linked.body, Object.keys(expected)), expected);
    const found = await krayinContactByExternalId(connector.id, `krayin:person:${person.id}`);
    assert.equal(found.status, 200, found.text);
    assert.equal(found.body.contact, created.customer_id);
    assert.equal((await krayinContact(connector.id, '8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f')).status, 404, 'a customer the connector does not know');
    const shown = await api(business.key, 'GET', `/api-customers?id=${created.customer_id}`);
    assert.equal(shown.status, 200, shown.text);
    assert.deepEqual(shown.body.crm_ids, [{ connector_id: connector.id, kind: 'krayin', external_id: expected.external_id }], 'the customer shows where Krayin keeps them');

    await sync(business.key, [{ external_id: `CRM-${tag}`, name: 'Ada King', email, custom_fields: { job_title: 'Director' } }]);
    await waitFor(() => krayin.persons[0].name === 'Ada King' && krayin.leads[0].title === 'Ada King', 20_000, 'the update');
    assert.equal(krayin.persons[0].job_title, 'Director');
    assert.equal(krayin.persons.length, 1, 'updated, not created again');
    assert.equal(krayin.leads.length, 1);
    assert.equal(krayin.organizations.length, 1);
    assert.equal(krayin.leads[0].lead_pipeline_stage_id, 7, 'still where it stood');
    const log = await settledLog(connector.id, 2);
    assert.deepEqual(log.map((entry) => [entry.operation, entry.status]), [
      ['customer.updated', 'succeeded'],
      ['customer.created', 'succeeded'],
    ]);
    assert.ok(log.every((entry) => entry.record_id === created.customer_id && entry.customer_id === created.customer_id), JSON.stringify(log));
  });

  test('a customer Krayin refuses fails at once with Krayin’s reason and is not retried', async () => {
    const { business, connector, krayin } = await setUp();
    const reason = 'The emails.0.value has already been taken.';
    krayin.fail({
      status: 422,
      times: 5,
      body: { message: reason, errors: { 'emails.0.value': [reason] } },
      match: (req) => req.method === 'POST' && req.path === '/api/v1/contacts/persons',
    });
    await sync(business.key, [{ name: 'Refused', email: `${unique('refused')}@example.com` }]);
    const [entry] = await settledLog(connector.id, 1);
    assert.equal(entry.status, 'failed');
    assert.equal(entry.attempts, 1, 'not retried');
    assert.equal(entry.last_status, 422);
    assert.ok((entry.last_error ?? '').includes(reason), `Krayin’s message: ${entry.last_error}`);
    assert.equal(krayin.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/contacts/persons').length, 1, 'asked once');
    const status = (await connectorOf(connector.id)).status;
    assert.equal(status.last_24h?.failed, 1, JSON.stringify(status));
  });
});

describe('conversations and messages', () => {
  test('a WhatsApp conversation is a call, each message received or sent a done call, and resolving it marks it done', async () => {
    const { business, connector, krayin } = await setUp();
    const whatsapp = await whatsappOf(business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, name: 'Grace Hopper', text: 'Can I get a quote for 40 seats?' });
    const log = await settledLog(connector.id, 3);
    assert.ok(log.every((entry) => entry.status === 'succeeded'), JSON.stringify(log.map((e) => [e.operation, e.status, e.last_error])));
    const conversationId = recordOf(log, 'conversation.created');
    const customerId = recordOf(log, 'customer.created');
    assert.ok(conversationId && customerId, JSON.stringify(log));

    assert.equal(krayin.persons.length, 1);
    assert.deepEqual(krayin.persons[0].contact_numbers, [{ value: from, label: 'work' }]);
    const [lead] = krayin.leads;
    const [conversation] = conversationActivities(krayin);
    assert.ok(conversation, JSON.stringify(krayin.activities.map((a) => a.title)));
    assert.equal(conversation.title, `Conversation #${conversationId}`);
    assert.equal(conversation.type, 'call', 'WhatsApp is a call');
    assert.equal(conversation.is_done, 0, 'open');
    assert.deepEqual(conversation.lead_ids, [lead.id]);
    const [received] = messageActivities(krayin);
    assert.ok(received, 'the message');
    assert.equal(received.title, `Message from Grace Hopper - Conversation #${conversationId}`);
    assert.equal(received.type, 'call');
    assert.equal(received.is_done, 1);
    assert.match(received.comment, /Can I get a quote for 40 seats\?/);

    const sent = await api(business.key, 'POST', '/api-send-message', { customer_id: customerId, channel: 'whatsapp', content: 'Yes: 40 seats at 12 EUR each.' });
    assert.equal(sent.status, 202, sent.text);
    await waitFor(() => messageActivities(krayin).some((a) => (a.comment ?? '').includes('40 seats at 12 EUR')), 30_000, 'the sent message in Krayin');
    const reply = messageActivities(krayin).find((a) => a.comment.includes('40 seats at 12 EUR'));
    assert.match(reply.title, new RegExp(`^Message from .+ - Conversation #${conversationId}$`));
    assert.equal(reply.type, 'call');
    assert.equal(reply.is_done, 1);
    await waitFor(async () => (await syncLog(connector.id)).some((e) => e.operation === 'message.sent' && e.status === 'succeeded'), 20_000, 'message.sent synced');

    const patched = await api(business.key, 'PATCH', `/api-conversations/${conversationId}`, { status: 'resolved' });
    assert.equal(patched.status, 200, patched.text);
    await waitFor(() => conversation.is_done === 1, 20_000, 'the conversation’s activity done');
    assert.equal(conversationActivities(krayin).length, 1, 'the same activity');
    assert.equal(messageActivities(krayin).length, 2);
    const linked = await krayinContact(connector.id, customerId);
    assert.equal(linked.status, 200, linked.text);
    assert.deepEqual([linked.body.person_id, linked.body.lead_id], [krayin.persons[0].id, lead.id]);
  });

  test('twenty messages from one new customer at once make exactly one person, one lead and one conversation', async () => {
    const { business, connector, krayin } = await setUp();
    const whatsapp = await whatsappOf(business);
    const from = uniquePhone();
    await Promise.all(Array.from({ length: 20 }, (_, i) => receiveWhatsapp(whatsapp, { from, text: `burst message ${i}.` })));
    const log = await settledLog(connector.id, 22, 90_000);
    assert.equal(log.length, 22, 'the customer, the conversation and twenty messages');
    assert.ok(log.every((entry) => entry.status === 'succeeded'), JSON.stringify(log.filter((e) => e.status !== 'succeeded')));
    assert.equal(krayin.persons.length, 1, 'one person');
    assert.equal(krayin.leads.length, 1, 'one lead');
    assert.equal(conversationActivities(krayin).length, 1, 'one conversation');
    const texts = messageActivities(krayin).map((a) => /burst message (\d+)\./.exec(a.comment)?.[1]);
    assert.equal(texts.length, 20, 'every message once');
    assert.deepEqual(new Set(texts).size, 20, `each message once: ${texts}`);
  });

  test('with message sync off messages are skipped; with conversation sync off conversations are', async () => {
    const messagesOff = await setUp({ settings: { sync_messages: false } });
    await receiveWhatsapp(await whatsappOf(messagesOff.business), { from: uniquePhone(), text: 'not in Krayin' });
    const log = await settledLog(messagesOff.connector.id, 3);
    const received = log.find((entry) => entry.operation === 'message.received');
    assert.equal(received?.status, 'skipped', JSON.stringify(log));
    assert.ok(typeof received.last_error === 'string' && received.last_error.length > 0, 'says why');
    assert.equal(conversationActivities(messagesOff.krayin).length, 1, 'the conversation is synced');
    assert.equal(messageActivities(messagesOff.krayin).length, 0, 'its message is not');

    const conversationsOff = await setUp({ settings: { sync_conversations: false } });
    await receiveWhatsapp(await whatsappOf(conversationsOff.business), { from: uniquePhone(), text: 'no conversation in Krayin' });
    const otherLog = await settledLog(conversationsOff.connector.id, 3);
    const created = otherLog.find((entry) => entry.operation === 'conversation.created');
    assert.equal(created?.status, 'skipped', JSON.stringify(otherLog));
    assert.ok(typeof created.last_error === 'string' && created.last_error.length > 0, 'says why');
    assert.equal(conversationActivities(conversationsOff.krayin).length, 0, 'no conversation activity');
    assert.equal(conversationsOff.krayin.persons.length, 1, 'the customer is still synced');
  });
});

function pick(object, keys) {
  return Object.fromEntries(keys.map((key) => [key, object?.[key] ?? null]));
}
