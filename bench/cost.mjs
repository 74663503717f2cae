// Benchmark: what one call of each endpoint costs, as Cloudflare counts and bills it. Every
// invocation of the local stack ends with a `[usage]` line (shared/edge/src/env.rs): D1 statements
// and round trips, the rows D1 reported read and written, subrequests, KV operations. Each
// operation below runs alone, BENCH_COST_RUNS times (default 3), and its cost is the sum over every
// invocation it caused (the gateway, the rate limiter's object, the function, and the queue
// consumers it fed) until the log has been quiet for a second and a half; the median run is printed.
// Counts, not times: the figures do not depend on the machine's load.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GRAPH_VERSION, startMeta, whatsappNotification } from '../tests/e2e/providers/meta.mjs';
import { formBody, mailgunSignature, metaSignature, twilioSignature } from '../tests/e2e/signing.mjs';
import { admin, call, sleep } from './lib.mjs';

if (!process.env.CRM_EDGE_STATE || !process.env.CRM_EDGE_PUBLIC_URL) throw new Error('CRM_EDGE_STATE and CRM_EDGE_PUBLIC_URL must be set (scripts/bench does)');
const RUNS = Number(process.env.BENCH_COST_RUNS ?? 3);
const LOG = join(process.env.CRM_EDGE_STATE, 'wrangler.log');
const PUBLIC = process.env.CRM_EDGE_PUBLIC_URL;
const FIELDS = ['d1_round_trips', 'd1_queries', 'rows_read', 'rows_written', 'subrequests', 'kv'];
const digits = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join('');

/** Waits until the stack's log has not grown for 1.5 s; returns its size. */
async function quiet() {
  let size = statSync(LOG).size;
  for (let still = 0; still < 1500; still += 100) {
    await sleep(100);
    const now = statSync(LOG).size;
    if (now !== size) {
      size = now;
      still = -100;
    }
  }
  return size;
}

/** The sum of every [usage] line in the log's bytes from `from`, and each invocation's name. */
function usageSince(from) {
  const text = readFileSync(LOG).subarray(from).toString('utf8');
  const total = Object.fromEntries(FIELDS.map((field) => [field, 0]));
  const invocations = [];
  for (const line of text.split('\n')) {
    const at = line.indexOf('[usage] ');
    if (at < 0) continue;
    const words = line.slice(at + 8).trim().split(/\s+/);
    invocations.push(words.filter((word) => !word.includes('=')).join(' '));
    for (const word of words) {
      const [name, value] = word.split('=');
      if (name in total) total[name] += Number(value);
    }
  }
  return { total, invocations };
}

/** A POST whose answer is not JSON (a receiver's); a non-2xx answer throws. */
async function post(path, body, headers = {}) {
  const response = await fetch(`${process.env.CRM_EDGE_URL}${path}`, { method: 'POST', body, headers });
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
}

/** Runs `operation` RUNS times, each alone; the run with the median rows read, with its invocations. */
async function measure(name, operation) {
  const runs = [];
  for (let run = 0; run < RUNS; run += 1) {
    const from = await quiet();
    await operation(run);
    await quiet();
    runs.push(usageSince(from));
  }
  runs.sort((a, b) => a.total.rows_read - b.total.rows_read || a.total.rows_written - b.total.rows_written);
  const median = runs[Math.floor(runs.length / 2)];
  const spread = FIELDS.filter((field) => runs.some((run) => run.total[field] !== median.total[field]));
  return { name, ...median, spread };
}

// ---------------------------------------------------------------- one business with every channel

const business = await admin('POST', '/admin/businesses', { name: `bench-cost-${Date.now()}`, default_country: 'IE' });
await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, { name: 'bench' });
const api = (method, path, body) => call(method, path, body, { 'x-api-key': key });
/** A sync that must apply every customer. */
async function sync(customers) {
  const { results } = await api('POST', '/api-customers-sync', { customers });
  if (results.failed !== 0) throw new Error(`sync: ${JSON.stringify(results.details.find((d) => d.error))}`);
  return results;
}
const channelAccount = (fields) => admin('POST', `/admin/businesses/${business.id}/channel-accounts`, fields);

const accessTokens = new Map();
const meta = await startMeta(accessTokens);
const whatsapp = { address: `1${digits(15)}`, app_secret: randomUUID(), access_token: `EAAG${digits(40)}` };
accessTokens.set(whatsapp.address, whatsapp.access_token);
const whatsappAccount = await channelAccount({
  channel: 'whatsapp', provider: 'meta', address: whatsapp.address,
  settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
  secrets: { app_secret: whatsapp.app_secret, verify_token: 'verify', access_token: whatsapp.access_token },
});
const sms = { address: `+35386${digits(7)}`, auth_token: randomBytes(16).toString('hex') };
const smsAccount = await channelAccount({
  channel: 'sms', provider: 'twilio', address: sms.address,
  settings: { account_sid: `AC${randomBytes(16).toString('hex')}` }, secrets: { auth_token: sms.auth_token },
});
const email = { address: `support-${digits(6)}@in.example.com`, signing_key: randomBytes(16).toString('hex') };
const emailAccount = await channelAccount({
  channel: 'email', provider: 'mailgun', address: email.address,
  settings: { domain: 'in.example.com' }, secrets: { signing_key: email.signing_key, api_key: 'key-bench' },
});

// Each tag its own block of Irish mobile numbers, so that no batch matches another's customers.
const blocks = new Map();
const customer = (tag, n) => {
  if (!blocks.has(tag)) blocks.set(tag, 100 + blocks.size);
  const phone = `+35387${blocks.get(tag)}${String(n).padStart(4, '0')}`;
  return { external_id: `COST-${tag}-${n}`, name: `Cost Customer ${n}`, email: `cost.${tag}.${n}@example.com`, phone, whatsapp_number: phone };
};
const thousand = (tag) => Array.from({ length: 1000 }, (_, n) => customer(tag, n));
// Customers to look up, page through and send to: 1,000 stored, 150 messages received.
const stored = thousand('stored');
await sync(stored);
const since = new Date().toISOString();

function whatsappInbound(from) {
  const message = { from: from.slice(1), id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'Where is my order?' } };
  const body = JSON.stringify(whatsappNotification(whatsapp.address, { contacts: [{ profile: { name: 'Cost' }, wa_id: message.from }], messages: [message] }));
  return call('POST', whatsappAccount.webhook_path, body, { 'x-hub-signature-256': metaSignature(whatsapp.app_secret, body) });
}
for (let n = 0; n < 150; n += 1) await whatsappInbound(stored[n % 100].phone);

// ---------------------------------------------------------------- the operations

const OPERATIONS = [
  ['sync of 1 new customer', (run) => sync([customer(`one${run}`, 0)])],
  ['sync of 1000 new customers', (run) => sync(thousand(`new${run}`))],
  ['sync of 1000 unchanged customers', () => sync(stored)],
  ['lookup by email', (run) => api('GET', `/api-customers?email=${encodeURIComponent(stored[run].email)}`)],
  ['batch lookup of 100 emails', () => api('POST', '/api-customers-batch-lookup', { emails: stored.slice(0, 100).map((c) => c.email) })],
  ['messages-since, a page of 100', () => api('GET', `/api-messages-since?since=${encodeURIComponent(since)}&limit=100`)],
  ['send a WhatsApp text (request and delivery)', (run) =>
    api('POST', '/api-send-message', { customer_id: stored[run].external_id, channel: 'whatsapp', content: 'Your order is ready.' })],
  ['receive a WhatsApp text (Meta)', (run) => whatsappInbound(stored[run].phone)],
  ['receive an SMS (Twilio)', (run) => {
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const params = { MessageSid: sid, SmsSid: sid, AccountSid: 'AC00000000000000000000000000000000', From: stored[run].phone, To: sms.address, Body: 'Where is my order?', NumMedia: '0', NumSegments: '1', ApiVersion: '2010-04-01' };
    return post(smsAccount.webhook_path, formBody(params), {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSignature(sms.auth_token, `${PUBLIC}${smsAccount.webhook_path}`, params),
    });
  }],
  ['receive an email (Mailgun)', async (run) => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const token = randomBytes(25).toString('hex');
    const fields = {
      recipient: email.address, sender: stored[run].email, from: stored[run].email, subject: 'Order', 'body-plain': 'Where is my order?',
      'stripped-text': 'Where is my order?', 'Message-Id': `<${randomUUID()}@mail.example.com>`, timestamp, token, signature: mailgunSignature(email.signing_key, timestamp, token),
    };
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    return post(emailAccount.webhook_path, form);
  }],
];

const results = [];
for (const [name, operation] of OPERATIONS) results.push(await measure(name, operation));
await meta.close?.();

console.log(`## Cost per call: the median of ${RUNS} runs, summed over every invocation the call caused`);
console.log('| operation | D1 round trips | D1 statements | rows read | rows written | subrequests | KV operations | invocations |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const { name, total, invocations, spread } of results) {
  const counted = new Map();
  for (const what of invocations) counted.set(what, (counted.get(what) ?? 0) + 1);
  const names = [...counted].map(([what, n]) => (n > 1 ? `${what} ×${n}` : what)).join(', ');
  const cells = FIELDS.map((field) => `${total[field]}${spread.includes(field) ? '*' : ''}`);
  console.log(`| ${name} | ${cells.join(' | ')} | ${names} |`);
}
console.log('(* the runs differed in this count; the median run is shown)');
process.exit(0);
