// Benchmark: the Kustomer connector through the running stack, measured at the local Kustomer.
//   throughput  BENCH_KUSTOMER_CUSTOMERS customers (default 300) created by /api-customers-sync calls
//               of 100, 3 at a time, with the connector's budget and Kustomer's limit off:
//               customer.created events synced per second, first sync sent to last customer created.
//   latency     BENCH_KUSTOMER_MESSAGES inbound WhatsApp messages (default 60), one every 250 ms,
//               from 6 customers already in Kustomer: inbound POST sent → message on the timeline,
//               p50/p99.
//   budget      the seed's 100 requests a minute on both sides (our budget and the local
//               Kustomer's fixed one-minute windows): BENCH_KUSTOMER_BUDGET_MS (default 150 s) of
//               a backlog far larger than the budget; the share of the budget used over the whole
//               minutes measured, and Kustomer's 429s (there must be none).
import { createHmac, randomBytes } from 'node:crypto';
import { whatsappNotification } from '../tests/e2e/providers/meta.mjs';
import { admin, call, kustomerBusiness, percentile, sleep } from './lib.mjs';

const CUSTOMERS = Number(process.env.BENCH_KUSTOMER_CUSTOMERS ?? 300);
const MESSAGES = Number(process.env.BENCH_KUSTOMER_MESSAGES ?? 60);
const BUDGET_MS = Number(process.env.BENCH_KUSTOMER_BUDGET_MS ?? 150_000);


async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function customers(n, tag) {
  return Array.from({ length: n }, (_, i) => ({ name: `Bench ${i}`, email: `${tag}-${i}@bench.example`, external_id: `${tag}-${i}` }));
}

async function throughput() {
  const { kustomer, key } = await kustomerBusiness({ per_minute: null, per_second: null, per_day: null }, null);
  const tag = randomBytes(4).toString('hex');
  const all = customers(CUSTOMERS, tag);
  const batches = [];
  for (let i = 0; i < all.length; i += 100) batches.push(all.slice(i, i + 100));
  const started = performance.now();
  for (let i = 0; i < batches.length; i += 3) {
    await Promise.all(batches.slice(i, i + 3).map((batch) => call('POST', '/api-customers-sync', { customers: batch }, { 'x-api-key': key })));
  }
  await waitUntil(() => kustomer.customers.length >= CUSTOMERS, 600_000, 'every customer in Kustomer');
  const seconds = (performance.now() - started) / 1000;
  const twice = kustomer.customers.length - CUSTOMERS;
  await kustomer.close();
  return { events: CUSTOMERS, seconds, rate: CUSTOMERS / seconds, twice };
}

async function latency() {
  const { kustomer, business } = await kustomerBusiness({ per_minute: null, per_second: null, per_day: null }, null);
  const secrets = { app_secret: randomBytes(8).toString('hex'), verify_token: 'v', access_token: 'a' };
  const address = `1${String(randomBytes(6).readUIntBE(0, 6)).padStart(15, '0').slice(-15)}`;
  const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'whatsapp', provider: 'meta', address, settings: {}, secrets,
  });
  const phones = Array.from({ length: 6 }, () => `35387${String(randomBytes(4).readUInt32BE() % 10_000_000).padStart(7, '0')}`);
  const sentAt = new Map();
  const inbound = async (phone, text) => {
    const wamid = `wamid.${randomBytes(8).toString('hex')}`;
    const body = JSON.stringify(
      whatsappNotification(address, {
        contacts: [{ profile: { name: 'Bench' }, wa_id: phone }],
        messages: [{ from: phone, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
      }),
    );
    const signature = `sha256=${createHmac('sha256', secrets.app_secret).update(body).digest('hex')}`;
    sentAt.set(text, performance.now());
    await call('POST', account.webhook_path, body, { 'x-hub-signature-256': signature });
  };
  for (const phone of phones) await inbound(phone, `warm-${phone}`);
  await waitUntil(() => kustomer.conversations.length === phones.length && kustomer.conversations.every((c) => kustomer.messages(c.id).length === 1), 60_000, 'the warm-up');
  const arrived = new Map();
  const timeline = () => kustomer.conversations.flatMap((c) => kustomer.messages(c.id));
  const watcher = setInterval(() => {
    for (const message of timeline()) {
      const text = message.attributes.preview;
      if (!arrived.has(text)) arrived.set(text, performance.now());
    }
  }, 5);
  for (let i = 0; i < MESSAGES; i += 1) {
    await inbound(phones[i % phones.length], `bench-${i}`);
    await sleep(250);
  }
  await waitUntil(() => [...Array(MESSAGES).keys()].every((i) => arrived.has(`bench-${i}`)), 120_000, 'every message on the timeline');
  clearInterval(watcher);
  const latencies = [...Array(MESSAGES).keys()].map((i) => arrived.get(`bench-${i}`) - sentAt.get(`bench-${i}`)).sort((a, b) => a - b);
  await kustomer.close();
  return { messages: MESSAGES, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function budget() {
  const { kustomer, key } = await kustomerBusiness({ per_minute: 100, per_second: 10, per_day: null }, { perMinute: 100 });
  const tag = randomBytes(4).toString('hex');
  const backlog = Math.ceil((BUDGET_MS / 60_000) * 100 * 2);
  for (let i = 0; i < backlog; i += 100) {
    await call('POST', '/api-customers-sync', { customers: customers(Math.min(100, backlog - i), `${tag}-${i}`) }, { 'x-api-key': key });
  }
  await sleep(BUDGET_MS);
  const calls = kustomer.requests.filter((r) => r.path.startsWith('/v1/')).map((r) => r.at).sort((a, b) => a - b);
  const first = calls[0];
  const minutes = Math.floor((calls[calls.length - 1] - first) / 60_000);
  const inWholeMinutes = calls.filter((at) => at < first + minutes * 60_000).length;
  const throttled = kustomer.rateLimited;
  await kustomer.close();
  return { minutes, calls: inWholeMinutes, used: inWholeMinutes / (minutes * 100), throttled };
}

const t = await throughput();
console.log(`kustomer sync throughput (budget and limit off): ${t.events} customer.created in ${t.seconds.toFixed(1)} s = ${t.rate.toFixed(1)} events/s; customers created twice: ${t.twice}`);
const l = await latency();
console.log(`kustomer inbound message -> timeline: ${l.messages} messages, p50 ${l.p50.toFixed(0)} ms, p99 ${l.p99.toFixed(0)} ms`);
const b = await budget();
console.log(`kustomer budget at 100/min (ours and Kustomer's): ${b.calls} calls in ${b.minutes} whole minutes = ${(b.used * 100).toFixed(1)}% of the budget; Kustomer 429s: ${b.throttled}`);
if (b.throttled > 0 || b.used < 0.95 || t.twice !== 0) process.exitCode = 1;
