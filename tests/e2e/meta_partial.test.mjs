// A Meta notification with unreadable parts: what can be read is stored and answered with 200,
// what cannot is skipped and counted in `rejected`, so Meta does not retry (and then drop) the
// whole batch for one bad message. Only a body that is no notification at all is refused.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { admin, api, assertError, getCustomer, newBusiness, request, unique } from './support.mjs';
import { metaSignature } from './signing.mjs';
import { whatsappNotification } from './providers/meta.mjs';

const digits = (count) => Array.from(randomBytes(count), (byte) => String(byte % 10)).join('');
/** An Irish mobile number nobody else's test uses. */
const uniquePhone = () => `+35387${digits(7)}`;
/** A numeric Meta id (phone number id, page id, page-scoped id). */
const metaId = () => `1${digits(15)}`;

/** A business with one Meta account on `channel`, and what it takes to post to it. */
async function metaAccount(channel) {
  const business = await newBusiness();
  const secrets = { app_secret: unique('app-secret'), verify_token: unique('verify'), access_token: unique('access') };
  const address = metaId();
  const res = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel,
    provider: 'meta',
    address,
    settings: {},
    secrets,
  });
  assert.equal(res.status, 201, `creating a channel account: ${res.text}`);
  return { key: business.key, secrets, address, path: res.body.webhook_path };
}

/** Posts a notification (an object, or a raw string sent as is) signed with the app secret. */
function postMeta(setup, payload) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return request('POST', setup.path, {
    body,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': metaSignature(setup.secrets.app_secret, body) },
  });
}

async function storedContents(key) {
  const res = await api(key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=100');
  assert.equal(res.status, 200, `listing messages: ${res.text}`);
  return res.body.messages.map((message) => message.content).sort();
}

function whatsappText(from, body) {
  return { from: from.slice(1), id: `wamid.${unique('m')}`, timestamp: '1700000000', type: 'text', text: { body } };
}

describe('a Meta notification with unreadable parts', () => {
  test('a WhatsApp message from something that is no phone number is rejected and its neighbour stored', async () => {
    const setup = await metaAccount('whatsapp');
    const from = uniquePhone();
    const res = await postMeta(
      setup,
      whatsappNotification(setup.address, {
        contacts: [{ profile: { name: 'Good Sender' }, wa_id: from.slice(1) }],
        messages: [whatsappText(from, 'The good one'), { ...whatsappText(from, 'The bad one'), from: 'not-a-number' }],
      }),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.received, 1, res.text);
    assert.equal(res.body.stored, 1, res.text);
    assert.equal(res.body.rejected, 1, res.text);
    assert.deepEqual(await storedContents(setup.key), ['The good one']);
    const customer = await getCustomer(setup.key, 'phone', from);
    assert.equal(customer.status, 200, customer.text);
    assert.equal(customer.body.name, 'Good Sender');
  });

  test('an entry that is not an object and a change of the wrong shape are rejected, the good changes stored', async () => {
    const setup = await metaAccount('whatsapp');
    const good = (text) => whatsappNotification(setup.address, { messages: [whatsappText(uniquePhone(), text)] }).entry[0];
    const first = good('First entry');
    const second = good('Second entry');
    second.changes.push({ field: 'messages', value: { metadata: { phone_number_id: setup.address }, messages: 'not a list' } });
    second.changes.push(good('Third change').changes[0]);
    const res = await postMeta(setup, {
      object: 'whatsapp_business_account',
      entry: [first, 'not an entry', second, { id: 'WABA-ID', changes: { not: 'a list' } }],
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.received, 3, res.text);
    assert.equal(res.body.stored, 3, res.text);
    assert.equal(res.body.rejected, 3, res.text);
    assert.deepEqual(await storedContents(setup.key), ['First entry', 'Second entry', 'Third change']);
  });

  test('a Messenger event of the wrong shape is rejected and the events around it stored', async () => {
    const setup = await metaAccount('facebook');
    const event = (sender, text) => ({
      sender: { id: sender },
      recipient: { id: setup.address },
      timestamp: Date.now(),
      message: { mid: `m_${unique('fb')}`, text },
    });
    const res = await postMeta(setup, {
      object: 'page',
      entry: [
        {
          id: setup.address,
          time: Date.now(),
          messaging: [event(metaId(), 'Before'), event({ not: 'an id' }, 'Lost'), event(metaId(), 'After')],
        },
      ],
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.received, 2, res.text);
    assert.equal(res.body.rejected, 1, res.text);
    assert.deepEqual(await storedContents(setup.key), ['After', 'Before']);
  });

  test('a readable notification answers rejected 0', async () => {
    const setup = await metaAccount('whatsapp');
    const res = await postMeta(
      setup,
      whatsappNotification(setup.address, { messages: [whatsappText(uniquePhone(), 'All fine')] }),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.rejected, 0, res.text);
  });

  test('a body that is no notification is still refused and nothing is stored', async () => {
    const setup = await metaAccount('whatsapp');
    const cases = [
      ['not JSON', 'this is not json', 400, 'malformed_request'],
      ['a JSON list', '[]', 422, 'validation_failed'],
      ['no object', JSON.stringify({ entry: [] }), 422, 'validation_failed'],
      ['entry is not a list', JSON.stringify({ object: 'whatsapp_business_account', entry: {} }), 422, 'validation_failed'],
      ['the object of another channel', JSON.stringify({ object: 'page', entry: [] }), 422, 'validation_failed'],
    ];
    for (const [description, body, status, code] of cases) {
      assertError(await postMeta(setup, body), status, code, description);
    }
    assert.deepEqual(await storedContents(setup.key), []);
  });
});
