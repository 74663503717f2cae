// Sending messages from the CRM (`POST /api-send-message`), end to end: the request is accepted
// with 202 and the message stored `queued`; the dispatcher, fed by the queue, calls the channel's
// provider (local servers that speak WhatsApp Cloud API, Messenger/Instagram Send API, Twilio and
// Mailgun, and fail on request) and the message ends `sent` or `failed`, as
// `/api-messages-since` shows. Retries wait for Retry-After or back off 2 s, 4 s, ...; the
// 5th failed attempt fails the message with the provider's last reason.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomInt } from 'node:crypto';
import { BASE_URL, PUBLIC_URL, admin, api, assertError, newBusiness, request, sync, unique, UUID, waitFor } from './support.mjs';
import { formBody, twilioSignature } from './signing.mjs';
import { GRAPH_VERSION, startMeta } from './providers/meta.mjs';
import { startTwilio } from './providers/twilio.mjs';
import { startMailgun } from './providers/mailgun.mjs';
import { randomId, SLOW_MS } from './providers/server.mjs';

/** The longest a test waits for a message to settle. */
const SETTLE_MS = 30_000;

const digits = (n) => Array.from({ length: n }, () => randomInt(10)).join('');
const irishMobile = () => `+35387${digits(7)}`;

const accessTokens = new Map();
const authTokens = new Map();
const apiKeys = new Map();
let meta;
let twilio;
let mailgun;
/** The business that has an account on every channel, and one that has none. */
let acme;
let bare;
const accounts = {};

async function addAccount(business, account) {
  const res = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, account);
  assert.equal(res.status, 201, `creating the ${account.channel} account: ${res.text}`);
  return res.body;
}

async function metaAccount(channel) {
  const address = digits(15);
  const secrets = { app_secret: randomId(32), verify_token: randomId(16), access_token: `EAAG${randomId(40)}` };
  accessTokens.set(address, secrets.access_token);
  const created = await addAccount(acme, {
    channel,
    provider: 'meta',
    address,
    settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
    secrets,
  });
  return { ...created, secrets };
}

before(async () => {
  [meta, twilio, mailgun] = await Promise.all([startMeta(accessTokens), startTwilio(authTokens), startMailgun(apiKeys)]);
  [acme, bare] = await Promise.all([newBusiness({ default_country: 'IE' }), newBusiness({ default_country: 'IE' })]);
  accounts.whatsapp = await metaAccount('whatsapp');
  accounts.facebook = await metaAccount('facebook');
  accounts.instagram = await metaAccount('instagram');

  const accountSid = `AC${randomId(32)}`;
  const authToken = randomId(32);
  authTokens.set(accountSid, authToken);
  accounts.sms = await addAccount(acme, {
    channel: 'sms',
    provider: 'twilio',
    address: `+35386${digits(7)}`,
    settings: { account_sid: accountSid, api_base_url: twilio.url },
    secrets: { auth_token: authToken },
  });
  accounts.sms.accountSid = accountSid;

  const domain = `mg-${randomId(8)}.example.com`;
  const apiKey = `key-${randomId(32)}`;
  apiKeys.set(domain, apiKey);
  accounts.email = await addAccount(acme, {
    channel: 'email',
    provider: 'mailgun',
    address: `support@${domain}`,
    settings: { domain, api_base_url: mailgun.url },
    secrets: { signing_key: randomId(32), api_key: apiKey },
  });
  accounts.email.domain = domain;
});

after(async () => {
  await Promise.all([meta?.close(), twilio?.close(), mailgun?.close()]);
});

/** Stores a customer of `business` and returns it with its id. */
async function newCustomer(business, fields = {}) {
  const tag = unique('send');
  const customer = { external_id: `CRM-${tag}`, name: 'John Doe', email: `${tag}@example.com`, phone: irishMobile(), ...fields };
  const result = await sync(business.key, [customer]);
  assert.equal(result.results.details[0].action, 'created', JSON.stringify(result));
  return { ...customer, id: result.results.details[0].customer_id };
}

/**
 * A customer who has written to the page (Messenger) or the Instagram account: the inbound,
 * signed webhook creates them with their page-scoped id. Returns the customer id and the id.
 */
async function customerWhoWrote(channel) {
  const account = accounts[channel];
  const scopedId = digits(16);
  const now = Date.now();
  const payload = JSON.stringify({
    object: channel === 'facebook' ? 'page' : 'instagram',
    entry: [
      {
        id: account.address,
        time: now,
        messaging: [
          {
            sender: { id: scopedId },
            recipient: { id: account.address },
            timestamp: now,
            message: { mid: `m_${randomId(30)}`, text: `Hello from ${scopedId}` },
          },
        ],
      },
    ],
  });
  const signature = createHmac('sha256', account.secrets.app_secret).update(payload).digest('hex');
  const res = await request('POST', `/webhooks/meta/${account.id}`, {
    body: payload,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${signature}` },
  });
  assert.equal(res.status, 200, `the ${channel} webhook: ${res.text}`);
  const inbound = (await messages(acme.key)).find((m) => m.content === `Hello from ${scopedId}`);
  assert.ok(inbound, `the inbound ${channel} message is stored`);
  return { customerId: inbound.customer_id, scopedId };
}

function send(key, body) {
  return api(key, 'POST', '/api-send-message', body);
}

async function messages(key) {
  const res = await api(key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500');
  assert.equal(res.status, 200, res.text);
  return res.body.messages;
}

/** Polls until the message is no longer queued (bounded), and returns it. */
async function settled(key, id, timeoutMs = SETTLE_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = (await messages(key)).find((m) => m.id === id);
    if (last && last.status !== 'queued') return last;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.fail(`message ${id} still ${last?.status} after ${timeoutMs} ms (${last?.status_reason ?? 'no reason'})`);
}

/** Accepts a send and returns the queued message. */
async function accepted(key, body) {
  const res = await send(key, body);
  assert.equal(res.status, 202, `send: ${res.text}`);
  assert.equal(res.body.success, true);
  const { message } = res.body;
  assert.match(message.id, UUID);
  assert.equal(message.status, 'queued');
  assert.equal(message.direction, 'outbound');
  assert.equal(message.content, body.content);
  return message;
}

/** Milliseconds between consecutive requests, for the log and the backoff assertions. */
function gaps(requests) {
  return requests.slice(1).map((r, i) => r.at - requests[i].at);
}

describe('sending a message from the CRM', { concurrency: true }, () => {
  test('a WhatsApp message to the CRM external_id is sent through the Cloud API exactly as documented', async (t) => {
    const customer = await newCustomer(acme, { whatsapp_number: irishMobile() });
    const content = 'Hi! Your order is ready for pickup.';
    const message = await accepted(acme.key, { customer_id: customer.external_id, channel: 'whatsapp', content });
    assert.equal(message.customer_id, customer.id);
    assert.equal(message.channel, 'whatsapp');
    assert.equal(message.platform, 'whatsapp');

    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'sent', done.status_reason);
    assert.equal(done.conversation_id, message.conversation_id);
    const calls = meta.for(customer.whatsapp_number.slice(1));
    assert.equal(calls.length, 1);
    assert.equal(calls[0].path, `/${GRAPH_VERSION}/${accounts.whatsapp.address}/messages`);
    assert.equal(calls[0].authorized, true, 'the bearer token is the account access token');
    assert.equal(calls[0].headers['content-type'], 'application/json');
    assert.deepEqual(calls[0].body, {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: customer.whatsapp_number.slice(1),
      type: 'text',
      text: { body: content },
    });
    t.diagnostic(`sent in one attempt`);
  });

  test('an SMS the provider refuses (invalid number) fails at once with Twilio\'s reason', async (t) => {
    const customer = await newCustomer(acme);
    twilio.script(customer.phone, ['invalid']);
    const national = `0${customer.phone.slice(4)}`;
    const message = await accepted(acme.key, { phone: national, channel: 'sms', content: 'Your code is 1234' });
    assert.equal(message.customer_id, customer.id, 'a national number finds the customer by the default country');

    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'failed');
    assert.match(done.status_reason, /21211/);
    assert.ok(done.status_reason.includes(`Invalid 'To' Phone Number: ${customer.phone}`), done.status_reason);
    // Give a wrong retry the time to happen before asserting that it did not.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const calls = twilio.for(customer.phone);
    assert.equal(calls.length, 1, 'a rejection is not retried');
    assert.equal(calls[0].authorized, true, 'HTTP Basic with the account SID and auth token');
    assert.equal(calls[0].path, `/2010-04-01/Accounts/${accounts.sms.accountSid}/Messages.json`);
    assert.deepEqual(calls[0].body, { To: customer.phone, From: accounts.sms.address, Body: 'Your code is 1234' });
    t.diagnostic(`failed: ${done.status_reason}`);
  });

  test('an email rate limited with Retry-After: 1 is sent on the next attempt', async (t) => {
    const customer = await newCustomer(acme);
    mailgun.script(customer.email, ['rate-limited', 'ok']);
    const message = await accepted(acme.key, {
      email: customer.email.toUpperCase(),
      channel: 'email',
      subject: 'Your order',
      content: 'Hi John,\nyour order is ready.',
    });
    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'sent', done.status_reason);
    assert.equal(done.status_reason, undefined, 'a sent message carries no reason');
    const calls = mailgun.for(customer.email);
    assert.equal(calls.length, 2);
    assert.ok(calls.every((c) => c.authorized), 'HTTP Basic api:<key>');
    assert.equal(calls[0].path, `/v3/${accounts.email.domain}/messages`);
    assert.deepEqual(calls[1].body, {
      from: accounts.email.address,
      to: customer.email,
      subject: 'Your order',
      text: 'Hi John,\nyour order is ready.',
      files: [],
    });
    const [gap] = gaps(calls);
    assert.ok(gap >= 900, `the retry waited for Retry-After (${gap} ms)`);
    t.diagnostic(`429 then 200; retry after ${gap} ms`);
  });

  test('a Messenger message that meets two 500s is sent on the third attempt, backing off 2 s then 4 s', async (t) => {
    const { customerId, scopedId } = await customerWhoWrote('facebook');
    meta.script(scopedId, ['error', 'error', 'ok']);
    const message = await accepted(acme.key, { customer_id: customerId, channel: 'facebook', content: 'Thanks for writing!' });
    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'sent', done.status_reason);
    const calls = meta.for(scopedId);
    assert.equal(calls.length, 3);
    assert.equal(calls[0].path, `/${GRAPH_VERSION}/${accounts.facebook.address}/messages`);
    assert.deepEqual(calls[2].body, {
      recipient: { id: scopedId },
      messaging_type: 'RESPONSE',
      message: { text: 'Thanks for writing!' },
    });
    const [first, second] = gaps(calls);
    assert.ok(first >= 1_900, `first backoff is 2 s (${first} ms)`);
    assert.ok(second >= 3_900, `second backoff is 4 s (${second} ms)`);
    t.diagnostic(`500, 500, 200; gaps ${gaps(calls).join(' ms, ')} ms`);
  });

  test('an Instagram message the provider always fails with 500 ends failed after 5 attempts', async (t) => {
    const { customerId, scopedId } = await customerWhoWrote('instagram');
    meta.script(scopedId, ['error-retry']);
    const message = await accepted(acme.key, { customer_id: customerId, channel: 'instagram', content: 'Hello?' });
    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'failed');
    assert.match(done.status_reason, /gave up after 5 attempts/);
    assert.match(done.status_reason, /HTTP 500/);
    assert.match(done.status_reason, /An unexpected error has occurred/);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const calls = meta.for(scopedId);
    assert.equal(calls.length, 5, 'exactly five attempts');
    t.diagnostic(`5 x 500 (Retry-After: 1); gaps ${gaps(calls).join(' ms, ')} ms; reason: ${done.status_reason}`);
  });

  test('a provider slower than the timeout is abandoned and the message is sent on the retry', async (t) => {
    const customer = await newCustomer(acme);
    const to = customer.phone.slice(1);
    meta.script(to, ['slow', 'ok']);
    const message = await accepted(acme.key, { customer_id: customer.id, channel: 'whatsapp', content: 'Are you there?' });
    const done = await settled(acme.key, message.id, SETTLE_MS);
    assert.equal(done.status, 'sent', done.status_reason);
    const calls = meta.for(to);
    assert.equal(calls.length, 2);
    const [gap] = gaps(calls);
    assert.ok(gap >= 10_000 && gap < SLOW_MS + 5_000, `the first call was given up after 10 s (${gap} ms)`);
    t.diagnostic(`slow then ok; second call ${gap} ms after the first`);
  });

  test('an uploaded attachment goes to WhatsApp as a signed link the provider can fetch', async (t) => {
    const pdf = Buffer.from('%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
    const form = new FormData();
    form.append('file', new Blob([pdf], { type: 'application/pdf' }), 'receipt.pdf');
    const upload = await fetch(`${BASE_URL}/api-upload-attachment`, {
      method: 'POST',
      headers: { 'x-api-key': acme.key },
      body: form,
      signal: AbortSignal.timeout(30_000),
    });
    if (upload.status === 404) {
      t.skip('/api-upload-attachment is not deployed in this stack');
      return;
    }
    assert.equal(upload.status, 201, await upload.clone().text());
    const { attachment } = await upload.json();

    const customer = await newCustomer(acme);
    const to = customer.phone.slice(1);
    const message = await accepted(acme.key, {
      customer_id: customer.external_id,
      channel: 'whatsapp',
      content: 'Your receipt',
      attachments: [attachment.file_url],
    });
    assert.equal(message.attachments?.[0]?.id, attachment.id, 'the attachment is linked to the message');
    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'sent', done.status_reason);
    const [call] = meta.for(to);
    assert.equal(call.body.type, 'document');
    assert.equal(call.body.document.caption, 'Your receipt');
    assert.equal(call.body.document.filename, 'receipt.pdf');
    const link = new URL(call.body.document.link);
    assert.equal(link.pathname, '/api/download-media');
    assert.equal(link.searchParams.get('id'), attachment.id);
    assert.ok(link.searchParams.get('signature'), 'the link is signed');
    const fetched = await fetch(link, { signal: AbortSignal.timeout(30_000) });
    assert.equal(fetched.status, 200, 'the provider can fetch the file without an API key');
    assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), pdf);

    const again = await send(acme.key, { customer_id: customer.id, channel: 'whatsapp', content: 'again', attachments: [attachment.id] });
    assertError(again, 422, 'validation_failed', 'an attachment already sent');
    assert.equal(again.body.error.field, 'attachments[0]');
  });
});

describe('refusing what cannot be sent', { concurrency: true }, () => {
  test('a customer that does not exist is 404', async () => {
    for (const customer_id of [`CRM-${unique('missing')}`, '8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f']) {
      const res = await send(acme.key, { customer_id, channel: 'whatsapp', content: 'hi' });
      assertError(res, 404, 'not_found', customer_id);
    }
  });

  test('a customer that does not exist is 404 on a channel the business has no account on too', async () => {
    // The customer and the sending account are read at once: the customer's answer comes first,
    // whichever read finishes first.
    for (let i = 0; i < 5; i++) {
      const customer_id = `CRM-${unique('missing')}`;
      const res = await send(bare.key, { customer_id, channel: 'whatsapp', content: 'hi' });
      assertError(res, 404, 'not_found', customer_id);
    }
  });

  test("another business's customer is 404, by our id and by the CRM's", async () => {
    const theirs = await newCustomer(acme);
    for (const customer_id of [theirs.id, theirs.external_id]) {
      const res = await send(bare.key, { customer_id, channel: 'sms', content: 'hi' });
      assertError(res, 404, 'not_found', customer_id);
    }
  });

  test('bad requests are 422 naming the field, and store nothing', async () => {
    const customer = await newCustomer(bare);
    const cases = [
      [{ customer_id: customer.id, channel: 'telegram', content: 'hi' }, 'channel', 'an unknown channel'],
      [{ customer_id: customer.id, content: 'hi' }, 'channel', 'no channel'],
      [{ customer_id: customer.id, channel: 'sms' }, 'content', 'no content'],
      [{ customer_id: customer.id, channel: 'sms', content: '   ' }, 'content', 'blank content'],
      [{ customer_id: customer.id, channel: 'sms', content: 'x'.repeat(1601) }, 'content', 'longer than an SMS'],
      [{ channel: 'sms', content: 'hi' }, 'customer_id', 'no customer'],
      [{ customer_id: customer.id, channel: 'whatsapp', content: 'hi' }, 'channel', 'no account on the channel'],
      [{ customer_id: customer.id, channel: 'sms', content: 'hi', attachments: ['receipt.pdf'] }, 'attachments[0]', 'not an attachment'],
    ];
    for (const [body, field, description] of cases) {
      const error = assertError(await send(bare.key, body), 422, 'validation_failed', description);
      assert.equal(error.field, field, description);
    }
    const noAccount = await send(bare.key, { customer_id: customer.id, channel: 'whatsapp', content: 'hi' });
    assert.match(noAccount.body.error.message, /no whatsapp account/);
    assert.deepEqual(await messages(bare.key), [], 'nothing was stored');
  });

  test('an attachment this business never uploaded is 422', async () => {
    const customer = await newCustomer(acme);
    const res = await send(acme.key, {
      customer_id: customer.id,
      channel: 'sms',
      content: 'hi',
      attachments: [`${BASE_URL}/api/download-media?id=8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f`],
    });
    const error = assertError(res, 422, 'validation_failed');
    assert.equal(error.field, 'attachments[0]');
  });

  test('Messenger and Instagram need the customer to have written first', async () => {
    const customer = await newCustomer(acme);
    for (const channel of ['facebook', 'instagram']) {
      const error = assertError(
        await send(acme.key, { customer_id: customer.id, channel, content: 'hi' }),
        422,
        'validation_failed',
        channel,
      );
      assert.match(error.message, /messaged its page first/, channel);
    }
  });

  test('the endpoint needs an API key and a POST', async () => {
    assertError(await send(undefined, { customer_id: 'x', channel: 'sms', content: 'hi' }), 401, 'unauthorized');
    assertError(await api(acme.key, 'GET', '/api-send-message'), 405, 'method_not_allowed');
  });
});


/** Uploads a small PDF named `filename` for `business`; the attachment. */
async function uploadPdf(business, filename) {
  const form = new FormData();
  form.append('file', new Blob([Buffer.from(`%PDF-1.7\n% ${filename}\n%%EOF\n`)], { type: 'application/pdf' }), filename);
  const upload = await fetch(`${BASE_URL}/api-upload-attachment`, {
    method: 'POST',
    headers: { 'x-api-key': business.key },
    body: form,
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(upload.status, 201, await upload.clone().text());
  return (await upload.json()).attachment;
}

describe('what a retry or an early callback must not lose', () => {
  test('a multi-part send retried after its second part failed sends only the parts not yet accepted', async () => {
    const [first, second] = [await uploadPdf(acme, 'first.pdf'), await uploadPdf(acme, 'second.pdf')];
    const customer = await newCustomer(acme);
    const to = customer.phone.slice(1);
    meta.script(to, ['ok', 'error-retry', 'ok']);
    const message = await accepted(acme.key, {
      customer_id: customer.id,
      channel: 'whatsapp',
      content: 'Your documents',
      attachments: [first.id, second.id],
    });
    const done = await settled(acme.key, message.id);
    assert.equal(done.status, 'sent', done.status_reason);
    const calls = meta.for(to);
    assert.deepEqual(
      calls.map((call) => call.body.document?.filename),
      ['first.pdf', 'second.pdf', 'second.pdf'],
      'the accepted first part was not sent again; the failed second part was',
    );
  });

  test("a status callback that overtakes the answer to the send is kept and applied when the send's id is recorded", async () => {
    const customer = await newCustomer(acme);
    const path = accounts.sms.webhook_path;
    const callbacks = [];
    twilio.script(customer.phone, [
      {
        step: 'ok',
        // Twilio reports the message delivered before its answer to the send reaches us.
        async beforeAnswer(answer) {
          const params = {
            MessageSid: answer.body.sid,
            SmsSid: answer.body.sid,
            MessageStatus: 'delivered',
            SmsStatus: 'delivered',
            AccountSid: accounts.sms.accountSid,
            From: accounts.sms.address,
            To: customer.phone,
          };
          const res = await request('POST', path, {
            body: formBody(params),
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'x-twilio-signature': twilioSignature(authTokens.get(accounts.sms.accountSid), `${PUBLIC_URL}${path}`, params),
            },
          });
          callbacks.push(res.status);
        },
      },
    ]);
    const message = await accepted(acme.key, { customer_id: customer.id, channel: 'sms', content: 'Fast network' });
    const done = await waitFor(async () => {
      const current = (await messages(acme.key)).find((m) => m.id === message.id);
      return current?.status === 'delivered' && current;
    }, SETTLE_MS, 'the message to show the early delivered status');
    assert.deepEqual(callbacks, [200], 'the early callback was accepted');
    assert.equal(done.status, 'delivered');
  });
});
