// Benchmark: importing a generated 100,000-row CSV (a HubSpot-style contacts export) with the
// command-line tool against the running stack, and the same rows sent as raw 1000-row
// POST /api-customers-sync requests one after another (the seed's importCustomers loop), the
// API's own throughput in the same run. Each import goes to a business of its own, so every run
// creates 100,000 new customers. Prints rows/s of each, the ratio to the raw loop, and the
// tool's peak memory (VmHWM) with the file's size: the file is streamed, not loaded.
// BENCH_IMPORT_ROWS sets the row count (default 100,000).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BASE = process.env.CRM_EDGE_URL;
const ADMIN = process.env.CRM_EDGE_ADMIN_TOKEN;
if (!BASE || !ADMIN) throw new Error('CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = process.env.CRM_EDGE_CLI || join(ROOT, 'target', 'cli', 'crm-edge');
const ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 100_000);
const BATCH = 1000;

async function call(method, path, body, headers) {
  const res = await fetch(BASE + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** A business with the highest rate limit and a key: every import runs unthrottled. */
async function business(name) {
  const auth = { authorization: `Bearer ${ADMIN}` };
  const created = await call('POST', '/admin/businesses', { name, default_country: 'IE' }, auth);
  await call('PATCH', `/admin/businesses/${created.id}`, { rate_limit: { per_minute: 100_000, burst: 10_000 } }, auth);
  return (await call('POST', `/admin/businesses/${created.id}/api-keys`, { name: 'bench' }, auth)).key;
}

/** Row `n` of the export, as cells and as the customer the tool maps it to. */
function row(n, tag) {
  const first = `Person${n % 97}`;
  const last = `Lee ${n}`;
  const email = `${tag}-${n}@example.com`;
  const phone = n % 2 ? `087${String(n).padStart(7, '0')}` : '';
  const stage = ['lead', 'customer', 'subscriber'][n % 3];
  const customer = { external_id: String(n), first_name: first, last_name: last, email, name: `${first} ${last}`, custom_fields: { 'Lifecycle Stage': stage } };
  if (phone) customer.phone = phone;
  return { cells: [n, first, last, email, phone, stage], customer };
}

/** Runs the tool; resolves to its seconds, summary and peak resident memory (KiB). */
function runCli(args, key) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(CLI, ['--json', ...args], { env: { PATH: process.env.PATH, CRM_EDGE_URL: BASE, CRM_EDGE_API_KEY: key, CRM_EDGE_CONFIG: '/nonexistent' } });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    const sample = setInterval(() => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (hwm) peak = Math.max(peak, Number(hwm[1]));
      } catch {
        // the process has ended
      }
    }, 50);
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sample);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`crm-edge exited ${code}: ${stderr}`));
      resolve({ seconds, summary: JSON.parse(stdout), peakKiB: peak });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'crm-edge-bench-import-'));
try {
  const tag = `bench${Date.now().toString(36)}`;
  const file = join(dir, 'contacts.csv');
  const lines = ['Record ID,First Name,Last Name,Email,Phone Number,Lifecycle Stage'];
  for (let n = 1; n <= ROWS; n++) lines.push(row(n, tag).cells.join(','));
  writeFileSync(file, `${lines.join('\n')}\n`);
  const megabytes = statSync(file).size / 1e6;

  // The raw loop: 1000-row requests, one after another, as the seed's importCustomers sends them.
  const rawKey = await business(`${tag}-raw`);
  const rawStarted = process.hrtime.bigint();
  for (let start = 1; start <= ROWS; start += BATCH) {
    const customers = [];
    for (let n = start; n < start + BATCH && n <= ROWS; n++) customers.push(row(n, `${tag}`).customer);
    const answer = await call('POST', '/api-customers-sync', { customers }, { 'x-api-key': rawKey });
    if (answer.results.failed) throw new Error(`raw batch at ${start}: ${JSON.stringify(answer.results).slice(0, 300)}`);
  }
  const rawSeconds = Number(process.hrtime.bigint() - rawStarted) / 1e9;

  const runs = [];
  for (const inFlight of [1, 4]) {
    const key = await business(`${tag}-cli-${inFlight}`);
    rmSync(`${file}.crm-edge-import.json`, { force: true });
    const result = await runCli(['import', 'customers', file, '--in-flight', String(inFlight)], key);
    if (result.summary.stored !== ROWS) throw new Error(`the tool stored ${result.summary.stored} of ${ROWS}: ${JSON.stringify(result.summary)}`);
    runs.push({ inFlight, ...result });
  }

  const rawRate = ROWS / rawSeconds;
  console.log(`\nImport of a ${ROWS.toLocaleString('en')}-row CSV (${megabytes.toFixed(1)} MB), 1000 rows a request, new customers`);
  console.log('| how | time | rows/s | ratio to the raw loop | peak memory |');
  console.log('| --- | --- | --- | --- | --- |');
  console.log(`| raw 1000-row requests, one at a time (baseline) | ${rawSeconds.toFixed(1)} s | ${rawRate.toFixed(0)} | 1.00 | - |`);
  for (const run of runs) {
    const rate = ROWS / run.seconds;
    console.log(`| crm-edge import customers --in-flight ${run.inFlight} | ${run.seconds.toFixed(1)} s | ${rate.toFixed(0)} | ${(rate / rawRate).toFixed(2)} | ${(run.peakKiB / 1024).toFixed(1)} MiB |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
