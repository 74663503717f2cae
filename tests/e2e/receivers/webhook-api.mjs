// The webhook API as the end-to-end tests drive it: registering an endpoint, reading its
// deliveries and attempt log, and the inbound WhatsApp messages (with media) that make events.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { admin, api, newBusiness, request, unique, waitFor } from '../support.mjs';
import { metaSignature } from '../signing.mjs';
import { whatsappNotification } from '../providers/meta.mjs';

export const EVENTS = [
  'message.received',
  'message.sent',
  'conversation.created',
  'conversation.assigned',
  'conversation.status_changed',
  'customer.created',
  'customer.updated',
  'alert.raised',
  'alert.resolved',
];

/** Registers an endpoint; asserts 201 and returns `{ webhook, secret }`. */
export async function createWebhook(key, fields) {
  const res = await api(key, 'POST', '/api-webhooks', { name: unique('hook'), ...fields });
  assert.equal(res.status, 201, `creating a webhook: ${res.text}`);
  assert.ok(res.body.webhook?.id, `the webhook has an id: ${res.text}`);
  assert.match(res.body.secret ?? '', /^whsec_/, `the secret is shown once: ${res.text}`);
  return res.body;
}

/** A business with one endpoint pointed at `endpoint` (a receiver handle), whose secret it learns. */
export async function businessWithEndpoint(endpoint, fields = {}, business) {
  const owner = business ?? (await newBusiness({ default_country: 'IE' }));
  const { webhook, secret } = await createWebhook(owner.key, { url: endpoint.url, ...fields });
  endpoint.secrets = [secret];
  return { business: owner, key: owner.key, webhook, secret };
}

export async function getWebhook(key, id) {
  const res = await api(key, 'GET', `/api-webhooks/${id}`);
  assert.equal(res.status, 200, `reading webhook ${id}: ${res.text}`);
  return res.body.webhook;
}

/** The deliveries of an endpoint, newest first. */
export async function deliveriesOf(key, webhookId, query = '') {
  const res = await api(key, 'GET', `/api-webhooks/${webhookId}/deliveries?limit=500${query ? `&${query}` : ''}`);
  assert.equal(res.status, 200, `listing deliveries: ${res.text}`);
  assert.ok(Array.isArray(res.body.deliveries), res.text);
  return res.body.deliveries;
}

/** The attempt log, newest first, for the given filters (`webhook_id`, `event_id`, `delivery_id`). */
export async function attemptsOf(key, filters) {
  const query = new URLSearchParams({ limit: '500', ...filters }).toString();
  const res = await api(key, 'GET', `/api-webhook-attempts?${query}`);
  assert.equal(res.status, 200, `listing attempts: ${res.text}`);
  assert.ok(Array.isArray(res.body.attempts), res.text);
  return res.body.attempts;
}

/** Waits until the delivery of `eventId` to `webhookId` satisfies `predicate`, and returns it. */
export function deliveryWhen(key, webhookId, eventId, predicate, timeoutMs = 25_000) {
  let seen;
  return waitFor(
    async () => {
      seen = (await deliveriesOf(key, webhookId)).find((d) => d.event_id === eventId);
      return seen && predicate(seen) && seen;
    },
    timeoutMs,
    `the delivery of ${eventId} to reach the expected state`,
    300,
  );
}

/** Milliseconds between consecutive requests. */
export function gaps(requests) {
  return requests.slice(1).map((r, i) => r.at - requests[i].at);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const digits = (count) => Array.from(randomBytes(count), (byte) => String(byte % 10)).join('');
export const uniquePhone = () => `+35387${digits(7)}`;

// ---------------------------------------------------------------- inbound WhatsApp

/**
 * Serves media as the Graph API does: `/{media id}` describes it, `/files/{media id}` gives the
 * bytes (a small PNG-signed image, declared image/png).
 */
export async function startMediaHost() {
  const image = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(1500)]);
  const host = { url: '', image, served: [] };
  const server = createServer((req, res) => {
    host.served.push(req.url);
    const mediaId = req.url.split('?')[0].split('/').pop();
    if (req.url.includes('/files/')) {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': image.length });
      res.end(image);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        messaging_product: 'whatsapp',
        url: `${host.url}/files/${mediaId}`,
        mime_type: 'image/png',
        sha256: 'unused',
        file_size: image.length,
        id: mediaId,
      }),
    );
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  host.url = `http://127.0.0.1:${server.address().port}`;
  host.close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return host;
}

/** A WhatsApp (Meta) account for `business`, its Graph API at `apiBaseUrl` when given. */
export function whatsappAccount(business, apiBaseUrl) {
  return metaAccount(business, 'whatsapp', apiBaseUrl);
}

/** A Meta account of `business` on `channel` (whatsapp, facebook: a page, instagram), its Graph
 * API at `apiBaseUrl` when given. */
export async function metaAccount(business, channel, apiBaseUrl) {
  const secrets = { app_secret: unique('app-secret'), verify_token: unique('verify'), access_token: unique('access') };
  const address = `1${digits(15)}`;
  const settings = apiBaseUrl ? { api_base_url: apiBaseUrl } : {};
  const res = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel,
    provider: 'meta',
    address,
    settings,
    secrets,
  });
  assert.equal(res.status, 201, `creating a ${channel} account: ${res.text}`);
  return { account: res.body, secrets, address, path: res.body.webhook_path };
}

/**
 * Posts one signed WhatsApp notification from `from` (E.164): a text, or an image when
 * `mediaId` is given. Asserts it was stored; returns the provider's message id.
 */
export async function receiveWhatsapp(setup, { from, name = 'WhatsApp Sender', text = 'Hello', mediaId }) {
  const wamid = `wamid.${unique('m')}`;
  const message = mediaId
    ? { from: from.slice(1), id: wamid, timestamp: '1700000000', type: 'image', image: { id: mediaId, mime_type: 'image/png', sha256: 'x', caption: text } }
    : { from: from.slice(1), id: wamid, timestamp: '1700000000', type: 'text', text: { body: text } };
  const body = JSON.stringify(
    whatsappNotification(setup.address, { contacts: [{ profile: { name }, wa_id: from.slice(1) }], messages: [message] }),
  );
  const res = await request('POST', setup.path, {
    body,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': metaSignature(setup.secrets.app_secret, body) },
  });
  assert.equal(res.status, 200, `the WhatsApp webhook: ${res.text}`);
  assert.equal(res.body.stored, 1, `the message is stored: ${res.text}`);
  return wamid;
}

/** Every message of a business since the epoch (each test's business has few). */
export async function messagesOf(key, { attachments = false } = {}) {
  const res = await api(
    key,
    'GET',
    `/api-messages-since?since=1970-01-01T00:00:00Z&limit=500${attachments ? '&include_attachments=true' : ''}`,
  );
  assert.equal(res.status, 200, `listing messages: ${res.text}`);
  return res.body.messages;
}
