// The inbound channel webhooks: what Meta (WhatsApp, Messenger, Instagram), Twilio (SMS,
// WhatsApp) and Mailgun (email) post is verified, stored once, and visible through the API;
// what they did not sign is refused and leaves nothing behind.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  BASE_URL,
  PUBLIC_URL,
  REQUEST_TIMEOUT_MS,
  admin,
  api,
  assertError,
  getCustomer,
  newBusiness,
  request,
  unique,
  waitFor,
} from './support.mjs';
import { formBody, mailgunSignature, metaSignature, twilioSignature } from './signing.mjs';
import { whatsappNotification } from './providers/meta.mjs';
import { d1, kvKeys } from './store.mjs';

const digits = (count) => Array.from(randomBytes(count), (byte) => String(byte % 10)).join('');
/** An Irish mobile number nobody else's test uses. */
const uniquePhone = () => `+35387${digits(7)}`;
/** A numeric Meta id (phone number id, page id, Instagram account id, page-scoped id). */
const metaId = () => `1${digits(15)}`;

async function channelAccount(businessId, account) {
  const res = await admin('POST', `/admin/businesses/${businessId}/channel-accounts`, account);
  assert.equal(res.status, 201, `creating a channel account: ${res.text}`);
  assert.ok(res.body.webhook_path, `the account names its webhook path: ${res.text}`);
  return res.body;
}

/** Every message of a business (each test's business has few), with their attachments if asked. */
async function messagesOf(key, { attachments = false } = {}) {
  const res = await api(
    key,
    'GET',
    `/api-messages-since?since=1970-01-01T00:00:00Z&limit=100${attachments ? '&include_attachments=true' : ''}`,
  );
  assert.equal(res.status, 200, `listing messages: ${res.text}`);
  return res.body.messages;
}

/**
 * The first attachment of the business's first message (or of its message whose text is
 * `content`), once it is no longer pending.
 */
async function settledAttachment(key, timeoutMs = 20_000, content = undefined) {
  return waitFor(async () => {
    const messages = await messagesOf(key, { attachments: true });
    const message = content === undefined ? messages[0] : messages.find((m) => m.content === content);
    const attachment = message?.attachments?.[0];
    return attachment && attachment.status !== 'pending' && attachment;
  }, timeoutMs, `the attachment${content === undefined ? '' : ` of "${content}"`} to be fetched`);
}

async function assertNothingStored(key, description) {
  assert.deepEqual(await messagesOf(key), [], `${description}: no message is stored`);
}

// ---------------------------------------------------------------- a local media host

/**
 * Serves media as the providers do, on 127.0.0.1: `/files/{id}` gives the bytes (a Messenger
 * attachment URL, a Twilio MediaUrl, a WhatsApp media URL), and any other `/{id}` gives the
 * Graph API's description of WhatsApp media `{url, mime_type, file_size, id}`. Each request is
 * recorded with its Authorization header. Larger files: `/large/{id}` (10 MiB, with its length),
 * `/chunked/{id}` (3 MiB, chunked: no length), `/huge/{id}` (declares 26 MiB); `/moved/{id}`
 * redirects (307) to `/files/{id}` on another origin of this machine (localhost).
 */
const MIB = 1024 * 1024;
const mediaHost = { url: '', served: [], image: randomBytes(2048), large: randomBytes(10 * MIB), server: null };
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

before(async () => {
  mediaHost.server = createServer((req, res) => {
    mediaHost.served.push({ path: req.url, authorization: req.headers.authorization });
    const mediaId = req.url.split('/').pop();
    // `/flaky/{n}/{id}`: 503 to the first n requests for the file, then the file.
    const flaky = req.url.match(/^\/flaky\/(\d+)\//);
    if (flaky && servedFor(req.url).length <= Number(flaky[1])) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('media storage unavailable');
      return;
    }
    // `/gone/{id}`: the provider no longer has the file.
    if (req.url.startsWith('/gone/')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such media');
      return;
    }
    if (req.url.startsWith('/moved/')) {
      const port = mediaHost.server.address().port;
      res.writeHead(307, { location: `http://localhost:${port}/files/${mediaId}` });
      res.end();
      return;
    }
    if (req.url.startsWith('/large/')) {
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': mediaHost.large.length });
      res.end(mediaHost.large);
      return;
    }
    if (req.url.startsWith('/chunked/')) {
      res.writeHead(200, { 'content-type': 'application/pdf' });
      for (let at = 0; at < 3 * MIB; at += 256 * 1024) res.write(mediaHost.large.subarray(at, at + 256 * 1024));
      res.end();
      return;
    }
    if (req.url.startsWith('/huge/')) {
      // Only the declaration matters: the fetcher refuses on the header and sends nothing more.
      res.on('error', () => {});
      res.socket?.on('error', () => {});
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': 26 * MIB });
      res.write(Buffer.alloc(64 * 1024));
      setTimeout(() => res.destroy(), 2000);
      return;
    }
    if (req.url.startsWith('/files/') || flaky) {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': mediaHost.image.length });
      res.end(mediaHost.image);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        messaging_product: 'whatsapp',
        url: `${mediaHost.url}/files/${mediaId}`,
        mime_type: 'image/jpeg',
        sha256: 'unused',
        file_size: mediaHost.image.length,
        id: mediaId,
      }),
    );
  });
  await new Promise((resolve) => mediaHost.server.listen(0, '127.0.0.1', resolve));
  mediaHost.url = `http://127.0.0.1:${mediaHost.server.address().port}`;
});

after(() => new Promise((resolve) => mediaHost.server.close(resolve)));

/** The requests the media host served for `mediaId`. */
const servedFor = (mediaId) => mediaHost.served.filter((entry) => entry.path.includes(mediaId));

// ---------------------------------------------------------------- Meta

async function metaAccount(channel, settings = {}) {
  const business = await newBusiness();
  const secrets = {
    app_secret: unique('app-secret'),
    verify_token: unique('verify'),
    access_token: unique('access'),
  };
  const address = metaId();
  const account = await channelAccount(business.id, { channel, provider: 'meta', address, settings, secrets });
  return { business, key: business.key, account, secrets, address, path: account.webhook_path };
}

/** Posts a notification signed with the app secret (`signature`: a header to send instead, or null for none). */
function postMeta(setup, payload, { signature } = {}) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const headers = { 'content-type': 'application/json' };
  const header = signature === undefined ? metaSignature(setup.secrets.app_secret, body) : signature;
  if (header !== null) headers['x-hub-signature-256'] = header;
  return request('POST', setup.path, { body, headers });
}

function whatsappText(setup, { from, name, id = `wamid.${unique('m')}`, body = 'Hello from WhatsApp' }) {
  return whatsappNotification(setup.address, {
    contacts: [{ profile: { name }, wa_id: from.slice(1) }],
    messages: [{ from: from.slice(1), id, timestamp: '1700000000', type: 'text', text: { body } }],
  });
}

function messagingNotification(object, setup, events) {
  return { object, entry: [{ id: setup.address, time: Date.now(), messaging: events }] };
}

describe('the Meta receiver (WhatsApp, Messenger, Instagram)', () => {
  test('a signed WhatsApp text is stored once, from a customer found by their number', async () => {
    const setup = await metaAccount('whatsapp');
    const from = uniquePhone();
    const res = await postMeta(setup, whatsappText(setup, { from, name: 'Kerry Fisher', body: 'Do you open on Sunday?' }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.received, 1, res.text);
    assert.equal(res.body.stored, 1, res.text);

    const messages = await messagesOf(setup.key);
    assert.equal(messages.length, 1);
    const [message] = messages;
    assert.equal(message.content, 'Do you open on Sunday?');
    assert.equal(message.channel, 'whatsapp');
    assert.equal(message.platform, 'whatsapp');
    assert.equal(message.direction, 'inbound');
    assert.equal(message.status, 'received');

    const customer = await getCustomer(setup.key, 'phone', from);
    assert.equal(customer.status, 200, customer.text);
    assert.equal(customer.body.id, message.customer_id);
    assert.equal(customer.body.name, 'Kerry Fisher');
  });

  test('the same notification delivered twice is one message', async () => {
    const setup = await metaAccount('whatsapp');
    const payload = whatsappText(setup, { from: uniquePhone(), name: 'Twice' });
    const first = await postMeta(setup, payload);
    const second = await postMeta(setup, payload);
    assert.equal(first.status, 200, first.text);
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.duplicates, 1, second.text);
    assert.equal((await messagesOf(setup.key)).length, 1);
  });

  test('a bad, missing or misplaced signature is refused with 401 and nothing is stored', async () => {
    const setup = await metaAccount('whatsapp');
    const from = uniquePhone();
    const payload = whatsappText(setup, { from, name: 'Mallory' });
    const body = JSON.stringify(payload);
    const cases = [
      ['no signature', null],
      ['an empty signature', ''],
      ['signed with another secret', metaSignature('not-the-app-secret', body)],
      ['the signature of another body', metaSignature(setup.secrets.app_secret, `${body} `)],
      ['a signature without its sha256= prefix', metaSignature(setup.secrets.app_secret, body).slice(7)],
      ['a signature that is not hex', 'sha256=not-hex'],
    ];
    for (const [description, signature] of cases) {
      const res = await postMeta(setup, body, { signature });
      assertError(res, 401, 'unauthorized', description);
    }
    await assertNothingStored(setup.key, 'after refused notifications');
    const customer = await getCustomer(setup.key, 'phone', from);
    assert.equal(customer.status, 404, `no customer is created: ${customer.text}`);
  });

  test('the GET handshake echoes the challenge for our verify token and is forbidden otherwise', async () => {
    const setup = await metaAccount('facebook');
    const query = (token, extra = '') =>
      `${setup.path}?hub.mode=subscribe&hub.verify_token=${encodeURIComponent(token)}&hub.challenge=1158201444${extra}`;
    const good = await request('GET', query(setup.secrets.verify_token));
    assert.equal(good.status, 200, good.text);
    assert.equal(good.text, '1158201444');
    assert.match(good.headers.get('content-type') ?? '', /^text\/plain/);

    const wrong = await request('GET', query('not-the-token'));
    assertError(wrong, 403, 'forbidden', 'a wrong verify token');
    const another = await metaAccount('facebook');
    const borrowed = await request('GET', query(another.secrets.verify_token));
    assertError(borrowed, 403, 'forbidden', "another account's verify token");
    const noMode = await request('GET', `${setup.path}?hub.verify_token=${setup.secrets.verify_token}&hub.challenge=1`);
    assertError(noMode, 400, 'malformed_request', 'no hub.mode');
  });

  test('a status update for a message we never sent is accepted and changes nothing', async () => {
    const setup = await metaAccount('whatsapp');
    await postMeta(setup, whatsappText(setup, { from: uniquePhone(), name: 'Known' }));
    const before = await messagesOf(setup.key);
    const res = await postMeta(
      setup,
      whatsappNotification(setup.address, {
        statuses: [
          { id: `wamid.${unique('unknown')}`, status: 'delivered', timestamp: '1700000000', recipient_id: '353870000000' },
          {
            id: `wamid.${unique('unknown')}`,
            status: 'failed',
            errors: [{ code: 131026, title: 'Message undeliverable' }],
          },
        ],
      }),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.statuses, 2, res.text);
    assert.equal(res.body.statuses_applied, 0, res.text);
    assert.deepEqual(await messagesOf(setup.key), before);
  });

  test('a Messenger message is stored from its page-scoped sender, and echoes are skipped', async () => {
    const setup = await metaAccount('facebook');
    const psid = metaId();
    const mid = `m_${unique('fb')}`;
    const res = await postMeta(
      setup,
      messagingNotification('page', setup, [
        {
          sender: { id: psid },
          recipient: { id: setup.address },
          timestamp: Date.now(),
          message: { mid, text: 'Do you ship to Cork?' },
        },
        {
          sender: { id: setup.address },
          recipient: { id: psid },
          timestamp: Date.now(),
          message: { mid: `m_${unique('echo')}`, text: 'Our own reply', is_echo: true },
        },
        { sender: { id: psid }, recipient: { id: setup.address }, delivery: { mids: [`m_${unique('x')}`] } },
      ]),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.received, 1, res.text);

    const messages = await messagesOf(setup.key);
    assert.deepEqual(
      messages.map((m) => [m.content, m.channel, m.direction]),
      [['Do you ship to Cork?', 'facebook', 'inbound']],
    );
    const customer = await getCustomer(setup.key, 'id', messages[0].customer_id);
    assert.equal(customer.status, 200, customer.text);
  });

  test('a Messenger attachment is fetched from its URL and stored with its message', async () => {
    const setup = await metaAccount('facebook');
    const fileId = unique('fbfile');
    const res = await postMeta(
      setup,
      messagingNotification('page', setup, [
        {
          sender: { id: metaId() },
          recipient: { id: setup.address },
          timestamp: Date.now(),
          message: {
            mid: `m_${unique('att')}`,
            attachments: [{ type: 'image', payload: { url: `${mediaHost.url}/files/${fileId}` } }],
          },
        },
      ]),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.media_queued, 1, res.text);
    const attachment = await settledAttachment(setup.key);
    assert.equal(attachment.status, 'stored', JSON.stringify(attachment));
    assert.equal(servedFor(fileId).length, 1);
  });

  test('an Instagram message is stored, and a second sender is a second customer', async () => {
    const setup = await metaAccount('instagram');
    const [ann, bob] = [metaId(), metaId()];
    const event = (sender, text) => ({
      sender: { id: sender },
      recipient: { id: setup.address },
      timestamp: Date.now(),
      message: { mid: `ig_${unique('m')}`, text },
    });
    const res = await postMeta(
      setup,
      messagingNotification('instagram', setup, [event(ann, 'Love the new range'), event(bob, 'Price?')]),
    );
    assert.equal(res.status, 200, res.text);
    const messages = await messagesOf(setup.key);
    assert.deepEqual(messages.map((m) => [m.content, m.channel]), [
      ['Love the new range', 'instagram'],
      ['Price?', 'instagram'],
    ]);
    assert.notEqual(messages[0].customer_id, messages[1].customer_id);
  });

  test("a notification whose object is not the account's channel is refused with 422", async () => {
    const setup = await metaAccount('whatsapp');
    const res = await postMeta(setup, { object: 'page', entry: [] });
    assertError(res, 422, 'validation_failed', 'a page notification at a WhatsApp account');
    assert.equal(res.body.error.field, 'object');
  });

  test('an unknown account, another provider\'s account, a wrong method and an oversized body are refused', async () => {
    const unknown = await request('POST', `/webhooks/meta/${randomUUID()}`, { body: '{}' });
    assertError(unknown, 404, 'not_found', 'an account id nobody has');
    const notAnId = await request('GET', '/webhooks/meta/not-an-id?hub.mode=subscribe');
    assertError(notAnId, 404, 'not_found', 'a path that is no account id');

    const twilio = await twilioAccount('sms');
    const elsewhere = await request('POST', `/webhooks/meta/${twilio.account.id}`, { body: '{}' });
    assertError(elsewhere, 404, 'not_found', "a Twilio account's id at the Meta path");

    const setup = await metaAccount('whatsapp');
    const put = await request('PUT', setup.path, { body: '{}' });
    assertError(put, 405, 'method_not_allowed', 'PUT');

    const huge = JSON.stringify({ object: 'whatsapp_business_account', entry: [], padding: 'x'.repeat(1024 * 1024) });
    const tooLarge = await postMeta(setup, huge);
    assertError(tooLarge, 413, 'payload_too_large', 'a notification over 1 MiB');
  });

  test('an image is fetched from the Graph API with the access token and stored with its message', async () => {
    const setup = await metaAccount('whatsapp', { api_base_url: mediaHost.url });
    const mediaId = metaId();
    const from = uniquePhone();
    const res = await postMeta(
      setup,
      whatsappNotification(setup.address, {
        contacts: [{ profile: { name: 'Photo Sender' }, wa_id: from.slice(1) }],
        messages: [
          {
            from: from.slice(1),
            id: `wamid.${unique('img')}`,
            type: 'image',
            image: { id: mediaId, mime_type: 'image/jpeg', sha256: 'x', caption: 'The broken part' },
          },
        ],
      }),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.stored, 1, res.text);
    assert.equal(res.body.media_queued, 1, res.text);
    assert.equal((await settledAttachment(setup.key)).status, 'stored');

    const asked = servedFor(mediaId);
    assert.ok(asked.length >= 2, `the media info and the bytes were fetched: ${JSON.stringify(mediaHost.served)}`);
    for (const entry of asked) {
      assert.equal(entry.authorization, `Bearer ${setup.secrets.access_token}`, entry.path);
    }

    const [message] = await messagesOf(setup.key, { attachments: true });
    assert.equal(message.content, 'The broken part');
    assert.equal(message.attachments?.length, 1, `one attachment: ${JSON.stringify(message)}`);
    assert.equal(message.attachments[0].type, 'image/jpeg');
    assert.equal(message.attachments[0].size, mediaHost.image.length);
    const stored = await fetch(message.attachments[0].download_url, { headers: { 'x-api-key': setup.key } });
    assert.equal(stored.status, 200, 'the stored media downloads with the API key');
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), Buffer.from(mediaHost.image), 'byte for byte');
  });
});

// ---------------------------------------------------------------- Twilio

async function twilioAccount(channel, settings = {}) {
  const business = await newBusiness();
  const secrets = { auth_token: randomBytes(16).toString('hex') };
  const address = uniquePhone();
  const account = await channelAccount(business.id, {
    channel,
    provider: 'twilio',
    address,
    settings: { account_sid: `AC${randomBytes(16).toString('hex')}`, ...settings },
    secrets,
  });
  return { business, key: business.key, account, secrets, address, path: account.webhook_path };
}

/**
 * Posts a form as Twilio does, signed for the public URL Twilio was given (PUBLIC_BASE_URL and
 * the path; `signature`: another header, or null). The post itself goes to BASE_URL.
 */
function postTwilio(setup, params, { signature } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const header =
    signature === undefined ? twilioSignature(setup.secrets.auth_token, `${PUBLIC_URL}${setup.path}`, params) : signature;
  if (header !== null) headers['x-twilio-signature'] = header;
  return request('POST', setup.path, { body: formBody(params), headers });
}

function twilioMessage(setup, { from, body = 'Hello by SMS', sid = `SM${randomBytes(16).toString('hex')}`, extra = {} }) {
  return {
    ToCountry: 'IE',
    SmsMessageSid: sid,
    NumMedia: '0',
    SmsSid: sid,
    SmsStatus: 'received',
    Body: body,
    To: setup.account.channel === 'whatsapp' ? `whatsapp:${setup.address}` : setup.address,
    NumSegments: '1',
    MessageSid: sid,
    AccountSid: 'AC00000000000000000000000000000000',
    From: from,
    ApiVersion: '2010-04-01',
    ...extra,
  };
}

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

describe('the Twilio receiver (SMS, WhatsApp)', () => {
  test('a signed SMS is answered with empty TwiML and stored from a customer found by their number', async () => {
    const setup = await twilioAccount('sms');
    const from = uniquePhone();
    const res = await postTwilio(setup, twilioMessage(setup, { from, body: 'Is my order ready? 50% off & more' }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.text, EMPTY_TWIML);
    assert.match(res.headers.get('content-type') ?? '', /^text\/xml/);

    const [message, ...rest] = await messagesOf(setup.key);
    assert.deepEqual(rest, []);
    assert.equal(message.content, 'Is my order ready? 50% off & more');
    assert.equal(message.channel, 'sms');
    assert.equal(message.direction, 'inbound');
    const customer = await getCustomer(setup.key, 'phone', from);
    assert.equal(customer.status, 200, customer.text);
    assert.equal(customer.body.id, message.customer_id);
  });

  test('a WhatsApp message through Twilio loses its whatsapp: prefix and keeps the profile name', async () => {
    const setup = await twilioAccount('whatsapp');
    const from = uniquePhone();
    const res = await postTwilio(
      setup,
      twilioMessage(setup, { from: `whatsapp:${from}`, body: 'Hi via WhatsApp', extra: { ProfileName: 'Siobhan' } }),
    );
    assert.equal(res.status, 200, res.text);
    const [message] = await messagesOf(setup.key);
    assert.equal(message.content, 'Hi via WhatsApp');
    assert.equal(message.channel, 'whatsapp');
    const customer = await getCustomer(setup.key, 'phone', from);
    assert.equal(customer.status, 200, customer.text);
    assert.equal(customer.body.name, 'Siobhan');
  });

  test("an MMS's media is fetched with the account's credentials from Twilio's API and stored with its message", async () => {
    // The account's API is the media host here, as api.twilio.com serves MediaUrl in production.
    const setup = await twilioAccount('sms', { api_base_url: mediaHost.url });
    const fileId = unique('mms');
    const res = await postTwilio(
      setup,
      twilioMessage(setup, {
        from: uniquePhone(),
        body: 'Photo of the receipt',
        extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/files/${fileId}`, MediaContentType0: 'image/jpeg' },
      }),
    );
    assert.equal(res.status, 200, res.text);
    const [message] = await messagesOf(setup.key);
    assert.equal(message.content, 'Photo of the receipt');
    assert.equal((await settledAttachment(setup.key)).status, 'stored');
    const [served] = servedFor(fileId);
    assert.ok(served, 'the media URL was fetched');
    const basic = Buffer.from(`${setup.account.settings.account_sid}:${setup.secrets.auth_token}`).toString('base64');
    assert.equal(served.authorization, `Basic ${basic}`);
  });

  test("a redirect to another origin is followed without the account's credentials", async () => {
    const setup = await twilioAccount('sms', { api_base_url: mediaHost.url });
    const fileId = unique('moved');
    const res = await postTwilio(
      setup,
      twilioMessage(setup, {
        from: uniquePhone(),
        body: 'Photo behind a redirect',
        extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/moved/${fileId}`, MediaContentType0: 'image/jpeg' },
      }),
    );
    assert.equal(res.status, 200, res.text);
    const attachment = await settledAttachment(setup.key);
    assert.equal(attachment.status, 'stored', JSON.stringify(attachment));
    const [asked, fetched] = servedFor(fileId);
    assert.ok(asked?.path.startsWith('/moved/') && fetched?.path.startsWith('/files/'), JSON.stringify(servedFor(fileId)));
    assert.match(asked.authorization ?? '', /^Basic /, 'the API is asked with the credentials');
    assert.equal(fetched.authorization, undefined, 'the other origin is not given them');
  });

  test('media of 10 MiB with its length, and of unknown length, is stored byte for byte', async () => {
    const setup = await twilioAccount('sms');
    for (const [route, bytes, type] of [
      ['large', mediaHost.large, 'video/mp4'],
      ['chunked', mediaHost.large.subarray(0, 3 * MIB), 'application/pdf'],
    ]) {
      const fileId = unique(route);
      const res = await postTwilio(
        setup,
        twilioMessage(setup, {
          from: uniquePhone(),
          body: `A ${route} file`,
          extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/${route}/${fileId}`, MediaContentType0: type },
        }),
      );
      assert.equal(res.status, 200, res.text);
      const attachment = await settledAttachment(setup.key, 60_000, `A ${route} file`);
      assert.equal(attachment.status, 'stored', `${route}: ${JSON.stringify(attachment)}`);
      assert.equal(attachment.size, bytes.length, route);
      const stored = await fetch(attachment.download_url, { headers: { 'x-api-key': setup.key } });
      assert.equal(stored.status, 200, route);
      assert.equal(sha256(Buffer.from(await stored.arrayBuffer())), sha256(bytes), `${route}: byte for byte`);
    }
  });

  test('a file that declares more than 25 MiB is refused on its header, without retries', async () => {
    const setup = await twilioAccount('sms');
    const fileId = unique('huge');
    const res = await postTwilio(
      setup,
      twilioMessage(setup, {
        from: uniquePhone(),
        body: 'A very long video',
        extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/huge/${fileId}`, MediaContentType0: 'video/mp4' },
      }),
    );
    assert.equal(res.status, 200, res.text);
    const attachment = await settledAttachment(setup.key);
    assert.equal(attachment.status, 'failed', JSON.stringify(attachment));
    assert.match(attachment.status_reason ?? '', /larger than 26214400 bytes/);
    assert.equal(servedFor(fileId).length, 1, 'asked once');
  });

  test('media on a host that is not the provider\'s, or on a private address, is failed without a request', async () => {
    const setup = await metaAccount('facebook');
    for (const [url, reason] of [
      ['https://files.example.com/photo.jpg', /files\.example\.com is not one of meta's media hosts/],
      ['http://10.1.2.3/photo.jpg', /private-network address/],
      ['https://169.254.169.254/latest/meta-data', /link-local/],
    ]) {
      const mid = `m_${unique('att')}`;
      const res = await postMeta(
        setup,
        messagingNotification('page', setup, [
          {
            sender: { id: metaId() },
            recipient: { id: setup.address },
            timestamp: Date.now(),
            message: { mid, attachments: [{ type: 'image', payload: { url } }] },
          },
        ]),
      );
      assert.equal(res.status, 200, res.text);
      const attachment = await waitFor(async () => {
        const messages = await messagesOf(setup.key, { attachments: true });
        const found = messages.find((message) => message.attachments?.[0]?.status !== 'pending' && message.attachments?.[0]?.status_reason?.includes(new URL(url).hostname))?.attachments?.[0];
        return found;
      }, 20_000, `the file at ${url} to be settled`);
      assert.equal(attachment.status, 'failed', url);
      assert.match(attachment.status_reason, reason, url);
    }
  });

  test('the sweep hands a file no fetch settled back to the fetcher once, and fails it after two hours', async () => {
    const setup = await twilioAccount('sms');
    const sent = async (body) => {
      const fileId = unique('sweep');
      const res = await postTwilio(
        setup,
        twilioMessage(setup, {
          from: uniquePhone(),
          body,
          extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/files/${fileId}`, MediaContentType0: 'image/jpeg' },
        }),
      );
      assert.equal(res.status, 200, res.text);
      return settledAttachment(setup.key, 20_000, body);
    };
    // Rows put back in the state a lost queue message leaves: pending, aged, with their source.
    const lose = (attachment, minutesAgo, fileId) => {
      const source = JSON.stringify({ kind: 'url', url: `${mediaHost.url}/files/${fileId}`, mime_type: 'image/jpeg', filename: null });
      const createdAt = new Date(Date.now() - minutesAgo * 60_000).toISOString();
      d1("UPDATE attachments SET status = 'pending', size = 0, status_reason = NULL, source = ?, created_at = ?, requeued_at = NULL WHERE id = ?", [
        source,
        createdAt,
        attachment.id,
      ]);
    };
    const lost = await sent('Lost by the queue');
    const abandoned = await sent('Never fetched');
    const lostFile = unique('refetched');
    lose(lost, 40, lostFile);
    lose(abandoned, 180, unique('never'));
    const res = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.failed, [], res.text);
    // Counted in the report (another test's sweep may have taken these rows first: the rows say).
    assert.ok(Number.isInteger(res.body.media_requeued) && Number.isInteger(res.body.media_failed), res.text);
    const [[failedStatus, failedReason]] = d1('SELECT status, status_reason FROM attachments WHERE id = ?', [abandoned.id]);
    assert.equal(failedStatus, 'failed');
    assert.match(failedReason, /not fetched within 2 hours/);
    await waitFor(() => d1('SELECT status FROM attachments WHERE id = ?', [lost.id])[0][0] === 'stored', 20_000, 'the handed-back file to be stored');
    assert.equal(servedFor(lostFile).length, 1, 'fetched again from its source');
    const again = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(again.status, 200, again.text);
    assert.equal(d1('SELECT requeued_at IS NOT NULL FROM attachments WHERE id = ?', [lost.id])[0][0], 1, 'handed back once');
  });

  test("the sweep holds a message's event while its file is still being fetched, and lets it go once the file settles", async () => {
    const setup = await twilioAccount('sms');
    // Events are recorded for a business that listens: an endpoint for message.received.
    const hook = await api(setup.key, 'POST', '/api-webhooks', { name: 'held', url: `${mediaHost.url}/hook`, events: ['message.received'] });
    assert.equal(hook.status, 201, hook.text);
    const fileId = unique('held');
    const res = await postTwilio(
      setup,
      twilioMessage(setup, {
        from: uniquePhone(),
        body: 'Held for its file',
        extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/files/${fileId}`, MediaContentType0: 'image/jpeg' },
      }),
    );
    assert.equal(res.status, 200, res.text);
    const attachment = await settledAttachment(setup.key);
    const [[messageId]] = d1('SELECT message_id FROM attachments WHERE id = ?', [attachment.id]);
    // Five minutes into its tries: the file pending, its event never dispatched and past the
    // sweep's two-minute grace for lost events.
    const fiveMinutesAgo = Date.now() - 5 * 60_000;
    d1("UPDATE attachments SET status = 'pending', created_at = ? WHERE id = ?", [new Date(fiveMinutesAgo).toISOString(), attachment.id]);
    d1('UPDATE webhook_events SET dispatched_us = NULL, created_us = ? WHERE subject_id = ?', [fiveMinutesAgo * 1000, messageId]);
    const undispatched = () => d1('SELECT COUNT(*) FROM webhook_events WHERE subject_id = ? AND dispatched_us IS NULL', [messageId])[0][0];
    assert.ok(undispatched() >= 1, 'the message has a held event');
    const first = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(first.status, 200, first.text);
    assert.ok(undispatched() >= 1, 'still held while its file is pending');
    d1("UPDATE attachments SET status = 'stored' WHERE id = ?", [attachment.id]);
    const second = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(second.status, 200, second.text);
    await waitFor(() => undispatched() === 0, 20_000, 'the event to go out once the file settled');
  });

  test('a media host that fails twice loses nothing: the message is stored at once and its file follows', async () => {
    const setup = await twilioAccount('sms');
    const fileId = unique('flaky');
    const res = await postTwilio(
      setup,
      twilioMessage(setup, {
        from: uniquePhone(),
        body: 'Photo, eventually',
        extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/flaky/2/${fileId}`, MediaContentType0: 'image/jpeg' },
      }),
    );
    assert.equal(res.status, 200, res.text);
    const [message] = await messagesOf(setup.key, { attachments: true });
    assert.equal(message.content, 'Photo, eventually', 'the message is there before its file');
    const attachment = await settledAttachment(setup.key, 40_000);
    assert.equal(attachment.status, 'stored', JSON.stringify(attachment));
    assert.equal(attachment.size, mediaHost.image.length);
    assert.equal(servedFor(fileId).length, 3, 'two 503s, then the file');
    const stored = await fetch(attachment.download_url, { headers: { 'x-api-key': setup.key } });
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), Buffer.from(mediaHost.image), 'byte for byte');
  });

  test('a file the provider no longer has is marked failed with the reason, and cannot be downloaded', async () => {
    const setup = await twilioAccount('sms');
    const fileId = unique('gone');
    const res = await postTwilio(
      setup,
      twilioMessage(setup, {
        from: uniquePhone(),
        body: 'Photo that is gone',
        extra: { NumMedia: '1', MediaUrl0: `${mediaHost.url}/gone/${fileId}`, MediaContentType0: 'image/jpeg' },
      }),
    );
    assert.equal(res.status, 200, res.text);
    const attachment = await settledAttachment(setup.key);
    assert.equal(attachment.status, 'failed', JSON.stringify(attachment));
    assert.match(attachment.status_reason ?? '', /404/, 'the reason names the answer');
    assert.equal(servedFor(fileId).length, 1, 'a 404 is not retried');
    const download = await fetch(attachment.download_url, { headers: { 'x-api-key': setup.key } });
    assert.equal(download.status, 404, 'no bytes to download');
  });

  test('the same message delivered twice is one message', async () => {
    const setup = await twilioAccount('sms');
    const params = twilioMessage(setup, { from: uniquePhone() });
    for (const attempt of ['first', 'retry']) {
      const res = await postTwilio(setup, params);
      assert.equal(res.status, 200, `${attempt}: ${res.text}`);
    }
    assert.equal((await messagesOf(setup.key)).length, 1);
  });

  test('a bad or missing signature is refused with 401 and nothing is stored', async () => {
    const setup = await twilioAccount('sms');
    const from = uniquePhone();
    const params = twilioMessage(setup, { from });
    const token = setup.secrets.auth_token;
    const cases = [
      ['no signature', null],
      ['signed with another token', twilioSignature('another-token', `${PUBLIC_URL}${setup.path}`, params)],
      ['signed for another URL', twilioSignature(token, `${PUBLIC_URL}/webhooks/twilio/${randomUUID()}`, params)],
      ['signed for the URL the worker sees rather than the public one', twilioSignature(token, `${BASE_URL}${setup.path}`, params)],
      ['signed over other parameters', twilioSignature(token, `${PUBLIC_URL}${setup.path}`, { ...params, Body: 'changed' })],
      ['not base64', '***'],
    ];
    for (const [description, signature] of cases) {
      const res = await postTwilio(setup, params, { signature });
      assertError(res, 401, 'unauthorized', description);
    }
    await assertNothingStored(setup.key, 'after refused requests');
    const customer = await getCustomer(setup.key, 'phone', from);
    assert.equal(customer.status, 404, `no customer is created: ${customer.text}`);
  });

  test('a status callback for a message we never sent is answered and changes nothing', async () => {
    const setup = await twilioAccount('sms');
    await postTwilio(setup, twilioMessage(setup, { from: uniquePhone() }));
    const before = await messagesOf(setup.key);
    for (const status of ['sent', 'delivered', 'undelivered', 'queued']) {
      const res = await postTwilio(setup, {
        MessageSid: `SM${randomBytes(16).toString('hex')}`,
        MessageStatus: status,
        SmsStatus: status,
        ErrorCode: status === 'undelivered' ? '30005' : '',
        To: uniquePhone(),
        From: setup.address,
        AccountSid: 'AC00000000000000000000000000000000',
      });
      assert.equal(res.status, 200, `${status}: ${res.text}`);
      assert.equal(res.text, EMPTY_TWIML, status);
    }
    assert.deepEqual(await messagesOf(setup.key), before);
  });

  test('an unknown account and a wrong method are refused', async () => {
    const unknown = await request('POST', `/webhooks/twilio/${randomUUID()}`, {
      body: 'Body=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assertError(unknown, 404, 'not_found', 'an account id nobody has');
    const setup = await twilioAccount('sms');
    const get = await request('GET', setup.path);
    assertError(get, 405, 'method_not_allowed', 'GET');
  });
});

// ---------------------------------------------------------------- Mailgun

async function mailgunAccount() {
  const business = await newBusiness();
  const secrets = { signing_key: randomBytes(16).toString('hex'), api_key: unique('key') };
  const address = `${unique('support')}@in.example.com`;
  const account = await channelAccount(business.id, {
    channel: 'email',
    provider: 'mailgun',
    address,
    settings: { domain: 'in.example.com' },
    secrets,
  });
  return { business, key: business.key, account, secrets, address, path: account.webhook_path };
}

/** The signature fields of a Mailgun POST, signed now (or at `timestamp`) with the account's key. */
function mailgunSigned(setup, { timestamp = Math.floor(Date.now() / 1000), key = setup.secrets.signing_key } = {}) {
  const token = randomBytes(25).toString('hex');
  return { timestamp: String(timestamp), token, signature: mailgunSignature(key, String(timestamp), token) };
}

function mail(setup, { sender, from = sender, subject = 'Order 1234', body = 'Where is my parcel?', messageId }) {
  return {
    recipient: setup.address,
    sender,
    from,
    subject,
    'body-plain': `${body}\n\n> quoted earlier mail\n`,
    'stripped-text': body,
    'Message-Id': messageId ?? `<${unique('mail')}@mail.example.com>`,
  };
}

/**
 * Posts a mail as multipart/form-data, with `files` as attachment-1..N. `chunked`: stream the
 * body without declaring its length, as a proxy may.
 */
async function postMailgun(setup, fields, files = [], { chunked = false } = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (files.length > 0) form.append('attachment-count', String(files.length));
  files.forEach((file, index) =>
    form.append(`attachment-${index + 1}`, new Blob([file.bytes], { type: file.type }), file.name),
  );
  const init = { method: 'POST', body: form, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
  if (chunked) {
    const encoded = new Response(form);
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    init.headers = { 'content-type': encoded.headers.get('content-type') };
    init.body = new ReadableStream({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 64 * 1024) controller.enqueue(bytes.slice(at, at + 64 * 1024));
        controller.close();
      },
    });
    init.duplex = 'half';
  }
  const response = await fetch(`${BASE_URL}${setup.path}`, init);
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** The replay store's entry for a token an account accepted (none when it was not accepted). */
const usedTokenKeys = (setup, token) => kvKeys(`mailgun-token:v1:${setup.account.id}:${token}`);

const BOUNDARY = '----crm-edge-test-boundary-3f9a1c';

/**
 * A multipart body written part by part, so that a test decides the order of the parts and what
 * ends the body (`tail`: the close delimiter by default). A part with `filename` is a file.
 */
function multipartBody(parts, tail = `--${BOUNDARY}--\r\n`) {
  const chunks = parts.flatMap(({ name, value, filename, type = 'application/octet-stream' }) => {
    const disposition = filename ? `form-data; name="${name}"; filename="${filename}"` : `form-data; name="${name}"`;
    const contentType = filename ? `\r\nContent-Type: ${type}` : '';
    return [
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}${contentType}\r\n\r\n`),
      Buffer.from(value),
      Buffer.from('\r\n'),
    ];
  });
  return Buffer.concat([...chunks, Buffer.from(tail)]);
}

const fieldParts = (fields) => Object.entries(fields).map(([name, value]) => ({ name, value }));

function postMultipart(setup, body) {
  return request('POST', setup.path, {
    body,
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
  });
}

describe('the Mailgun receiver (email)', () => {
  test('a signed mail is stored from the lowercased sender with subject and body, and its file', async () => {
    const setup = await mailgunAccount();
    const tag = unique('ann');
    const pdf = Buffer.from(`%PDF-1.4 invoice ${tag}`);
    const res = await postMailgun(
      setup,
      {
        ...mailgunSigned(setup),
        ...mail(setup, { sender: `${tag}@Example.COM`, from: `Ann Lee <${tag}@example.com>` }),
      },
      [{ name: 'invoice.pdf', type: 'application/pdf', bytes: pdf }],
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.stored, 1, res.text);
    assert.equal(res.body.media_stored, 1, res.text);

    const [message, ...rest] = await messagesOf(setup.key, { attachments: true });
    assert.deepEqual(rest, []);
    assert.match(message.content, /^Order 1234\n\nWhere is my parcel\?/);
    assert.equal(message.channel, 'email');
    assert.equal(message.attachments?.length, 1, `one attachment: ${JSON.stringify(message)}`);
    assert.equal(message.attachments[0].filename, 'invoice.pdf');
    assert.equal(message.attachments[0].type, 'application/pdf');
    assert.equal(message.attachments[0].size, pdf.length);
    const stored = await fetch(message.attachments[0].download_url, { headers: { 'x-api-key': setup.key } });
    assert.equal(stored.status, 200, 'the stored attachment downloads with the API key');
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), Buffer.from(pdf), 'byte for byte');

    const customer = await getCustomer(setup.key, 'email', `${tag}@example.com`);
    assert.equal(customer.status, 200, customer.text);
    assert.equal(customer.body.id, message.customer_id);
    assert.equal(customer.body.name, 'Ann Lee');
  });

  test('a URL-encoded mail is accepted as well', async () => {
    const setup = await mailgunAccount();
    const sender = `${unique('bob')}@example.com`;
    const res = await request('POST', setup.path, {
      body: formBody({ ...mailgunSigned(setup), ...mail(setup, { sender, subject: 'Plain form' }) }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 200, res.text);
    const [message] = await messagesOf(setup.key);
    assert.match(message.content, /^Plain form\n\n/);
  });

  test('a mail streamed without a declared length is read, and one declared over 25 MiB is refused', async () => {
    const setup = await mailgunAccount();
    const sender = `${unique('stream')}@example.com`;
    const photo = randomBytes(300 * 1024);
    const res = await postMailgun(
      setup,
      { ...mailgunSigned(setup), ...mail(setup, { sender, subject: 'Streamed' }) },
      [{ name: 'photo.jpg', type: 'image/jpeg', bytes: photo }],
      { chunked: true },
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.media_stored, 1, res.text);

    const huge = { name: 'huge.bin', type: 'application/octet-stream', bytes: Buffer.alloc(26 * 1024 * 1024, 7) };
    const tooLarge = await postMailgun(
      setup,
      { ...mailgunSigned(setup), ...mail(setup, { sender, subject: 'Too big' }) },
      [huge],
    );
    assertError(tooLarge, 413, 'payload_too_large', 'a mail over 25 MiB');
    const messages = await messagesOf(setup.key);
    assert.deepEqual(messages.map((m) => m.content.split('\n')[0]), ['Streamed']);
  });

  test('the same mail delivered twice is one message', async () => {
    const setup = await mailgunAccount();
    const fields = mail(setup, { sender: `${unique('twice')}@example.com` });
    for (const attempt of ['first', 'retry']) {
      // A retry is signed afresh, with a new token, but carries the same Message-Id.
      const res = await postMailgun(setup, { ...mailgunSigned(setup), ...fields });
      assert.equal(res.status, 200, `${attempt}: ${res.text}`);
    }
    assert.equal((await messagesOf(setup.key)).length, 1);
  });

  test('a bad, missing or stale signature is refused with 401 and nothing is stored', async () => {
    const setup = await mailgunAccount();
    const sender = `${unique('eve')}@example.com`;
    const now = Math.floor(Date.now() / 1000);
    const signed = mailgunSigned(setup);
    const cases = [
      ['no signature fields', {}],
      ['no signature', { timestamp: signed.timestamp, token: signed.token }],
      ['signed with another key', mailgunSigned(setup, { key: 'another-signing-key' })],
      ['a token changed after signing', { ...signed, token: randomBytes(25).toString('hex') }],
      ['signed ten minutes ago', mailgunSigned(setup, { timestamp: now - 600 })],
      ['signed ten minutes ahead', mailgunSigned(setup, { timestamp: now + 600 })],
    ];
    for (const [description, signature] of cases) {
      const res = await postMailgun(setup, { ...signature, ...mail(setup, { sender }) });
      assertError(res, 401, 'unauthorized', description);
    }
    await assertNothingStored(setup.key, 'after refused mail');
    const customer = await getCustomer(setup.key, 'email', sender);
    assert.equal(customer.status, 404, `no customer is created: ${customer.text}`);
  });

  test('an unknown account, a wrong method and a body that is not a well-formed form are refused', async () => {
    const unknown = await postMailgun({ path: `/webhooks/mailgun/${randomUUID()}` }, { sender: 'a@example.com' });
    assertError(unknown, 404, 'not_found', 'an account id nobody has');
    const setup = await mailgunAccount();
    const get = await request('GET', setup.path);
    assertError(get, 405, 'method_not_allowed', 'GET');
    const json = await request('POST', setup.path, { body: { sender: 'a@example.com' } });
    assertError(json, 415, 'unsupported_media_type', 'a JSON body');
    const unsigned = await request('POST', setup.path, {
      body: 'this is not multipart',
      headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
    });
    assertError(unsigned, 401, 'unauthorized', 'a multipart body without its parts, so without a signature');
    const signedBroken = await postMultipart(
      setup,
      multipartBody(fieldParts({ ...mailgunSigned(setup), sender: 'a@example.com' }), `--${BOUNDARY}\r\nno end`),
    );
    assertError(signedBroken, 400, 'malformed_request', 'a signed body whose last part never ends');
    const noBoundary = await request('POST', setup.path, {
      body: 'x',
      headers: { 'content-type': 'multipart/form-data' },
    });
    assertError(noBoundary, 400, 'malformed_request', 'multipart without a boundary');
  });

  test('the same signed POST sent twice is refused the second time as a replay, and stored once', async () => {
    const setup = await mailgunAccount();
    const signed = mailgunSigned(setup);
    const fields = { ...signed, ...mail(setup, { sender: `${unique('replay')}@example.com` }) };
    const first = await postMailgun(setup, fields);
    assert.equal(first.status, 200, first.text);

    const replay = await postMailgun(setup, fields);
    const error = assertError(replay, 401, 'unauthorized', 'the same POST again');
    assert.match(error.message, /replay/, error.message);
    assert.equal(usedTokenKeys(setup, signed.token).length, 1, 'the accepted token is recorded once');
    const urlEncoded = await request('POST', setup.path, {
      body: formBody(fields),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assertError(urlEncoded, 401, 'unauthorized', 'the same signature URL-encoded');
    assert.equal((await messagesOf(setup.key)).length, 1, 'one message is stored');

    // The token is the account's: another account (with its own key) is not affected by it.
    const other = await mailgunAccount();
    const otherSigned = mailgunSigned(other);
    const otherRes = await postMailgun(other, { ...otherSigned, ...mail(other, { sender: `${unique('o')}@example.com` }) });
    assert.equal(otherRes.status, 200, otherRes.text);
  });

  test('a signed POST refused after its signature does not use up its token, so Mailgun can retry it', async () => {
    const setup = await mailgunAccount();
    const signed = mailgunSigned(setup);
    const fields = { ...signed, ...mail(setup, { sender: `${unique('retry')}@example.com` }) };
    const refused = await postMailgun(setup, { ...fields, 'attachment-count': '1' });
    assertError(refused, 400, 'malformed_request', 'attachment-count names a file that is not there');
    assert.deepEqual(usedTokenKeys(setup, signed.token), [], 'a refused POST records no token');
    await assertNothingStored(setup.key, 'after the refused POST');

    const retried = await postMailgun(setup, fields);
    assert.equal(retried.status, 200, `the retry with the same signature: ${retried.text}`);
    assert.equal((await messagesOf(setup.key)).length, 1);
    assert.equal(usedTokenKeys(setup, signed.token).length, 1, 'now the token is used');
  });

  test('a bad signature on a large body is refused before the form is parsed', async () => {
    const setup = await mailgunAccount();
    const sender = `${unique('big')}@example.com`;
    // The file part never ends: the runtime's form parser refuses such a body with 400.
    const body = (signature) =>
      multipartBody(
        [
          ...fieldParts({ ...signature, ...mail(setup, { sender }), 'attachment-count': '1' }),
          { name: 'attachment-1', filename: 'big.bin', value: randomBytes(4 * 1024 * 1024) },
        ],
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="attachment-2"; filename="cut.bin"\r\n\r\n${'x'.repeat(1024)}`,
      );
    const cases = [
      ['signed with another key', mailgunSigned(setup, { key: 'another-signing-key' })],
      ['no signature fields', {}],
      ['signed ten minutes ago', mailgunSigned(setup, { timestamp: Math.floor(Date.now() / 1000) - 600 })],
    ];
    for (const [description, signature] of cases) {
      const res = await postMultipart(setup, body(signature));
      assertError(res, 401, 'unauthorized', `${description}, with an unparseable tail (401, not the parser's 400)`);
    }
    const signed = await postMultipart(setup, body(mailgunSigned(setup)));
    assertError(signed, 400, 'malformed_request', 'the same body correctly signed reaches the parser, which refuses it');
    await assertNothingStored(setup.key, 'after the refused bodies');
  });

  test('signature fields after a large file are found, and the mail is stored', async () => {
    const setup = await mailgunAccount();
    const sender = `${unique('late')}@example.com`;
    const photo = randomBytes(3 * 1024 * 1024);
    const signed = mailgunSigned(setup);
    const res = await postMultipart(
      setup,
      multipartBody([
        { name: 'attachment-1', filename: 'photo.jpg', type: 'image/jpeg', value: photo },
        ...fieldParts({ ...mail(setup, { sender, subject: 'Fields last' }), 'attachment-count': '1' }),
        ...fieldParts(signed),
      ]),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.media_stored, 1, res.text);
    const [message] = await messagesOf(setup.key, { attachments: true });
    assert.match(message.content, /^Fields last\n\n/);
    assert.equal(message.attachments?.[0]?.size, photo.length, JSON.stringify(message));
    assert.equal(usedTokenKeys(setup, signed.token).length, 1);
  });

  test('a signature field sent twice or longer than 256 bytes is refused before the form is parsed', async () => {
    const setup = await mailgunAccount();
    const signed = mailgunSigned(setup);
    const mailFields = fieldParts(mail(setup, { sender: `${unique('dup')}@example.com` }));
    const cases = [
      ['a token sent twice', [...fieldParts(signed), { name: 'token', value: 'another' }], 'token'],
      ['a token of 257 bytes', [...fieldParts({ ...signed, token: 'a'.repeat(257) })], 'token'],
    ];
    for (const [description, parts, field] of cases) {
      const res = await postMultipart(setup, multipartBody([...parts, ...mailFields]));
      const error = assertError(res, 400, 'malformed_request', description);
      assert.equal(error.field, field, description);
    }
    await assertNothingStored(setup.key, 'after the refused POSTs');
  });
});
