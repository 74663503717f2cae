// The Kustomer connector following our events: customers found by email or created (with the
// configured field mapping) and updated, conversations and every message on the Kustomer
// timeline in order, exactly one Kustomer customer however many events arrive at once, each
// toggle honoured, 4xx failing at once with Kustomer's reason, and every step in the sync log.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, sync, unique, waitFor } from '../support.mjs';
import { receiveWhatsapp, startMediaHost, uniquePhone, whatsappAccount } from '../receivers/webhook-api.mjs';
import { connectedBusiness, connectorOf, settledLog, syncLog } from './connectors.mjs';

const servers = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function setUp(fields, orgOptions) {
  const setup = await connectedBusiness(fields, orgOptions);
  servers.push(setup.kustomer);
  return setup;
}

const customersIn = (kustomer) => kustomer.customers;

describe('customers', () => {
  test('a synced customer is created in Kustomer with the mapped fields and updated when they change', async () => {
    const { business, connector, kustomer } = await setUp({
      settings: { field_mapping: { customerEmail: 'attributes.emails[0].email', customerName: 'attributes.name', customerPhone: 'attributes.phones[0].phone', tags: 'attributes.tags', 'custom_fields.plan': 'attributes.custom.planStr' } },
    });
    const tag = unique('k');
    const [created] = (await sync(business.key, [
      { external_id: `CRM-${tag}`, name: 'Ada Lovelace', email: `${tag}@example.com`, phone: '087 123 4567', tags: ['vip'], custom_fields: { plan: 'gold' } },
    ])).results.details;
    await waitFor(() => customersIn(kustomer).length === 1, 20_000, 'the Kustomer customer');
    const [customer] = customersIn(kustomer);
    assert.equal(customer.attributes.name, 'Ada Lovelace');
    assert.equal(customer.attributes.emails[0].email, `${tag}@example.com`);
    assert.equal(customer.attributes.phones[0].phone, '+353871234567');
    assert.deepEqual(customer.attributes.tags, ['vip']);
    assert.equal(customer.attributes.custom.planStr, 'gold');
    assert.equal(customer.attributes.externalId, `CRM-${tag}`, 'our external id is Kustomer’s externalId');

    await sync(business.key, [{ external_id: `CRM-${tag}`, name: 'Ada King', email: `${tag}@example.com` }]);
    await waitFor(() => customersIn(kustomer)[0].attributes.name === 'Ada King', 20_000, 'the update');
    assert.equal(customersIn(kustomer).length, 1, 'updated, not created again');
    const log = await settledLog(connector.id, 2);
    assert.deepEqual(log.map((entry) => [entry.operation, entry.status]), [
      ['customer.updated', 'succeeded'],
      ['customer.created', 'succeeded'],
    ]);
    assert.ok(log.every((entry) => entry.crm_id === customer.id && entry.record_id === created.customer_id));
  });

  test('a customer or conversation deleted in Kustomer is made again, and the work succeeds', async () => {
    const { business, connector, kustomer } = await setUp();
    const whatsapp = await whatsappAccount(business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'before' });
    await settledLog(connector.id, 3);
    const [gone] = kustomer.conversations.splice(0, 1);
    await receiveWhatsapp(whatsapp, { from, text: 'after the conversation was deleted' });
    await waitFor(() => kustomer.conversations.length === 1 && kustomer.messages(kustomer.conversations[0].id).length === 1, 20_000, 'a new conversation');
    assert.notEqual(kustomer.conversations[0].id, gone.id);
    assert.equal(kustomer.messages(kustomer.conversations[0].id)[0].attributes.preview, 'after the conversation was deleted');

    const tag = unique('gone');
    const { results } = await sync(business.key, [{ name: 'Kept Here', email: `${tag}@example.com` }]);
    await waitFor(() => kustomer.customers.some((c) => c.attributes.name === 'Kept Here'), 20_000, 'the customer in Kustomer');
    const index = kustomer.customers.findIndex((c) => c.attributes.name === 'Kept Here');
    const [deleted] = kustomer.customers.splice(index, 1);
    await sync(business.key, [{ name: 'Kept Here Still', email: `${tag}@example.com` }]);
    await waitFor(() => kustomer.customers.some((c) => c.attributes.name === 'Kept Here Still'), 20_000, 'made again with the update');
    const updated = (await syncLog(connector.id, `record=${results.details[0].customer_id}`)).find((e) => e.operation === 'customer.updated');
    assert.equal(updated.status, 'succeeded');
    assert.notEqual(updated.crm_id, deleted.id, 'linked to the new Kustomer customer');
  });

  test('Customer Lookup finds an existing Kustomer customer by email instead of creating one, and off creates', async () => {
    const on = await setUp();
    const tag = unique('lookup');
    const existing = on.kustomer.seedCustomer({ name: 'Known', emails: [{ type: 'home', email: `${tag}@example.com` }] });
    await sync(on.business.key, [{ name: 'Known Person', email: `${tag}@example.com` }]);
    const [entry] = await settledLog(on.connector.id, 1);
    assert.equal(entry.crm_id, existing.id, 'linked to the customer Kustomer had');
    assert.equal(customersIn(on.kustomer).length, 1, 'nobody created');

    const off = await setUp({ settings: { customer_lookup: false } });
    off.kustomer.seedCustomer({ name: 'Known', emails: [{ type: 'home', email: `${tag}-off@example.com` }] });
    await sync(off.business.key, [{ name: 'Other Person', email: `${tag}-other@example.com` }]);
    await settledLog(off.connector.id, 1);
    assert.equal(customersIn(off.kustomer).length, 2, 'Lookup off: a new customer');
    assert.ok(!off.kustomer.requests.some((r) => r.path.includes('/email=')), 'no lookup made');
  });

  test('a customer Kustomer refuses fails at once with Kustomer’s reason and is not retried', async () => {
    const { business, connector, kustomer } = await setUp();
    kustomer.fail({ status: 400, times: 1, match: (req) => req.method === 'POST' && req.path === '/v1/customers' });
    await sync(business.key, [{ name: 'Refused', email: `${unique('r')}@example.com` }]);
    const [entry] = await settledLog(connector.id, 1);
    assert.equal(entry.status, 'failed');
    assert.equal(entry.last_status, 400);
    assert.match(entry.last_error, /^400: /);
    assert.equal(entry.attempts, 1);
    const status = (await connectorOf(connector.id)).status;
    assert.equal(status.last_24h.failed, 1);
    assert.match(status.last_error, /^400/);
  });

  test('twenty messages from one new customer at once create exactly one Kustomer customer and conversation', async () => {
    const { business, connector, kustomer } = await setUp();
    const whatsapp = await whatsappAccount(business);
    const from = uniquePhone();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => receiveWhatsapp(whatsapp, { from, text: `message ${i}` })),
    );
    await waitFor(async () => (await syncLog(connector.id, 'status=succeeded')).length >= 22, 60_000, 'every message synced');
    assert.equal(customersIn(kustomer).length, 1, 'one customer');
    assert.equal(kustomer.conversations.length, 1, 'one conversation');
    const timeline = kustomer.messages(kustomer.conversations[0].id);
    assert.equal(timeline.length, 20, 'every message on the timeline once');
    assert.ok(timeline.every((message) => message.attributes.direction === 'in' && message.attributes.channel === 'whatsapp'));
  });
});

describe('conversations and the timeline', () => {
  test('messages reach the timeline in order with channel and direction', async () => {
    const { business, connector, kustomer } = await setUp();
    const whatsapp = await whatsappAccount(business);
    const from = uniquePhone();
    for (const text of ['first', 'second', 'third']) {
      await receiveWhatsapp(whatsapp, { from, text });
    }
    await waitFor(() => kustomer.conversations[0] && kustomer.messages(kustomer.conversations[0].id).length === 3, 30_000, 'three messages');
    const [conversation] = kustomer.conversations;
    assert.equal(conversation.attributes.status, 'open');
    assert.equal(conversation.attributes.priority, 3, 'the default priority');
    const previews = kustomer.messages(conversation.id).map((message) => message.attributes.preview);
    assert.deepEqual(previews, ['first', 'second', 'third']);
    const log = await settledLog(connector.id, 5);
    assert.ok(log.every((entry) => ['succeeded', 'skipped'].includes(entry.status)), JSON.stringify(log));
  });

  test('a message’s files are on the timeline as signed download links', async () => {
    const { business, kustomer } = await setUp();
    const media = await startMediaHost();
    servers.push(media);
    const whatsapp = await whatsappAccount(business, media.url);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'my receipt', mediaId: 'media-1' });
    await waitFor(() => kustomer.conversations[0] && kustomer.messages(kustomer.conversations[0].id).length === 1, 30_000, 'the message');
    const [message] = kustomer.messages(kustomer.conversations[0].id);
    const [file] = message.attributes.meta.attachments;
    assert.match(file.url, /\/api\/download-media\?.*signature=/, JSON.stringify(message.attributes));
    const download = await fetch(file.url.replace(/^http:\/\/localhost:/, 'http://127.0.0.1:'));
    assert.equal(download.status, 200, 'the link downloads the file');
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), media.image);
  });

  test('with Conversation Sync off, conversations and messages are skipped and say why', async () => {
    const { business, connector, kustomer } = await setUp({ settings: { conversation_sync: false } });
    const whatsapp = await whatsappAccount(business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'not synced' });
    const log = await settledLog(connector.id, 3);
    const skipped = log.filter((entry) => entry.status === 'skipped');
    assert.deepEqual(skipped.map((entry) => entry.operation).sort(), ['conversation.created', 'message.received']);
    assert.ok(skipped.every((entry) => entry.last_error === 'Conversation Sync is off'));
    assert.equal(kustomer.conversations.length, 0);
    assert.equal(customersIn(kustomer).length, 1, 'the customer is still synced');
  });

  test('a status change in crm-edge closes the Kustomer conversation', async () => {
    const { business, connector, kustomer } = await setUp();
    const whatsapp = await whatsappAccount(business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'please close' });
    await settledLog(connector.id, 3);
    const conversationId = (await syncLog(connector.id, 'status=succeeded')).find((e) => e.operation === 'conversation.created').record_id;
    const patched = await api(business.key, 'PATCH', `/api-conversations/${conversationId}`, { status: 'resolved' });
    assert.equal(patched.status, 200, patched.text);
    await waitFor(() => kustomer.conversations[0].attributes.status === 'done', 20_000, 'done in Kustomer');
  });
});

describe('the connector API', () => {
  test('settings are checked when saved, secrets are never shown, and the connection test says what Kustomer said', async () => {
    const { business, connector, kustomer, org } = await setUp();
    assert.deepEqual(connector.secrets_set, ['api_key']);
    assert.ok(!JSON.stringify(connector).includes('"ey'), 'the key is not shown');
    assert.equal(connector.webhook_path, `/api/webhooks/kustomer/${connector.id}`);

    const ok = await admin('POST', `/admin/connectors/${connector.id}/test`);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.ok, true);
    assert.equal(ok.body.user.org, org);

    const wrongOrg = await admin('PATCH', `/admin/connectors/${connector.id}`, { settings: { organization_id: 'f'.repeat(24) } });
    assert.equal(wrongOrg.status, 200, wrongOrg.text);
    const mismatch = await admin('POST', `/admin/connectors/${connector.id}/test`);
    assert.equal(mismatch.body.ok, false);
    assert.match(mismatch.body.reason, /organization/);

    const badKey = await admin('PATCH', `/admin/connectors/${connector.id}`, { secrets: { api_key: 'eyWRONG' }, settings: { organization_id: null } });
    assert.equal(badKey.status, 200, badKey.text);
    const refused = await admin('POST', `/admin/connectors/${connector.id}/test`);
    assert.equal(refused.body.ok, false);
    assert.equal(refused.body.status, 401);
    assert.match(refused.body.reason, /API key/i);

    await kustomer.down();
    const unreachable = await admin('POST', `/admin/connectors/${connector.id}/test`);
    assert.equal(unreachable.body.ok, false);
    assert.match(unreachable.body.reason, /could not be reached/);
    await kustomer.up();

    const teams = await admin('GET', `/admin/connectors/${connector.id}/teams`);
    assert.equal(teams.status, 502, 'the wrong key is refused by Kustomer, said as a 502 with its reason');
    assertError(teams, 502, 'crm_failed');

    const invalid = [
      [{ kind: 'salesforce', secrets: { api_key: 'k' }, settings: { subdomain: 'a' } }, 'kind'],
      [{ kind: 'kustomer', settings: { subdomain: 'a' } }, 'secrets.api_key'],
      [{ kind: 'kustomer', secrets: { api_key: 'k' }, settings: {} }, 'settings'],
      [{ kind: 'kustomer', secrets: { api_key: 'k' }, settings: { subdomain: 'a', default_priority: 9 } }, 'settings.default_priority'],
      [{ kind: 'kustomer', secrets: { api_key: 'k' }, settings: { subdomain: 'a', base_url: 'http://169.254.169.254/' } }, 'settings.base_url'],
      [{ kind: 'kustomer', secrets: { api_key: 'k' }, settings: { subdomain: 'a', field_mapping: { customerEmail: 'attributes.nowhere' } } }, 'settings.field_mapping.customerEmail'],
      [{ kind: 'kustomer', secrets: { api_key: 'k' }, settings: { subdomain: 'a' }, rate_limit: { per_minute: 0 } }, 'rate_limit.per_minute'],
    ];
    for (const [body, field] of invalid) {
      const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, body);
      assertError(res, 422, 'validation_failed', JSON.stringify(body));
      assert.ok(res.body.error.field?.startsWith(field.split('.')[0]), `${JSON.stringify(body)}: field ${res.body.error.field}`);
    }
  });
});
