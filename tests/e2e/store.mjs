// Direct access to the local stack's D1 databases and KV namespaces, for tests that must put the store in a state
// the API cannot produce (a corrupt row, a row from an older deployment), or must see everything a
// request left behind, not only what the API shows. It runs SQL through
// Python's sqlite3 on the files wrangler keeps under CRM_EDGE_STATE; workerd sees the change on
// its next query.
//
// Businesses are spread over several D1 databases (shards, docs/scaling.md), so a statement runs
// on every shard and the answers are put together as one database would give them: a business's
// rows are on one shard only; a count over them is the sum of each shard's (every shard answers
// one row of numbers); and what every shard has alike (the schema) is answered once.

import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The SQLite files wrangler keeps for a kind of store (`d1` or `kv`): one per database or namespace. */
function storeFiles(kind, object) {
  const state = process.env.CRM_EDGE_STATE;
  if (!state) throw new Error('CRM_EDGE_STATE is not set: run the tests through scripts/test');
  const dir = join(state, 'v3', kind, object);
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return []; // nothing of this kind was written yet
  }
  return names.filter((name) => name.endsWith('.sqlite') && name !== 'metadata.sqlite').map((name) => join(dir, name));
}

/** The D1 shards' files. */
function shardFiles() {
  const files = storeFiles('d1', 'miniflare-D1DatabaseObject');
  if (files.length === 0) throw new Error('no D1 database yet: is the stack running (scripts/dev)?');
  return files;
}

/** Each shard's rows for one statement, put together as one database would answer it. */
function merged(answers) {
  const aggregate = answers.every((rows) => rows.length === 1 && rows[0].every((value) => typeof value === 'number'));
  if (aggregate && answers.length > 1) {
    return [answers[0][0].map((_, column) => answers.reduce((sum, rows) => sum + rows[0][column], 0))];
  }
  const rows = [...answers[0]];
  const seen = new Set(rows.map((row) => JSON.stringify(row)));
  for (const more of answers.slice(1)) {
    const fresh = more.filter((row) => !seen.has(JSON.stringify(row)));
    rows.push(...fresh);
  }
  return rows;
}

function run(file, sql, params) {
  const out = execFileSync('python3', ['-c', RUNNER, file], { input: JSON.stringify([sql, params]) });
  return JSON.parse(out.toString('utf8'));
}

const RUNNER = `
import json, sqlite3, sys
sql, params = json.loads(sys.stdin.read())
db = sqlite3.connect(sys.argv[1], timeout=10)
rows = [list(row) for row in db.execute(sql, params)]
db.commit()
print(json.dumps(rows))
`;

/** Each D1 shard's rows for one statement, as arrays, shard by shard (in no particular order). */
export function d1Shards(sql, params = []) {
  return shardFiles().map((file) => run(file, sql, params));
}

/**
 * Runs one statement with positional `params` on every D1 shard; the rows it returns, as arrays.
 * An INSERT runs on the shard of the business it names (a parameter that is a business's id).
 */
export function d1(sql, params = []) {
  let files = shardFiles();
  if (/^\s*INSERT\b/i.test(sql)) {
    const ids = params.filter((param) => typeof param === 'string');
    const holding = files.filter((file) => ids.length > 0
      && run(file, `SELECT count(*) FROM businesses WHERE id IN (${ids.map(() => '?').join(', ')})`, ids)[0][0] > 0);
    if (holding.length === 1) files = holding;
  }
  return merged(files.map((file) => run(file, sql, params)));
}

/**
 * Deletes every row of the business from every shard, as a database that lost it would hold
 * none (a restore's starting point). Python's sqlite3 checks no foreign keys, so any order does.
 */
export function deleteEverywhere(businessId) {
  const tables = d1("SELECT m.name FROM sqlite_master m WHERE m.type = 'table' "
    + "AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = 'business_id')").map(([name]) => name);
  for (const table of tables) d1(`DELETE FROM ${table} WHERE business_id = ?`, [businessId]);
  d1('DELETE FROM businesses WHERE id = ?', [businessId]);
}

/**
 * Takes the write lock of the shard that holds `businessId`'s row and keeps it until the returned
 * `release()`: that database then answers its statements "database is locked" (SQLITE_BUSY: the
 * local simulator opens a transaction for reads too), as a D1 database that is busy or restarting
 * fails its callers.
 */
export async function holdShardOf(businessId) {
  const [file] = shardFiles().filter((candidate) =>
    run(candidate, 'SELECT count(*) FROM businesses WHERE id = ?', [businessId])[0][0] > 0);
  if (!file) throw new Error(`no shard holds business ${businessId}`);
  const child = spawn('python3', ['-u', '-c', HOLD, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`holding the shard's lock failed (${code})`)));
  });
  return {
    release: () => new Promise((resolve) => {
      child.once('exit', resolve);
      child.stdin.end();
    }),
  };
}

const HOLD = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
`;

/**
 * A reader of D1 that keeps one Python process and one connection open a shard, for a test that
 * reads the store after each of hundreds of requests (starting Python per statement costs a tenth
 * of a second or more). `query(sql, params)` resolves to the rows, as arrays; `close()` ends it.
 */
export function d1Reader() {
  const sessions = shardFiles().map(shardReader);
  return {
    async query(sql, params = []) {
      return merged(await Promise.all(sessions.map((session) => session.query(sql, params))));
    },
    close() {
      for (const session of sessions) session.close();
    },
  };
}

function shardReader(file) {
  const child = spawn('python3', ['-u', '-c', SESSION, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  let pending = '';
  child.stdout.on('data', (chunk) => {
    pending += chunk.toString('utf8');
    let end;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      const { resolve, reject } = waiting.shift();
      const answer = JSON.parse(line);
      if ('error' in answer) reject(new Error(`D1: ${answer.error}`));
      else resolve(answer.rows);
    }
  });
  child.on('exit', () => {
    for (const { reject } of waiting.splice(0)) reject(new Error('the D1 reader ended'));
  });
  // Python answers one statement at a time, in the order they were written.
  return {
    query(sql, params = []) {
      const answer = new Promise((resolve, reject) => waiting.push({ resolve, reject }));
      child.stdin.write(`${JSON.stringify([sql, params])}\n`);
      return answer;
    },
    close() {
      child.stdin.end();
    },
  };
}

const SESSION = `
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
for line in sys.stdin:
    sql, params = json.loads(line)
    try:
        print(json.dumps({"rows": [list(row) for row in db.execute(sql, params)]}), flush=True)
    except Exception as error:
        print(json.dumps({"error": str(error)}), flush=True)
`;

/**
 * The keys stored in any KV namespace (the auth cache, the webhook nonces) that start with
 * `prefix`. Each use of KV has its own key prefix, so the prefix says which namespace is meant;
 * miniflare names a namespace's file by a hash of its id, so every file is read.
 */
export function kvKeys(prefix) {
  return storeFiles('kv', 'miniflare-KVNamespaceObject').flatMap((file) =>
    run(file, 'SELECT key FROM _mf_entries WHERE key LIKE ?', [`${prefix}%`]).map(([key]) => key),
  );
}
