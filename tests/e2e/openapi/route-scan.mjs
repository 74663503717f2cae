// Reads which paths and methods the code serves, from functions.toml and the functions' Rust
// sources, so that tests/e2e/openapi.test.mjs can hold openapi.json to them.
//
// It reads the code as text, not as Rust, and relies on the way every function matches its
// paths today (a new way of matching must be taught here, or its routes go unseen):
// - functions.toml: `[functions.<name>]` tables with a one-line `routes = ["/path", "/prefix/*"]`.
// - A function's sources are functions/<name>/src/**/*.rs up to `#[cfg(test)]`.
// - A route is a match arm (a line ending its pattern with `=>`) of one of these kinds:
//   - a slice of path segments, `["admin", "businesses", id, "api-keys"] =>`, optionally in a
//     tuple with a method, `(["test"], Method::Post) =>`. String literals are segments, names and
//     `_` are parameters. The slice is whole (from the path's start) when it begins with `""` or
//     with the first segment of one of the function's routes; otherwise it continues the last
//     whole slice that ends in `rest @ ..`. A whole slice that ends in a name which is then
//     matched (`match *action {`) is continued by that match's string arms (`"test" =>`).
//   - path literals, `"/api-crm-notes" | "/api-escalations" =>` or `("/path", Method::Get) =>`;
//   - `strip_prefix("/prefix/")`: the prefix and one parameter segment;
//   - `path == "/health"` (the gateway's own paths).
//   A function with none of these serves its functions.toml routes, a `/prefix/*` route as
//   `/prefix/{id}` (one segment).
// - An arm's methods are the `Method::X` of its pattern plus the first allow list
//   (`"GET, POST"`: how every 405 names what a path takes) between it and the next arm or the
//   end of its block; failing that, those of the function the arm calls (its first allow list,
//   else the `Method::X` on its lines that read `method()`); failing that, the crate's only allow
//   list. A path whose methods none of these tell is reported with methods `null`.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const METHOD = '(?:GET|POST|PUT|PATCH|DELETE|HEAD)';
const ALLOW = new RegExp(`"(${METHOD}(?:, ${METHOD})*)"`);
const METHOD_TOKEN = /Method::(Get|Post|Put|Patch|Delete|Head|Options)\b/g;

/** `[functions.<name>]` → its `routes`, read from functions.toml. */
export function functionRoutes(root) {
  const routes = new Map();
  let current = null;
  for (const line of readFileSync(join(root, 'functions.toml'), 'utf8').split('\n')) {
    const table = line.match(/^\[functions\.([a-z0-9-]+)\]\s*$/);
    if (table) {
      current = table[1];
      routes.set(current, []);
      continue;
    }
    if (/^\[/.test(line)) current = null;
    const list = line.match(/^routes\s*=\s*\[(.*)\]\s*$/);
    if (current && list) routes.set(current, [...list[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]));
  }
  return routes;
}

function rustFiles(dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...rustFiles(path));
    else if (name.endsWith('.rs')) files.push(path);
  }
  return files;
}

/** The lines of a function's sources, each file up to its tests. */
function sourceLines(root, name) {
  const lines = [];
  for (const file of rustFiles(join(root, 'functions', name, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const cut = text.indexOf('#[cfg(test)]');
    lines.push(...(cut < 0 ? text : text.slice(0, cut)).split('\n'), '');
  }
  return lines;
}

const indent = (line) => line.match(/^\s*/)[0].length;
const methodsIn = (text) => [...text.matchAll(METHOD_TOKEN)].map((m) => m[1].toUpperCase());
const allowIn = (line) => line.match(ALLOW)?.[1].split(', ');

/** Segments of a slice pattern's elements: literals as text, parameters as null, `..` as '..'. */
function sliceSegments(inner) {
  if (inner.trim() === '') return [];
  return inner.split(',').map((raw) => {
    const part = raw.trim();
    if (/^"[^"]*"$/.test(part)) return part.slice(1, -1);
    if (/(^|@\s*)\.\.$/.test(part)) return '..';
    return null;
  });
}

/** The body of `fn name` in `lines`, by brace counting from its signature. */
function functionBody(lines, name) {
  const start = lines.findIndex((line) => new RegExp(`\\bfn ${name}\\s*[<(]`).test(line));
  if (start < 0) return null;
  let depth = 0;
  let opened = false;
  const body = [];
  for (let i = start; i < lines.length; i += 1) {
    body.push(lines[i]);
    for (const ch of lines[i]) {
      if (ch === '{') {
        depth += 1;
        opened = true;
      } else if (ch === '}') depth -= 1;
    }
    if (opened && depth <= 0) break;
  }
  return body;
}

/** The methods a called handler takes: its first allow list, else its `method()` checks. */
function handlerMethods(lines, names) {
  for (const name of names) {
    const body = functionBody(lines, name);
    if (!body) continue;
    for (const line of body) {
      const allow = allowIn(line);
      if (allow) return allow;
    }
    const checked = body.filter((line) => line.includes('method()')).flatMap(methodsIn);
    if (checked.length > 0) return checked;
  }
  return [];
}

/** Kinds of arm line, each giving `{ paths: [segments], methods, relative?, subOf? }` or null. */
function readArm(line, context) {
  const slice = line.match(/^\s*\(?\s*\[([^\]]*)\]\s*(?:,\s*([^)]*?))?\)?\s*=>/);
  if (slice) {
    const segments = sliceSegments(slice[1]);
    const methods = methodsIn(slice[2] ?? '');
    const whole = segments[0] === '' || (segments.length > 0 && context.roots.has(segments[0]));
    if (whole) return { kind: 'whole', segments: segments[0] === '' ? segments.slice(1) : segments, methods };
    return { kind: 'relative', segments, methods };
  }
  const literal = line.match(/^\s*\(?\s*("\/[^"]*"(?:\s*\|\s*"\/[^"]*")*)\s*(?:,\s*([^)]*?))?\)?\s*=>/);
  if (literal) {
    const paths = [...literal[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    return { kind: 'paths', paths, methods: methodsIn(literal[2] ?? '') };
  }
  if (context.matchedName) {
    const sub = line.match(/^\s*("[^"/][^"]*"(?:\s*\|\s*"[^"]*")*)\s*=>/);
    if (sub) return { kind: 'named', values: [...sub[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]), methods: [] };
  }
  const prefix = line.match(/strip_prefix\("(\/[^"]*\/)"\)/);
  if (prefix) return { kind: 'paths', paths: [`${prefix[1]}{}`], methods: [] };
  const equal = line.match(/\bpath\s*==\s*"(\/[^"]*)"/);
  if (equal) return { kind: 'paths', paths: [equal[1]], methods: [] };
  return null;
}

const toPath = (segments) => `/${segments.map((s) => (s === null ? '{}' : s)).join('/')}`;

/**
 * Every route one function's sources show: a map from path (parameters as `{}`) to its
 * methods (a Set), or to null when the code does not say.
 */
export function scanFunction(root, name, routes) {
  const lines = sourceLines(root, name);
  const roots = new Set(routes.map((route) => route.split('/')[1]));
  const context = { roots, matchedName: false };
  const arms = [];
  let whole = null; // the last whole slice: { segments, line }
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (whole && whole.segments.at(-1) === null && /\bmatch\s+\*?[a-z_]+\s*\{/.test(line) && i > whole.line) {
      context.matchedName = true;
    }
    const arm = readArm(line, context);
    if (!arm) continue;
    let paths;
    if (arm.kind === 'whole') {
      whole = { segments: arm.segments, line: i };
      context.matchedName = false;
      // A slice with `..`, or whose last name is matched further down, is not a route itself.
      if (arm.segments.includes('..')) continue;
      paths = [toPath(arm.segments)];
    } else if (arm.kind === 'relative') {
      if (!whole || !whole.segments.includes('..')) continue;
      const base = whole.segments.slice(0, whole.segments.indexOf('..'));
      paths = [toPath([...base, ...arm.segments])];
    } else if (arm.kind === 'named') {
      paths = arm.values.map((value) => toPath([...whole.segments.slice(0, -1), value]));
      arms.forEach((earlier) => {
        if (earlier.line === whole.line) earlier.continued = true;
      });
    } else {
      paths = arm.paths;
    }
    arms.push({ paths, line: i, methods: new Set(arm.methods), calls: [] });
  }
  // Each arm's extent: up to the next arm, or the end of the block it opens.
  const armLines = new Set(arms.map((arm) => arm.line));
  for (const arm of arms) {
    const depth = indent(lines[arm.line]);
    let allow = allowIn(lines[arm.line].split('=>').slice(1).join('=>'));
    const calls = [lines[arm.line].split('=>').slice(1).join('=>')];
    for (let j = arm.line + 1; !allow && j < lines.length && !armLines.has(j); j += 1) {
      const line = lines[j];
      if (line.trim() === '') continue;
      if (indent(line) < depth || (indent(line) === depth && /^\s*[}\])]/.test(line))) break;
      allow = allowIn(line);
      calls.push(line);
    }
    if (allow) allow.forEach((method) => arm.methods.add(method));
    if (arm.methods.size === 0) {
      const names = calls.join(' ').match(/\b[a-z_][a-z0-9_]*\b/g) ?? [];
      handlerMethods(lines, names).forEach((method) => arm.methods.add(method));
    }
  }
  const crateAllows = [...new Set(lines.map(allowIn).filter(Boolean).map((allow) => allow.join(', ')))];
  const crateMethods = crateAllows.length === 1 ? new Set(crateAllows[0].split(', ')) : null;
  const found = new Map();
  for (const arm of arms.filter((a) => !a.continued)) {
    for (const path of arm.paths) {
      if (!found.has(path)) found.set(path, new Set());
      arm.methods.forEach((method) => found.get(path).add(method));
    }
  }
  if (found.size === 0) {
    for (const route of routes) found.set(route.replace(/\/\*$/, '/{}'), new Set());
  }
  for (const [path, methods] of found) {
    if (methods.size === 0) found.set(path, crateMethods ? new Set(crateMethods) : null);
  }
  return found;
}

/** Every route of every function with routes, plus the gateway's own paths. */
export function scanRoutes(root) {
  const all = new Map();
  const merge = (found) => {
    for (const [path, methods] of found) {
      const known = all.get(path);
      if (known === undefined || known === null) all.set(path, methods && new Set(methods));
      else if (methods) methods.forEach((method) => known.add(method));
    }
  };
  for (const [name, routes] of functionRoutes(root)) {
    if (routes.length > 0) merge(scanFunction(root, name, routes));
  }
  merge(scanFunction(root, 'gateway', ['/health']));
  return all;
}
