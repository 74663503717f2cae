// What the benchmarks share: calls to the running stack (scripts/bench sets CRM_EDGE_URL and
// CRM_EDGE_ADMIN_TOKEN), percentiles, search latency per mode, and the stack's [usage] lines.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startKustomer } from '../tests/e2e/crm/kustomer.mjs';

export const BASE = process.env.CRM_EDGE_URL;
export const ADMIN = process.env.CRM_EDGE_ADMIN_TOKEN;
if (!BASE || !ADMIN) throw new Error('CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)');

/** One JSON call (a string body is sent as it is); a non-2xx answer throws with its text. */
export async function call(method, path, body, headers = {}) {
  const response = await fetch(BASE + path, {
    signal: AbortSignal.timeout(120_000),
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

export const admin = (method, path, body) => call(method, path, body, { authorization: `Bearer ${ADMIN}` });
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

/** p50 and p99 (ms, at the client) of `queries` through `search(params)`, per mode, after one warm-up each. */
export async function searchLatency(search, params, queries, modes) {
  const latency = {};
  for (const mode of modes) {
    await search({ ...params, q: queries[0], mode });
    const times = [];
    for (const q of queries) {
      const t0 = performance.now();
      await search({ ...params, q, top_k: 5, mode });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    latency[mode] = { p50: percentile(times, 50), p99: percentile(times, 99) };
  }
  return latency;
}

/** The stack's log (STACK_LOG, set by scripts/lib.sh) so far, from byte `from`. */
export function stackLog(from = 0) {
  const path = process.env.STACK_LOG;
  if (!path) throw new Error('STACK_LOG must be set (scripts/bench does)');
  return readFileSync(path, 'utf8').slice(from);
}

/**
 * The most of each of `fields` that one invocation of `what` ("crm-sync queue") logged in its
 * [usage] line, in `log`; and how many invocations logged one.
 */
export function usagePeak(log, what, fields) {
  const peak = { invocations: 0, ...Object.fromEntries(fields.map((field) => [field, 0])) };
  for (const line of log.split('\n')) {
    const at = line.indexOf(`[usage] ${what} `);
    if (at < 0) continue;
    peak.invocations += 1;
    for (const [, name, value] of line.slice(at).matchAll(/(\w+)=(\d+)/g)) {
      if (name in peak && name !== 'invocations') peak[name] = Math.max(peak[name], Number(value));
    }
  }
  return peak;
}

/**
 * The sums of each of `fields` over the [usage] lines of `what` ("webhook-dispatcher queue"; ""
 * for every invocation) in `log`, and how many invocations logged one.
 */
export function usageSums(log, what, fields) {
  const total = { invocations: 0, ...Object.fromEntries(fields.map((field) => [field, 0])) };
  for (const line of log.split('\n')) {
    const at = line.indexOf(`[usage] ${what}`);
    if (at < 0) continue;
    total.invocations += 1;
    for (const [, name, value] of line.slice(at).matchAll(/(\w+)=(\d+)/g)) {
      if (name in total && name !== 'invocations') total[name] += Number(value);
    }
  }
  return total;
}

/**
 * A business with an API key (its own rate limit the highest: the benches measure the stack),
 * connected to a new local Kustomer org with the connector budget `rateLimit` and Kustomer's own
 * limit `kustomerLimit` (null: none).
 */
export async function kustomerBusiness(rateLimit, kustomerLimit) {
  const apiKey = `ey${randomBytes(12).toString('hex')}`;
  const kustomer = await startKustomer({
    apiKeys: { [apiKey]: { org: randomBytes(12).toString('hex'), user: { name: 'bench', email: 'bench@example.com' } } },
    rateLimit: kustomerLimit,
  });
  const business = await admin('POST', '/admin/businesses', { name: `bench-kustomer-${Date.now()}`, default_country: 'IE' });
  await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, {});
  const connector = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'kustomer',
    settings: { base_url: kustomer.url },
    secrets: { api_key: apiKey },
    rate_limit: rateLimit,
  });
  return { kustomer, business, key, connector };
}
