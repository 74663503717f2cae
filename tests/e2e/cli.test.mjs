// The command-line tool (target/cli/crm-edge, built by scripts/build) against the running stack,
// run as a person runs it: a process with flags, environment and files, its exit code, stdout
// and the files it leaves beside the input. Imports are killed midway and resumed; a proxy in
// front of the stack answers 429 and 503 first; webhooks and admin commands are checked against
// what the API says.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, BASE_URL, admin, api, newBusiness, request, unique, waitFor } from './support.mjs';
import { d1, d1Shards, deleteEverywhere } from './store.mjs';
import { whatsappNotification } from './providers/meta.mjs';
import { refusedUrl, startWebhookReceiver } from './receivers/webhook-receiver.mjs';
import { createWebhook, deliveriesOf } from './receivers/webhook-api.mjs';
import { startHubSpot } from './crm/hubspot.mjs';
import { connectedBusiness } from './crm/connectors.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = process.env.CRM_EDGE_CLI || join(ROOT, 'target', 'cli', 'crm-edge');
const EPOCH = '1970-01-01T00:00:00Z';

let dir;
before(() => {
  assert.ok(existsSync(CLI), `the command-line tool is built at ${CLI} (scripts/build)`);
  dir = mkdtempSync(join(tmpdir(), 'crm-edge-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Starts the tool with `args`. The environment holds only what `env` gives (plus PATH and a
 * config file that does not exist, so a developer's own profile cannot leak in). Returns the
 * child and a promise of `{ code, signal, stdout, stderr }`.
 */
function start(args, env = {}) {
  const child = spawn(CLI, args, {
    env: { PATH: process.env.PATH, CRM_EDGE_CONFIG: join(dir, 'no-config'), CRM_EDGE_URL: BASE_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, output: () => stdout };
}

/** Runs the tool to its end. */
const run = (args, env) => start(args, env).done;

/** `--json` output of a run that must exit with `code`. */
async function json(args, env, code = 0) {
  const result = await run(['--json', ...args], env);
  assert.equal(result.code, code, `crm-edge ${args.join(' ')} exits ${code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout);
}

/** RFC 4180 CSV as rows of cells (quoted cells may hold commas, quotes and line breaks). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '');
    else if (c !== '\r') cell += c;
  }
  if (cell || row.length) row.push(cell), rows.push(row);
  return rows;
}

const customersOf = (businessId) => d1('SELECT count(*), count(DISTINCT email) FROM customers WHERE business_id = ?', [businessId])[0];

/** The checkpoint beside an import file, or null before the first batch finished. */
function checkpoint(file) {
  try {
    return JSON.parse(readFileSync(`${file}.crm-edge-import.json`, 'utf8'));
  } catch {
    return null;
  }
}

describe('crm-edge import customers', () => {
  test('killed twice midway (Ctrl-C, then SIGKILL) and resumed: every row stored exactly once, and the report lists exactly the planted bad rows', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const tag = unique('imp');
    // A HubSpot-style export without ids: bulk create finds a customer by email when there is no
    // external_id, so a batch sent twice would update its rows again rather than add them; the
    // checkpoint's counts below are what show each batch was sent once.
    const total = 30_000;
    const planted = new Map([
      [1_234, { code: 'validation_failed', cells: ['Ann', 'Bad', 'ann@@example.com', ''] }],
      [7_777, { code: 'validation_failed', cells: ['', '', `nobody-${tag}@example.com`, ''] }],
      [12_345, { code: 'validation_failed', cells: ['No', 'Contact', '', ''] }],
      [19_000, { code: 'validation_failed', cells: ['Bad', 'Phone', '', '12'] }],
      // a Latin-1 byte: the row cannot be read as text, and is reported without being sent
      [28_000, { code: 'malformed_row', cells: ['Jos\u0000', 'Latin', `latin-${tag}@example.com`, ''] }],
    ]);
    // The same email as data row 10, in another batch: the same person, updated, not stored twice.
    const twin = [25_000, ['Twin', 'Person', `p10-${tag}@example.com`, '']];
    const lines = ['First Name,Last Name,Email,Phone Number,Lifecycle Stage'];
    for (let n = 1; n <= total; n++) {
      const cells = planted.get(n)?.cells ?? (n === twin[0] ? twin[1] : null) ?? [`Person`, `"Number ${n}, Esq."`, `p${n}-${tag}@example.com`, n % 3 ? '' : `087${String(n).padStart(7, '0')}`];
      lines.push([...cells, 'customer'].join(','));
    }
    const file = join(dir, `contacts-${tag}.csv`);
    const [before, after] = `${lines.join('\n')}\n`.split('\u0000');
    writeFileSync(file, Buffer.concat([Buffer.from(before), Buffer.from([0xe9]), Buffer.from(after)]));
    const args = ['import', 'customers', file, '--mode', 'create', '--batch-size', '250', '--in-flight', '4'];
    const env = { CRM_EDGE_API_KEY: business.key };

    const first = start(args, env);
    await waitFor(() => (checkpoint(file)?.done.length ?? 0) >= 10, 60_000, '10 batches done', 20);
    first.child.kill('SIGINT');
    const interrupted = await first.done;
    assert.notEqual(interrupted.code, 0, 'Ctrl-C stops the import');
    const afterFirst = checkpoint(file).done.length;
    assert.ok(afterFirst < 120, `the first run stopped before the end (${afterFirst} of 120 batches)`);

    const second = start(args, env);
    await waitFor(() => (checkpoint(file)?.done.length ?? 0) >= afterFirst + 20, 60_000, '20 more batches done', 20);
    second.child.kill('SIGKILL');
    await second.done;
    const afterSecond = checkpoint(file).done.length;
    assert.ok(afterSecond < 120, `the second run was killed before the end (${afterSecond} of 120 batches)`);

    const last = await json(args, env, 1);
    assert.equal(last.rows, total, 'every row was read');
    assert.equal(last.batches_resumed, afterSecond, 'the finished batches were not sent again');
    assert.equal(last.batches_sent, 120 - afterSecond);
    assert.equal(last.failed, planted.size, JSON.stringify(last));
    assert.equal(last.report, `${file}.errors.csv`);

    const [header, ...reported] = parseCsv(readFileSync(last.report, 'utf8'));
    assert.deepEqual(header, ['row', 'external_id', 'code', 'message']);
    const byRow = new Map(reported.map(([row, externalId, code, message]) => [Number(row) - 1, { externalId, code, message }]));
    assert.deepEqual([...byRow.keys()].sort((a, b) => a - b), [...planted.keys()], `the report lists exactly the planted rows: ${JSON.stringify(reported)}`);
    for (const [n, { code }] of planted) {
      assert.equal(byRow.get(n).code, code, `row ${n + 1}: ${JSON.stringify(byRow.get(n))}`);
      assert.ok(byRow.get(n).message.length > 0, `row ${n + 1} says why`);
    }
    assert.match(byRow.get(28_000).message, /UTF-8/, 'the unreadable row says why');

    const [stored, distinctEmails] = customersOf(business.id);
    assert.equal(stored, total - planted.size - 1, 'every good row is stored, the twin as the customer of row 10');
    assert.equal(distinctEmails, stored, 'and stored once');
    const sample = await api(business.key, 'GET', `/api-customers?email=${encodeURIComponent(`p3-${tag}@example.com`)}`);
    assert.equal(sample.status, 200, sample.text);
    assert.equal(sample.body.customer?.name ?? sample.body.name, 'Person Number 3, Esq.', 'first and last names make the name');
  });

  test('429 with Retry-After and 503 are waited out and retried with the same Idempotency-Key; JSON Lines (with a broken line, reported) and a JSON array import alike', async () => {
    const business = await newBusiness();
    const seen = new Map(); // idempotency key -> [{ status, at }]
    const proxy = createServer(async (req, res) => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const key = req.headers['idempotency-key'] ?? 'none';
      const tries = seen.get(key) ?? [];
      seen.set(key, tries);
      const at = Date.now();
      if (tries.length === 0) {
        tries.push({ status: 429, at });
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        return res.end('{"error":{"code":"rate_limited","message":"slow down"}}');
      }
      if (tries.length === 1) {
        tries.push({ status: 503, at });
        res.writeHead(503, { 'content-type': 'application/json' });
        return res.end('{"error":{"code":"service_unavailable","message":"try again"}}');
      }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !['host', 'connection', 'content-length'].includes(name)));
      const forwarded = await fetch(`${BASE_URL}${req.url}`, { method: req.method, headers, body: Buffer.concat(chunks) });
      tries.push({ status: forwarded.status, at, stack: true, retryAfter: forwarded.headers.get('retry-after') });
      res.writeHead(forwarded.status, { 'content-type': forwarded.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await forwarded.arrayBuffer()));
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${proxy.address().port}`;
      const tag = unique('jl');
      const jsonl = join(dir, `${tag}.jsonl`);
      const lines = Array.from({ length: 1_200 }, (_, n) => JSON.stringify({ external_id: `${tag}-${n}`, name: `Line ${n}`, email: `${tag}-${n}@example.com` }));
      lines.splice(600, 0, '{"name": "a line cut short');
      writeFileSync(jsonl, lines.join('\n'));
      const summary = await json(['import', 'customers', jsonl, '--batch-size', '500', '--url', url], { CRM_EDGE_API_KEY: business.key }, 1);
      assert.deepEqual([summary.rows, summary.stored, summary.failed, summary.batches_sent], [1_201, 1_200, 1, 3]);
      const report = parseCsv(readFileSync(`${jsonl}.errors.csv`, 'utf8'));
      assert.deepEqual(report.slice(1).map(([line, id, code]) => [line, id, code]), [['601', '', 'malformed_row']], 'the broken line is reported by its number, and the rest imported');
      assert.equal(seen.size, 3, 'one key per batch');
      for (const [key, tries] of seen) {
        assert.match(key, /^import-[0-9a-f]{32}-\d+$/);
        // On a busy machine the local stack itself may answer 503: wrangler dev's proxy while
        // workerd is saturated (Retry-After: 0, with no invocation of ours in its log), or ours
        // when the local D1's one writer is held too long (Retry-After: 10). The tool waits those
        // out too, with the same key.
        const statuses = tries.map((t) => t.status);
        const fromStack = tries.slice(2, -1);
        assert.deepEqual([...statuses.slice(0, 2), statuses.at(-1)], [429, 503, 200], `${key}: waited out, retried, answered: ${statuses}`);
        assert.ok(
          fromStack.every((t) => t.stack && t.status === 503),
          `${key}: nothing but the stack's own 503s between: ${JSON.stringify(tries)}`,
        );
        assert.ok(tries[1].at - tries[0].at >= 950, `${key}: Retry-After: 1 was honoured (${tries[1].at - tries[0].at} ms)`);
      }

      const array = join(dir, `${tag}.json`);
      writeFileSync(array, JSON.stringify(Array.from({ length: 700 }, (_, n) => ({ name: `Item ${n}`, phone: `+3538710${String(n).padStart(5, '0')}` }))));
      const fromArray = await json(['import', 'customers', array, '--mode', 'create'], { CRM_EDGE_API_KEY: business.key });
      assert.deepEqual([fromArray.rows, fromArray.stored, fromArray.failed], [700, 700, 0]);
      assert.equal(customersOf(business.id)[0], 1_900);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test('--dry-run checks each row by the API\'s rules (phones with --default-country) and sends nothing', async () => {
    const business = await newBusiness();
    const file = join(dir, `${unique('dry')}.csv`);
    writeFileSync(file, 'Contact ID,Full Name,Email,Mobile\nC1,Ann,ann@example.com,\nC2,Bob,,087 123 4567\nC3,Cy,cy@,\nC4,,d@example.com,\n');
    const withCountry = await json(['import', 'customers', file, '--dry-run', '--default-country', 'IE'], { CRM_EDGE_API_KEY: business.key }, 1);
    assert.deepEqual([withCountry.rows, withCountry.stored, withCountry.failed, withCountry.batches_sent], [4, 2, 2, 0]);
    const report = parseCsv(readFileSync(`${file}.dry-run.csv`, 'utf8'));
    assert.deepEqual(report.slice(1).map(([row, id, code]) => [row, id, code]), [['4', 'C3', 'validation_failed'], ['5', 'C4', 'validation_failed']]);
    const withoutCountry = await json(['import', 'customers', file, '--dry-run'], {}, 1);
    assert.equal(withoutCountry.failed, 3, 'a national number needs a country');
    assert.equal(customersOf(business.id)[0], 0, 'a dry run stores nothing');
    assert.equal(existsSync(`${file}.crm-edge-import.json`), false, 'and leaves no checkpoint');
  });

  test('bad usage exits 2, an API refusal 3, an API that cannot be reached 4, each with the reason', async () => {
    const business = await newBusiness();
    const file = join(dir, `${unique('usage')}.csv`);
    writeFileSync(file, 'email,name\na@example.com,A\n');
    const missing = await run(['import', 'customers', join(dir, 'nope.csv')], { CRM_EDGE_API_KEY: business.key });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /nope\.csv/);
    const badMap = await run(['import', 'customers', file, '--map', 'Phone=phone'], { CRM_EDGE_API_KEY: business.key });
    assert.equal(badMap.code, 2, badMap.stderr);
    assert.match(badMap.stderr, /"Phone"/);
    const noKey = await run(['import', 'customers', file]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /CRM_EDGE_API_KEY/);
    const revoked = await admin('DELETE', `/admin/api-keys/${business.keyId}`);
    assert.equal(revoked.status, 200, revoked.text);
    const refused = await run(['import', 'customers', file], { CRM_EDGE_API_KEY: business.key });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /401 unauthorized/);
    const badId = await run(['admin', 'keys', 'revoke', '../businesses'], { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN });
    assert.equal(badId.code, 2, badId.stderr);
    const nobody = new URL(await refusedUrl()).origin;
    const started = Date.now();
    const down = await run(['webhooks', 'list', '--url', nobody, '--retry-for', '3'], { CRM_EDGE_API_KEY: business.key });
    assert.equal(down.code, 4, down.stderr);
    assert.match(down.stderr, /gave up after [2-9] attempts/);
    assert.ok(Date.now() - started < 10_000, 'within --retry-for');
  });
});

describe('crm-edge export messages', () => {
  test('every message after --since as JSON Lines, following next_cursor; --follow prints new ones as they arrive', async () => {
    const business = await newBusiness();
    const appSecret = unique('secret');
    writeFileSync(join(dir, 'app-secret'), `${appSecret}\n`);
    const phoneNumberId = String(Date.now()) + String(Math.floor(Math.random() * 1e6));
    const account = await json(
      ['admin', 'channel-accounts', 'add', business.id, '--channel', 'whatsapp', '--provider', 'meta', '--address', phoneNumberId,
        '--secret', `app_secret=@${join(dir, 'app-secret')}`, '--secret', `verify_token=${unique('v')}`, '--secret', `access_token=${unique('t')}`],
      { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN },
    );
    assert.deepEqual(account.secrets_set.sort(), ['access_token', 'app_secret', 'verify_token']);
    const deliver = async (count, from) => {
      const payload = JSON.stringify(whatsappNotification(phoneNumberId, {
        contacts: [{ profile: { name: 'Sender' }, wa_id: from }],
        messages: Array.from({ length: count }, (_, n) => ({ from, id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: `hello ${n}` } })),
      }));
      const signature = `sha256=${createHmac('sha256', appSecret).update(payload).digest('hex')}`;
      const res = await request('POST', account.webhook_path, { body: payload, headers: { 'x-hub-signature-256': signature } });
      assert.equal(res.status, 200, res.text);
    };
    await deliver(30, '353870000001');
    const env = { CRM_EDGE_API_KEY: business.key };

    const exported = await run(['export', 'messages', '--since', EPOCH], env);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const polled = await api(business.key, 'GET', `/api-messages-since?since=${EPOCH}&limit=500`);
    assert.deepEqual(lines.map((m) => m.id), polled.body.messages.map((m) => m.id), 'the same messages as the API, in its order');
    assert.equal(lines.length, 30);

    const follow = start(['export', 'messages', '--since', EPOCH, '--follow', '--interval', '1'], env);
    try {
      await waitFor(() => follow.output().trim().split('\n').length >= 30, 20_000, 'the first 30 lines');
      await deliver(5, '353870000002');
      await waitFor(() => follow.output().trim().split('\n').length >= 35, 20_000, 'the 5 new messages');
      const followed = follow.output().trim().split('\n').map((line) => JSON.parse(line));
      assert.equal(new Set(followed.map((m) => m.id)).size, 35, 'each message once');
    } finally {
      follow.child.kill('SIGINT');
      await follow.done;
    }
  });
});

describe('crm-edge webhooks', () => {
  let receiver;
  before(async () => {
    receiver = await startWebhookReceiver();
  });
  after(() => receiver?.close());

  test('list, test, deliveries --dead, attempts and replay show what the API holds', async () => {
    const business = await newBusiness();
    const env = { CRM_EDGE_API_KEY: business.key };
    const good = receiver.endpoint([200]);
    const refusing = receiver.endpoint([400, 200]); // a 4xx is not retried: dead at once
    const { webhook: goodHook } = await createWebhook(business.key, { url: good.url });
    const { webhook: deadHook } = await createWebhook(business.key, { url: refusing.url, events: ['customer.created'] });

    const table = await run(['webhooks', 'list'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+NAME\s+URL\s+EVENTS\s+ENABLED/);
    assert.ok(table.stdout.includes(goodHook.id) && table.stdout.includes(deadHook.id), table.stdout);
    assert.deepEqual((await json(['webhooks', 'list'], env)).webhooks.map((w) => w.id).sort(), [goodHook.id, deadHook.id].sort());

    const tested = await run(['webhooks', 'test', goodHook.id], env);
    assert.equal(tested.code, 0, tested.stderr + tested.stdout);
    assert.match(tested.stdout, /^delivered\s+true$/m);
    await good.waitForCount(1);

    const synced = await api(business.key, 'POST', '/api-customers-sync', { customers: [{ external_id: unique('w'), name: 'Hook', email: `${unique('w')}@example.com` }] });
    assert.equal(synced.status, 200, synced.text);
    await refusing.waitForCount(1);
    await waitFor(async () => (await deliveriesOf(business.key, deadHook.id, 'status=dead')).length === 1, 20_000, 'the dead delivery');
    const dead = await json(['webhooks', 'deliveries', deadHook.id, '--dead'], env);
    assert.equal(dead.deliveries.length, 1);
    const [delivery] = dead.deliveries;
    assert.deepEqual([delivery.status, delivery.last_status, delivery.event_type], ['dead', 400, 'customer.created']);
    const deadTable = await run(['webhooks', 'deliveries', deadHook.id, '--dead'], env);
    assert.match(deadTable.stdout, new RegExp(`${delivery.id}\\s+customer\\.created\\s+\\S+\\s+dead\\s+1\\s+0\\s+400`), deadTable.stdout);

    const attempts = await json(['webhooks', 'attempts', '--delivery', delivery.id], env);
    assert.deepEqual(attempts.attempts.map((a) => [a.status_code, a.outcome]), [[400, 'dead']]);

    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const replayed = await run(['webhooks', 'replay', deadHook.id, '--from', from, '--to', to], env);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /^1 deliveries queued again/);
    await refusing.waitForCount(2);
    await waitFor(async () => (await deliveriesOf(business.key, deadHook.id)).every((d) => d.status === 'delivered'), 20_000, 'the replay delivered');

    refusing.script([500]);
    const failing = await run(['webhooks', 'test', deadHook.id], env);
    assert.equal(failing.code, 1, 'a test the endpoint refuses exits 1');
    assert.match(failing.stdout, /^status_code\s+500$/m);
    const notMine = await run(['webhooks', 'test', randomUUID()], env);
    assert.equal(notMine.code, 3);
    assert.match(notMine.stderr, /404 not_found/);
  });
});

describe('crm-edge admin', () => {
  test('businesses, keys and channel accounts, with the token from a profile that a flag overrides', async () => {
    const config = join(dir, 'config');
    writeFileSync(config, `# crm-edge profiles\n[default]\nurl = http://127.0.0.1:9\n\n[local]\nurl = ${BASE_URL}\nadmin_token = ${ADMIN_TOKEN}\n`);
    const env = { CRM_EDGE_CONFIG: config, CRM_EDGE_URL: '' };
    const profile = ['--profile', 'local'];
    const name = unique('Acme');
    const created = await run([...profile, 'admin', 'businesses', 'create', name, '--default-country', 'IE'], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.match(/^id\s+(\S+)$/m)?.[1];
    assert.match(created.stdout, new RegExp(`^name\\s+${name}$`, 'm'));
    const shown = await admin('GET', `/admin/businesses/${id}`);
    assert.equal(shown.body.default_country, 'IE');
    assert.deepEqual((await json([...profile, 'admin', 'businesses', 'show', id], env)).name, name);

    const issued = await json([...profile, 'admin', 'keys', 'create', id, '--name', 'import'], env);
    assert.match(issued.key, /^cek_/);
    const works = await json(['webhooks', 'list', '--url', BASE_URL], { CRM_EDGE_API_KEY: issued.key });
    assert.deepEqual(works.webhooks, []);
    const listed = await run([...profile, 'admin', 'keys', 'list', id], env);
    assert.match(listed.stdout, new RegExp(`^${issued.id}\\s+${issued.prefix}\\s+import\\s`, 'm'));
    assert.ok(!listed.stdout.includes(issued.key), 'a listing never shows a key');
    // The key's one request shows in its usage once reported (2 s after it, in the test stack).
    const used = await waitFor(async () => {
      const out = await run([...profile, 'admin', 'keys', 'usage', id, '--by', 'hour', '--key', issued.id], env);
      assert.equal(out.code, 0, out.stderr);
      return /^GET \/api-webhooks\s+1\s+1\s+0\s+0\s+0\s+0$/m.test(out.stdout) ? out : null;
    }, 30_000, 'the key\'s request in its usage', 500);
    assert.match(used.stdout, /^ENDPOINT\s+REQUESTS\s+2XX\s+3XX\s+4XX\s+5XX\s+RATE LIMITED$/m);
    const alerts = await run([...profile, 'admin', 'alerts', id, '--open'], env);
    assert.equal(alerts.code, 0, alerts.stderr);
    assert.deepEqual((await json([...profile, 'admin', 'alerts', id], env)), { alerts: [], open: 0 }, 'a new business has no alert');
    const badPeriod = await run([...profile, 'admin', 'keys', 'usage', id, '--by', 'week'], env);
    assert.equal(badPeriod.code, 3, badPeriod.stderr);
    assert.match(badPeriod.stderr, /by is hour or day/);
    const revoked = await json([...profile, 'admin', 'keys', 'revoke', issued.id], env);
    assert.ok(revoked.revoked_at);
    const refused = await run(['webhooks', 'list'], { CRM_EDGE_API_KEY: issued.key });
    assert.equal(refused.code, 3, 'a revoked key is refused');

    const phone = `+1555${String(Date.now()).slice(-7)}`;
    const account = await json([...profile, 'admin', 'channel-accounts', 'add', id, '--channel', 'sms', '--provider', 'twilio', '--address', phone, '--setting', 'account_sid=AC0123', '--secret', 'auth_token=tok'], env);
    const accounts = await run([...profile, 'admin', 'channel-accounts', 'list', id], env);
    assert.match(accounts.stdout, new RegExp(`^${account.id}\\s+sms\\s+twilio\\s+\\${phone}\\s+-\\s+auth_token\\s+/webhooks/twilio/${account.id}$`, 'm'));

    // [default] points at a port where nothing listens; a flag beats it, a wrong token is the API's 401.
    const flagged = await run(['admin', 'businesses', 'show', id, '--url', BASE_URL, '--admin-token', 'wrong'], env);
    assert.equal(flagged.code, 3, flagged.stderr);
    assert.match(flagged.stderr, /401/);
    const unknown = await run(['--profile', 'nope', 'admin', 'businesses', 'show', id], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no profile \[nope\]/);
  });
});

describe('crm-edge admin connectors', () => {
  test('a HubSpot connector added with its token from a file and a setting typed, tested (its account; a token HubSpot refuses exits 3 with why), listed with its backlog, and its sync log read', async () => {
    const token = `pat-na1-${randomUUID()}`;
    const hubspot = await startHubSpot({ tokens: { [token]: {} }, rateLimit: null });
    try {
      const { id } = await newBusiness();
      const env = { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN };
      const file = join(dir, 'hubspot-token.txt');
      writeFileSync(file, `${token}\n`);
      const added = await json(['admin', 'connectors', 'add', id, '--kind', 'hubspot', '--name', 'Sales',
        '--setting', `api_url=${hubspot.url}`, '--setting', 'sync_companies=true', '--secret', `access_token=@${file}`], env);
      assert.equal(added.settings.sync_companies, true, 'true is sent as true');
      assert.deepEqual(added.secrets_set, ['access_token']);
      const tested = await run(['admin', 'connectors', 'test', added.id], env);
      assert.equal(tested.code, 0, tested.stderr);
      assert.equal(tested.stdout, `ok: HubSpot account ${hubspot.portalId}\n`);
      assert.ok(hubspot.requests.some((r) => r.headers.authorization === `Bearer ${token}`), 'the token from the file, without its line break');

      const wrong = await json(['admin', 'connectors', 'add', id, '--kind', 'hubspot', '--name', 'Stale',
        '--setting', `api_url=${hubspot.url}`, '--secret', 'access_token=pat-na1-revoked'], env);
      const refused = await run(['admin', 'connectors', 'test', wrong.id], env);
      assert.equal(refused.code, 3, refused.stdout);
      assert.match(refused.stdout, /^refused: HubSpot answered 401/);

      const listed = await run(['admin', 'connectors', 'list', id], env);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^${added.id}\\s+hubspot\\s+Sales\\s+true\\s+0\\s+-$`, 'm'));
      const log = await run(['admin', 'connectors', 'sync-log', added.id, '--status', 'failed'], env);
      assert.equal(log.code, 0, log.stderr);
      assert.equal(log.stdout, 'no entries\n');
      const badKind = await run(['admin', 'connectors', 'add', id, '--kind', 'zoho'], env);
      assert.equal(badKind.code, 2, 'a kind the tool does not know is bad usage');
    } finally {
      await hubspot.close();
    }
  });
});

describe('crm-edge admin connectors, Kustomer’s own records', () => {
  test('find-customer prints Kustomer’s customer by email (or null) and open-conversation opens a titled one on chat, as the guide’s tests do', async () => {
    const { connector, kustomer } = await connectedBusiness();
    try {
      const env = { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN };
      const seeded = kustomer.seedCustomer({ name: 'Test Customer', emails: [{ email: 'test@example.com', type: 'home' }] });
      const found = await run(['admin', 'connectors', 'find-customer', connector.id, 'test@example.com'], env);
      assert.equal(found.code, 0, found.stderr);
      assert.equal(found.stdout, `${seeded.id}\tTest Customer\n`);
      const none = await run(['admin', 'connectors', 'find-customer', connector.id, 'nobody@example.com'], env);
      assert.equal(none.stdout, 'null\n');
      const opened = await run(['admin', 'connectors', 'open-conversation', connector.id, seeded.id, 'Test Support Request'], env);
      assert.equal(opened.code, 0, opened.stderr);
      const [conversation] = kustomer.conversations;
      assert.equal(opened.stdout, `${conversation.id}\n`);
      assert.deepEqual([conversation.attributes.name, conversation.attributes.replyChannel], ['Test Support Request', 'chat']);
      const refused = await run(['admin', 'connectors', 'find-customer', connector.id, 'not-an-email'], env);
      assert.notEqual(refused.code, 0, 'a bad address is refused');
      assert.match(refused.stderr, /email/);
    } finally {
      await kustomer.close();
    }
  });
});

describe('crm-edge admin businesses move', () => {
  /** The shard the directory (on the first shard) names for the business. */
  const shardOf = (id) => d1('SELECT shard FROM business_shards WHERE business_id = ?', [id])[0]?.[0] ?? 0;
  /** How many customers of the business each shard holds, fewest first. */
  const customersByShard = (id) => d1Shards('SELECT count(*) FROM customers WHERE business_id = ?', [id])
    .map((rows) => rows[0][0]).sort((a, b) => a - b);

  test('moves a business to the other shard step by step, and an abort ends a pause with every row where it was', async () => {
    const { id, key } = await newBusiness();
    const emails = Array.from({ length: 30 }, (_, n) => `${unique(`moved${n}`)}@example.com`);
    const synced = await api(key, 'POST', '/api-customers-sync', { customers: emails.map((email, n) => ({ email, name: `Moved ${n}` })) });
    assert.equal(synced.status, 200, synced.text);
    const from = shardOf(id);
    const to = 1 - from;
    const env = { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN };

    const moved = await run(['--json', 'admin', 'businesses', 'move', id, '--to', String(to)], env);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(JSON.parse(moved.stdout).phase, 'done', moved.stdout);
    assert.match(moved.stderr, /pausing(.|\n)*copying(.|\n)*switched/, moved.stderr);
    assert.equal(shardOf(id), to, 'the directory names the new shard');
    assert.deepEqual(customersByShard(id), [0, emails.length], 'every customer on one shard, none left behind');
    const read = await api(key, 'GET', `/api-customers?email=${encodeURIComponent(emails[7])}`);
    assert.equal(read.body.name, 'Moved 7', read.text);

    // The operator pauses a move back with its first step, then thinks better of it.
    const paused = await admin('POST', `/admin/businesses/${id}/move`, { to_shard: from });
    assert.equal(paused.body.phase, 'pausing', paused.text);
    const aborted = await run(['--json', 'admin', 'businesses', 'move', id, '--abort'], env);
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.equal(JSON.parse(aborted.stdout).phase, 'aborted', aborted.stdout);
    assert.equal(shardOf(id), to, 'the business stays where it was');
    const written = await api(key, 'POST', '/api-customers-sync', { customers: [{ email: emails[0], name: 'Written after the abort' }] });
    assert.equal(written.status, 200, `writes go on at once: ${written.text}`);
    assert.deepEqual(customersByShard(id), [0, emails.length], 'and no copy is left on the other shard');
  });
});

describe('crm-edge admin backup, restore and resume', () => {
  let receiver;
  before(async () => {
    receiver = await startWebhookReceiver();
  });
  after(() => receiver?.close());

  const customersOf = (id) => d1('SELECT count(*) FROM customers WHERE business_id = ?', [id])[0][0];

  test('a backup past 64 KiB restores through the command into quarantine: an edited line refused by its number before anything is written, the file private, the old key refused, nothing delivered until resumed, then the replay delivered once', async () => {
    const business = await newBusiness();
    const env = { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN };
    const customers = Array.from({ length: 300 }, (_, n) => ({
      external_id: unique(`kept${n}`),
      name: `Kept Customer ${n} of the backup, with a name long enough to fill a page`,
      email: `${unique(`kept${n}`)}@example.com`,
    }));
    for (let at = 0; at < customers.length; at += 100) {
      const synced = await api(business.key, 'POST', '/api-customers-sync', { customers: customers.slice(at, at + 100) });
      assert.equal(synced.status, 200, synced.text);
    }
    // A delivery the endpoint refused once, waiting for its retry when the backup is taken.
    const hook = receiver.endpoint([503]);
    const { webhook } = await createWebhook(business.key, { url: hook.url, events: ['customer.created'] });
    await api(business.key, 'POST', '/api-customers-sync', { customers: [{ external_id: unique('late'), name: 'Late', email: `${unique('late')}@example.com` }] });
    await hook.waitForCount(1);
    await waitFor(async () => (await deliveriesOf(business.key, webhook.id)).some((d) => d.status === 'pending'), 20_000, 'the delivery waiting for a retry');

    const file = join(dir, 'kept.jsonl');
    const backup = await json(['admin', 'backup', business.id, '--file', file], env);
    assert.equal(backup.rows > customers.length, true, JSON.stringify(backup));
    assert.equal(statSync(file).mode & 0o777, 0o600, 'only its owner reads a backup');
    assert.ok(statSync(file).size > 65_536, `bigger than a request's ordinary limit: ${statSync(file).size}`);
    deleteEverywhere(business.id);

    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((line) => line.includes('Kept Customer 7 of'));
    const edited = join(dir, 'edited.jsonl');
    writeFileSync(edited, lines.map((line, n) => (n === at ? line.replace('Customer 7 of', 'Customer 8 of') : line)).join('\n'));
    const refused = await run(['admin', 'restore', '--file', edited], env);
    assert.notEqual(refused.code, 0, 'an edited file is refused');
    assert.match(refused.stderr, new RegExp(`line ${at + 1}\\b`), refused.stderr);
    assert.equal(customersOf(business.id), 0, 'nothing of it was written');

    hook.script([200]);
    const restored = await json(['admin', 'restore', '--file', file], env);
    assert.equal(customersOf(business.id), customers.length + 1, 'every customer back');
    assert.deepEqual(
      [restored.quarantined.deliveries_dead, restored.quarantined.webhooks_disabled, restored.quarantined.api_keys_revoked > 0],
      [1, 1, true],
      JSON.stringify(restored),
    );
    const old = await api(business.key, 'GET', `/api-customers?email=${encodeURIComponent(customers[0].email)}`);
    assert.equal(old.status, 401, `the backup's key is revoked: ${old.text}`);
    const delivered = hook.requests.length;
    const swept = await admin('POST', '/admin/maintenance/sweep');
    assert.equal(swept.status, 200, swept.text);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal(hook.requests.length, delivered, 'nothing is delivered while the business is in quarantine');

    const resumed = await json(['admin', 'resume', business.id], env);
    assert.ok(resumed.resumed.includes('webhooks'), JSON.stringify(resumed));
    const fresh = await json(['admin', 'keys', 'create', business.id, '--name', 'after the restore'], env);
    const replayed = await api(fresh.key, 'POST', `/api-webhooks/${webhook.id}/replay`, { from: EPOCH, to: '2100-01-01T00:00:00Z' });
    assert.equal(replayed.status, 202, replayed.text);
    assert.equal(replayed.body.replayed, 1, replayed.text);
    await hook.waitForCount(delivered + 1);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal(hook.requests.length, delivered + 1, 'the replayed delivery, once');
  });
});

describe('crm-edge console-link', () => {
  test("prints a link to the key's own console, or with the admin token to the business named", async () => {
    const business = await newBusiness();
    const own = await run(['console-link'], { CRM_EDGE_API_KEY: business.key });
    assert.equal(own.code, 0, own.stderr);
    const url = new URL(own.stdout.trim());
    assert.equal(url.pathname, '/console/sign-in');
    assert.match(url.searchParams.get('token'), /^ccl_/);
    assert.match(own.stderr, /15 minutes/);
    const page = await request('GET', `${url.pathname}${url.search}`);
    assert.equal(page.status, 200);
    assert.ok(page.text.includes(business.business.name), 'it opens this business');

    const operator = await json(['console-link', '--business', business.id], { CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN });
    assert.match(operator.url, /\/console\/sign-in\?token=ccl_/);
    const refused = await run(['console-link'], { CRM_EDGE_API_KEY: 'cek_nope' });
    assert.equal(refused.code, 3, 'an API refusal');
  });
});
