// Benchmark: inbound webhook ingest rate, and /api-messages-since under 16 concurrent pollers
// reading limit=100 pages, through the running stack.
import { createHmac, randomUUID } from 'node:crypto';

const BASE = process.env.CRM_EDGE_URL;
const ADMIN = process.env.CRM_EDGE_ADMIN_TOKEN;
if (!BASE || !ADMIN) throw new Error('CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)');
const WEBHOOKS = Number(process.env.BENCH_WEBHOOKS ?? 300);
const POLLS = Number(process.env.BENCH_POLLS ?? 800);
const POLLERS = 16;

async function call(method, path, body, headers = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

const admin = { authorization: `Bearer ${ADMIN}` };
const business = await call('POST', '/admin/businesses', { name: 'bench-messages' }, admin);
// The benchmark measures the stack, not the limit: its business gets the highest one.
await call('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } }, admin);
const { key } = await call('POST', `/admin/businesses/${business.id}/api-keys`, {}, admin);
const appSecret = randomUUID();
const phoneNumberId = String(Date.now());
const account = await call('POST', `/admin/businesses/${business.id}/channel-accounts`, {
  channel: 'whatsapp', provider: 'meta', address: phoneNumberId,
  secrets: { app_secret: appSecret, verify_token: 'v', access_token: 't' },
}, admin);

function webhook(count, n) {
  const messages = Array.from({ length: count }, (_, i) => ({
    from: `35387${String((n * count + i) % 2000).padStart(7, '0')}`,
    id: `wamid.${randomUUID()}`, timestamp: '1700000000', type: 'text', text: { body: `bench ${n}.${i}` },
  }));
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { phone_number_id: phoneNumberId },
      contacts: messages.map((m) => ({ profile: { name: 'Bench' }, wa_id: m.from })), messages,
    } }] }],
  });
  return { body, signature: `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}` };
}

async function pool(total, concurrency, task) {
  const latencies = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const n = next++;
      const t0 = performance.now();
      await task(n);
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { seconds, perSecond: total / seconds, p50: at(0.5), p99: at(0.99) };
}

const deliver = (count) => async (n) => {
  const { body, signature } = webhook(count, n);
  await call('POST', account.webhook_path, body, { 'x-hub-signature-256': signature });
};

// Warm-up: compile every isolate on the path.
await deliver(1)(0);
await call('GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=1', undefined, { 'x-api-key': key });

const single = await pool(WEBHOOKS, 8, deliver(1));
const batched = await pool(Math.ceil(WEBHOOKS / 10), 8, deliver(10));

const total = (await call('GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500', undefined, { 'x-api-key': key })).messages;
const cursors = [];
let page = await call('GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=100', undefined, { 'x-api-key': key });
while (page.has_more) {
  cursors.push(page.next_cursor);
  page = await call('GET', `/api-messages-since?cursor=${page.next_cursor}&limit=100`, undefined, { 'x-api-key': key });
}
const polls = await pool(POLLS, POLLERS, async (n) => {
  const cursor = cursors[n % cursors.length];
  await call('GET', `/api-messages-since?cursor=${cursor}&limit=100&include_attachments=true`, undefined, { 'x-api-key': key });
});

const row = (name, r, unit) => console.log(`${name.padEnd(44)} ${r.perSecond.toFixed(1).padStart(8)} ${unit.padEnd(11)} p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(6)} ms`);
console.log(`\nmessages (stack through wrangler dev; ${total.length >= 500 ? '500+' : total.length} messages stored)`);
row(`ingest: ${WEBHOOKS} webhooks x 1 message, 8 senders`, single, 'msg/s');
row(`ingest: ${Math.ceil(WEBHOOKS / 10)} webhooks x 10 messages, 8 senders`, { ...batched, perSecond: batched.perSecond * 10 }, 'msg/s');
row(`messages-since limit=100, ${POLLERS} pollers, ${POLLS} requests`, polls, 'req/s');
