// Benchmark: outbound webhook delivery through the running stack, in the shapes svix-server was
// measured in on this kind of machine (issue 52), each to one endpoint on 127.0.0.1 that checks
// every Standard Webhooks signature and counts duplicates:
//   burst     BENCH_WEBHOOK_BURST single-customer syncs (default 2000), 16 at a time
//   two       2 syncs of BENCH_WEBHOOK_BATCH customers (default 1000), at once
//   steady    single-customer syncs at 10/s, 50/s and 100/s, BENCH_WEBHOOK_STEADY_SECONDS each
//             (default 20)
// Each `customer.created` is timed from when its sync was sent (emit) to when the endpoint got it
// (receipt). Per shape: delivered per second (events over first emit to last receipt), emit →
// receipt p50/p95, how many were still on their way when the last sync was answered (the backlog,
// for the steady rates: zero when delivery keeps up), the stack's CPU per event (every workerd
// and wrangler process, the syncs included, as svix's figure includes its API calls), and what the
// webhook consumer did per event by its [usage] lines: D1 round trips, statements and rows
// written (D1's count, index entries included). svix's figures (PostgreSQL and Redis beside it)
// are the anchor in BENCHMARKS.md; svix-server is on no registry, so it is not run here.
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { ADMIN, call, stackLog, usageSums } from './lib.mjs';

const BURST = Number(process.env.BENCH_WEBHOOK_BURST ?? 2000);
const BATCH = Number(process.env.BENCH_WEBHOOK_BATCH ?? 1000);
const STEADY_SECONDS = Number(process.env.BENCH_WEBHOOK_STEADY_SECONDS ?? 20);
const RATES = [10, 50, 100];
const CONCURRENCY = 16;
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
server.keepAliveTimeout = 60_000;
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

/** CPU seconds used so far by the stack's processes (workerd, and wrangler's Node). */
function stackCpuSeconds() {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!command.includes('workerd') && !command.includes('wrangler-dist')) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** What the webhook consumer's invocations in `log` did, summed. */
const consumerWork = (log) => usageSums(log, 'webhook-dispatcher queue ', ['d1_round_trips', 'd1_queries', 'rows_written']);

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/** Runs `send` (which emits `ids`), waits for every receipt, and measures the shape. */
async function shape(name, ids, send) {
  const logFrom = stackLog().length;
  const cpuBefore = stackCpuSeconds();
  const started = performance.now();
  await send();
  const lastAnswered = performance.now();
  const behind = ids.filter((id) => !received.has(id)).length;
  await allReceived(ids);
  // The consumer's usage line is written when its invocation ends, just after its last POST.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const cpu = stackCpuSeconds() - cpuBefore;
  const latencies = ids.map((id) => received.get(id) - emitted.get(id)).sort((a, b) => a - b);
  const lastReceipt = Math.max(...ids.map((id) => received.get(id)));
  const work = consumerWork(stackLog(logFrom));
  return {
    name,
    events: ids.length,
    per_second: ids.length / ((lastReceipt - started) / 1000),
    p50_ms: percentile(latencies, 0.5),
    p95_ms: percentile(latencies, 0.95),
    behind_at_last_answer: behind,
    drained_ms_after_last_answer: Math.max(0, lastReceipt - lastAnswered),
    cpu_ms_per_event: (cpu * 1000) / ids.length,
    consumer: {
      invocations: work.invocations,
      round_trips_per_event: work.d1_round_trips / ids.length,
      queries_per_event: work.d1_queries / ids.length,
      rows_written_per_event: work.rows_written / ids.length,
    },
  };
}

/** `count` single-customer syncs, `CONCURRENCY` at a time. */
async function burst(key, customers) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < customers.length) await emit(key, [customers[next++]]);
    }),
  );
}

/** Single-customer syncs at `rate` per second, each sent on time whatever the others do. */
async function steady(key, customers, rate) {
  const start = performance.now();
  await Promise.all(
    customers.map(async (c, i) => {
      const due = start + (i * 1000) / rate;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
      await emit(key, [c]);
    }),
  );
}

// Warm-up: compile every isolate on the path (sync, dispatcher) and prove the pipe works.
const warm = await businessWithEndpoint(`bench-webhooks-warm-${run}`);
const warmIds = Array.from({ length: 20 }, (_, i) => customer('warm', i));
await burst(warm.key, warmIds);
await allReceived(warmIds.map((c) => c.external_id), 60_000);

const results = [];
{
  const { key } = await businessWithEndpoint(`bench-webhooks-burst-${run}`);
  const customers = Array.from({ length: BURST }, (_, i) => customer('burst', i));
  results.push(await shape(`${BURST} single-customer syncs, ${CONCURRENCY} at a time`, customers.map((c) => c.external_id), () => burst(key, customers)));
}
{
  const { key } = await businessWithEndpoint(`bench-webhooks-two-${run}`);
  const batches = [0, 1].map((b) => Array.from({ length: BATCH }, (_, i) => customer(`two${b}`, i)));
  const ids = batches.flat().map((c) => c.external_id);
  results.push(await shape(`2 syncs of ${BATCH}, at once`, ids, () => Promise.all(batches.map((batch) => emit(key, batch)))));
}
for (const rate of RATES) {
  const { key } = await businessWithEndpoint(`bench-webhooks-steady${rate}-${run}`);
  const customers = Array.from({ length: rate * STEADY_SECONDS }, (_, i) => customer(`steady${rate}`, i));
  results.push(await shape(`steady ${rate}/s for ${STEADY_SECONDS} s`, customers.map((c) => c.external_id), () => steady(key, customers, rate)));
}

server.closeAllConnections();
server.close();

console.log('\nwebhooks: customer.created to one endpoint on 127.0.0.1 (stack through wrangler dev)');
console.log(`${'shape'.padEnd(44)} ${'events/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'behind'.padStart(7)} ${'cpu ms/ev'.padStart(10)} ${'trips/ev'.padStart(9)} ${'rows/ev'.padStart(8)}`);
for (const r of results) {
  console.log(
    `${r.name.padEnd(44)} ${r.per_second.toFixed(1).padStart(9)} ${r.p50_ms.toFixed(0).padStart(8)} ${r.p95_ms.toFixed(0).padStart(8)} ${String(r.behind_at_last_answer).padStart(7)} ${r.cpu_ms_per_event.toFixed(1).padStart(10)} ${r.consumer.round_trips_per_event.toFixed(2).padStart(9)} ${r.consumer.rows_written_per_event.toFixed(1).padStart(8)}`,
  );
}
console.log(`receiver: ${seen.requests} requests, ${seen.duplicates} duplicate deliveries, ${seen.unverified} failed signature checks`);
console.log(JSON.stringify({ webhooks: { shapes: results, receiver: seen } }));
if (seen.unverified > 0 || seen.duplicates > 0) process.exitCode = 1;
