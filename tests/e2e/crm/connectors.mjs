// Helpers for the CRM connector tests: a business connected to a local Kustomer, the sync log as
// the admin API shows it, and waiting for work to settle.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { admin, newBusiness, waitFor } from '../support.mjs';
import { startKustomer } from './kustomer.mjs';

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
