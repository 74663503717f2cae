// One pass through every function on the real runtime (workerd under `wrangler dev`, its D1, KV,
// R2, queues and Durable Objects as wrangler simulates them), each reached through the gateway or
// its queue: that the bundles load, their bindings are the ones functions.toml declares, their
// queues deliver, the cron runs, and the runtime's own objects (requests, forms, streams,
// WebCrypto) behave as the native twin the rest of the tests run on says they do. What each
// function decides is tested natively (tests/pipelines, TESTING.md).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PUBLIC_URL, admin, api, newBusiness, request, sync, unique, waitFor } from './support.mjs';
import { formBody, mailgunSignature, twilioSignature } from './signing.mjs';
import { verifyStandardSignature } from './receivers/webhook-receiver.mjs';
import { createWebhook, messagesOf, receiveWhatsapp, startMediaHost, uniquePhone, whatsappAccount } from './receivers/webhook-api.mjs';
import { localPartners } from './partners.mjs';
import { d1 } from './store.mjs';
import { connectedBusiness, krayinBusiness, settledLog } from './crm/connectors.mjs';
import { contact, contactCreated } from './crm/chatwoot.mjs';
import { startHubSpot } from './crm/hubspot.mjs';
import { isAcknowledgement, startSalesforce } from './crm/salesforce.mjs';
import { startCrm } from './links/crm-server.mjs';
import { CUSTOM_EXAMPLE, asGuide, ownRecords } from './links/guide.mjs';
import { SMALL, addLink, businessWithPages, search, waitForFetched } from './links/links.mjs';

const partners = localPartners();

/**
 * A Twilio SMS account of `business`; `receive(text)` posts an inbound SMS to it signed as Twilio
 * signs one, and answers the response.
 */
async function twilioAccount(business) {
  const token = randomBytes(16).toString('hex');
  const sms = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'sms', provider: 'twilio', address: uniquePhone(),
    settings: { account_sid: `AC${randomBytes(16).toString('hex')}` }, secrets: { auth_token: token },
  });
  assert.equal(sms.status, 201, sms.text);
  const { address, webhook_path: path } = sms.body;
  const receive = (text) => {
    const params = { MessageSid: `SM${randomBytes(16).toString('hex')}`, From: uniquePhone(), To: address, Body: text, NumMedia: '0' };
    const signature = twilioSignature(token, `${PUBLIC_URL}${path}`, params);
    return request('POST', path, { body: formBody(params), headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature } });
  };
  return { receive };
}

describe('every function on the real runtime', () => {
  test('gateway, rate-limiter and admin: a business and its key, the keyed answers counted', async () => {
    const health = await request('GET', '/health');
    assert.equal(health.status, 200, health.text);
    const business = await newBusiness({ default_country: 'IE' });
    const res = await api(business.key, 'GET', '/api-customers?external_id=nobody');
    assert.equal(res.status, 404, res.text);
    assert.match(res.headers.get('x-ratelimit-limit') ?? '', /^\d+$/, 'the rate limiter answered');
  });

  test('customers, customers-sync, customers-bulk-create and customers-batch-lookup', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const synced = await sync(business.key, [{ external_id: 'CRM-1', name: 'Ada', phone: '087 123 4567' }]);
    assert.equal(synced.results.created, 1);
    const bulk = await api(business.key, 'POST', '/api-customers-bulk-create', { customers: [{ name: 'Grace', email: `${unique('g')}@example.com` }] });
    assert.equal(bulk.status, 200, bulk.text);
    const found = await api(business.key, 'GET', '/api-customers?external_id=CRM-1');
    assert.equal(found.body.phone, '+353871234567');
    const looked = await api(business.key, 'POST', '/api-customers-batch-lookup', { external_ids: ['CRM-1', 'CRM-2'] });
    assert.equal(looked.status, 200, looked.text);
  });

  test('receiver-meta, webhook-dispatcher and crm-sync: a signed WhatsApp message stored, delivered signed, and on the Kustomer timeline', async () => {
    const setup = await connectedBusiness();
    partners.closeAfter(setup.kustomer);
    const endpoint = partners.receiver.endpoint();
    const { secret } = await createWebhook(setup.business.key, { url: endpoint.url });
    const whatsapp = await whatsappAccount(setup.business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'smoke' });
    await endpoint.waitFor((list) => list.some((r) => r.body?.event === 'message.received'), 30_000, 'message.received');
    const delivered = endpoint.requests.find((r) => r.body?.event === 'message.received');
    assert.ok(verifyStandardSignature(delivered.headers, delivered.raw, secret), 'signed');
    await waitFor(
      () => setup.kustomer.conversations.length === 1 && setup.kustomer.messages(setup.kustomer.conversations[0].id).length === 1,
      30_000,
      'the message on the Kustomer timeline',
    );
    assert.equal(setup.kustomer.messages(setup.kustomer.conversations[0].id)[0].attributes.preview, 'smoke');
    const [message] = await messagesOf(setup.business.key);
    const conversation = await api(setup.business.key, 'GET', `/api-conversations-by-customer?customer_id=${message.customer_id}`);
    assert.equal(conversation.status, 200, conversation.text);
    const closed = await api(setup.business.key, 'PATCH', `/api-conversations/${message.conversation_id}`, { status: 'resolved' });
    assert.equal(closed.status, 200, closed.text);
    const analytics = await api(setup.business.key, 'GET', '/api-crm-analytics');
    assert.equal(analytics.status, 200, analytics.text);
    await settledLog(setup.connector.id, 3);
  });

  test('media-fetcher and download-media: a file received with a message is fetched, stored in R2 and downloaded', async () => {
    const mediaHost = await startMediaHost();
    partners.closeAfter(mediaHost);
    const business = await newBusiness({ default_country: 'IE' });
    const whatsapp = await whatsappAccount(business, mediaHost.url);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'a photo', mediaId: `m${randomBytes(6).toString('hex')}` });
    const [message] = await waitFor(async () => {
      const listed = await messagesOf(business.key, { attachments: true });
      return listed[0]?.attachments?.[0]?.status === 'stored' && listed;
    }, 30_000, 'the stored file');
    const file = await fetch(message.attachments[0].download_url, { headers: { 'x-api-key': business.key } });
    assert.equal(file.status, 200);
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), Buffer.from(mediaHost.image), 'byte for byte');
  });

  test('send-message and message-dispatcher: a send goes out through the Cloud API', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const whatsapp = await partners.whatsappOf(business);
    const phone = uniquePhone();
    await sync(business.key, [{ external_id: 'CRM-1', name: 'Ada', phone }]);
    const sent = await api(business.key, 'POST', '/api-send-message', { customer_id: 'CRM-1', channel: 'whatsapp', content: 'smoke' });
    assert.equal(sent.status, 202, sent.text);
    await waitFor(async () => (await messagesOf(business.key)).find((m) => m.id === sent.body.message.id)?.status === 'sent', 30_000, 'sent');
    assert.equal(partners.meta.for(phone.slice(1)).length, 1);
  });

  test('upload-attachment: a multipart upload is stored and downloads as it was', async () => {
    const business = await newBusiness();
    const form = new FormData();
    form.append('file', new Blob(['smoke test'], { type: 'text/plain' }), 'smoke.txt');
    const uploaded = await fetch(`${process.env.CRM_EDGE_URL}/api-upload-attachment`, { method: 'POST', headers: { 'x-api-key': business.key }, body: form });
    assert.equal(uploaded.status, 201, await uploaded.clone().text());
    const { attachment } = await uploaded.json();
    const file = await fetch(`${process.env.CRM_EDGE_URL}/api/download-media?id=${attachment.id}`, { headers: { 'x-api-key': business.key } });
    assert.equal(await file.text(), 'smoke test');
  });

  test('receiver-twilio and receiver-email: a signed SMS and a signed mail are stored', async () => {
    const business = await newBusiness();
    const sms = await twilioAccount(business);
    const twilio = await sms.receive('smoke');
    assert.equal(twilio.status, 200, twilio.text);

    const key = randomBytes(16).toString('hex');
    const address = `${unique('support')}@in.example.com`;
    const email = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
      channel: 'email', provider: 'mailgun', address, settings: { domain: 'in.example.com' }, secrets: { signing_key: key, api_key: 'k' },
    });
    assert.equal(email.status, 201, email.text);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const mailToken = randomBytes(25).toString('hex');
    const form = new FormData();
    const fields = {
      timestamp, token: mailToken, signature: mailgunSignature(key, timestamp, mailToken),
      recipient: address, sender: 'ada@example.com', from: 'ada@example.com', subject: 'smoke',
      'body-plain': 'smoke', 'stripped-text': 'smoke', 'Message-Id': `<${unique('m')}@example.com>`,
    };
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    const mail = await fetch(`${process.env.CRM_EDGE_URL}${email.body.webhook_path}`, { method: 'POST', body: form });
    assert.equal(mail.status, 200, await mail.text());
    await waitFor(async () => (await messagesOf(business.key)).length === 2, 20_000, 'both stored');
  });

  test('held-inbound: an SMS that arrives while its business is being moved is answered 200, kept, and stored once the move is aborted', async () => {
    const business = await newBusiness();
    const sms = await twilioAccount(business);
    const shard = d1('SELECT shard FROM business_shards WHERE business_id = ?', [business.id])[0]?.[0] ?? 0;
    const paused = await admin('POST', `/admin/businesses/${business.id}/move`, { to_shard: 1 - shard });
    assert.equal(paused.body.phase, 'pausing', paused.text);
    await new Promise((resolve) => setTimeout(resolve, paused.body.wait_seconds * 1000));
    const twilio = await sms.receive('sent during a move');
    assert.equal(twilio.status, 200, `Twilio does not retry a 5xx: the message is kept (${twilio.text})`);
    assert.deepEqual(await messagesOf(business.key), [], 'not stored while the business is paused');
    let step = { body: { phase: 'pausing' } };
    for (let n = 0; n < 20 && step.body.phase !== 'aborted'; n += 1) {
      step = await admin('POST', `/admin/businesses/${business.id}/move/abort`, { cursor: step.body.cursor });
      assert.equal(step.status, 200, step.text);
      if (step.body.wait_seconds > 0) await new Promise((resolve) => setTimeout(resolve, step.body.wait_seconds * 1000));
    }
    assert.equal(step.body.phase, 'aborted');
    await waitFor(async () => (await messagesOf(business.key)).length === 1, 40_000, 'the kept SMS stored after the move');
    const [stored] = await messagesOf(business.key);
    assert.equal(stored.content, 'sent during a move');
  });

  test('receiver-kustomer: a signed Kustomer event is taken', async () => {
    const token = unique('hook-token');
    const setup = await connectedBusiness({ secrets: { webhook_secret: token } });
    partners.closeAfter(setup.kustomer);
    const event = { name: 'kustomer.conversation.update', id: randomBytes(12).toString('hex'), data: { type: 'conversation', id: randomBytes(12).toString('hex'), attributes: { status: 'done' } } };
    const { headers, body } = setup.kustomer.webhook(token, event);
    const res = await request('POST', setup.connector.webhook_path, { body, headers });
    assert.ok([200, 202].includes(res.status), `${res.status} ${res.text}`);
  });

  test('crm-sync and receiver-hubspot: a WhatsApp message on the HubSpot contact\'s timeline, and a signed HubSpot delivery taken', async () => {
    const token = unique('pat-na1-');
    const clientSecret = unique('hubspot-app-secret');
    const hubspot = partners.closeAfter(await startHubSpot({ tokens: { [token]: {} }, rateLimit: null }));
    const business = await newBusiness({ default_country: 'IE' });
    const made = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'hubspot', settings: { api_url: hubspot.url }, secrets: { access_token: token, client_secret: clientSecret },
    });
    assert.equal(made.status, 201, made.text);
    const whatsapp = await whatsappAccount(business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'smoke for HubSpot' });
    await waitFor(() => hubspot.communications.length === 1, 30_000, 'the message on the HubSpot timeline');
    const [record] = hubspot.communications;
    assert.equal(record.properties.hs_communication_body, 'smoke for HubSpot');
    assert.equal(record.properties.hs_communication_channel_type, 'WHATS_APP');
    assert.equal(hubspot.contacts.length, 1);
    assert.equal(record.associations[0].toObjectId, hubspot.contacts[0].id, 'on the contact');
    const path = made.body.webhook_path;
    const events = [{ eventId: 1, subscriptionId: 1, portalId: hubspot.portalId, appId: 1, occurredAt: Date.now(), subscriptionType: 'ticket.propertyChange', attemptNumber: 0, objectId: 999, propertyName: 'hs_pipeline_stage', propertyValue: '4', changeSource: 'CRM' }];
    const { headers, body } = hubspot.webhook(clientSecret, `${PUBLIC_URL}${path}`, events);
    const taken = await request('POST', path, { body, headers });
    assert.equal(taken.status, 200, taken.text);
    assert.equal(taken.body.events[0].outcome, 'ignored: not a ticket crm-edge made', taken.text);
    const forged = hubspot.webhook('another-secret', `${PUBLIC_URL}${path}`, events);
    const refused = await request('POST', path, { body: forged.body, headers: forged.headers });
    assert.equal(refused.status, 401, refused.text);
  });

  test('crm-sync and receiver-salesforce: a WhatsApp message a completed Task on the Salesforce contact, and an Outbound Message acknowledged', async () => {
    const token = unique('00D-session-');
    const salesforce = partners.closeAfter(await startSalesforce({ tokens: { [token]: {} } }));
    const outboundToken = randomBytes(24).toString('base64url');
    const business = await newBusiness({ default_country: 'IE' });
    const made = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'salesforce',
      settings: { instance_url: salesforce.url },
      secrets: { client_id: 'smoke-app', client_secret: 'smoke-secret', access_token: token, outbound_token: outboundToken },
    });
    assert.equal(made.status, 201, made.text);
    const whatsapp = await whatsappAccount(business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'smoke for Salesforce' });
    await waitFor(() => salesforce.records('Task').length === 1, 30_000, 'the message as a Task');
    const [task] = salesforce.records('Task');
    const [contact] = salesforce.records('Contact');
    assert.equal(task.Subject, 'WhatsApp from the customer: smoke for Salesforce');
    assert.equal(task.Status, 'Completed');
    assert.equal(task.WhoId, contact.Id, 'on the contact');
    const message = salesforce.outboundMessage({ object: 'Contact', ids: [contact.Id], fields: ['Email'] });
    const path = `${made.body.webhook_path}/${outboundToken}`;
    const taken = await request('POST', path, { body: message.body, headers: message.headers });
    assert.equal(taken.status, 200, taken.text);
    assert.ok(isAcknowledgement(taken.text), taken.text);
    const refused = await request('POST', `${made.body.webhook_path}/${'x'.repeat(32)}`, { body: message.body, headers: message.headers });
    assert.equal(refused.status, 401, refused.text);
  });

  test('receiver-chatwoot: a signed Chatwoot contact reaches Krayin', async () => {
    const setup = await krayinBusiness();
    partners.closeAfter(setup.krayin);
    const res = await setup.chatwoot(contactCreated(contact({ email: `${unique('c')}@example.com` })));
    assert.ok([200, 202].includes(res.status), `${res.status} ${JSON.stringify(res.body)}`);
  });

  test('webhooks, sso-token, embed-inbox and console: a test send, an inbox token and a console link', async () => {
    const business = await newBusiness();
    const endpoint = partners.receiver.endpoint();
    const { webhook } = await createWebhook(business.key, { url: endpoint.url });
    const tested = await api(business.key, 'POST', `/api-webhooks/${webhook.id}/test`, {});
    assert.equal(tested.status, 200, tested.text);
    await endpoint.waitForCount(1, 20_000);
    const [customer] = (await sync(business.key, [{ name: 'Ada', email: `${unique('a')}@example.com` }])).results.details;
    const token = await api(business.key, 'POST', '/api-sso-generate-token', { customer_id: customer.customer_id });
    assert.equal(token.status, 201, token.text);
    const inbox = await request('GET', new URL(token.body.embed_url).pathname + new URL(token.body.embed_url).search);
    assert.equal(inbox.status, 200, inbox.text);
    const link = await api(business.key, 'POST', '/api-console-links');
    assert.equal(link.status, 201, link.text);
    const page = await request('GET', new URL(link.body.url).pathname + new URL(link.body.url).search);
    assert.equal(page.status, 200, page.text);
  });

  test('knowledge and knowledge-fetcher: a CRM link fetched, embedded by the local embedder and searched', async () => {
    const crm = await startCrm(SMALL);
    partners.closeAfter(crm);
    const business = await businessWithPages(1);
    const [page] = business.pages;
    // Its records are customers': said, as a link whose records name customers must say.
    const body = { ...asGuide(CUSTOM_EXAMPLE, page, crm.url), ...ownRecords() };
    await addLink(business, body);
    await waitForFetched(business, page, body.url, { records: SMALL.custom });
    const found = await search(business, { page_id: page, channel: body.channels[0], q: 'customer' });
    assert.ok(found.results.length > 0, JSON.stringify(found));
  });

  test('the maintenance sweep (what webhook-dispatcher\'s cron runs) visits every part and every shard', async () => {
    const swept = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(swept.status, 200, swept.text);
    assert.deepEqual(swept.body.failed, [], 'every part of the sweep ran');
  });
});
