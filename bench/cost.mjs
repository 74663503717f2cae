// Benchmark: what one call of each endpoint costs, as Cloudflare counts and bills it. Every
// invocation of the local stack ends with a `[usage]` line (shared/edge/src/platform/env.rs): D1 statements
// and round trips, the rows D1 reported read and written, subrequests, KV operations. Each
// operation below runs alone, BENCH_COST_RUNS times (default 3), and its cost is the sum over every
// invocation it caused (the gateway, the rate limiter's object, the function, and the queue
// consumers it fed) until the log has been quiet for a second and a half; the median run is printed.
// Counts, not times: the figures do not depend on the machine's load. Then each is priced
// (bench/units.mjs says how).
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { GRAPH_VERSION, startMeta, whatsappNotification } from '../tests/e2e/providers/meta.mjs';
import { formBody, mailgunSignature, metaSignature, twilioSignature } from '../tests/e2e/signing.mjs';
import { admin, call, kustomerBusiness, sleep } from './lib.mjs';
import { FIELDS, PRICES, dollars, measure, priced, unitsOf } from './units.mjs';

if (!process.env.CRM_EDGE_PUBLIC_URL) throw new Error('CRM_EDGE_PUBLIC_URL must be set (scripts/bench does)');
const RUNS = Number(process.env.BENCH_COST_RUNS ?? 3);
const PUBLIC = process.env.CRM_EDGE_PUBLIC_URL;
const digits = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join('');

/** A POST whose answer is not JSON (a receiver's); a non-2xx answer throws. */
async function post(path, body, headers = {}) {
  const response = await fetch(`${process.env.CRM_EDGE_URL}${path}`, { method: 'POST', body, headers });
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
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

/** A WhatsApp text from `from` to the number `to` ({address, app_secret}) of `account`, as Meta posts it. */
function whatsappText(to, account, from) {
  const message = { from: from.slice(1), id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'Where is my order?' } };
  const body = JSON.stringify(whatsappNotification(to.address, { contacts: [{ profile: { name: 'Cost' }, wa_id: message.from }], messages: [message] }));
  return call('POST', account.webhook_path, body, { 'x-hub-signature-256': metaSignature(to.app_secret, body) });
}
const whatsappInbound = (from) => whatsappText(whatsapp, whatsappAccount, from);
for (let n = 0; n < 150; n += 1) await whatsappInbound(stored[n % 100].phone);

// ---------------------------------------------------------------- a business as one is used
// Its messages are stored, delivered to its webhook and put on its Kustomer timeline: one inbound
// message end to end. Each customer's first message (the warm-up) opens their customer and
// conversation in Kustomer; the one measured is a later message of the conversation.
const hooks = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise((resolve) => hooks.listen(0, '127.0.0.1', resolve));
const wired = await kustomerBusiness({ per_minute: null, per_second: null, per_day: null }, null);
await call('POST', '/api-webhooks', { name: 'cost', url: `http://127.0.0.1:${hooks.address().port}/in`, events: ['message.received'] }, { 'x-api-key': wired.key });
const wiredNumber = { address: `1${digits(15)}`, app_secret: randomUUID() };
const wiredAccount = await admin('POST', `/admin/businesses/${wired.business.id}/channel-accounts`, {
  channel: 'whatsapp', provider: 'meta', address: wiredNumber.address,
  settings: { api_base_url: `${meta.url}/${GRAPH_VERSION}` },
  secrets: { app_secret: wiredNumber.app_secret, verify_token: 'verify', access_token: `EAAG${digits(40)}` },
});
const wiredPhones = stored.slice(0, RUNS).map((customer) => customer.phone);
for (const phone of wiredPhones) await whatsappText(wiredNumber, wiredAccount, phone);
for (let waited = 0; wired.kustomer.conversations.length < RUNS; waited += 1) {
  if (waited > 600) throw new Error(`the warm-up: ${wired.kustomer.conversations.length} of ${RUNS} conversations in Kustomer`);
  await sleep(100);
}
const onTimeline = () => wired.kustomer.conversations.reduce((n, c) => n + wired.kustomer.messages(c.id).length, 0);

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
  ['a WhatsApp text end to end: stored, on a webhook, on the Kustomer timeline', async (run) => {
    const before = onTimeline();
    await whatsappText(wiredNumber, wiredAccount, wiredPhones[run]);
    for (let waited = 0; onTimeline() === before; waited += 1) {
      if (waited > 600) throw new Error('the message did not reach the Kustomer timeline');
      await sleep(100);
    }
  }],
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
for (const [name, operation] of OPERATIONS) results.push(await measure(name, operation, RUNS));
await meta.close?.();
await wired.kustomer.close();
hooks.close();

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

console.log();
console.log(`## What each call costs: its marginal cost at Cloudflare's prices of ${PRICES.as_of} (the median run)`);
console.log('| operation | requests | D1 rows | KV | queues | R2 | Durable Objects | CPU (at most) | total | per 1,000 | units |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const result of results) {
  const { parts, sum } = priced(result);
  const units = unitsOf(result);
  const cells = [parts.requests, parts.d1, parts.kv, parts.queues, parts.r2, parts.objects, parts.cpu_bound].map(dollars);
  console.log(`| ${result.name} | ${cells.join(' | ')} | ${dollars(sum)} | ${dollars(sum * 1000)} | ${units} |`);
}
console.log('(CPU is priced at its bound: the local runtime does not measure CPU time; each invocation\'s time less its D1 waits, which still holds its waits on other calls.)');
process.exit(0);
