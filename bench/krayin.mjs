// Benchmark: the Krayin connector fed by Chatwoot's webhooks through the running stack, measured at
// the local Krayin (tests/e2e/crm/krayin.mjs, the server the end-to-end tests use).
//   throughput  BENCH_KRAYIN_CONTACTS new Chatwoot contacts (default 100), each contact_created,
//               conversation_created (web widget) and message_created: 3 events a contact,
//               delivered BENCH_KRAYIN_CONCURRENCY contacts at a time (default 10), with the
//               connector's budget and Krayin's limit off: events per second, first delivery sent
//               to the last Krayin write; persons and leads made twice.
//   latency     BENCH_KRAYIN_MESSAGES message_created deliveries (default 60), one every 250 ms,
//               for 6 contacts whose conversations are already in Krayin: webhook POST sent → the
//               activity's POST reaching Krayin (the local Krayin's request time), p50/p99.
//   budget      Krayin's default 60 requests a minute per user (fixed one-minute windows from the
//               user's first request) against the connector's default budget (60 a minute):
//               BENCH_KRAYIN_BUDGET_CONTACTS new contacts at once (default 40, each a person and a
//               lead: well over 60 calls); the most calls in any 60 s, the share of the budget used
//               over the whole minutes measured, and Krayin's 429s (there must be none).
import { randomBytes, randomInt } from 'node:crypto';
import { sanctumToken, startKrayin } from '../tests/e2e/crm/krayin.mjs';
import { admin, call, percentile, sleep } from './lib.mjs';
import { chatwootWebhook, contact, contactCreated, conversation, conversationCreated, message, messageCreated } from '../tests/e2e/crm/chatwoot.mjs';

const CONTACTS = Number(process.env.BENCH_KRAYIN_CONTACTS ?? 100);
const CONCURRENCY = Number(process.env.BENCH_KRAYIN_CONCURRENCY ?? 10);
const MESSAGES = Number(process.env.BENCH_KRAYIN_MESSAGES ?? 60);
const BUDGET_CONTACTS = Number(process.env.BENCH_KRAYIN_BUDGET_CONTACTS ?? 40);


async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A business connected to a new local Krayin with `rateLimit` (undefined: Krayin's default). */
async function setUp(rateLimit, krayinLimit) {
  const apiToken = sanctumToken(1);
  const krayin = await startKrayin({ tokens: { [apiToken]: { user: { id: 1, name: 'bench', email: 'bench@krayin.test' } } }, rateLimit: krayinLimit });
  const business = await admin('POST', '/admin/businesses', { name: `bench-krayin-${Date.now()}`, default_country: 'IE' });
  // The benchmark measures the stack, not the limit: its business gets the highest one.
  await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  const webhookSecret = randomBytes(16).toString('hex');
  const connector = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'krayin',
    settings: { base_url: krayin.origin },
    secrets: { api_token: apiToken, webhook_secret: webhookSecret },
    ...(rateLimit === undefined ? {} : { rate_limit: rateLimit }),
  });
  /** Delivers one Chatwoot event as Chatwoot signs it; fails unless the stack recorded it. */
  const deliver = async (payload) => {
    const signed = chatwootWebhook(webhookSecret, payload);
    const headers = Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), value]));
    const answer = await call('POST', connector.webhook_path, signed.body, headers);
    if (!/^queued/.test(String(answer?.outcome))) throw new Error(`${payload.event}: ${JSON.stringify(answer)}`);
  };
  return { krayin, business, connector, deliver };
}

let nextId = randomInt(1_000_000, 1_000_000_000);
function newContact(tag, i) {
  nextId += 1;
  return contact({ id: nextId, name: `Bench ${tag} ${i}`, email: `${tag}-${i}@bench.example`, phone_number: `+35387${String(nextId % 10_000_000).padStart(7, '0')}` });
}

const writes = (krayin) => krayin.requests.filter((r) => (r.method === 'POST' || r.method === 'PUT') && r.path.startsWith('/api/v1/'));
const apiCalls = (krayin) => krayin.requests.filter((r) => r.path.startsWith('/api/v1/'));

async function throughput() {
  const { krayin, deliver } = await setUp({ per_minute: null, per_second: null, per_day: null }, null);
  const tag = randomBytes(4).toString('hex');
  const contacts = Array.from({ length: CONTACTS }, (_, i) => newContact(tag, i));
  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < contacts.length) {
      const person = contacts[next];
      next += 1;
      const conv = conversation({ id: person.id % 1_000_000_000, inbox: 'web', contact: person });
      await deliver(contactCreated(person));
      await deliver(conversationCreated(conv));
      await deliver(messageCreated(message({ id: person.id, conversation: conv, content: `Hello from ${person.name}` })));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const delivered = Date.now();
  await waitUntil(
    () => krayin.persons.length >= CONTACTS && krayin.leads.length >= CONTACTS && krayin.activities.length >= 2 * CONTACTS,
    900_000,
    'every person, lead and activity in Krayin',
  );
  const last = Math.max(...writes(krayin).map((r) => r.at));
  const seconds = (last - started) / 1000;
  const events = 3 * CONTACTS;
  const result = {
    events,
    seconds,
    rate: events / seconds,
    deliverySeconds: (delivered - started) / 1000,
    calls: apiCalls(krayin).length,
    twice: krayin.persons.length - CONTACTS + (krayin.leads.length - CONTACTS),
  };
  await krayin.close();
  return result;
}

async function latency() {
  const { krayin, deliver } = await setUp({ per_minute: null, per_second: null, per_day: null }, null);
  const tag = randomBytes(4).toString('hex');
  const people = Array.from({ length: 6 }, (_, i) => newContact(tag, i));
  const conversations = people.map((person, i) => conversation({ id: 700 + i, inbox: 'web', contact: person }));
  for (const [i, person] of people.entries()) {
    await deliver(contactCreated(person));
    await deliver(conversationCreated(conversations[i]));
  }
  await waitUntil(() => krayin.activities.length >= people.length, 120_000, 'the warm-up');
  const sentAt = [];
  for (let i = 0; i < MESSAGES; i += 1) {
    const payload = messageCreated(message({ id: nextId + 1 + i, conversation: conversations[i % conversations.length], content: `[bench ${i}] a message` }));
    sentAt[i] = Date.now();
    await deliver(payload);
    await sleep(250);
  }
  const arrivalOf = (i) =>
    krayin.requests.find((r) => r.method === 'POST' && r.path === '/api/v1/activities' && r.status === 200 && String(r.body?.comment ?? '').includes(`[bench ${i}]`))?.at;
  await waitUntil(() => [...Array(MESSAGES).keys()].every((i) => arrivalOf(i) !== undefined), 120_000, 'every message in Krayin');
  const latencies = [...Array(MESSAGES).keys()].map((i) => arrivalOf(i) - sentAt[i]).sort((a, b) => a - b);
  await krayin.close();
  return { messages: MESSAGES, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function budget() {
  const { krayin, deliver, connector } = await setUp(undefined, undefined);
  const tag = randomBytes(4).toString('hex');
  const contacts = Array.from({ length: BUDGET_CONTACTS }, (_, i) => newContact(tag, i));
  const started = Date.now();
  await Promise.all(contacts.map((person) => deliver(contactCreated(person))));
  await waitUntil(() => krayin.persons.length >= BUDGET_CONTACTS && krayin.leads.length >= BUDGET_CONTACTS, 1_200_000, 'every person and lead in Krayin');
  const drained = (Date.now() - started) / 1000;
  const calls = apiCalls(krayin).map((r) => r.at).sort((a, b) => a - b);
  let busiest = 0;
  for (let i = 0, j = 0; i < calls.length; i += 1) {
    while (calls[i] - calls[j] >= 60_000) j += 1;
    busiest = Math.max(busiest, i - j + 1);
  }
  const first = calls[0];
  const minutes = Math.floor((calls[calls.length - 1] - first) / 60_000);
  const inWholeMinutes = calls.filter((at) => at < first + minutes * 60_000).length;
  const result = {
    contacts: BUDGET_CONTACTS,
    limit: connector.rate_limit?.per_minute,
    calls: calls.length,
    drained,
    busiest,
    minutes,
    used: minutes > 0 ? inWholeMinutes / (minutes * 60) : null,
    inWholeMinutes,
    throttled: krayin.rateLimited,
    twice: krayin.persons.length - BUDGET_CONTACTS + (krayin.leads.length - BUDGET_CONTACTS),
  };
  await krayin.close();
  return result;
}

const t = await throughput();
console.log(
  `krayin chatwoot throughput (budget and limit off): ${t.events} events (${CONTACTS} contacts x contact, conversation, message; ${CONCURRENCY} at a time) in ${t.seconds.toFixed(1)} s = ${t.rate.toFixed(1)} events/s to Krayin (${t.calls} Krayin calls; deliveries took ${t.deliverySeconds.toFixed(1)} s); persons or leads made twice: ${t.twice}`,
);
const l = await latency();
console.log(`krayin chatwoot message -> Krayin activity: ${l.messages} messages, p50 ${l.p50.toFixed(0)} ms, p99 ${l.p99.toFixed(0)} ms`);
const b = await budget();
console.log(
  `krayin budget at ${b.limit}/min (ours) against Krayin's 60/min: ${b.contacts} contacts, ${b.calls} calls drained in ${b.drained.toFixed(0)} s; at most ${b.busiest} calls in any 60 s; ` +
    `${b.inWholeMinutes} calls in ${b.minutes} whole minutes = ${b.used === null ? 'n/a' : `${(b.used * 100).toFixed(1)}%`} of the budget; Krayin 429s: ${b.throttled}; made twice: ${b.twice}`,
);
if (b.throttled > 0 || t.twice !== 0 || b.twice !== 0) process.exitCode = 1;
