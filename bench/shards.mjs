// Benchmark: the same mixed load over 1, 2 and 4 shards in one run, and the rows each shard takes.
//
// Run on a stack of four shards (scripts/bench starts one: CRM_EDGE_SHARDS=4). BENCH_SHARDS_BUSINESSES
// businesses (default 8), each with a WhatsApp account and a key, are moved between phases with the
// operator's own move (`POST /admin/businesses/{id}/move`, step after step) so that business i lives
// on shard i mod S, for S = 1, 2, 4. In each phase every business has one client that loops for
// BENCH_SHARDS_SECONDS (default 15) over one WhatsApp webhook of one message and one
// `/api-customers-sync` of BENCH_SHARDS_SYNC (default 20) new customers. Rows written are counted
// on each shard's SQLite file as the rows its businesses' tables gained (every write of this mix
// inserts), before and after the phase.
//
// What it shows: the load divides (the busiest shard's share of the rows falls to 1/S). What it
// cannot: on this machine every shard runs on the same two cores, so the total rate does not
// rise with S; on Cloudflare each database writes on its own, and one database's ceiling (the
// write-rate bench) then holds per shard.
import { createHmac, randomUUID } from 'node:crypto';
import { admin, call, percentile, sleep } from './lib.mjs';
import { d1Shards } from '../tests/e2e/store.mjs';

const BUSINESSES = Number(process.env.BENCH_SHARDS_BUSINESSES ?? 8);
const SECONDS = Number(process.env.BENCH_SHARDS_SECONDS ?? 15);
const SYNC = Number(process.env.BENCH_SHARDS_SYNC ?? 20);
const PHASES = [1, 2, 4];

const shardFiles = d1Shards('SELECT 1').length;
if (shardFiles < Math.max(...PHASES)) {
  throw new Error(`the stack has ${shardFiles} shard(s); run it with CRM_EDGE_SHARDS=4 (scripts/bench does)`);
}

async function newBusiness(n) {
  const business = await admin('POST', '/admin/businesses', { name: `bench-shards-${n}`, default_country: 'IE' });
  await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, { name: 'bench' });
  const appSecret = randomUUID();
  const phoneNumberId = `${Date.now()}${n}`;
  const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'whatsapp', provider: 'meta', address: phoneNumberId,
    secrets: { app_secret: appSecret, verify_token: 'v', access_token: 't' },
  });
  return { id: business.id, key, appSecret, phoneNumberId, path: account.webhook_path, sent: 0, synced: 0 };
}

async function ingest(business) {
  const n = business.sent++;
  const message = {
    from: `35387${String(n % 5000).padStart(7, '0')}`,
    id: `wamid.${randomUUID()}`, timestamp: '1700000000', type: 'text', text: { body: `shards ${n}` },
  };
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { phone_number_id: business.phoneNumberId },
      contacts: [{ profile: { name: 'Bench' }, wa_id: message.from }], messages: [message],
    } }] }],
  });
  const signature = `sha256=${createHmac('sha256', business.appSecret).update(body).digest('hex')}`;
  await call('POST', business.path, body, { 'x-hub-signature-256': signature });
}

async function sync(business) {
  const round = business.synced++;
  const customers = Array.from({ length: SYNC }, (_, n) => ({
    external_id: `SHARDS-${round}-${n}`, external_system: 'salesforce',
    name: `Customer ${round}-${n}`, email: `shards.${round}.${n}@example.com`,
  }));
  await call('POST', '/api-customers-sync', { customers }, { 'x-api-key': business.key });
}

/** The shard (its number) the directory names for each business. */
function placements() {
  const rows = d1Shards('SELECT business_id, shard FROM business_shards').flat();
  return new Map(rows.map(([id, shard]) => [id, shard]));
}

/** Moves a business to `to` with the move's own steps. */
async function move(business, to) {
  let cursor = null;
  for (;;) {
    const step = await admin('POST', `/admin/businesses/${business.id}/move`, { to_shard: to, cursor });
    if (step.phase === 'done') return;
    if (step.wait_seconds > 0) await sleep(step.wait_seconds * 1000);
    cursor = step.cursor;
  }
}

/** Rows of the businesses' tables on each shard file. */
function rowsByFile() {
  const [tables] = d1Shards(
    "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = 'business_id' " +
      "AND m.name NOT IN ('business_shards', 'channel_addresses')",
  );
  const sql = `SELECT ${tables.map(([name]) => `(SELECT count(*) FROM ${name})`).join(' + ')}`;
  return d1Shards(sql).map(([[count]]) => count);
}

const businesses = [];
for (let n = 0; n < BUSINESSES; n += 1) businesses.push(await newBusiness(n));

const results = [];
for (const shards of PHASES) {
  const placed = placements();
  await Promise.all(businesses.map((business, n) => (placed.get(business.id) === n % shards ? null : move(business, n % shards))));
  // A moved business's isolates may still hold its pause for the directory's freshness.
  await sleep((Number(process.env.CRM_EDGE_DIRECTORY_FRESH_SECONDS ?? 60) + 2) * 1000);
  const before = rowsByFile();
  const times = [];
  let requests = 0;
  const started = performance.now();
  const end = started + SECONDS * 1000;
  await Promise.all(businesses.map(async (business) => {
    while (performance.now() < end) {
      for (const work of [ingest, sync]) {
        const t0 = performance.now();
        await work(business);
        times.push(performance.now() - t0);
        requests += 1;
      }
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const after = rowsByFile();
  const added = after.map((count, file) => count - before[file]).sort((a, b) => b - a);
  const total = added.reduce((sum, rows) => sum + rows, 0);
  times.sort((a, b) => a - b);
  results.push({
    shards, added, total, busiest: added[0] / total, rowsPerSecond: total / elapsed,
    requestsPerSecond: requests / elapsed, p50: percentile(times, 50),
  });
}

const base = results[0];
console.log('\n## Rows written per shard, the same load over 1, 2 and 4 shards (bench/shards.mjs)\n');
console.log(`${BUSINESSES} businesses, ${SECONDS} s a phase, one client each: a WhatsApp message and a sync of ${SYNC} new customers in turn.\n`);
console.log('| shards | rows written on each database | busiest share | busiest vs 1 shard | rows/s, all | requests/s | p50 ms |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const busiestRate = (r.added[0] / r.total) * r.rowsPerSecond;
  const baseRate = base.added[0] / base.total * base.rowsPerSecond;
  console.log(`| ${r.shards} | ${r.added.join(' / ')} | ${(r.busiest * 100).toFixed(0)}% | ${(busiestRate / baseRate).toFixed(2)}x | ` +
    `${r.rowsPerSecond.toFixed(0)} | ${r.requestsPerSecond.toFixed(1)} | ${r.p50.toFixed(0)} |`);
}
