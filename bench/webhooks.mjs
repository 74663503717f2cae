// Benchmark: outbound webhook delivery through the running stack, in the shapes svix-server was
// measured in on this kind of machine (issue 52), each to one endpoint on 127.0.0.1 that checks
// every Standard Webhooks signature and counts duplicates:
//   burst     BENCH_WEBHOOK_BURST single-customer syncs (default 2000), 16 at a time
//   two       2 syncs of BENCH_WEBHOOK_BATCH customers (default 1000), at once
//   steady    single-customer syncs at 10/s, 50/s and 100/s, BENCH_WEBHOOK_STEADY_SECONDS each
//             (default 20)
// Each `customer.created` is timed from when its sync was sent (emit) to when the endpoint got it
// (receipt). Per shape: how fast the syncs were answered (emitted/s), delivered per second (events
// over first emit to last receipt), emit → receipt p50/p95, how many were still on their way when
// the last sync was answered (the backlog, for the steady rates: zero when delivery keeps up), the
// stack's CPU per event (every workerd and wrangler process, the syncs included, as svix's figure
// includes its API calls) and of those the one workerd thread that runs every Worker, and what the
// webhook consumer did per event by its [usage] lines: D1 round trips, statements and rows
// written (D1's count, index entries included). svix's figures (PostgreSQL and Redis beside it)
// are the anchor in BENCHMARKS.md; svix-server is on no registry, so it is not run here. The
// receiver, the shapes and the table are shared with the floor (bench/webhooks-shapes.mjs,
// bench/webhooks-floor.mjs). Last, the burst again to a business with no endpoint: what the syncs
// alone cost that thread, and so the most any delivery behind them could reach here.
import { ADMIN, call, stackLog, usageSums } from './lib.mjs';
import { BURST, cpuSeconds, inBurst, mainThreadSeconds, printTable, resendingDropped, runShapes, startReceiver } from './webhooks-shapes.mjs';

const receiver = await startReceiver();
/** Syncs wrangler dev's proxy dropped, sent again. */
const dropped = { resent: 0 };

// ---------------------------------------------------------------- the stack side

const admin = { authorization: `Bearer ${ADMIN}` };
/** A business and its key; `sync` syncs a list of customers under it. */
async function business(name) {
  const { id } = await call('POST', '/admin/businesses', { name }, admin);
  // The benchmark measures the stack, not the limit: its business gets the highest one.
  await call('PATCH', `/admin/businesses/${id}`, { rate_limit: { per_minute: 100000, burst: 10000 } }, admin);
  const { key } = await call('POST', `/admin/businesses/${id}/api-keys`, {}, admin);
  const sync = resendingDropped((customers) => call('POST', '/api-customers-sync', { customers }, { 'x-api-key': key }), dropped);
  return { key, sync };
}

/** A business with an endpoint on the receiver; resolves to a sync of customers under its key. */
async function businessWithEndpoint(name) {
  const { key, sync } = await business(name);
  const path = `/${name}`;
  const { secret } = await call(
    'POST',
    '/api-webhooks',
    { name, url: `${receiver.url}${path}`, events: ['customer.created'] },
    { 'x-api-key': key },
  );
  receiver.trust(path, secret);
  return sync;
}

/** CPU seconds used so far by the stack's processes (workerd, and wrangler's Node). */
const stackCpuSeconds = () => cpuSeconds((pid, command) => command.includes('workerd') || command.includes('wrangler-dist'));

/** What the webhook consumer's invocations in `log` did, summed. */
const consumerWork = (log) => usageSums(log, 'webhook-dispatcher queue ', ['d1_round_trips', 'd1_queries', 'rows_written']);

/** From a shape's start to its end: what the consumer did per event, by its usage lines. */
function consumerFigures() {
  const logFrom = stackLog().length;
  const resentBefore = dropped.resent;
  return (events) => {
    const work = consumerWork(stackLog(logFrom));
    return {
      resent_syncs: dropped.resent - resentBefore,
      consumer: {
        invocations: work.invocations,
        round_trips_per_event: work.d1_round_trips / events,
        queries_per_event: work.d1_queries / events,
        rows_written_per_event: work.rows_written / events,
      },
    };
  };
}

const run = Date.now().toString(36);
const stackMainThread = () => mainThreadSeconds(() => true);
const results = await runShapes({
  receiver,
  run,
  target: businessWithEndpoint,
  cpuSeconds: stackCpuSeconds,
  mainThread: stackMainThread,
  extra: consumerFigures,
});

// The syncs alone: the burst's shape to a business with no endpoint (no event written, nothing
// queued). The local runtime runs every Worker, the queue broker and D1 on one workerd thread: the
// syncs' share of it bounds how fast any delivery behind them can go on this stack.
const alone = await (async () => {
  const { sync } = await business(`bench-webhooks-alone-${run}`);
  const customer = (i) => ({ external_id: `alone-${run}-${i}`, name: `Alone ${i}`, email: `alone-${run}-${i}@example.com` });
  for (let i = 0; i < 20; i++) await sync([customer(`warm-${i}`)]);
  const mainBefore = stackMainThread();
  const started = performance.now();
  await inBurst(Array.from({ length: BURST }, (_, i) => customer(i)), (c) => sync([c]));
  const seconds = (performance.now() - started) / 1000;
  return { syncs: BURST, per_second: BURST / seconds, main_thread_ms_per_sync: ((stackMainThread() - mainBefore) * 1000) / BURST };
})();
receiver.close();

printTable('webhooks: customer.created to one endpoint on 127.0.0.1 (stack through wrangler dev)', results, [
  ['trips/ev', 9, (r) => r.consumer.round_trips_per_event.toFixed(2)],
  ['rows/ev', 8, (r) => r.consumer.rows_written_per_event.toFixed(1)],
  ['resent', 7, (r) => String(r.resent_syncs)],
]);
const { seen } = receiver;
console.log(
  `the same burst with no endpoint (the syncs alone): ${alone.per_second.toFixed(1)} syncs/s, ` +
    `${alone.main_thread_ms_per_sync.toFixed(2)} ms of the workerd thread each`,
);
console.log(receiver.summary());
console.log(JSON.stringify({ webhooks: { shapes: results, syncs_alone: alone, receiver: seen } }));
if (seen.unverified > 0 || seen.duplicates > 0) process.exitCode = 1;
