// What the webhook benches share, bench/webhooks.mjs (the stack) and bench/webhooks-floor.mjs (its
// floor): the endpoint on 127.0.0.1 that checks every Standard Webhooks signature and counts
// duplicates, svix-server's shapes (issue 52) and how each is measured, the CPU of a set of
// processes, and the table. Sizes from the environment:
//   burst     BENCH_WEBHOOK_BURST single-customer syncs (default 2000), 16 at a time
//   two       2 syncs of BENCH_WEBHOOK_BATCH customers (default 1000), at once
//   steady    single-customer syncs at 10/s, 50/s and 100/s, BENCH_WEBHOOK_STEADY_SECONDS each
//             (default 20)
// BENCH_WEBHOOK_DRAIN_MS (default 300,000): how long a shape's events may take to arrive.
// BENCH_WEBHOOK_SHAPES (default burst,two,steady): which shapes run.
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

export const BURST = Number(process.env.BENCH_WEBHOOK_BURST ?? 2000);
export const BATCH = Number(process.env.BENCH_WEBHOOK_BATCH ?? 1000);
export const STEADY_SECONDS = Number(process.env.BENCH_WEBHOOK_STEADY_SECONDS ?? 20);
const RATES = [10, 50, 100];
const CONCURRENCY = 16;
const DRAIN_MS = Number(process.env.BENCH_WEBHOOK_DRAIN_MS ?? 300_000);
const SHAPES = (process.env.BENCH_WEBHOOK_SHAPES ?? 'burst,two,steady').split(',');

// ---------------------------------------------------------------- the receiver

/**
 * The endpoint, listening on 127.0.0.1: `received` maps each event's customer external_id to its
 * receipt time (ms, performance clock), `seen` counts requests, duplicates and failed signature
 * checks. A path's deliveries are checked with the secret given to `trust`.
 */
export async function startReceiver() {
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

  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    seen,
    allReceived,
    /** Deliveries to `path` are to be signed with `secret` ("whsec_" and the key in base64). */
    trust(path, secret) {
      secrets.set(path, Buffer.from(secret.slice('whsec_'.length), 'base64'));
    },
    summary: () =>
      `receiver: ${seen.requests} requests, ${seen.duplicates} duplicate deliveries, ${seen.unverified} failed signature checks`,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

// ---------------------------------------------------------------- processes

/** The pids of the processes `include(pid, commandLine)` picks. */
function picked(include) {
  return readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return include(Number(pid), readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** CPU seconds in the stat fields of a process or thread (USER_HZ is 100 on Linux). */
const seconds = (fields) => (Number(fields[11]) + Number(fields[12])) / 100;

/** CPU seconds used so far by the processes `include(pid, commandLine)` picks. */
export function cpuSeconds(include) {
  let total = 0;
  for (const pid of picked(include)) {
    try {
      total += seconds(statFields(pid));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/**
 * CPU seconds used so far by the main thread of the busiest workerd among the processes
 * `include(pid, commandLine)` picks: the one thread that runs every Worker of a wrangler dev, its
 * queue broker and its D1 databases, which bounds what the local runtime can do at all.
 */
export function mainThreadSeconds(include) {
  let busiest = 0;
  for (const pid of picked((pid, command) => command.includes('workerd') && include(pid, command))) {
    try {
      busiest = Math.max(busiest, seconds(statFields(`${pid}/task/${pid}`)));
    } catch {
      // gone meanwhile
    }
  }
  return busiest;
}

/**
 * The fields of /proc/<pid>/stat (or of a thread's, `<pid>/task/<tid>`) after the command name:
 * [0] state, [1] ppid, [11] utime, [12] stime.
 */
export function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
}

// ---------------------------------------------------------------- the shapes

/** `each(item)` for every item, `CONCURRENCY` calls at a time (the burst's pace). */
export async function inBurst(items, each) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await each(items[next++]);
    }),
  );
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/**
 * The warm-up, then every shape, each against a target of its own: `target(name)` makes one (for
 * the stack, a business with its endpoint) and resolves to a function that syncs a list of
 * customers. `cpuSeconds()` is the CPU used so far by what is measured. `extra()`, called as a
 * shape starts, returns a function of the shape's event count whose figures are added to the
 * shape's when it ends. `run`
 * keeps this run's customers apart from any other's.
 */
export async function runShapes({ receiver, run, target, cpuSeconds, mainThread, extra = () => () => ({}) }) {
  const customer = (tag, i) => ({ external_id: `bench-${run}-${tag}-${i}`, name: `Bench ${i}`, email: `bench-${run}-${tag}-${i}@example.com` });
  const emitted = new Map(); // external_id -> emit time

  async function emit(sync, customers) {
    const at = performance.now();
    for (const c of customers) emitted.set(c.external_id, at);
    await sync(customers);
  }

  /** Single-customer syncs, `CONCURRENCY` at a time. */
  const burst = (sync, customers) => inBurst(customers, (c) => emit(sync, [c]));

  /** Single-customer syncs at `rate` per second, each sent on time whatever the others do. */
  async function steady(sync, customers, rate) {
    const start = performance.now();
    await Promise.all(
      customers.map(async (c, i) => {
        const due = start + (i * 1000) / rate;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
        await emit(sync, [c]);
      }),
    );
  }

  /** Runs `send` (which emits `ids`), waits for every receipt, and measures the shape. */
  async function shape(name, ids, send) {
    const finish = extra();
    const cpuBefore = cpuSeconds();
    const mainBefore = mainThread();
    const started = performance.now();
    await send();
    const lastAnswered = performance.now();
    const behind = ids.filter((id) => !receiver.received.has(id)).length;
    await receiver.allReceived(ids);
    // The consumer's usage line is written when its invocation ends, just after its last POST.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const cpu = cpuSeconds() - cpuBefore;
    const main = mainThread() - mainBefore;
    const latencies = ids.map((id) => receiver.received.get(id) - emitted.get(id)).sort((a, b) => a - b);
    const lastReceipt = Math.max(...ids.map((id) => receiver.received.get(id)));
    return {
      name,
      events: ids.length,
      per_second: ids.length / ((lastReceipt - started) / 1000),
      // How fast the events were emitted: the most a delivery can keep up with.
      emitted_per_second: ids.length / ((lastAnswered - started) / 1000),
      p50_ms: percentile(latencies, 0.5),
      p95_ms: percentile(latencies, 0.95),
      behind_at_last_answer: behind,
      drained_ms_after_last_answer: Math.max(0, lastReceipt - lastAnswered),
      cpu_ms_per_event: (cpu * 1000) / ids.length,
      main_thread_ms_per_event: (main * 1000) / ids.length,
      ...finish(ids.length),
    };
  }

  // Warm-up: compile every isolate on the path (sync, dispatcher) and prove the pipe works.
  const warm = await target(`bench-webhooks-warm-${run}`);
  const warmIds = Array.from({ length: 20 }, (_, i) => customer('warm', i));
  await burst(warm, warmIds);
  await receiver.allReceived(warmIds.map((c) => c.external_id), 60_000);

  const results = [];
  if (SHAPES.includes('burst')) {
    const sync = await target(`bench-webhooks-burst-${run}`);
    const customers = Array.from({ length: BURST }, (_, i) => customer('burst', i));
    results.push(await shape(`${BURST} single-customer syncs, ${CONCURRENCY} at a time`, customers.map((c) => c.external_id), () => burst(sync, customers)));
  }
  if (SHAPES.includes('two')) {
    const sync = await target(`bench-webhooks-two-${run}`);
    const batches = [0, 1].map((b) => Array.from({ length: BATCH }, (_, i) => customer(`two${b}`, i)));
    const ids = batches.flat().map((c) => c.external_id);
    results.push(await shape(`2 syncs of ${BATCH}, at once`, ids, () => Promise.all(batches.map((batch) => emit(sync, batch)))));
  }
  for (const rate of SHAPES.includes('steady') ? RATES : []) {
    const sync = await target(`bench-webhooks-steady${rate}-${run}`);
    const customers = Array.from({ length: rate * STEADY_SECONDS }, (_, i) => customer(`steady${rate}`, i));
    results.push(await shape(`steady ${rate}/s for ${STEADY_SECONDS} s`, customers.map((c) => c.external_id), () => steady(sync, customers, rate)));
  }
  return results;
}

// ---------------------------------------------------------------- syncs the local proxy drops

// Under load, wrangler dev's proxy now and then fails to pass a request on to the Worker's runtime
// and answers 503 "Your worker restarted mid-request" (wrangler-dist/ProxyWorker.js: any failed
// fetch of a POST gets that answer, no restart needed). Such a sync never reached the Worker (the
// customers stored were one fewer for each), so it is sent again (at most twice), and counted.
const DROPPED = 'Your worker restarted mid-request';

/** `sync` with a dropped sync sent again; `counter.resent` counts them. */
export function resendingDropped(sync, counter) {
  return async (customers) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await sync(customers);
      } catch (error) {
        if (attempt >= 3 || !String(error.message).includes(DROPPED)) throw error;
        counter.resent += 1;
      }
    }
  };
}

// ---------------------------------------------------------------- the table

/**
 * The shapes' figures under `title`, one line each; `columns` ([heading, width, (result) => text])
 * come after the figures every run has.
 */
export function printTable(title, results, columns = []) {
  const all = [
    ['emitted/s', 9, (r) => r.emitted_per_second.toFixed(1)],
    ['events/s', 9, (r) => r.per_second.toFixed(1)],
    ['p50 ms', 8, (r) => r.p50_ms.toFixed(0)],
    ['p95 ms', 8, (r) => r.p95_ms.toFixed(0)],
    ['behind', 7, (r) => String(r.behind_at_last_answer)],
    ['cpu ms/ev', 10, (r) => r.cpu_ms_per_event.toFixed(1)],
    ['main ms/ev', 11, (r) => r.main_thread_ms_per_event.toFixed(2)],
    ...columns,
  ];
  console.log(`\n${title}`);
  console.log(['shape'.padEnd(44), ...all.map(([heading, width]) => heading.padStart(width))].join(' '));
  for (const r of results) console.log([r.name.padEnd(44), ...all.map(([, width, text]) => text(r).padStart(width))].join(' '));
}
