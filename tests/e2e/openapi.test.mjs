// openapi.json against the code and the running stack: every route the code serves is
// documented with its methods and nothing else is (read from the sources by
// openapi/route-scan.mjs), every documented operation reaches its handler and every other
// method on a documented path is refused with 405 and the documented Allow list, the gateway
// serves the committed file, and the file is a valid OpenAPI 3.1 document.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanRoutes } from './openapi/route-scan.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCUMENT_TEXT = readFileSync(join(ROOT, 'openapi.json'), 'utf8');
const DOCUMENT = JSON.parse(DOCUMENT_TEXT);
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** What the probe tries on every path besides the documented methods. */
const PROBED_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

const normalised = (template) => template.replace(/\{[^}]+\}/g, '{}');

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

describe('openapi.json and the routes in the code', () => {
  const code = scanRoutes(ROOT);
  const documented = documentedPaths();

  test('the scanner finds the routes it is known to read', () => {
    // A guard on the scanner itself: if it stopped reading any kind of arm, the checks below
    // would pass on nothing.
    const expected = {
      '/admin/businesses/{}/api-keys': 'GET, POST',
      '/admin/connectors/{}/contacts/{}': 'GET',
      '/api-webhooks/{}/rotate-secret': 'POST',
      '/api-conversations/{}': 'PATCH',
      '/api/dashboard/crm-links': 'DELETE, GET, POST',
      '/api-crm-notes': 'POST',
      '/embed/inbox': 'GET, HEAD',
      '/webhooks/crm-links/{}': 'POST',
      '/api/webhooks/kustomer/{}': 'POST',
      '/webhooks/meta/{}': 'GET, POST',
      '/api-customers': 'GET',
    };
    for (const [path, methods] of Object.entries(expected)) {
      assert.ok(code.has(path), `the scanner sees ${path}`);
      assert.equal(sorted(code.get(path)), methods, `the scanner reads the methods of ${path}`);
    }
    assert.ok(code.size >= 55, `the scanner sees every function's routes (found ${code.size})`);
  });

  test('every route the code serves is documented with each of its methods', () => {
    const missing = [];
    for (const [path, methods] of code) {
      const doc = documented.get(path);
      if (!doc) {
        missing.push(`${path} (${methods ? sorted(methods) : 'methods not read'})`);
        continue;
      }
      for (const method of methods ?? []) {
        if (!doc.methods.has(method)) missing.push(`${method} ${doc.template}`);
      }
    }
    assert.deepEqual(missing, [], `served by the code but not in openapi.json:\n  ${missing.join('\n  ')}`);
  });

  test('every documented path and method is one the code serves', () => {
    const unserved = [];
    for (const [path, { template, methods }] of documented) {
      if (!code.has(path)) {
        unserved.push(`${template} (no route in the code matches it)`);
        continue;
      }
      const served = code.get(path);
      if (served === null) continue; // the code does not say; the probe below checks it
      for (const method of methods) {
        if (!served.has(method)) unserved.push(`${method} ${template} (the code takes ${sorted(served)})`);
      }
    }
    assert.deepEqual(unserved, [], `in openapi.json but not served:\n  ${unserved.join('\n  ')}`);
  });
});

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
        if (!statuses.some((s) => s.startsWith('2'))) problems.push(`${label}: no success answer`);
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
      connector_id: template.startsWith('/webhooks/chatwoot/') ? fixtures.krayin : fixtures.kustomer,
      contact_key: fixtures.customer_id,
      webhook_id: method === 'DELETE' ? fixtures.spare_webhook_id : fixtures.webhook_id,
      conversation_id: fixtures.conversation_id,
      link_id: fixtures.link_id,
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

  test('every documented operation reaches its handler', async () => {
    const failures = [];
    for (const { template, item, methods } of documented.values()) {
      for (const method of methods) {
        const path = concrete(template, method);
        const res = await support.request(method, path, { headers: credentials(item) });
        if (res.status === 405 || unrouted(res)) {
          failures.push(`${method} ${template}: ${res.status} ${res.text.slice(0, 160)}`);
        }
      }
    }
    assert.deepEqual(failures, [], `documented but not routed:\n  ${failures.join('\n  ')}`);
  });

  test('every other method on a documented path is 405 with the documented Allow list', async () => {
    const failures = [];
    for (const { template, item, methods } of documented.values()) {
      for (const method of PROBED_METHODS.filter((m) => !methods.has(m))) {
        const path = concrete(template, method);
        const res = await support.request(method, path, { headers: credentials(item) });
        const allow = (res.headers.get('allow') ?? '')
          .split(',')
          .map((m) => m.trim().toUpperCase())
          .filter(Boolean);
        if (res.status !== 405 || sorted(new Set(allow)) !== sorted(methods)) {
          failures.push(
            `${method} ${template}: ${res.status}, Allow "${res.headers.get('allow') ?? ''}" ` +
              `(documented: ${sorted(methods)})`,
          );
        }
      }
    }
    assert.deepEqual(failures, [], `wrong answers to undocumented methods:\n  ${failures.join('\n  ')}`);
  });

  test('GET /openapi.json serves the committed openapi.json, byte for byte', async () => {
    const res = await support.request('GET', '/openapi.json');
    assert.equal(res.status, 200, `GET /openapi.json: ${res.text.slice(0, 300)}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(res.text === DOCUMENT_TEXT, 'the served document differs from openapi.json: rebuild the gateway');
  });
});
