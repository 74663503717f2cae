// Shared helpers for the end-to-end suite: where the stack is, how to call it, and how to
// check the one error shape every endpoint answers with.
//
// The stack keeps its state between runs, so every test makes its own business(es) and
// never assumes that anything else is (or is not) stored.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

function required(name) {
  const value = process.env[name];
  if (!value || !value.trim()) {
    throw new Error(
      `${name} is not set. The end-to-end tests drive a running crm-edge stack: set ` +
        'CRM_EDGE_URL (e.g. http://127.0.0.1:8787) and CRM_EDGE_ADMIN_TOKEN (the ADMIN_TOKEN ' +
        'of .dev.vars), or run scripts/test, which starts a fresh stack and sets both.',
    );
  }
  return value.trim();
}

export const BASE_URL = required('CRM_EDGE_URL').replace(/\/+$/, '');
/**
 * The stack's public origin (its PUBLIC_BASE_URL): links it gives out and the URL Twilio signs
 * use it. scripts/test makes it differ from BASE_URL (localhost against 127.0.0.1).
 */
export const PUBLIC_URL = (process.env.CRM_EDGE_PUBLIC_URL || BASE_URL).trim().replace(/\/+$/, '');
export const ADMIN_TOKEN = required('CRM_EDGE_ADMIN_TOKEN');

/** The longest any single request may take before its test fails. */
export const REQUEST_TIMEOUT_MS = 60_000;

// The stack (wrangler dev) closes a connection left idle for five seconds. A test that works on
// the store synchronously (store.mjs starts Python for each statement) holds the event loop all
// that while, so the client has not seen such a close when it sends its next request on a pooled
// connection, which then fails with "other side closed". After a pause that long with nothing in
// flight, the pooled connections are let go (undici's global dispatcher, which Node's fetch uses,
// replaced as undici's setGlobalDispatcher would) and the next request opens a new one.
const IDLE_MS = 3_000;
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');
let inFlight = 0;
let lastAnswer = Date.now();

function dropIdleConnections() {
  if (inFlight > 0 || Date.now() - lastAnswer < IDLE_MS) return;
  const pooled = globalThis[GLOBAL_DISPATCHER];
  if (!pooled) return;
  globalThis[GLOBAL_DISPATCHER] = new pooled.constructor();
  pooled.close().catch(() => {});
}

/** Parses a body as JSON when it is JSON, else leaves the text. */
function parse(text) {
  if (text === '') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * One HTTP request. `body` may be a string/Buffer (sent as is) or any other value (sent as
 * JSON); either is labelled `application/json` unless `headers` give a content type. Returns
 * `{ status, headers, body, text }`.
 */
export async function request(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    // Labelled as JSON unless the caller says otherwise, as the API's clients send it (fetch
    // would label a string text/plain, which the API refuses with 415).
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers['content-type'] = 'application/json';
    }
  }
  // No request of this suite should take long: a hung request fails its test, not the run.
  init.signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  dropIdleConnections();
  inFlight += 1;
  let response;
  let text;
  try {
    response = await fetch(`${BASE_URL}${path}`, init);
    text = await response.text();
  } catch (error) {
    // fetch says only "fetch failed"; what failed (a reset, a refused connection) is its cause.
    const cause = error.cause ? `: ${error.cause.code ?? ''} ${error.cause.message ?? error.cause}` : '';
    throw new Error(`${method} ${path}: ${error.message}${cause}`, { cause: error });
  } finally {
    inFlight -= 1;
    lastAnswer = Date.now();
  }
  return { status: response.status, headers: response.headers, body: parse(text), text };
}

/** A call to the admin API with the admin token. */
export function admin(method, path, body, headers = {}) {
  return request(method, path, {
    body,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers },
  });
}

/** A call to the customer API with an API key (`key` null/undefined: no x-api-key header). */
export function api(key, method, path, body, headers = {}) {
  const all = { ...headers };
  if (key !== undefined && key !== null) all['x-api-key'] = key;
  return request(method, path, { body, headers: all });
}

/** A short unique tag, to keep values of one test apart from every other run's. */
export function unique(prefix = 't') {
  return `${prefix}-${randomUUID().slice(0, 8)}${Date.now().toString(36)}`;
}

/** The highest rate limit a business may have. */
export const UNLIMITED = { per_minute: 100_000, burst: 10_000 };

/** Creates a business (with the highest rate limit) and issues it one API key. */
export async function newBusiness({ default_country, name } = {}) {
  const payload = { name: name ?? unique('Business') };
  if (default_country !== undefined) payload.default_country = default_country;
  const created = await admin('POST', '/admin/businesses', payload);
  assert.equal(created.status, 201, `creating a business: ${created.text}`);
  const id = created.body.id;
  // The tests of everything but the limits send bursts no CRM would; rate-limits.test.mjs checks
  // the default limit and its enforcement.
  const limited = await admin('PATCH', `/admin/businesses/${id}`, { rate_limit: UNLIMITED });
  assert.equal(limited.status, 200, `raising the business's rate limit: ${limited.text}`);
  const issued = await admin('POST', `/admin/businesses/${id}/api-keys`, { name: 'e2e' });
  assert.equal(issued.status, 201, `issuing a key: ${issued.text}`);
  return { id, key: issued.body.key, keyId: issued.body.id, business: created.body };
}

/** Checks the common error shape: the status, `{error: {code, message, field?}}`. */
export function assertError(res, status, code, description = '') {
  const label = description ? `${description}: ` : '';
  assert.equal(res.status, status, `${label}status (body: ${res.text})`);
  assert.equal(typeof res.body, 'object', `${label}body is JSON (got ${res.text})`);
  assert.ok(res.body && res.body.error, `${label}body has an "error" object (got ${res.text})`);
  assert.equal(res.body.error.code, code, `${label}error code (body: ${res.text})`);
  assert.equal(typeof res.body.error.message, 'string', `${label}error message is text`);
  assert.ok(res.body.error.message.length > 0, `${label}error message is not empty`);
  if ('field' in res.body.error) {
    assert.equal(typeof res.body.error.field, 'string', `${label}error field is text`);
  }
  const allowed = new Set(['code', 'message', 'field']);
  for (const key of Object.keys(res.body.error)) {
    assert.ok(allowed.has(key), `${label}unexpected key "${key}" in the error`);
  }
  return res.body.error;
}

/** Syncs customers; asserts the request itself was accepted. */
export async function sync(key, customers, extra = {}) {
  const res = await api(key, 'POST', '/api-customers-sync', { customers, ...extra });
  assert.equal(res.status, 200, `sync: ${res.text.slice(0, 2000)}`);
  return res.body;
}

/** Bulk-creates customers; asserts the request itself was accepted. */
export async function bulkCreate(key, customers, extra = {}) {
  const res = await api(key, 'POST', '/api-customers-bulk-create', { customers, ...extra });
  assert.equal(res.status, 200, `bulk-create: ${res.text.slice(0, 2000)}`);
  return res.body;
}

/** GET /api-customers with one query parameter, value URL-encoded. */
export function getCustomer(key, param, value) {
  return api(key, 'GET', `/api-customers?${param}=${encodeURIComponent(value)}`);
}

/** Looks customers up in one batch. */
export async function batchLookup(key, keys) {
  const res = await api(key, 'POST', '/api-customers-batch-lookup', keys);
  assert.equal(res.status, 200, `batch lookup: ${res.text.slice(0, 2000)}`);
  return res.body;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Asserts that no customer with any of `emails` is stored for `key`'s business. */
export async function assertNotStored(key, emails, description = '') {
  for (const email of emails) {
    const res = await getCustomer(key, 'email', email);
    assert.equal(
      res.status,
      404,
      `${description ? `${description}: ` : ''}nothing should be stored for ${email} (got ${res.status} ${res.text.slice(0, 300)})`,
    );
  }
}

/** Asserts that a response is a client error (4xx), never a server error. */
export function assertClientError(res, description) {
  assert.ok(
    res.status >= 400 && res.status < 500,
    `${description}: expected a 4xx, got ${res.status} ${res.text.slice(0, 300)}`,
  );
  assert.ok(res.body && typeof res.body === 'object' && res.body.error, `${description}: error body (${res.text.slice(0, 300)})`);
  assert.notEqual(res.body.error.code, 'internal_error', `${description}: must not be an internal error`);
}

/**
 * Polls `check` (sync or async) every `intervalMs` until it returns a truthy value, and returns
 * that value; fails after `timeoutMs` with `description` and the last value seen.
 */
export async function waitFor(check, timeoutMs = 20_000, description = 'the condition', intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
  let shown;
  try {
    shown = JSON.stringify(last)?.slice(0, 1500);
  } catch {
    shown = String(last);
  }
  throw new Error(`waited ${timeoutMs} ms for ${description}; last value: ${shown}`);
}
