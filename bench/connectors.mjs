// Benchmark: the four CRM connectors through the running stack in one run, each measured at its
// local CRM (tests/e2e/crm/): HubSpot, Kustomer, Krayin (its messages as activities, its Sync
// Messages on) and Salesforce (each message a completed Task).
//   latency   BENCH_CONNECTOR_MESSAGES inbound WhatsApp messages (default 60), one every 250 ms,
//             from 6 customers whose contact (or Kustomer customer and conversation, or Krayin
//             person and lead, or Salesforce Contact) is made already:
//             inbound POST sent → the record on the timeline, p50/p99.
//   calls     each CRM's calls made for those messages, per message.
import { createHmac, randomBytes } from 'node:crypto';
import { startHubSpot } from '../tests/e2e/crm/hubspot.mjs';
import { sanctumToken, startKrayin } from '../tests/e2e/crm/krayin.mjs';
import { startSalesforce } from '../tests/e2e/crm/salesforce.mjs';
import { whatsappNotification } from '../tests/e2e/providers/meta.mjs';
import { admin, call, kustomerBusiness, percentile, sleep } from './lib.mjs';

const MESSAGES = Number(process.env.BENCH_CONNECTOR_MESSAGES ?? 60);

async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function hubspotBusiness() {
  const token = `pat-na1-${randomBytes(12).toString('hex')}`;
  const hubspot = await startHubSpot({ tokens: { [token]: {} }, rateLimit: null, dailyLimit: null });
  const business = await admin('POST', '/admin/businesses', { name: `bench-hubspot-${Date.now()}`, default_country: 'IE' });
  await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'hubspot',
    settings: { api_url: hubspot.url },
    secrets: { access_token: token },
    rate_limit: { per_minute: null, per_second: null, per_day: null },
  });
  return { hubspot, business };
}

async function krayinBusiness() {
  const token = sanctumToken(1);
  const krayin = await startKrayin({ tokens: { [token]: { user: { id: 1, name: 'bench', email: 'bench@krayin.test' } } }, rateLimit: null });
  const business = await admin('POST', '/admin/businesses', { name: `bench-krayin-messages-${Date.now()}`, default_country: 'IE' });
  await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'krayin',
    settings: { base_url: krayin.origin, sync_messages: true },
    secrets: { api_token: token },
    rate_limit: { per_minute: null, per_second: null, per_day: null },
  });
  return { krayin, business };
}

async function salesforceBusiness() {
  const token = `00D-bench-${randomBytes(12).toString('hex')}`;
  const salesforce = await startSalesforce({ tokens: { [token]: {} }, dailyApiRequests: 10_000_000 });
  const business = await admin('POST', '/admin/businesses', { name: `bench-salesforce-${Date.now()}`, default_country: 'IE' });
  await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  await admin('POST', `/admin/businesses/${business.id}/connectors`, {
    kind: 'salesforce',
    settings: { instance_url: salesforce.url },
    secrets: { client_id: 'bench-app', client_secret: 'bench-secret', access_token: token },
    rate_limit: { per_minute: null, per_second: null, per_day: null },
  });
  return { salesforce, business };
}

/** Inbound WhatsApp messages to a new number of `business`; `sent(text)` posts one signed. */
async function whatsapp(business) {
  const secrets = { app_secret: randomBytes(8).toString('hex'), verify_token: 'v', access_token: 'a' };
  const address = `1${String(randomBytes(6).readUIntBE(0, 6)).padStart(15, '0').slice(-15)}`;
  const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'whatsapp', provider: 'meta', address, settings: {}, secrets,
  });
  return async (phone, text) => {
    const wamid = `wamid.${randomBytes(8).toString('hex')}`;
    const body = JSON.stringify(
      whatsappNotification(address, {
        contacts: [{ profile: { name: 'Bench' }, wa_id: phone }],
        messages: [{ from: phone, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
      }),
    );
    const signature = `sha256=${createHmac('sha256', secrets.app_secret).update(body).digest('hex')}`;
    await call('POST', account.webhook_path, body, { 'x-hub-signature-256': signature });
  };
}

/**
 * Sends MESSAGES messages from 6 warmed-up customers; `timeline()` lists the texts on the CRM's
 * timeline, `calls()` counts the CRM's calls so far.
 */
async function measure(business, timeline, calls) {
  const send = await whatsapp(business);
  const phones = Array.from({ length: 6 }, () => `35387${String(randomBytes(4).readUInt32BE() % 10_000_000).padStart(7, '0')}`);
  for (const phone of phones) await send(phone, `warm-${phone}`);
  await waitUntil(() => phones.every((phone) => timeline().includes(`warm-${phone}`)), 60_000, 'the warm-up');
  await sleep(1000);
  const callsBefore = calls();
  const sentAt = new Map();
  const arrived = new Map();
  const watcher = setInterval(() => {
    for (const text of timeline()) if (!arrived.has(text)) arrived.set(text, performance.now());
  }, 5);
  for (let i = 0; i < MESSAGES; i += 1) {
    sentAt.set(`bench-${i}`, performance.now());
    await send(phones[i % phones.length], `bench-${i}`);
    await sleep(250);
  }
  await waitUntil(() => [...Array(MESSAGES).keys()].every((i) => arrived.has(`bench-${i}`)), 120_000, 'every message on the timeline');
  clearInterval(watcher);
  await sleep(1000);
  const latencies = [...Array(MESSAGES).keys()].map((i) => arrived.get(`bench-${i}`) - sentAt.get(`bench-${i}`)).sort((a, b) => a - b);
  const twice = timeline().filter((text) => text.startsWith('bench-')).length - MESSAGES;
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), perMessage: (calls() - callsBefore) / MESSAGES, twice };
}

const { hubspot, business } = await hubspotBusiness();
const h = await measure(
  business,
  () => hubspot.communications.map((record) => record.properties.hs_communication_body),
  () => hubspot.requests.filter((r) => r.path.startsWith('/crm/')).length,
);
await hubspot.close();
const k = await (async () => {
  const { kustomer, business: kBusiness } = await kustomerBusiness({ per_minute: null, per_second: null, per_day: null }, null);
  const result = await measure(
    kBusiness,
    () => kustomer.conversations.flatMap((c) => kustomer.messages(c.id)).map((m) => m.attributes.preview),
    () => kustomer.requests.filter((r) => r.path.startsWith('/v1/')).length,
  );
  await kustomer.close();
  return result;
})();
const kr = await (async () => {
  const { krayin, business: krBusiness } = await krayinBusiness();
  const result = await measure(
    krBusiness,
    () => krayin.activities.map((activity) => String(activity.comment ?? '').split('\n')[0].trim()),
    () => krayin.requests.filter((r) => r.path.startsWith('/api/v1/')).length,
  );
  await krayin.close();
  return result;
})();
const sf = await (async () => {
  const { salesforce, business: sfBusiness } = await salesforceBusiness();
  const result = await measure(
    sfBusiness,
    () => salesforce.records('Task').map((task) => String(task.Subject ?? '').replace(/^WhatsApp from the customer: /, '')),
    () => salesforce.requests.filter((r) => r.path.startsWith('/services/data/')).length,
  );
  await salesforce.close();
  return result;
})();
for (const [name, r] of [['hubspot', h], ['kustomer', k], ['krayin', kr], ['salesforce', sf]]) {
  console.log(`${name} inbound message -> timeline: ${MESSAGES} messages, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms; ${r.perMessage.toFixed(2)} calls per message; on the timeline twice: ${r.twice}`);
}
console.log(`against kustomer p50: hubspot ${(h.p50 / k.p50).toFixed(2)}x, krayin ${(kr.p50 / k.p50).toFixed(2)}x, salesforce ${(sf.p50 / k.p50).toFixed(2)}x`);
if ([h, k, kr, sf].some((r) => r.twice !== 0)) process.exitCode = 1;
