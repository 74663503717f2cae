// A business whose customer has talked on several channels, for the embedded inbox's tests
// (tests/e2e/sso.test.mjs and the browser test): WhatsApp and email accounts whose providers
// are the local fakes, inbound messages posted as Meta and Mailgun sign them, and outbound
// messages (one with an image, one with a PDF) sent through /api-send-message.

import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { BASE_URL, REQUEST_TIMEOUT_MS, admin, api, newBusiness, request, sync, unique, waitFor } from './support.mjs';
import { mailgunSignature, metaSignature } from './signing.mjs';
import { GRAPH_VERSION, startMeta, whatsappNotification } from './providers/meta.mjs';
import { startMailgun } from './providers/mailgun.mjs';
import { randomId } from './providers/server.mjs';

const digits = (n) => Array.from({ length: n }, () => randomInt(10)).join('');

/** CRC-32 as PNG chunks use it. */
function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A 320x160 PNG that looks like a parcel label with a barcode, so that a preview shows something. */
function labelPng(width = 320, height = 160) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3, 0xff);
    row[0] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const border = x < 4 || y < 4 || x >= width - 4 || y >= height - 4;
      const bar = y > 70 && y < 140 && x > 24 && x < width - 24 && ((x * 7) % 11 < 4 || x % 13 === 0);
      const header = y > 16 && y < 52 && x > 24 && x < 200;
      const [r, g, b] = border || bar ? [28, 34, 48] : header ? [33, 80, 200] : [255, 255, 255];
      row.set([r, g, b], 1 + x * 3);
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export const PNG = labelPng();

async function addAccount(businessId, account) {
  const res = await admin('POST', `/admin/businesses/${businessId}/channel-accounts`, account);
  assert.equal(res.status, 201, `creating the ${account.channel} account: ${res.text}`);
  return res.body;
}

async function upload(key, name, type, bytes) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), name);
  const res = await fetch(`${BASE_URL}/api-upload-attachment`, {
    method: 'POST',
    headers: { 'x-api-key': key },
    body: form,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = await res.json();
  assert.equal(res.status, 201, `uploading ${name}: ${JSON.stringify(body)}`);
  return body.attachment;
}

/**
 * Starts the provider fakes and seeds one customer's conversations. `frameAncestors`: origins
 * allowed to frame the inbox. Returns helpers to add inbound messages and to stop the fakes.
 */
export async function seedInbox({ frameAncestors = [], name = 'Joe Bloggs' } = {}) {
  const accessTokens = new Map();
  const apiKeys = new Map();
  const [meta, mailgun] = await Promise.all([startMeta(accessTokens), startMailgun(apiKeys)]);
  const business = await newBusiness({ default_country: 'IE' });
  if (frameAncestors.length) {
    const res = await admin('PATCH', `/admin/businesses/${business.id}`, { embed_frame_ancestors: frameAncestors });
    assert.equal(res.status, 200, `allowing frame ancestors: ${res.text}`);
  }

  const phoneNumberId = digits(15);
  const metaSecrets = { app_secret: randomId(32), verify_token: randomId(16), access_token: `EAAG${randomId(40)}` };
  accessTokens.set(phoneNumberId, metaSecrets.access_token);
  const whatsapp = await addAccount(business.id, {
    channel: 'whatsapp',
    provider: 'meta',
    address: phoneNumberId,
    settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
    secrets: metaSecrets,
  });

  const domain = `mg-${randomId(8).toLowerCase()}.example.com`;
  const mailgunKey = `key-${randomId(32)}`;
  apiKeys.set(domain, mailgunKey);
  const signingKey = randomId(32);
  const email = await addAccount(business.id, {
    channel: 'email',
    provider: 'mailgun',
    address: `support@${domain}`,
    settings: { domain, api_base_url: mailgun.url },
    secrets: { signing_key: signingKey, api_key: mailgunKey },
  });

  const tag = unique('embed');
  const phone = `+35387${digits(7)}`;
  const customerFields = { external_id: `CRM-${tag}`, name, email: `${tag}@example.com`, phone };
  const synced = await sync(business.key, [customerFields]);
  const customer = { ...customerFields, id: synced.results.details[0].customer_id };

  /** An inbound WhatsApp text from the customer, signed as Meta signs it. */
  async function whatsappFromCustomer(text) {
    const payload = whatsappNotification(phoneNumberId, {
      contacts: [{ profile: { name }, wa_id: phone.slice(1) }],
      messages: [
        {
          from: phone.slice(1),
          id: `wamid.${unique('m')}`,
          timestamp: String(Math.floor(Date.now() / 1000)),
          type: 'text',
          text: { body: text },
        },
      ],
    });
    const body = JSON.stringify(payload);
    const res = await request('POST', whatsapp.webhook_path, {
      body,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': metaSignature(metaSecrets.app_secret, body) },
    });
    assert.equal(res.status, 200, `posting a WhatsApp message: ${res.text}`);
    assert.equal(res.body.stored, 1, `the WhatsApp message is stored: ${res.text}`);
  }

  /** An inbound email from the customer, signed as Mailgun signs it. */
  async function emailFromCustomer(subject, text) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const token = randomBytes(25).toString('hex');
    const fields = {
      recipient: email.address,
      sender: customer.email,
      from: `${name} <${customer.email}>`,
      subject,
      'body-plain': text,
      'stripped-text': text,
      'Message-Id': `<${unique('mail')}@mail.example.com>`,
      timestamp,
      token,
      signature: mailgunSignature(signingKey, timestamp, token),
    };
    const form = new FormData();
    for (const [field, value] of Object.entries(fields)) form.append(field, value);
    const res = await fetch(`${BASE_URL}${email.webhook_path}`, {
      method: 'POST',
      body: form,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    assert.equal(res.status, 200, `posting an email: ${await res.text()}`);
  }

  /** Sends a message to the customer through the API and waits until the provider took it. */
  async function sendToCustomer(channel, content, attachments = []) {
    const res = await api(business.key, 'POST', '/api-send-message', {
      customer_id: customer.id,
      channel,
      content,
      subject: channel === 'email' ? 'Your order' : undefined,
      attachments: attachments.map((attachment) => attachment.id),
    });
    assert.equal(res.status, 202, `sending on ${channel}: ${res.text}`);
    const id = res.body.message.id;
    await waitFor(async () => {
      const since = await api(business.key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500');
      return since.body.messages.find((message) => message.id === id && message.status !== 'queued');
    }, 30_000, `the ${channel} message to leave the queue`);
    return res.body.message;
  }

  await emailFromCustomer('Order 1234', 'Hi, I ordered a blue kettle last week. Where is my parcel?');
  const pdf = await upload(business.key, 'invoice-1234.pdf', 'application/pdf', Buffer.from('%PDF-1.4\n% e2e invoice\n'));
  await sendToCustomer('email', 'Sorry for the wait, Joe! Your kettle ships today. The invoice is attached.', [pdf]);
  await whatsappFromCustomer('Thanks! Can you send me a photo of the tracking label?');
  const image = await upload(business.key, 'tracking-label.png', 'image/png', PNG);
  await sendToCustomer('whatsapp', 'Here it is: tracking number IE123456789.', [image]);

  return {
    business,
    customer,
    whatsappFromCustomer,
    emailFromCustomer,
    sendToCustomer,
    /** Issues an SSO token for the customer. */
    async token(body = {}) {
      const res = await api(business.key, 'POST', '/api-sso-generate-token', { customer_id: customer.id, ...body });
      assert.equal(res.status, 201, `issuing a token: ${res.text}`);
      return res.body;
    },
    close: () => Promise.all([meta.close(), mailgun.close()]),
  };
}
