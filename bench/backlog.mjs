// Benchmark: a CRM backlog. BENCH_BACKLOG_JOBS customers (default 5,000) are created through
// /api-customers-sync while the local Kustomer is down, one customer.created job each; Kustomer
// stays down for BENCH_BACKLOG_OUTAGE_MS (default 10 minutes) from the moment it went down, then
// comes back. Measured: the time from Kustomer's return to the backlog drained (every customer in
// Kustomer, nothing pending), against the budget's own ceiling (the requests made after the
// return at the connector's BENCH_BACKLOG_PER_MINUTE a minute, default 1,200: the fastest any
// drain may go); duplicates in Kustomer (there must be none); `[limit]` lines (invocations
// production would refuse; there must be none); the most D1 queries and subrequests one
// crm-sync invocation made.
import { randomBytes } from 'node:crypto';
import { admin, call, kustomerBusiness, sleep, stackLog, usagePeak } from './lib.mjs';

const JOBS = Number(process.env.BENCH_BACKLOG_JOBS ?? 5_000);
const OUTAGE_MS = Number(process.env.BENCH_BACKLOG_OUTAGE_MS ?? 600_000);
const PER_MINUTE = Number(process.env.BENCH_BACKLOG_PER_MINUTE ?? 1_200);

const { kustomer, key, connector } = await kustomerBusiness({ per_minute: PER_MINUTE, per_second: null, per_day: null }, null);
const logFrom = stackLog().length;

await kustomer.down();
const downAt = Date.now();
const tag = randomBytes(4).toString('hex');
for (let at = 0; at < JOBS; at += 100) {
  const customers = Array.from({ length: Math.min(100, JOBS - at) }, (_, i) => ({
    name: `Backlog ${at + i}`,
    email: `${tag}-${at + i}@backlog.example`,
    external_id: `${tag}-${at + i}`,
  }));
  await call('POST', '/api-customers-sync', { customers }, { 'x-api-key': key });
}
const queuedIn = (Date.now() - downAt) / 1000;
for (;;) {
  const status = (await admin('GET', `/admin/connectors/${connector.id}`)).status;
  if (status.backlog >= JOBS) break;
  if (Date.now() - downAt > OUTAGE_MS) throw new Error(`only ${status.backlog} of ${JOBS} jobs were recorded during the outage`);
  await sleep(1000);
}
await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
await kustomer.up();
const upAt = Date.now();
// The sweep hands over overdue contacts every minute in production (the cron); the local stack
// has no cron, so it is run here once a minute as the cron would.
let lastSweep = 0;
for (;;) {
  if (Date.now() - lastSweep >= 60_000) {
    await admin('POST', '/admin/maintenance/sweep');
    lastSweep = Date.now();
  }
  const status = (await admin('GET', `/admin/connectors/${connector.id}`)).status;
  if (status.backlog === 0 && kustomer.customers.length >= JOBS) break;
  if (Date.now() - upAt > 60 * 60_000) throw new Error(`not drained an hour after Kustomer came back: ${JSON.stringify(status)}`);
  await sleep(1000);
}
const drained = (Date.now() - upAt) / 1000;
// A duplicate is a second create of one customer that Kustomer accepted, or that it refused as
// taken (its own guard, not ours).
const creates = kustomer.requests.filter((r) => r.method === 'POST' && r.path === '/v1/customers' && r.status !== null && r.status < 500 && r.status !== 429);
const created = creates.map((r) => r.body?.externalId);
const duplicates = created.length - new Set(created).size;
const log = stackLog(logFrom);
const limits = (log.match(/\[limit\] /g) ?? []).length;
const peak = usagePeak(log, 'crm-sync queue', ['d1_queries', 'subrequests']);
await kustomer.close();
// The budget counts requests, not jobs: a new customer is two (the lookup, then the create).
const requestsAfter = kustomer.requests.filter((r) => r.at >= upAt).length;
const ceiling = (requestsAfter / PER_MINUTE) * 60;
console.log(`## CRM backlog: ${JOBS} jobs after ${OUTAGE_MS / 60_000} minutes of Kustomer down`);
console.log(`recorded during the outage in ${queuedIn.toFixed(1)} s; drained ${drained.toFixed(0)} s after Kustomer came back`);
console.log(`budget ceiling ${PER_MINUTE}/min: ${ceiling.toFixed(0)} s for the ${requestsAfter} Kustomer requests made after it came back, so ${(drained / ceiling).toFixed(2)}x the ceiling`);
console.log(`in Kustomer: ${kustomer.customers.length} customers, ${duplicates} duplicates; [limit] lines: ${limits}`);
console.log(`crm-sync, most in one invocation (${peak.invocations} invocations): D1 queries ${peak.d1_queries} of 1,000, subrequests ${peak.subrequests}`);
if (duplicates || limits || kustomer.customers.length !== JOBS) process.exit(1);
