// Helpers for the CRM connector tests: a business connected to a local Kustomer or Krayin, the
// sync log as the admin API shows it, Chatwoot deliveries to a Krayin connector, and waiting for
// work to settle.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_URL, admin, newBusiness, unique, waitFor } from '../support.mjs';
import { startKustomer } from './kustomer.mjs';
import { sanctumToken, startKrayin } from './krayin.mjs';
import { deliver } from './chatwoot.mjs';

/** A Kustomer org with one API key; returns the fake and the key. */
export async function kustomerOrg(options = {}) {
  const apiKey = `ey${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const org = Math.random().toString(16).slice(2).padEnd(24, '0').slice(0, 24);
  const kustomer = await startKustomer({
    apiKeys: { [apiKey]: { org, user: { name: 'ChatBot Integration', email: 'bot@acme.example' }, ...options.key } },
    teams: [{ name: 'Support' }, { name: 'Billing' }],
    ...options.server,
  });
  return { kustomer, apiKey, org };
}

/** Connects `business` to the Kustomer at `kustomer.url`; returns the admin API's connector. */
export async function connectKustomer(business, { kustomer, apiKey }, { settings = {}, secrets = {}, ...rest } = {}) {
  const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'kustomer',
    settings: { base_url: kustomer.url, ...settings },
    secrets: { api_key: apiKey, ...secrets },
    rate_limit: { per_minute: null, per_second: null, per_day: null },
    ...rest,
  });
  assert.equal(res.status, 201, `connecting Kustomer: ${res.text}`);
  return res.body;
}

/** A new business connected to a new Kustomer org. */
export async function connectedBusiness(connectorFields = {}, orgOptions = {}) {
  const business = await newBusiness({ default_country: 'IE' });
  const org = await kustomerOrg(orgOptions);
  const connector = await connectKustomer(business, org, connectorFields);
  return { business, connector, ...org };
}

/** The connector's sync log entries (newest first) for `query`. */
export async function syncLog(connectorId, query = '') {
  const res = await admin('GET', `/admin/connectors/${connectorId}/sync-log?limit=100${query ? `&${query}` : ''}`);
  assert.equal(res.status, 200, `the sync log: ${res.text}`);
  return res.body.entries;
}

/** The connector as the admin API shows it (with its status). */
export async function connectorOf(connectorId) {
  const res = await admin('GET', `/admin/connectors/${connectorId}`);
  assert.equal(res.status, 200, `the connector: ${res.text}`);
  return res.body;
}

/** Waits until the connector has no pending work and at least `count` entries; returns the log. */
export async function settledLog(connectorId, count, timeoutMs = 30_000) {
  let entries = [];
  await waitFor(
    async () => {
      entries = await syncLog(connectorId);
      return entries.length >= count && entries.every((entry) => entry.status !== 'pending');
    },
    timeoutMs,
    `${count} settled sync log entries`,
  );
  return entries;
}

/** The local stack's log so far (wrangler's output). */
export function stackLog() {
  const state = process.env.CRM_EDGE_STATE;
  return state ? readFileSync(join(state, 'wrangler.log'), 'utf8') : '';
}

// ---------------------------------------------------------------- Krayin

/** A connector budget that never holds work back (the tests that are not about the budget). */
export const NO_BUDGET = Object.freeze({ per_minute: null, per_second: null, per_day: null });

/** The Krayin user every local Krayin's token belongs to. */
export const KRAYIN_USER = Object.freeze({ id: 1, name: 'Chat Integration', email: 'integration@krayin.test' });

/**
 * A local Krayin with one Sanctum token (of `KRAYIN_USER`), its own rate limit off unless
 * `options.rateLimit` says otherwise; returns the fake and the token.
 */
export async function krayinServer(options = {}) {
  const apiToken = sanctumToken(KRAYIN_USER.id);
  const krayin = await startKrayin({
    tokens: { [apiToken]: { user: { ...KRAYIN_USER } } },
    rateLimit: null,
    ...options,
  });
  return { krayin, apiToken };
}

/**
 * The sync options the pipeline's tests turn on: the guide's defaults are all off ("start
 * small"), which guides/002-krayin.test.mjs checks.
 */
export const KRAYIN_SYNC_ALL = Object.freeze({ sync_conversations: true, sync_messages: true, sync_organizations: true });

/**
 * Connects `business` to the Krayin at `krayin.origin` with `apiToken`, every sync option on;
 * `fields` add to or replace the settings, secrets and the rest of the body (the budget is off
 * unless `rate_limit` is given; `rate_limit: undefined` leaves it to the kind's default). Returns
 * the admin API's connector.
 */
export async function connectKrayin(business, { krayin, apiToken }, { settings = {}, secrets = {}, ...rest } = {}) {
  const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'krayin',
    settings: { base_url: krayin.origin, ...KRAYIN_SYNC_ALL, ...settings },
    secrets: { api_token: apiToken, ...secrets },
    rate_limit: NO_BUDGET,
    ...rest,
  });
  assert.equal(res.status, 201, `connecting Krayin: ${res.text}`);
  return res.body;
}

/**
 * A new business connected to a new local Krayin, with a Chatwoot webhook secret (unless
 * `connectorFields.secrets.webhook_secret` is given, null for none). Returns `{ business,
 * connector, krayin, apiToken, webhookSecret, chatwoot(payload, opts) }`, the last delivering one
 * signed Chatwoot webhook to the connector's `webhook_path`.
 */
export async function krayinBusiness(connectorFields = {}, serverOptions = {}) {
  const business = await newBusiness({ default_country: 'IE' });
  const server = await krayinServer(serverOptions);
  const given = connectorFields.secrets ?? {};
  const webhookSecret = 'webhook_secret' in given ? given.webhook_secret : unique('chatwoot-secret');
  const secrets = { ...given };
  if (webhookSecret === null) delete secrets.webhook_secret;
  else secrets.webhook_secret = webhookSecret;
  let connector;
  try {
    connector = await connectKrayin(business, server, { ...connectorFields, secrets });
  } catch (error) {
    await server.krayin.close();
    throw error;
  }
  const setup = { business, connector, ...server, webhookSecret };
  setup.chatwoot = (payload, opts = {}) => deliverChatwoot(setup, payload, opts);
  return setup;
}

/** The URL Chatwoot is given for `connector`: the stack's address and the connector's webhook path. */
export function chatwootUrl(connector) {
  return `${BASE_URL}${connector.webhook_path}`;
}

/**
 * Delivers `payload` to the connector as Chatwoot does (signed with `setup.webhookSecret`, or
 * `opts.secret`); `{ status, body, headers, delivery }`.
 */
export function deliverChatwoot(setup, payload, { secret = setup.webhookSecret, ...opts } = {}) {
  return deliver(chatwootUrl(setup.connector), secret, payload, { timeoutMs: 30_000, ...opts });
}

/** `GET /admin/connectors/{id}/contacts/{contact}` (`contact`: our customer id or `chatwoot:{id}`). */
export function krayinContact(connectorId, contact) {
  return admin('GET', `/admin/connectors/${connectorId}/contacts/${contact}`);
}

/** `GET /admin/connectors/{id}/contacts?external_id=…`. */
export function krayinContactByExternalId(connectorId, externalId) {
  return admin('GET', `/admin/connectors/${connectorId}/contacts?external_id=${encodeURIComponent(externalId)}`);
}

/** The write calls (POST, PUT) a local Krayin received under its API. */
export function krayinWrites(krayin) {
  return krayin.requests.filter((r) => (r.method === 'POST' || r.method === 'PUT') && r.path.startsWith('/api/v1/'));
}
