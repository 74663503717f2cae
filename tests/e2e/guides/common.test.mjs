// What the guides' steps lean on without being one of their code blocks: every connector's
// customers carry their CRM ids, a returning customer reopens their conversation, and the
// migrations' numbering.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, sync, unique, waitFor } from '../support.mjs';
import { businessWithEndpoint, receiveWhatsapp, uniquePhone } from '../receivers/webhook-api.mjs';
import { localPartners } from '../partners.mjs';
import { connectedBusiness, settledLog } from '../crm/connectors.mjs';

const partners = localPartners();

describe('every connector’s customers carry their CRM ids', () => {
  test('a customer the Kustomer connector put in Kustomer shows its Kustomer id in crm_ids', async () => {
    const setup = await connectedBusiness();
    partners.closeAfter(setup.kustomer);
    const [created] = (await sync(setup.business.key, [{ name: 'Kim Kustomer', email: `${unique('kim')}@example.com` }])).results.details;
    await settledLog(setup.connector.id, 1);
    const [inKustomer] = setup.kustomer.customers;
    const expected = [{ connector_id: setup.connector.id, kind: 'kustomer', external_id: `kustomer:customer:${inKustomer.id}` }];
    const shown = await api(setup.business.key, 'GET', `/api-customers?id=${created.customer_id}`);
    assert.equal(shown.status, 200, shown.text);
    assert.deepEqual(shown.body.crm_ids, expected);
    const listed = await api(setup.business.key, 'GET', '/api-customers');
    assert.deepEqual(listed.body.customers[0].crm_ids, expected, 'the listing shows them too');
  });
});

describe('conversations reopen when the customer writes again', () => {
  test('a resolved conversation is reopened by the customer’s message: one conversation, an event, the CRMs follow', async () => {
    const setup = await connectedBusiness();
    partners.closeAfter(setup.kustomer);
    const endpoint = partners.receiver.endpoint();
    await businessWithEndpoint(endpoint, {}, setup.business);
    const whatsapp = await partners.whatsappOf(setup.business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'My parcel is late' });
    await endpoint.waitFor((list) => list.some((r) => r.event === 'conversation.created'));
    const conversationId = endpoint.events('conversation.created')[0].body.data.conversation.id;
    const resolved = await api(setup.business.key, 'PATCH', `/api-conversations/${conversationId}`, { status: 'resolved' });
    assert.equal(resolved.status, 200, resolved.text);
    await waitFor(() => setup.kustomer.conversations[0]?.attributes.status === 'done', 20_000, 'Kustomer resolved it');

    await receiveWhatsapp(whatsapp, { from, text: 'It still has not come' });
    await endpoint.waitFor((list) => list.filter((r) => r.event === 'conversation.status_changed').length === 2);
    const reopened = endpoint.events('conversation.status_changed').at(-1).body.data;
    assert.equal(reopened.conversation.id, conversationId, 'the same conversation');
    assert.equal(reopened.conversation.status, 'open');
    assert.equal(reopened.conversation.reopen_count, 1);
    assert.equal(reopened.previous_status, 'resolved');
    assert.equal(reopened.reopened_by, 'customer_message');
    assert.equal(endpoint.events('conversation.created').length, 1, 'no second conversation');

    const history = await api(setup.business.key, 'GET', `/api-conversations-by-customer?customer_id=${reopened.conversation.customer_id}`);
    assert.equal(history.body.conversations.length, 1, history.text);
    assert.equal(history.body.conversations[0].status, 'open');
    await waitFor(() => setup.kustomer.conversations[0]?.attributes.status === 'open', 20_000, 'Kustomer reopened it');
    assert.equal(setup.kustomer.conversations.length, 1, 'the Kustomer conversation is reopened, not replaced');

    const analytics = await api(setup.business.key, 'GET', '/api-crm-analytics');
    assert.deepEqual(analytics.body.reopened, { count: 1, rate: 1 }, analytics.text);
  });
});

describe('migrations', () => {
  test('no two migrations share a number', async () => {
    const { readdirSync } = await import('node:fs');
    const names = readdirSync(new URL('../../../migrations/', import.meta.url)).filter((name) => name.endsWith('.sql'));
    const numbers = names.map((name) => name.slice(0, 4));
    assert.equal(new Set(numbers).size, numbers.length, names.join(', '));
  });
});
