// How deliveries behave when the receiver does not simply answer 200: the seed's schedule (three
// retries after 2, 4 and 8 s), no retry for a 4xx other than 429 or a redirect, Retry-After
// honoured, timeouts and refused connections retried and logged, dead deliveries replayed with
// the same webhook-id, secrets rotated with a grace period during which both sign, and an
// endpoint that keeps failing disabled until the business enables it again.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RFC3339_UTC, api, assertError, newBusiness, sync, unique, waitFor } from './support.mjs';
import { d1 } from './store.mjs';
import {
  refusedUrl,
  standardSignatureEntries,
  standardSignatureMatches,
  startWebhookReceiver,
  verifySeedSignature,
  verifyStandardSignature,
} from './receivers/webhook-receiver.mjs';
import { stackLog } from './crm/connectors.mjs';
import { attemptsOf, businessWithEndpoint, createWebhook, deliveriesOf, deliveryWhen, gaps, getWebhook, sleep } from './receivers/webhook-api.mjs';

/** Local queues add up to about a second of jitter to each wait; schedules are checked with this slack. */
const EARLY_MS = 500;
const LATE_MS = 6_000;

let receiver;
before(async () => {
  receiver = await startWebhookReceiver();
});
after(() => receiver?.close());

/** Syncs one new customer (a `customer.created` event) and returns its id. */
async function newCustomer(key, name = 'Event Source') {
  const tag = unique('c');
  const result = await sync(key, [{ external_id: `CRM-${tag}`, name, email: `${tag}@example.com` }]);
  assert.equal(result.results.created, 1, JSON.stringify(result));
  return result.results.details[0].customer_id;
}

/** The attempts of one delivery, oldest first (the log is newest first). */
async function attemptsOfDelivery(key, deliveryId) {
  return (await attemptsOf(key, { delivery_id: deliveryId })).reverse();
}

describe('retries, dead letters and replay', () => {
  test('a receiver that always answers 500 gets four attempts 2, 4 and 8 s apart, then the delivery is dead; a replay delivers it with the same webhook-id', async () => {
    const longBody = `{"error":"${'x'.repeat(3000)}"}`;
    const endpoint = receiver.endpoint([{ status: 500, body: longBody }]);
    const { key, webhook, business } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    await newCustomer(key);

    await endpoint.waitForCount(1, 20_000);
    const eventId = endpoint.requests[0].id;
    const pending = await deliveryWhen(key, webhook.id, eventId, (d) => d.status === 'pending' && d.attempts >= 1 && d.next_attempt_at !== null, 5_000);
    assert.match(pending.next_attempt_at, RFC3339_UTC, 'a pending delivery says when it is tried next');
    assert.equal(pending.event_type, 'customer.created');

    await endpoint.waitForCount(4, 40_000);
    const waits = gaps(endpoint.requests);
    for (const [i, expected] of [2000, 4000, 8000].entries()) {
      assert.ok(waits[i] >= expected - EARLY_MS, `retry ${i + 1} waits at least ~${expected} ms (waited ${waits[i]} ms; all: ${waits})`);
      assert.ok(waits[i] <= expected + LATE_MS, `retry ${i + 1} is not much later than ${expected} ms (waited ${waits[i]} ms)`);
    }
    assert.deepEqual(new Set(endpoint.requests.map((r) => r.id)), new Set([eventId]), 'webhook-id is the same on every retry');
    const stamps = endpoint.requests.map((r) => Number(r.headers['x-webhook-timestamp']));
    assert.ok(stamps[3] - stamps[0] >= 10, `each attempt is signed at its own time, so the seed's 300 s check passes on late retries (${stamps})`);
    for (const attempt of endpoint.requests) {
      assert.equal(attempt.seedVerified && attempt.standardVerified, true, 'every retry is signed');
      assert.equal(attempt.body.business_id, business.id);
    }

    const dead = await deliveryWhen(key, webhook.id, eventId, (d) => d.status === 'dead');
    assert.equal(dead.attempts, 4);
    assert.equal(dead.replays, 0);
    assert.equal(dead.next_attempt_at, null, 'a dead delivery is not tried again');
    assert.equal(dead.last_status, 500);
    assert.match(dead.event_at, RFC3339_UTC);
    const deadOnly = await api(key, 'GET', `/api-webhooks/${webhook.id}/deliveries?status=dead`);
    assert.deepEqual(deadOnly.body.deliveries.map((d) => d.id), [dead.id], 'the dead-letter list shows it');
    const pendingOnly = await api(key, 'GET', `/api-webhooks/${webhook.id}/deliveries?status=pending`);
    assert.deepEqual(pendingOnly.body.deliveries, [], 'nothing is pending');

    const log = await attemptsOfDelivery(key, dead.id);
    assert.deepEqual(log.map((a) => a.attempt), [1, 2, 3, 4], JSON.stringify(log));
    assert.deepEqual(log.map((a) => a.outcome), ['retrying', 'retrying', 'retrying', 'dead']);
    for (const entry of log) {
      assert.equal(entry.status_code, 500);
      assert.equal(entry.replay, 0);
      assert.equal(entry.event_id, eventId);
      assert.equal(entry.webhook_id, webhook.id);
      assert.equal(entry.delivery_id, dead.id);
      assert.equal(entry.event_type, 'customer.created');
      assert.equal(entry.url, endpoint.url);
      assert.equal(typeof entry.duration_ms, 'number');
      assert.ok(Buffer.byteLength(entry.response_body) <= 1024, `the logged body is cut at 1024 bytes (${Buffer.byteLength(entry.response_body)})`);
      assert.ok(longBody.startsWith(entry.response_body), 'the logged body is the start of the answer');
      assert.ok(entry.response_body.length >= 512, 'a useful part of the answer is kept');
    }
    const byEvent = await attemptsOf(key, { event_id: eventId });
    assert.equal(byEvent.length, 4, 'the log is queryable by event');
    assert.deepEqual(byEvent.map((a) => a.attempt), [4, 3, 2, 1], 'newest first');

    endpoint.script([200]);
    const replay = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, { delivery_id: dead.id });
    assert.equal(replay.status, 202, replay.text);
    assert.equal(replay.body.replayed, 1);
    assert.deepEqual(replay.body.delivery_ids, [dead.id]);
    await endpoint.waitForCount(5, 20_000);
    const replayed = endpoint.requests[4];
    assert.equal(replayed.id, eventId, 'the replay keeps the webhook-id, so the receiver can deduplicate');
    assert.equal(replayed.body.id, eventId);
    assert.ok(replayed.seedVerified && replayed.standardVerified, 'the replay is signed');
    const delivered = await deliveryWhen(key, webhook.id, eventId, (d) => d.status === 'delivered');
    assert.equal(delivered.replays, 1);
    const after = await attemptsOfDelivery(key, dead.id);
    const last = after.at(-1);
    assert.equal(after.length, 5);
    assert.deepEqual([last.replay, last.attempt, last.outcome, last.status_code], [1, 1, 'delivered', 200], JSON.stringify(last));
  });

  test('a 410, a 400 or a redirect is not retried: one attempt and the delivery is dead', async () => {
    const cases = [
      ['410 Gone', { status: 410 }],
      ['400 Bad Request', { status: 400 }],
      ['a 301 redirect, which is not followed', { status: 301, headers: { location: receiver.endpoint([200]).url } }],
    ];
    const started = await Promise.all(
      cases.map(async ([description, step]) => {
        const endpoint = receiver.endpoint([step]);
        const setup = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
        await newCustomer(setup.key);
        return { description, step, endpoint, ...setup };
      }),
    );
    for (const { endpoint, description } of started) await endpoint.waitForCount(1, 20_000).catch((e) => assert.fail(`${description}: ${e.message}`));
    await sleep(4_500); // longer than the first two waits of the schedule
    for (const { description, step, endpoint, key, webhook } of started) {
      assert.equal(endpoint.requests.length, 1, `${description}: exactly one attempt`);
      const delivery = await deliveryWhen(key, webhook.id, endpoint.requests[0].id, (d) => d.status === 'dead', 5_000);
      assert.equal(delivery.attempts, 1, `${description}: one attempt counted`);
      assert.equal(delivery.last_status, step.status, `${description}: last_status`);
      const log = await attemptsOfDelivery(key, delivery.id);
      assert.deepEqual(log.map((a) => [a.attempt, a.status_code, a.outcome]), [[1, step.status, 'dead']], `${description}: the log`);
    }
  });

  test('a 429 with Retry-After: 5 is retried no sooner than 5 s later', async () => {
    const endpoint = receiver.endpoint([{ status: 429, retryAfter: 5 }, 200]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    await newCustomer(key);
    await endpoint.waitForCount(2, 25_000);
    const [wait] = gaps(endpoint.requests);
    assert.ok(wait >= 5000 - EARLY_MS, `Retry-After is honoured over the 2 s schedule (waited ${wait} ms)`);
    assert.ok(wait <= 5000 + LATE_MS, `and not much longer (waited ${wait} ms)`);
    assert.equal(endpoint.requests[1].id, endpoint.requests[0].id);
    const delivery = await deliveryWhen(key, webhook.id, endpoint.requests[0].id, (d) => d.status === 'delivered');
    assert.equal(delivery.attempts, 2);
    const log = await attemptsOfDelivery(key, delivery.id);
    assert.deepEqual(log.map((a) => [a.status_code, a.outcome]), [[429, 'retrying'], [200, 'delivered']]);

    // A delivered delivery can be replayed too, as the same event.
    const replay = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, { delivery_id: delivery.id });
    assert.equal(replay.status, 202, replay.text);
    assert.deepEqual(replay.body, { replayed: 1, delivery_ids: [delivery.id] });
    await endpoint.waitForCount(3, 20_000);
    assert.equal(endpoint.requests[2].id, endpoint.requests[0].id, 'the same webhook-id');
    const again = await deliveryWhen(key, webhook.id, endpoint.requests[0].id, (d) => d.status === 'delivered' && d.replays === 1);
    assert.equal(again.attempts, 1, 'the replay is a new round of attempts');
    for (const [description, body] of [['an unknown delivery id', { delivery_id: '00000000-0000-4000-8000-000000000000' }], ['a delivery id that is not an id', { delivery_id: 'nope' }]]) {
      const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, body);
      assert.ok([404, 422].includes(res.status), `${description}: refused (${res.status} ${res.text})`);
    }
  });

  test('a receiver slower than the timeout is logged as a timeout and retried', async () => {
    const endpoint = receiver.endpoint([{ status: 200, delayMs: 5_000 }]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { events: ['customer.created'], timeout_seconds: 2 });
    await newCustomer(key);
    await endpoint.waitForCount(1, 20_000);
    const eventId = endpoint.requests[0].id;
    const [first] = await waitFor(async () => {
      const log = await attemptsOf(key, { event_id: eventId });
      return log.length >= 1 && log.slice(-1);
    }, 10_000, 'the first attempt in the log');
    assert.equal(first.status_code, null, JSON.stringify(first));
    assert.match(first.error ?? '', /time/i, `the error mentions the timeout: ${first.error}`);
    assert.equal(first.outcome, 'retrying');
    assert.ok(first.duration_ms >= 1_500 && first.duration_ms < 5_000, `cut off after about 2 s (${first.duration_ms} ms)`);
    await endpoint.waitForCount(2, 15_000);
    assert.equal(endpoint.requests[1].id, eventId, 'the retry is the same event');
    const delivery = await deliveryWhen(key, webhook.id, eventId, (d) => d.attempts >= 1, 5_000);
    assert.match(delivery.last_error ?? '', /time/i, 'the delivery shows the last error');
  });

  test('a refused connection is logged with its error and retried', async () => {
    const { key } = await newBusiness();
    const { webhook } = await createWebhook(key, { url: await refusedUrl(), events: ['customer.created'] });
    await newCustomer(key);
    const log = await waitFor(async () => {
      const attempts = await attemptsOf(key, { webhook_id: webhook.id });
      return attempts.length >= 2 && attempts.reverse();
    }, 20_000, 'two attempts at a closed port');
    assert.deepEqual(log.slice(0, 2).map((a) => [a.attempt, a.status_code, a.outcome]), [[1, null, 'retrying'], [2, null, 'retrying']]);
    for (const entry of log) assert.ok(entry.error && entry.error.length > 0, `the error is logged: ${JSON.stringify(entry)}`);
    const at = log.map((a) => Date.parse(a.attempted_at));
    assert.ok(at[1] - at[0] >= 2000 - EARLY_MS, `the retry waits about 2 s (${at[1] - at[0]} ms)`);
  });
});

describe('rotating the secret', () => {
  test('after a rotation both secrets sign during the grace period, and with no grace only the new one', async () => {
    const endpoint = receiver.endpoint();
    const { key, webhook, secret: first } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    await newCustomer(key);
    await endpoint.waitForCount(1, 20_000);
    const before = endpoint.requests[0];
    assert.ok(verifySeedSignature(before.headers, before.raw, first), 'before: the seed signature uses the first secret');
    assert.equal(standardSignatureEntries(before.headers['webhook-signature']).length, 1, 'before: one v1 signature');

    const rotated = await api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, {});
    assert.equal(rotated.status, 200, rotated.text);
    const second = rotated.body.secret;
    assert.match(second, /^whsec_/);
    assert.notEqual(second, first, 'a new secret');
    const expires = Date.parse(rotated.body.webhook.previous_secret_expires_at);
    assert.ok(Math.abs(expires - (Date.now() + 86_400_000)) < 300_000, `the old secret expires in about a day (${rotated.body.webhook.previous_secret_expires_at})`);
    const read = await api(key, 'GET', `/api-webhooks/${webhook.id}`);
    assert.ok(!read.text.includes(second.slice(6)) && !read.text.includes(first.slice(6)), 'no secret is readable afterwards');

    await newCustomer(key);
    await endpoint.waitForCount(2, 20_000);
    const during = endpoint.requests[1];
    assert.ok(verifySeedSignature(during.headers, during.raw, first), 'during: a first attempt signs X-Webhook-Signature with the old secret, which a seed receiver still holds');
    assert.ok(!verifySeedSignature(during.headers, during.raw, second), 'during: not with the new one, which the receiver has not confirmed');
    assert.equal(standardSignatureEntries(during.headers['webhook-signature']).length, 2, `during: two v1 signatures (${during.headers['webhook-signature']})`);
    const [newIndex, oldIndex] = standardSignatureMatches(during.headers, during.raw, [second, first]);
    assert.ok(newIndex >= 0, 'during: one v1 entry verifies with the new secret');
    assert.ok(oldIndex >= 0, 'during: one v1 entry verifies with the old secret');
    assert.notEqual(newIndex, oldIndex, 'two different entries');

    const immediate = await api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, { grace_seconds: 0 });
    assert.equal(immediate.status, 200, immediate.text);
    const third = immediate.body.secret;
    const previous = immediate.body.webhook.previous_secret_expires_at;
    assert.ok(previous === null || Date.parse(previous) <= Date.now() + 1000, `no grace: nothing keeps signing (${previous})`);
    await newCustomer(key);
    await endpoint.waitForCount(3, 20_000);
    const afterwards = endpoint.requests[2];
    assert.ok(verifySeedSignature(afterwards.headers, afterwards.raw, third), 'afterwards: the seed signature uses the newest secret');
    assert.equal(standardSignatureEntries(afterwards.headers['webhook-signature']).length, 1, `afterwards: one v1 signature (${afterwards.headers['webhook-signature']})`);
    assert.ok(verifyStandardSignature(afterwards.headers, afterwards.raw, third), 'afterwards: it verifies with the newest secret');
    for (const [description, old] of [['the second', second], ['the first', first]]) {
      assert.ok(!verifyStandardSignature(afterwards.headers, afterwards.raw, old), `afterwards: ${description} secret no longer verifies`);
    }

    for (const [description, grace] of [['a negative grace', -1], ['more than 7 days', 604_801], ['a fractional grace', 1.5]]) {
      const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, { grace_seconds: grace });
      assert.ok(res.status === 422 || res.status === 400, `${description}: refused (${res.status} ${res.text})`);
      if (res.status === 422) assert.equal(res.body.error.field, 'grace_seconds', `${description}: the field`);
    }
    const max = await api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, { grace_seconds: 604_800 });
    assert.equal(max.status, 200, `7 days of grace is allowed: ${max.text}`);
  });
});

describe('a seed receiver switching secrets during a rotation', () => {
  test('it loses no delivery: the old secret signs first attempts until the receiver accepts the new one on a retry, then the new one signs for good', async () => {
    const endpoint = receiver.endpoint([{ status: 200, requireSeedSignature: true }]);
    const { key, webhook, secret: first } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    const rotated = await api(key, 'POST', `/api-webhooks/${webhook.id}/rotate-secret`, {});
    assert.equal(rotated.status, 200, rotated.text);
    const second = rotated.body.secret;

    await newCustomer(key, 'Before The Switch');
    await endpoint.waitForCount(1, 20_000);
    assert.equal(endpoint.requests[0].step.status, 200, 'the receiver, still on the old secret, accepts the first delivery after the rotation');

    endpoint.secrets = [second];
    await newCustomer(key, 'During The Switch');
    await endpoint.waitForCount(3, 30_000);
    const [refused, accepted] = endpoint.requests.slice(1, 3);
    assert.equal(refused.id, accepted.id, 'the same event, retried');
    assert.equal(refused.step.status, 401, 'the first attempt, signed with the old secret, is refused by the switched receiver');
    assert.equal(accepted.step.status, 200, 'the retry, signed with the new secret, is accepted');
    assert.ok(verifySeedSignature(accepted.headers, accepted.raw, second));
    const delivery = await deliveryWhen(key, webhook.id, accepted.id, (d) => d.status === 'delivered');
    assert.equal(delivery.attempts, 2);

    await newCustomer(key, 'After The Switch');
    await endpoint.waitForCount(4, 20_000);
    const confirmed = endpoint.requests[3];
    assert.equal(confirmed.step.status, 200, 'once confirmed, first attempts sign with the new secret');
    assert.ok(verifySeedSignature(confirmed.headers, confirmed.raw, second));
    assert.equal(standardSignatureEntries(confirmed.headers['webhook-signature']).length, 2, 'Standard Webhooks still lists both secrets until the grace period ends');
  });
});

describe('a late result', () => {
  test('an attempt that ends after its delivery was settled elsewhere changes nothing: delivered stays delivered', async () => {
    const endpoint = receiver.endpoint([{ status: 500, delayMs: 3_000 }]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    await newCustomer(key);
    await endpoint.waitForCount(1, 20_000);
    const eventId = endpoint.requests[0].id;
    // While the attempt waits for its answer, the delivery is settled by someone else (another
    // worker that took it over, or a replay's round).
    const [[deliveryId]] = d1("SELECT id FROM webhook_deliveries WHERE event_id = ?", [eventId]);
    d1("UPDATE webhook_deliveries SET status = 'delivered', lease = 'someone-else' WHERE id = ?", [deliveryId]);
    await waitFor(() => endpoint.requests[0].answeredAt !== null, 10_000, 'the slow answer');
    await waitFor(async () => (await attemptsOf(key, { delivery_id: deliveryId })).length === 1, 10_000, 'the late attempt to be logged');
    const [[status, attempts]] = d1('SELECT status, attempts FROM webhook_deliveries WHERE id = ?', [deliveryId]);
    assert.deepEqual([status, attempts], ['delivered', 0], 'the late 500 did not put the delivered delivery back to pending');
    await sleep(3_000);
    assert.equal(endpoint.requests.length, 1, 'and no retry was scheduled for it');
    const listed = await deliveriesOf(key, webhook.id);
    assert.equal(listed[0].status, 'delivered');
  });
});

describe('disabling an endpoint that keeps failing', () => {
  test('an endpoint failing for longer than disable_after_seconds is disabled, gets no later events, and PATCH enabled:true revives it', async () => {
    const endpoint = receiver.endpoint([500]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { events: ['customer.created'], disable_after_seconds: 3 });
    await newCustomer(key);
    await endpoint.waitForCount(1, 20_000);
    const failing = await waitFor(async () => {
      const current = await getWebhook(key, webhook.id);
      return current.failing_since && current;
    }, 5_000, 'failing_since to be set after the first failure');
    assert.match(failing.failing_since, RFC3339_UTC);

    const disabled = await waitFor(async () => {
      const current = await getWebhook(key, webhook.id);
      return current.enabled === false && current;
    }, 20_000, 'the endpoint to be disabled');
    assert.equal(typeof disabled.disabled_reason, 'string');
    assert.ok(disabled.disabled_reason.length > 0, 'the business is told why');
    const seen = endpoint.requests.length;
    assert.ok(seen >= 2, `it failed more than once before being disabled (${seen})`);
    // What was still being retried is given up, and visible as dead, so that it can be replayed
    // once the receiver is fixed (as disabled_reason tells the business to do).
    const eventId = endpoint.requests[0].id;
    const given = await waitFor(async () => {
      const delivery = (await deliveriesOf(key, webhook.id)).find((d) => d.event_id === eventId);
      return delivery?.status === 'dead' && delivery;
    }, 10_000, 'the delivery in progress at disabling to be dead-lettered');
    assert.equal(given.last_status, 500, 'the receiver\'s last answer is kept');
    assert.match(given.last_error, /disabled/, 'and why it was given up');
    assert.equal(given.attempts, seen, 'giving up is not counted as an attempt');

    const laterCustomer = await newCustomer(key, 'After Disabling');
    await sleep(3_000);
    assert.ok(
      !endpoint.requests.some((r) => r.body?.data?.customer?.id === laterCustomer),
      'an event after disabling is not delivered to the disabled endpoint',
    );

    const revived = await api(key, 'PATCH', `/api-webhooks/${webhook.id}`, { enabled: true });
    assert.equal(revived.status, 200, revived.text);
    assert.equal(revived.body.webhook.enabled, true);
    assert.equal(revived.body.webhook.disabled_reason, null, 'the reason is cleared');
    assert.equal(revived.body.webhook.failing_since, null, 'the failure clock restarts');
    endpoint.script([200]);
    const revivedCustomer = await newCustomer(key, 'After Reviving');
    await endpoint.waitFor(
      (list) => list.some((r) => r.body?.data?.customer?.id === revivedCustomer),
      20_000,
      'the event after re-enabling',
    );
  });

  test('a disabled endpoint (enabled:false at creation) gets nothing', async () => {
    const endpoint = receiver.endpoint();
    const sentinel = receiver.endpoint();
    const { key, business } = await businessWithEndpoint(endpoint, { enabled: false });
    await businessWithEndpoint(sentinel, { events: ['customer.created'] }, business);
    const id = await newCustomer(key);
    await sentinel.waitFor((list) => list.some((r) => r.body?.data?.customer?.id === id), 20_000, 'the event at the enabled endpoint');
    await sleep(1_000);
    assert.equal(endpoint.requests.length, 0, 'nothing reaches the disabled endpoint');
    assertError(await api(key, 'POST', `/api-webhooks/${business.id}/replay`, {}), 404, 'not_found', 'a business id is no webhook id');
  });

  test('a replay for a time range re-sends the dead deliveries of events in [from, to)', async () => {
    const endpoint = receiver.endpoint([410]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    const from = new Date(Date.now() - 1000).toISOString();
    await newCustomer(key);
    await newCustomer(key);
    await endpoint.waitForCount(2, 20_000);
    const ids = endpoint.requests.map((r) => r.id);
    const dead = await waitFor(async () => {
      const list = (await api(key, 'GET', `/api-webhooks/${webhook.id}/deliveries?status=dead`)).body.deliveries;
      return list.length === 2 && list;
    }, 10_000, 'two dead deliveries');
    const to = new Date(Date.now() + 1000).toISOString();

    const bad = [
      ['neither delivery_id nor a range', {}],
      ['a range without its end', { from }],
      ['a range that is not RFC 3339', { from: 'yesterday', to }],
    ];
    for (const [description, body] of bad) {
      const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, body);
      assert.ok(res.status === 422 || res.status === 400, `${description}: refused (${res.status} ${res.text})`);
    }
    const empty = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, { from: '2000-01-01T00:00:00Z', to: '2000-01-02T00:00:00Z' });
    assert.equal(empty.status, 202, empty.text);
    assert.equal(empty.body.replayed, 0, 'nothing died in 2000');

    endpoint.script([200]);
    const res = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, { from, to });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.replayed, 2, res.text);
    assert.deepEqual([...res.body.delivery_ids].sort(), dead.map((d) => d.id).sort());
    await endpoint.waitForCount(4, 20_000);
    assert.deepEqual(endpoint.requests.slice(2).map((r) => r.id).sort(), [...ids].sort(), 'the same events, with the same webhook-ids');
    await waitFor(async () => {
      const list = (await api(key, 'GET', `/api-webhooks/${webhook.id}/deliveries?status=delivered`)).body.deliveries;
      return list.length === 2 && list.every((d) => d.replays === 1) && list;
    }, 10_000, 'both delivered after one replay');
  });

  test('an event whose body cannot be built is dead-lettered alone, with why, and the rest of its batch is delivered', async () => {
    const endpoint = receiver.endpoint([200]);
    const { key, webhook } = await businessWithEndpoint(endpoint, { events: ['customer.created'] });
    const tag = unique('poison');
    // The store itself breaks this one customer's event as it is recorded, as a corrupt row would.
    const trigger = `corrupt_${tag.replace(/[^A-Za-z0-9]/g, '_')}`;
    d1(`CREATE TRIGGER ${trigger} AFTER INSERT ON webhook_events WHEN NEW.snapshot LIKE '%${tag}%' ` +
      `BEGIN UPDATE webhook_events SET snapshot = '{"customer": 42}' WHERE id = NEW.id; END`);
    try {
      const result = await sync(key, [
        { external_id: `CRM-${tag}-1`, name: tag, email: `${tag}-1@example.com` },
        // Nothing of this one's record names the tag, so the store leaves its event alone.
        { external_id: `CRM-${unique('h')}`, name: 'Healthy', email: `${unique('h')}@example.com` },
      ]);
      assert.equal(result.results.created, 2, JSON.stringify(result));
      const [poisoned, healthy] = result.results.details.map((d) => d.customer_id);
      await endpoint.waitForCount(1, 20_000);
      assert.equal(endpoint.requests[0].body?.data?.customer?.id, healthy, 'the healthy event is delivered');
      const dead = await waitFor(async () => {
        const list = await deliveriesOf(key, webhook.id, 'status=dead');
        return list.length === 1 && list;
      }, 20_000, 'one dead delivery');
      assert.match(dead[0].last_error ?? '', /could not be built/, JSON.stringify(dead[0]));
      const [[subject, dispatched]] = d1('SELECT subject_id, dispatched_us IS NOT NULL FROM webhook_events WHERE id = ?', [dead[0].event_id]);
      assert.equal(subject, poisoned);
      assert.equal(dispatched, 1, 'settled, so that the sweep does not bring it back');
      const replay = await api(key, 'POST', `/api-webhooks/${webhook.id}/replay`, { delivery_id: dead[0].id });
      assert.equal(replay.body?.replayed ?? 0, 0, `a replay skips it: ${replay.text}`);
      await sleep(1_000);
      assert.equal(endpoint.requests.length, 1, 'nothing else was sent');
    } finally {
      d1(`DROP TRIGGER IF EXISTS ${trigger}`);
    }
  });
});

describe('a fan-out larger than one invocation', () => {
  test('50 events to 16 endpoints are 800 deliveries, each made once, with no invocation past its D1 queries', { timeout: 180_000 }, async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const endpoints = [];
    for (let i = 0; i < 16; i += 1) {
      const endpoint = receiver.endpoint();
      const { secret } = await createWebhook(business.key, { url: endpoint.url, events: ['customer.created'] });
      endpoint.secrets = [secret];
      endpoints.push(endpoint);
    }
    const limitsBefore = (stackLog().match(/\[limit\] /g) ?? []).length;
    const tag = unique('fan');
    const customers = Array.from({ length: 50 }, (_, i) => ({ external_id: `${tag}-${i}`, name: `Fan ${i}`, email: `${tag}-${i}@example.com` }));
    const result = await sync(business.key, customers);
    assert.equal(result.results.created, 50, JSON.stringify(result.results).slice(0, 300));
    for (const endpoint of endpoints) await endpoint.waitForCount(50, 120_000);
    await sleep(1_500);
    for (const endpoint of endpoints) {
      const ids = endpoint.requests.map((r) => r.id);
      assert.equal(ids.length, 50, 'every event once at each endpoint');
      assert.equal(new Set(ids).size, 50, 'no event twice');
    }
    assert.equal((stackLog().match(/\[limit\] /g) ?? []).length, limitsBefore, 'no invocation crossed a production limit');
  });
});
