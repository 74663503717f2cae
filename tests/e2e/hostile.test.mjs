// The hostile-input table: every endpoint that takes a JSON body, crossed with every kind of body
// a parser can be hurt by (nesting 10,000 deep, 100,000 elements, numbers JSON allows but no
// machine holds, duplicate keys, bytes that are not UTF-8, NUL, lone surrogates, bodies far over
// the limit with and without a length, and the wrong content types). Each combination is its own
// test. A refused body gets a 4xx with the one error shape, never a 5xx, within a bounded time,
// and leaves the store as it was: no row of the endpoint's business is added or changed (read
// straight from D1, so a half-done write anywhere shows, not only in what the API lists).
//
// Every endpoint but the receivers reads its body through one reader (edge::platform::http::read_json), and
// the table holds it to that reader's rules exactly: a body labelled as anything but JSON (text, a
// form, a multipart upload, even JSON sent as text/plain) is 415 before it is read, a body with
// no content type is read as JSON, a name repeated in one object and a NUL in a string are 422
// naming the object or the string, and a lone surrogate escape is read as U+FFFD (the body is
// answered as the same body with U+FFFD written in its place). `-0` is legal JSON a reasonable
// server may take or refuse. The receivers of providers and CRMs keep their own rules and
// acknowledge some bodies by design: their entries say why and accept a 2xx as well as a refusal.
// Every other case must be refused.
//
// Run alone: node --test tests/e2e/hostile.test.mjs (CRM_EDGE_URL, CRM_EDGE_ADMIN_TOKEN and
// CRM_EDGE_STATE set, as scripts/test sets them).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import { ADMIN_TOKEN, BASE_URL, admin, api, newBusiness, request, sync, unique } from './support.mjs';
import { d1, d1Reader } from './store.mjs';
import { metaSignature } from './signing.mjs';
import { GRAPH_VERSION, startMeta, whatsappNotification } from './providers/meta.mjs';
import { randomId } from './providers/server.mjs';
import { signWebhook as kustomerSignature, objectId } from './crm/kustomer.mjs';
import { contact as chatwootContact } from './crm/chatwoot.mjs';
import { standardWebhookHeaders } from './links/links.mjs';

/** Longer than any refusal should take: a request still unanswered then is a hang. */
const HANG_MS = 20_000;
const KIB = 1024;
const MIB = 1024 * KIB;
/** The body limits the endpoints document (shared/edge/src/platform/http.rs and each function's own). */
const SMALL_LIMIT = 64 * KIB;
const BATCH_LIMIT = 4 * MIB;
const LINKS_LIMIT = MIB;
const RECEIVER_LIMIT = MIB;
/** How far over its limit an oversized body is. */
const OVER_LIMIT_FACTOR = 4;
const DEPTH = 10_000;
const ELEMENTS = 100_000;
/** Where a hostile piece goes in a body: a string value replaced in the JSON text. */
const SLOT = 'HOSTILE_SLOT_c0ffee';

const digits = (n) => Array.from({ length: n }, () => randomInt(10)).join('');

// ---------------------------------------------------------------- bodies

/** Sets `value` at a dotted path (`customers.0.name`) of a copy of `body`. */
function setAt(body, path, value) {
  const copy = structuredClone(body);
  const keys = path.split('.');
  let node = copy;
  for (const key of keys.slice(0, -1)) node = node[key];
  node[keys.at(-1)] = value;
  return copy;
}

function getAt(body, path) {
  return path.split('.').reduce((node, key) => node[key], body);
}

/** The JSON of `body` with the value at `path` replaced by `piece` (text or bytes, written as is). */
function withPiece(body, path, piece) {
  const [head, tail] = JSON.stringify(setAt(body, path, SLOT)).split(`"${SLOT}"`);
  return Buffer.concat([Buffer.from(head), Buffer.from(piece), Buffer.from(tail)]);
}

/** Every string in `value` with `suffix` added: a second, different value for a duplicate key. */
function altered(value, suffix) {
  if (typeof value === 'string') return `${value}${suffix}`;
  if (Array.isArray(value)) return value.map((item) => altered(item, suffix));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, altered(v, suffix)]));
  return value;
}

/**
 * `path`'s key written twice in its object: first its value, then `second` (by default the value
 * with every string changed), each of which the endpoint would take alone.
 */
function withDuplicateKey(body, [path, second]) {
  const key = path.split('.').at(-1);
  const value = getAt(body, path);
  const text = JSON.stringify(setAt(body, path, SLOT));
  const twice = `${JSON.stringify(key)}:${JSON.stringify(value)},${JSON.stringify(key)}:${JSON.stringify(second === undefined ? altered(value, '-second') : second)}`;
  return Buffer.from(text.replace(`${JSON.stringify(key)}:"${SLOT}"`, twice));
}

function multipart(json) {
  return Buffer.from(
    [
      '--HostileBoundary',
      'Content-Disposition: form-data; name="payload"; filename="body.json"',
      'Content-Type: application/json',
      '',
      json,
      '--HostileBoundary--',
      '',
    ].join('\r\n'),
  );
}

/** The top-level string fields of `body` as a form, as a client that mistook the API would post them. */
function formOf(body) {
  const fields = Object.entries(body).filter(([, value]) => typeof value === 'string');
  return Buffer.from(new URLSearchParams(fields.length ? fields : [['body', JSON.stringify(body)]]).toString());
}

const JSON_TYPE = 'application/json';

/** A dotted body path (`customers.0.name`) as the API names a field (`customers[0].name`); undefined for the body itself. */
function fieldOf(path) {
  if (!path) return undefined;
  return path.split('.').reduce((field, key) => (/^\d+$/.test(key) ? `${field}[${key}]` : field ? `${field}.${key}` : key), '');
}

function unsupportedMediaType(e, res) {
  assert.equal(res.body.error.code, 'unsupported_media_type', res.text);
}

/**
 * The hostile cases. `build(endpoint, body)` gives `{ bytes, type, streamed? }` (`type` null: no
 * content-type header). `outcome`: 'refused' (a 4xx with the error shape, nothing stored) or
 * 'either' (a 2xx is a fair answer too; a refusal must still be well-formed and store nothing).
 * `jsonReader` overrides them for the endpoints that read through edge::platform::http::read_json (all but
 * the receivers): `status` and `check(endpoint, res)` of the refusal, or the outcome 'served' (as
 * the control: a 2xx or the endpoint's validRefusal) or 'repaired' (answered as `twin` is).
 */
const CASES = [
  {
    name: 'arrays nested 10,000 deep as a field',
    outcome: 'refused',
    build: (e, body) => ({ bytes: withPiece(body, e.nest ?? e.text, '['.repeat(DEPTH) + ']'.repeat(DEPTH)), type: JSON_TYPE }),
  },
  {
    name: 'objects nested 10,000 deep as a field',
    outcome: 'refused',
    build: (e, body) => ({ bytes: withPiece(body, e.nest ?? e.text, '{"a":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH)), type: JSON_TYPE }),
  },
  {
    name: 'a whole body of arrays nested 10,000 deep',
    outcome: 'refused',
    build: () => ({ bytes: Buffer.from('['.repeat(DEPTH) + ']'.repeat(DEPTH)), type: JSON_TYPE }),
  },
  {
    name: 'a 100,000-element array',
    outcome: 'refused',
    build: (e, body) => {
      if (!e.list) return { bytes: Buffer.from(`[${Array(ELEMENTS).fill('0').join(',')}]`), type: JSON_TYPE };
      const [path, item] = e.list;
      const items = `[${Array.from({ length: ELEMENTS }, () => JSON.stringify(item)).join(',')}]`;
      return { bytes: withPiece(body, path, items), type: JSON_TYPE };
    },
  },
  {
    name: 'the number 1e400',
    outcome: 'refused',
    build: (e, body) => ({ bytes: withPiece(body, e.number ?? e.text, '1e400'), type: JSON_TYPE }),
  },
  {
    name: 'a duplicate key',
    // RFC 8259 leaves the meaning of a repeated name to each parser, so two readers of one body
    // may act on different values: refused wherever a body is read, 422 naming the object that
    // repeats it (no field when it is the body itself).
    outcome: 'refused',
    build: (e, body) => ({ bytes: withDuplicateKey(body, [].concat(e.duplicate ?? e.text)), type: JSON_TYPE }),
    jsonReader: {
      status: 422,
      check(e, res) {
        const path = [].concat(e.duplicate ?? e.text)[0];
        const name = path.split('.').at(-1);
        assert.equal(res.body.error.code, 'validation_failed', res.text);
        assert.equal(res.body.error.field, fieldOf(path.split('.').slice(0, -1).join('.')), `the field names the object (${res.text})`);
        assert.ok(res.body.error.message.includes(`\`${name}\` twice`), `the message names the repeated name (${res.text})`);
      },
    },
  },
  {
    name: 'bytes that are not UTF-8 in a string',
    outcome: 'refused',
    build: (e, body) => ({
      bytes: withPiece(body, e.text, Buffer.concat([Buffer.from(`"${getAt(body, e.text)} `), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"')])),
      type: JSON_TYPE,
    }),
  },
  {
    name: 'a NUL escape (\\u0000) in a string',
    // Valid JSON, but a NUL is in no name, address, reason or message anyone writes, and it cuts
    // text short in the C-based systems that receive it downstream: refused, naming the field,
    // wherever a body is read (a lookup key or a question too: one rule for every body).
    outcome: 'refused',
    build: (e, body) => ({ bytes: withPiece(body, e.text, `"${getAt(body, e.text)}\\u0000after"`), type: JSON_TYPE }),
    jsonReader: {
      status: 422,
      check(e, res) {
        assert.equal(res.body.error.code, 'validation_failed', res.text);
        assert.equal(res.body.error.field, fieldOf(e.text), `the field names the string (${res.text})`);
      },
    },
  },
  {
    name: 'a raw NUL byte in a string',
    outcome: 'refused',
    build: (e, body) => ({
      bytes: withPiece(body, e.text, Buffer.concat([Buffer.from(`"${getAt(body, e.text)}`), Buffer.from([0]), Buffer.from('after"')])),
      type: JSON_TYPE,
    }),
  },
  {
    name: 'a body far over the limit, with a content-length',
    outcome: 'refused',
    status: 413,
    build: (e, body) => ({ bytes: Buffer.from(JSON.stringify(setAt(body, e.text, `${getAt(body, e.text)}${'x'.repeat(OVER_LIMIT_FACTOR * e.limit)}`))), type: JSON_TYPE }),
  },
  {
    name: 'a body far over the limit, streamed without a length',
    outcome: 'refused',
    status: 413,
    build: (e, body) => ({
      bytes: Buffer.from(JSON.stringify(setAt(body, e.text, `${getAt(body, e.text)}${'x'.repeat(OVER_LIMIT_FACTOR * e.limit)}`))),
      type: JSON_TYPE,
      streamed: true,
    }),
  },
  {
    name: 'plain text as text/plain',
    outcome: 'refused',
    build: (e, body) => ({ bytes: Buffer.from(`${getAt(body, e.text)}: this is not JSON`), type: 'text/plain' }),
    jsonReader: { status: 415, check: unsupportedMediaType },
  },
  {
    name: 'a form as application/x-www-form-urlencoded',
    outcome: 'refused',
    build: (e, body) => ({ bytes: formOf(body), type: 'application/x-www-form-urlencoded' }),
    jsonReader: { status: 415, check: unsupportedMediaType },
  },
  {
    name: 'the JSON body as a multipart upload',
    outcome: 'refused',
    build: (e, body) => ({ bytes: multipart(JSON.stringify(body)), type: 'multipart/form-data; boundary=HostileBoundary' }),
    jsonReader: { status: 415, check: unsupportedMediaType },
  },
  // The cases below may be served. They run last: a body that is served changes the store, and
  // the cases before them compare against the store as the endpoint's fixture left it.
  {
    name: 'the number -0',
    // -0 is a JSON number equal to 0: taking it as 0 is fair, and so is refusing a non-integer
    // where an integer is wanted (422 naming the field).
    outcome: 'either',
    build: (e, body) => ({ bytes: withPiece(body, e.number ?? e.text, '-0'), type: JSON_TYPE }),
  },
  {
    name: 'an unpaired surrogate escape (\\ud800) in a string',
    // The project reads a lone surrogate as U+FFFD rather than refusing the body
    // (shared/domain/src/json.rs, tests/e2e/surrogates.test.mjs): one broken character in a
    // name must not sink a batch. So the body is answered exactly as the same body with U+FFFD
    // written in its place (a twin sent after it, with a tag of its own): served if that is, and
    // refused for the same reason if that is (a surrogate put in a date is still not a date).
    // The receivers read their bodies their own way: a refusal is also fair there.
    outcome: 'either',
    build: (e, body) => ({ bytes: withPiece(body, e.text, `"${getAt(body, e.text)} \\ud800 after"`), type: JSON_TYPE }),
    jsonReader: {
      outcome: 'repaired',
      twin: (e, body) => ({ bytes: withPiece(body, e.text, `"${getAt(body, e.text)} \\ufffd after"`), type: JSON_TYPE }),
    },
  },
  {
    name: 'the JSON body without a content-type',
    // A body with no content type is read as JSON (curl's --data-binary without -H sends none):
    // served as the control is. The receivers may refuse it.
    outcome: 'either',
    build: (e, body) => ({ bytes: Buffer.from(JSON.stringify(body)), type: null }),
    jsonReader: { outcome: 'served' },
  },
  {
    name: 'the JSON body as text/plain',
    // A body labelled as text is refused before it is read, JSON or not: 415. The receivers keep
    // their own rules and may take it.
    outcome: 'either',
    build: (e, body) => ({ bytes: Buffer.from(JSON.stringify(body)), type: 'text/plain' }),
    jsonReader: { outcome: 'refused', status: 415, check: unsupportedMediaType },
  },
];

// ---------------------------------------------------------------- calling the stack

/**
 * Sends `bytes` as they are (no content-type unless `type` is given), streamed in 64 KiB chunks
 * without a content-length (chunked) when `streamed`, on a connection of its own: a proxy may
 * close a connection whose body it refused before reading it all, and that must not fail the
 * next case. Fails with "a hang" past HANG_MS.
 */
function send(method, path, { bytes, type, streamed }, headers) {
  const all = { ...headers, connection: 'close' };
  if (type) all['content-type'] = type;
  // Named, not left to Node: it frames a DELETE's body as chunked only when told to.
  if (streamed) all['transfer-encoding'] = 'chunked';
  else all['content-length'] = String(bytes.length);
  const url = new URL(`${BASE_URL}${path}`);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: all, agent: false }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: the assertions show the text
        }
        resolve({ status: response.statusCode, headers: new Headers(response.headers), body, text });
      });
    });
    req.setTimeout(HANG_MS, () => req.destroy(new Error(`no answer within ${HANG_MS} ms (a hang)`)));
    // A server may answer and close before it has read all of an oversized body: the answer
    // counts, the write that fails after it does not.
    req.on('error', (error) => reject(new Error(`${method} ${path}: ${error.message}`)));
    if (streamed) {
      let at = 0;
      const more = () => {
        while (at < bytes.length) {
          const chunk = bytes.subarray(at, at + 64 * KIB);
          at += chunk.length;
          if (!req.write(chunk)) return req.once('drain', more);
        }
        req.end();
      };
      more();
    } else {
      req.end(bytes);
    }
  });
}

/** A 4xx with `{error: {code, message, field?}}` and nothing else, as JSON. */
function assertRefusal(res, expectedStatus) {
  const shown = res.text.slice(0, 300);
  assert.ok(res.status >= 400 && res.status < 500, `expected a 4xx, got ${res.status}: ${shown}`);
  if (expectedStatus) assert.equal(res.status, expectedStatus, `status (body: ${shown})`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `an error is JSON (got ${res.headers.get('content-type')})`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error && typeof res.body.error === 'object', `the error shape (got ${shown})`);
  const { error } = res.body;
  assert.deepEqual(Object.keys(res.body), ['error'], `nothing beside "error" (got ${shown})`);
  assert.equal(typeof error.code, 'string', `error.code (got ${shown})`);
  assert.notEqual(error.code, 'internal_error', `never an internal error (got ${shown})`);
  assert.ok(typeof error.message === 'string' && error.message.length > 0, `error.message (got ${shown})`);
  for (const key of Object.keys(error)) assert.ok(['code', 'message', 'field'].includes(key), `unexpected "${key}" in the error (got ${shown})`);
  if ('field' in error) assert.ok(typeof error.field === 'string' && error.field.length > 0, `error.field names a field when present (got ${shown})`);
}

// ---------------------------------------------------------------- the store

/** Every table that holds rows of a business (all but a few keep a business_id column). */
/**
 * Tables that count the requests and the CRM calls themselves, whatever their bodies: a key's
 * usage (docs/limits.md, "Usage per key") counts a refused request as any other, some seconds after
 * it, and so does the business's running cost ("What each business costs"); a connector's call
 * minutes count its CRM's answers. Not what a body stored.
 */
const BOOKKEEPING_TABLES = new Set(['api_key_usage', 'business_usage', 'crm_call_minutes']);
const BUSINESS_TABLES = d1("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%business_id%' ORDER BY name")
  .map(([name]) => name)
  .filter((name) => !BOOKKEEPING_TABLES.has(name));
/**
 * Tables the queue consumers also write after a request has been answered (events of a send's
 * outcome, deliveries, CRM work): compared only while nothing before the case was served.
 */
const ASYNC_TABLES = new Set(['webhook_events', 'webhook_deliveries', 'webhook_attempts', 'crm_sync_jobs', 'crm_contacts', 'early_statuses']);

let reader;

/**
 * What a case may not change: the row count of each business table for `businessId`, the
 * businesses named with `tag`, and the rows that `watch` returns (what a PATCH would change).
 */
async function storeState(fixture, tag, { settledOnly }) {
  const tables = BUSINESS_TABLES.filter((name) => !(settledOnly && ASYNC_TABLES.has(name)));
  const counts = tables.map((name) => `SELECT '${name}', count(*) FROM "${name}" WHERE business_id = ?1`);
  counts.push("SELECT 'businesses named with the tag', count(*) FROM businesses WHERE instr(name, ?2) > 0");
  const state = Object.fromEntries(await reader.query(counts.join(' UNION ALL '), [fixture.businessId, tag]));
  if (fixture.watch) state.watched = await reader.query(...fixture.watch);
  return state;
}

// ---------------------------------------------------------------- fixtures

function adminHeaders() {
  return { authorization: `Bearer ${ADMIN_TOKEN}` };
}

async function addAccount(businessId, account) {
  const res = await admin('POST', `/admin/businesses/${businessId}/channel-accounts`, account);
  assert.equal(res.status, 201, `creating the ${account.channel} account: ${res.text}`);
  return res.body;
}

let meta;
const accessTokens = new Map();

/**
 * A business with a WhatsApp number (sending through the local Meta fake), a customer who has
 * written to it, and so one conversation.
 */
async function businessWithConversation() {
  const business = await newBusiness({ default_country: 'IE' });
  const phoneNumberId = digits(15);
  const secrets = { app_secret: randomId(32), verify_token: randomId(16), access_token: `EAAG${randomId(40)}` };
  accessTokens.set(phoneNumberId, secrets.access_token);
  const account = await addAccount(business.id, {
    channel: 'whatsapp',
    provider: 'meta',
    address: phoneNumberId,
    settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
    secrets,
  });
  const tag = unique('hostile');
  const phone = `+35387${digits(7)}`;
  const synced = await sync(business.key, [{ external_id: `CRM-${tag}`, name: 'Hostile Fixture', email: `${tag}@example.com`, phone, whatsapp_number: phone }]);
  const customer = { id: synced.results.details[0].customer_id, externalId: `CRM-${tag}`, phone };
  const payload = JSON.stringify(
    whatsappNotification(phoneNumberId, {
      contacts: [{ profile: { name: 'Hostile Fixture' }, wa_id: phone.slice(1) }],
      messages: [{ from: phone.slice(1), id: `wamid.${unique('m')}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'Hello' } }],
    }),
  );
  const inbound = await request('POST', `/webhooks/meta/${account.id}`, {
    body: payload,
    headers: { 'content-type': JSON_TYPE, 'x-hub-signature-256': metaSignature(secrets.app_secret, payload) },
  });
  assert.equal(inbound.status, 200, `the inbound message: ${inbound.text}`);
  const messages = await api(business.key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=10');
  const conversationId = messages.body.messages[0].conversation_id;
  return { business, account, secrets, phoneNumberId, customer, conversationId };
}

/** A business with a Facebook page, which CRM links and search need. */
async function businessWithPage() {
  const business = await newBusiness({ default_country: 'IE' });
  const page = `${randomInt(100_000, 999_999)}${randomInt(100_000_000, 999_999_999)}`;
  await addAccount(business.id, { channel: 'facebook', provider: 'meta', address: page, secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' } });
  return { ...business, page };
}

/** A webhook link (its CRM pushes its data; nothing is fetched), inactive unless `active`. */
async function addWebhookLink(business, url, active = false) {
  const res = await request('POST', '/api/dashboard/crm-links', {
    body: { page_id: business.page, channels: ['messenger'], name: 'Hostile link', url, type: 'webhook', is_active: active },
    headers: { authorization: `Bearer ${business.key}` },
  });
  assert.equal(res.status, 201, `adding a CRM link: ${res.text}`);
  return res.body.crm_link ?? res.body;
}

async function connector(businessId, body) {
  const res = await admin('POST', `/admin/businesses/${businessId}/connectors`, body);
  assert.equal(res.status, 201, `creating a ${body.kind} connector: ${res.text}`);
  return res.body;
}

/** A Kustomer connector whose CRM is nowhere (nothing here waits on it). */
const kustomerConnector = (name) => ({
  kind: 'kustomer',
  name,
  settings: { base_url: 'http://127.0.0.1:9' },
  secrets: { api_key: `ey${randomId(24)}`, webhook_secret: randomId(24) },
  rate_limit: { per_minute: 10 },
});

const keyHeaders = (key) => ({ 'x-api-key': key });

/** What the channel and CRM receivers acknowledge by design (see their entries below). */
const RECEIVER_ACCEPTS = new Set(['a 100,000-element array', 'a duplicate key', 'a NUL escape (\\u0000) in a string']);

// ---------------------------------------------------------------- the endpoints

/**
 * Every endpoint that reads a JSON body. `setup()` makes its own business (so that its store
 * checks see only its own rows) and returns the fixture: `businessId`, `path`, `headers(bytes)`
 * (receivers sign the exact bytes), and `watch` (a D1 query for the rows a PATCH would change).
 * `body(fixture, tag)` is a valid body; the paths name where each hostile piece goes: `text` (a
 * string), `number`, `nest` (a value a deep nesting replaces), `list` ([path, item]: the array
 * that grows to 100,000), `duplicate` (the key written twice, or [path, second value]). `perItem`:
 * items of a batch fail alone, so a 200 in which every item failed is a refusal. `accepts`: cases
 * this endpoint may serve by design, with why. `validRefusal`: the answer the control may get
 * instead of a 2xx when the fixture lacks something the body is not about. `ownReader`: a receiver,
 * which reads its body its own way (the cases' `jsonReader` rules do not apply).
 */
const ENDPOINTS = [
  {
    name: 'POST /api-customers-sync',
    limit: BATCH_LIMIT,
    perItem: (res) => res.body?.results?.total > 0 && res.body.results.failed === res.body.results.total,
    async setup() {
      const business = await newBusiness({ default_country: 'IE' });
      return { businessId: business.id, path: '/api-customers-sync', headers: () => keyHeaders(business.key) };
    },
    body: (f, tag) => ({ customers: [{ external_id: `X-${tag}`, name: `Hostile ${tag}`, email: `${tag}@example.com`, custom_fields: { score: 1 } }] }),
    text: 'customers.0.name',
    number: 'customers.0.custom_fields.score',
    nest: 'customers.0.custom_fields',
    list: ['customers', {}],
  },
  {
    name: 'POST /api-customers-bulk-create',
    limit: BATCH_LIMIT,
    perItem: (res) => res.body?.total > 0 && res.body.failed === res.body.total,
    async setup() {
      const business = await newBusiness({ default_country: 'IE' });
      return { businessId: business.id, path: '/api-customers-bulk-create', headers: () => keyHeaders(business.key) };
    },
    body: (f, tag) => ({ customers: [{ external_id: `X-${tag}`, name: `Hostile ${tag}`, email: `${tag}@example.com`, custom_fields: { score: 1 } }] }),
    text: 'customers.0.name',
    number: 'customers.0.custom_fields.score',
    nest: 'customers.0.custom_fields',
    list: ['customers', {}],
  },
  {
    name: 'POST /api-customers-batch-lookup',
    limit: BATCH_LIMIT,
    async setup() {
      const business = await newBusiness({ default_country: 'IE' });
      return { businessId: business.id, path: '/api-customers-batch-lookup', headers: () => keyHeaders(business.key) };
    },
    body: (f, tag) => ({ emails: [`${tag}@example.com`], external_ids: [`X-${tag}`] }),
    text: 'external_ids.0',
    duplicate: ['emails', ['other@example.com']],
    list: ['emails', 'many@example.com'],
  },
  {
    name: 'POST /api-send-message',
    limit: SMALL_LIMIT,
    async setup() {
      const s = await businessWithConversation();
      return { ...s, businessId: s.business.id, path: '/api-send-message', headers: () => keyHeaders(s.business.key) };
    },
    body: (f, tag) => ({ customer_id: f.customer.externalId, channel: 'whatsapp', content: `Hostile ${tag}` }),
    text: 'content',
    number: 'customer_id',
    list: ['attachments', randomUUID()],
  },
  {
    name: 'POST /api-webhooks',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      return { businessId: business.id, path: '/api-webhooks', headers: () => keyHeaders(business.key) };
    },
    body: (f, tag) => ({ name: `Hostile ${tag}`, url: 'https://crm.example.com/hooks', events: ['customer.created'], timeout_seconds: 10 }),
    text: 'name',
    number: 'timeout_seconds',
    list: ['events', 'customer.created'],
  },
  ...['PATCH', 'rotate-secret', 'replay'].map((kind) => ({
    name: kind === 'PATCH' ? 'PATCH /api-webhooks/{id}' : `POST /api-webhooks/{id}/${kind}`,
    method: kind === 'PATCH' ? 'PATCH' : 'POST',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      const created = await api(business.key, 'POST', '/api-webhooks', { name: 'Hostile fixture', url: 'https://crm.example.com/hooks', events: ['customer.created'] });
      assert.equal(created.status, 201, created.text);
      const id = created.body.webhook.id;
      return {
        businessId: business.id,
        path: kind === 'PATCH' ? `/api-webhooks/${id}` : `/api-webhooks/${id}/${kind}`,
        headers: () => keyHeaders(business.key),
        watch: ['SELECT * FROM webhook_endpoints WHERE id = ?', [id]],
      };
    },
    ...{
      PATCH: {
        body: (f, tag) => ({ name: `Hostile ${tag}`, events: ['customer.updated'], timeout_seconds: 12 }),
        text: 'name',
        number: 'timeout_seconds',
        list: ['events', 'customer.updated'],
      },
      'rotate-secret': {
        // Every field is optional here, and the only one is a number: the string cases put a
        // string where the number goes.
        body: () => ({ grace_seconds: 60 }),
        text: 'grace_seconds',
        number: 'grace_seconds',
      },
      replay: {
        body: () => ({ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' }),
        text: 'from',
      },
    }[kind],
  })),
  {
    name: 'PATCH /api-conversations/{id}',
    method: 'PATCH',
    limit: SMALL_LIMIT,
    async setup() {
      const s = await businessWithConversation();
      return {
        businessId: s.business.id,
        path: `/api-conversations/${s.conversationId}`,
        headers: () => keyHeaders(s.business.key),
        watch: ['SELECT * FROM conversations WHERE id = ?', [s.conversationId]],
      };
    },
    body: (f, tag) => ({ status: 'resolved', assignee: `Hostile ${tag}` }),
    text: 'assignee',
  },
  ...['/api-escalations', '/api-crm-notes'].map((path) => ({
    name: `POST ${path}`,
    limit: SMALL_LIMIT,
    async setup() {
      const s = await businessWithConversation();
      return { businessId: s.business.id, path, headers: () => keyHeaders(s.business.key), conversationId: s.conversationId };
    },
    body: (f, tag) => (path === '/api-escalations' ? { conversation_id: f.conversationId, reason: `Hostile ${tag}` } : { conversation_id: f.conversationId, body: `Hostile ${tag}` }),
    text: path === '/api-escalations' ? 'reason' : 'body',
    // The business has no CRM connector: a valid body is read and then refused for that alone.
    validRefusal: (res) => res.status === 422 && res.body?.error?.field === 'connector_id',
  })),
  {
    name: 'POST /api-sso-generate-token',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness({ default_country: 'IE' });
      const tag = unique('sso');
      await sync(business.key, [{ external_id: `SSO-${tag}`, name: 'Hostile Fixture', email: `${tag}@example.com` }]);
      return { businessId: business.id, path: '/api-sso-generate-token', headers: () => keyHeaders(business.key), externalId: `SSO-${tag}` };
    },
    body: (f) => ({ external_id: f.externalId, scope: 'inbox', expires_in: 3600 }),
    text: 'external_id',
    number: 'expires_in',
  },
  {
    name: 'POST /api-sso-revoke-token',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness({ default_country: 'IE' });
      const tag = unique('sso');
      await sync(business.key, [{ external_id: `SSO-${tag}`, name: 'Hostile Fixture', email: `${tag}@example.com` }]);
      const issued = await api(business.key, 'POST', '/api-sso-generate-token', { external_id: `SSO-${tag}` });
      assert.equal(issued.status, 201, issued.text);
      return {
        businessId: business.id,
        path: '/api-sso-revoke-token',
        headers: () => keyHeaders(business.key),
        tokenId: issued.body.token_id,
        watch: ['SELECT * FROM sso_tokens WHERE id = ?', [issued.body.token_id]],
      };
    },
    body: (f) => ({ token_id: f.tokenId }),
    text: 'token_id',
  },
  {
    name: 'POST /api/dashboard/crm-links',
    limit: LINKS_LIMIT,
    async setup() {
      const business = await businessWithPage();
      return { businessId: business.id, path: '/api/dashboard/crm-links', headers: () => ({ authorization: `Bearer ${business.key}` }), page: business.page };
    },
    body: (f, tag) => ({ page_id: f.page, channels: ['messenger'], name: `Hostile ${tag}`, url: `https://crm.example.com/${tag}`, type: 'webhook', is_active: false }),
    text: 'name',
    number: 'page_id',
    list: ['channels', 'messenger'],
  },
  ...[
    // The second value of the duplicate is one the endpoint takes alone.
    ['PUT', '/api/dashboard/crm-links/status', { is_active: true }, ['is_active', false]],
    // A served case before the control deletes the link: the control then finds none.
    ['DELETE', '/api/dashboard/crm-links', {}, ['channels', ['messenger']], (res) => res.status === 404],
    // A webhook link is never fetched: a valid refresh of one is a 409 that says so.
    ['POST', '/api/dashboard/crm-links/refresh', {}, ['channels', ['messenger']], (res) => res.status === 409],
  ].map(([method, path, extra, duplicate, validRefusal]) => ({
    name: `${method} ${path}`,
    method,
    limit: LINKS_LIMIT,
    async setup() {
      const business = await businessWithPage();
      const url = `https://crm.example.com/${unique('link')}`;
      await addWebhookLink(business, url);
      return {
        businessId: business.id,
        path,
        headers: () => ({ authorization: `Bearer ${business.key}` }),
        page: business.page,
        url,
        watch: ['SELECT * FROM knowledge_links WHERE business_id = ? ORDER BY rowid', [business.id]],
      };
    },
    body: (f) => ({ page_id: f.page, url: f.url, channels: ['messenger'], ...extra }),
    text: 'url',
    number: 'page_id',
    list: ['channels', 'messenger'],
    duplicate,
    validRefusal,
  })),
  {
    name: 'POST /api/dashboard/rag/search',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await businessWithPage();
      return { businessId: business.id, path: '/api/dashboard/rag/search', headers: () => ({ authorization: `Bearer ${business.key}` }), page: business.page };
    },
    body: (f, tag) => ({ page_id: f.page, channel: 'messenger', q: `Hostile ${tag}`, top_k: 3 }),
    text: 'q',
    number: 'top_k',
  },
  {
    name: 'POST /admin/businesses',
    limit: SMALL_LIMIT,
    async setup() {
      // Nothing of a new business is stored under another's id: the businesses named with the
      // case's tag are what must stay at none.
      return { businessId: randomUUID(), path: '/admin/businesses', headers: adminHeaders };
    },
    body: (f, tag) => ({ name: `Hostile ${tag}`, default_country: 'IE' }),
    text: 'name',
    nest: 'default_country',
    number: 'default_country',
  },
  {
    name: 'PATCH /admin/businesses/{id}',
    method: 'PATCH',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      return { businessId: business.id, path: `/admin/businesses/${business.id}`, headers: adminHeaders, watch: ['SELECT * FROM businesses WHERE id = ?', [business.id]] };
    },
    body: () => ({ embed_frame_ancestors: ['https://crm.example.com'] }),
    text: 'embed_frame_ancestors.0',
    duplicate: 'embed_frame_ancestors',
    list: ['embed_frame_ancestors', 'https://crm.example.com'],
  },
  {
    name: 'POST /admin/businesses/{id}/api-keys',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      return { businessId: business.id, path: `/admin/businesses/${business.id}/api-keys`, headers: adminHeaders };
    },
    body: (f, tag) => ({ name: `Hostile ${tag}` }),
    text: 'name',
  },
  {
    name: 'POST /admin/businesses/{id}/channel-accounts',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      return { businessId: business.id, path: `/admin/businesses/${business.id}/channel-accounts`, headers: adminHeaders };
    },
    body: (f, tag) => ({
      channel: 'whatsapp',
      provider: 'meta',
      address: digits(15),
      name: `Hostile ${tag}`,
      settings: { api_base_url: 'https://graph.example.com/v21.0' },
      secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' },
    }),
    text: 'name',
    nest: 'settings',
  },
  {
    name: 'PATCH /admin/channel-accounts/{id}',
    method: 'PATCH',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      const account = await addAccount(business.id, { channel: 'whatsapp', provider: 'meta', address: digits(15), secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' } });
      return { businessId: business.id, path: `/admin/channel-accounts/${account.id}`, headers: adminHeaders, watch: ['SELECT * FROM channel_accounts WHERE id = ?', [account.id]] };
    },
    body: (f, tag) => ({ name: `Hostile ${tag}`, settings: { api_base_url: 'https://graph.example.com/v21.0' } }),
    text: 'name',
    nest: 'settings',
  },
  {
    name: 'POST /admin/businesses/{id}/connectors',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      return { businessId: business.id, path: `/admin/businesses/${business.id}/connectors`, headers: adminHeaders };
    },
    body: (f, tag) => kustomerConnector(`Hostile ${tag}`),
    text: 'name',
    number: 'rate_limit.per_minute',
    nest: 'settings',
  },
  {
    name: 'PATCH /admin/connectors/{id}',
    method: 'PATCH',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      const created = await connector(business.id, kustomerConnector('Hostile fixture'));
      return { businessId: business.id, path: `/admin/connectors/${created.id}`, headers: adminHeaders, watch: ['SELECT * FROM crm_connectors WHERE id = ?', [created.id]] };
    },
    body: (f, tag) => ({ name: `Hostile ${tag}`, rate_limit: { per_minute: 12 } }),
    text: 'name',
    number: 'rate_limit.per_minute',
    nest: 'settings',
  },
  {
    name: 'POST /admin/connectors/{id}/replay',
    limit: SMALL_LIMIT,
    async setup() {
      const business = await newBusiness();
      const created = await connector(business.id, kustomerConnector('Hostile fixture'));
      return { businessId: business.id, path: `/admin/connectors/${created.id}/replay`, headers: adminHeaders };
    },
    body: () => ({ statuses: ['dead'], from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' }),
    text: 'from',
    list: ['statuses', 'dead'],
  },
  {
    name: 'POST /embed/api/reply',
    limit: SMALL_LIMIT,
    async setup() {
      const s = await businessWithConversation();
      const issued = await api(s.business.key, 'POST', '/api-sso-generate-token', { customer_id: s.customer.id, scope: 'inbox:reply' });
      assert.equal(issued.status, 201, issued.text);
      return { businessId: s.business.id, path: '/embed/api/reply', headers: () => ({ authorization: `Bearer ${issued.body.token}` }) };
    },
    body: (f, tag) => ({ channel: 'whatsapp', content: `Hostile ${tag}` }),
    text: 'content',
  },
  {
    name: 'POST /webhooks/meta/{account}',
    limit: RECEIVER_LIMIT,
    // A provider retries whatever is not a 2xx, for hours: a signed delivery it means is
    // acknowledged even where parts of it cannot be used (items that cannot be read are counted
    // as rejected and skipped; a repeated name takes its last value; a NUL in text is text).
    // What is not JSON at all, or too large, is refused.
    accepts: RECEIVER_ACCEPTS,
    ownReader: true,
    async setup() {
      const s = await businessWithConversation();
      return {
        ...s,
        businessId: s.business.id,
        path: `/webhooks/meta/${s.account.id}`,
        headers: (bytes) => ({ 'x-hub-signature-256': metaSignature(s.secrets.app_secret, bytes) }),
      };
    },
    body: (f, tag) =>
      whatsappNotification(f.phoneNumberId, {
        contacts: [{ profile: { name: 'Hostile Fixture' }, wa_id: f.customer.phone.slice(1) }],
        messages: [{ from: f.customer.phone.slice(1), id: `wamid.${tag}`, timestamp: '1700000000', type: 'text', text: { body: `Hostile ${tag}` } }],
      }),
    text: 'entry.0.changes.0.value.messages.0.text.body',
    nest: 'entry.0.changes.0.value.messages.0.text',
    list: ['entry.0.changes.0.value.messages', {}],
    number: 'entry.0.changes.0.value.messages.0.timestamp',
  },
  {
    name: 'POST /api/webhooks/kustomer/{connector}',
    limit: RECEIVER_LIMIT,
    // A provider retries whatever is not a 2xx, for hours: a signed delivery it means is
    // acknowledged even where parts of it cannot be used (items that cannot be read are counted
    // as rejected and skipped; a repeated name takes its last value; a NUL in text is text).
    // What is not JSON at all, or too large, is refused.
    accepts: RECEIVER_ACCEPTS,
    ownReader: true,
    async setup() {
      const business = await newBusiness();
      const body = kustomerConnector('Hostile fixture');
      const created = await connector(business.id, body);
      return {
        businessId: business.id,
        path: created.webhook_path,
        headers: (bytes) => ({ 'x-kustomer-webhook-event': 'kustomer.customer.update', 'x-kustomer-webhook-signature': kustomerSignature(body.secrets.webhook_secret, bytes) }),
      };
    },
    body: (f, tag) => ({
      id: objectId(),
      name: 'kustomer.customer.update',
      org: objectId(),
      data: { type: 'customer', id: objectId(), attributes: { name: `Hostile ${tag}`, externalId: `X-${tag}` }, relationships: {} },
    }),
    text: 'data.attributes.name',
    nest: 'data.attributes',
  },
  {
    name: 'POST /webhooks/chatwoot/{connector}',
    limit: RECEIVER_LIMIT,
    // A provider retries whatever is not a 2xx, for hours: a signed delivery it means is
    // acknowledged even where parts of it cannot be used (items that cannot be read are counted
    // as rejected and skipped; a repeated name takes its last value; a NUL in text is text).
    // What is not JSON at all, or too large, is refused.
    accepts: RECEIVER_ACCEPTS,
    ownReader: true,
    async setup() {
      const business = await newBusiness();
      const secret = randomId(24);
      // Disabled: a delivery it takes is acknowledged and records no work for a Krayin that is
      // nowhere; its body is read and checked all the same.
      const created = await connector(business.id, {
        kind: 'krayin',
        enabled: false,
        settings: { base_url: 'http://127.0.0.1:9' },
        secrets: { api_token: `1|${randomId(40)}`, webhook_secret: secret },
      });
      return {
        businessId: business.id,
        path: created.webhook_path,
        headers: (bytes) => {
          const timestamp = String(Math.floor(Date.now() / 1000));
          const signature = createHmac('sha256', secret).update(`${timestamp}.`).update(bytes).digest('hex');
          return { 'x-chatwoot-timestamp': timestamp, 'x-chatwoot-signature': `sha256=${signature}`, 'x-chatwoot-delivery': randomUUID() };
        },
      };
    },
    body: (f, tag) => ({ ...chatwootContact({ id: randomInt(1, 1_000_000), name: `Hostile ${tag}`, email: `${tag}@example.com` }), event: 'contact_created' }),
    text: 'name',
    nest: 'custom_attributes',
    number: 'id',
  },
  {
    name: 'POST /webhooks/crm-links/{id}',
    limit: BATCH_LIMIT,
    // A push is the CRM's data, kept as sent and read by the fetcher later (JSON or CSV, as its
    // content type says): what is wrong inside it is reported on the link, not to the push. Only
    // what the push itself must be (UTF-8 text within the limit) is refused here.
    accepts: new Set([
      'arrays nested 10,000 deep as a field',
      'objects nested 10,000 deep as a field',
      'a whole body of arrays nested 10,000 deep',
      'a 100,000-element array',
      'the number 1e400',
      'a duplicate key',
      'a NUL escape (\\u0000) in a string',
      'a raw NUL byte in a string',
      'plain text as text/plain',
      'a form as application/x-www-form-urlencoded',
      'the JSON body as a multipart upload',
    ]),
    ownReader: true,
    async setup() {
      const business = await businessWithPage();
      const link = await addWebhookLink(business, `https://crm.example.com/${unique('push')}`);
      const target = new URL(link.webhook_url);
      return {
        businessId: business.id,
        path: `${target.pathname}${target.search}`,
        headers: (bytes) => standardWebhookHeaders(link.webhook_secret, bytes),
      };
    },
    body: (f, tag) => ({ customers: [{ id: 1, name: `Hostile ${tag}`, plan: 'gold' }] }),
    text: 'customers.0.name',
    nest: 'customers.0.plan',
    list: ['customers', {}],
    number: 'customers.0.id',
  },
];

// ---------------------------------------------------------------- the table

before(async () => {
  meta = await startMeta(accessTokens);
  reader = d1Reader();
});
after(() => {
  meta?.close();
  reader?.close();
});

describe('hostile bodies on every JSON endpoint', { concurrency: 4 }, () => {
  for (const endpoint of ENDPOINTS) {
    describe(endpoint.name, { concurrency: false }, () => {
      let fixture;
      /** The store as the next case must leave it; unknown after a case that changed it. */
      let expected;
      /** False once a case was served: the consumers may still be writing what it started. */
      let settled = true;
      before(async () => {
        fixture = await endpoint.setup();
      });

      for (const hostile of CASES) {
        test(hostile.name, async (t) => {
          const tag = unique('hostile');
          const rules = { ...hostile, ...(endpoint.ownReader ? {} : hostile.jsonReader) };
          const built = hostile.build(endpoint, endpoint.body(fixture, tag));
          const served = rules.outcome !== 'refused' || endpoint.accepts?.has(hostile.name);
          const state = () => storeState(fixture, tag, { settledOnly: !settled });
          const was = expected ?? (await state());
          expected = undefined;
          const res = await send(endpoint.method ?? 'POST', fixture.path, built, fixture.headers(built.bytes));
          t.diagnostic(`${res.status} ${res.body?.error?.code ?? ''}`);
          assert.ok(res.status < 500, `never a 5xx: ${res.status} ${res.text.slice(0, 300)}`);
          if (rules.outcome === 'served') {
            assert.ok(res.status < 300 || endpoint.validRefusal?.(res), `served as the control is: ${res.status} ${res.text.slice(0, 300)}`);
          }
          if (res.status < 300 && served) {
            settled = false;
          } else {
            const after = await state();
            if (res.status < 300 && endpoint.perItem?.(res)) {
              assert.deepEqual(after, was, 'a batch whose every item failed stores nothing');
            } else {
              assertRefusal(res, rules.status);
              rules.check?.(endpoint, res);
              assert.deepEqual(after, was, 'a refused body stores nothing');
            }
            expected = after;
          }
          if (rules.outcome === 'repaired') {
            // The same body with U+FFFD where the surrogate was, with a tag of its own (so that
            // what the first stored does not make it a conflict).
            const twin = rules.twin(endpoint, endpoint.body(fixture, unique('twin')));
            const other = await send(endpoint.method ?? 'POST', fixture.path, twin, fixture.headers(twin.bytes));
            expected = undefined;
            if (other.status < 300) settled = false;
            const answer = (r) => `${r.status < 300 ? '2xx' : r.status} ${r.body?.error?.code ?? ''} ${r.body?.error?.field ?? ''}`;
            assert.equal(answer(res), answer(other), `answered as the body with U+FFFD in its place (${res.text.slice(0, 200)} / ${other.text.slice(0, 200)})`);
          }
        });
      }

      // The control: the body every case starts from is one the endpoint serves, so a refusal
      // above is the hostile part's doing.
      test('the valid body it starts from is served', async () => {
        const bytes = Buffer.from(JSON.stringify(endpoint.body(fixture, unique('valid'))));
        const res = await send(endpoint.method ?? 'POST', fixture.path, { bytes, type: JSON_TYPE }, fixture.headers(bytes));
        assert.ok(res.status < 300 || endpoint.validRefusal?.(res), `${res.status} ${res.text.slice(0, 300)}`);
      });
    });
  }
});

// A body ten times the batch limit, sent in chunks without a length, right after the table's 589
// requests and again twice: refused with 413 every time, its upload read through first (an answer
// sent while the client still writes made the end of the connection a race: a reset, or wrangler
// dev's proxy's 503 "Your worker restarted mid-request").
describe('a 40 MB body without a length, after the table', () => {
  test('is 413 every time, three times in a row', async () => {
    const { key } = await newBusiness();
    const statuses = [];
    for (let n = 0; n < 3; n += 1) {
      const answer = await new Promise((resolve) => {
        const req = http.request(new URL('/api-customers-sync', BASE_URL), {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': key, 'transfer-encoding': 'chunked' },
          agent: false,
        }, (response) => {
          let text = '';
          response.on('data', (data) => (text += data));
          response.on('end', () => resolve({ status: response.statusCode, text }));
        });
        req.on('error', (error) => resolve({ status: `error ${error.code ?? error.message}`, text: '' }));
        const chunk = Buffer.alloc(64 * KIB, 'a');
        let sent = 0;
        const pump = () => {
          while (sent < 10 * BATCH_LIMIT) {
            sent += chunk.length;
            if (!req.write(chunk)) return req.once('drain', pump);
          }
          req.end();
        };
        req.write('{"customers":[{"name":"');
        pump();
      });
      statuses.push(answer.status);
      if (answer.status === 413) assert.equal(JSON.parse(answer.text).error.code, 'payload_too_large');
    }
    assert.deepEqual(statuses, [413, 413, 413]);
  });
});
