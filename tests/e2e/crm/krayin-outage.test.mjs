// The Krayin connector when things go wrong: twenty Chatwoot events about one new contact at once
// make one person and one lead; Krayin down for 40 s under Chatwoot traffic loses nothing and
// doubles nothing (the receiver answering at once all along); a 422 fails at once with Krayin's
// reason; a 429 pauses the connector for as long as Krayin asks; 5xx are retried; and a budget
// keeps Krayin's own limit from ever answering 429.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { unique, waitFor } from '../support.mjs';
import { sleep, uniquePhone } from '../receivers/webhook-api.mjs';
import { contact, contactCreated, contactUpdated, conversation, conversationCreated, message, messageCreated } from './chatwoot.mjs';
import { connectorOf, krayinBusiness, settledLog, syncLog } from './connectors.mjs';

const servers = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function setUp(fields, serverOptions) {
  const setup = await krayinBusiness(fields, serverOptions);
  servers.push(setup.krayin);
  return setup;
}

const chatwootId = () => randomInt(1_000, 2_000_000_000);

async function queued(setup, payload) {
  const res = await setup.chatwoot(payload);
  assert.equal(res.status, 200, `${payload.event}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.match(String(res.body?.outcome), /^queued\b/, `${payload.event}: ${JSON.stringify(res.body)}`);
  return res;
}

const someone = (name, fields = {}) =>
  contact({ id: chatwootId(), name, email: `${unique('c')}@example.com`, phone_number: uniquePhone(), ...fields });
const conversationActivities = (krayin) => krayin.activities.filter((a) => /^Conversation #/.test(a.title ?? ''));
const messageActivities = (krayin) => krayin.activities.filter((a) => (a.title ?? '').startsWith('Message from '));
const apiCalls = (krayin) => krayin.requests.filter((r) => r.path.startsWith('/api/v1/'));

describe('at once', () => {
  test('twenty Chatwoot events about one new contact at once make exactly one person and one lead', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    const person = someone('Rush Hour', { additional_attributes: { company_name: 'Concurrent Ltd', job_title: 'Buyer' } });
    const conv = conversation({ id: randomInt(1, 100_000), inbox: 'whatsapp', contact: person });
    const events = [
      contactCreated(person),
      contactUpdated({ ...person, name: 'Rush Hour Jr' }, { name: ['Rush Hour', 'Rush Hour Jr'] }),
      conversationCreated(conv),
      ...Array.from({ length: 17 }, (_, i) =>
        messageCreated(message({ id: chatwootId(), conversation: conv, message_type: i % 3 === 2 ? 'outgoing' : 'incoming', content: `rush message ${i}.` })),
      ),
    ];
    const answers = await Promise.all(events.map((event) => setup.chatwoot(event)));
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.status, 200, `${events[i].event}: ${JSON.stringify(answer.body)}`);
      assert.match(String(answer.body?.outcome), /^queued\b/, `${events[i].event}: ${JSON.stringify(answer.body)}`);
    }
    const log = await settledLog(connector.id, 20, 90_000);
    assert.equal(log.length, 20, 'one piece of work per delivery');
    assert.ok(log.every((entry) => entry.status === 'succeeded'), JSON.stringify(log.filter((e) => e.status !== 'succeeded')));
    assert.equal(krayin.persons.length, 1, 'one person');
    assert.equal(krayin.leads.length, 1, 'one lead');
    assert.equal(krayin.organizations.length, 1, 'one organization');
    assert.equal(conversationActivities(krayin).length, 1, 'one conversation activity');
    const texts = messageActivities(krayin).map((a) => /rush message (\d+)\./.exec(a.comment ?? '')?.[1]);
    assert.equal(texts.length, 17, 'every message');
    assert.equal(new Set(texts).size, 17, `each once: ${texts}`);
  });
});

describe('Krayin down', () => {
  test('40 s of Krayin down under Chatwoot traffic: nothing lost, nothing twice, each conversation in order', { timeout: 330_000 }, async () => {
    const OUTAGE_MS = 40_000;
    const setup = await setUp();
    const { connector, krayin } = setup;
    const people = [someone('Ann Outage'), someone('Bob Outage'), someone('Cat Outage')];
    const conversations = people.map((person, i) => conversation({ id: 9_000 + i, inbox: i === 1 ? 'web' : 'whatsapp', contact: person }));
    for (const [i, person] of people.entries()) {
      await queued(setup, contactCreated(person));
      await queued(setup, conversationCreated(conversations[i]));
    }
    await settledLog(connector.id, 6, 40_000);
    const sent = new Map(conversations.map((conv) => [conv.id, []]));
    let n = 0;
    const say = async (conv) => {
      n += 1;
      const text = `outage-message-${String(n).padStart(3, '0')}`;
      sent.get(conv.id).push(text);
      const started = Date.now();
      await queued(setup, messageCreated(message({ id: chatwootId(), conversation: conv, content: text })));
      return Date.now() - started;
    };

    await krayin.down();
    const downSince = Date.now();
    const latencies = [];
    const late = someone('Dan Outage');
    const lateConversation = conversation({ id: 9_100, inbox: 'sms', contact: late });
    sent.set(lateConversation.id, []);
    await queued(setup, contactCreated(late));
    await queued(setup, conversationCreated(lateConversation));
    const all = [...conversations, lateConversation];
    while (Date.now() - downSince < OUTAGE_MS) {
      latencies.push(await say(all[n % all.length]));
      await sleep(2_500);
    }
    const during = await connectorOf(connector.id);
    assert.ok(during.status.backlog > 0, `the backlog is shown: ${JSON.stringify(during.status)}`);
    assert.ok(during.status.last_error, `the last error is shown: ${JSON.stringify(during.status)}`);
    assert.ok(Math.max(...latencies) < 5_000, `the receiver never waited on Krayin: ${Math.max(...latencies)} ms`);
    await krayin.up();

    const total = [...sent.values()].reduce((sum, texts) => sum + texts.length, 0);
    await waitFor(
      async () => messageActivities(krayin).length >= total && (await syncLog(connector.id, 'status=pending')).length === 0,
      240_000,
      `${total} messages in Krayin and no work pending`,
      2_000,
    );
    assert.equal(krayin.persons.length, 4, 'each person once');
    assert.equal(krayin.leads.length, 4, 'each lead once');
    assert.equal(conversationActivities(krayin).length, 4, 'each conversation once');
    assert.equal(messageActivities(krayin).length, total, 'each message once');
    for (const conv of all) {
      const texts = messageActivities(krayin)
        .filter((a) => a.title.endsWith(` - Conversation #${conv.id}`))
        .sort((a, b) => a.id - b.id)
        .map((a) => /outage-message-\d+/.exec(a.comment)?.[0]);
      assert.deepEqual(texts, sent.get(conv.id), `conversation #${conv.id}: every message once, in order`);
    }
    const log = await syncLog(connector.id);
    assert.equal(log.length, 6 + 2 + total);
    assert.deepEqual(log.filter((entry) => entry.status !== 'succeeded'), [], 'everything succeeded in the end');
  });
});

describe('Krayin’s answers', () => {
  test('a 422 fails the work at once with Krayin’s message', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    const reason = 'The title field is required.';
    krayin.fail({ status: 422, times: 5, body: { message: reason, errors: { title: [reason] } }, match: (r) => r.method === 'POST' && r.path === '/api/v1/leads' });
    await queued(setup, contactCreated(someone('No Lead')));
    const [entry] = await settledLog(connector.id, 1);
    assert.equal(entry.status, 'failed', JSON.stringify(entry));
    assert.equal(entry.attempts, 1, 'not retried');
    assert.equal(entry.last_status, 422);
    assert.ok((entry.last_error ?? '').includes(reason), `Krayin’s message: ${entry.last_error}`);
    assert.equal(krayin.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/leads').length, 1, 'asked once');
  });

  test('a 429 with Retry-After pauses the connector, and the work then succeeds', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    krayin.fail({ status: 429, retryAfter: 3, times: 1 });
    await queued(setup, contactCreated(someone('Throttled')));
    const status = await waitFor(async () => {
      const shown = await connectorOf(connector.id);
      return shown.status.paused_until ? shown.status : null;
    }, 20_000, 'the pause shown');
    assert.ok(Date.parse(status.paused_until) > Date.now() - 5_000, `paused until ${status.paused_until}`);
    const [entry] = await settledLog(connector.id, 1, 30_000);
    assert.equal(entry.status, 'succeeded', JSON.stringify(entry));
    assert.equal(entry.attempts, 2, 'one throttled try, one that worked');
    const calls = apiCalls(krayin);
    const throttled = calls.findIndex((r) => r.status === 429);
    assert.ok(throttled >= 0 && calls[throttled + 1], 'a call after the 429');
    const waited = calls[throttled + 1].at - calls[throttled].at;
    assert.ok(waited >= 2_900, `waited ${waited} ms of the 3 s asked`);
    assert.equal(krayin.persons.length, 1);
    assert.equal(krayin.leads.length, 1);
  });

  test('5xx answers are retried with backoff until Krayin succeeds', async () => {
    const setup = await setUp();
    const { connector, krayin } = setup;
    krayin.fail({ status: 503, times: 2 });
    await queued(setup, contactCreated(someone('Flaky')));
    const [entry] = await settledLog(connector.id, 1, 40_000);
    assert.equal(entry.status, 'succeeded', JSON.stringify(entry));
    assert.equal(entry.attempts, 3);
    assert.equal(krayin.persons.length, 1);
    assert.equal(krayin.leads.length, 1);
  });
});

describe('the budget', () => {
  test('a budget of one call a second keeps a Krayin that allows three a second from ever answering 429', async () => {
    const setup = await setUp(
      { rate_limit: { per_minute: null, per_second: 1, per_day: null } },
      { rateLimit: { perMinute: 3, windowMs: 1_000 } },
    );
    const { connector, krayin } = setup;
    await Promise.all(Array.from({ length: 4 }, (_, i) => queued(setup, contactCreated(someone(`Budget ${i}`)))));
    const log = await settledLog(connector.id, 4, 90_000);
    assert.ok(log.every((entry) => entry.status === 'succeeded'), JSON.stringify(log));
    assert.deepEqual(krayin.throttles, [], 'Krayin never said 429');
    assert.equal(krayin.persons.length, 4);
    assert.equal(krayin.leads.length, 4);
    const calls = apiCalls(krayin).map((r) => r.at);
    const seconds = (calls[calls.length - 1] - calls[0]) / 1000;
    assert.ok(seconds >= calls.length - 2, `${calls.length} calls at one a second took ${seconds} s`);
  });
});
