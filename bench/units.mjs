// What an operation costs, as Cloudflare counts and bills it: every invocation of the local stack
// ends with a `[usage]` line (shared/edge/src/platform/meter.rs), and an operation's units are the sum over
// every invocation it caused (the gateway, the rate limiter's object, the function, and the queue
// consumers it fed) until the log has been quiet for a second and a half. The units are priced
// from the table the product itself uses (`crm-edge prices --json`, domain::pricing), at the
// margin: every unit at its price, the plan's monthly allowances left out (they are the
// account's, spent by the first of many businesses).
//
// What is billed:
// - a Worker request for each invocation from outside: the gateway's (every call and webhook
//   enters there), and each queue consumer's and cron's, counted as requests too though the
//   pricing page names only inbound ones; calls over a service binding are not billed;
// - D1's rows, and the KV, queue, R2 and Durable Object operations each usage line names
//   (shared/edge/src/platform/env.rs says which handle bills what);
// - a Durable Object's duration: 128 MB for as long as its invocation ran;
// - CPU time, which the local runtime cannot measure: priced at its bound, each invocation's time
//   less its waits on D1, which still holds its waits on every other call.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './lib.mjs';

if (!process.env.CRM_EDGE_STATE || !process.env.CRM_EDGE_CLI) throw new Error('CRM_EDGE_STATE and CRM_EDGE_CLI must be set (scripts/bench does)');
const LOG = join(process.env.CRM_EDGE_STATE, 'wrangler.log');
/** The counts the tables show, as the usage lines name them. */
export const FIELDS = ['d1_round_trips', 'd1_queries', 'rows_read', 'rows_written', 'subrequests', 'kv'];
/** The billed units a usage line names beyond D1's rows. */
export const BILLED = ['kv_reads', 'kv_writes', 'queue_operations', 'r2_class_a', 'r2_class_b', 'do_requests'];
const TIMES = ['elapsed_ms', 'd1_wait_ms'];

/** The price table: `as_of`, and picodollars per unit of each meter. */
export const PRICES = JSON.parse(execFileSync(process.env.CRM_EDGE_CLI, ['prices', '--json'], { encoding: 'utf8' }));
export const PICOS = Object.fromEntries(PRICES.meters.map((meter) => [meter.meter, meter.picodollars_each]));

/** Picodollars as dollars with three significant digits, written out: $0.0000401. */
export function dollars(picos) {
  if (picos === 0) return '$0';
  const value = picos / 1e12;
  return `$${value.toFixed(Math.min(14, Math.max(2, 2 - Math.floor(Math.log10(value)))))}`;
}

/** Waits until the stack's log has not grown for 1.5 s; returns its size. */
export async function quiet() {
  let size = statSync(LOG).size;
  for (let still = 0; still < 1500; still += 100) {
    await sleep(100);
    const now = statSync(LOG).size;
    if (now !== size) {
      size = now;
      still = -100;
    }
  }
  return size;
}

/** The sum of every usage line in the log's bytes from `from`: the counts, the billed units, and
 *  each invocation's name. */
export function usageSince(from) {
  const text = readFileSync(LOG).subarray(from).toString('utf8');
  const total = Object.fromEntries(FIELDS.map((field) => [field, 0]));
  const billed = Object.fromEntries([...BILLED, 'worker_requests', 'cpu_ms_bound', 'do_gb_seconds'].map((field) => [field, 0]));
  const invocations = [];
  for (const line of text.split('\n')) {
    const at = line.indexOf('[usage] ');
    if (at < 0) continue;
    const words = line.slice(at + 8).trim().split(/\s+/);
    const what = words.filter((word) => !word.includes('=')).join(' ');
    invocations.push(what);
    const counts = {};
    for (const word of words) {
      const [name, value] = word.split('=');
      if (name in total) total[name] += Number(value);
      if (BILLED.includes(name) || TIMES.includes(name)) counts[name] = Number(value);
    }
    for (const name of BILLED) billed[name] += counts[name] ?? 0;
    const [fn, entry] = what.split(' ');
    if ((fn === 'gateway' && entry === 'fetch') || entry === 'queue' || entry === 'cron') billed.worker_requests += 1;
    if (entry === 'object') billed.do_gb_seconds += ((counts.elapsed_ms ?? 0) / 1000) * 0.128;
    else billed.cpu_ms_bound += Math.max(0, (counts.elapsed_ms ?? 0) - (counts.d1_wait_ms ?? 0));
  }
  return { total, billed, invocations };
}

/** Runs `operation` `runs` times, each alone; the run with the median rows read, with its
 *  invocations and the counts in which the runs differed. */
export async function measure(name, operation, runs) {
  const measured = [];
  for (let run = 0; run < runs; run += 1) {
    const from = await quiet();
    await operation(run);
    await quiet();
    measured.push(usageSince(from));
  }
  measured.sort((a, b) => a.total.rows_read - b.total.rows_read || a.total.rows_written - b.total.rows_written);
  const median = measured[Math.floor(measured.length / 2)];
  const spread = FIELDS.filter((field) => measured.some((run) => run.total[field] !== median.total[field]));
  return { name, ...median, spread };
}

/** The marginal cost of a measured operation, in picodollars, by what it is billed for;
 *  `milliNeurons` adds Workers AI's. */
export function priced({ total, billed }, milliNeurons = 0) {
  const parts = {
    requests: billed.worker_requests * PICOS.worker_requests,
    d1: total.rows_read * PICOS.d1_rows_read + total.rows_written * PICOS.d1_rows_written,
    kv: billed.kv_reads * PICOS.kv_reads + billed.kv_writes * PICOS.kv_writes,
    queues: billed.queue_operations * PICOS.queue_operations,
    r2: billed.r2_class_a * PICOS.r2_class_a + billed.r2_class_b * PICOS.r2_class_b,
    objects: billed.do_requests * PICOS.do_requests + Math.round(billed.do_gb_seconds * PICOS.do_gb_seconds),
    ai: milliNeurons * PICOS.ai_milli_neurons,
    cpu_bound: Math.round(billed.cpu_ms_bound * PICOS.cpu_ms),
  };
  return { parts, sum: Object.values(parts).reduce((a, b) => a + b, 0) };
}

/** The units behind a measured operation's cost, in words. */
export function unitsOf({ total, billed }) {
  return [
    `${billed.worker_requests} req`, `${total.rows_read} read`, `${total.rows_written} written`,
    ...BILLED.filter((name) => billed[name] > 0).map((name) => `${billed[name]} ${name}`),
    `≤${billed.cpu_ms_bound} CPU ms`,
  ].join(', ');
}

/** The local embedder's address (the stack's log of it), which stands in for Workers AI. */
export function embedder() {
  const log = readFileSync(join(process.env.CRM_EDGE_STATE, 'embedder.log'), 'utf8');
  const url = log.match(/^listening on (\S+)/m)?.[1];
  if (!url) throw new Error('the embedder log names no address');
  return url;
}

/** The tokens the local embedder has embedded so far: its vocabulary is BERT's uncased
 *  WordPiece, as bge-small-en-v1.5's is, so these are the tokens Workers AI would bill. */
export async function embeddedTokens() {
  return (await (await fetch(`${embedder()}/usage`)).json()).embedded_tokens;
}

/** Thousandths of a neuron for `tokens` in and `out` tokens out of the model named like `name`. */
export function milliNeurons(name, tokens, out = 0) {
  const model = PRICES.models.find((m) => m.model.includes(name));
  return Math.ceil((tokens * model.neurons_per_million_input_tokens + out * model.neurons_per_million_output_tokens) / 1000);
}
