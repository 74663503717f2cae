// Benchmark: the customer sync against its floor (bench/floor/worker.js), the least an
// authenticated sync of the same 1000 customers can do on the same local runtime and D1. The
// floor runs in a wrangler dev of its own on the stack's state (the same D1 databases), takes the
// same key and body, and syncs into the same business. Ours and the floor alternate request by
// request (which goes first alternates too), BENCH_RUNS of each (default 15), medians kept:
//   new        1000 customers none of which is stored
//   matching   the same 1000 again, each renamed (so that each is written)
// first in an empty business, then with BENCH_FLOOR_STORED customers (default 100,000) stored in
// the business and BENCH_FLOOR_SHARD (default 400,000) in its shard. Beside the floor, a plain
// Worker doing the job naively (one statement per customer), and lookups by email on 16
// connections against a plain Worker's single SELECT. BENCH_FLOOR_WARMUP (default 10) syncs of each
// come first, unmeasured. BENCH_SAMPLES=FILE appends every measured time (ms, by system and case,
// one JSON line per table), to see the spread behind a median.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { ADMIN, BASE, admin, call, percentile } from './lib.mjs';
import { startWranglerDev } from './wrangler-dev.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const STORED = Number(process.env.BENCH_FLOOR_STORED ?? 100_000);
const SHARD = Number(process.env.BENCH_FLOOR_SHARD ?? 400_000);
const LOOKUP_SECONDS = Number(process.env.BENCH_FLOOR_LOOKUP_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_FLOOR_WARMUP ?? 10);
const BATCH = 1000;
const STATE = process.env.CRM_EDGE_STATE;
if (!STATE || !ADMIN) throw new Error('CRM_EDGE_STATE and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)');

// ---------------------------------------------------------------- the floor's wrangler dev

const floor = await startWranglerDev(fileURLToPath(new URL('./floor/wrangler.toml', import.meta.url)), {
  persistTo: STATE,
  ready: async (url) => (await fetch(`${url}/plain/lookup`)).status === 401,
});
const FLOOR = floor.url;

// ---------------------------------------------------------------- the business and its batches

const business = await admin('POST', '/admin/businesses', { name: `bench-floor-${Date.now()}`, default_country: 'IE' });
await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, { name: 'bench' });
const keyed = { 'x-api-key': key };

/** 1000 customers of one system and round, phones and emails unique across both. */
function customers(tag, round) {
  return Array.from({ length: BATCH }, (_, n) => ({
    external_id: `FLOOR-${tag}-${round}-${n}`,
    external_system: 'salesforce',
    name: `Customer ${tag} ${round}-${n}`,
    email: `customer.${tag}.${round}.${n}@example.com`,
    phone: `+3538${tag === 'ours' ? 1 : tag === 'floor' ? 2 : 3}${String(round * BATCH + n).padStart(7, '0')}`,
    tags: ['bench', n % 2 ? 'odd' : 'even'],
    custom_fields: { crm_segment: 'enterprise', contract_value: n },
  }));
}

const SYSTEMS = {
  ours: (body) => call('POST', '/api-customers-sync', body, keyed),
  floor: (body) => floorCall('POST', '/floor/sync', body),
  naive: (body) => floorCall('POST', '/naive/sync', body),
};

async function floorCall(method, path, body) {
  const response = await fetch(FLOOR + path, {
    method,
    headers: { 'content-type': 'application/json', ...keyed },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`floor ${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** One timed sync; every item must have become what `expected` says. */
async function timed(system, batch, expected) {
  const started = performance.now();
  const result = await SYSTEMS[system]({ customers: batch });
  const elapsed = performance.now() - started;
  if (result.results[expected] !== batch.length) throw new Error(`${system}: expected ${batch.length} ${expected}, got ${JSON.stringify(result.results).slice(0, 300)}`);
  return elapsed;
}

let round = 0;
/** RUNS rounds, each system's new then matching batch in turn, the order alternating. */
async function measure(systems) {
  const times = Object.fromEntries(systems.map((system) => [system, { new: [], matching: [] }]));
  for (let run = 0; run < RUNS; run++, round++) {
    const order = run % 2 ? [...systems].reverse() : systems;
    for (const system of order) {
      const batch = customers(system, round);
      times[system].new.push(await timed(system, batch, 'created'));
      const renamed = batch.map((customer) => ({ ...customer, name: `${customer.name} (renamed)` }));
      times[system].matching.push(await timed(system, renamed, 'updated'));
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  if (process.env.BENCH_SAMPLES) appendFileSync(process.env.BENCH_SAMPLES, `${JSON.stringify(times)}\n`);
  return Object.fromEntries(systems.map((system) => [system, { new: median(times[system].new), matching: median(times[system].matching) }]));
}

function report(title, medians) {
  console.log(`\n${title}, median of ${RUNS} alternating runs (ms at the client)`);
  console.log(`${'case'.padEnd(40)} ${'ours'.padStart(8)} ${'floor'.padStart(8)} ${'ratio'.padStart(7)}  target  ${medians.naive ? 'naive   ours/naive' : ''}`);
  for (const kind of ['new', 'matching']) {
    const ratio = medians.ours[kind] / medians.floor[kind];
    const naive = medians.naive ? `${medians.naive[kind].toFixed(1).padStart(7)} ${(medians.ours[kind] / medians.naive[kind]).toFixed(2).padStart(9)}x` : '';
    const label = kind === 'new' ? '1000 new customers' : '1000 matching customers, each changed';
    console.log(`${label.padEnd(40)} ${medians.ours[kind].toFixed(1).padStart(8)} ${medians.floor[kind].toFixed(1).padStart(8)} ${ratio.toFixed(2).padStart(6)}x  ${ratio <= 1.3 ? '≤ 1.3x' : 'OVER  '}  ${naive}`);
  }
}

// Warm-up: each isolate compiles its code on its first request, and the engine optimises what
// runs often over the next few (WebAssembly's baseline code first, then optimised).
for (let warm = 0; warm < WARMUP; warm++, round++) {
  for (const system of Object.keys(SYSTEMS)) await timed(system, customers(system, round), 'created');
}

report('an empty business', await measure(['ours', 'floor', 'naive']));

// ---------------------------------------------------------------- lookups by email

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: keyed }, (res) => {
        // A refusal keeps its body, for the error to say who answered and why.
        let body = '';
        if (res.statusCode === 200) res.resume();
        else res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });
}
const emails = customers('ours', 0).map((customer) => encodeURIComponent(customer.email));
// Ours must answer every lookup (a 5xx of ours is a bug, and stops the run); the plain Worker's
// failures (its local D1 refusing a read under 16 connections: "D1_ERROR: … internal error") are
// counted, not timed, and said beside its rate.
async function lookups(url, seconds, { strict }) {
  let done = 0;
  let failed = 0;
  const deadline = performance.now() + seconds * 1000;
  const latencies = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const { status, body } = await get(url(emails[(done + failed) % emails.length]));
        if (status !== 200 && strict) throw new Error(`lookup answered ${status}: ${body.slice(0, 500)}`);
        if (status !== 200) {
          failed += 1;
          continue;
        }
        latencies.push(performance.now() - t0);
        done += 1;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { perSecond: done / seconds, p50: percentile(latencies, 50), failed };
}
// The first round's customers were written by ours under 'ours' tags: both look up the same rows.
const rounds = [];
for (let n = 0; n < 3; n++) {
  const plain = await lookups((email) => `${FLOOR}/plain/lookup?email=${email}`, LOOKUP_SECONDS / 2, { strict: false });
  const ours = await lookups((email) => `${BASE}/api-customers?email=${email}`, LOOKUP_SECONDS / 2, { strict: true });
  rounds.push({ ours, plain, ratio: ours.perSecond / plain.perSecond });
}
rounds.sort((a, b) => a.ratio - b.ratio);
const lookupMedian = rounds[1];
console.log(`\nlookups by email, 16 connections, 3 alternating rounds of ${LOOKUP_SECONDS / 2} s each (the median round)`);
console.log(`ours ${lookupMedian.ours.perSecond.toFixed(0)} req/s (p50 ${lookupMedian.ours.p50.toFixed(1)} ms), plain Worker ${lookupMedian.plain.perSecond.toFixed(0)} req/s (p50 ${lookupMedian.plain.p50.toFixed(1)} ms): ${lookupMedian.ratio.toFixed(2)}x (target ≥ 1.0x)`);
const plainFailed = rounds.reduce((sum, round) => sum + round.plain.failed, 0);
if (plainFailed > 0) console.log(`(the plain Worker failed ${plainFailed} lookups over the rounds: counted out of its rate)`);

// ---------------------------------------------------------------- at size

if (STORED > 0) {
  const seeded = performance.now();
  await floorCall('POST', `/floor/seed?count=${STORED}`);
  // The shard's other customers belong to other businesses on the same shard.
  const shardOf = async (apiKey) => (await fetch(`${FLOOR}/floor/shard`, { headers: { 'x-api-key': apiKey } }).then((r) => r.json())).shard;
  const ourShard = await shardOf(key);
  let others = SHARD - STORED;
  while (others > 0) {
    const other = await admin('POST', '/admin/businesses', { name: `bench-floor-other-${Date.now()}`, default_country: 'IE' });
    const { key: otherKey } = await admin('POST', `/admin/businesses/${other.id}/api-keys`, { name: 'bench' });
    if ((await shardOf(otherKey)) !== ourShard) continue;
    const count = Math.min(others, STORED);
    const response = await fetch(`${FLOOR}/floor/seed?count=${count}`, { method: 'POST', headers: { 'x-api-key': otherKey } });
    if (!response.ok) throw new Error(`seeding another business: ${response.status} ${await response.text()}`);
    others -= count;
  }
  console.log(`\n(seeded ${STORED} customers in the business and ${SHARD} in its shard in ${((performance.now() - seeded) / 1000).toFixed(0)} s)`);
  report(`${STORED.toLocaleString('en')} customers stored in the business, ${SHARD.toLocaleString('en')} in its shard`, await measure(['ours', 'floor']));
}
await floor.stop();
