// openapi.json against the running stack. The document is written from the endpoints'
// declarations (shared/domain/src/api/) and the Rust types they name by tools/contract, and
// `scripts/configure --check` fails when the committed one differs; so is the gateway's route
// table, which tools/contract's own tests hold to the declarations. Here: every documented
// operation reaches its handler and every other method on a documented path is refused with 405,
// the documented Allow list and the documented body (the JSON error, or the embed page's HTML);
// every JSON answer matches its documented schema (whose objects are closed); the rate-limit
// headers and the 429 are where the document says; the gateway serves the committed file; and the
// file is a valid OpenAPI 3.1 document.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCUMENT_TEXT = readFileSync(join(ROOT, 'openapi.json'), 'utf8');
const DOCUMENT = JSON.parse(DOCUMENT_TEXT);
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** What the probe tries on every path besides the documented methods. */
const PROBED_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

const normalised = (template) => template.replace(/\{[^}]+\}/g, '{}');

/** The gateway's own paths (its operations' tag): every other is routed to a function, within the rate limits. */
const GATEWAY_PATHS = new Set(
  Object.entries(DOCUMENT.paths)
    .filter(([, item]) => Object.values(item).some((operation) => operation.tags?.includes('gateway')))
    .map(([path]) => path),
);
const RATE_LIMIT_HEADERS = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'];
/** Operations that take an API key: their answers carry the key's rate-limit headers. */
const isKeyed = (operation) => (operation.security ?? []).some((r) => 'ApiKey' in r || 'ApiKeyBearer' in r);
const resolveRef = (node) =>
  node?.$ref
    ? node.$ref
        .slice(2)
        .split('/')
        .reduce((n, key) => n?.[key], DOCUMENT)
    : node;

/** Documented paths, normalised (`{business_id}` → `{}`), with their template and methods. */
function documentedPaths() {
  const paths = new Map();
  for (const [template, item] of Object.entries(DOCUMENT.paths)) {
    const methods = new Set(HTTP_METHODS.filter((m) => m in item).map((m) => m.toUpperCase()));
    paths.set(normalised(template), { template, item, methods });
  }
  return paths;
}

const sorted = (set) => [...set].sort().join(', ');

describe('openapi.json is a valid OpenAPI 3.1 document', () => {
  test("it passes the OpenAPI 3.1 meta-schema of the schemathesis that scripts/setup installs", () => {
    // The validator that the fuzzer itself applies when it loads the document (the OpenAPI
    // Initiative's 3.1 schema, compiled by jsonschema_rs), run from the project's .venv.
    const python = join(ROOT, '.venv', 'bin', 'python');
    assert.ok(existsSync(python), 'the project virtualenv (.venv) is missing: run scripts/setup');
    const output = execFileSync(python, [join(ROOT, 'tests', 'fuzz', 'validate_openapi.py'), join(ROOT, 'openapi.json')], {
      encoding: 'utf8',
    });
    assert.match(output, /^valid OpenAPI 3\.1/m, output);
  });

  test('every reference resolves, ids are unique, and path parameters match the templates', () => {
    const problems = [];
    const resolvePointer = (pointer) =>
      pointer
        .slice(2)
        .split('/')
        .reduce((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], DOCUMENT);
    const walk = (node, where) => {
      if (Array.isArray(node)) node.forEach((child, i) => walk(child, `${where}/${i}`));
      else if (node && typeof node === 'object') {
        if (typeof node.$ref === 'string' && resolvePointer(node.$ref) === undefined) {
          problems.push(`${where}: $ref ${node.$ref} resolves to nothing`);
        }
        for (const [key, child] of Object.entries(node)) walk(child, `${where}/${key}`);
      }
    };
    walk(DOCUMENT, '#');
    const ids = new Set();
    const schemes = DOCUMENT.components.securitySchemes;
    for (const [template, item] of Object.entries(DOCUMENT.paths)) {
      const inTemplate = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const method of HTTP_METHODS.filter((m) => m in item)) {
        const operation = item[method];
        const label = `${method.toUpperCase()} ${template}`;
        if (!operation.operationId || ids.has(operation.operationId)) problems.push(`${label}: missing or repeated operationId`);
        ids.add(operation.operationId);
        if (!operation.summary) problems.push(`${label}: no summary`);
        if (!Array.isArray(operation.security)) problems.push(`${label}: no security (use [] for none)`);
        for (const requirement of operation.security ?? []) {
          for (const name of Object.keys(requirement)) {
            if (!schemes[name]) problems.push(`${label}: unknown security scheme ${name}`);
          }
        }
        const declared = (operation.parameters ?? [])
          .map((p) => (p.$ref ? resolvePointer(p.$ref) : p))
          .filter((p) => p?.in === 'path')
          .map((p) => p.name)
          .sort();
        if (declared.join() !== inTemplate.join()) problems.push(`${label}: path parameters ${declared} ≠ ${inTemplate}`);
        const statuses = Object.keys(operation.responses);
        // A form a browser posts may succeed with a redirect (the console's sign-in: 303).
        if (!statuses.some((s) => /^[23]/.test(s))) problems.push(`${label}: no success answer`);
        for (const status of statuses.filter((s) => /^[45]/.test(s))) {
          let response = operation.responses[status];
          if (response.$ref) response = resolvePointer(response.$ref);
          const json = response?.content?.['application/json'];
          if (json && json.schema?.$ref !== '#/components/schemas/Error') {
            problems.push(`${label}: its ${status} answer is JSON but not the Error schema`);
          }
        }
      }
    }
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  test('429 with Retry-After on every routed operation, and the rate-limit headers on every answer of a keyed one', () => {
    const problems = [];
    let keyed = 0;
    for (const [template, item] of Object.entries(DOCUMENT.paths)) {
      for (const method of HTTP_METHODS.filter((m) => m in item)) {
        const operation = item[method];
        const label = `${method.toUpperCase()} ${template}`;
        const tooMany = resolveRef(operation.responses['429']);
        if (GATEWAY_PATHS.has(template)) {
          if (tooMany) problems.push(`${label}: the gateway's own path is not rate limited, yet documents 429`);
          continue;
        }
        if (!tooMany) {
          problems.push(`${label}: no 429`);
          continue;
        }
        const retryAfter = resolveRef(tooMany.headers?.['Retry-After']);
        if (!retryAfter?.required || resolveRef(retryAfter.schema)?.type !== 'integer') {
          problems.push(`${label}: its 429 has no required integer Retry-After`);
        }
        if (!isKeyed(operation)) continue;
        keyed += 1;
        for (const [status, response] of Object.entries(operation.responses)) {
          const headers = resolveRef(response)?.headers ?? {};
          for (const name of RATE_LIMIT_HEADERS) {
            const header = resolveRef(headers[name]);
            if (resolveRef(header?.schema)?.type !== 'integer') problems.push(`${label} ${status}: no integer ${name}`);
            // Absent when the key is unknown, and on a 429 of an address over its failure budget.
            if (header?.required) problems.push(`${label} ${status}: ${name} is required, but not every answer has it`);
          }
        }
      }
    }
    assert.ok(keyed >= 30, `the keyed operations are found (${keyed})`);
    assert.deepEqual(problems, [], problems.join('\n'));
  });
});

describe('openapi.json against the running stack', () => {
  let support;
  const fixtures = {};
  const documented = documentedPaths();

  before(async () => {
    support = await import('./support.mjs');
    const { makeFixtures } = await import('./openapi/fixtures.mjs');
    Object.assign(fixtures, await makeFixtures());
  });

  after(async () => {
    // The fixture's webhooks point nowhere; leave none enabled behind.
    if (support && fixtures.webhook_id) await support.api(fixtures.key, 'DELETE', `/api-webhooks/${fixtures.webhook_id}`);
  });

  /** A concrete path for a template: each parameter the real thing of the probe's business. */
  function concrete(template, method) {
    const byName = {
      business_id: fixtures.business_id,
      key_id: fixtures.spare_key_id,
      connector_id: template.startsWith('/webhooks/chatwoot/')
        ? fixtures.krayin
        : method === 'DELETE' ? fixtures.spare_connector : fixtures.kustomer,
      contact_key: fixtures.customer_id,
      webhook_id: method === 'DELETE' ? fixtures.spare_webhook_id : fixtures.webhook_id,
      conversation_id: fixtures.conversation_id,
      escalation_id: fixtures.escalation_id,
      customer_id: fixtures.spare_customer_id,
      // A Chatwoot webhook token the Krayin fixture does not have: the URL is refused (401).
      token: 'f'.repeat(40),
      link_id: fixtures.link_id,
      session_id: fixtures.console_session_id,
      account_id: template.startsWith('/webhooks/twilio/')
        ? fixtures.twilio_account
        : template.startsWith('/webhooks/mailgun/')
          ? fixtures.mailgun_account
          : fixtures.meta_account,
    };
    const path = template.replace(/\{([^}]+)\}/g, (_, name) => {
      assert.ok(byName[name], `the probe has a value for {${name}} (${template})`);
      return byName[name];
    });
    const query = {
      '/api/download-media': `?id=${fixtures.attachment_id}`,
      '/embed/inbox': `?token=${fixtures.sso_token}`,
    }[template];
    return path + (query ?? '');
  }

  /** The credentials a path's operations take, as headers. */
  function credentials(item) {
    const schemes = new Set(
      Object.values(item)
        .flatMap((operation) => operation.security ?? [])
        .flatMap((requirement) => Object.keys(requirement)),
    );
    if (schemes.has('AdminToken')) return { authorization: `Bearer ${support.ADMIN_TOKEN}` };
    if (schemes.has('ApiKey')) return { 'x-api-key': fixtures.key };
    if (schemes.has('EmbedToken')) return { authorization: `Bearer ${fixtures.sso_token}` };
    return {};
  }

  /** The router's own "nothing here" answers (gateway, function or embed page), not a handler's. */
  function unrouted(res) {
    if (res.status !== 404) return false;
    const message = res.body?.error?.message ?? '';
    return /^(no endpoint at|no such path|no admin endpoint at)/.test(message) || res.text.includes('not part of the inbox');
  }

  test('every documented operation reaches its handler, with the rate-limit headers where documented, and answers as documented', async () => {
    const failures = [];
    const answers = [];
    for (const { template, item, methods } of documented.values()) {
      for (const method of methods) {
        const path = concrete(template, method);
        const res = await support.request(method, path, { headers: credentials(item) });
        if (res.status === 405 || unrouted(res)) {
          failures.push(`${method} ${template}: ${res.status} ${res.text.slice(0, 160)}`);
        }
        const pointer = answerSchema(template, method, res.status);
        if (pointer && res.text !== '' && /json/.test(res.headers.get('content-type') ?? '')) {
          answers.push({ label: `${method} ${template} ${res.status}`, pointer, body: res.body });
        }
        // The fixture's key is active: an operation that takes it answers with its bucket; one
        // that takes other credentials shows no bucket.
        const values = RATE_LIMIT_HEADERS.map((name) => res.headers.get(name));
        if (isKeyed(item[method.toLowerCase()])) {
          const [limit, remaining, reset] = values.map(Number);
          if (!values.every((v) => v !== null && /^\d+$/.test(v)) || limit < 1 || remaining > limit || reset < 0) {
            failures.push(`${method} ${template}: rate-limit headers ${values.join(', ')}`);
          }
        } else if (values.some((v) => v !== null)) {
          failures.push(`${method} ${template}: rate-limit headers on an operation without a key (${values.join(', ')})`);
        }
      }
    }
    assert.deepEqual(failures, [], `documented but not routed, or headers not as documented:\n  ${failures.join('\n  ')}`);
    // Each JSON answer against the schema documented for its status: the document closes its
    // answers' objects, so a field the code adds or renames fails here.
    const python = join(ROOT, '.venv', 'bin', 'python');
    let report;
    try {
      report = execFileSync(python, [join(ROOT, 'tests/e2e/openapi/answers.py'), join(ROOT, 'openapi.json')], {
        input: JSON.stringify(answers),
        encoding: 'utf8',
      });
    } catch (error) {
      assert.fail(`answers that are not as documented:\n${error.stdout}${error.stderr}`);
    }
    assert.match(report, /answers match/);
    assert.ok(answers.length >= 60, `most operations gave a JSON answer to check (${answers.length})`);
  });

  /** Where the schema of the `status` answer of an operation sits in the document, as a JSON pointer. */
  function answerSchema(template, method, status) {
    // A JSON pointer in a URI fragment: `~` and `/` escaped, then the rest percent-encoded (`{`).
    const escape = (key) => encodeURIComponent(key.replace(/~/g, '~0').replace(/\//g, '~1'));
    const operation = DOCUMENT.paths[template][method.toLowerCase()];
    const key = String(status) in operation.responses ? String(status) : 'default' in operation.responses ? 'default' : null;
    if (!key) return null;
    let response = operation.responses[key];
    let pointer = `#/paths/${escape(template)}/${method.toLowerCase()}/responses/${key}`;
    if (response.$ref) {
      pointer = response.$ref;
      response = resolveRef(response);
    }
    return response?.content?.['application/json']?.schema ? `${pointer}/content/application~1json/schema` : null;
  }

  /** The media type of a path's 405 as its operations document it; the JSON error unless they say otherwise. */
  function documented405(item) {
    const media = Object.values(item)
      .map((operation) => resolveRef(operation.responses?.['405'])?.content)
      .filter(Boolean)
      .flatMap(Object.keys);
    return media[0] ?? 'application/json';
  }

  test('every other method on a documented path is 405 with the documented Allow list and body', async () => {
    const failures = [];
    for (const { template, item, methods } of documented.values()) {
      const media = documented405(item);
      for (const method of PROBED_METHODS.filter((m) => !methods.has(m))) {
        const path = concrete(template, method);
        const res = await support.request(method, path, { headers: credentials(item) });
        const allow = (res.headers.get('allow') ?? '')
          .split(',')
          .map((m) => m.trim().toUpperCase())
          .filter(Boolean);
        const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
        const problems = [];
        if (res.status !== 405) problems.push(`status ${res.status}`);
        if (sorted(new Set(allow)) !== sorted(methods)) {
          problems.push(`Allow "${res.headers.get('allow') ?? ''}" (documented: ${sorted(methods)})`);
        }
        if (method !== 'HEAD' && type !== media) problems.push(`${type || 'no content type'} (documented: ${media})`);
        if (method !== 'HEAD' && media === 'application/json' && res.body?.error?.code !== 'method_not_allowed') {
          problems.push(`not the method_not_allowed error: ${res.text.slice(0, 120)}`);
        }
        if (problems.length) failures.push(`${method} ${template}: ${problems.join('; ')}`);
      }
    }
    assert.deepEqual(failures, [], `wrong answers to undocumented methods:\n  ${failures.join('\n  ')}`);
  });

  test('a key over its limit gets the documented 429, before its function', async () => {
    // A business of its own, limited to one request at a time, and a key issued after the limit
    // is set (a key's limiter reads the limit at its first request).
    const created = await support.admin('POST', '/admin/businesses', { name: support.unique('limited') });
    assert.equal(created.status, 201, created.text);
    const limited = await support.admin('PATCH', `/admin/businesses/${created.body.id}`, { rate_limit: { per_minute: 1, burst: 1 } });
    assert.equal(limited.status, 200, limited.text);
    assert.deepEqual(limited.body.rate_limit, { per_minute: 1, burst: 1 }, 'the business shows its limit');
    const issued = await support.admin('POST', `/admin/businesses/${created.body.id}/api-keys`, {});
    assert.equal(issued.status, 201, issued.text);
    const first = await support.api(issued.body.key, 'GET', '/api-webhooks');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-ratelimit-limit'), '1');
    assert.equal(first.headers.get('x-ratelimit-remaining'), '0');
    // A POST that would create something if it got through: it must not.
    const second = await support.api(issued.body.key, 'POST', '/api-webhooks', { name: 'over', url: 'https://crm.example.com/over' });
    assert.equal(second.status, 429, second.text);
    assert.equal(second.body?.error?.code, 'rate_limited', second.text);
    assert.match(second.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'Retry-After: whole seconds, at least 1');
    for (const name of RATE_LIMIT_HEADERS) assert.match(second.headers.get(name) ?? '', /^\d+$/, name);
    // Each key has a bucket of its own: a second key of the business sees what the POST did.
    const other = await support.admin('POST', `/admin/businesses/${created.body.id}/api-keys`, {});
    assert.equal(other.status, 201, other.text);
    const listed = await support.api(other.body.key, 'GET', '/api-webhooks');
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.body.webhooks, [], 'the refused POST created nothing');
  });

  test('GET /openapi.json serves the committed openapi.json, byte for byte', async () => {
    const res = await support.request('GET', '/openapi.json');
    assert.equal(res.status, 200, `GET /openapi.json: ${res.text.slice(0, 300)}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(res.text === DOCUMENT_TEXT, 'the served document differs from openapi.json: rebuild the gateway');
  });
});
