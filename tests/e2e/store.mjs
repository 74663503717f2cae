// Direct access to the local stack's D1 database and KV namespace, for tests that must put the store in a state
// the API cannot produce (a corrupt row, a row from an older deployment). It runs SQL through
// Python's sqlite3 on the file wrangler keeps under CRM_EDGE_STATE; workerd sees the change on
// its next query.

import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The one SQLite file wrangler keeps for a kind of store (`d1` or `kv`). */
function storeFile(kind, object) {
  const state = process.env.CRM_EDGE_STATE;
  if (!state) throw new Error('CRM_EDGE_STATE is not set: run the tests through scripts/test');
  const dir = join(state, 'v3', kind, object);
  const files = readdirSync(dir).filter((name) => name.endsWith('.sqlite') && name !== 'metadata.sqlite');
  if (files.length !== 1) throw new Error(`expected one database in ${dir}, found ${files.join(', ')}`);
  return join(dir, files[0]);
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

/** The keys stored in the KV namespace (the auth cache) that start with `prefix`. */
export function kvKeys(prefix) {
  const rows = run(storeFile('kv', 'miniflare-KVNamespaceObject'), 'SELECT key FROM _mf_entries WHERE key LIKE ?', [`${prefix}%`]);
  return rows.map(([key]) => key);
}
