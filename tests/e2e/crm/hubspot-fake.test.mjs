// The local HubSpot server on its own, without our stack: that it answers as HubSpot does (and as
// the native fake of the pipelines tests does), so that a failing end-to-end test of the connector
// points at the connector, not at the fake.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import {
  CONTACTS_READ,
  OWNERS_READ,
  PORTAL_ID,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  UNAUTHENTICATED,
  hubspotSignatureV3,
  startHubSpot,
} from './hubspot.mjs';

const TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const READER = 'pat-na1-reader';
const OBJECTS = '/crm/objects/2026-03';
const REDIRECT = 'http://127.0.0.1:9/hubspot/callback?tenant=acme';

const TOKENS = {
  [TOKEN]: {},
  [READER]: { scopes: [CONTACTS_READ] },
};

const APPS = {
  'client-1': {
    clientSecret: 'secret-1',
    redirectUris: [REDIRECT],
    scopes: ['oauth', CONTACTS_READ, OWNERS_READ],
    name: 'crm-edge',
  },
};

/** A client of `h` with `token`: `call(method, path, body?)` resolves to `{ status, headers, body }`. */
function client(h, token) {
  return async (method, path, body, init = {}) => {
    const headers = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(h.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      ...init,
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
}

function assertError(response, status, category, description) {
  assert.equal(response.status, status, `${description}: status (${JSON.stringify(response.body)})`);
  assert.equal(response.body.status, 'error', `${description}: status field`);
  assert.equal(response.body.category, category, `${description}: category`);
  assert.equal(typeof response.body.message, 'string', `${description}: message`);
  assert.match(response.body.correlationId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${description}: correlationId`);
  return response.body;
}

async function postForm(url, fields) {
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
  return { status: response.status, body: await response.json() };
}

const EQ = (propertyName, value) => ({ filterGroups: [{ filters: [{ propertyName, operator: 'EQ', value }] }] });

describe('the HubSpot fake', () => {
  let h;
  let api;
  before(async () => {
    h = await startHubSpot({
      tokens: TOKENS,
      apps: APPS,
      owners: [{ email: 'agent@acme.example', firstName: 'Ana', lastName: 'Gent' }],
      contactProperties: [{ name: 'crm_edge_contact_id', unique: true }, { name: 'favourite_colour' }],
    });
    api = client(h, TOKEN);
  });
  after(() => h.close());

  test('refuses a missing or unknown token with 401 and a call without its scope with 403 naming the scope', async () => {
    for (const [description, token] of [['no token', null], ['unknown token', 'pat-na1-nobody']]) {
      const refused = assertError(await client(h, token)('GET', '/account-info/2026-03/details'), 401, 'INVALID_AUTHENTICATION', description);
      assert.equal(refused.message, UNAUTHENTICATED);
    }
    const reader = client(h, READER);
    const write = await reader('POST', `${OBJECTS}/contacts`, { properties: { email: 'nobody@example.com' } });
    const body = assertError(write, 403, 'MISSING_SCOPES', 'a read-only token writing');
    assert.deepEqual(body.errors[0].context.requiredGranularScopes, ['crm.objects.contacts.write']);
    const owners = await reader('GET', '/crm/v3/owners');
    assert.deepEqual(assertError(owners, 403, 'MISSING_SCOPES', 'owners').errors[0].context.requiredGranularScopes, [OWNERS_READ]);
    const tickets = await reader('GET', '/crm/pipelines/2026-03/tickets');
    assert.deepEqual(tickets.body.errors[0].context.requiredGranularScopes, ['tickets']);
    assert.equal((await reader('POST', `${OBJECTS}/contacts/search`, {})).status, 200, 'search is a read');
    assert.equal((await reader('GET', '/account-info/v3/details')).status, 200, 'any token reads the account details');
    assert.equal(h.contacts.length, 0, 'nothing was written');
  });

  test('describes the account on both paths', async () => {
    for (const path of ['/account-info/2026-03/details', '/account-info/v3/details']) {
      const { status, body } = await api('GET', path);
      assert.equal(status, 200);
      assert.equal(body.portalId, PORTAL_ID);
      assert.equal(body.accountType, 'STANDARD');
      assert.equal(body.timeZone, 'US/Eastern');
      assert.equal(body.companyCurrency, 'USD');
      assert.equal(body.uiDomain, 'app.hubspot.com');
      assert.equal(body.dataHostingLocation, 'na1');
      assert.equal(body.utcOffset, '-05:00');
    }
  });

  test('creates a contact, refuses a second with its email (any case) naming the first, and reads and patches it', async () => {
    const created = await api('POST', `${OBJECTS}/contacts`, {
      properties: { email: 'Ada@Example.com', firstname: 'Ada', phone: '+353 1 555 0101' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { id } = created.body;
    assert.match(id, /^\d+$/);
    assert.ok(Number(id) > 2 ** 32, 'ids are beyond 32 bits');
    assert.equal(created.body.properties.email, 'ada@example.com', 'emails are kept in lowercase');
    assert.equal(created.body.properties.hs_object_id, id);
    assert.equal(created.body.archived, false);
    assert.ok(!Number.isNaN(Date.parse(created.body.createdAt)));

    const conflict = await client(h, TOKEN)('POST', '/crm/v3/objects/contacts', { properties: { email: 'ADA@example.com' } });
    assert.equal(assertError(conflict, 409, 'CONFLICT', 'same email').message, `Contact already exists. Existing ID: ${id}`);

    const unknown = await api('POST', `${OBJECTS}/contacts`, { properties: { email: 'x@example.com', nickname: 'X' } });
    assert.equal(
      assertError(unknown, 400, 'VALIDATION_ERROR', 'unknown property').message,
      'Property values were not valid: [{"isValid":false,"message":"Property \\"nickname\\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"nickname"}]',
    );
    assert.equal(unknown.body.errors[0].code, 'PROPERTY_DOESNT_EXIST');

    const read = await api('GET', `${OBJECTS}/contacts/${id}?properties=phone,company`);
    assert.equal(read.status, 200);
    assert.equal(read.body.properties.phone, '+353 1 555 0101');
    assert.equal(read.body.properties.company, null, 'a property asked for but unset is null');
    assert.equal(read.body.properties.firstname, 'Ada', 'defaults come along');
    const byEmail = await api('GET', `${OBJECTS}/contacts/ADA%40example.com?idProperty=email`);
    assert.equal(byEmail.body.id, id);

    assertError(await api('GET', `${OBJECTS}/contacts/1`), 404, 'OBJECT_NOT_FOUND', 'unknown id');
    assertError(await api('PATCH', `${OBJECTS}/contacts/1`, { properties: { firstname: 'X' } }), 404, 'OBJECT_NOT_FOUND', 'patch unknown');

    const patched = await api('PATCH', `${OBJECTS}/contacts/${id}`, { properties: { lastname: 'Lovelace', phone: null } });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.properties.lastname, 'Lovelace');
    assert.equal(patched.body.properties.phone, undefined, 'null clears a property');
    assert.equal(h.contacts.find((c) => c.id === id).properties.lastname, 'Lovelace');
  });

  test('batch upsert creates what it does not find and updates what it does', async () => {
    const path = `${OBJECTS}/contacts/batch/upsert`;
    const first = await api('POST', path, {
      inputs: [{ id: 'Grace@Example.com', idProperty: 'email', properties: { firstname: 'Grace' } }],
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.status, 'COMPLETE');
    assert.ok(first.body.startedAt && first.body.completedAt);
    const [made] = first.body.results;
    assert.equal(made.new, true);
    assert.equal(made.properties.email, 'grace@example.com');

    const second = await api('POST', path, {
      inputs: [
        { id: 'grace@example.com', idProperty: 'email', properties: { lastname: 'Hopper' } },
        { id: 'chat-42', idProperty: 'crm_edge_contact_id', properties: { firstname: 'Alan' } },
      ],
    });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.deepEqual(second.body.results.map((r) => r.new), [false, true]);
    assert.equal(second.body.results[0].id, made.id);
    assert.equal(second.body.results[0].properties.firstname, 'Grace', 'what is not given is kept');
    assert.equal(second.body.results[0].properties.lastname, 'Hopper');
    assert.equal(second.body.results[1].properties.crm_edge_contact_id, 'chat-42');

    const notUnique = await api('POST', path, { inputs: [{ id: 'Alan', idProperty: 'firstname', properties: {} }] });
    assertError(notUnique, 400, 'VALIDATION_ERROR', 'firstname is not unique');
    const conflict = await api('POST', `${OBJECTS}/contacts`, { properties: { crm_edge_contact_id: 'chat-42' } });
    assert.equal(assertError(conflict, 409, 'CONFLICT', 'unique custom property').message, `Contact already exists. Existing ID: ${second.body.results[1].id}`);
  });

  test('search finds by EQ (email without case), pages, and refuses an unknown property', async () => {
    h.seedContact({ email: 'search-1@example.com', firstname: 'Searchable', favourite_colour: 'blue' });
    h.seedContact({ email: 'search-2@example.com', firstname: 'Searchable', favourite_colour: 'blue' });
    h.seedContact({ email: 'search-3@example.com', firstname: 'Searchable', favourite_colour: 'red' });

    const byEmail = await api('POST', `${OBJECTS}/contacts/search`, { ...EQ('email', 'SEARCH-2@example.com'), properties: ['favourite_colour'] });
    assert.equal(byEmail.status, 200);
    assert.equal(byEmail.body.total, 1);
    assert.equal(byEmail.body.results[0].properties.email, 'search-2@example.com');
    assert.equal(byEmail.body.results[0].properties.favourite_colour, 'blue');
    assert.equal(byEmail.body.paging, undefined);

    const both = await api('POST', `${OBJECTS}/contacts/search`, {
      filterGroups: [{ filters: [{ propertyName: 'firstname', operator: 'EQ', value: 'Searchable' }, { propertyName: 'favourite_colour', operator: 'EQ', value: 'blue' }] }],
      limit: 1,
    });
    assert.equal(both.body.total, 2);
    assert.equal(both.body.results.length, 1);
    assert.deepEqual(both.body.paging, { next: { after: '1' } });
    const next = await api('POST', `${OBJECTS}/contacts/search`, {
      filterGroups: [{ filters: [{ propertyName: 'firstname', operator: 'EQ', value: 'Searchable' }, { propertyName: 'favourite_colour', operator: 'EQ', value: 'blue' }] }],
      limit: 1,
      after: '1',
    });
    assert.equal(next.body.results[0].properties.email, 'search-2@example.com');

    const none = await api('POST', `${OBJECTS}/contacts/search`, EQ('email', 'nobody@example.com'));
    assert.deepEqual([none.body.total, none.body.results], [0, []]);
    const unknown = await api('POST', `${OBJECTS}/contacts/search`, EQ('nickname', 'x'));
    assert.match(assertError(unknown, 400, 'VALIDATION_ERROR', 'unknown filter property').message, /contact property "nickname" does not exist/);
  });

  test('creates engagements with their associations and refuses one that does not fit', async () => {
    const contact = h.seedContact({ email: 'engaged@example.com' });
    const to = (id, associationTypeId) => [{ to: { id }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId }] }];

    const note = await api('POST', `${OBJECTS}/notes`, {
      properties: { hs_timestamp: '2026-11-26T12:00:00Z', hs_note_body: 'Called back' },
      associations: to(contact.id, 202),
    });
    assert.equal(note.status, 201, JSON.stringify(note.body));
    assert.equal(note.body.properties.hs_timestamp, '2026-11-26T12:00:00.000Z');
    assert.deepEqual(h.notes.at(-1).associations, [
      { toObjectType: 'contacts', toObjectId: contact.id, associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 202, label: 'note_to_contact' },
    ]);
    const read = await api('GET', `${OBJECTS}/notes/${note.body.id}?associations=contacts`);
    assert.equal(read.body.associations.contacts.results[0].id, contact.id);

    const communication = await api('POST', `${OBJECTS}/communications`, {
      properties: { hs_communication_channel_type: 'WHATS_APP', hs_communication_logged_from: 'CRM', hs_communication_body: 'Hi!', hs_timestamp: 1_795_694_400_000 },
      associations: to(contact.id, 81),
    });
    assert.equal(communication.status, 201, JSON.stringify(communication.body));
    assert.equal(communication.body.properties.hs_timestamp, new Date(1_795_694_400_000).toISOString());
    const email = await api('POST', `${OBJECTS}/emails`, {
      properties: { hs_timestamp: '1795694400000', hs_email_direction: 'EMAIL', hs_email_subject: 'Hello' },
      associations: to(contact.id, 198),
    });
    assert.equal(email.status, 201, JSON.stringify(email.body));
    assert.equal(h.emails.at(-1).associations[0].associationTypeId, 198);

    const notesBefore = h.notes.length;
    for (const [description, body] of [
      ['no such contact', { properties: { hs_timestamp: '1795694400000' }, associations: to('1', 202) }],
      ['228 goes to a ticket', { properties: { hs_timestamp: '1795694400000' }, associations: to(contact.id, 228) }],
      ['16 goes from a ticket', { properties: { hs_timestamp: '1795694400000' }, associations: to(contact.id, 16) }],
      ['an unknown type', { properties: { hs_timestamp: '1795694400000' }, associations: to(contact.id, 99_999) }],
      ['no hs_timestamp', { properties: { hs_note_body: 'x' } }],
    ]) {
      assertError(await api('POST', `${OBJECTS}/notes`, body), 400, 'VALIDATION_ERROR', description);
    }
    assert.equal(h.notes.length, notesBefore, 'refused notes are not kept');

    const wrongChannel = await api('POST', `${OBJECTS}/communications`, {
      properties: { hs_communication_channel_type: 'WHATSAPP', hs_communication_logged_from: 'CRM', hs_timestamp: '1795694400000' },
    });
    assert.match(assertError(wrongChannel, 400, 'VALIDATION_ERROR', 'channel').message, /INVALID_OPTION/);
    const noChannel = await api('POST', `${OBJECTS}/communications`, { properties: { hs_communication_logged_from: 'CRM', hs_timestamp: '1795694400000' } });
    assert.match(assertError(noChannel, 400, 'VALIDATION_ERROR', 'no channel').message, /hs_communication_channel_type/);
  });

  test('keeps a ticket to a stage of its pipeline and lists pipelines and owners', async () => {
    const contact = h.seedContact({ email: 'ticketed@example.com' });
    const created = await api('POST', `${OBJECTS}/tickets`, {
      properties: { subject: 'Refund', hs_pipeline_stage: '1', hs_ticket_priority: 'HIGH' },
      associations: [{ to: { id: contact.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 16 }] }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.properties.hs_pipeline, '0', 'the first pipeline unless one is named');
    assert.equal(h.tickets.at(-1).associations[0].label, 'ticket_to_contact');

    const badStage = await api('POST', `${OBJECTS}/tickets`, { properties: { subject: 'Refund', hs_pipeline: '0', hs_pipeline_stage: '9' } });
    assert.match(assertError(badStage, 400, 'VALIDATION_ERROR', 'unknown stage').message, /"name":"hs_pipeline_stage"/);
    const noSubject = await api('POST', `${OBJECTS}/tickets`, { properties: { hs_pipeline_stage: '1' } });
    assert.match(assertError(noSubject, 400, 'VALIDATION_ERROR', 'no subject').message, /subject/);
    assertError(await api('PATCH', `${OBJECTS}/tickets/${created.body.id}`, { properties: { hs_pipeline_stage: '9' } }), 400, 'VALIDATION_ERROR', 'patch to an unknown stage');
    const moved = await api('PATCH', `${OBJECTS}/tickets/${created.body.id}`, { properties: { hs_pipeline_stage: '4' } });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.properties.hs_pipeline_stage, '4');

    for (const path of ['/crm/pipelines/2026-03/tickets', '/crm/v3/pipelines/tickets']) {
      const pipelines = await api('GET', path);
      assert.equal(pipelines.status, 200);
      const [pipeline] = pipelines.body.results;
      assert.equal(pipeline.id, '0');
      assert.equal(pipeline.label, 'Support Pipeline');
      assert.deepEqual(
        pipeline.stages.map((s) => [s.id, s.label, s.metadata.ticketState]),
        [
          ['1', 'New', 'OPEN'],
          ['2', 'Waiting on contact', 'OPEN'],
          ['3', 'Waiting on us', 'OPEN'],
          ['4', 'Closed', 'CLOSED'],
        ],
      );
    }
    for (const path of ['/crm/owners/2026-03', '/crm/v3/owners?email=AGENT%40acme.example']) {
      const owners = await api('GET', path);
      assert.equal(owners.status, 200);
      assert.equal(owners.body.results.length, 1);
      assert.equal(owners.body.results[0].email, 'agent@acme.example');
      assert.equal(owners.body.results[0].firstName, 'Ana');
      assert.match(owners.body.results[0].id, /^\d+$/);
    }
    const owner = h.owners[0].id;
    const owned = await api('PATCH', `${OBJECTS}/tickets/${created.body.id}`, { properties: { hubspot_owner_id: owner } });
    assert.equal(owned.status, 200);
    assertError(await api('PATCH', `${OBJECTS}/tickets/${created.body.id}`, { properties: { hubspot_owner_id: '42' } }), 400, 'VALIDATION_ERROR', 'unknown owner');
  });

  test('answers unknown paths 404, other methods 405, and bodies that are not JSON as HubSpot does', async () => {
    assertError(await api('GET', '/crm/v3/nothing'), 404, 'OBJECT_NOT_FOUND', 'unknown path');
    assertError(await api('PUT', `${OBJECTS}/contacts/1`, {}), 405, 'VALIDATION_ERROR', 'PUT');
    assert.match(assertError(await api('POST', `${OBJECTS}/widgets`, {}), 400, 'VALIDATION_ERROR', 'unknown object').message, /Unable to infer object type from: widgets/);
    const bare = await fetch(`${h.url}${OBJECTS}/contacts`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' });
    assert.equal(bare.status, 415);
    const broken = await fetch(`${h.url}${OBJECTS}/contacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"properties":',
    });
    assert.equal(broken.status, 400);
    assert.match((await broken.json()).message, /^Invalid input JSON/);
  });

  test('remembers every call with what it answered', async () => {
    const before = h.calls.length;
    await api('POST', `${OBJECTS}/contacts`, { properties: { email: 'recorded@example.com' } });
    const [call] = h.calls.slice(before);
    assert.equal(h.calls, h.requests);
    assert.equal(call.method, 'POST');
    assert.equal(call.path, `${OBJECTS}/contacts`);
    assert.deepEqual(call.body, { properties: { email: 'recorded@example.com' } });
    assert.equal(call.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(call.status, 201);
  });
});

describe('the HubSpot fake’s limits and faults', () => {
  test('reports the limits on every authenticated answer and refuses the request over the burst with 429 and Retry-After', async () => {
    const h = await startHubSpot({ tokens: TOKENS, apps: APPS, rateLimit: 2 });
    try {
      const api = client(h, TOKEN);
      const first = await api('GET', '/crm/v3/owners');
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('x-hubspot-ratelimit-max'), '2');
      assert.equal(first.headers.get('x-hubspot-ratelimit-remaining'), '1');
      assert.equal(first.headers.get('x-hubspot-ratelimit-interval-milliseconds'), '10000');
      assert.equal(first.headers.get('x-hubspot-ratelimit-daily'), '250000');
      assert.equal(first.headers.get('x-hubspot-ratelimit-daily-remaining'), '249999');
      assert.equal((await api('GET', `${OBJECTS}/contacts/1`)).headers.get('x-hubspot-ratelimit-remaining'), '0', 'a 404 spends too');

      const spent = await api('GET', '/crm/v3/owners');
      assert.equal(spent.status, 429);
      const retryAfter = Number(spent.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`);
      assert.equal(spent.headers.get('x-hubspot-ratelimit-remaining'), '0');
      assert.equal(spent.body.status, 'error');
      assert.equal(spent.body.message, 'You have reached your ten_secondly_rolling limit.');
      assert.equal(spent.body.errorType, 'RATE_LIMIT');
      assert.equal(spent.body.policyName, 'TEN_SECONDLY_ROLLING');
      assert.equal(typeof spent.body.correlationId, 'string');
      assert.equal(h.rateLimited, 1);
      assert.equal(h.throttles[0].policy, 'TEN_SECONDLY_ROLLING');

      h.addToken('pat-na1-other');
      assert.equal((await client(h, 'pat-na1-other')('GET', '/crm/v3/owners')).status, 200, 'each private app has its own burst');
      const anonymous = await client(h, null)('GET', '/crm/v3/owners');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.headers.get('x-hubspot-ratelimit-max'), null, 'no limit headers without a valid token');

      h.setRateLimit(null);
      const off = await api('GET', '/crm/v3/owners');
      assert.equal(off.status, 200);
      assert.equal(off.headers.get('x-hubspot-ratelimit-max'), null, 'no burst headers when the limit is off');
      assert.equal(off.headers.get('x-hubspot-ratelimit-daily'), '250000');

      h.setDailyLimit(1);
      assert.equal((await api('GET', '/crm/v3/owners')).status, 200);
      const daily = await api('GET', '/crm/v3/owners');
      assert.equal(daily.status, 429);
      assert.equal(daily.body.policyName, 'DAILY');
    } finally {
      await h.close();
    }
  });

  test('lets a rolling window free up', async () => {
    const h = await startHubSpot({ tokens: TOKENS, rateLimit: { max: 1, windowMs: 300 } });
    try {
      const api = client(h, TOKEN);
      assert.equal((await api('GET', '/crm/v3/owners')).status, 200);
      const spent = await api('GET', '/crm/v3/owners');
      assert.equal(spent.status, 429);
      assert.equal(spent.headers.get('retry-after'), '1', 'whole seconds, at least one');
      assert.equal(spent.headers.get('x-hubspot-ratelimit-interval-milliseconds'), '300');
      await new Promise((resolve) => setTimeout(resolve, 350));
      assert.equal((await api('GET', '/crm/v3/owners')).status, 200);
    } finally {
      await h.close();
    }
  });

  test('answers queued failures to the calls they match, then answers normally', async () => {
    const h = await startHubSpot({ tokens: TOKENS });
    try {
      const api = client(h, TOKEN);
      h.fail(2, 502, (call) => call.method === 'POST');
      h.fail({ status: 429, retryAfter: 7 });
      const throttled = await api('GET', '/crm/v3/owners');
      assert.equal(throttled.status, 429);
      assert.equal(throttled.headers.get('retry-after'), '7');
      assert.equal(throttled.body.policyName, 'TEN_SECONDLY_ROLLING');
      for (let i = 0; i < 2; i += 1) {
        assertError(await api('POST', `${OBJECTS}/contacts`, { properties: { email: 'retry@example.com' } }), 502, 'INTERNAL_ERROR', `injected ${i}`);
      }
      h.fail(1, { status: 503, body: { message: 'maintenance' }, headers: { 'x-custom': 'yes' } });
      const custom = await api('GET', '/crm/v3/owners');
      assert.deepEqual([custom.status, custom.body, custom.headers.get('x-custom')], [503, { message: 'maintenance' }, 'yes']);
      assert.equal((await api('POST', `${OBJECTS}/contacts`, { properties: { email: 'retry@example.com' } })).status, 201);
      assert.equal(h.contacts.length, 1, 'failed calls stored nothing');
      assert.equal(h.rateLimited, 0, 'injected 429s are not counted as rate limiting');
    } finally {
      await h.close();
    }
  });

  test('leaves a hung call unanswered until the client gives up, then answers the next', async () => {
    const h = await startHubSpot({ tokens: TOKENS, hangMs: 5_000 });
    try {
      const api = client(h, TOKEN);
      h.hang();
      await assert.rejects(api('GET', '/crm/v3/owners', undefined, { signal: AbortSignal.timeout(200) }), /abort|timeout/i);
      assert.equal(h.calls.at(-1).status, null, 'the hung call has no status');
      assert.equal((await api('GET', '/crm/v3/owners')).status, 200);
    } finally {
      await h.close();
    }
  });

  test('refuses connections while down and keeps its state across up on the same port', async () => {
    const h = await startHubSpot({ tokens: TOKENS });
    try {
      const api = client(h, TOKEN);
      const created = await api('POST', `${OBJECTS}/contacts`, { properties: { email: 'persistent@example.com' } });
      await h.down();
      await assert.rejects(api('GET', `${OBJECTS}/contacts/${created.body.id}`), (error) => {
        assert.equal(error.cause?.code, 'ECONNREFUSED');
        return true;
      });
      await h.up();
      assert.equal((await api('GET', `${OBJECTS}/contacts/${created.body.id}`)).body.properties.email, 'persistent@example.com');
    } finally {
      await h.close();
    }
  });
});

describe('the HubSpot fake’s OAuth', () => {
  test('consent page, code, token, the token at work, refresh, and a used code refused', async () => {
    const h = await startHubSpot({ tokens: TOKENS, apps: APPS, expiresIn: 60 });
    try {
      const authorize = new URL(h.authorizeUrl);
      authorize.search = new URLSearchParams({
        client_id: 'client-1',
        redirect_uri: REDIRECT,
        scope: `oauth ${CONTACTS_READ} ${OWNERS_READ}`,
        state: 's-42',
      }).toString();

      const page = await fetch(authorize);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type'), /^text\/html/);
      const html = await page.text();
      assert.match(html, /<h1>[^<]*crm-edge[^<]*<\/h1>/, 'the heading names the app');
      for (const scope of ['oauth', CONTACTS_READ, OWNERS_READ]) assert.ok(html.includes(`<li>${scope}</li>`), `the page lists ${scope}`);
      assert.match(html, /<button type="submit">Connect app<\/button>/);

      // Press "Connect app": submit the page's form as a browser would.
      const action = /<form method="post" action="([^"]+)">/.exec(html)[1];
      const fields = new URLSearchParams();
      for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
        fields.append(name, value.replace(/&amp;/g, '&').replace(/&quot;/g, '"'));
      }
      const pressed = await fetch(new URL(action, h.url), { method: 'POST', body: fields, redirect: 'manual' });
      assert.equal(pressed.status, 302);
      const back = new URL(pressed.headers.get('location'));
      assert.equal(`${back.origin}${back.pathname}`, 'http://127.0.0.1:9/hubspot/callback');
      assert.equal(back.searchParams.get('tenant'), 'acme', 'the redirect URL keeps its own query');
      assert.equal(back.searchParams.get('state'), 's-42');
      const code = back.searchParams.get('code');
      assert.ok(code);

      const exchange = (secret, usedCode = code) =>
        postForm(h.tokenUrl, {
          grant_type: 'authorization_code',
          client_id: 'client-1',
          client_secret: secret,
          redirect_uri: REDIRECT,
          code: usedCode,
        });
      assert.equal((await exchange('wrong')).body.status, 'BAD_CLIENT_ID');
      const tokens = await exchange('secret-1');
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.equal(tokens.body.token_type, 'bearer');
      assert.equal(tokens.body.expires_in, 60);
      assert.ok(tokens.body.access_token && tokens.body.refresh_token);
      const again = await exchange('secret-1');
      assert.deepEqual([again.status, again.body.status], [400, 'BAD_AUTH_CODE'], 'a code is single-use');
      assert.equal(typeof again.body.message, 'string');

      const oauthApi = client(h, tokens.body.access_token);
      const used = await oauthApi('GET', '/crm/owners/2026-03');
      assert.equal(used.status, 200, 'the access token works with the app’s scopes');
      assert.ok(used.headers.get('x-hubspot-ratelimit-max'));
      assert.equal(used.headers.get('x-hubspot-ratelimit-daily'), null, 'OAuth calls carry no daily headers');
      const write = await oauthApi('POST', `${OBJECTS}/contacts`, { properties: {} });
      assert.equal(write.status, 403, 'the grant holds no write scope');

      const refresh = (token) =>
        postForm(`${h.url}/oauth/2026-03/token`, { grant_type: 'refresh_token', client_id: 'client-1', client_secret: 'secret-1', refresh_token: token });
      h.expireAccessTokensNow();
      const expired = await oauthApi('GET', '/crm/owners/2026-03');
      assertError(expired, 401, 'EXPIRED_AUTHENTICATION', 'expired access token');
      const renewed = await refresh(tokens.body.refresh_token);
      assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
      assert.equal(renewed.body.refresh_token, tokens.body.refresh_token);
      assert.notEqual(renewed.body.access_token, tokens.body.access_token);
      assert.equal((await client(h, renewed.body.access_token)('GET', '/crm/owners/2026-03')).status, 200);
      assert.equal((await refresh('not-a-refresh-token')).body.status, 'BAD_REFRESH_TOKEN');

      const otherRedirect = await postForm(h.tokenUrl, {
        grant_type: 'authorization_code',
        client_id: 'client-1',
        client_secret: 'secret-1',
        redirect_uri: 'http://127.0.0.1:9/elsewhere',
        code: h.authorize('client-1', REDIRECT),
      });
      assert.equal(otherRedirect.body.status, 'BAD_REDIRECT_URI');
      const grant = await postForm(h.tokenUrl, { grant_type: 'password', client_id: 'client-1', client_secret: 'secret-1' });
      assert.deepEqual([grant.status, grant.body.status], [400, 'BAD_GRANT_TYPE']);
      assert.equal((await postForm(h.tokenUrl, { grant_type: 'refresh_token', client_id: 'nobody' })).body.status, 'BAD_CLIENT_ID');
    } finally {
      await h.close();
    }
  });

  test('shows an error page, 400, for an unknown client, a redirect URL not registered, or other scopes', async () => {
    const h = await startHubSpot({ tokens: TOKENS, apps: APPS });
    try {
      const page = (params) => fetch(`${h.authorizeUrl}?${new URLSearchParams(params)}`);
      const good = { client_id: 'client-1', redirect_uri: REDIRECT, scope: `oauth ${CONTACTS_READ} ${OWNERS_READ}` };
      for (const [description, params, pattern] of [
        ['an unknown client', { ...good, client_id: 'client-x' }, /no app with client id client-x/],
        ['a redirect URL not registered', { ...good, redirect_uri: 'https://evil.example/cb' }, /not one of the app's redirect URLs/],
        ['scopes that are not the app’s', { ...good, scope: 'oauth' }, /are not the app's/],
      ]) {
        const response = await page(params);
        assert.equal(response.status, 400, description);
        const html = await response.text();
        assert.doesNotMatch(html, /Connect app/, `${description}: no button`);
        assert.match(html.replace(/&#39;/g, "'"), pattern, description);
      }
      assert.throws(() => h.consent(`${h.authorizeUrl}?${new URLSearchParams({ ...good, client_id: 'client-x' })}`), /no app/);
      const back = new URL(h.consent(`https://app.hubspot.com/oauth/authorize?${new URLSearchParams({ ...good, state: 'st' })}`));
      assert.equal(back.searchParams.get('state'), 'st');
      assert.equal(h.authorizations.at(-1).code, back.searchParams.get('code'));
    } finally {
      await h.close();
    }
  });
});

describe('the HubSpot fake’s webhooks', () => {
  test('signs with v3: base64 HMAC-SHA256 of method, URI, body and timestamp under the client secret', async () => {
    const uri = 'https://edge.example/hubspot/webhooks?tenant=acme';
    const body = '[{"eventId":1}]';
    const timestamp = 1_795_694_400_123;
    const expected = createHmac('sha256', 'app-secret').update(`POST${uri}${body}${timestamp}`).digest('base64');
    assert.equal(hubspotSignatureV3('app-secret', 'POST', uri, body, timestamp), expected);
    assert.equal(hubspotSignatureV3('app-secret', 'POST', uri, Buffer.from(body), String(timestamp)), expected);
    assert.notEqual(hubspotSignatureV3('other-secret', 'POST', uri, body, timestamp), expected);

    const h = await startHubSpot({ tokens: TOKENS, apps: APPS });
    try {
      const ticket = h.seedTicket({ subject: 'Broken', hs_pipeline_stage: '1' });
      const events = h.ticketMoved('client-1', ticket.id, '4');
      assert.equal(h.tickets[0].properties.hs_pipeline_stage, '4');
      assert.equal(events[0].subscriptionType, 'ticket.propertyChange');
      assert.equal(events[0].propertyValue, '4');
      assert.equal(String(events[0].objectId), ticket.id);
      const delivery = h.webhook('app-secret', uri, events, timestamp);
      assert.equal(delivery.headers[TIMESTAMP_HEADER], String(timestamp));
      assert.equal(
        delivery.headers[SIGNATURE_HEADER],
        createHmac('sha256', 'app-secret').update(`POST${uri}${delivery.body}${timestamp}`).digest('base64'),
      );
      assert.deepEqual(JSON.parse(delivery.body), events);
    } finally {
      await h.close();
    }
  });
});
