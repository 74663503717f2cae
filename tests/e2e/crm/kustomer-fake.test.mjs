// The local Kustomer server on its own, without our stack: that it answers as Kustomer does, so
// that a failing end-to-end test of the connector points at the connector, not at the fake.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { NOTE_MAX_LENGTH, startKustomer } from './kustomer.mjs';

const ORG = '5f0c1a2b3c4d5e6f7a8b9c0d';
const OTHER_ORG = '6a0c1a2b3c4d5e6f7a8b9c0e';

const KEYS = {
  'key-admin': { org: ORG, user: { name: 'crm-edge', email: 'crm-edge@machine.example' } },
  'key-reader': { org: ORG, user: { name: 'reader', email: 'reader@machine.example' }, readOnly: true },
  'key-no-teams': { org: ORG, user: { name: 'no-teams', email: 'no-teams@machine.example' }, permissions: ['customers:read'] },
  'key-other-org': { org: OTHER_ORG, user: { name: 'other', email: 'other@machine.example' } },
  'key-expiring': { org: ORG, user: { name: 'expiring', email: 'expiring@machine.example' }, expiresAt: '2999-01-01T00:00:00Z' },
  'key-expired': { org: ORG, user: { name: 'expired', email: 'expired@machine.example' }, expiresAt: '2020-01-01T00:00:00Z' },
};

/** A client of `k` with `key`: `call(method, path, body?)` resolves to `{ status, headers, body }`. */
function client(k, key) {
  return async (method, path, body, init = {}) => {
    const headers = { accept: 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(k.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      ...init,
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
}

function assertError(response, status, code, description) {
  assert.equal(response.status, status, `${description}: status (${JSON.stringify(response.body)})`);
  const [error] = response.body.errors;
  assert.equal(error.status, String(status), `${description}: errors[0].status`);
  assert.equal(error.code, code, `${description}: errors[0].code`);
  assert.equal(typeof error.title, 'string', `${description}: errors[0].title`);
  assert.equal(typeof error.detail, 'string', `${description}: errors[0].detail`);
  return error;
}

describe('the Kustomer fake', () => {
  let k;
  let admin;
  before(async () => {
    k = await startKustomer({ apiKeys: KEYS, teams: [{ name: 'Support' }, { name: 'Billing', displayName: 'Billing team' }] });
    admin = client(k, 'key-admin');
  });
  after(() => k.close());

  test('refuses a request without a key, or with an unknown key, with 401 in the error form', async () => {
    for (const [description, key] of [['no key', null], ['unknown key', 'key-nobody']]) {
      const response = await client(k, key)('GET', '/v1/users/current');
      assertError(response, 401, 'unauthorized', description);
    }
  });

  test('refuses a write to a read-only key, and a read the key lacks, with 403 naming the permission', async () => {
    const write = await client(k, 'key-reader')('POST', '/v1/customers', { name: 'Nobody' });
    assert.match(assertError(write, 403, 'forbidden', 'read-only key writing').detail, /customers:write/);
    const read = await client(k, 'key-reader')('GET', '/v1/teams');
    assert.equal(read.status, 200, 'a read-only key still reads');
    const teams = await client(k, 'key-no-teams')('GET', '/v1/teams');
    assert.match(assertError(teams, 403, 'forbidden', 'key without teams:read').detail, /teams:read/);
  });

  test('tells a key which user and org it belongs to', async () => {
    const { status, body } = await admin('GET', '/v1/users/current');
    assert.equal(status, 200);
    assert.equal(body.data.type, 'user');
    assert.match(body.data.id, /^[0-9a-f]{24}$/);
    assert.equal(body.data.attributes.name, 'crm-edge');
    assert.equal(body.data.attributes.email, 'crm-edge@machine.example');
    assert.equal(body.data.attributes.displayName, 'crm-edge');
    assert.equal(body.data.relationships.org.data.id, ORG);
  });

  test('describes the calling key as a token with its roles, and its expiry only when it has one, and refuses an expired key', async () => {
    const full = await admin('GET', '/v1/auth/tokens/current');
    assert.equal(full.status, 200);
    assert.equal(full.body.data.attributes.name, 'crm-edge');
    assert.equal(full.body.data.attributes.lastTokenChars, 'dmin');
    assert.equal(full.body.data.attributes.expireAt, undefined, 'a key that never expires has no expireAt');
    assert.equal(full.body.data.relationships.org.data.id, ORG);
    for (const role of ['org.permission.customer.create', 'org.permission.customer.update', 'org.permission.note.create', 'org.permission.team.read']) {
      assert.ok(full.body.data.attributes.roles.includes(role), `the full key holds ${role}`);
    }
    const narrow = await client(k, 'key-no-teams')('GET', '/v1/auth/tokens/current');
    assert.deepEqual(narrow.body.data.attributes.roles, ['org.permission.customer.read'], 'a key without a permission is read as lacking its roles');
    const expiring = await client(k, 'key-expiring')('GET', '/v1/auth/tokens/current');
    assert.equal(expiring.body.data.attributes.expireAt, '2999-01-01T00:00:00.000Z');
    const expired = await client(k, 'key-expired')('GET', '/v1/auth/tokens/current');
    assertError(expired, 401, 'unauthorized', 'an expired key');
  });

  test('creates a customer, finds it by email, externalId and id, and replaces the attributes given', async () => {
    const created = await admin('POST', '/v1/customers', {
      name: 'Ada Lovelace',
      externalId: 'chat-ada',
      emails: [{ type: 'home', email: 'ada+test@example.com' }],
      phones: [{ type: 'mobile', phone: '+15550001111' }],
      whatsapps: [{ phone: '+15550001111' }],
      tags: ['vip'],
      custom: {
        planStr: 'gold',
        visitsNum: 3,
        optedInBool: true,
        firstSeenAt: '2026-01-02T03:04:05.000Z',
        bioTxt: 'Mathematician',
        profileUrl: 'https://example.com/ada',
      },
    });
    assert.equal(created.status, 201);
    const customer = created.body.data;
    assert.equal(customer.type, 'customer');
    assert.match(customer.id, /^[0-9a-f]{24}$/);
    assert.equal(customer.links.self, `/v1/customers/${customer.id}`);
    assert.equal(customer.relationships.org.data.id, ORG);
    assert.equal(customer.attributes.custom.visitsNum, 3);

    const byEmail = await admin('GET', `/v1/customers/email=${encodeURIComponent('ada+test@example.com')}`);
    assert.equal(byEmail.status, 200);
    assert.equal(byEmail.body.data.id, customer.id);
    const byExternalId = await admin('GET', '/v1/customers/externalId=chat-ada');
    assert.equal(byExternalId.body.data.id, customer.id);
    const byId = await admin('GET', `/v1/customers/${customer.id}`);
    assert.equal(byId.body.data.attributes.name, 'Ada Lovelace');

    const updated = await admin('PUT', `/v1/customers/${customer.id}`, { name: 'Ada King', tags: ['vip', 'returning'] });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.data.attributes.name, 'Ada King');
    assert.deepEqual(updated.body.data.attributes.tags, ['vip', 'returning']);
    assert.equal(updated.body.data.attributes.externalId, 'chat-ada', 'attributes not given are kept');
    assert.equal(k.customers.find((c) => c.id === customer.id).attributes.name, 'Ada King');
  });

  test('answers 404 in the error form for a customer it does not have', async () => {
    for (const path of [
      `/v1/customers/email=${encodeURIComponent('nobody@example.com')}`,
      '/v1/customers/externalId=nobody',
      '/v1/customers/000000000000000000000000',
    ]) {
      assertError(await admin('GET', path), 404, 'not_found', path);
    }
    assertError(await admin('PUT', '/v1/customers/000000000000000000000000', { name: 'X' }), 404, 'not_found', 'PUT unknown');
  });

  test('keeps each org to its own customers', async () => {
    const customer = k.seedCustomer({ name: 'Org one only', emails: [{ email: 'org-one@example.com' }] });
    const other = client(k, 'key-other-org');
    assertError(await other('GET', `/v1/customers/${customer.id}`), 404, 'not_found', 'other org by id');
    assertError(await other('GET', '/v1/customers/email=org-one%40example.com'), 404, 'not_found', 'other org by email');
  });

  test('refuses a second customer with the same externalId or email with 409', async () => {
    await admin('POST', '/v1/customers', { externalId: 'dup-1', emails: [{ email: 'dup@example.com' }] });
    assertError(await admin('POST', '/v1/customers', { externalId: 'dup-1' }), 409, 'conflict', 'same externalId');
    assertError(await admin('POST', '/v1/customers', { emails: [{ email: 'DUP@example.com' }] }), 409, 'conflict', 'same email');
  });

  test('refuses invalid customer bodies with 400 pointing at the field', async () => {
    const cases = [
      ['a custom attribute without a type suffix', { custom: { plan: 'gold' } }, '/custom/plan'],
      ['a lowercase type suffix', { custom: { planstr: 'gold' } }, '/custom/planstr'],
      ['a Num that is a string', { custom: { visitsNum: '3' } }, '/custom/visitsNum'],
      ['a Bool that is a string', { custom: { optedInBool: 'yes' } }, '/custom/optedInBool'],
      ['an At that is not a date-time', { custom: { seenAt: 'yesterday' } }, '/custom/seenAt'],
      ['a Url that is not a URL', { custom: { homeUrl: 'not a url' } }, '/custom/homeUrl'],
      ['a Str over 1024 characters', { custom: { noteStr: 'x'.repeat(1025) } }, '/custom/noteStr'],
      ['emails that are not an array', { emails: 'a@example.com' }, '/emails'],
      ['an email that is not an address', { emails: [{ email: 'nope' }] }, '/emails/0/email'],
      ['a phone entry without phone', { phones: [{ type: 'mobile' }] }, '/phones/0/phone'],
      ['tags that are not strings', { tags: [1] }, '/tags/0'],
      ['an unknown attribute', { nickname: 'Ada' }, '/nickname'],
      ['a body that is not an object', ['Ada'], '/'],
    ];
    for (const [description, body, pointer] of cases) {
      const error = assertError(await admin('POST', '/v1/customers', body), 400, 'bad_request', description);
      assert.equal(error.source?.pointer, pointer, `${description}: source.pointer`);
    }
    const unparsable = await fetch(`${k.url}/v1/customers`, {
      method: 'POST',
      headers: { authorization: 'Bearer key-admin', 'content-type': 'application/json' },
      body: '{"name":',
    });
    assert.equal(unparsable.status, 400, 'a body that is not JSON');
  });

  test('keeps a conversation’s messages in the order they were created, and counts them', async () => {
    const customer = k.seedCustomer({ name: 'Grace', emails: [{ email: 'grace@example.com' }] });
    const team = (await admin('GET', '/v1/teams')).body.data.find((t) => t.attributes.name === 'Support');
    const created = await admin('POST', '/v1/conversations', {
      customer: customer.id,
      name: 'WhatsApp with Grace',
      status: 'open',
      priority: 2,
      direction: 'in',
      assignedTeams: [team.id],
      tags: ['whatsapp'],
    });
    assert.equal(created.status, 201);
    const conversation = created.body.data;
    assert.equal(conversation.type, 'conversation');
    assert.equal(conversation.relationships.customer.data.id, customer.id);
    assert.deepEqual(conversation.attributes.assignedTeams, [team.id]);

    for (const [index, direction] of ['in', 'out', 'in'].entries()) {
      const message = await admin('POST', `/v1/conversations/${conversation.id}/messages`, {
        channel: 'whatsapp',
        app: 'crm-edge',
        direction,
        preview: `message ${index}`,
        meta: { providerId: `wamid.${index}` },
        externalId: `wamid.${index}`,
        sentAt: new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString(),
      });
      assert.equal(message.status, 201, JSON.stringify(message.body));
      assert.equal(message.body.data.type, 'message');
      assert.equal(message.body.data.relationships.conversation.data.id, conversation.id);
    }
    const listed = await admin('GET', `/v1/conversations/${conversation.id}/messages`);
    assert.deepEqual(listed.body.data.map((m) => m.attributes.preview), ['message 0', 'message 1', 'message 2']);
    assert.deepEqual(k.messages(conversation.id).map((m) => m.attributes.externalId), ['wamid.0', 'wamid.1', 'wamid.2']);
    const fetched = await admin('GET', `/v1/conversations/${conversation.id}`);
    assert.equal(fetched.body.data.attributes.messageCount, 3);
    assert.equal(fetched.body.data.attributes.outboundMessageCount, 1);
    assert.deepEqual(fetched.body.data.attributes.channels, ['whatsapp']);

    const patched = await admin('PATCH', `/v1/conversations/${conversation.id}`, { status: 'done', priority: 4, tags: ['closed'] });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.data.attributes.status, 'done');
    assert.equal(patched.body.data.attributes.priority, 4);
    assert.equal(patched.body.data.attributes.name, 'WhatsApp with Grace', 'fields not given are kept');
  });

  test('refuses conversations and messages that name what does not exist or break the rules', async () => {
    const customer = k.seedCustomer({ name: 'Rules' });
    const conversation = k.seedConversation(customer.id, { name: 'Rules' });
    const cases = [
      ['an unknown customer', 'POST', '/v1/conversations', { customer: '000000000000000000000000' }, '/customer'],
      ['no customer', 'POST', '/v1/conversations', { name: 'x' }, '/customer'],
      ['an unknown team', 'POST', '/v1/conversations', { customer: customer.id, assignedTeams: ['000000000000000000000000'] }, '/assignedTeams/0'],
      ['an unknown user', 'POST', '/v1/conversations', { customer: customer.id, assignedUsers: ['000000000000000000000000'] }, '/assignedUsers/0'],
      ['a priority of 6', 'POST', '/v1/conversations', { customer: customer.id, priority: 6 }, '/priority'],
      ['an unknown status', 'PATCH', `/v1/conversations/${conversation.id}`, { status: 'closed' }, '/status'],
      ['a message on an unknown channel', 'POST', `/v1/conversations/${conversation.id}/messages`, { channel: 'pigeon', app: 'a', direction: 'in' }, '/channel'],
      ['a message without direction', 'POST', `/v1/conversations/${conversation.id}/messages`, { channel: 'sms', app: 'a' }, '/direction'],
    ];
    for (const [description, method, path, body, pointer] of cases) {
      const error = assertError(await admin(method, path, body), 400, 'bad_request', description);
      assert.equal(error.source?.pointer, pointer, `${description}: source.pointer`);
    }
    assertError(await admin('GET', '/v1/conversations/000000000000000000000000'), 404, 'not_found', 'unknown conversation');
  });

  test('takes a note of exactly 10,240 characters and refuses one longer', async () => {
    const conversation = k.seedConversation(k.seedCustomer({ name: 'Notes' }).id);
    const fits = await admin('POST', `/v1/conversations/${conversation.id}/notes`, { body: 'n'.repeat(NOTE_MAX_LENGTH) });
    assert.equal(fits.status, 201);
    assert.equal(fits.body.data.type, 'note');
    const tooLong = await admin('POST', `/v1/conversations/${conversation.id}/notes`, { body: 'n'.repeat(NOTE_MAX_LENGTH + 1) });
    assert.equal(assertError(tooLong, 400, 'bad_request', 'note too long').source.pointer, '/body');
    assert.equal(k.notes(conversation.id).length, 1);
  });

  test('pages through a customer’s conversations and the teams with links and meta', async () => {
    const customer = k.seedCustomer({ name: 'Many' });
    const ids = [];
    for (let i = 0; i < 30; i += 1) ids.push(k.seedConversation(customer.id, { name: `c${i}` }).id);
    const path = `/v1/customers/${customer.id}/conversations`;

    const first = await admin('GET', path);
    assert.equal(first.body.data.length, 25, 'default page size');
    assert.deepEqual(first.body.meta, { pageSize: 25, page: 1 });
    assert.equal(first.body.links.prev, null);
    assert.equal(first.body.links.next, `${path}?page=2&pageSize=25`);

    const second = await admin('GET', first.body.links.next);
    assert.deepEqual(second.body.data.map((c) => c.id), ids.slice(25));
    assert.equal(second.body.links.next, null);
    assert.equal(second.body.links.prev, `${path}?page=1&pageSize=25`);
    assert.equal(second.body.links.first, `${path}?page=1&pageSize=25`);

    const big = await admin('GET', `${path}?page=1&pageSize=1000`);
    assert.equal(big.body.meta.pageSize, 100, 'pageSize is capped');
    assert.equal(big.body.data.length, 30);
    const bad = await admin('GET', `${path}?page=0`);
    assert.equal(assertError(bad, 400, 'bad_request', 'page 0').source.parameter, 'page');

    const teams = await admin('GET', '/v1/teams?pageSize=1');
    assert.equal(teams.body.data.length, 1);
    assert.equal(teams.body.links.next, '/v1/teams?page=2&pageSize=1');
    const secondTeam = await admin('GET', teams.body.links.next);
    assert.equal(secondTeam.body.data[0].attributes.displayName, 'Billing team');
    const otherOrgTeams = await client(k, 'key-other-org')('GET', '/v1/teams');
    assert.ok(otherOrgTeams.body.data.every((t) => !teams.body.data.some((mine) => mine.id === t.id)), 'teams are per org');
  });

  test('remembers every request with what it answered', async () => {
    const before = k.requests.length;
    await admin('POST', '/v1/customers', { name: 'Recorded' });
    const [record] = k.requests.slice(before);
    assert.equal(record.method, 'POST');
    assert.equal(record.path, '/v1/customers');
    assert.deepEqual(record.body, { name: 'Recorded' });
    assert.equal(record.headers.authorization, 'Bearer key-admin');
    assert.equal(record.status, 201);
    assert.equal(typeof record.at, 'number');
  });
});

describe('the Kustomer fake’s limits and faults', () => {
  test('reports the org budget on every answer and refuses the request over it with 429 and Retry-After', async () => {
    const k = await startKustomer({ apiKeys: KEYS, rateLimit: { perMinute: 3, windowMs: 1_500 } });
    try {
      const admin = client(k, 'key-admin');
      const reader = client(k, 'key-reader');
      const remaining = [];
      for (const call of [admin, reader, admin]) {
        const response = await call('GET', '/v1/users/current');
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-ratelimit-limit'), '3');
        assert.ok(Number(response.headers.get('x-ratelimit-reset')) >= 1);
        remaining.push(response.headers.get('x-ratelimit-remaining'));
      }
      assert.deepEqual(remaining, ['2', '1', '0'], 'both keys of the org spend one budget');

      const over = await reader('GET', '/v1/users/current');
      assertError(over, 429, 'too_many_requests', 'over the budget');
      assert.ok(Number(over.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
      assert.equal(over.headers.get('x-ratelimit-remaining'), '0');
      assert.equal(k.rateLimited, 1);
      assert.equal(k.throttles[0].scope, 'org');

      const otherOrg = await client(k, 'key-other-org')('GET', '/v1/users/current');
      assert.equal(otherOrg.status, 200, 'another org has its own budget');

      const unauthenticated = await client(k, 'key-nobody')('GET', '/v1/users/current');
      assert.equal(unauthenticated.headers.get('x-ratelimit-limit'), null, 'no budget headers without a valid key');

      await new Promise((resolve) => setTimeout(resolve, 1_600));
      const nextWindow = await admin('GET', '/v1/users/current');
      assert.equal(nextWindow.status, 200, 'a new window has a new budget');
      assert.equal(nextWindow.headers.get('x-ratelimit-remaining'), '2');

      k.setRateLimit(null);
      const off = await admin('GET', '/v1/users/current');
      assert.equal(off.headers.get('x-ratelimit-limit'), null, 'no headers when the limit is off');
    } finally {
      await k.close();
    }
  });

  test('limits each kind of create per customer, imports excepted', async () => {
    const k = await startKustomer({ apiKeys: KEYS, customerCreateLimit: { perMinute: 2 } });
    try {
      const admin = client(k, 'key-admin');
      const conversation = k.seedConversation(k.seedCustomer({ name: 'Busy' }).id);
      const message = { channel: 'sms', app: 'crm-edge', direction: 'in', preview: 'hi' };
      const path = `/v1/conversations/${conversation.id}/messages`;
      assert.equal((await admin('POST', path, message)).status, 201);
      assert.equal((await admin('POST', path, message)).status, 201);
      const note = await admin('POST', `/v1/conversations/${conversation.id}/notes`, { body: 'n' });
      assert.equal(note.status, 201, 'notes have their own budget');
      const third = await admin('POST', path, message);
      assertError(third, 429, 'too_many_requests', 'third message for one customer');
      assert.ok(Number(third.headers.get('retry-after')) >= 1);
      assert.equal(k.throttles.at(-1).scope, 'customer');
      const imported = await admin('POST', path, { ...message, importedAt: '2026-01-01T00:00:00.000Z' });
      assert.equal(imported.status, 201, 'imports are not limited');
      const otherCustomer = await admin('POST', '/v1/conversations', { customer: k.seedCustomer({ name: 'Calm' }).id });
      assert.equal(otherCustomer.status, 201, 'another customer has its own limit');
    } finally {
      await k.close();
    }
  });

  test('answers queued failures to the requests they match, then answers normally', async () => {
    const k = await startKustomer({ apiKeys: KEYS });
    try {
      const admin = client(k, 'key-admin');
      k.fail({ status: 503, retryAfter: 7, times: 2, match: (req) => req.method === 'POST' });
      k.fail({ status: 500 });
      const read = await admin('GET', '/v1/users/current');
      assertError(read, 500, 'internal_error', 'the unmatched step takes the GET');
      for (let i = 0; i < 2; i += 1) {
        const write = await admin('POST', '/v1/customers', { name: 'Retry' });
        assertError(write, 503, 'service_unavailable', `injected POST ${i}`);
        assert.equal(write.headers.get('retry-after'), '7');
      }
      assert.equal((await admin('POST', '/v1/customers', { name: 'Retry' })).status, 201);
      assert.equal(k.customers.length, 1, 'failed requests stored nothing');
      k.fail({ status: 429, retryAfter: 2 });
      const throttled = await admin('GET', '/v1/users/current');
      assert.equal(throttled.status, 429);
      assert.equal(throttled.headers.get('retry-after'), '2');
      assert.equal(k.rateLimited, 0, 'injected 429s are not counted as rate limiting');
    } finally {
      await k.close();
    }
  });

  test('leaves a hung request unanswered until the client gives up, then answers the next', async () => {
    const k = await startKustomer({ apiKeys: KEYS, hangMs: 5_000 });
    try {
      const admin = client(k, 'key-admin');
      k.hang();
      await assert.rejects(admin('GET', '/v1/users/current', undefined, { signal: AbortSignal.timeout(200) }), /abort|timeout/i);
      assert.equal(k.requests.at(-1).status, null, 'the hung request has no status');
      assert.equal((await admin('GET', '/v1/users/current')).status, 200);
    } finally {
      await k.close();
    }
  });

  test('refuses connections while down and keeps its state across up on the same port', async () => {
    const k = await startKustomer({ apiKeys: KEYS });
    try {
      const admin = client(k, 'key-admin');
      const created = await admin('POST', '/v1/customers', { name: 'Persistent', externalId: 'p-1' });
      const url = k.url;
      await k.down();
      await assert.rejects(admin('GET', '/v1/customers/externalId=p-1'), (error) => {
        assert.equal(error.cause?.code, 'ECONNREFUSED');
        return true;
      });
      await k.up();
      assert.equal(k.url, url);
      const found = await admin('GET', '/v1/customers/externalId=p-1');
      assert.equal(found.status, 200);
      assert.equal(found.body.data.id, created.body.data.id);
    } finally {
      await k.close();
    }
  });
});

describe('the Kustomer fake’s outbound webhooks', () => {
  test('signs the raw body with HMAC-SHA256 under the token, in lowercase hex', async () => {
    const k = await startKustomer({ apiKeys: KEYS });
    try {
      const conversation = k.seedConversation(k.seedCustomer({ name: 'Hooked' }).id, { status: 'open' });
      const { headers, body } = k.webhook('hook-token', {
        name: 'kustomer.conversation.update',
        data: conversation,
        changes: { attributes: { status: { before: 'open', after: 'done' } } },
      });
      const expected = createHmac('sha256', 'hook-token').update(body).digest('hex');
      assert.equal(headers['X-Kustomer-Webhook-Signature'], expected);
      assert.match(expected, /^[0-9a-f]{64}$/);
      assert.equal(headers['X-Kustomer-Webhook-Event'], 'kustomer.conversation.update');

      const event = JSON.parse(body);
      assert.match(event.id, /^[0-9a-f]{24}$/);
      assert.equal(event.name, 'kustomer.conversation.update');
      assert.equal(event.org, ORG);
      assert.equal(event.partition, conversation.relationships.customer.data.id);
      assert.equal(event.data.type, 'conversation');
      assert.equal(event.data.id, conversation.id);
      assert.equal(event.data.relationships.customer.data.id, conversation.relationships.customer.data.id);
      assert.deepEqual(event.changes, { attributes: { status: { before: 'open', after: 'done' } } });
      assert.ok(!Number.isNaN(Date.parse(event.createdAt)));
    } finally {
      await k.close();
    }
  });

  test('delivers a webhook to a receiver and reports its answer', async () => {
    const k = await startKustomer({ apiKeys: KEYS });
    const received = [];
    const receiver = createServer(async (req, res) => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      received.push({ headers: req.headers, raw: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const customer = k.seedCustomer({ name: 'Delivered' });
      const conversation = k.seedConversation(customer.id);
      const message = {
        type: 'message',
        id: 'aaaaaaaaaaaaaaaaaaaaaaaa',
        attributes: { channel: 'chat', direction: 'out', preview: 'Hello' },
        relationships: { conversation: { data: { type: 'conversation', id: conversation.id } }, customer: { data: { type: 'customer', id: customer.id } } },
      };
      const status = await k.deliverWebhook(`http://127.0.0.1:${receiver.address().port}/hooks/kustomer`, 'secret', {
        name: 'kustomer.message.create',
        data: message,
      });
      assert.equal(status, 204);
      const [delivery] = received;
      assert.equal(delivery.headers['x-kustomer-webhook-event'], 'kustomer.message.create');
      assert.equal(delivery.headers['content-type'], 'application/json');
      const signature = createHmac('sha256', 'secret').update(delivery.raw).digest('hex');
      assert.equal(delivery.headers['x-kustomer-webhook-signature'], signature);
      assert.equal(JSON.parse(delivery.raw).data.attributes.preview, 'Hello');
      assert.equal(k.deliveries[0].status, 204);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
      await k.close();
    }
  });
});
