// Benchmark: outbound webhook delivery through the running stack, measured at a local receiver.
//   throughput  BENCH_WEBHOOK_EVENTS customers (default 1000) created by /api-customers-sync calls
//               of BENCH_WEBHOOK_BATCH (default 100), 4 at a time: customer.created events/s from
//               the first sync sent to the last event received, and each event's emit→receipt time.
//   latency     BENCH_WEBHOOK_SINGLES single-customer syncs (default 100) at a steady
//               BENCH_WEBHOOK_RATE per second (default 10): emit→receipt p50/p99.
// Emit time is when the sync request was sent; receipt is when the receiver got the delivery.
// The receiver answers 200 and checks every Standard Webhooks signature.
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ADMIN, call } from './lib.mjs';

const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 1000);
const BATCH = Number(process.env.BENCH_WEBHOOK_BATCH ?? 100);
const SINGLES = Number(process.env.BENCH_WEBHOOK_SINGLES ?? 100);
const RATE = Number(process.env.BENCH_WEBHOOK_RATE ?? 10);
const SENDERS = 4;
const DRAIN_MS = Number(process.env.BENCH_WEBHOOK_DRAIN_MS ?? 300_000);


// ---------------------------------------------------------------- the receiver

/** external_id -> receipt time (ms, performance clock); plus counters. */
const received = new Map();
const seen = { requests: 0, duplicates: 0, unverified: 0 };
const secrets = new Map(); // path -> Standard Webhooks key
const waiters = new Set();

function verified(path, headers, raw) {
  const key = secrets.get(path);
  if (!key) return false;
  const expected = createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`), raw]))
    .digest();
  return (headers['webhook-signature'] ?? '')
    .split(' ')
    .filter((part) => part.startsWith('v1,'))
    .map((part) => Buffer.from(part.slice(3), 'base64'))
    .some((entry) => entry.length === expected.length && timingSafeEqual(entry, expected));
}

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const at = performance.now();
  const raw = Buffer.concat(chunks);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"ok":true}');
  seen.requests += 1;
  if (!verified(req.url, req.headers, raw)) seen.unverified += 1;
  const externalId = JSON.parse(raw.toString('utf8')).data?.customer?.external_id;
  if (received.has(externalId)) seen.duplicates += 1;
  else received.set(externalId, at);
  for (const waiter of waiters) waiter();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${server.address().port}`;

function allReceived(ids, timeoutMs = DRAIN_MS) {
  const done = () => ids.every((id) => received.has(id));
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (done()) {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      }
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      const missing = ids.filter((id) => !received.has(id)).length;
      reject(new Error(`${missing} of ${ids.length} events not received within ${timeoutMs} ms`));
    }, timeoutMs);
    waiters.add(check);
  });
}

// ---------------------------------------------------------------- the stack side

const admin = { authorization: `Bearer ${ADMIN}` };
async function businessWithEndpoint(name) {
  const business = await call('POST', '/admin/businesses', { name }, admin);
  // The benchmark measures the stack, not the limit: its business gets the highest one.
  await call('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } }, admin);
  const { key } = await call('POST', `/admin/businesses/${business.id}/api-keys`, {}, admin);
  const path = `/${name}`;
  const { secret } = await call(
    'POST',
    '/api-webhooks',
    { name, url: `${receiverUrl}${path}`, events: ['customer.created'] },
    { 'x-api-key': key },
  );
  secrets.set(path, Buffer.from(secret.slice('whsec_'.length), 'base64'));
  return { key };
}

const run = Date.now().toString(36);
const customer = (tag, i) => ({ external_id: `bench-${run}-${tag}-${i}`, name: `Bench ${i}`, email: `bench-${run}-${tag}-${i}@example.com` });
const emitted = new Map(); // external_id -> emit time

async function emit(key, customers) {
  const at = performance.now();
  for (const c of customers) emitted.set(c.external_id, at);
  await call('POST', '/api-customers-sync', { customers }, { 'x-api-key': key });
}

function percentiles(ids) {
  const latencies = ids.map((id) => received.get(id) - emitted.get(id)).sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { p50: at(0.5), p99: at(0.99), max: latencies.at(-1) };
}

// Warm-up: compile every isolate on the path (sync, dispatcher) and prove the pipe works.
const warm = await businessWithEndpoint(`bench-webhooks-warm-${run}`);
const warmIds = Array.from({ length: 3 }, (_, i) => customer('warm', i));
await emit(warm.key, warmIds);
await allReceived(warmIds.map((c) => c.external_id), 60_000);

// Throughput: EVENTS customers in syncs of BATCH, SENDERS at a time.
const bulk = await businessWithEndpoint(`bench-webhooks-bulk-${run}`);
const bulkCustomers = Array.from({ length: EVENTS }, (_, i) => customer('bulk', i));
const batches = [];
for (let i = 0; i < bulkCustomers.length; i += BATCH) batches.push(bulkCustomers.slice(i, i + BATCH));
const bulkStart = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: SENDERS }, async () => {
    while (next < batches.length) await emit(bulk.key, batches[next++]);
  }),
);
const emittedIn = performance.now() - bulkStart;
const bulkIds = bulkCustomers.map((c) => c.external_id);
await allReceived(bulkIds);
const bulkLast = Math.max(...bulkIds.map((id) => received.get(id)));
const throughput = { events: EVENTS, seconds: (bulkLast - bulkStart) / 1000, emitSeconds: emittedIn / 1000, ...percentiles(bulkIds) };
throughput.perSecond = EVENTS / throughput.seconds;

// Latency: single-customer syncs at a steady rate.
const steady = await businessWithEndpoint(`bench-webhooks-steady-${run}`);
const singles = Array.from({ length: SINGLES }, (_, i) => customer('single', i));
const steadyStart = performance.now();
await Promise.all(
  singles.map(async (c, i) => {
    const due = steadyStart + (i * 1000) / RATE;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    await emit(steady.key, [c]);
  }),
);
const singleIds = singles.map((c) => c.external_id);
await allReceived(singleIds);
const latency = { events: SINGLES, rate: RATE, ...percentiles(singleIds) };

server.closeAllConnections();
server.close();

const ms = (value) => `${value.toFixed(0).padStart(6)} ms`;
console.log(`\nwebhooks (stack through wrangler dev; receiver on 127.0.0.1, answering 200)`);
console.log(
  `${`delivery: ${EVENTS} customer.created from syncs of ${BATCH}, ${SENDERS} senders`.padEnd(60)} ${throughput.perSecond.toFixed(1).padStart(8)} events/s   emit→receipt p50 ${ms(throughput.p50)}   p99 ${ms(throughput.p99)}`,
);
console.log(
  `${`latency: ${SINGLES} single-customer syncs at ${RATE}/s`.padEnd(60)} ${''.padStart(8)}            emit→receipt p50 ${ms(latency.p50)}   p99 ${ms(latency.p99)}`,
);
console.log(
  `receiver: ${seen.requests} requests, ${seen.duplicates} duplicate deliveries, ${seen.unverified} failed signature checks; syncs sent in ${throughput.emitSeconds.toFixed(1)} s`,
);
console.log(
  JSON.stringify({
    webhooks: {
      throughput: { events: EVENTS, batch: BATCH, senders: SENDERS, seconds: +throughput.seconds.toFixed(2), events_per_second: +throughput.perSecond.toFixed(1), p50_ms: Math.round(throughput.p50), p99_ms: Math.round(throughput.p99), max_ms: Math.round(throughput.max) },
      latency: { events: SINGLES, rate_per_second: RATE, p50_ms: Math.round(latency.p50), p99_ms: Math.round(latency.p99), max_ms: Math.round(latency.max) },
      receiver: seen,
    },
  }),
);
if (seen.unverified > 0) process.exitCode = 1;
