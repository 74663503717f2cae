// Benchmark: a business with 50,000 messages backed up and restored through the command-line
// tool into a deployment that has none of it (every row of it deleted from every shard, as a
// database that lost it would hold none), every row compared: each table's rows of the business,
// read before the backup and after the restore, are equal row for row (as SQLite holds them,
// rowids aside), but for what the restore's quarantine changes by design (accounts, connectors,
// webhooks and links paused; keys and sessions revoked unless --keep-access, which this run
// gives; deliveries and CRM work dead-lettered), whose rows are counted instead. Prints the
// file's size, the backup's and the restore's time and rows a second. BENCH_RESTORE_MESSAGES
// sets the message count (default 50,000).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, BASE, admin } from './lib.mjs';
import { d1, d1Reader, deleteEverywhere } from '../tests/e2e/store.mjs';
import { receiveWhatsapp, uniquePhone, whatsappAccount } from '../tests/e2e/receivers/webhook-api.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = process.env.CRM_EDGE_CLI || join(ROOT, 'target', 'cli', 'crm-edge');
const MESSAGES = Number(process.env.BENCH_RESTORE_MESSAGES ?? 50_000);
/** Tables whose rows the quarantine changes on purpose: compared by count. */
const QUARANTINED = new Set([
  'channel_accounts', 'crm_connectors', 'webhook_endpoints', 'knowledge_links', 'api_keys', 'console_sessions',
  'sso_tokens', 'webhook_deliveries', 'crm_sync_jobs', 'businesses',
]);
/** Tables the restore adds to (its own audit entries): every row before is there, and more. */
const GROWS = new Set(['audit_log']);

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(CLI, args, {
      env: { PATH: process.env.PATH, CRM_EDGE_CONFIG: join(ROOT, 'no-config'), CRM_EDGE_URL: BASE, CRM_EDGE_ADMIN_TOKEN: ADMIN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The business's tables (every table with a business_id), each with its rows' count and digest
 * (read through one reader a shard: a table's rows are megabytes). */
async function snapshot(id) {
  const reader = d1Reader();
  const tables = d1("SELECT m.name FROM sqlite_master m WHERE m.type = 'table' "
    + "AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = 'business_id')").map(([name]) => name);
  tables.push('businesses');
  // The directory's tables (where each business lives, which addresses are claimed) are the
  // deployment's, not the business's: a restore writes its entry anew.
  const directory = new Set(['business_shards', 'channel_addresses']);
  const held = {};
  for (const table of [...new Set(tables)].filter((name) => !directory.has(name)).sort()) {
    const column = table === 'businesses' ? 'id' : 'business_id';
    const columns = d1(`SELECT name FROM pragma_table_info('${table}') WHERE name NOT IN ('seq')`).map(([name]) => name);
    const order = columns.includes('id') ? 'id' : columns.join(', ');
    const rows = await reader.query(`SELECT ${columns.join(', ')} FROM ${table} WHERE ${column} = ? ORDER BY ${order}`, [id]);
    held[table] = { count: rows.length, digest: createHash('sha256').update(JSON.stringify(rows)).digest('hex') };
  }
  reader.close();
  return held;
}

const created = await admin('POST', '/admin/businesses', { name: `Restore bench ${Date.now()}`, default_country: 'IE' });
const key = (await admin('POST', `/admin/businesses/${created.id}/api-keys`, { name: 'bench' })).key;
const business = { id: created.id, key };
const whatsapp = await whatsappAccount(business);
await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'the first message' });
d1(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MESSAGES - 1})
    INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, created_us, updated_at)
    SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a'
      || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
      m.business_id, m.conversation_id, m.customer_id, m.channel, 'inbound',
      'message ' || n.i || ' of the restore bench, about the length of a customer''s message', 'received',
      m.created_us + n.i, m.updated_at
    FROM n, (SELECT * FROM messages WHERE business_id = ?) m`, [business.id]);
const before = await snapshot(business.id);
if (before.messages.count !== MESSAGES) throw new Error(`the business holds ${before.messages.count} messages, not ${MESSAGES}`);

const dir = mkdtempSync(join(tmpdir(), 'crm-edge-restore-'));
try {
  const file = join(dir, 'business.jsonl');
  let started = Date.now();
  const backup = await run(['--json', 'admin', 'backup', business.id, '--file', file]);
  if (backup.code !== 0) throw new Error(`backup: ${backup.stderr}`);
  const backupSeconds = (Date.now() - started) / 1000;
  const rows = Object.values(before).reduce((sum, table) => sum + table.count, 0);
  deleteEverywhere(business.id);
  started = Date.now();
  const restored = await run(['--json', 'admin', 'restore', '--file', file, '--keep-access']);
  if (restored.code !== 0) throw new Error(`restore: ${restored.stderr}`);
  const restoreSeconds = (Date.now() - started) / 1000;
  const after = await snapshot(business.id);
  const differ = Object.keys(before).filter((table) => {
    if (GROWS.has(table)) return after[table].count < before[table].count;
    if (QUARANTINED.has(table)) return before[table].count !== after[table].count;
    return before[table].digest !== after[table].digest || before[table].count !== after[table].count;
  });
  console.log(`restore bench: ${MESSAGES} messages, ${rows} rows of ${Object.keys(before).length} tables, a file of ${(statSync(file).size / 1e6).toFixed(1)} MB`);
  console.log(`  backup  ${backupSeconds.toFixed(1)} s (${Math.round(rows / backupSeconds)} rows/s)`);
  console.log(`  restore ${restoreSeconds.toFixed(1)} s (${Math.round(rows / restoreSeconds)} rows/s), through the command, page by page`);
  console.log(`  every row equal: ${differ.length === 0 ? 'yes' : `no: ${differ.join(', ')}`} (${Object.keys(before).length - QUARANTINED.size - GROWS.size} tables row for row, the quarantined ones by count, the audit log with the restore's entries added)`);
  if (differ.length > 0) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
