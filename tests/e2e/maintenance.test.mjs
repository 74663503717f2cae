// The maintenance sweep (`POST /admin/maintenance/sweep`, the same code webhook-dispatcher's cron
// runs every minute): a send whose queue message was lost is sent after the sweep with what it
// was accepted with, one re-queued too often is failed, and webhook history and SSO tokens past
// retention are deleted while everything still in use is kept. The rows are put in states the
// API cannot produce (a queued message with no queue message, timestamps aged by weeks) directly
// in the local D1 (store.mjs).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ADMIN_TOKEN, admin, api, assertError, newBusiness, request, sync, unique, waitFor } from './support.mjs';
import { d1 } from './store.mjs';
import { startMailgun } from './providers/mailgun.mjs';
import { randomId } from './providers/server.mjs';

const DAY_MS = 24 * 60 * 60 * 1000;
const apiKeys = new Map();
let mailgun;
let business;
let account;

before(async () => {
  mailgun = await startMailgun(apiKeys);
  business = await newBusiness({ default_country: 'IE' });
  const domain = `mg-${randomId(8)}.example.com`;
  const apiKey = `key-${randomId(32)}`;
  apiKeys.set(domain, apiKey);
  const res = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'email',
    provider: 'mailgun',
    address: `support@${domain}`,
    settings: { domain, api_base_url: mailgun.url },
    secrets: { signing_key: randomId(32), api_key: apiKey },
  });
  assert.equal(res.status, 201, `creating the email account: ${res.text}`);
  account = res.body;
});

after(async () => {
  await mailgun?.close();
});

async function newCustomer() {
  const tag = unique('sweep');
  const customer = { external_id: `CRM-${tag}`, name: 'Jane Doe', email: `${tag}@example.com` };
  const result = await sync(business.key, [customer]);
  return { ...customer, id: result.results.details[0].customer_id };
}

async function sweep() {
  const res = await admin('POST', '/admin/maintenance/sweep');
  assert.equal(res.status, 200, `the sweep: ${res.text}`);
  assert.deepEqual(res.body.failed, [], 'every part of the sweep ran');
  return res.body;
}

/** A customer with an email conversation (one message sent through the API), and its id. */
async function customerWithConversation() {
  const customer = await newCustomer();
  const res = await api(business.key, 'POST', '/api-send-message', {
    email: customer.email,
    channel: 'email',
    subject: 'Hello',
    content: 'First message',
  });
  assert.equal(res.status, 202, res.text);
  await mailgun.waitFor(customer.email, 1);
  const [[conversationId]] = d1('SELECT conversation_id FROM messages WHERE id = ?', [res.body.message.id]);
  return { customer, conversationId };
}

/**
 * A `queued` outbound message stored as send-message stores one, whose queue message never
 * existed (the worker died between storing and enqueueing), last written `ageMs` ago.
 */
function storeStuckSend({ customer, conversationId }, { ageMs, subject, reason = null, requeues = 0 }) {
  const id = randomUUID();
  d1(
    `INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status,
       status_reason, created_us, updated_at, send_subject, send_media_base_url, send_requeues)
     VALUES (?1, ?2, ?3, ?4, 'email', 'outbound', ?5, 'queued', ?6,
       (SELECT MAX(created_us) + 1 FROM messages WHERE business_id = ?2), ?7, ?8, ?9, ?10)`,
    [id, business.id, conversationId, customer.id, `Stuck ${id}`, reason, new Date(Date.now() - ageMs).toISOString(),
      subject, 'http://127.0.0.1:8787', requeues],
  );
  return id;
}

function messageRow(id) {
  const [[status, reason, requeues]] = d1('SELECT status, status_reason, send_requeues FROM messages WHERE id = ?', [id]);
  return { status, reason, requeues };
}

describe('lost sends', () => {
  test('a message stuck queued with no queue message is sent after the sweep, with its subject', async () => {
    const conversation = await customerWithConversation();
    const stuck = storeStuckSend(conversation, { ageMs: 2 * 60 * 60 * 1000, subject: 'Your invoice' });
    const report = await sweep();
    assert.ok(report.sends_requeued >= 1, `the stuck send was re-queued: ${JSON.stringify(report)}`);
    await waitFor(() => messageRow(stuck).status === 'sent', 30_000, 'the stuck message to be sent');
    const calls = mailgun.for(conversation.customer.email).filter((call) => call.body.text === `Stuck ${stuck}`);
    assert.equal(calls.length, 1, 'the stuck message reached Mailgun once');
    assert.equal(calls[0].body.subject, 'Your invoice', 'the subject it was accepted with survived');
    assert.equal(messageRow(stuck).requeues, 1, 'the re-queue is counted');
  });

  test('a queued message within the bound, or waiting on a provider retry, is left alone', async () => {
    const conversation = await customerWithConversation();
    const recent = storeStuckSend(conversation, { ageMs: 10 * 60 * 1000, subject: 'Recent' });
    // A retry note: the dispatcher may be waiting on a provider's Retry-After of up to 12 h.
    const waiting = storeStuckSend(conversation, {
      ageMs: 2 * 60 * 60 * 1000,
      subject: 'Waiting',
      reason: 'attempt 1 of 5 failed, retrying in 3600 s: mailgun answered 429',
    });
    await sweep();
    for (const [id, description] of [[recent, 'a recent send'], [waiting, 'a send waiting on a retry']]) {
      assert.deepEqual(
        { status: messageRow(id).status, requeues: messageRow(id).requeues },
        { status: 'queued', requeues: 0 },
        `${description} is not re-queued`,
      );
    }
  });

  test('a message re-queued three times without being dispatched is failed with a clear reason', async () => {
    const conversation = await customerWithConversation();
    const stuck = storeStuckSend(conversation, { ageMs: 2 * 60 * 60 * 1000, subject: 'Looping', requeues: 3 });
    const report = await sweep();
    assert.ok(report.sends_failed >= 1, JSON.stringify(report));
    const row = messageRow(stuck);
    assert.equal(row.status, 'failed');
    assert.match(row.reason, /never dispatched .* 3 times; nothing was sent/);
    const res = await api(business.key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500');
    const seen = res.body.messages.find((message) => message.id === stuck);
    assert.equal(seen.status, 'failed', 'the client sees it failed');
    assert.equal(mailgun.for(conversation.customer.email).filter((c) => c.body.subject === 'Looping').length, 0);
  });
});

describe('retention', () => {
  const us = (ms) => ms * 1000;

  function storeEvent({ ageMs, deliveries, dispatched = true }) {
    const id = randomUUID();
    const at = us(Date.now() - ageMs);
    d1(
      `INSERT INTO webhook_events (id, business_id, type, subject_id, created_us, dispatched_us)
       VALUES (?, ?, 'customer.created', ?, ?, ?)`,
      [id, business.id, randomUUID(), at, dispatched ? at : null],
    );
    for (const status of deliveries) {
      d1(
        `INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, event_us, updated_us)
         VALUES (?, ?, ?, ?, 'customer.created', ?, ?, ?)`,
        [randomUUID(), business.id, randomUUID(), id, status, at, at],
      );
    }
    return id;
  }

  function storeAttempt(ageMs) {
    const eventId = randomUUID();
    d1(
      `INSERT INTO webhook_attempts (business_id, endpoint_id, event_id, event_type, attempt, url, duration_ms, outcome, attempted_us)
       VALUES (?, ?, ?, 'customer.created', 1, 'https://example.com/hook', 12, 'delivered', ?)`,
      [business.id, randomUUID(), eventId, us(Date.now() - ageMs)],
    );
    return eventId;
  }

  function storeToken(customerId, expiresInMs) {
    const id = randomUUID();
    d1(
      `INSERT INTO sso_tokens (id, business_id, customer_id, token_hash, scope, created_at, expires_ms)
       VALUES (?, ?, ?, ?, 'inbox', ?, ?)`,
      [id, business.id, customerId, randomId(64), new Date().toISOString(), Date.now() + expiresInMs],
    );
    return id;
  }

  const eventExists = (id) => d1('SELECT COUNT(*) FROM webhook_events WHERE id = ?', [id])[0][0] === 1;
  const deliveriesOf = (id) => d1('SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?', [id])[0][0];
  const attemptExists = (eventId) => d1('SELECT COUNT(*) FROM webhook_attempts WHERE event_id = ?', [eventId])[0][0] === 1;
  const tokenExists = (id) => d1('SELECT COUNT(*) FROM sso_tokens WHERE id = ?', [id])[0][0] === 1;

  test('settled history past 30 days is deleted; pending and recent history is kept', async () => {
    // The customer first: no request of ours is in flight while the store is written directly.
    const customer = await newCustomer();
    const settled = storeEvent({ ageMs: 31 * DAY_MS, deliveries: ['delivered', 'dead'] });
    const pending = storeEvent({ ageMs: 31 * DAY_MS, deliveries: ['delivered', 'pending'] });
    const recent = storeEvent({ ageMs: 29 * DAY_MS, deliveries: ['delivered'] });
    const oldAttempt = storeAttempt(31 * DAY_MS);
    const recentAttempt = storeAttempt(29 * DAY_MS);
    const longExpired = storeToken(customer.id, -2 * DAY_MS);
    const justExpired = storeToken(customer.id, -60 * 60 * 1000);
    const valid = storeToken(customer.id, 60 * 60 * 1000);

    const report = await sweep();
    assert.equal(report.retention_days, 30, 'the default retention period');
    assert.ok(report.webhook_events_deleted >= 1, JSON.stringify(report));
    assert.ok(report.webhook_deliveries_deleted >= 2, JSON.stringify(report));
    assert.ok(report.webhook_attempts_deleted >= 1, JSON.stringify(report));
    assert.ok(report.sso_tokens_deleted >= 1, JSON.stringify(report));

    assert.equal(eventExists(settled), false, 'an old event whose deliveries are all settled is deleted');
    assert.equal(deliveriesOf(settled), 0, 'with its deliveries');
    assert.equal(eventExists(pending), true, 'an old event with a pending delivery is kept');
    assert.equal(deliveriesOf(pending), 2, 'with all its deliveries');
    assert.equal(eventExists(recent), true, 'an event within the retention period is kept');
    assert.equal(deliveriesOf(recent), 1);
    assert.equal(attemptExists(oldAttempt), false, 'an attempt older than the period is deleted');
    assert.equal(attemptExists(recentAttempt), true, 'a recent attempt is kept');
    assert.equal(tokenExists(longExpired), false, 'a token expired over a day ago is deleted');
    assert.equal(tokenExists(justExpired), true, 'a token expired an hour ago is kept');
    assert.equal(tokenExists(valid), true, 'a valid token is kept');

    await sweep();
    assert.equal(eventExists(pending), true, 'a second run keeps the pending event too');
  });
});

describe('the sweep endpoint', () => {
  test('refuses without the admin token, and answers only POST', async () => {
    for (const [headers, description] of [
      [{}, 'no Authorization header'],
      [{ authorization: 'Bearer wrong-token' }, 'a wrong token'],
      [{ authorization: `Bearer ${ADMIN_TOKEN}x` }, 'the token with an extra character'],
    ]) {
      const res = await request('POST', '/admin/maintenance/sweep', { headers });
      assertError(res, 401, 'unauthorized', description);
    }
    const res = await admin('GET', '/admin/maintenance/sweep');
    assertError(res, 405, 'method_not_allowed', 'GET');
    assert.equal(res.headers.get('allow'), 'POST');
  });
});
