// Benchmark: the floor of our webhook delivery, a bench floor never deployed. The webhook floor
// (bench/floor/webhooks/worker.js: a sync recording its customers and events in one D1 batch and
// queueing one message per 100 events, and its own consumer reading, signing, POSTing and
// recording each message's deliveries) runs alone in a wrangler dev of its own, on a fresh
// --persist-to under the system's temp directory (removed at exit), in the shapes and with the
// figures of bench/webhooks.mjs (bench/webhooks-shapes.mjs; the same sizes from the environment),
// once with our consumer's batch size (50), once at 100, and once at 50 with the two hops every
// request to our stack makes before its work (a service binding into a second Worker, the API key
// read from KV there; BENCH_WEBHOOK_FLOOR_RUNS=batch_50,batch_100,hops picks runs). What the local runtime costs (the
// simulated Queues broker, workerd, local D1) shows here; what ours costs beyond it is the
// difference from bench/webhooks.mjs. It needs no running stack: `node bench/webhooks-floor.mjs`.
// The CPU per event is the floor's wrangler dev's process tree only (wrangler's Node, its workerd
// processes, its esbuild), not the stack's beside it; the syncs are included, as in ours. Per
// shape, from the floor's log: how many batches its consumer was handed, and how long the broker
// waited on each; and how many syncs wrangler dev's proxy dropped, which were sent again.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, mainThreadSeconds, printTable, resendingDropped, runShapes, startReceiver, statFields } from './webhooks-shapes.mjs';
import { startWranglerDev } from './wrangler-dev.mjs';

const CONFIG = fileURLToPath(new URL('./floor/webhooks/wrangler.toml', import.meta.url));
const QUEUE = 'crm-edge-bench-floor-webhooks';
// Our consumer's batch size, then the most Queues allows (wrangler.toml's [env.batch100]), then
// our batch size with the two hops every request to our stack makes ([env.hops]).
const RUNS = [
  { name: 'batch_50', batchSize: 50, env: null, what: 'max_batch_size 50' },
  { name: 'batch_100', batchSize: 100, env: 'batch100', what: 'max_batch_size 100' },
  { name: 'hops', batchSize: 50, env: 'hops', what: "max_batch_size 50, and our requests' two hops (a service binding into a second Worker, the key's read from KV)" },
].filter(({ name }) => !process.env.BENCH_WEBHOOK_FLOOR_RUNS || process.env.BENCH_WEBHOOK_FLOOR_RUNS.split(',').includes(name));

// ---------------------------------------------------------------- the floor's wrangler dev

/** The floors' state directories, removed when the bench ends however it ends. */
const states = new Set();
process.on('exit', () => {
  for (const state of states) rmSync(state, { recursive: true, force: true });
});

/** The floor with a fresh state, up once its tables are made (CREATE TABLE IF NOT EXISTS). */
async function startFloor(env) {
  const persist = mkdtempSync(join(tmpdir(), 'crm-edge-webhooks-floor-'));
  states.add(persist);
  const worker = await startWranglerDev(CONFIG, {
    persistTo: persist,
    env,
    ready: async (url) => (await fetch(`${url}/floor/setup`, { method: 'POST' })).ok,
  });
  return Object.assign(worker, { persist, resent: 0 });
}

/** Stops the floor and removes its state. */
async function stopFloor(floor) {
  await floor.stop();
  rmSync(floor.persist, { recursive: true, force: true });
  states.delete(floor.persist);
}

/** `root` and every process descended from it. */
function processTree(root) {
  const children = new Map();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const parent = Number(statFields(pid)[1]);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  const tree = new Set([root]);
  for (const pid of tree) for (const child of children.get(pid) ?? []) tree.add(child);
  return tree;
}

/** One POST to the floor; a non-2xx answer throws with its text. */
async function floorCall(floor, path, body) {
  const response = await fetch(floor.url + path, {
    signal: AbortSignal.timeout(120_000),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`floor POST ${path}: ${response.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/**
 * From a shape's start to its end: the batches the broker handed the consumer, by its log lines,
 * and the syncs sent again after wrangler dev's proxy dropped them.
 */
function batchFigures(floor) {
  const logFrom = floor.log.length;
  const resentBefore = floor.resent;
  return (events) => {
    // eslint-disable-next-line no-control-regex
    const log = floor.log.slice(logFrom).replace(/\x1b\[[0-9;]*m/g, '');
    const batches = [...log.matchAll(new RegExp(`QUEUE ${QUEUE} (\\d+)/(\\d+) \\((\\d+)ms\\)`, 'g'))];
    const messages = batches.reduce((sum, match) => sum + Number(match[2]), 0);
    const ms = batches.reduce((sum, match) => sum + Number(match[3]), 0);
    return {
      consumer: {
        batches: batches.length,
        messages_per_batch: batches.length ? messages / batches.length : 0,
        events_per_batch: batches.length ? events / batches.length : 0,
        ms_per_batch: batches.length ? ms / batches.length : 0,
      },
      resent_syncs: floor.resent - resentBefore,
    };
  };
}

// ---------------------------------------------------------------- the runs

const receiver = await startReceiver();
const measured = {};
for (const { name, batchSize, env } of RUNS) {
  const floor = await startFloor(env);
  const run = `${Date.now().toString(36)}-${name}`;
  const path = `/floor-${name}-${run}`;
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  await floorCall(floor, '/floor/endpoint', { url: `${receiver.url}${path}`, secret });
  receiver.trust(path, secret);
  // Every shape goes to the one endpoint (the floor sends each event to every endpoint it has).
  const sync = resendingDropped((customers) => floorCall(floor, '/floor/sync', { customers }), floor);
  const floorCpuSeconds = () => {
    const tree = processTree(floor.pid);
    return cpuSeconds((pid) => tree.has(pid));
  };
  const floorMainThread = () => {
    const tree = processTree(floor.pid);
    return mainThreadSeconds((pid) => tree.has(pid));
  };
  let shapes;
  try {
    shapes = await runShapes({
      receiver,
      run,
      target: async () => sync,
      cpuSeconds: floorCpuSeconds,
      mainThread: floorMainThread,
      extra: () => batchFigures(floor),
    });
  } catch (error) {
    console.error(`the floor's log, to its last 4,000 characters:\n${floor.log.slice(-4000)}`);
    throw error;
  }
  measured[name] = { max_batch_size: batchSize, hops: env === 'hops', shapes };
  await stopFloor(floor);
}
receiver.close();

for (const { name, what } of RUNS) {
  printTable(`webhooks floor: customer.created to one endpoint on 127.0.0.1 (plain Worker through wrangler dev), ${what}, max_batch_timeout 0`, measured[name].shapes, [
    ['batches', 8, (r) => String(r.consumer.batches)],
    ['ev/batch', 9, (r) => r.consumer.events_per_batch.toFixed(1)],
    ['ms/batch', 9, (r) => r.consumer.ms_per_batch.toFixed(0)],
    ['resent', 7, (r) => String(r.resent_syncs)],
  ]);
}
const { seen } = receiver;
console.log(receiver.summary());
console.log(JSON.stringify({ webhooks_floor: { ...measured, receiver: seen } }));
if (seen.unverified > 0 || seen.duplicates > 0) process.exitCode = 1;
