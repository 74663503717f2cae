// 002, the Krayin integration, as a business sets it up: the quick setup through the business's
// own API with its key, and what the guide's tables promise of the connector.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, api, assertError, newBusiness, unique, waitFor } from '../support.mjs';
import { messagesOf, receiveWhatsapp, uniquePhone } from '../receivers/webhook-api.mjs';
import { localPartners } from '../partners.mjs';
import { krayinServer, settledLog } from '../crm/connectors.mjs';

const partners = localPartners();

describe('002, "Quick Setup", as a business does it', () => {
  test('the business connects Krayin with its own key at /api-connectors: API URL, token, sync options, Connect, and the connection verified', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    // 3. "Enter your API URL: https://your-krayin.com/api/admin", 4. the API token, 5. the sync
    // options, 6. "Connect".
    const connected = await api(business.key, 'POST', '/api-connectors', {
      kind: 'krayin',
      name: 'Krayin CRM',
      settings: { api_url: `${server.krayin.origin}/api/admin`, sync_conversations: true, sync_messages: true },
      secrets: { api_token: server.apiToken },
    });
    assert.equal(connected.status, 201, connected.text);
    assert.equal(connected.body.settings.base_url.replace(/\/$/, ''), server.krayin.origin);
    // 7. "Verify connection successful".
    const verified = await api(business.key, 'POST', `/api-connectors/${connected.body.id}/test`);
    assert.equal(verified.status, 200, verified.text);
    assert.equal(verified.body.ok, true, verified.text);
    const listed = await api(business.key, 'GET', '/api-connectors');
    assert.deepEqual(listed.body.connectors.map((c) => c.id), [connected.body.id], 'the business sees its connector');
    const other = await newBusiness();
    const theirs = await api(other.key, 'POST', `/api-connectors/${connected.body.id}/test`);
    assert.equal(theirs.status, 404, 'another business cannot test it');
  });
});

describe('002, Krayin "Quick Setup" through the operator\'s API', () => {
  test('"Enter your API URL: https://your-krayin.com/api/admin" connects, and the connector shows Krayin’s address', async () => {
    const business = await newBusiness();
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    const given = [
      ['api_url', `${server.krayin.origin}/api/admin`],
      ['base_url', `${server.krayin.origin}/api/admin/`],
      ['base_url', `${server.krayin.origin}/api/v1`],
      ['api_url', server.krayin.origin],
    ];
    for (const [name, url] of given) {
      const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
        kind: 'krayin',
        name: unique('Krayin'),
        settings: { [name]: url },
        secrets: { api_token: server.apiToken },
      });
      assert.equal(res.status, 201, `${name} ${url}: ${res.text}`);
      assert.equal(res.body.settings.base_url.replace(/\/$/, ''), server.krayin.origin, `${url} is kept as Krayin's address`);
      assert.equal(res.body.settings.api_url, undefined, 'one name is kept');
      const tested = await admin('POST', `/admin/connectors/${res.body.id}/test`);
      assert.equal(tested.body.ok, true, `the connection works: ${tested.text}`);
    }
    const connector = (await admin('GET', `/admin/businesses/${business.id}/connectors`)).body.connectors[0];
    const moved = await admin('PATCH', `/admin/connectors/${connector.id}`, { settings: { api_url: `${server.krayin.origin}/api/admin` } });
    assert.equal(moved.status, 200, `a PATCH may use the guide's name too: ${moved.text}`);
    const wrong = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      settings: { api_url: `${server.krayin.origin}/api/admin/leads` },
      secrets: { api_token: server.apiToken },
    });
    const error = assertError(wrong, 422, 'validation_failed', 'a path that is not the API');
    assert.equal(error.field, 'settings.api_url');
    assert.match(error.message, /api\/admin/);
  });

  test('the sync options default to off, as the guide’s tables say: contacts only until the business turns them on', async () => {
    const business = await newBusiness();
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      settings: { api_url: `${server.krayin.origin}/api/admin` },
      secrets: { api_token: server.apiToken },
      rate_limit: { per_minute: null, per_second: null, per_day: null },
    });
    assert.equal(res.status, 201, res.text);
    const { settings } = res.body;
    assert.deepEqual(
      [settings.sync_conversations, settings.sync_messages, settings.sync_organizations, settings.stage_progression],
      [false, false, false, false],
    );
    const whatsapp = await partners.whatsappOf(business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'Hello Krayin' });
    const log = await settledLog(res.body.id, 3);
    assert.equal(server.krayin.persons.length, 1, 'the contact is synced');
    assert.equal(server.krayin.activities.length, 0, 'no conversation or message activity');
    assert.deepEqual(
      log.filter((e) => e.status === 'skipped').map((e) => e.last_error).sort(),
      ['Sync Conversations is off', 'Sync Messages is off'],
    );
  });
});

describe('conversations reopen when the customer writes again, in Krayin', () => {
  test('Krayin gets a new conversation activity for the reopened spell', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    const created = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      settings: { base_url: server.krayin.origin, sync_conversations: true },
      secrets: { api_token: server.apiToken },
      rate_limit: { per_minute: null, per_second: null, per_day: null },
    });
    assert.equal(created.status, 201, created.text);
    const whatsapp = await partners.whatsappOf(business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'First question' });
    await waitFor(() => server.krayin.activities.length === 1, 20_000, 'the first activity');
    const [first] = await messagesOf(business.key);
    const conversationId = first.conversation_id;
    assert.equal((await api(business.key, 'PATCH', `/api-conversations/${conversationId}`, { status: 'resolved' })).status, 200);
    await waitFor(() => server.krayin.activities[0].is_done === 1, 20_000, 'the activity done');
    await receiveWhatsapp(whatsapp, { from, text: 'Second question' });
    await waitFor(() => server.krayin.activities.length === 2, 20_000, 'a second activity');
    const [, second] = server.krayin.activities;
    assert.equal(second.is_done, 0, 'the new spell is open');
    assert.match(second.comment, /Reopened by the customer \(1 time\)/);
  });
});
