// The local Krayin server and the Chatwoot webhook builders on their own, without our stack: that
// they answer and sign as Krayin and Chatwoot do, so that a failing end-to-end test of the Krayin
// connector points at the connector, not at the fakes.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import * as chatwoot from './chatwoot.mjs';
import { MESSAGES, startKrayin } from './krayin.mjs';

const TOKEN = '1|kX9vQ2mT7pL4wR8sY1nB6cF3hJ5dG0aZeU2iO7tq';
const OWN_TOKEN = '2|aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5';

/** A client of `k` with `token`: `call(method, path, body?, headers?)` → `{ status, headers, body }`. */
function client(k, token, { accept = 'application/json' } = {}) {
  return async (method, path, body, extra = {}) => {
    const headers = { ...extra };
    if (accept) headers.accept = accept;
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(k.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual' });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
}

const person = (suffix, extra = {}) => ({
  name: `Person ${suffix}`,
  emails: [{ value: `p${suffix}@example.com`, label: 'work' }],
  contact_numbers: [{ value: `+4930123${suffix}`, label: 'work' }],
  ...extra,
});

describe('the Krayin fake', () => {
  let k;
  let call;
  before(async () => {
    k = await startKrayin({
      tokens: {
        [TOKEN]: { user: { id: 1, name: 'Example Admin', email: 'admin@example.com' } },
        [OWN_TOKEN]: { user: { id: 2, name: 'Sam Seller', email: 'sam@example.com', view_permission: 'individual' } },
      },
      // These tests make more than Krayin's default 60 requests a minute; the limit has its own tests.
      rateLimit: { perMinute: 10_000 },
    });
    call = client(k, TOKEN);
  });
  after(() => k.close());

  describe('authentication', () => {
    test('the current user is the token’s', async () => {
      const response = await call('GET', '/get');
      assert.equal(response.status, 200);
      assert.equal(response.body.data.email, 'admin@example.com');
      assert.equal(response.body.data.view_permission, 'global');
    });

    const refusals = [
      ['no Authorization header', undefined],
      ['an unknown token', '9|not-a-token'],
    ];
    for (const [description, token] of refusals) {
      test(`a JSON request with ${description} gets 401 and Krayin’s message`, async () => {
        const response = await client(k, token)('GET', '/get');
        assert.equal(response.status, 401, description);
        assert.deepEqual(response.body, { message: MESSAGES.unauthenticated }, description);
      });
    }

    test('without an Accept naming JSON an unauthenticated request is redirected to the login page', async () => {
      const response = await fetch(`${k.url}/get`, { headers: { authorization: 'Bearer nope', accept: '*/*' }, redirect: 'manual' });
      assert.equal(response.status, 302);
      assert.equal(response.headers.get('location'), '/admin/login');
    });

    test('an XHR that accepts anything gets JSON', async () => {
      const response = await client(k, undefined, { accept: '*/*' })('GET', '/get', undefined, { 'x-requested-with': 'XMLHttpRequest' });
      assert.equal(response.status, 401);
    });

    test('unknown paths are 404 and wrong methods 405', async () => {
      assert.equal((await call('GET', '/nothing-here')).status, 404);
      const wrong = await call('DELETE', '/get');
      assert.equal(wrong.status, 405);
      assert.match(wrong.body.message, /Supported methods: GET, HEAD/);
    });
  });

  describe('settings', () => {
    test('pipelines list the seeded stages, newest pipeline first, paginated', async () => {
      const response = await call('GET', '/settings/pipelines');
      assert.equal(response.status, 200);
      assert.deepEqual(Object.keys(response.body), ['data', 'links', 'meta']);
      const byId = Object.fromEntries(response.body.data.map((p) => [p.id, p]));
      assert.deepEqual(byId[1].stages.map((s) => [s.id, s.code]), [[1, 'new'], [2, 'follow-up'], [3, 'prospect'], [4, 'negotiation'], [5, 'won'], [6, 'lost']]);
      assert.equal(byId[1].is_default, 1);
      assert.equal(response.body.data[0].id, 2);
      assert.equal(response.body.meta.total, 2);
    });

    test('sources and types are Krayin’s seeded ones', async () => {
      assert.deepEqual((await call('GET', '/settings/sources')).body.data.map((s) => s.name).sort(), ['Direct', 'Email', 'Phone', 'Web', 'Web Form']);
      assert.deepEqual((await call('GET', '/settings/types')).body.data.map((t) => t.name).sort(), ['Existing Business', 'New Business']);
      assert.equal((await call('GET', '/settings/pipelines/99')).status, 404);
    });
  });

  describe('persons', () => {
    test('a person is created with 200, {data, message}, and read back', async () => {
      const created = await call('POST', '/contacts/persons', person('100', { job_title: 'CTO' }));
      assert.equal(created.status, 200);
      assert.equal(created.body.message, 'Person created successfully.');
      assert.deepEqual(created.body.data.emails, [{ value: 'p100@example.com', label: 'work' }]);
      const read = await call('GET', `/contacts/persons/${created.body.data.id}`);
      assert.equal(read.body.data.job_title, 'CTO');
      assert.equal((await call('GET', '/contacts/persons/9999')).status, 404);
    });

    test('an email already on another person is refused with 422 on emails.0.value', async () => {
      await call('POST', '/contacts/persons', person('200'));
      const duplicate = await call('POST', '/contacts/persons', person('201', { emails: [{ value: 'p200@example.com', label: 'home' }] }));
      assert.equal(duplicate.status, 422);
      assert.deepEqual(duplicate.body, { message: MESSAGES.taken, errors: { 'emails.0.value': [MESSAGES.taken] } });
    });

    test('a contact number already on another person is refused, but the person may keep its own', async () => {
      const first = await call('POST', '/contacts/persons', person('300'));
      const duplicate = await call('POST', '/contacts/persons', person('301', { contact_numbers: [{ value: '+4930123300', label: 'work' }] }));
      assert.equal(duplicate.status, 422);
      assert.deepEqual(Object.keys(duplicate.body.errors), ['contact_numbers.0.value']);
      const own = await call('PUT', `/contacts/persons/${first.body.data.id}`, person('300', { name: 'Renamed' }));
      assert.equal(own.status, 200);
      assert.equal(own.body.data.name, 'Renamed');
      assert.equal(own.body.message, 'Person updated successfully.');
    });

    const invalid = [
      ['a blank name', { name: '  ' }, { name: ['The name field is required.'] }],
      ['an email that is no address', { emails: [{ value: 'nope', label: 'work' }] }, { 'emails.0.value': ['The emails.0.value must be a valid email address.'] }],
      ['an email without label', { emails: [{ value: 'ok@example.com' }] }, { 'emails.0.label': ['The emails.0.label field is required.'] }],
      ['an empty email list', { emails: [] }, { emails: ['The emails field is required.'] }],
    ];
    for (const [description, change, errors] of invalid) {
      test(`a person with ${description} is refused with 422`, async () => {
        const response = await call('POST', '/contacts/persons', { ...person('400'), ...change });
        assert.equal(response.status, 422, description);
        assert.deepEqual(response.body.errors, errors, description);
        assert.equal(response.body.message, Object.values(errors)[0][0], description);
      });
    }

    test('several errors are summarised as Laravel does', async () => {
      const response = await call('POST', '/contacts/persons', { name: '', emails: [{ value: 'x', label: '' }], contact_numbers: [{ value: '', label: 'work' }] });
      assert.equal(response.status, 422);
      assert.equal(response.body.message, 'The name field is required. (and 2 more errors)');
    });

    const crashes = [
      ['without contact_numbers', { name: 'No Phone', emails: [{ value: 'nophone@example.com', label: 'work' }] }],
      ['with an empty contact_numbers', { name: 'No Phone', emails: [{ value: 'nophone@example.com', label: 'work' }], contact_numbers: [] }],
      ['with only a null number', { name: 'No Phone', emails: [{ value: 'nophone@example.com', label: 'work' }], contact_numbers: [{ value: null, label: 'work' }] }],
    ];
    for (const [description, body] of crashes) {
      test(`a person ${description} makes Krayin fail with 500`, async () => {
        assert.equal((await call('POST', '/contacts/persons', body)).status, 500, description);
      });
    }

    test('a person without phone passes with an empty-string number', async () => {
      const response = await call('POST', '/contacts/persons', { name: 'No Phone', emails: [{ value: 'nophone@example.com', label: 'work' }], contact_numbers: [{ value: '', label: 'work' }] });
      assert.equal(response.status, 200);
    });

    test('search by email with like finds the person; exact "=" on the JSON column finds nothing', async () => {
      await call('POST', '/contacts/persons', person('500', { emails: [{ value: 'Search.Me@example.com', label: 'work' }] }));
      const like = await call('GET', `/contacts/persons/search?search=${encodeURIComponent('emails:Search.Me@example.com')}&searchFields=emails:like`);
      assert.equal(like.status, 200);
      assert.deepEqual(Object.keys(like.body), ['data']);
      assert.deepEqual(like.body.data.map((p) => p.name), ['Person 500']);
      const caseFolded = await call('GET', `/contacts/persons/search?search=${encodeURIComponent('emails:search.me@example.com')}&searchFields=emails:like`);
      assert.equal(caseFolded.body.data.length, 0, 'JSON columns compare case-sensitively');
      const exact = await call('GET', `/contacts/persons/search?search=${encodeURIComponent('emails:Search.Me@example.com')}&searchFields=emails:=`);
      assert.equal(exact.body.data.length, 0);
    });

    test('search by phone number and by name', async () => {
      const byPhone = await call('GET', `/contacts/persons/search?search=${encodeURIComponent('contact_numbers:+4930123500')}&searchFields=contact_numbers:like`);
      assert.deepEqual(byPhone.body.data.map((p) => p.name), ['Person 500']);
      const byName = await call('GET', `/contacts/persons/search?search=${encodeURIComponent('name:person 500')}&searchFields=name:like`);
      assert.deepEqual(byName.body.data.map((p) => p.name), ['Person 500']);
      assert.equal((await call('GET', '/contacts/persons/search?search=x&searchFields=nope:like')).status, 500);
    });

    test('a user with individual view permission searches only their own persons', async () => {
      const mine = client(k, OWN_TOKEN);
      await mine('POST', '/contacts/persons', person('600', { user_id: 2 }));
      const found = await mine('GET', '/contacts/persons/search?search=name:Person&searchFields=name:like');
      assert.deepEqual(found.body.data.map((p) => p.name), ['Person 600']);
    });
  });

  describe('organizations', () => {
    test('an organization is created with its address, found by exact name, and its name is unique', async () => {
      const address = { address: '123 Main St', country: 'US', state: 'CA', city: 'San Francisco', postcode: '94105' };
      const created = await call('POST', '/contacts/organizations', { name: 'Acme Corp', address });
      assert.equal(created.status, 200);
      assert.equal(created.body.message, 'Organization created successfully.');
      assert.deepEqual(created.body.data.address, address);
      const found = await call('GET', `/contacts/organizations?name=${encodeURIComponent('Acme Corp')}`);
      assert.deepEqual(found.body.data.map((o) => o.id), [created.body.data.id]);
      const duplicate = await call('POST', '/contacts/organizations', { name: 'Acme Corp' });
      assert.equal(duplicate.status, 422);
      assert.deepEqual(duplicate.body.errors, { name: [MESSAGES.taken] });
      const linked = await call('POST', '/contacts/persons', person('700', { organization_id: created.body.data.id }));
      assert.equal(linked.body.data.organization.name, 'Acme Corp');
      assert.equal((await call('POST', '/contacts/persons', person('701', { organization_id: 999 }))).status, 500);
    });
  });

  describe('leads', () => {
    let personId;
    before(async () => {
      personId = (await call('POST', '/contacts/persons', person('800'))).body.data.id;
    });
    const lead = (extra = {}) => ({
      title: 'Jane Doe',
      description: 'From chat',
      lead_value: 75000,
      lead_source_id: 2,
      lead_type_id: 1,
      lead_pipeline_stage_id: null,
      person: { id: personId },
      user_id: 1,
      ...extra,
    });

    test('a null stage is refused as required; 0 puts the lead in the default pipeline’s first stage', async () => {
      const nullStage = await call('POST', '/leads', lead());
      assert.equal(nullStage.status, 422);
      assert.deepEqual(nullStage.body.errors, { lead_pipeline_stage_id: ['The lead pipeline stage id field is required.'] });
      const created = await call('POST', '/leads', lead({ lead_pipeline_stage_id: 0 }));
      assert.equal(created.status, 200);
      assert.equal(created.body.message, 'Lead created successfully.');
      assert.equal(created.body.data.lead_pipeline_id, 1);
      assert.equal(created.body.data.lead_pipeline_stage_id, 1);
      assert.equal(created.body.data.person.id, personId);
      assert.equal(created.body.data.status, 1);
    });

    test('a lead body without lead_pipeline_stage_id makes Krayin fail with 500', async () => {
      const { lead_pipeline_stage_id: _, ...body } = lead();
      assert.equal((await call('POST', '/leads', body)).status, 500);
    });

    test('a stage names its pipeline; an unknown stage is 404', async () => {
      const created = await call('POST', '/leads', lead({ lead_pipeline_stage_id: 8, person_id: personId, person: undefined }));
      assert.equal(created.body.data.lead_pipeline_id, 2);
      assert.equal((await call('POST', '/leads', lead({ lead_pipeline_stage_id: 99 }))).status, 404);
    });

    test('lead fields are validated as Krayin’s form does', async () => {
      const response = await call('POST', '/leads', lead({ lead_pipeline_stage_id: 1, title: '', lead_value: 'lots' }));
      assert.equal(response.status, 422);
      assert.deepEqual(response.body.errors, { title: ['The title field is required.'], lead_value: [MESSAGES.decimal] });
    });

    test('a lead may create its person; the person’s email must be unique too', async () => {
      const created = await call('POST', '/leads', lead({ lead_pipeline_stage_id: 1, person: { name: 'New Person', emails: [{ value: 'new@example.com', label: 'work' }], contact_numbers: [{ value: '+15550001', label: 'work' }] } }));
      assert.equal(created.status, 200);
      assert.equal(created.body.data.person.name, 'New Person');
      const duplicate = await call('POST', '/leads', lead({ lead_pipeline_stage_id: 1, person: { name: 'Again', emails: [{ value: 'new@example.com', label: 'work' }] } }));
      assert.equal(duplicate.status, 422);
      assert.deepEqual(Object.keys(duplicate.body.errors), ['person.emails.0.value']);
    });

    test('a stage edit within the pipeline moves the lead and records the history; won closes it', async () => {
      const id = (await call('POST', '/leads', lead({ lead_pipeline_stage_id: 1 }))).body.data.id;
      const moved = await call('PUT', `/leads/stage/edit/${id}`, { lead_pipeline_stage_id: 5 });
      assert.equal(moved.status, 200);
      assert.equal(moved.body.data.lead_pipeline_stage_id, 5);
      assert.notEqual(moved.body.data.closed_at, null);
      const stored = k.leads.find((l) => l.id === id);
      assert.deepEqual(stored.stageHistory.map((h) => [h.from, h.to, h.via]), [[null, 1, 'create'], [1, 5, 'stage-edit']]);
      assert.equal((await call('GET', `/leads/${id}`)).body.data.lead_value, '75000.0000');
    });

    test('a stage edit to another pipeline’s stage is refused with 404; a missing or unknown stage with 422', async () => {
      const id = (await call('POST', '/leads', lead({ lead_pipeline_stage_id: 1 }))).body.data.id;
      const across = await call('PUT', `/leads/stage/edit/${id}`, { lead_pipeline_stage_id: 8 });
      assert.equal(across.status, 404);
      assert.deepEqual(across.body, { message: MESSAGES.notFound });
      const missing = await call('PUT', `/leads/stage/edit/${id}`, {});
      assert.equal(missing.status, 422);
      assert.deepEqual(missing.body.errors, { lead_pipeline_stage_id: ['The lead pipeline stage id field is required.'] });
      const unknown = await call('PUT', `/leads/stage/edit/${id}`, { lead_pipeline_stage_id: 99 });
      assert.deepEqual(unknown.body.errors, { lead_pipeline_stage_id: ['The selected lead pipeline stage id is invalid.'] });
      assert.equal(k.leads.find((l) => l.id === id).lead_pipeline_stage_id, 1);
    });

    test('a lead update changes its fields and its stage', async () => {
      const id = (await call('POST', '/leads', lead({ lead_pipeline_stage_id: 1 }))).body.data.id;
      const updated = await call('PUT', `/leads/${id}`, lead({ lead_pipeline_stage_id: 3, lead_value: 1000, title: 'Bigger' }));
      assert.equal(updated.status, 200);
      assert.equal(updated.body.message, 'Lead updated successfully.');
      assert.equal(updated.body.data.title, 'Bigger');
      assert.equal(updated.body.data.lead_pipeline_stage_id, 3);
      assert.equal((await call('PUT', '/leads/9999', lead({ lead_pipeline_stage_id: 1 }))).status, 404);
    });
  });

  describe('activities', () => {
    let leadId;
    let personId;
    before(async () => {
      personId = (await call('POST', '/contacts/persons', person('900'))).body.data.id;
      leadId = (await call('POST', '/leads', { title: 'A', lead_value: 1, lead_source_id: 1, lead_type_id: 1, lead_pipeline_stage_id: 1, person_id: personId })).body.data.id;
    });

    const refused = [
      ['a note without comment', { type: 'note', title: 'Note' }, { comment: ['The comment field is required when type is note.'] }],
      ['a call without schedule', { type: 'call', title: 'Call' }, { schedule_from: ['The schedule from field is required unless type is in note, file.'], schedule_to: ['The schedule to field is required unless type is in note, file.'] }],
      ['an email without schedule', { type: 'email', comment: 'x' }, { schedule_from: ['The schedule from field is required unless type is in note, file.'], schedule_to: ['The schedule to field is required unless type is in note, file.'] }],
      ['a file sent as JSON', { type: 'file', comment: 'x' }, { file: ['The file field is required when type is file.'] }],
      ['no type', { title: 'x' }, { type: ['The type field is required.'], schedule_from: ['The schedule from field is required unless type is in note, file.'], schedule_to: ['The schedule to field is required unless type is in note, file.'] }],
    ];
    for (const [description, body, errors] of refused) {
      test(`${description} is refused with 422`, async () => {
        const response = await call('POST', '/activities', body);
        assert.equal(response.status, 422, description);
        assert.deepEqual(response.body.errors, errors, description);
      });
    }

    test('a note is done at once and linked to the lead', async () => {
      const response = await call('POST', '/activities', { type: 'note', title: 'Conversation #42', comment: 'Hello', lead_id: leadId, is_done: 0 });
      assert.equal(response.status, 200);
      assert.equal(response.body.message, 'Activity created successfully.');
      assert.equal(response.body.data.is_done, 1);
      assert.equal(response.body.data.user.id, 1);
      assert.deepEqual(k.activities.at(-1).lead_ids, [leadId]);
    });

    test('a call is open until marked done; with lead_id and person_id only the lead is linked', async () => {
      const created = await call('POST', '/activities', { type: 'call', title: 'Call', comment: 'SMS', schedule_from: '2026-11-23 10:00:00', schedule_to: '2026-11-23 10:05:00', lead_id: leadId, person_id: personId, is_done: 1 });
      assert.equal(created.status, 200);
      assert.equal(created.body.data.is_done, 0);
      assert.equal(created.body.data.schedule_from, '2026-11-23T10:00:00.000000Z');
      const stored = k.activities.find((a) => a.id === created.body.data.id);
      assert.deepEqual([stored.lead_ids, stored.person_ids], [[leadId], []]);
      const done = await call('PUT', `/activities/${created.body.data.id}`, { is_done: 1 });
      assert.equal(done.status, 200);
      assert.equal(done.body.message, 'Activity updated successfully.');
      assert.equal(done.body.data.is_done, 1);
      assert.equal((await call('PUT', '/activities/9999', { is_done: 1 })).status, 404);
    });

    test('an activity with person_id only is linked to the person; any type string is stored', async () => {
      const created = await call('POST', '/activities', { type: 'email', title: 'Mail', comment: 'x', schedule_from: '2026-11-23 10:00:00', schedule_to: '2026-11-23 10:00:00', person_id: personId });
      assert.equal(created.status, 200);
      assert.deepEqual(k.activities.find((a) => a.id === created.body.data.id).person_ids, [personId]);
      assert.equal((await call('POST', '/activities', { type: 'note', comment: 'x', lead_id: 9999 })).status, 500);
    });

    test('an activity on a lead names its person as participant; an update keeps participants unless it names others', async () => {
      const created = await call('POST', '/activities', { type: 'note', title: 'Conversation #7', comment: 'Hi', lead_id: leadId, person_id: personId, participants: { persons: [personId] } });
      assert.equal(created.status, 200);
      assert.equal(created.body.data.participants[0].person.id, personId);
      const stored = () => k.activities.find((a) => a.id === created.body.data.id);
      assert.deepEqual([stored().lead_ids, stored().person_ids, stored().participants], [[leadId], [], [{ person_id: personId }]]);
      await call('PUT', `/activities/${created.body.data.id}`, { is_done: 1 });
      assert.deepEqual(stored().participants, [{ person_id: personId }], 'an update without participants keeps them');
      await call('PUT', `/activities/${created.body.data.id}`, { participants: { users: [1] } });
      assert.deepEqual(stored().participants, [{ user_id: 1 }], 'an update naming participants replaces them all');
      assert.equal((await call('POST', '/activities', { type: 'note', comment: 'x', participants: { persons: [9999] } })).status, 500);
    });
  });

  describe('limits and outages', () => {
    test('every answer reports the budget; past it a 429 with Retry-After and a reset', async () => {
      const limited = await startKrayin({ tokens: { [TOKEN]: { user: { id: 1, name: 'A', email: 'a@example.com' } } }, rateLimit: { perMinute: 3 } });
      try {
        const ask = client(limited, TOKEN);
        const remaining = [];
        for (let i = 0; i < 3; i += 1) {
          const response = await ask('GET', '/get');
          assert.equal(response.headers.get('x-ratelimit-limit'), '3');
          remaining.push(response.headers.get('x-ratelimit-remaining'));
        }
        assert.deepEqual(remaining, ['2', '1', '0']);
        const refused = await ask('GET', '/get');
        assert.equal(refused.status, 429);
        assert.deepEqual(refused.body, { message: 'Too Many Attempts.' });
        assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
        assert.ok(Number(refused.headers.get('retry-after')) >= 1 && Number(refused.headers.get('retry-after')) <= 60);
        assert.ok(Number(refused.headers.get('x-ratelimit-reset')) > Date.now() / 1000);
        assert.equal(limited.throttles.length, 1);
        assert.equal((await client(limited, 'bad')('GET', '/get')).status, 401, 'unauthenticated requests are refused before the limit');
        limited.setRateLimit(null);
        const free = await ask('GET', '/get');
        assert.equal(free.status, 200);
        assert.equal(free.headers.get('x-ratelimit-limit'), null);
      } finally {
        await limited.close();
      }
    });

    test('the default budget is 60 a minute', async () => {
      const fresh = await startKrayin({ tokens: { [TOKEN]: { user: { id: 1, name: 'A', email: 'a@example.com' } } } });
      try {
        const response = await client(fresh, TOKEN)('GET', '/get');
        assert.equal(response.headers.get('x-ratelimit-limit'), '60');
        assert.equal(response.headers.get('x-ratelimit-remaining'), '59');
      } finally {
        await fresh.close();
      }
    });

    test('injected failures answer the next matching requests, then the fake answers again', async () => {
      k.fail({ status: 503, times: 2, match: (r) => r.path.endsWith('/leads') });
      k.fail({ status: 429, retryAfter: 7 });
      assert.equal((await call('GET', '/leads')).status, 503);
      const throttled = await call('GET', '/get');
      assert.equal(throttled.status, 429);
      assert.equal(throttled.headers.get('retry-after'), '7');
      assert.equal((await call('GET', '/leads')).status, 503);
      assert.equal((await call('GET', '/leads')).status, 200);
    });

    test('a hung request is never answered; down refuses connections and up listens on the same port', async () => {
      const quick = await startKrayin({ tokens: { [TOKEN]: { user: { id: 1, name: 'A', email: 'a@example.com' } } }, hangMs: 200 });
      try {
        quick.hang(1);
        await assert.rejects(fetch(`${quick.url}/get`, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json' } }));
        assert.equal(quick.requests.at(-1).status, null);
        await quick.down();
        await assert.rejects(fetch(`${quick.url}/get`));
        await quick.up();
        assert.equal((await client(quick, TOKEN)('GET', '/get')).status, 200);
      } finally {
        await quick.close();
      }
    });
  });
});

describe('the Chatwoot webhooks', () => {
  const SECRET = 'whsec-test-0123456789';

  test('a delivery is signed over "{timestamp}.{raw body}" and carries timestamp and delivery id', () => {
    const payload = chatwoot.contactCreated(chatwoot.contact({ id: 7, name: 'Jane <Doe>', email: 'Jane@Example.com' }));
    const { headers, body } = chatwoot.chatwootWebhook(SECRET, payload, { timestamp: 1763899200, delivery: 'c0ffee00-0000-4000-8000-000000000001' });
    const expected = 'sha256=' + createHmac('sha256', SECRET).update('1763899200.').update(body).digest('hex');
    assert.equal(headers['X-Chatwoot-Signature'], expected);
    assert.equal(headers['X-Chatwoot-Timestamp'], '1763899200');
    assert.equal(headers['X-Chatwoot-Delivery'], 'c0ffee00-0000-4000-8000-000000000001');
    assert.ok(body.includes('Jane \\u003cDoe\\u003e'), 'Rails escapes < and > in JSON');
    assert.equal(JSON.parse(body).email, 'jane@example.com');
    assert.equal(chatwoot.chatwootWebhook(null, payload).headers['X-Chatwoot-Signature'], undefined);
  });

  test('contact payloads carry the CRM attributes and, for updates, the changes', () => {
    const c = chatwoot.contact({
      id: 9,
      name: 'Jane Doe',
      phone_number: '+14155550123',
      additional_attributes: { job_title: 'VP of Engineering', company_name: 'Acme Corp', company_city: 'San Francisco', lead_value: 75000 },
      custom_attributes: { plan: 'pro' },
    });
    const created = chatwoot.contactCreated(c);
    assert.equal(created.event, 'contact_created');
    assert.equal(created.additional_attributes.company_name, 'Acme Corp');
    assert.deepEqual(created.account, { id: 1, name: 'Acme Support' });
    const updated = chatwoot.contactUpdated(c, { email: [null, 'jane@example.com'] });
    assert.deepEqual(updated.changed_attributes, [{ email: { previous_value: null, current_value: 'jane@example.com' } }]);
    assert.throws(() => chatwoot.contactUpdated(c, {}));
  });

  test('conversation payloads use the display id, the inbox’s channel and the meta', () => {
    const c = chatwoot.contact({ id: 9, email: 'jane@example.com' });
    const conv = chatwoot.conversation({ id: 123, inbox: 'email', contact: c, assignee: chatwoot.agent(), team: { id: 2, name: 'sales' } });
    const created = chatwoot.conversationCreated(conv);
    assert.equal(created.event, 'conversation_created');
    assert.equal(created.id, 123);
    assert.equal(created.channel, 'Channel::Email');
    assert.equal(created.meta.sender.type, 'contact');
    assert.equal(created.meta.assignee.type, 'user');
    assert.equal(created.meta.team.name, 'sales');
    assert.equal(created.contact_inbox.source_id, 'jane@example.com');
    const resolved = chatwoot.conversationStatusChanged({ ...conv, status: 'resolved' }, 'open');
    assert.deepEqual(resolved.changed_attributes, [{ status: { previous_value: 'open', current_value: 'resolved' } }]);
    const updated = chatwoot.conversationUpdated(conv, { assignee_id: [null, 3] });
    assert.equal(updated.event, 'conversation_updated');
    assert.equal(chatwoot.conversation({ inbox: 'whatsapp' }).channel, 'Channel::Whatsapp');
    assert.equal(chatwoot.conversation({ inbox: 'sms' }).channel, 'Channel::TwilioSms');
    assert.equal(chatwoot.conversation({ inbox: 'web' }).channel, 'Channel::WebWidget');
  });

  test('message payloads: incoming from the contact, outgoing from an agent, private notes', () => {
    const conv = chatwoot.conversation({ id: 55, inbox: 'whatsapp', contact: chatwoot.contact({ id: 9, phone_number: '+14155550123' }) });
    const incoming = chatwoot.messageCreated(chatwoot.message({ conversation: conv, content: 'Hi' }));
    assert.equal(incoming.event, 'message_created');
    assert.equal(incoming.message_type, 'incoming');
    assert.equal(incoming.sender.id, 9);
    assert.equal(incoming.conversation.id, 55);
    assert.deepEqual(incoming.inbox, { id: 3, name: 'WhatsApp' });
    const outgoing = chatwoot.message({ conversation: conv, message_type: 'outgoing' });
    assert.equal(outgoing.sender.type, 'user');
    const note = chatwoot.message({ conversation: conv, message_type: 'outgoing', private: true });
    assert.equal(note.private, true);
    assert.equal(chatwoot.message({ message_type: 'template' }).sender, null);
    assert.throws(() => chatwoot.message({ message_type: 'sideways' }));
  });

  test('deliver posts the signed raw body and returns the answer', async () => {
    const seen = [];
    const receiver = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${receiver.address().port}/webhooks/chatwoot`;
      const answer = await chatwoot.deliver(url, SECRET, chatwoot.messageCreated(chatwoot.message()));
      assert.equal(answer.status, 202);
      assert.deepEqual(answer.body, { ok: true });
      const [{ headers, body }] = seen;
      const expected = 'sha256=' + createHmac('sha256', SECRET).update(`${headers['x-chatwoot-timestamp']}.${body}`).digest('hex');
      assert.equal(headers['x-chatwoot-signature'], expected);
      assert.equal(headers['x-chatwoot-delivery'], answer.delivery);
      assert.ok(Math.abs(Number(headers['x-chatwoot-timestamp']) - Date.now() / 1000) < 5);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});
