// Benchmark: syncing 1000 customers through the running stack, against the same upserts written
// straight to SQLite in one transaction (bench/sqlite_baseline.py), measured in the same run.
import { spawnSync } from "node:child_process";
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

const stack = { new_ms: [], matching_ms: [] };
for (let run = 0; run < RUNS; run++) {
  const batch = customers(run);
  const created = await timedSync(batch);
  if (created.result.results.created !== BATCH) throw new Error("expected every customer to be created");
  const matched = await timedSync(batch);
  if (matched.result.results.updated !== BATCH) throw new Error("expected every customer to be updated");
  stack.new_ms.push(created.elapsed);
  stack.matching_ms.push(matched.elapsed);
}

const baselineScript = fileURLToPath(new URL("./sqlite_baseline.py", import.meta.url));
const baselineRun = spawnSync("python3", [baselineScript, String(RUNS)], { input: JSON.stringify(customers(0)), encoding: "utf8" });
if (baselineRun.status !== 0) throw new Error(`baseline failed: ${baselineRun.stderr}`);
const baseline = JSON.parse(baselineRun.stdout);

const rows = [
  ["1000 new customers", median(stack.new_ms), median(baseline.new_ms)],
  ["1000 matching customers", median(stack.matching_ms), median(baseline.matching_ms)],
];
console.log(`\ncustomers-sync, median of ${RUNS} runs (stack: HTTP through wrangler dev; baseline: SQLite, one transaction)`);
console.log("case                        stack ms   sqlite ms   ratio   target");
for (const [name, ours, sqlite] of rows) {
  const ratio = ours / sqlite;
  console.log(`${name.padEnd(26)} ${ours.toFixed(1).padStart(9)} ${sqlite.toFixed(1).padStart(11)} ${ratio.toFixed(1).padStart(6)}x   ${ratio <= 10 ? "within 10x" : "OVER 10x"}`);
}
