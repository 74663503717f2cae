// Registering outbound webhook endpoints (`/api-webhooks`): create, read, update, delete, the
// secret shown only on creation, every bad input refused with the field named, every endpoint
// private to its business; and "send test event", which reports the receiver's answer at once.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RFC3339_UTC, api, assertClientError, assertError, newBusiness } from './support.mjs';
import { refusedUrl, standardSignatureMatches, startWebhookReceiver } from './receivers/webhook-receiver.mjs';
import { EVENTS, attemptsOf, businessWithEndpoint, createWebhook } from './receivers/webhook-api.mjs';

let receiver;
before(async () => {
  receiver = await startWebhookReceiver();
});
after(() => receiver?.close());

const SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** The shape every webhook in an answer has; never a secret. */
function assertWebhookShape(webhook, description) {
  const keys = [
    'id',
    'name',
    'url',
    'events',
    'enabled',
    'disabled_reason',
    'retry_schedule',
    'timeout_seconds',
    'disable_after_seconds',
    'failing_since',
    'previous_secret_expires_at',
    'created_at',
    'updated_at',
  ];
  for (const key of keys) assert.ok(key in webhook, `${description}: has ${key} (${JSON.stringify(webhook)})`);
  for (const key of Object.keys(webhook)) {
    assert.doesNotMatch(key, /secret$/, `${description}: no secret field (${key})`);
  }
  assert.match(webhook.created_at, RFC3339_UTC, `${description}: created_at`);
  assert.match(webhook.updated_at, RFC3339_UTC, `${description}: updated_at`);
}

describe('registering webhook endpoints', () => {
  test('an endpoint is created with the documented defaults and its secret is shown only once', async () => {
    const { key } = await newBusiness();
    const url = receiver.endpoint().url;
    const res = await api(key, 'POST', '/api-webhooks', { name: 'CRM inbox', url });
    assert.equal(res.status, 201, res.text);
    const { webhook, secret } = res.body;
    assert.match(secret, SECRET, 'the secret is whsec_ and base64');
    assert.ok(Buffer.from(secret.slice(6), 'base64').length >= 24, 'the secret has at least 24 random bytes');
    assertWebhookShape(webhook, 'the created webhook');
    assert.equal(webhook.name, 'CRM inbox');
    assert.equal(webhook.url, url);
    assert.deepEqual([...webhook.events].sort(), [...EVENTS].sort(), 'no events given: every event');
    assert.equal(webhook.enabled, true);
    assert.equal(webhook.disabled_reason, null);
    assert.equal(webhook.retry_schedule, 'standard');
    assert.equal(webhook.timeout_seconds, 15);
    assert.equal(webhook.disable_after_seconds, 432000);
    assert.equal(webhook.failing_since, null);
    assert.equal(webhook.previous_secret_expires_at, null);
    assert.ok(!JSON.stringify(webhook).includes(secret), 'the webhook object never carries the secret');

    const one = await api(key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body.webhook, webhook, 'reading it back gives the same webhook');
    assert.ok(!one.text.includes(secret), 'GET by id does not reveal the secret');
    assert.ok(!one.text.includes(secret.slice(6)), 'not even without its prefix');

    const list = await api(key, 'GET', '/api-webhooks');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.webhooks.map((w) => w.id), [webhook.id], 'the business has this one endpoint');
    assert.ok(!list.text.includes(secret.slice(6)), 'the list does not reveal the secret');

    const other = await createWebhook(key, { url, events: ['customer.created'] });
    assert.notEqual(other.secret, secret, 'each endpoint has its own secret');
  });

  test('every create field is stored as given and a PATCH changes only what it names', async () => {
    const { key } = await newBusiness();
    const url = receiver.endpoint().url;
    const { webhook } = await createWebhook(key, {
      name: 'Everything',
      url,
      events: ['customer.created', 'message.received'],
      enabled: false,
      retry_schedule: 'extended',
      timeout_seconds: 30,
      disable_after_seconds: 1,
    });
    assert.deepEqual([...webhook.events].sort(), ['customer.created', 'message.received']);
    assert.equal(webhook.enabled, false);
    assert.equal(webhook.retry_schedule, 'extended');
    assert.equal(webhook.timeout_seconds, 30);
    assert.equal(webhook.disable_after_seconds, 1);

    const url2 = receiver.endpoint().url;
    const patched = await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, {
      name: 'Renamed',
      url: url2,
      events: ['conversation.assigned'],
      timeout_seconds: 1,
    });
    assert.equal(patched.status, 200, patched.text);
    assertWebhookShape(patched.body.webhook, 'the patched webhook');
    const after = patched.body.webhook;
    assert.equal(after.name, 'Renamed');
    assert.equal(after.url, url2);
    assert.deepEqual(after.events, ['conversation.assigned']);
    assert.equal(after.timeout_seconds, 1);
    assert.equal(after.enabled, false, 'enabled is kept when not named');
    assert.equal(after.retry_schedule, 'extended', 'retry_schedule is kept');
    assert.equal(after.disable_after_seconds, 1, 'disable_after_seconds is kept');
    assert.equal(after.created_at, webhook.created_at);
    assert.ok(after.updated_at >= webhook.updated_at, 'updated_at moves forward');

    const enabled = await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, { enabled: true, retry_schedule: 'standard' });
    assert.equal(enabled.status, 200, enabled.text);
    assert.equal(enabled.body.webhook.enabled, true);
    assert.equal(enabled.body.webhook.retry_schedule, 'standard');
    assert.equal(enabled.body.webhook.name, 'Renamed');

    const read = await api(key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.deepEqual(read.body.webhook, enabled.body.webhook, 'the PATCH is stored');
  });

  test('a deleted endpoint is gone', async () => {
    const { key } = await newBusiness();
    const { webhook } = await createWebhook(key, { url: receiver.endpoint().url });
    const removed = await api(key, 'DELETE', `/api-webhooks/${webhook.id}`);
    assert.equal(removed.status, 204, removed.text);
    assert.equal(removed.text, '', 'a 204 has no body');
    assertError(await api(key, 'GET', `/api-webhooks/${webhook.id}`), 404, 'not_found', 'GET after DELETE');
    assertError(await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, { name: 'x' }), 404, 'not_found', 'PATCH after DELETE');
    const list = await api(key, 'GET', '/api-webhooks');
    assert.deepEqual(list.body.webhooks, [], 'the list is empty');
  });

  test('a create with a bad field is refused with 422 naming the field, and nothing is stored', async () => {
    const { key } = await newBusiness();
    const url = receiver.endpoint().url;
    const cases = [
      ['no name', { url }, 'name'],
      ['an empty name', { name: '', url }, 'name'],
      ['a name of 101 characters', { name: 'n'.repeat(101), url }, 'name'],
      ['no url', { name: 'x' }, 'url'],
      ['an empty url', { name: 'x', url: '' }, 'url'],
      ['a relative url', { name: 'x', url: '/hooks' }, 'url'],
      ['not a url', { name: 'x', url: 'crm example com' }, 'url'],
      ['http to a public host', { name: 'x', url: 'http://example.com/hooks' }, 'url'],
      ['http to a private, non-loopback address', { name: 'x', url: 'http://10.0.0.1/hooks' }, 'url'],
      ['an ftp url', { name: 'x', url: 'ftp://example.com/hooks' }, 'url'],
      ['a url with credentials', { name: 'x', url: 'https://user:pw@example.com/hooks' }, 'url'],
      ['a loopback url with credentials', { name: 'x', url: url.replace('http://', 'http://user:pw@') }, 'url'],
      ['http to a host that only starts like localhost', { name: 'x', url: 'http://localhost.example.com/hooks' }, 'url'],
      ['an empty list of events', { name: 'x', url, events: [] }, 'events'],
      ['an unknown event', { name: 'x', url, events: ['customer.created', 'customer.deleted'] }, 'events[1]'],
      ['an event in the wrong case', { name: 'x', url, events: ['Message.Received'] }, 'events[0]'],
      ['the test event, which is not subscribable', { name: 'x', url, events: ['webhook.test'] }, 'events[0]'],
      ['an unknown retry schedule', { name: 'x', url, retry_schedule: 'forever' }, 'retry_schedule'],
      ['a timeout of 0', { name: 'x', url, timeout_seconds: 0 }, 'timeout_seconds'],
      ['a timeout of 31 s', { name: 'x', url, timeout_seconds: 31 }, 'timeout_seconds'],
      ['a negative timeout', { name: 'x', url, timeout_seconds: -5 }, 'timeout_seconds'],
      ['disable after 0 s', { name: 'x', url, disable_after_seconds: 0 }, 'disable_after_seconds'],
      ['disable after 30 days and 1 s', { name: 'x', url, disable_after_seconds: 2592001 }, 'disable_after_seconds'],
    ];
    for (const [description, body, field] of cases) {
      const res = await api(key, 'POST', '/api-webhooks', body);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, field, `${description}: the field named (${res.text})`);
    }

    // Wrong types and the boundaries' other side: refused as client errors (400 or 422), never stored.
    const typed = [
      ['a numeric name', { name: 42, url }],
      ['events as a string', { name: 'x', url, events: 'customer.created' }],
      ['enabled as a string', { name: 'x', url, enabled: 'yes' }],
      ['a fractional timeout', { name: 'x', url, timeout_seconds: 1.5 }],
      ['a timeout as text', { name: 'x', url, timeout_seconds: '10' }],
      ['a JSON array instead of an object', [{ name: 'x', url }]],
    ];
    for (const [description, body] of typed) {
      assertClientError(await api(key, 'POST', '/api-webhooks', body), description);
    }
    const list = await api(key, 'GET', '/api-webhooks');
    assert.deepEqual(list.body.webhooks, [], 'no refused endpoint was stored');

    // The edges that are allowed.
    for (const [description, extra] of [
      ['a name of 100 characters, timeout 1 s, disable after 1 s', { name: 'n'.repeat(100), timeout_seconds: 1, disable_after_seconds: 1 }],
      ['timeout 30 s, disable after 30 days', { timeout_seconds: 30, disable_after_seconds: 2592000 }],
      ['http://localhost', { url: 'http://localhost:9/hooks' }],
      ['https to a public host', { url: 'https://crm.example.com/hooks' }],
    ]) {
      const res = await api(key, 'POST', '/api-webhooks', { name: 'edge', url, ...extra });
      assert.equal(res.status, 201, `${description}: ${res.text}`);
    }
  });

  test('a bad PATCH is refused with 422 naming the field and changes nothing', async () => {
    const { key } = await newBusiness();
    const { webhook } = await createWebhook(key, { url: receiver.endpoint().url });
    const cases = [
      ['an empty name', { name: '' }, 'name'],
      ['http to a public host', { url: 'http://example.com/' }, 'url'],
      ['an unknown event', { events: ['message.received', 'nope'] }, 'events[1]'],
      ['a timeout of 31 s', { timeout_seconds: 31 }, 'timeout_seconds'],
      ['disable after 0 s', { disable_after_seconds: 0 }, 'disable_after_seconds'],
      ['an unknown retry schedule', { retry_schedule: 'sometimes' }, 'retry_schedule'],
    ];
    for (const [description, body, field] of cases) {
      const res = await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, body);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, field, `${description}: the field named`);
    }
    const read = await api(key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.deepEqual(read.body.webhook, webhook, 'nothing changed');
  });

  test('malformed, oversized and unauthenticated requests are refused', async () => {
    const { key } = await newBusiness();
    const url = receiver.endpoint().url;
    const { webhook } = await createWebhook(key, { url });

    const raw = (method, path, body) => api(key, method, path, body, { 'content-type': 'application/json' });
    for (const [description, body] of [
      ['truncated JSON', `{"name":"x","url":"${url}"`],
      ['not JSON', 'name=x'],
      ['an empty body', ''],
    ]) {
      assertError(await raw('POST', '/api-webhooks', body), 400, 'malformed_request', `create with ${description}`);
      assertError(await raw('PATCH', `/api-webhooks/${webhook.id}`, body), 400, 'malformed_request', `PATCH with ${description}`);
    }
    for (const [method, path] of [['PUT', `/api-webhooks/${webhook.id}`], ['DELETE', '/api-webhooks'], ['GET', `/api-webhooks/${webhook.id}/test`]]) {
      assertError(await api(key, method, path, method === 'GET' ? undefined : {}), 405, 'method_not_allowed', `${method} ${path}`);
    }
    const huge = JSON.stringify({ name: 'x', url, padding: 'x'.repeat(70 * 1024) });
    assertError(await raw('POST', '/api-webhooks', huge), 413, 'payload_too_large', 'a create body over 64 KiB');

    const paths = [
      ['GET', '/api-webhooks'],
      ['POST', '/api-webhooks', { name: 'x', url }],
      ['GET', `/api-webhooks/${webhook.id}`],
      ['PATCH', `/api-webhooks/${webhook.id}`, { name: 'y' }],
      ['DELETE', `/api-webhooks/${webhook.id}`],
      ['POST', `/api-webhooks/${webhook.id}/rotate-secret`, {}],
      ['POST', `/api-webhooks/${webhook.id}/test`, {}],
      ['GET', `/api-webhooks/${webhook.id}/deliveries`],
      ['POST', `/api-webhooks/${webhook.id}/replay`, { delivery_id: randomUUID() }],
      ['GET', `/api-webhook-attempts?webhook_id=${webhook.id}`],
    ];
    for (const [method, path, body] of paths) {
      assertError(await api(null, method, path, body), 401, 'unauthorized', `${method} ${path} without a key`);
      assertError(await api('cek_not-a-key', method, path, body), 401, 'unauthorized', `${method} ${path} with an unknown key`);
    }
    const still = await api(key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.equal(still.status, 200, 'nothing an unauthenticated request asked for happened');
    assert.equal(still.body.webhook.name, webhook.name);

    const attempts = await api(key, 'GET', '/api-webhook-attempts?limit=10');
    assertError(attempts, 422, 'validation_failed', 'the attempt log without webhook_id, event_id or delivery_id');
    for (const limit of ['0', '501', 'many']) {
      assertClientError(await api(key, 'GET', `/api-webhooks/${webhook.id}/deliveries?limit=${limit}`), `deliveries limit=${limit}`);
    }
    assertClientError(await api(key, 'GET', `/api-webhooks/${webhook.id}/deliveries?status=lost`), 'deliveries status=lost');
  });

  test("another business's endpoint, or one that does not exist, is 404 everywhere", async () => {
    const owner = await newBusiness();
    const intruder = await newBusiness();
    const { webhook } = await createWebhook(owner.key, { url: receiver.endpoint().url });
    for (const id of [webhook.id, randomUUID(), 'not-an-id']) {
      const label = id === webhook.id ? "another business's webhook" : `webhook ${id}`;
      const calls = [
        ['GET', `/api-webhooks/${id}`],
        ['PATCH', `/api-webhooks/${id}`, { name: 'taken over' }],
        ['POST', `/api-webhooks/${id}/rotate-secret`, {}],
        ['POST', `/api-webhooks/${id}/test`, {}],
        ['GET', `/api-webhooks/${id}/deliveries`],
        ['POST', `/api-webhooks/${id}/replay`, { delivery_id: randomUUID() }],
        ['DELETE', `/api-webhooks/${id}`],
      ];
      for (const [method, path, body] of calls) {
        assertError(await api(intruder.key, method, path, body), 404, 'not_found', `${label}: ${method} ${path}`);
      }
    }
    const list = await api(intruder.key, 'GET', '/api-webhooks');
    assert.deepEqual(list.body.webhooks, [], "the intruder's list is empty");
    const log = await api(intruder.key, 'GET', `/api-webhook-attempts?webhook_id=${webhook.id}`);
    assert.ok(log.status === 404 || (log.status === 200 && log.body.attempts.length === 0), `the attempt log of another business's webhook shows nothing: ${log.text}`);

    const intact = await api(owner.key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.deepEqual(intact.body.webhook, webhook, 'the owner still has it, unchanged');
  });

  test('a business may register at most 16 endpoints; the 17th is refused until one is deleted', async () => {
    const { key } = await newBusiness();
    const created = [];
    for (let i = 0; i < 16; i += 1) created.push((await createWebhook(key, { url: receiver.endpoint().url })).webhook);
    const refused = await api(key, 'POST', '/api-webhooks', { name: 'one too many', url: receiver.endpoint().url });
    assertError(refused, 422, 'validation_failed', 'the 17th endpoint');
    assert.match(refused.body.error.message, /16/, 'the message says the limit');
    const list = await api(key, 'GET', '/api-webhooks');
    assert.equal(list.body.webhooks.length, 16, 'nothing was stored');
    assert.equal((await api(key, 'DELETE', `/api-webhooks/${created[0].id}`)).status, 204);
    await createWebhook(key, { url: receiver.endpoint().url });
  });

  test('concurrent rotations are applied one after another: none is lost', async () => {
    const endpoint = receiver.endpoint();
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
});

describe('sending a test event', () => {
  test('a receiver that answers 200 is reported delivered, with a signed webhook.test event, and the attempt is logged', async () => {
    const endpoint = receiver.endpoint([{ status: 200, body: { ok: 'from the CRM' } }]);
    const { key, webhook, business } = await businessWithEndpoint(endpoint);
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(res.status, 200, res.text);
    const result = res.body;
    assert.equal(result.delivered, true, res.text);
    assert.equal(result.status_code, 200);
    assert.equal(typeof result.duration_ms, 'number');
    assert.ok(result.duration_ms >= 0);
    assert.match(result.response_body, /from the CRM/, "the receiver's answer is reported");
    assert.equal(result.error, null);
    assert.equal(typeof result.event_id, 'string');

    assert.equal(endpoint.requests.length, 1, 'the receiver got it before the answer came');
    const [delivery] = endpoint.requests;
    assert.equal(delivery.method, 'POST');
    assert.match(delivery.headers['content-type'], /^application\/json/);
    assert.equal(delivery.event, 'webhook.test');
    assert.equal(delivery.body.id, result.event_id);
    assert.equal(delivery.id, result.event_id, 'webhook-id is the event id');
    assert.equal(delivery.body.business_id, business.id);
    assert.match(delivery.body.timestamp, RFC3339_UTC);
    assert.equal(delivery.body.data.webhook_id, webhook.id);
    assert.equal(typeof delivery.body.data.message, 'string');
    assert.equal(delivery.seedVerified, true, "the seed's signature verifies");
    assert.equal(delivery.standardVerified, true, 'the Standard Webhooks signature verifies');

    const attempts = await attemptsOf(key, { event_id: result.event_id });
    assert.equal(attempts.length, 1, JSON.stringify(attempts));
    assert.equal(attempts[0].webhook_id, webhook.id);
    assert.equal(attempts[0].event_type, 'webhook.test');
    assert.equal(attempts[0].status_code, 200);
    assert.equal(attempts[0].outcome, 'delivered');
    assert.equal(attempts[0].url, endpoint.url);
    assert.equal(attempts[0].attempt, 1);
    assert.match(attempts[0].attempted_at, RFC3339_UTC);
  });

  test('a receiver that answers 500 is reported not delivered with its status and body', async () => {
    const endpoint = receiver.endpoint([{ status: 500, body: { error: 'database on fire' } }]);
    const { key, webhook } = await businessWithEndpoint(endpoint);
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.delivered, false, res.text);
    assert.equal(res.body.status_code, 500);
    assert.match(res.body.response_body ?? '', /database on fire/);
    assert.equal(endpoint.requests[0]?.event, 'webhook.test');
    const attempts = await attemptsOf(key, { event_id: res.body.event_id });
    assert.ok(attempts.length >= 1, 'the attempt is logged');
    assert.equal(attempts.at(-1).status_code, 500, 'the first attempt is logged with its status');
    assert.match(attempts.at(-1).response_body ?? '', /database on fire/);
  });

  test('a receiver that streams an endless answer is read only as far as the log keeps, then cut off', async () => {
    const endpoint = receiver.endpoint([{ status: 200, streamForever: true }]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { timeout_seconds: 20 });
    const started = Date.now();
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    const took = Date.now() - started;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.delivered, true, res.text);
    assert.equal(res.body.status_code, 200);
    assert.ok((res.body.response_body ?? '').length <= 1024, 'the log keeps at most 1 KiB');
    assert.match(res.body.response_body ?? '', /^x+$/);
    assert.ok(took < 10_000, `answered without reading the whole stream (${took} ms)`);
    const request = endpoint.requests[0];
    const deadline = Date.now() + 5_000;
    while (!request.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(request.aborted, 'the stream was cancelled');
    assert.ok(request.streamedBytes < 64 * 1024 * 1024, `at most a few buffers were sent (${request.streamedBytes} bytes)`);
  });

  test('an unreachable receiver is reported not delivered with the connection error', async () => {
    const { key } = await newBusiness();
    const { webhook } = await createWebhook(key, { url: await refusedUrl() });
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.delivered, false, res.text);
    assert.equal(res.body.status_code, null);
    assert.equal(typeof res.body.error, 'string');
    assert.ok(res.body.error.length > 0, 'the error says what happened');
    const attempts = await attemptsOf(key, { webhook_id: webhook.id });
    assert.ok(attempts.some((a) => a.event_id === res.body.event_id && a.status_code === null && a.error), JSON.stringify(attempts));
  });

  test('a receiver slower than the endpoint timeout is reported as a timeout after about that long', async () => {
    const endpoint = receiver.endpoint([{ status: 200, delayMs: 5_000 }]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { timeout_seconds: 2 });
    const started = Date.now();
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    const took = Date.now() - started;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.delivered, false, res.text);
    assert.equal(res.body.status_code, null);
    assert.match(res.body.error ?? '', /time/i, `the error says it timed out: ${res.body.error}`);
    assert.ok(res.body.duration_ms >= 1_500 && res.body.duration_ms < 5_000, `cut off after about 2 s (${res.body.duration_ms} ms)`);
    assert.ok(took < 5_000, `the API answered before the receiver would have (${took} ms)`);
  });

  test('test sends are limited to 10 per endpoint a minute: the 11th is 429 with Retry-After', async () => {
    const endpoint = receiver.endpoint();
    const { webhook, key } = await businessWithEndpoint(endpoint);
    for (let i = 0; i < 10; i += 1) {
      const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
      assert.equal(res.status, 200, `test ${i + 1}: ${res.text}`);
    }
    const limited = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assertError(limited, 429, 'rate_limited', 'the 11th test');
    const wait = Number(limited.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After says when the window reopens (${limited.headers.get('retry-after')})`);
    assert.equal(endpoint.requests.length, 10, 'the refused test sent nothing');
    const other = await businessWithEndpoint(receiver.endpoint(), {}, undefined);
    const elsewhere = await api(other.key, 'POST', `/api-webhooks/${other.webhook.id}/test`, {});
    assert.equal(elsewhere.status, 200, `another endpoint has its own allowance: ${elsewhere.text}`);
  });

  test('the attempt log never shows a test of one business to another', async () => {
    const endpoint = receiver.endpoint();
    const { webhook, key } = await businessWithEndpoint(endpoint);
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(res.status, 200, res.text);
    const other = await newBusiness();
    const log = await api(other.key, 'GET', `/api-webhook-attempts?event_id=${encodeURIComponent(res.body.event_id)}`);
    assert.ok(log.status === 404 || (log.status === 200 && log.body.attempts.length === 0), `another business sees nothing: ${log.text}`);
  });
});
