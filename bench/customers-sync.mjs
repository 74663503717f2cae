// Benchmark: syncing 1000 customers through the running stack, against the same upserts written
// straight to SQLite in one transaction (bench/sqlite_baseline.py), measured in the same run.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BASE = process.env.CRM_EDGE_URL;
const ADMIN = process.env.CRM_EDGE_ADMIN_TOKEN;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const BATCH = 1000;
if (!BASE || !ADMIN) throw new Error("CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)");

async function call(method, path, body, headers) {
  const response = await fetch(BASE + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const admin = { authorization: `Bearer ${ADMIN}` };
const business = await call("POST", "/admin/businesses", { name: "bench", default_country: "IE" }, admin);
// The benchmark measures the stack, not the limit: its business gets the highest one.
await call("PATCH", `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } }, admin);
const { key } = await call("POST", `/admin/businesses/${business.id}/api-keys`, { name: "bench" }, admin);

function customers(run) {
  return Array.from({ length: BATCH }, (_, n) => ({
    external_id: `BENCH-${run}-${n}`,
    external_system: "salesforce",
    name: `Customer ${run}-${n}`,
    email: `customer.${run}.${n}@example.com`,
    phone: `+3538${String(run * BATCH + n).padStart(8, "0")}`,
    tags: ["bench", n % 2 ? "odd" : "even"],
    custom_fields: { crm_segment: "enterprise", contract_value: n },
  }));
}

async function timedSync(batch) {
  const started = performance.now();
  const result = await call("POST", "/api-customers-sync", { customers: batch }, { "x-api-key": key });
  const elapsed = performance.now() - started;
  if (result.results.failed !== 0) throw new Error(`sync failed items: ${JSON.stringify(result.results.details.find((d) => d.error))}`);
  return { elapsed, result };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// Warm-up: the first request of a fresh isolate compiles the wasm module.
await timedSync(customers(RUNS));

// Matching customers are sent changed (a new name each), so that each is written, as SQLite writes
// them; the same batch once more is a sync of unchanged customers, which the stack does not write.
const stack = { new_ms: [], matching_ms: [], unchanged_ms: [] };
for (let run = 0; run < RUNS; run++) {
  const batch = customers(run);
  const created = await timedSync(batch);
  if (created.result.results.created !== BATCH) throw new Error("expected every customer to be created");
  const changed = batch.map((customer) => ({ ...customer, name: `${customer.name} (renamed)` }));
  const matched = await timedSync(changed);
  if (matched.result.results.updated !== BATCH) throw new Error("expected every customer to be updated");
  const unchanged = await timedSync(changed);
  if (unchanged.result.results.updated !== BATCH) throw new Error("expected every customer to be matched");
  stack.new_ms.push(created.elapsed);
  stack.matching_ms.push(matched.elapsed);
  stack.unchanged_ms.push(unchanged.elapsed);
}

const baselineScript = fileURLToPath(new URL("./sqlite_baseline.py", import.meta.url));
const baselineRun = spawnSync("python3", [baselineScript, String(RUNS)], { input: JSON.stringify(customers(0)), encoding: "utf8" });
if (baselineRun.status !== 0) throw new Error(`baseline failed: ${baselineRun.stderr}`);
const baseline = JSON.parse(baselineRun.stdout);

const rows = [
  ["1000 new customers", median(stack.new_ms), median(baseline.new_ms)],
  ["1000 matching customers", median(stack.matching_ms), median(baseline.matching_ms)],
  ["1000 unchanged customers", median(stack.unchanged_ms), median(baseline.matching_ms)],
];
console.log(`\ncustomers-sync, median of ${RUNS} runs (stack: HTTP through wrangler dev; baseline: SQLite, one transaction)`);
console.log("case                        stack ms   sqlite ms   ratio   target");
for (const [name, ours, sqlite] of rows) {
  const ratio = ours / sqlite;
  console.log(`${name.padEnd(26)} ${ours.toFixed(1).padStart(9)} ${sqlite.toFixed(1).padStart(11)} ${ratio.toFixed(1).padStart(6)}x   ${ratio <= 3 ? "within 3x" : "over 3x"}`);
}

// ---------------------------------------------------------------- where the time goes
// Each step of a sync of 1000 new customers, from requests that stop right after it (each one
// sequential, on its own, STEP_RUNS times, the median kept), and the sync's own [usage] lines: how
// long its function and the gateway ran, and how long they waited on D1; the function's computing
// is what the steps leave over of the whole (on Cloudflare the runtime's clock moves only across
// I/O, so it could not be timed from inside).
const STEP_RUNS = 3 * RUNS;
const LOG = process.env.CRM_EDGE_STATE ? join(process.env.CRM_EDGE_STATE, "wrangler.log") : null;
const tiny = { customers: [], default_country: "XX" };

async function timedStatus(method, path, body, headers, expected) {
  const started = performance.now();
  const response = await fetch(BASE + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.arrayBuffer();
  const elapsed = performance.now() - started;
  if (response.status !== expected) throw new Error(`${method} ${path}: ${response.status}, expected ${expected}`);
  return elapsed;
}

/** The last `[usage] <what>` line's timing fields in the stack's log. */
function lastUsage(what) {
  if (!LOG) return null;
  const lines = readFileSync(LOG, "utf8").split("\n").filter((line) => line.includes(`[usage] ${what} `));
  const last = lines.at(-1);
  if (!last) return null;
  return Object.fromEntries([...last.matchAll(/(\w+)=([\d.]+)/g)].map(([, name, value]) => [name, Number(value)]));
}

const keyed = { "x-api-key": key };
const big = (run) => ({ customers: customers(1000 + run), default_country: "XX" });
const samples = { health: [], tiny: [], tinyKeyed: [], big: [], bigParsed: [], sync: [], fn: [], gateway: [], d1: [], sql: [] };
for (let run = 0; run < STEP_RUNS; run++) {
  samples.health.push(await timedStatus("GET", "/health", undefined, {}, 200));
  samples.tiny.push(await timedStatus("POST", "/api-customers-sync", tiny, {}, 401));
  samples.tinyKeyed.push(await timedStatus("POST", "/api-customers-sync", tiny, keyed, 422));
  samples.big.push(await timedStatus("POST", "/api-customers-sync", big(run), {}, 401));
  samples.bigParsed.push(await timedStatus("POST", "/api-customers-sync", big(run), keyed, 422));
  samples.sync.push(await timedStatus("POST", "/api-customers-sync", { customers: customers(2000 + run) }, keyed, 200));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const fn = lastUsage("customers-sync fetch");
  const gateway = lastUsage("gateway fetch");
  if (fn && gateway) {
    samples.fn.push(fn.elapsed_ms);
    samples.gateway.push(gateway.elapsed_ms);
    samples.d1.push(fn.d1_wait_ms);
    samples.sql.push(fn.d1_sql_us / 1000);
  }
}
const m = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, values.length ? median(values) : NaN]));
const bodyKb = (JSON.stringify({ customers: customers(0) }).length / 1024).toFixed(0);
const steps = [
  ["the local proxies and the gateway (GET /health)", m.health],
  ["the gateway forwarding to the function (401, small body)", m.tiny - m.health],
  [`carrying the ${bodyKb} KB body through (401, 1000 customers)`, m.big - m.tiny],
  ["the rate limit and the key check (422 after both)", m.tinyKeyed - m.tiny],
  ["reading and parsing the 1000 customers (422 after it)", m.bigParsed - m.big - (m.tinyKeyed - m.tiny)],
  [`D1: the read and the write batch, as waited for (SQL itself: ${m.sql.toFixed(1)} ms)`, m.d1],
  ["validation, planning, statements, events, response (the rest)", m.sync - m.bigParsed - m.d1],
];
console.log(`\nwhere a sync of 1000 new customers spends its time, median of ${STEP_RUNS} sequential requests per step`);
console.log(`${"step".padEnd(80)} ${"ms".padStart(7)}`);
for (const [name, ms] of steps) console.log(`${name.padEnd(80)} ${ms.toFixed(1).padStart(7)}`);
console.log(`${"the whole sync, at the client".padEnd(80)} ${m.sync.toFixed(1).padStart(7)}`);
console.log(`(the function's invocation: ${m.fn.toFixed(1)} ms by the runtime's clock; the gateway's: ${m.gateway.toFixed(1)} ms)`);
