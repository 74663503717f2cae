// One of everything a documented path can name, made on the running stack, so that requests
// reach their handlers: a business with an API key at the highest rate limit (and a spare key to
// revoke, and a spare business whose settings the fuzzer may change), a channel account of each
// provider and a Facebook page, a Kustomer and a Krayin connector (and a Kustomer one to delete), a customer with a
// conversation, two webhook endpoints (one to delete), a webhook CRM link, an SSO token, a
// console link and an attachment. Used by tests/e2e/openapi.test.mjs and by the fuzz run (tests/fuzz/run.sh).
//
// Every destination points at a closed loopback port: nothing the stack is made to call leaves
// the machine.

import assert from 'node:assert/strict';
import { BASE_URL, admin, api, newBusiness, sync, unique } from '../support.mjs';

export const NOWHERE = 'http://127.0.0.1:9';

/** Digits unique enough for a phone number id or a page id. */
function digits() {
  return String(Date.now()).slice(-9) + String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
}

/** The highest rate limit a business may have (PATCH /admin/businesses/{id}). */
const HIGHEST_LIMIT = { per_minute: 100_000, burst: 10_000 };

export async function makeFixtures() {
  const fixtures = {};
  const business = await newBusiness({ default_country: 'IE' });
  Object.assign(fixtures, { business_id: business.id, key: business.key, key_id: business.keyId });
  // The probe and a fuzz run send thousands of requests with this key, far over the default
  // limit: the highest one, set before the key's first request (its limiter reads it then).
  const limited = await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: HIGHEST_LIMIT });
  assert.equal(limited.status, 200, `raising the rate limit: ${limited.text}`);
  // A business of its own for the fuzzer's PATCHes, which may set any rate limit.
  const spareBusiness = await admin('POST', '/admin/businesses', { name: unique('spare') });
  assert.equal(spareBusiness.status, 201, `a spare business: ${spareBusiness.text}`);
  fixtures.spare_business_id = spareBusiness.body.id;
  // And one for its moves between shards, which pause the moved business's writes.
  const moving = await admin('POST', '/admin/businesses', { name: unique('moving') });
  assert.equal(moving.status, 201, `a business to move: ${moving.text}`);
  fixtures.moving_business_id = moving.body.id;
  const spare = await admin('POST', `/admin/businesses/${business.id}/api-keys`, { name: 'spare' });
  assert.equal(spare.status, 201, `a spare key: ${spare.text}`);
  fixtures.spare_key_id = spare.body.id;

  const account = async (body) => {
    const res = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, body);
    assert.equal(res.status, 201, `a channel account: ${res.text}`);
    return res.body.id;
  };
  const metaSecrets = { app_secret: 'a', verify_token: 'v', access_token: 't' };
  fixtures.meta_account = await account({
    channel: 'whatsapp', provider: 'meta', address: digits(), settings: { api_base_url: NOWHERE }, secrets: metaSecrets,
  });
  fixtures.page_id = digits();
  await account({
    channel: 'facebook', provider: 'meta', address: fixtures.page_id, name: 'Page',
    settings: { api_base_url: NOWHERE }, secrets: metaSecrets,
  });
  fixtures.twilio_account = await account({
    channel: 'sms', provider: 'twilio', address: `+35387${digits().slice(-7)}`,
    settings: { account_sid: 'AC1', api_base_url: NOWHERE }, secrets: { auth_token: 't' },
  });
  fixtures.mailgun_account = await account({
    channel: 'email', provider: 'mailgun', address: `${unique('inbox')}@example.com`,
    settings: { domain: 'example.com', api_base_url: NOWHERE }, secrets: { signing_key: 's', api_key: 'k' },
  });

  const connector = async (body) => {
    const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, body);
    assert.equal(res.status, 201, `a connector: ${res.text}`);
    return res.body.id;
  };
  fixtures.kustomer = await connector({
    kind: 'kustomer', settings: { base_url: NOWHERE }, secrets: { api_key: 'k', webhook_secret: 's' },
  });
  fixtures.krayin = await connector({
    kind: 'krayin', settings: { base_url: NOWHERE }, secrets: { api_token: '1|t', webhook_secret: 's' },
  });
  // For DELETE /admin/connectors/{id} and /api-connectors/{id}: the probe's other paths keep theirs.
  fixtures.spare_connector = await connector({ kind: 'kustomer', settings: { base_url: NOWHERE }, secrets: { api_key: 'k' } });

  const email = `${unique('customer')}@example.com`;
  const synced = await sync(business.key, [{ name: 'Fixture', email, phone: '+353871234567', external_id: unique('crm') }]);
  fixtures.customer_id = synced.results.details[0].customer_id;
  // For DELETE /api-customers/{id} and its operator's twin: an erasure of a customer of its own.
  const spareCustomer = await sync(business.key, [{ name: 'Spare', email: `${unique('spare')}@example.com` }]);
  fixtures.spare_customer_id = spareCustomer.results.details[0].customer_id;
  const sent = await api(business.key, 'POST', '/api-send-message', { email, channel: 'email', content: 'hello' });
  assert.equal(sent.status, 202, `a message: ${sent.text}`);
  fixtures.conversation_id = sent.body.message.conversation_id;
  const escalated = await api(business.key, 'POST', '/api-escalations', { conversation_id: fixtures.conversation_id, reason: 'fixture' });
  assert.equal(escalated.status, 202, `an escalation: ${escalated.text}`);
  fixtures.escalation_id = escalated.body.escalation.id;

  const webhook = async () => {
    // Subscribed to one rare event only: a fuzz run's thousands of customer events would otherwise
    // each be delivered (and retried) to it.
    const res = await api(business.key, 'POST', '/api-webhooks', {
      name: 'fixture', url: `${NOWHERE}/hook`, events: ['conversation.assigned'],
    });
    assert.equal(res.status, 201, `a webhook: ${res.text}`);
    return res.body.webhook.id;
  };
  fixtures.webhook_id = await webhook();
  fixtures.spare_webhook_id = await webhook();

  const link = await api(business.key, 'POST', '/api/dashboard/crm-links', {
    page_id: fixtures.page_id, channels: ['messenger'], name: 'fixture', url: `${NOWHERE}/data`, type: 'webhook',
    is_active: true,
  });
  assert.equal(link.status, 201, `a CRM link: ${link.text}`);
  fixtures.link_id = link.body.crm_link.id;

  const token = await api(business.key, 'POST', '/api-sso-generate-token', {
    customer_id: fixtures.customer_id, scope: 'inbox:reply', expires_in: 86400,
  });
  assert.equal(token.status, 201, `an SSO token: ${token.text}`);
  fixtures.sso_token = token.body.token;
  const consoleLink = await api(business.key, 'POST', '/api-console-links');
  assert.equal(consoleLink.status, 201, `a console link: ${consoleLink.text}`);
  fixtures.console_session_id = consoleLink.body.id;

  const form = new FormData();
  form.append('file', new Blob(['fixture'], { type: 'text/plain' }), 'fixture.txt');
  const uploaded = await fetch(`${BASE_URL}/api-upload-attachment`, {
    method: 'POST', headers: { 'x-api-key': business.key }, body: form,
  });
  assert.equal(uploaded.status, 201, 'an attachment');
  fixtures.attachment_id = (await uploaded.json()).attachment.id;
  return fixtures;
}

// Run as a script (the fuzz run), it prints the fixtures as shell assignments.
if (import.meta.url === `file://${process.argv[1]}`) {
  const fixtures = await makeFixtures();
  for (const [name, value] of Object.entries(fixtures)) {
    console.log(`FUZZ_${name.toUpperCase()}=${value}`);
  }
}
