// Checks the claims the README and docs/ make about the code's structure, so they stay true:
//   - no import cycles between the files of a Rust crate (tests left out: a file's
//     `#[cfg(test)]` part may use anything);
//   - SQL only in shared/edge/src/db/ (one home per table);
//   - edge's top level is its wings, and runtime/, platform/ and db/ use none of the services';
//   - every public module is named on the maps (a crate's lib.rs tour, docs/architecture.md);
//   - a function serves its endpoints through the wiring that routes by its declaration and
//     checks the caller it names (edge::platform::call::serve), never through bare http::serve;
//   - every repository path the README names in backticks exists;
//   - every relative link of the README and docs/*.md reaches a file, and its #anchor a heading;
//   - the counts the README states (functions, openapi.json's paths and operations, migrations)
//     are the real ones, and so are those TESTING.md states (tests per layer, counted from the
//     sources; the files of shared/edge with no test of their own);
//   - the guides' catalog (tests/e2e/guides/blocks.mjs) names tests that exist, docs/guides.md's
//     table is the one made from it, and, where the guides are present, their fenced blocks are
//     the catalog's (count and SHA-256).
// Run by scripts/test; `node scripts/check-structure.mjs` alone prints what it found.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const failures = [];

/** The .rs files under `dir`, recursively, but the test-only modules (see `testOnly`). */
function rustFiles(dir) {
  const all = allRustFiles(dir);
  const tests = testOnly(all);
  return all.filter((file) => !tests.has(file));
}

function allRustFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return allRustFiles(path);
    return name.endsWith('.rs') ? [path] : [];
  });
}

/**
 * The files of modules declared `#[cfg(test)] mod name;` (a crate's test fixtures), and everything
 * below them: like a file's own `#[cfg(test)] mod tests`, they may use anything.
 */
function testOnly(files) {
  const tests = new Set();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const isModRoot = /(^|\/)(mod|lib|main)\.rs$/.test(file);
    const dir = isModRoot ? dirname(file) : file.replace(/\.rs$/, '');
    for (const [, name] of text.matchAll(/#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;/g)) {
      for (const candidate of [join(dir, `${name}.rs`), join(dir, name, 'mod.rs')]) tests.add(candidate);
      for (const other of files) if (other.startsWith(join(dir, name) + '/')) tests.add(other);
    }
  }
  return tests;
}

/** A file's text before its unit tests (`#[cfg(test)] mod tests`): only they may use anything. */
function withoutTests(path) {
  const text = readFileSync(path, 'utf8');
  const at = text.search(/#\[cfg\(test\)\]\s*mod\s+tests\b/);
  return at < 0 ? text : text.slice(0, at);
}

/** The module path of a file of the crate rooted at `src` (`crm/krayin/api.rs` → `crm::krayin::api`). */
function modulePath(src, path) {
  const parts = relative(src, path).replace(/\.rs$/, '').split('/');
  const last = parts.at(-1);
  if (last === 'mod' || ((last === 'lib' || last === 'main') && parts.length === 1)) parts.pop();
  return parts;
}

/**
 * What each module file re-exports and renames: `pub use d1::{Db, Shard};` makes `db::Db` the item
 * of `db::d1`, and `use native as imp;` makes `imp` another name of the module `native` (both halves
 * of a `cfg` count). Keyed by file, then by the name as the file offers it, each to the full module
 * paths it stands for.
 */
function namesOf(src, files, byModule) {
  const names = new Map();
  for (const file of files) {
    const here = modulePath(src, file);
    const text = withoutTests(file).replace(/\/\/.*$/gm, '');
    const own = new Map();
    const add = (name, full) => own.set(name, [...(own.get(name) ?? []), full]);
    const absolute = (path) => {
      const parts = path.split('::').filter(Boolean);
      if (parts[0] === 'crate') return parts.slice(1);
      let base = [...here];
      let at = 0;
      while (parts[at] === 'super') {
        base = base.slice(0, -1);
        at += 1;
      }
      if (parts[at] === 'self') at += 1;
      else if (at === 0 && !byModule.has([...here, parts[0]].join('::'))) return null;
      return [...base, ...parts.slice(at)];
    };
    for (const [, path, alias] of text.matchAll(/^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([\w:]+?)\s+as\s+(\w+)\s*;/gm)) {
      const full = absolute(path);
      if (full) add(alias, full);
    }
    for (const [, head, group] of text.matchAll(/^\s*pub(?:\([^)]*\))?\s+use\s+([\w:]+?)::\{([^;]*?)\};/gm)) {
      const base = absolute(head);
      if (!base) continue;
      for (const item of group.split(',').map((item) => item.trim()).filter(Boolean)) {
        const [name, alias] = item.split(/\s+as\s+/);
        if (name === 'self' || name.includes('{')) continue;
        add(alias ?? name.split('::').at(-1), [...base, ...name.split('::')]);
      }
    }
    for (const [, path, alias] of text.matchAll(/^\s*pub(?:\([^)]*\))?\s+use\s+([\w:]+::\w+)(?:\s+as\s+(\w+))?\s*;/gm)) {
      const full = absolute(path);
      if (full) add(alias ?? full.at(-1), full);
    }
    names.set(file, own);
  }
  return names;
}

/**
 * The files a full module path (`db::Db`, `runtime::Request`) reaches: the file of its longest
 * module, or, where that module re-exports or renames the next name, the files that name stands
 * for, followed as far as they go.
 */
function filesOf(full, byModule, names, depth = 0) {
  for (let n = full.length; n >= 0; n -= 1) {
    const file = byModule.get(full.slice(0, n).join('::'));
    if (!file) continue;
    const next = full[n];
    const standsFor = next === undefined || depth > 16 ? undefined : names.get(file)?.get(next);
    if (!standsFor) return [file];
    return standsFor.flatMap((target) => filesOf([...target, ...full.slice(n + 1)], byModule, names, depth + 1));
  }
  return [];
}

/**
 * The crate's files as a graph: an edge from a file to each file of the same crate whose items it
 * names (`crate::a::b::Item`, `super::x`, `self::y`), by the longest module path that is a file,
 * through re-exports (`pub use`) and renamed modules to the file that holds the item.
 */
function importGraph(src) {
  const files = rustFiles(src);
  const byModule = new Map(files.map((file) => [modulePath(src, file).join('::'), file]));
  const names = namesOf(src, files, byModule);
  const graph = new Map();
  for (const file of files) {
    const here = modulePath(src, file);
    const isModRoot = /(^|\/)(mod|lib|main)\.rs$/.test(file);
    const targets = new Set();
    // Paths inside `use` groups are flattened: `use crate::a::{b, c::D}` names crate::a::b and crate::a::c::D.
    const text = withoutTests(file).replace(/\/\/.*$/gm, '');
    const paths = [];
    for (const [, head, group] of text.matchAll(/\b((?:crate|super|self)(?:::\w+)*)::\{([^;]*?)\};/g)) {
      for (const item of group.split(',')) paths.push(`${head}::${item.trim().split(/\s|::\{/)[0]}`);
    }
    for (const [path] of text.matchAll(/\b(?:crate|super|self)(?:::\w+)+/g)) paths.push(path);
    for (const path of paths) {
      const parts = path.split('::').filter(Boolean);
      let base = [...here];
      let at = 0;
      if (parts[0] === 'crate') {
        base = [];
        at = 1;
      } else {
        while (parts[at] === 'super') {
          base = base.slice(0, -1);
          at += 1;
        }
        if (parts[at] === 'self') at += 1;
      }
      const full = [...base, ...parts.slice(at)];
      for (const target of filesOf(full, byModule, names)) {
        // A module naming its own submodules (declaring them, re-exporting their items) is how
        // Rust builds the tree, not a dependency: only the other direction counts.
        const within = modulePath(src, target);
        const child = isModRoot && within.length > here.length && here.every((part, i) => within[i] === part);
        if (target !== file && !child) targets.add(target);
      }
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The cycles of a graph, one per strongly connected component of more than one file (Tarjan). */
function cycles(graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (node) => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node), low.get(next)));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node), index.get(next)));
    }
    if (low.get(node) === index.get(node)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component);
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

const crates = ['shared/domain/src', 'shared/edge/src', 'cli/src', 'tools/embedder/src', ...readdirSync(join(ROOT, 'functions')).map((name) => `functions/${name}/src`)];
for (const crate of crates) {
  const src = join(ROOT, crate);
  if (!existsSync(src)) continue;
  for (const cycle of cycles(importGraph(src))) {
    failures.push(`import cycle in ${crate}: ${cycle.map((file) => relative(src, file)).sort().join(' <-> ')}`);
  }
}

// Edge's top level is its wings: lib.rs, and folders only (each a concern's modules). The lower
// three (runtime/, platform/, db/) stand beneath the services: none of their files names anything
// of messaging/, events/, ops/, crm/, knowledge/ or bot/ (their tests and the tests' fixture may).
const EDGE = join(ROOT, 'shared/edge/src');
const LOWER_WINGS = ['runtime', 'platform', 'db'];
const SERVICE_WINGS = ['messaging', 'events', 'ops', 'crm', 'knowledge', 'bot'];
for (const name of readdirSync(EDGE)) {
  if (name !== 'lib.rs' && !statSync(join(EDGE, name)).isDirectory()) {
    failures.push(`shared/edge/src/${name} is at edge's top level: put it in its wing (docs/architecture.md)`);
  }
}
const wingOf = (file) => relative(EDGE, file).split('/')[0];
for (const [file, targets] of importGraph(EDGE)) {
  if (!LOWER_WINGS.includes(wingOf(file))) continue;
  for (const target of targets) {
    if (SERVICE_WINGS.includes(wingOf(target))) {
      failures.push(`shared/edge/src/${relative(EDGE, file)} uses ${relative(EDGE, target)}: ${wingOf(file)}/ stands beneath the services`);
    }
  }
}

// Every public module is on the maps: each of edge's top-level modules in its lib.rs tour, and
// by name in docs/architecture.md's map each module of domain's top level, of edge's, and of each
// of edge's wings but db/ (whose modules are its tables, mapped as `db/<table>.rs`).
const pubMods = (file) => [...withoutTests(file).matchAll(/^\s*pub mod (\w+)\s*;/gm)].map(([, name]) => name);
const tourOf = (file) => [...readFileSync(file, 'utf8').matchAll(/^\/\/!.*$/gm)].map(([line]) => line).join('\n');
const MAP = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8').split('```')[1] ?? '';
const mapNames = new Set([...MAP.matchAll(/\b\w+\b/g)].map(([word]) => word));
for (const crate of ['shared/domain/src', 'shared/edge/src']) {
  const lib = join(ROOT, crate, 'lib.rs');
  const tour = tourOf(lib);
  for (const name of pubMods(lib)) {
    if (crate === 'shared/edge/src' && !new RegExp(`\\b${name}\\b`).test(tour)) {
      failures.push(`${crate}/lib.rs's tour does not name its module ${name}`);
    }
    if (!mapNames.has(name)) failures.push(`docs/architecture.md's map does not name ${crate}'s module ${name}`);
  }
}
for (const wing of [...LOWER_WINGS, ...SERVICE_WINGS].filter((wing) => wing !== 'db')) {
  const root = join(EDGE, wing, 'mod.rs');
  if (!existsSync(root)) continue;
  for (const name of pubMods(root)) {
    if (!mapNames.has(name)) failures.push(`docs/architecture.md's map does not name edge's ${wing}::${name}`);
  }
}

// SQL lives in the table modules only.
const SQL = /(?:r#?|b)?"\s*(?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (?:TABLE|INDEX))\b/;
for (const crate of crates) {
  const src = join(ROOT, crate);
  if (!existsSync(src)) continue;
  for (const file of rustFiles(src)) {
    if (file.startsWith(join(ROOT, 'shared/edge/src/db/'))) continue;
    // Salesforce's queries are SOQL, sent to the CRM: not D1's SQL, and built in its module.
    if (file.startsWith(join(ROOT, 'shared/domain/src/crm/salesforce/'))) continue;
    if (SQL.test(withoutTests(file))) failures.push(`SQL outside shared/edge/src/db/: ${relative(ROOT, file)}`);
  }
}

// A function's requests go through the wiring that routes them by its endpoints' declaration and
// checks the caller it declares (edge::platform::call::serve, or serve_or). One routes by hand, for a
// reason: the gateway, which forwards every other path and authenticates nothing.
const ROUTES_BY_HAND = new Set(['gateway']);
for (const name of readdirSync(join(ROOT, 'functions'))) {
  const src = join(ROOT, 'functions', name, 'src');
  if (!existsSync(src) || ROUTES_BY_HAND.has(name)) continue;
  for (const file of rustFiles(src)) {
    const code = withoutTests(file);
    if (/\bhttp::serve\(/.test(code)) {
      failures.push(`${relative(ROOT, file)} serves requests through bare http::serve: use edge::platform::call::serve`);
    }
    if (/event\(fetch\)/.test(code) && !/\bcall::serve(_or)?\(/.test(code)) {
      failures.push(`${relative(ROOT, file)} answers requests without edge::platform::call::serve, which routes by its declaration`);
    }
  }
}

// The README and docs/ as prose: fenced code blocks left out, and inline code spans kept apart
// from the text around them.
const README = 'README.md';
const DOCS = [README, ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

/** A markdown file's lines outside fenced code blocks, each with its line number. */
function proseLines(file) {
  let fenced = false;
  return readFileSync(join(ROOT, file), 'utf8').split('\n').flatMap((line, at) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return [];
    }
    return fenced ? [] : [{ line, number: at + 1 }];
  });
}

/** The inline code spans of a line (`like this`). */
const codeSpans = (line) => [...line.matchAll(/(`+)(.+?)\1/g)].map(([, , span]) => span.trim());

/** The anchors GitHub gives a file's headings: lowercase, punctuation dropped, spaces as hyphens. */
function anchorsOf(file) {
  const anchors = new Set();
  const seen = new Map();
  for (const { line } of proseLines(file)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

// Every repository path the README names in backticks exists: `functions/`, `scripts/dev`,
// `openapi.json`, and for a pattern such as `shared/edge/src/db/<table>.rs` the folder before the
// pattern. A word of a span is a path when it has a `/` or a file's extension, starts with a
// letter, a digit, `_` or `.` (not a route such as `/api-…`, a quoted string or `~/…`), is not a
// URL, an assignment or a media type, and is not under what the build and the local stack make
// (ignored by git, absent from a fresh clone).
const EXTENSION = /\.(md|json|toml|lock|rs|mjs|js|sh|py|sql|txt|yaml|yml)$/;
const MEDIA_TYPE = /^(application|text|image|audio|video|multipart)\//;
const GENERATED = /^(target|node_modules|\.wrangler|\.models|\.venv)(\/|$)/;
for (const { line, number } of proseLines(README)) {
  for (const word of codeSpans(line).flatMap((span) => span.split(/\s+/))) {
    if (!word.includes('/') && !EXTENSION.test(word)) continue;
    if (!/^[\w.]/.test(word) || /:\/\/|=/.test(word) || MEDIA_TYPE.test(word) || GENERATED.test(word)) continue;
    const pattern = word.search(/[<{*]/);
    const path = pattern < 0 ? word : word.slice(0, word.lastIndexOf('/', pattern) + 1);
    if (path && !existsSync(join(ROOT, path))) failures.push(`${README}:${number} names \`${word}\`, which does not exist`);
  }
}

// Every relative link of the README and docs/ reaches a file, and its #anchor a heading there.
for (const file of DOCS) {
  for (const { line, number } of proseLines(file)) {
    const text = line.replace(/(`+).+?\1/g, '');
    for (const [, target] of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split('#');
      const linked = path ? join(dirname(file), decodeURIComponent(path)) : file;
      if (!existsSync(join(ROOT, linked))) {
        failures.push(`${file}:${number} links to ${target}: there is no ${linked}`);
      } else if (anchor !== undefined && linked.endsWith('.md') && !anchorsOf(linked).has(decodeURIComponent(anchor))) {
        failures.push(`${file}:${number} links to ${target}: ${linked} has no heading #${anchor}`);
      }
    }
  }
}

// The counts the README states are the real ones: functions (functions.toml's
// `[functions.<name>]` tables), openapi.json's paths and operations, migrations/'s migrations.
const readme = proseLines(README).map(({ line }) => line).join('\n');
const openapi = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8'));
const OPERATIONS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const counts = {
  functions: [...readFileSync(join(ROOT, 'functions.toml'), 'utf8').matchAll(/^\[functions\.[\w-]+\]\s*$/gm)].length,
  paths: Object.keys(openapi.paths).length,
  operations: Object.values(openapi.paths).flatMap((item) => Object.keys(item).filter((key) => OPERATIONS.includes(key))).length,
  migrations: readdirSync(join(ROOT, 'migrations')).filter((name) => name.endsWith('.sql')).length,
};
for (const [noun, real] of Object.entries(counts)) {
  const stated = [...readme.matchAll(new RegExp(`\\b(\\d[\\d,]*)\\s+${noun}\\b`, 'g'))].map(([, n]) => Number(n.replace(/,/g, '')));
  if (stated.length === 0) failures.push(`${README} no longer states the number of ${noun} (${real}) as "${real} ${noun}"`);
  for (const n of stated) if (n !== real) failures.push(`${README} says ${n} ${noun}; there are ${real}`);
}

// The counts TESTING.md states, counted from the sources as a reader counts them: the tests of each
// layer (its table's `tests` column), the Rust crates' other unit tests ("unit tests besides (N)"),
// and the files of shared/edge with no test of their own.
const TESTING = 'TESTING.md';

/** The `#[test]` functions of the .rs files under `dirs` (those that exist), but an `#[ignore]`d one. */
function rustTests(...dirs) {
  return dirs
    .filter((dir) => existsSync(join(ROOT, dir)))
    .flatMap((dir) => allRustFiles(join(ROOT, dir)))
    .reduce((sum, file) => sum + [...readFileSync(file, 'utf8').matchAll(/#\[test\](?!\s*#\[ignore\b)/g)].length, 0);
}

/**
 * JavaScript source as tokens, enough to count its tests (not a parser): names, numbers and
 * punctuation; a string, template or regular expression as one token; comments left out. From
 * `start`; inside a template's `${`, it stops at the `}` that closes it and says where.
 */
function jsTokens(text, start = 0, inTemplate = false) {
  const tokens = [];
  const push = (kind, value) => tokens.push({ kind, value });
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i += 1;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (text.startsWith('/*', i)) {
      i = text.indexOf('*/', i + 2) + 2;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j += 2;
        else if (c === '`' && text.startsWith('${', j)) j = jsTokens(text, j + 2, true).end + 1;
        else j += 1;
      }
      push('string', text.slice(i + 1, j));
      i = j + 1;
    } else if (c === '/' && !dividesAfter(tokens.at(-1))) {
      let j = i + 1;
      for (let inClass = false; j < text.length && (inClass || text[j] !== '/'); j += 1) {
        if (text[j] === '\\') j += 1;
        else if (text[j] === '[') inClass = true;
        else if (text[j] === ']') inClass = false;
      }
      j += 1;
      while (/[a-z]/.test(text[j] ?? '')) j += 1;
      push('regex', text.slice(i, j));
      i = j;
    } else {
      const word = /^(?:[A-Za-z_$][\w$]*|\d[\w.]*)/.exec(text.slice(i, i + 256));
      const value = word?.[0] ?? ['...', '=>', '?.', '++', '--'].find((p) => text.startsWith(p, i)) ?? c;
      if (inTemplate && value === '}' && depth === 0) return { tokens, end: i };
      if (inTemplate && (value === '{' || value === '}')) depth += value === '{' ? 1 : -1;
      push(word ? 'name' : 'punct', value);
      i += value.length;
    }
  }
  return { tokens, end: i };
}

/** Whether a `/` after this token divides (else it starts a regular expression). */
function dividesAfter(token) {
  if (!token) return false;
  if (token.kind === 'name') return !['return', 'typeof', 'case', 'of', 'in', 'void', 'delete', 'throw', 'new'].includes(token.value);
  return token.kind !== 'punct' || token.value === ')' || token.value === ']';
}

/** The index of the bracket that closes the one at `at`. */
function closing(tokens, at) {
  let depth = 0;
  for (let i = at; i < tokens.length; i += 1) {
    if (tokens[i].kind !== 'punct') continue;
    if ('([{'.includes(tokens[i].value)) depth += 1;
    else if (')]}'.includes(tokens[i].value) && --depth === 0) return i;
  }
  return tokens.length;
}

/**
 * The items of the array literal whose `[` is at `at`: each item at its top level, and an item
 * `...[a, b].map(…)` or `...NAME` as many as it spreads. Null when that cannot be told.
 */
function arrayLength(tokens, at, lists) {
  const end = closing(tokens, at);
  let count = 0;
  let item = [];
  const settle = () => {
    if (item.length > 0 && item[0].value === '...') {
      const literal = item[1]?.value === '[';
      const spread = literal ? arrayLength(item, 1, lists) : listLength(item[1]?.value, lists);
      const rest = item.slice(literal ? closing(item, 1) + 1 : 2);
      if (spread === null || !(rest.length === 0 || (rest[0].value === '.' && rest[1]?.value === 'map'))) return false;
      count += spread;
    } else if (item.length > 0) count += 1;
    item = [];
    return true;
  };
  for (let i = at + 1; i < end; i += 1) {
    if (tokens[i].kind === 'punct' && tokens[i].value === ',') {
      if (!settle()) return null;
    } else if (tokens[i].kind === 'punct' && '([{'.includes(tokens[i].value)) {
      const close = closing(tokens, i);
      item.push(...tokens.slice(i, close + 1));
      i = close;
    } else item.push(tokens[i]);
  }
  return settle() ? count : null;
}

/** The items of the file's constant `name`, when it is an array literal; else null. */
function listLength(name, lists) {
  const list = lists.get(name);
  return list ? arrayLength(list.tokens, list.at, lists) : null;
}

/**
 * The tests a node:test file declares: each `test(` or `it(` call once, times the items of every
 * `for (… of LIST)` around it, where LIST is an array literal or a constant holding one. A call in
 * a loop that cannot be sized so makes the count null, with the loop to say why.
 */
function jsTests(text) {
  const { tokens } = jsTokens(text);
  const lists = new Map();
  for (let i = 0; i + 3 < tokens.length; i += 1) {
    const [keyword, name, equals, open] = tokens.slice(i, i + 4);
    if (['const', 'let'].includes(keyword.value) && name.kind === 'name' && equals.value === '=' && open.value === '[' && !lists.has(name.value)) {
      lists.set(name.value, { tokens, at: i + 3 });
    }
  }
  const loops = [];
  let count = 0;
  for (let i = 0; i < tokens.length; i += 1) {
    while (loops.length > 0 && loops.at(-1).end < i) loops.pop();
    const { kind, value } = tokens[i];
    if (kind !== 'name' || tokens[i + 1]?.value !== '(' || tokens[i - 1]?.value === '.') continue;
    if (value === 'for' || value === 'while') {
      const close = closing(tokens, i + 1);
      const header = tokens.slice(i + 2, close);
      const of = header.findIndex((token) => token.kind === 'name' && token.value === 'of');
      const list = of < 0 || value !== 'for' ? [] : header.slice(of + 1);
      let times = null;
      if (list.length === 1 && list[0].kind === 'name') times = listLength(list[0].value, lists);
      else if (list[0]?.value === '[' && closing(list, 0) === list.length - 1) times = arrayLength(list, 0, lists);
      const end = tokens[close + 1]?.value === '{' ? closing(tokens, close + 1) : tokens.findIndex((token, at) => at > close && token.value === ';');
      loops.push({ end, times, header: `${value} (${header.map((token) => token.value).join(' ')})` });
      i = close;
    } else if (value === 'test' || value === 'it') {
      const unsized = loops.find((loop) => loop.times === null);
      if (unsized) return { count: null, why: `a test inside \`${unsized.header}\`, whose items are not written out in the file` };
      count += loops.reduce((times, loop) => times * loop.times, 1);
    }
  }
  return { count };
}

/** The tests of the node:test files (`*.test.mjs`) under `dir`, or null and why. */
function nodeTests(dir) {
  const files = (function walk(at) {
    return readdirSync(at).flatMap((name) => {
      const path = join(at, name);
      if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'screenshots' ? [] : walk(path);
      return name.endsWith('.test.mjs') ? [path] : [];
    });
  })(join(ROOT, dir));
  let count = 0;
  for (const file of files) {
    const found = jsTests(readFileSync(file, 'utf8'));
    if (found.count === null) return { count: null, why: `${relative(ROOT, file)} has ${found.why}` };
    count += found.count;
  }
  return { count };
}

const testing = readFileSync(join(ROOT, TESTING), 'utf8');
const functionsDirs = readdirSync(join(ROOT, 'functions')).map((name) => `functions/${name}`);
const LAYERS = {
  'domain unit tests': () => ({ count: rustTests('shared/domain/src') }),
  'edge unit tests': () => ({ count: rustTests('shared/edge/src') }),
  'whole paths': () => ({ count: rustTests('tests/pipelines/src') }),
  'end-to-end tests': () => nodeTests('tests/e2e'),
  'browser tests': () => nodeTests('tests/browser'),
};
for (const [layer, count] of Object.entries(LAYERS)) {
  const row = new RegExp(`^\\| ${layer} \\|.*\\| ([^|]*?) \\|\\s*$`, 'm').exec(testing);
  if (!row) {
    failures.push(`${TESTING} has no row "| ${layer} |" in its table of layers`);
    continue;
  }
  // An exact number must be the real one; a count the sources cannot tell is stated as "about N".
  const stated = /^\d{1,3}(?:,\d{3})+|^\d+/.exec(row[1])?.[0];
  const real = count();
  if (real.count === null && stated !== undefined) {
    failures.push(`${TESTING}: the ${layer}' row says ${stated}, which cannot be counted from the sources (${real.why}): write the list out, or say "about ${stated}"`);
  } else if (real.count !== null && stated === undefined) {
    failures.push(`${TESTING}: the ${layer}' row states no exact number of tests; there are ${real.count}`);
  } else if (real.count !== null && Number(stated.replace(/,/g, '')) !== real.count) {
    failures.push(`${TESTING}: the ${layer}' row says ${stated}; there are ${real.count}`);
  }
}
const besides = /unit tests besides \(([\d,]+)\)/.exec(testing);
const ownTests = rustTests(...['cli', 'tools/embedder', 'tools/contract', ...functionsDirs].flatMap((dir) => [`${dir}/src`, `${dir}/tests`]));
if (!besides) failures.push(`${TESTING} no longer states the functions', the command-line tool's and tools/' own unit tests as "unit tests besides (${ownTests})"`);
else if (Number(besides[1].replace(/,/g, '')) !== ownTests) failures.push(`${TESTING} says the functions, the command-line tool and tools/ have ${besides[1]} unit tests besides; there are ${ownTests}`);
const untested = rustFiles(join(ROOT, 'shared/edge/src')).filter((file) => !/#\[test\]/.test(readFileSync(file, 'utf8')));
const statedUntested = /(\d+) files of `shared\/edge\/src`, outside its test-only modules/.exec(testing);
if (!statedUntested || Number(statedUntested[1]) !== untested.length) {
  failures.push(`${TESTING} should say "${untested.length} files of \`shared/edge/src\`, outside its test-only modules" have no #[test]: ${untested.map((file) => relative(join(ROOT, 'shared/edge/src'), file)).sort().join(', ')}`);
}

// The guides' code blocks: each catalog entry's test exists in its guide's file (its
// `test('<name>'` text), docs/guides.md holds the table made from the catalog, and the guides
// themselves (../shared/seeds, or CRM_EDGE_GUIDES_DIR), when present, have exactly the catalog's
// blocks. A clean clone may lack the guides: then that part is skipped, and said so.
const { BLOCKS } = await import(pathToFileURL(join(ROOT, 'tests/e2e/guides/blocks.mjs')).href);
const { catalogTable, fencedBlocks, unrunLines } = await import(pathToFileURL(join(ROOT, 'tests/e2e/guides/fences.mjs')).href);
const quoted = (name) => [`test('${name.replaceAll("'", "\\'")}'`, `test("${name.replaceAll('"', '\\"')}"`];
/** The text each runnable block runs in: its end-to-end test file, or the Rust file of its native test. */
const runsIn = new Map();
for (const block of BLOCKS) {
  if ([block.test, block.native, block.notRunnable].filter(Boolean).length !== 1) {
    failures.push(`guides catalog: ${block.guide} block ${block.number} needs exactly one of test, native and notRunnable`);
  }
  if (block.test) {
    const file = join(ROOT, 'tests/e2e/guides', block.file);
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (!quoted(block.test).some((call) => text.includes(call))) {
      failures.push(`guides catalog: ${block.guide} block ${block.number} names the test "${block.test}", which tests/e2e/guides/${block.file} does not have`);
    }
    runsIn.set(block, text);
  } else if (block.native) {
    const file = join(ROOT, block.native.file);
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (!new RegExp(`#\\[test\\]\\s*fn ${block.native.test}\\(`).test(text)) {
      failures.push(`guides catalog: ${block.guide} block ${block.number} names the native test ${block.native.test}, which ${block.native.file} does not have`);
    }
    runsIn.set(block, text);
  }
}
const GUIDES_DOC = 'docs/guides.md';
const table = catalogTable(BLOCKS);
if (!readFileSync(join(ROOT, GUIDES_DOC), 'utf8').includes(table)) {
  failures.push(`${GUIDES_DOC} does not hold the table made from tests/e2e/guides/blocks.mjs; it should read:\n${table}`);
}
const guidesDir = process.env.CRM_EDGE_GUIDES_DIR || join(ROOT, '..', 'shared', 'seeds');
if (!existsSync(guidesDir)) {
  console.log(`check-structure: the guides are not at ${guidesDir}: their blocks are not compared with the catalog`);
} else {
  for (const guide of [...new Set(BLOCKS.map((block) => block.guide))]) {
    const name = readdirSync(guidesDir).find((file) => file.startsWith(`${guide}_`) || file.startsWith(`${guide}.`));
    if (!name) {
      failures.push(`guides: no guide ${guide} in ${guidesDir}`);
      continue;
    }
    const real = fencedBlocks(readFileSync(join(guidesDir, name), 'utf8'));
    const listed = BLOCKS.filter((block) => block.guide === guide);
    if (real.length !== listed.length) failures.push(`guides: ${name} has ${real.length} fenced blocks; the catalog lists ${listed.length}`);
    for (const [index, block] of real.entries()) {
      const entry = listed[index];
      if (entry && entry.sha256 !== block.sha256) {
        failures.push(`guides: ${name} block ${block.number} ("${block.firstLine}", under "${block.section}") is not the catalog's (sha256 ${block.sha256})`);
      }
      // A block marked as run is in its test's text, line by line, but for the lines the catalog
      // says the test edits (and why); an edit the test no longer needs is stale.
      if (entry && runsIn.has(entry)) {
        const edits = entry.edits ?? {};
        for (const line of unrunLines(block.lines, runsIn.get(entry), edits)) {
          failures.push(`guides: ${name} block ${block.number} is marked as run, but its line ${JSON.stringify(line)} is not in its test's text (copy it verbatim, or name it in the catalog's edits with why)`);
        }
        for (const line of Object.keys(edits)) {
          if (!block.lines.some((own) => own.trim() === line)) failures.push(`guides catalog: ${guide} block ${block.number} declares an edit of ${JSON.stringify(line)}, which is not a line of the block`);
          else if (unrunLines([line], runsIn.get(entry)).length === 0) failures.push(`guides catalog: ${guide} block ${block.number} declares an edit of ${JSON.stringify(line)}, but the test holds it verbatim: drop the edit`);
        }
      }
    }
  }
}

if (failures.length > 0) {
  for (const failure of failures) console.error(`check-structure: ${failure}`);
  process.exit(1);
}
console.log('check-structure: ok');
