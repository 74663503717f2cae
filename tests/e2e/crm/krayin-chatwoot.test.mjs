// The Krayin connector driven by Chatwoot's webhooks: the connector's settings checked against
// Krayin when saved, the signed receiver at /webhooks/chatwoot/{connector} (deduplicated by
// delivery id, refusing anything unsigned, stale, malformed or too large), a Chatwoot contact as
// one Krayin person and lead (its organization made once per company), conversations and messages
// as activities of the right type, the toggles honoured with a reason in the sync log, and stage
// progression that moves a lead forward once per step and never back.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { admin, assertError, newBusiness, request, unique, waitFor } from '../support.mjs';
import { uniquePhone } from '../receivers/webhook-api.mjs';
import {
  agent,
  chatwootWebhook,
  contact,
  contactCreated,
  contactUpdated,
  conversation,
  conversationCreated,
  conversationStatusChanged,
  message,
  messageCreated,
} from './chatwoot.mjs';
import {
  KRAYIN_USER,
  connectKustomer,
  connectorOf,
  kustomerOrg,
  krayinBusiness,
  krayinContact,
  krayinContactByExternalId,
  krayinWrites,
  settledLog,
  syncLog,
} from './connectors.mjs';

const servers = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function setUp(fields, serverOptions) {
  const setup = await krayinBusiness(fields, serverOptions);
  servers.push(setup.krayin);
  return setup;
}

/** Chatwoot ids are per installation; random ones keep every test's contacts apart. */
const chatwootId = () => randomInt(1_000, 2_000_000_000);

/** Delivers `payload` and asserts the receiver recorded work for it. */
async function queued(setup, payload, opts) {
  const res = await setup.chatwoot(payload, opts);
  assert.equal(res.status, 200, `${payload.event}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.match(String(res.body?.outcome), /^queued\b/, `${payload.event}: ${JSON.stringify(res.body)}`);
  return res;
}

const conversationActivities = (krayin) => krayin.activities.filter((a) => /^Conversation #/.test(a.title ?? ''));
const messageActivities = (krayin) => krayin.activities.filter((a) => (a.title ?? '').startsWith('Message from '));
const activityTitled = (krayin, title) => krayin.activities.find((a) => a.title === title);

/** A Chatwoot contact with the CRM attributes the integration's guide keeps. */
function jane(fields = {}) {
  return contact({
    id: chatwootId(),
    name: 'Jane Doe',
    email: `${unique('jane')}@example.com`,
    phone_number: uniquePhone(),
    ...fields,
  });
}

describe('the connector API', () => {
  test('a Krayin connector has Krayin’s budget, a Chatwoot webhook path and no secret shown; the connection test says what Krayin said', async () => {
    const { connector, krayin, apiToken, webhookSecret } = await setUp({ rate_limit: undefined });
    assert.equal(connector.kind, 'krayin');
    assert.equal(connector.webhook_path, `/webhooks/chatwoot/${connector.id}`);
    assert.deepEqual([...connector.secrets_set].sort(), ['api_token', 'webhook_secret']);
    assert.deepEqual(connector.rate_limit, { per_minute: 60, per_second: null, per_day: null }, 'Krayin’s own 60 a minute by default');
    const settings = connector.settings;
    assert.ok(String(settings.base_url).startsWith(krayin.origin), `base_url ${settings.base_url}`);
    assert.deepEqual(
      [settings.sync_organizations, settings.sync_conversations, settings.sync_messages, settings.stage_progression],
      [true, true, true, false],
      'the toggles’ defaults',
    );
    const shown = JSON.stringify(connector);
    assert.ok(!shown.includes(apiToken.split('|')[1]), 'the API token is not shown');
    assert.ok(!shown.includes(webhookSecret), 'the webhook secret is not shown');
    assert.ok(connector.status && typeof connector.status === 'object', 'the status is shown');
    const read = await connectorOf(connector.id);
    assert.equal(read.kind, 'krayin');
    assert.equal(read.webhook_path, connector.webhook_path);
    assert.ok(!JSON.stringify(read).includes(apiToken.split('|')[1]));

    const ok = await admin('POST', `/admin/connectors/${connector.id}/test`);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.ok, true, ok.text);
    assert.equal(ok.body.user?.email, KRAYIN_USER.email, `the token’s user: ${ok.text}`);
    assert.ok(krayin.requests.some((r) => r.path === '/api/v1/get'), 'the test asked Krayin who the token is');

    const badToken = await admin('PATCH', `/admin/connectors/${connector.id}`, { secrets: { api_token: `1|${'x'.repeat(40)}` } });
    assert.equal(badToken.status, 200, badToken.text);
    const refused = await admin('POST', `/admin/connectors/${connector.id}/test`);
    assert.equal(refused.status, 200, refused.text);
    assert.equal(refused.body.ok, false, refused.text);
    assert.equal(refused.body.status, 401, refused.text);
    assert.ok(typeof refused.body.reason === 'string' && refused.body.reason.length > 0, `a reason: ${refused.text}`);

    await krayin.down();
    try {
      const unreachable = await admin('POST', `/admin/connectors/${connector.id}/test`);
      assert.equal(unreachable.status, 200, unreachable.text);
      assert.equal(unreachable.body.ok, false, unreachable.text);
      assert.ok(typeof unreachable.body.reason === 'string' && unreachable.body.reason.length > 0, unreachable.text);
    } finally {
      await krayin.up();
    }
  });

  test('settings are checked when saved, the pipeline and its stages against Krayin’s pipelines', async () => {
    const { business, connector: first, krayin, apiToken } = await setUp();
    const base = { base_url: krayin.origin };
    const invalid = [
      ['no API token', { kind: 'krayin', settings: base, secrets: {} }, 'secrets.api_token'],
      ['no address', { kind: 'krayin', settings: {}, secrets: { api_token: apiToken } }, 'settings.base_url'],
      ['a toggle that is not a boolean', { kind: 'krayin', settings: { ...base, sync_messages: 'yes' }, secrets: { api_token: apiToken } }, 'settings.sync_messages'],
      ['a misspelt setting', { kind: 'krayin', settings: { ...base, sync_message: false }, secrets: { api_token: apiToken } }, 'settings'],
      ['a pipeline Krayin does not have', { kind: 'krayin', settings: { ...base, pipeline_id: 99 }, secrets: { api_token: apiToken } }, 'settings.pipeline_id'],
      [
        'a stage of another pipeline',
        { kind: 'krayin', settings: { ...base, pipeline_id: 1, stage_progression: true, stage_on_conversation_created: 8 }, secrets: { api_token: apiToken } },
        'settings.stage_on_conversation_created',
      ],
      [
        'a stage not in the default pipeline, where leads go without pipeline_id',
        { kind: 'krayin', settings: { ...base, stage_progression: true, stage_on_resolved: 9 }, secrets: { api_token: apiToken } },
        'settings.stage_on_resolved',
      ],
      [
        'a stage Krayin does not have',
        { kind: 'krayin', settings: { ...base, pipeline_id: 2, stage_progression: true, stage_on_first_response: 99 }, secrets: { api_token: apiToken } },
        'settings.stage_on_first_response',
      ],
    ];
    for (const [description, body, field] of invalid) {
      const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, body);
      const error = assertError(res, 422, 'validation_failed', description);
      if (field === 'settings') assert.ok(error.field?.startsWith('settings'), `${description}: field ${error.field}`);
      else assert.equal(error.field, field, `${description}: the field at fault`);
    }

    const before = krayin.requests.filter((r) => r.path === '/api/v1/settings/pipelines').length;
    const staged = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      name: 'Partnerships',
      settings: { ...base, pipeline_id: 2, stage_progression: true, stage_on_conversation_created: 7, stage_on_first_response: 8, stage_on_resolved: 9 },
      secrets: { api_token: apiToken },
      rate_limit: { per_minute: null, per_second: null, per_day: null },
    });
    assert.equal(staged.status, 201, staged.text);
    assert.ok(krayin.requests.filter((r) => r.path === '/api/v1/settings/pipelines').length > before, 'Krayin’s pipelines were read');
    assert.deepEqual(
      [staged.body.settings.pipeline_id, staged.body.settings.stage_on_conversation_created, staged.body.settings.stage_on_first_response, staged.body.settings.stage_on_resolved],
      [2, 7, 8, 9],
    );

    const wrongStage = await admin('PATCH', `/admin/connectors/${staged.body.id}`, { settings: { stage_on_resolved: 5 } });
    assert.equal(assertError(wrongStage, 422, 'validation_failed', 'a PATCH to a stage of another pipeline').field, 'settings.stage_on_resolved');
    const otherPipeline = await admin('PATCH', `/admin/connectors/${staged.body.id}`, { settings: { pipeline_id: 1 } });
    const field = assertError(otherPipeline, 422, 'validation_failed', 'a PATCH to a pipeline the stages are not in').field;
    assert.match(field ?? '', /^settings\.stage_on_/, 'the stages no longer fit the pipeline');
    const unknownPipeline = await admin('PATCH', `/admin/connectors/${first.id}`, { settings: { pipeline_id: 42 } });
    assert.equal(assertError(unknownPipeline, 422, 'validation_failed', 'a PATCH to an unknown pipeline').field, 'settings.pipeline_id');
    const kept = await connectorOf(staged.body.id);
    assert.equal(kept.settings.stage_on_resolved, 9, 'a refused PATCH changes nothing');
    assert.equal(kept.settings.pipeline_id, 2);
  });
});

describe('the Chatwoot receiver', () => {
  test('a signed delivery is queued once; the same delivery again is a duplicate and does nothing; other events are ignored', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    const person = jane();
    const event = contactCreated(person);
    const first = await queued(setup, event);
    await waitFor(() => krayin.persons.length === 1 && krayin.leads.length === 1, 20_000, 'the person and lead');
    const again = await setup.chatwoot(contactCreated(person), { delivery: first.delivery });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.match(String(again.body?.outcome), /^duplicate\b/, JSON.stringify(again.body));
    // The delivery id is not signed: the same signed body under a new id is still the same delivery.
    const replayed = await setup.chatwoot(event, { delivery: 'f00dface-0000-4000-8000-000000000001' });
    assert.equal(replayed.status, 200, JSON.stringify(replayed.body));
    assert.match(String(replayed.body?.outcome), /^duplicate\b/, JSON.stringify(replayed.body));

    for (const event of ['conversation_typing_on', 'webwidget_triggered', 'contact_merged']) {
      const res = await setup.chatwoot({ event, id: person.id, account: person.account });
      assert.equal(res.status, 200, `${event}: ${JSON.stringify(res.body)}`);
      assert.match(String(res.body?.outcome), /^ignored: ./, `${event}: ${JSON.stringify(res.body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const log = await settledLog(connector.id, 1);
    assert.deepEqual(log.map((entry) => [entry.operation, entry.status, entry.customer_id]), [['chatwoot.contact_created', 'succeeded', `chatwoot:${person.id}`]]);
    assert.equal(krayin.persons.length, 1, 'one person');
    assert.equal(krayin.leads.length, 1, 'one lead');
  });

  test('unsigned, mis-signed, stale, malformed and oversized deliveries are refused; unknown connectors are 404', async () => {
    const setup = await setUp();
    const { connector, krayin, webhookSecret } = setup;
    const path = connector.webhook_path;
    const payload = contactCreated(jane());
    const post = ({ headers, body }, to = path) => request('POST', to, { body, headers });
    const now = Math.floor(Date.now() / 1000);

    const unsigned = chatwootWebhook(null, payload);
    const otherSecret = chatwootWebhook('not-the-secret', payload);
    const signed = chatwootWebhook(webhookSecret, payload);
    const tampered = { headers: signed.headers, body: signed.body.replace('Jane Doe', 'Jane Dough') };
    const stale = chatwootWebhook(webhookSecret, payload, { timestamp: now - 400 });
    const future = chatwootWebhook(webhookSecret, payload, { timestamp: now + 400 });
    const noTimestamp = chatwootWebhook(webhookSecret, payload);
    delete noTimestamp.headers['X-Chatwoot-Timestamp'];
    const garbled = chatwootWebhook(webhookSecret, payload);
    garbled.headers['X-Chatwoot-Signature'] = 'md5=abc';
    for (const [delivery, why] of [
      [unsigned, 'no signature'],
      [otherSecret, 'signed with another secret'],
      [tampered, 'a body changed after signing'],
      [stale, 'a timestamp 400 s old (a replayed capture)'],
      [future, 'a timestamp 400 s ahead'],
      [noTimestamp, 'no timestamp'],
      [garbled, 'a signature not of Chatwoot’s form'],
    ]) {
      assertError(await post(delivery), 401, 'unauthorized', why);
    }

    for (const [raw, why] of [
      ['{not json', 'not JSON'],
      ['[]', 'not an object'],
      ['"contact_created"', 'a string'],
      ['{"id": 5}', 'no event'],
      ['{"event": 5, "id": 5}', 'an event that is not text'],
    ]) {
      assertError(await post(chatwootWebhook(webhookSecret, raw)), 400, 'malformed_request', why);
    }

    const huge = chatwootWebhook(webhookSecret, `{"event":"contact_created","id":1,"pad":"${'x'.repeat(1024 * 1024)}"}`);
    assertError(await post(huge), 413, 'payload_too_large', 'over 1 MiB');
    assertError(await request('GET', path), 405, 'method_not_allowed', 'GET');

    const kustomer = await kustomerOrg();
    servers.push(kustomer.kustomer);
    const kustomerConnector = await connectKustomer(await newBusiness(), kustomer);
    for (const [id, why] of [
      ['00000000-0000-4000-8000-000000000000', 'no such connector'],
      [kustomerConnector.id, 'a Kustomer connector'],
      ['not-a-connector', 'not a connector id'],
    ]) {
      assertError(await post(chatwootWebhook(webhookSecret, payload), `/webhooks/chatwoot/${id}`), 404, 'not_found', why);
    }

    const secretless = await setUp({ secrets: { webhook_secret: null } });
    assert.deepEqual(secretless.connector.secrets_set, ['api_token']);
    assertError(await post(chatwootWebhook(webhookSecret, payload), secretless.connector.webhook_path), 401, 'unauthorized', 'a connector without a webhook secret');
    assertError(await post(chatwootWebhook(null, payload), secretless.connector.webhook_path), 401, 'unauthorized', 'unsigned, to a connector without a secret');

    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.deepEqual(krayinWrites(krayin), [], 'nothing refused reached Krayin');
    assert.deepEqual(krayinWrites(secretless.krayin), []);
    assert.deepEqual(await syncLog(connector.id), [], 'nothing refused was recorded');
  });
});

describe('contacts', () => {
  test('a Chatwoot contact becomes one person and one lead with its details; an update changes both and makes no second', async () => {
    const setup = await setUp({ settings: { pipeline_id: 2, lead_source_id: 2, lead_type_id: 1, user_id: 1 } });
    const { connector, krayin } = setup;
    const attributes = { job_title: 'VP of Engineering', company_name: 'Acme Corp', company_city: 'San Francisco', lead_value: 75000 };
    const person = jane({ additional_attributes: attributes });
    await queued(setup, contactCreated(person));
    await waitFor(() => krayin.persons.length === 1 && krayin.leads.length === 1, 20_000, 'the person and lead');
    await settledLog(connector.id, 1);

    const [stored] = krayin.persons;
    assert.equal(stored.name, 'Jane Doe');
    assert.deepEqual(stored.emails, [{ value: person.email, label: 'work' }]);
    assert.deepEqual(stored.contact_numbers, [{ value: person.phone_number, label: 'work' }]);
    assert.equal(stored.job_title, 'VP of Engineering');
    assert.equal(krayin.organizations.length, 1, 'the company as an organization');
    const [organization] = krayin.organizations;
    assert.equal(organization.name, 'Acme Corp');
    assert.equal(stored.organization_id, organization.id);

    const [lead] = krayin.leads;
    assert.equal(lead.title, 'Jane Doe');
    assert.equal(lead.person_id, stored.id);
    assert.equal(Number(lead.lead_value), 75000);
    assert.ok(typeof lead.description === 'string' && lead.description.trim().length > 0, `a description: ${JSON.stringify(lead.description)}`);
    assert.deepEqual([lead.lead_pipeline_id, lead.lead_pipeline_stage_id], [2, 7], 'the first stage of the configured pipeline');
    assert.deepEqual([lead.lead_source_id, lead.lead_type_id, lead.user_id], [2, 1, 1], 'source, type and owner from the settings');

    const expected = {
      contact: `chatwoot:${person.id}`,
      external_id: `krayin:person:${stored.id}|krayin:lead:${lead.id}|krayin:organization:${organization.id}`,
      person_id: stored.id,
      lead_id: lead.id,
      organization_id: organization.id,
    };
    const linked = await krayinContact(connector.id, `chatwoot:${person.id}`);
    assert.equal(linked.status, 200, linked.text);
    assert.deepEqual(pick(linked.body, Object.keys(expected)), expected);
    for (const externalId of [`krayin:person:${stored.id}`, expected.external_id]) {
      const found = await krayinContactByExternalId(connector.id, externalId);
      assert.equal(found.status, 200, `${externalId}: ${found.text}`);
      assert.deepEqual(pick(found.body, Object.keys(expected)), expected, externalId);
    }
    assert.equal((await krayinContactByExternalId(connector.id, `krayin:person:${stored.id + 1000}`)).status, 404, 'no contact of that person');
    assert.equal((await krayinContact(connector.id, `chatwoot:${person.id + 1}`)).status, 404, 'no such contact');

    const renamed = { ...person, name: 'Jane Q. Doe', additional_attributes: { ...attributes, job_title: 'CTO' } };
    await queued(setup, contactUpdated(renamed, { name: ['Jane Doe', 'Jane Q. Doe'] }));
    await waitFor(() => krayin.persons[0].name === 'Jane Q. Doe' && krayin.leads[0].title === 'Jane Q. Doe', 20_000, 'the person and lead renamed');
    assert.equal(krayin.persons[0].job_title, 'CTO');
    assert.equal(krayin.persons.length, 1, 'updated, not created again');
    assert.equal(krayin.leads.length, 1, 'one lead');
    assert.equal(krayin.organizations.length, 1, 'one organization');
    assert.equal(krayin.leads[0].lead_pipeline_stage_id, 7, 'the update keeps the lead where it stands');
    const log = await settledLog(connector.id, 2);
    assert.deepEqual(log.map((entry) => [entry.operation, entry.status, entry.customer_id]), [
      ['chatwoot.contact_updated', 'succeeded', `chatwoot:${person.id}`],
      ['chatwoot.contact_created', 'succeeded', `chatwoot:${person.id}`],
    ]);
  });

  test('without a pipeline the lead starts in Krayin’s default one; contacts with only an email or only a phone are persons too', async () => {
    const setup = await setUp({ settings: { default_lead_value: 500 } });
    const { connector, krayin } = setup;
    const emailOnly = contact({ id: chatwootId(), name: 'Only Email', email: `${unique('only')}@example.com` });
    const phoneOnly = contact({ id: chatwootId(), name: 'Only Phone', phone_number: uniquePhone() });
    await queued(setup, contactCreated(emailOnly));
    await queued(setup, contactCreated(phoneOnly));
    const log = await settledLog(connector.id, 2);
    assert.deepEqual(log.map((entry) => entry.status), ['succeeded', 'succeeded'], JSON.stringify(log.map((e) => e.last_error)));
    assert.equal(krayin.persons.length, 2);
    assert.equal(krayin.leads.length, 2);
    const byName = (name) => krayin.persons.find((p) => p.name === name);
    assert.deepEqual(byName('Only Email').emails, [{ value: emailOnly.email, label: 'work' }]);
    assert.ok(byName('Only Email').contact_numbers.every((n) => !n.value), 'no number made up');
    assert.deepEqual(byName('Only Phone').contact_numbers, [{ value: phoneOnly.phone_number, label: 'work' }]);
    assert.deepEqual(byName('Only Phone').emails, []);
    for (const lead of krayin.leads) {
      assert.deepEqual([lead.lead_pipeline_id, lead.lead_pipeline_stage_id], [1, 1], 'the default pipeline’s first stage');
      assert.equal(Number(lead.lead_value), 500, 'the default lead value');
    }
    assert.equal(krayin.organizations.length, 0, 'no company, no organization');
    const linked = await krayinContact(connector.id, `chatwoot:${emailOnly.id}`);
    assert.equal(linked.status, 200, linked.text);
    assert.equal(linked.body.organization_id ?? null, null);
    assert.doesNotMatch(linked.body.external_id, /organization/);
  });

  test('two contacts of one company share one organization, and an organization Krayin already has is reused', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    const globex = krayin.seedOrganization({ name: 'Globex' });
    const first = jane({ name: 'Ann Initech', additional_attributes: { company_name: 'Initech' } });
    const second = jane({ name: 'Bob Initech', additional_attributes: { company_name: 'Initech', company_city: 'Austin' } });
    const third = jane({ name: 'Cid Globex', additional_attributes: { company_name: 'Globex' } });
    await queued(setup, contactCreated(first));
    await settledLog(connector.id, 1);
    await queued(setup, contactCreated(second));
    await settledLog(connector.id, 2);
    await queued(setup, contactCreated(third));
    const log = await settledLog(connector.id, 3);
    assert.ok(log.every((entry) => entry.status === 'succeeded'), JSON.stringify(log.map((e) => [e.status, e.last_error])));
    assert.equal(krayin.persons.length, 3);
    assert.deepEqual(krayin.organizations.map((o) => o.name).sort(), ['Globex', 'Initech'], 'Initech made once, Globex not again');
    const initech = krayin.organizations.find((o) => o.name === 'Initech');
    const byName = (name) => krayin.persons.find((p) => p.name === name);
    assert.equal(byName('Ann Initech').organization_id, initech.id);
    assert.equal(byName('Bob Initech').organization_id, initech.id);
    assert.equal(byName('Cid Globex').organization_id, globex.id);
  });
});

describe('conversations and messages', () => {
  test('a WhatsApp conversation is a call on the lead, its messages done calls with their text and files, and resolving it marks it done', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    const person = jane({ name: 'Wendy Whatsapp' });
    const display = randomInt(1, 100_000);
    const conv = conversation({ id: display, inbox: 'whatsapp', contact: person });
    await queued(setup, contactCreated(person));
    await queued(setup, conversationCreated(conv));
    const receipt = 'https://chat.acme.example/rails/active_storage/blobs/receipt.png';
    await queued(setup, messageCreated(message({ id: chatwootId(), conversation: conv, content: 'Here is my receipt', attachments: [{ id: 1, file_type: 'image', data_url: receipt, thumb_url: receipt }] })));
    await queued(setup, messageCreated(message({ id: chatwootId(), conversation: conv, message_type: 'outgoing', content: 'Thanks, a quote follows' })));
    let entries = 4;
    const system = await setup.chatwoot(messageCreated(message({ id: chatwootId(), conversation: conv, message_type: 'activity', content: 'Conversation was resolved by Priya Raman', sender: null })));
    assert.equal(system.status, 200, JSON.stringify(system.body));
    if (/^queued\b/.test(String(system.body?.outcome))) entries += 1;
    await settledLog(connector.id, entries);

    const [lead] = krayin.leads;
    const title = `Conversation #${display}`;
    const activity = activityTitled(krayin, title);
    assert.ok(activity, `an activity titled ${title}: ${JSON.stringify(krayin.activities.map((a) => a.title))}`);
    assert.equal(activity.type, 'call', 'WhatsApp is a call');
    assert.equal(activity.is_done, 0, 'open while the conversation is');
    assert.deepEqual(activity.lead_ids, [lead.id], 'on the lead');

    const incoming = activityTitled(krayin, `Message from Wendy Whatsapp - Conversation #${display}`);
    assert.ok(incoming, `the contact’s message: ${JSON.stringify(krayin.activities.map((a) => a.title))}`);
    assert.equal(incoming.type, 'call');
    assert.equal(incoming.is_done, 1, 'a message happened: done');
    assert.match(incoming.comment, /Here is my receipt/);
    assert.ok(incoming.comment.includes(receipt), `the file’s link: ${incoming.comment}`);
    assert.deepEqual(incoming.lead_ids, [lead.id]);
    const outgoing = activityTitled(krayin, `Message from ${agent().name} - Conversation #${display}`);
    assert.ok(outgoing, 'the agent’s message');
    assert.equal(outgoing.is_done, 1);
    assert.match(outgoing.comment, /Thanks, a quote follows/);
    assert.ok(!krayin.activities.some((a) => (a.comment ?? '').includes('was resolved by')), 'Chatwoot’s activity messages are not messages');
    assert.equal(krayin.activities.length, 3);

    const linked = await krayinContact(connector.id, `chatwoot:${person.id}`);
    assert.equal(linked.status, 200, linked.text);
    assert.ok(linked.body.external_id.split('|').includes(`krayin:activity:${activity.id}`), `the conversation’s activity in ${linked.body.external_id}`);

    await queued(setup, conversationStatusChanged({ ...conv, status: 'resolved' }, 'open'));
    await waitFor(() => activity.is_done === 1, 20_000, 'the conversation’s activity done');
    const log = await settledLog(connector.id, entries + 1);
    assert.equal(conversationActivities(krayin).length, 1, 'the same activity, not a new one');
    assert.equal(krayin.activities.length, 3);
    assert.deepEqual(
      log.filter((entry) => entry.status !== 'skipped').map((entry) => [entry.operation, entry.status]),
      [
        ['chatwoot.conversation_status_changed', 'succeeded'],
        ['chatwoot.message_created', 'succeeded'],
        ['chatwoot.message_created', 'succeeded'],
        ['chatwoot.conversation_created', 'succeeded'],
        ['chatwoot.contact_created', 'succeeded'],
      ],
    );
    assert.ok(log.every((entry) => entry.customer_id === `chatwoot:${person.id}`));
  });

  test('SMS and WhatsApp conversations are calls, email ones emails; web widget, API and other inboxes are notes', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    const person = jane({ name: 'Multi Channel' });
    await queued(setup, contactCreated(person));
    const inboxes = [
      ['whatsapp', 'call'],
      ['sms', 'call'],
      [{ id: 9, name: 'Bandwidth SMS', channel: 'Channel::Sms' }, 'call'],
      ['email', 'email'],
      ['web', 'note'],
      ['api', 'note'],
      [{ id: 10, name: 'Telegram', channel: 'Channel::Telegram' }, 'note'],
    ];
    const conversations = inboxes.map(([inbox, type], i) => [conversation({ id: 500 + i, inbox, contact: person }), type]);
    for (const [conv] of conversations) await queued(setup, conversationCreated(conv));
    const email = conversations[3][0];
    await queued(setup, messageCreated(message({ id: chatwootId(), conversation: email, content: 'Please send the invoice by mail' })));
    const log = await settledLog(connector.id, inboxes.length + 2);
    assert.ok(log.every((entry) => entry.status === 'succeeded'), JSON.stringify(log.map((e) => [e.operation, e.status, e.last_error])));
    for (const [conv, type] of conversations) {
      const activity = activityTitled(krayin, `Conversation #${conv.id}`);
      assert.ok(activity, `${conv.channel}: an activity`);
      assert.equal(activity.type, type, `${conv.channel} is a ${type}`);
    }
    const mail = messageActivities(krayin);
    assert.equal(mail.length, 1);
    assert.equal(mail[0].type, 'email', 'an email message is an email activity, as the guide’s channel table says');
    assert.ok(mail[0].schedule_from && mail[0].schedule_to, 'an email is scheduled at the message time, as Krayin wants of every type but note and file');
    assert.equal(mail[0].is_done, 1, 'and marked done: it happened');
  });

  test('with the toggles off nothing is made in Krayin for them, and the sync log says skipped', async () => {
    const off = await setUp({ settings: { sync_organizations: false, sync_conversations: false, sync_messages: false } });
    const person = jane({ name: 'Toggle Off', additional_attributes: { company_name: 'Hidden Co' } });
    const conv = conversation({ id: randomInt(1, 100_000), inbox: 'web', contact: person });
    await queued(off, contactCreated(person));
    await queued(off, conversationCreated(conv));
    await queued(off, messageCreated(message({ id: chatwootId(), conversation: conv, content: 'not synced' })));
    const log = await settledLog(off.connector.id, 3);
    assert.deepEqual(
      log.map((entry) => [entry.operation, entry.status]).sort(),
      [
        ['chatwoot.contact_created', 'succeeded'],
        ['chatwoot.conversation_created', 'skipped'],
        ['chatwoot.message_created', 'skipped'],
      ],
    );
    for (const entry of log.filter((e) => e.status === 'skipped')) {
      assert.ok(typeof entry.last_error === 'string' && entry.last_error.length > 0, `${entry.operation} says why it was skipped`);
    }
    assert.equal(off.krayin.persons.length, 1, 'the contact is still synced');
    assert.equal(off.krayin.leads.length, 1);
    assert.equal(off.krayin.persons[0].organization_id, null, 'no organization linked');
    assert.equal(off.krayin.organizations.length, 0, 'no organization made');
    assert.equal(off.krayin.activities.length, 0, 'no activity');

    const messagesOff = await setUp({ settings: { sync_messages: false } });
    const other = jane({ name: 'Messages Off' });
    const otherConv = conversation({ id: randomInt(1, 100_000), inbox: 'whatsapp', contact: other });
    await queued(messagesOff, contactCreated(other));
    await queued(messagesOff, conversationCreated(otherConv));
    await queued(messagesOff, messageCreated(message({ id: chatwootId(), conversation: otherConv, content: 'not synced either' })));
    const otherLog = await settledLog(messagesOff.connector.id, 3);
    assert.equal(otherLog.find((e) => e.operation === 'chatwoot.message_created').status, 'skipped');
    assert.equal(otherLog.find((e) => e.operation === 'chatwoot.conversation_created').status, 'succeeded');
    assert.equal(conversationActivities(messagesOff.krayin).length, 1, 'the conversation is synced');
    assert.equal(messageActivities(messagesOff.krayin).length, 0, 'its messages are not');
  });

  test('stage progression moves the lead forward once per step and never back', async () => {
    const setup = await setUp({
      settings: { pipeline_id: 1, stage_progression: true, stage_on_conversation_created: 2, stage_on_first_response: 3, stage_on_resolved: 4 },
    });
    const { connector, krayin } = setup;
    const person = jane({ name: 'Stage Walker' });
    const conv = conversation({ id: randomInt(1, 100_000), inbox: 'web', contact: person, assignee: agent() });
    let entries = 0;
    const step = async (payload, stage, description) => {
      await queued(setup, payload);
      entries += 1;
      const log = await settledLog(connector.id, entries);
      assert.equal(log[0].status, 'succeeded', `${description}: ${JSON.stringify(log[0])}`);
      assert.equal(krayin.leads.length, 1, `${description}: one lead`);
      assert.equal(krayin.leads[0].lead_pipeline_stage_id, stage, `${description}: the lead’s stage`);
    };
    const say = (fields) => messageCreated(message({ id: chatwootId(), conversation: conv, ...fields }));

    await step(contactCreated(person), 1, 'a new contact');
    await step(conversationCreated(conv), 2, 'a conversation started');
    await step(say({ content: 'Hello?' }), 2, 'the contact writes');
    await step(say({ message_type: 'outgoing', private: true, content: 'internal: VIP' }), 2, 'a private note is no response');
    await step(say({ message_type: 'outgoing', content: 'Hi! How can I help?' }), 3, 'the first agent response');
    await step(say({ message_type: 'outgoing', content: 'Anything else?' }), 3, 'a second response');
    await step(conversationStatusChanged({ ...conv, status: 'resolved' }, 'open'), 4, 'resolved');
    const next = conversation({ id: conv.id + 1, inbox: 'web', contact: person });
    await step(conversationCreated(next), 4, 'a new conversation does not move it back');
    await step(messageCreated(message({ id: chatwootId(), conversation: next, message_type: 'outgoing', content: 'Welcome back' })), 4, 'nor its first response');
    await step(contactUpdated({ ...person, name: 'Stage Walker Jr' }, { name: ['Stage Walker', 'Stage Walker Jr'] }), 4, 'nor a contact update');

    assert.deepEqual(
      krayin.leads[0].stageHistory.map((move) => [move.from, move.to]),
      [[null, 1], [1, 2], [2, 3], [3, 4]],
      `each move once: ${JSON.stringify(krayin.leads[0].stageHistory)}`,
    );
  });
});

function pick(object, keys) {
  return Object.fromEntries(keys.map((key) => [key, object?.[key] ?? null]));
}
