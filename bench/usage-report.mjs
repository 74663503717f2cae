// Reads the `[usage]` lines the local stack logs at the end of every invocation (PLATFORM_LIMITS=
// enforce, shared/edge/src/platform/env.rs) from wrangler logs, and prints, per function and entry, the most
// any one invocation used against Cloudflare's per-invocation limits (shared/domain/src/platform.rs),
// and any `[limit]` line (an invocation refused as production would refuse it).
//
//   node bench/usage-report.mjs LOG... [--markdown]
//
// Exits 1 when a log holds a `[limit]` line.

import { readFileSync } from 'node:fs';

const LIMITS = { d1_queries: 1000, subrequests: 10_000, kv: 1000, peak_buffered: 64 * 1024 * 1024, wasm_memory: 128 * 1024 * 1024 };
const FIELDS = ['d1_queries', 'd1_round_trips', 'rows_read', 'rows_written', 'subrequests', 'kv', 'peak_buffered', 'wasm_memory'];

export function readUsage(texts) {
  const rows = new Map();
  const refused = [];
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const limit = line.indexOf('[limit] ');
      if (limit >= 0) refused.push(line.slice(limit).trim());
      const at = line.indexOf('[usage] ');
      if (at < 0) continue;
      const words = line.slice(at + 8).trim().split(/\s+/);
      const fields = Object.fromEntries(words.filter((w) => w.includes('=')).map((w) => w.split('=')).map(([k, v]) => [k, Number(v)]));
      const what = words.filter((w) => !w.includes('=')).join(' ');
      const row = rows.get(what) ?? { what, invocations: 0, ...Object.fromEntries(FIELDS.map((f) => [f, 0])) };
      row.invocations += 1;
      for (const field of FIELDS) row[field] = Math.max(row[field], fields[field] ?? 0);
      rows.set(what, row);
    }
  }
  return { rows: [...rows.values()].sort((a, b) => a.what.localeCompare(b.what)), refused };
}

const percent = (used, limit) => `${used} (${((100 * used) / limit).toFixed(1)}%)`;

export function markdown({ rows, refused }) {
  const out = [
    '| function, entry | invocations | max D1 queries (of 1,000) | max D1 round trips | max rows read | max rows written | max subrequests (of 10,000) | max KV ops (of 1,000) | max buffered bytes | max wasm memory (of 128 MiB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    out.push(
      `| ${row.what} | ${row.invocations} | ${percent(row.d1_queries, LIMITS.d1_queries)} | ${row.d1_round_trips} | ${row.rows_read} | ${row.rows_written} | ${percent(row.subrequests, LIMITS.subrequests)} | ${percent(row.kv, LIMITS.kv)} | ${row.peak_buffered} | ${percent(row.wasm_memory, LIMITS.wasm_memory)} |`,
    );
  }
  if (refused.length) out.push('', `Refused as production would refuse: ${refused.length}`, ...refused.slice(0, 20).map((line) => `- ${line}`));
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const logs = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
  const report = readUsage(logs.map((path) => readFileSync(path, 'utf8')));
  console.log(markdown(report));
  process.exit(report.refused.length ? 1 : 0);
}
