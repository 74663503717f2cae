// Benchmark: a mixed load through the running stack, as a CRM integration makes it, on 16
// keep-alive connections for BENCH_LOAD_SECONDS (default 60): lookups of customers synced
// beforehand (GET /api-customers?email=, 50%), syncs of 100 customers (POST /api-customers-sync,
// 15%), polling that follows its cursor (GET /api-messages-since, 25%) and sends through a local
// WhatsApp Cloud API (POST /api-send-message, 10%). Then the same 16 connections on GET /health
// for as long: the gateway's answer with no function, D1 or KV behind it, the same run's ceiling.
// Prints per operation the requests, errors, throughput and p50/p99, and lookup throughput over
// /health throughput. Any error (a non-2xx, a sync item that failed, a connection that failed)
// fails the run.
import http from 'node:http';
import { randomInt } from 'node:crypto';
import { GRAPH_VERSION, startMeta } from '../tests/e2e/providers/meta.mjs';

const BASE = process.env.CRM_EDGE_URL;
const ADMIN = process.env.CRM_EDGE_ADMIN_TOKEN;
if (!BASE || !ADMIN) throw new Error('CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)');
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 60);
/** Rounds of lookups alone against /health alone (BENCH_LOAD_ROUNDS, default 3). */
const ROUNDS = Number(process.env.BENCH_LOAD_ROUNDS ?? 3);
const CONNECTIONS = 16;
/** Customers synced before the load, looked up and sent to during it. */
const CUSTOMERS = 1000;
/**
 * External ids each connection's syncs draw from: new customers at first, then mostly updates.
 * Each connection has its own, as a CRM's sync job splits its customers between its workers: two
 * syncs creating the same new customers at once may be refused with 409 (retry the request).
 */
const SYNC_POOL = 5000;
const SYNC_BATCH = 100;
const MIX = [
  ['lookup', 50],
  ['sync', 15],
  ['poll', 25],
  ['send', 10],
];

const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });

/** One request on the shared keep-alive pool: `{ status, body }`; never throws for a status. */
function call(method, path, body, headers = {}) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const all = { ...headers };
  if (payload) Object.assign(all, { 'content-type': 'application/json', 'content-length': payload.length });
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(BASE + path), { method, headers: all, agent }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: kept as text for the error report
        }
        resolve({ status: res.statusCode, body: parsed, text });
      });
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function must(method, path, body, headers) {
  const res = await call(method, path, body, headers);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text.slice(0, 500)}`);
  return res.body;
}

const admin = { authorization: `Bearer ${ADMIN}` };
const digits = (n) => Array.from({ length: n }, () => randomInt(10)).join('');
const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

// ---------------------------------------------------------------- set-up

const accessTokens = new Map();
const meta = await startMeta(accessTokens);
const run = Date.now().toString(36);
const business = await must('POST', '/admin/businesses', { name: `bench-load-${run}`, default_country: 'IE' }, admin);
// The benchmark measures the stack, not the limit: its business gets the highest one.
await must('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } }, admin);
const { key } = await must('POST', `/admin/businesses/${business.id}/api-keys`, { name: 'bench' }, admin);
const apiKey = { 'x-api-key': key };
const phoneNumberId = digits(15);
const accessToken = `EAAG${digits(40)}`;
accessTokens.set(phoneNumberId, accessToken);
await must('POST', `/admin/businesses/${business.id}/channel-accounts`, {
  channel: 'whatsapp',
  provider: 'meta',
  address: phoneNumberId,
  settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
  secrets: { app_secret: digits(32), verify_token: digits(16), access_token: accessToken },
}, admin);

const customers = Array.from({ length: CUSTOMERS }, (_, n) => {
  const phone = `+35387${String(n).padStart(7, '0')}`;
  return { external_id: `LOAD-${run}-${n}`, name: `Load Customer ${n}`, email: `load.${run}.${n}@example.com`, phone, whatsapp_number: phone };
});
for (let at = 0; at < CUSTOMERS; at += SYNC_BATCH) {
  const result = await must('POST', '/api-customers-sync', { customers: customers.slice(at, at + SYNC_BATCH) }, apiKey);
  if (result.results.failed !== 0) throw new Error(`pre-sync: ${JSON.stringify(result.results.details.find((d) => d.error))}`);
}

// ---------------------------------------------------------------- the operations

/** Each operation: a request, and why its answer is an error (null when it is not). */
const OPERATIONS = {
  async lookup() {
    const customer = customers[randomInt(CUSTOMERS)];
    const res = await call('GET', `/api-customers?email=${encodeURIComponent(customer.email)}`, undefined, apiKey);
    if (res.status !== 200) return `${res.status} ${res.text.slice(0, 200)}`;
    return res.body.external_id === customer.external_id ? null : `found ${res.body.external_id} for ${customer.email}`;
  },
  async sync(worker) {
    const ids = new Set();
    while (ids.size < SYNC_BATCH) ids.add(randomInt(SYNC_POOL));
    const batch = [...ids].map((n) => n * CONNECTIONS + worker.index).map((n) => ({
      external_id: `SYNC-${run}-${n}`,
      external_system: 'salesforce',
      name: `Synced ${n}`,
      email: `sync.${run}.${n}@example.com`,
      tags: ['load', n % 2 ? 'odd' : 'even'],
      custom_fields: { segment: 'enterprise', touched: Date.now() },
    }));
    const res = await call('POST', '/api-customers-sync', { customers: batch }, apiKey);
    if (res.status !== 200) return `${res.status} ${res.text.slice(0, 200)}`;
    return res.body.results.failed === 0 ? null : `failed items: ${JSON.stringify(res.body.results.details.find((d) => d.error))}`;
  },
  async poll(worker) {
    const query = worker.cursor ? `cursor=${worker.cursor}` : `since=${encodeURIComponent(worker.since)}`;
    const res = await call('GET', `/api-messages-since?${query}&limit=100`, undefined, apiKey);
    if (res.status !== 200) return `${res.status} ${res.text.slice(0, 200)}`;
    if (res.body.next_cursor) worker.cursor = res.body.next_cursor;
    return null;
  },
  async send() {
    const customer = customers[randomInt(CUSTOMERS)];
    const res = await call('POST', '/api-send-message', { customer_id: customer.external_id, channel: 'whatsapp', content: `Your order ${digits(6)} is ready.` }, apiKey);
    return res.status === 202 ? null : `${res.status} ${res.text.slice(0, 200)}`;
  },
  async health() {
    const res = await call('GET', '/health');
    return res.status === 200 ? null : `${res.status} ${res.text.slice(0, 200)}`;
  },
  // The lookup's steps, each a request that stops right after it (see STEPS below).
  async forwarded() {
    const res = await call('GET', '/api-customers?email=someone%40example.com');
    return res.status === 401 ? null : `${res.status}, expected 401`;
  },
  async limited() {
    const res = await call('GET', '/api-customers-sync', undefined, apiKey);
    return res.status === 405 ? null : `${res.status}, expected 405`;
  },
  async authenticated() {
    const res = await call('GET', '/api-customers?email=', undefined, apiKey);
    return res.status === 422 ? null : `${res.status}, expected 422`;
  },
};

/**
 * A lookup, step by step: each phase runs requests that stop after one more step of its path, so
 * the throughput lost from one to the next is what that step costs the machine.
 */
const STEPS = [
  ['health', 'the local proxies and the gateway (GET /health)'],
  ['forwarded', 'the gateway forwarding to the function (no key: 401)'],
  ['limited', 'the rate limit (a keyed GET the function refuses: 405)'],
  ['authenticated', 'the key check (a keyed lookup naming nobody: 422)'],
  ['lookup', 'the D1 read and the answer (a lookup)'],
];

/** Runs `CONNECTIONS` workers for `seconds`, each choosing its next operation from `mix`. */
async function phase(mix, seconds) {
  const total = mix.reduce((sum, [, weight]) => sum + weight, 0);
  const choose = () => {
    let pick = randomInt(total);
    for (const [name, weight] of mix) {
      if (pick < weight) return name;
      pick -= weight;
    }
    return mix[0][0];
  };
  const stats = Object.fromEntries(mix.map(([name]) => [name, { latencies: [], errors: 0, samples: [] }]));
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const since = new Date().toISOString();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, index) => {
      const worker = { index, since, cursor: null };
      while (performance.now() < deadline) {
        const name = choose();
        const t0 = performance.now();
        let error;
        try {
          error = await OPERATIONS[name](worker);
        } catch (failure) {
          error = `connection: ${failure.message}`;
        }
        const stat = stats[name];
        stat.latencies.push(performance.now() - t0);
        if (error) {
          stat.errors += 1;
          if (stat.samples.length < 3) stat.samples.push(error);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  for (const stat of Object.values(stats)) {
    stat.latencies.sort((a, b) => a - b);
    stat.requests = stat.latencies.length;
    stat.perSecond = stat.requests / elapsed;
    stat.p50 = percentile(stat.latencies, 50) ?? 0;
    stat.p99 = percentile(stat.latencies, 99) ?? 0;
  }
  return { seconds: elapsed, stats };
}

// ---------------------------------------------------------------- the run

// Warm-up: every isolate on the path compiles its wasm once.
for (const name of ['lookup', 'sync', 'poll', 'send', 'health']) await OPERATIONS[name]({ index: 0, since: new Date().toISOString(), cursor: null });

// Lookups alone against /health alone, in alternating phases of a third of SECONDS each, ROUNDS
// times: the ratio of each round is taken, and the median of those is the figure.
const alone = [];
for (let round = 0; round < ROUNDS; round++) {
  const health = await phase([['health', 1]], SECONDS / 3);
  const lookup = await phase([['lookup', 1]], SECONDS / 3);
  alone.push({ health: health.stats.health, lookup: lookup.stats.lookup });
}
const byRatio = alone.map((round) => ({ ...round, ratio: round.lookup.perSecond / round.health.perSecond }));
byRatio.sort((a, b) => a.ratio - b.ratio);
const median = byRatio[Math.floor(byRatio.length / 2)];
const health = { stats: { health: median.health } };
const steps = [];
for (const [name] of STEPS) steps.push((await phase([[name, 1]], SECONDS / 6)).stats[name]);
const mixed = await phase(MIX, SECONDS);
const sentToMeta = meta.requests.length;
agent.destroy();
await meta.close();

const row = (name, s) =>
  `${name.padEnd(30)} ${String(s.requests).padStart(8)} ${String(s.errors).padStart(7)} ${s.perSecond.toFixed(1).padStart(9)} ${s.p50.toFixed(1).padStart(9)} ${s.p99.toFixed(1).padStart(9)}`;
const labels = {
  lookup: 'lookup (GET /api-customers)',
  sync: `sync of ${SYNC_BATCH}`,
  poll: 'poll (messages-since)',
  send: 'send (WhatsApp)',
  health: 'GET /health (alone)',
};
console.log(`\nmixed load, ${CONNECTIONS} keep-alive connections, ${SECONDS} s a phase (stack through wrangler dev)`);
console.log(`${'operation'.padEnd(30)} ${'requests'.padStart(8)} ${'errors'.padStart(7)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)}`);
for (const [name] of MIX) console.log(row(labels[name], mixed.stats[name]));
const all = Object.values(mixed.stats);
console.log(
  `${'all (mixed)'.padEnd(30)} ${String(all.reduce((n, s) => n + s.requests, 0)).padStart(8)} ${String(all.reduce((n, s) => n + s.errors, 0)).padStart(7)} ${(all.reduce((n, s) => n + s.requests, 0) / mixed.seconds).toFixed(1).padStart(9)}`,
);
console.log(row(labels.health, health.stats.health));
const ratio = mixed.stats.lookup.perSecond / health.stats.health.perSecond;
console.log(`lookup throughput in the mix / /health throughput alone: ${ratio.toFixed(3)}`);
console.log(`\nlookups alone against /health alone, ${ROUNDS} rounds of ${(SECONDS / 3).toFixed(0)} s each (the round of the median ratio first)`);
for (const round of [median, ...byRatio.filter((round) => round !== median)]) {
  console.log(`${row('lookup (alone)', round.lookup)}\n${row('GET /health (alone)', round.health)}\n${'ratio'.padEnd(30)} ${round.ratio.toFixed(3)}`);
}
console.log(`lookup throughput alone / /health throughput alone, median of ${ROUNDS}: ${median.ratio.toFixed(3)}`);
console.log(`\na lookup step by step, ${(SECONDS / 6).toFixed(0)} s a step: machine time a request = 1000 / req/s (two cores, saturated)`);
console.log(`${'step'.padEnd(62)} ${'req/s'.padStart(8)} ${'ms/request'.padStart(11)} ${'this step'.padStart(10)}`);
steps.forEach((stat, i) => {
  const cost = 1000 / stat.perSecond;
  const added = i === 0 ? cost : cost - 1000 / steps[i - 1].perSecond;
  console.log(`${STEPS[i][1].padEnd(62)} ${stat.perSecond.toFixed(0).padStart(8)} ${cost.toFixed(2).padStart(11)} ${added.toFixed(2).padStart(10)}`);
});
console.log(`sends that reached the local WhatsApp Cloud API by the end: ${sentToMeta} of ${mixed.stats.send.requests}`);

const errors = [...all, ...steps, ...alone.flatMap((round) => [round.health, round.lookup])].reduce((n, s) => n + s.errors, 0);
for (const [name, stat] of [...Object.entries(mixed.stats), ...steps.map((stat, i) => [STEPS[i][0], stat]), ...alone.flatMap((round) => [['health', round.health], ['lookup alone', round.lookup]])]) {
  for (const sample of stat.samples) console.log(`error (${name}): ${sample}`);
}
console.log(
  JSON.stringify({
    load: {
      connections: CONNECTIONS,
      seconds: SECONDS,
      operations: Object.fromEntries(
        [...Object.entries(mixed.stats), ['health', health.stats.health]].map(([name, s]) => [
          name,
          { requests: s.requests, errors: s.errors, per_second: +s.perSecond.toFixed(1), p50_ms: +s.p50.toFixed(1), p99_ms: +s.p99.toFixed(1) },
        ]),
      ),
      lookup_to_health: +ratio.toFixed(3),
      lookup_alone_to_health: +median.ratio.toFixed(3),
      lookup_steps: Object.fromEntries(steps.map((stat, i) => [STEPS[i][0], +stat.perSecond.toFixed(1)])),
      lookup_alone: { per_second: +median.lookup.perSecond.toFixed(1), p50_ms: +median.lookup.p50.toFixed(1), p99_ms: +median.lookup.p99.toFixed(1) },
    },
  }),
);
if (errors > 0) process.exitCode = 1;
