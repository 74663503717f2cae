// `Idempotency-Key` on the POSTs that create or send, end to end: a retry of the same request
// within 24 hours gets the first response again (`Idempotent-Replayed: true`) and does nothing
// twice (one message reaches the provider, one webhook endpoint exists); the same key with
// another request is 422; concurrent requests with one key run once; keys belong to their
// business; a malformed key is 400; a request without a key is untouched.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { admin, api, assertError, newBusiness, request, sync, unique } from './support.mjs';
import { GRAPH_VERSION, startMeta } from './providers/meta.mjs';
import { randomId } from './providers/server.mjs';

const KEY = 'Idempotency-Key';
const REPLAYED = 'idempotent-replayed';

let meta;
let acme;
let other;
const accessTokens = new Map();

const digits = (n) => Array.from({ length: n }, () => randomInt(10)).join('');

function post(business, path, body, key, headers = {}) {
  return api(business.key, 'POST', path, body, key === undefined ? headers : { ...headers, [KEY]: key });
}

async function webhookCount(business) {
  const res = await api(business.key, 'GET', '/api-webhooks');
  assert.equal(res.status, 200, res.text);
  return res.body.webhooks.length;
}

const endpoint = () => ({ name: unique('hook'), url: 'https://crm.example.com/hooks', events: ['message.received'] });

before(async () => {
  meta = await startMeta(accessTokens);
  [acme, other] = await Promise.all([newBusiness({ default_country: 'IE' }), newBusiness({ default_country: 'IE' })]);
  const address = digits(15);
  const secrets = { app_secret: randomId(32), verify_token: randomId(16), access_token: `EAAG${randomId(40)}` };
  accessTokens.set(address, secrets.access_token);
  const account = await admin('POST', `/admin/businesses/${acme.id}/channel-accounts`, {
    channel: 'whatsapp',
    provider: 'meta',
    address,
    settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
    secrets,
  });
  assert.equal(account.status, 201, account.text);
});

after(() => meta?.close());

describe('a retry with the same key and body', () => {
  test('sends one message: the retry gets the first answer and the provider one call', async () => {
    const phone = `+35387${digits(7)}`;
    const stored = await sync(acme.key, [{ external_id: unique('c'), name: 'Aoife', phone, whatsapp_number: phone }]);
    const customerId = stored.results.details[0].customer_id;
    const body = { customer_id: customerId, channel: 'whatsapp', content: 'Your order shipped' };
    const key = randomUUID();
    const first = await post(acme, '/api-send-message', body, key);
    assert.equal(first.status, 202, first.text);
    assert.equal(first.headers.get(REPLAYED), null, 'the first answer is not a replay');
    const retries = [];
    for (let i = 0; i < 3; i++) retries.push(await post(acme, '/api-send-message', body, key));
    for (const retry of retries) {
      assert.equal(retry.status, 202);
      assert.equal(retry.headers.get(REPLAYED), 'true');
      assert.deepEqual(retry.body, first.body, 'the first response, byte for byte');
    }
    await meta.waitFor(phone.slice(1), 1);
    // Long enough for a second dispatch to have arrived, had there been one.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(meta.for(phone.slice(1)).length, 1, 'the provider was called once');
    const since = await api(acme.key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500');
    const mine = since.body.messages.filter((m) => m.customer_id === customerId);
    assert.equal(mine.length, 1, 'one message is stored');
    // Without a key every request is its own.
    const again = await post(acme, '/api-send-message', body);
    assert.equal(again.status, 202);
    assert.notEqual(again.body.message.id, first.body.message.id);
  });

  test('creates one webhook endpoint, and replays its signing secret', async () => {
    const before = await webhookCount(acme);
    const body = endpoint();
    const key = randomUUID();
    const first = await post(acme, '/api-webhooks', body, key);
    assert.equal(first.status, 201, first.text);
    const retry = await post(acme, '/api-webhooks', body, key);
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get(REPLAYED), 'true');
    assert.equal(retry.body.webhook.id, first.body.webhook.id);
    assert.equal(retry.body.secret, first.body.secret, 'the secret shown once is shown to the retry too');
    assert.equal(await webhookCount(acme), before + 1);
  });

  test('upserts once through sync and bulk create, whatever the batch', async () => {
    for (const path of ['/api-customers-sync', '/api-customers-bulk-create']) {
      const customers = Array.from({ length: 20 }, (_, i) => ({ external_id: unique(`b${i}`), name: `Row ${i}` }));
      const key = randomUUID();
      const first = await post(acme, path, { customers }, key);
      assert.equal(first.status, 200, first.text);
      const retry = await post(acme, path, { customers }, key);
      assert.equal(retry.headers.get(REPLAYED), 'true', path);
      assert.deepEqual(retry.body, first.body, `${path}: every created row reported as created again, not as updated`);
    }
  });

  test('issues one SSO token; the replayed token is the one that works', async () => {
    const stored = await sync(acme.key, [{ external_id: unique('s'), name: 'Niamh', email: `${unique('n')}@example.com` }]);
    const body = { customer_id: stored.results.details[0].customer_id };
    const key = randomUUID();
    const first = await post(acme, '/api-sso-generate-token', body, key);
    assert.equal(first.status, 201, first.text);
    const retry = await post(acme, '/api-sso-generate-token', body, key);
    assert.equal(retry.headers.get(REPLAYED), 'true');
    assert.equal(retry.body.token, first.body.token);
    const page = await request('GET', `/embed/inbox?token=${encodeURIComponent(retry.body.token)}`);
    assert.equal(page.status, 200, 'the replayed token opens the inbox');
  });

  test('uploads one attachment although the multipart boundary differs on the retry', async () => {
    const upload = (boundary) => {
      const text = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="note.txt"\r\nContent-Type: text/plain\r\n\r\nhello idempotency\r\n--${boundary}--\r\n`;
      return request('POST', '/api-upload-attachment', {
        body: text,
        headers: { 'x-api-key': acme.key, 'content-type': `multipart/form-data; boundary=${boundary}`, [KEY]: key },
      });
    };
    const key = randomUUID();
    const first = await upload(`----a${randomId(16)}`);
    assert.equal(first.status, 201, first.text);
    const retry = await upload(`----b${randomId(16)}`);
    assert.equal(retry.status, 201, retry.text);
    assert.equal(retry.headers.get(REPLAYED), 'true');
    assert.equal(retry.body.attachment.id, first.body.attachment.id);
  });

  test('replays a refusal too: the request was decided, so the retry gets the same 4xx', async () => {
    const key = randomUUID();
    const body = { customer_id: randomUUID(), channel: 'whatsapp', content: 'hi' };
    const first = await post(acme, '/api-send-message', body, key);
    assertError(first, 404, 'not_found');
    const retry = await post(acme, '/api-send-message', body, key);
    assertError(retry, 404, 'not_found');
    assert.equal(retry.headers.get(REPLAYED), 'true');
  });
});

describe('what a key cannot do', () => {
  test('the same key with another body is 422, naming the header', async () => {
    const key = randomUUID();
    assert.equal((await post(acme, '/api-webhooks', endpoint(), key)).status, 201);
    const count = await webhookCount(acme);
    const res = await post(acme, '/api-webhooks', endpoint(), key);
    assertError(res, 422, 'validation_failed');
    assert.equal(res.body.error.field, KEY);
    assert.equal(await webhookCount(acme), count, 'nothing was created');
  });

  test('the same key on another endpoint is 422', async () => {
    const key = randomUUID();
    assert.equal((await post(acme, '/api-webhooks', endpoint(), key)).status, 201);
    const res = await post(acme, '/api-customers-sync', { customers: [{ external_id: unique('x') }] }, key);
    assertError(res, 422, 'validation_failed');
  });

  test('concurrent requests with one key run once: the others wait (409, Retry-After) or replay', async () => {
    const count = await webhookCount(acme);
    const key = randomUUID();
    const body = endpoint();
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(acme, '/api-webhooks', body, key)));
    const created = answers.filter((a) => a.status === 201);
    const waiting = answers.filter((a) => a.status === 409);
    assert.equal(created.length + waiting.length, answers.length, answers.map((a) => `${a.status} ${a.text}`).join('\n'));
    assert.ok(created.length >= 1);
    assert.equal(new Set(created.map((a) => a.body.webhook.id)).size, 1, 'every 201 names the one endpoint');
    for (const answer of waiting) {
      assertError(answer, 409, 'conflict');
      assert.equal(answer.headers.get('retry-after'), '1');
    }
    assert.equal(await webhookCount(acme), count + 1, 'one endpoint was created');
    const later = await post(acme, '/api-webhooks', body, key);
    assert.equal(later.headers.get(REPLAYED), 'true');
  });

  test("keys are the business's own: another business's same key and body runs for it", async () => {
    const key = randomUUID();
    const body = endpoint();
    const mine = await post(acme, '/api-webhooks', body, key);
    const theirs = await post(other, '/api-webhooks', body, key);
    assert.equal(mine.status, 201);
    assert.equal(theirs.status, 201);
    assert.equal(theirs.headers.get(REPLAYED), null);
    assert.notEqual(theirs.body.webhook.id, mine.body.webhook.id);
  });

  test('a malformed key is 400 and nothing runs', async () => {
    const count = await webhookCount(acme);
    for (const bad of ['', 'has space', 'k'.repeat(256)]) {
      const res = await post(acme, '/api-webhooks', endpoint(), bad);
      assertError(res, 400, 'malformed_request', JSON.stringify(bad));
      assert.equal(res.body.error.field, KEY);
    }
    assert.equal(await webhookCount(acme), count);
  });

  test('a key is checked after the API key: without one it is 401', async () => {
    const res = await api(undefined, 'POST', '/api-webhooks', endpoint(), { [KEY]: randomUUID() });
    assertError(res, 401, 'unauthorized');
  });

  test('an oversized body with a key is 413 and claims nothing', async () => {
    const key = randomUUID();
    const huge = { customers: [{ external_id: 'x', notes: 'x'.repeat(5 * 1024 * 1024) }] };
    assertError(await post(acme, '/api-customers-sync', huge, key), 413, 'payload_too_large');
    const small = await post(acme, '/api-customers-sync', { customers: [{ external_id: unique('after') }] }, key);
    assert.equal(small.status, 200, 'the key is still free');
    assert.equal(small.headers.get(REPLAYED), null);
  });
});
