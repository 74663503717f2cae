// Direct access to the local stack's D1 database and KV namespaces, for tests that must put the store in a state
// the API cannot produce (a corrupt row, a row from an older deployment), or must see everything a
// request left behind, not only what the API shows. It runs SQL through
// Python's sqlite3 on the file wrangler keeps under CRM_EDGE_STATE; workerd sees the change on
// its next query.

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

/** The one SQLite file wrangler keeps for a kind of store that has a single instance (D1). */
function storeFile(kind, object) {
  const files = storeFiles(kind, object);
  if (files.length !== 1) throw new Error(`expected one ${kind} database, found ${files.length}: ${files.join(', ')}`);
  return files[0];
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

/** Runs one statement with positional `params` on D1; the rows it returns, as arrays. */
export function d1(sql, params = []) {
  return run(storeFile('d1', 'miniflare-D1DatabaseObject'), sql, params);
}

/**
 * A reader of D1 that keeps one Python process and one connection open, for a test that reads the
 * store after each of hundreds of requests (starting Python per statement costs a tenth of a
 * second or more). `query(sql, params)` resolves to the rows, as arrays; `close()` ends it.
 */
export function d1Reader() {
  const child = spawn('python3', ['-u', '-c', SESSION, storeFile('d1', 'miniflare-D1DatabaseObject')], { stdio: ['pipe', 'pipe', 'inherit'] });
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
