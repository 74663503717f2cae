// Benchmark: the write rate one database sustains under the ingest and sync mix, as the load rises.
//
// Each of `concurrency` clients loops for BENCH_WRITE_SECONDS (default 10) over one WhatsApp webhook
// of one message and one `/api-customers-sync` of BENCH_WRITE_SYNC (default 50) customers whose
// names change every time (so every sync writes), at 1, 2, 4, 8 and 16 clients in turn. For each
// step it sums the `[usage]` lines the stack logged in that window: rows written a second, D1's own
// SQL time a second of wall time (how busy the one database was), and the requests' rate.
//
// What it says, and what it cannot: on this machine the clients, workerd and SQLite share two
// cores, so the rate where it stops rising is this machine's ceiling, not D1's; the SQL share says
// how much of that ceiling was the database itself, and so how far the same database would go with
// the rest of the work elsewhere (rows a second over the share of time SQL took).
import { createHmac, randomUUID } from 'node:crypto';
import { admin, call, percentile, stackLog, usageSums } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_WRITE_SECONDS ?? 10);
const SYNC = Number(process.env.BENCH_WRITE_SYNC ?? 50);
const STEPS = (process.env.BENCH_WRITE_STEPS ?? '1,2,4,8,16').split(',').map(Number);

const business = await admin('POST', '/admin/businesses', { name: 'bench-write-rate', default_country: 'IE' });
await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, { name: 'bench' });
const appSecret = randomUUID();
const phoneNumberId = String(Date.now());
const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
  channel: 'whatsapp', provider: 'meta', address: phoneNumberId,
  secrets: { app_secret: appSecret, verify_token: 'v', access_token: 't' },
});

let sent = 0;
async function ingest() {
  const n = sent++;
  const message = {
    from: `35386${String(n % 5000).padStart(7, '0')}`,
    id: `wamid.${randomUUID()}`, timestamp: '1700000000', type: 'text', text: { body: `write-rate ${n}` },
  };
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { phone_number_id: phoneNumberId },
      contacts: [{ profile: { name: 'Bench' }, wa_id: message.from }], messages: [message],
    } }] }],
  });
  const signature = `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
  await call('POST', account.webhook_path, body, { 'x-hub-signature-256': signature });
}

let synced = 0;
async function sync() {
  const round = synced++;
  const customers = Array.from({ length: SYNC }, (_, n) => ({
    external_id: `WRITE-${(round * SYNC + n) % 20000}`,
    external_system: 'salesforce',
    name: `Customer ${round}-${n}`,
    email: `write.${(round * SYNC + n) % 20000}@example.com`,
  }));
  await call('POST', '/api-customers-sync', { customers }, { 'x-api-key': key });
}

/** The [usage] lines' sums in `log`: invocations, rows written and read, D1's SQL time. */
const sums = (log) => usageSums(log, '', ['rows_written', 'rows_read', 'd1_sql_us']);

const logBytes = () => Buffer.byteLength(stackLog(), 'utf8');

const rows = [];
for (const concurrency of STEPS) {
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the last step's background work settles
  const from = logBytes();
  const latencies = { ingest: [], sync: [] };
  const started = performance.now();
  const until = started + SECONDS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      for (const [name, task] of [['ingest', ingest], ['sync', sync]]) {
        const t0 = performance.now();
        await task();
        latencies[name].push(performance.now() - t0);
      }
    }
  }));
  const wall = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 1000)); // the last lines reach the log
  const used = sums(Buffer.from(stackLog(), 'utf8').subarray(from).toString('utf8'));
  for (const list of Object.values(latencies)) list.sort((a, b) => a - b);
  const sqlShare = used.d1_sql_us / 1e6 / wall;
  rows.push({
    concurrency,
    requests: (latencies.ingest.length + latencies.sync.length) / wall,
    written: used.rows_written / wall,
    sqlShare,
    ingestP50: percentile(latencies.ingest, 50),
    syncP50: percentile(latencies.sync, 50),
  });
}

const f = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`\nwrite rate of one database: the ingest and sync mix (1 message a webhook, ${SYNC} customers a sync), ${SECONDS} s a step`);
console.log('| clients | requests/s | rows written/s | D1 SQL time / wall time | ingest p50 | sync p50 | rows written/s if SQL were all the work |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const row of rows) {
  console.log(`| ${row.concurrency} | ${f(row.requests, 1)} | ${f(row.written)} | ${f(row.sqlShare * 100, 1)}% | ${f(row.ingestP50, 1)} ms | ${f(row.syncP50, 1)} ms | ${row.sqlShare > 0 ? f(row.written / row.sqlShare) : '-'} |`);
}
