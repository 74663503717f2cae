// Benchmark: the bot on the local stack. Time from a customer's Messenger message arriving (the
// signed webhook posted) to the page's reply reaching the Graph API (a local one), p50 and p95,
// and the generator's own time as the bot's log records it; and the labelled set (30 questions a
// Shopify customer asks, with the facts their answers must hold, or a hand-off) answered through
// the whole turn with the real embedding model. BENCH_BOT_QUESTIONS sets how many questions are
// timed (default 60), one a second, each from a customer of its own.
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import llama3Tokenizer from 'llama3-tokenizer-js';
import { admin, call, percentile, sleep } from './lib.mjs';
import { PICOS, PRICES, dollars, embeddedTokens, embedder, milliNeurons, priced, quiet, unitsOf, usageSince } from './units.mjs';

const QUESTIONS = Number(process.env.BENCH_BOT_QUESTIONS ?? 60);

/** The Graph API: answers every send, and says when each recipient's first one arrived. */
const arrived = new Map();
const graph = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const sent = JSON.parse(body || '{}');
    const to = sent.recipient?.id;
    if (to && !arrived.has(to)) arrived.set(to, performance.now());
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ recipient_id: to, message_id: `m_${randomUUID()}` }));
  });
});
await new Promise((resolve) => graph.listen(0, '127.0.0.1', resolve));
const graphUrl = `http://127.0.0.1:${graph.address().port}/v21.0`;

/** The CRM: one Shopify-shaped customer per page-scoped id, and the shop's policies. */
const customers = [];
/** A customer of the timed questions, in the labelled customer's shape. */
const record = (psid, n) => ({
  facebook_id: psid, id: 6207854000 + n, email: `customer${n}@example.com`, first_name: `Maria${n}`, last_name: 'Lopez',
  state: 'enabled', verified_email: true, phone: `+3461122${String(n).padStart(4, '0')}`, orders_count: 7, total_spent: '1,249.50',
  currency: 'EUR', last_order_name: `#${1000 + n}`, tags: 'VIP, newsletter', note: 'Prefers delivery after 5pm', subscription: 'Premium',
  support_level: 'Gold', loyalty_points: 1340, default_address: { address1: 'Calle Mayor 12', city: 'Madrid', zip: '28013', country: 'Spain' },
  orders: [{ name: `#${1000 + n}`, processed_at: '2026-11-20', fulfillment_status: 'shipped', tracking_number: `1Z999AA1${String(n).padStart(10, '0')}`, total_price: '89.90' }],
});
/** The labelled set: its customer, the shop's knowledge, the questions and their facts. */
const LABELLED = JSON.parse(readFileSync(new URL('../shared/domain/src/bot/compose/labelled.json', import.meta.url), 'utf8'));
const shop = LABELLED.shop;
const crm = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(req.url.startsWith('/customers') ? { customers } : shop));
});
await new Promise((resolve) => crm.listen(0, '127.0.0.1', resolve));
const crmUrl = `http://127.0.0.1:${crm.address().port}`;

const business = await admin('POST', '/admin/businesses', { name: 'bench-bot' });
await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, {});
const keyed = { 'x-api-key': key };
const page = String(Date.now());
const appSecret = randomUUID();
const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
  channel: 'facebook', provider: 'meta', address: page, settings: { api_base_url: graphUrl },
  secrets: { app_secret: appSecret, verify_token: 'v', access_token: 't' },
});
const psids = Array.from({ length: QUESTIONS + 1 }, (_, n) => `3${page}${String(n).padStart(4, '0')}`);
psids.forEach((psid, n) => customers.push(n === 0 ? { ...LABELLED.customer, facebook_id: psid } : record(psid, n)));
for (const [name, path, holds] of [
  ['Customers', '/customers.json', { type: 'customers', field: 'facebook_id', key: 'page_scoped_id' }],
  ['Shop', '/shop.json', { type: 'general' }],
]) {
  await call('POST', '/api/dashboard/crm-links', { page_id: page, channels: ['messenger'], name, url: `${crmUrl}${path}`, type: 'api', is_active: true, holds }, keyed);
}
for (;;) {
  const listed = await call('GET', `/api/dashboard/crm-links?page_id=${page}&channel=messenger`, undefined, keyed);
  if (listed.crm_links.every((l) => l.status.state === 'ok')) break;
  if (listed.crm_links.some((l) => l.status.state === 'failing')) throw new Error(JSON.stringify(listed));
  await sleep(500);
}
await call('PUT', '/api/dashboard/bots', { page_id: page, channel: 'messenger', settings: { enabled: true, min_score: 0.2 } }, keyed);

function says(psid, text) {
  const body = JSON.stringify({ object: 'page', entry: [{ id: page, time: Date.now(), messaging: [{ sender: { id: psid }, recipient: { id: page }, timestamp: Date.now(), message: { mid: `m_${randomUUID()}`, text } }] }] });
  const signature = `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
  return call('POST', account.webhook_path, body, { 'x-hub-signature-256': signature });
}

// Inbound message to reply sent, one a second.
const sentAt = new Map();
for (const psid of psids.slice(1)) {
  sentAt.set(psid, performance.now());
  await says(psid, 'What is my order tracking number?');
  await sleep(1000);
}
const deadline = Date.now() + 60_000;
while ([...sentAt.keys()].some((psid) => !arrived.has(psid)) && Date.now() < deadline) await sleep(200);
const times = [...sentAt].filter(([psid]) => arrived.has(psid)).map(([psid, at]) => arrived.get(psid) - at).sort((a, b) => a - b);
const log = await call('GET', `/api/dashboard/bots/answers?page_id=${page}&channel=messenger&limit=100`, undefined, keyed);
const live = log.answers.filter((t) => !t.is_try);
const generator = live.map((t) => t.generator_ms).filter((ms) => ms !== null).sort((a, b) => a - b);
const turn = live.map((t) => t.total_ms).sort((a, b) => a - b);
const replies = live.filter((t) => t.action === 'reply').length;
console.log(`bot: ${times.length} of ${sentAt.size} questions answered on Messenger (${replies} replies in the log)`);
console.log(`  inbound message -> reply at the Graph API: p50 ${percentile(times, 50).toFixed(0)} ms, p95 ${percentile(times, 95).toFixed(0)} ms`);
console.log(`  the turn (message stored -> reply queued), as logged: p50 ${percentile(turn, 50)} ms, p95 ${percentile(turn, 95)} ms`);
console.log(`  the generator's own time: p50 ${percentile(generator, 50)} ms, p95 ${percentile(generator, 95)} ms (${live[0]?.model})`);

// The labelled set through the whole turn (the try), as the first customer, with the real model.
const SET = LABELLED.set;
await says(psids[0], 'Hello');
let customerId;
for (let waited = 0; !customerId && waited < 100; waited++) {
  const turns = await call('GET', `/api/dashboard/bots/answers?page_id=${page}&channel=messenger&limit=100`, undefined, keyed);
  customerId = turns.answers.find((t) => t.question === 'Hello')?.customer_id;
  if (!customerId) await sleep(200);
}
let right = 0;
const missed = [];
for (const [question, fact] of SET) {
  const turn = await call('POST', '/api/dashboard/bots/try', { page_id: page, channel: 'messenger', question, customer_id: customerId }, keyed);
  const ok = fact === null ? turn.action === 'handoff' : turn.action === 'reply' && (turn.text ?? '').includes(fact);
  if (ok) right += 1;
  else missed.push(`${question} -> ${turn.action} ${turn.reason ?? ''} ${turn.text ?? ''}`);
}
console.log(`  labelled set through the whole turn, real model: ${right} of ${SET.length} right (${((right / SET.length) * 100).toFixed(0)} %)`);
for (const line of missed) console.log(`    missed: ${line}`);

// What one answer costs: a known customer's question alone, every invocation it caused counted
// and priced (bench/units.mjs), and the model's tokens counted with Llama 3's own tokenizer (the
// production model's, @cf/meta/llama-3.3-70b-instruct-fp8-fast) from the very request the bot
// sent, which the local embedder keeps (GET /generations/last). The request's messages are
// counted in Llama 3's chat template, with the answer's JSON schema as if it were in the prompt
// too (the most it can add); the output is the local composer's answer to that request, written
// as the model is asked to write it.
const costFrom = await quiet();
const tokensBefore = await embeddedTokens();
await says(psids[1], 'What is my order tracking number?');
await quiet();
const turnUnits = usageSince(costFrom);
const questionTokens = (await embeddedTokens()) - tokensBefore;
const generation = await (await fetch(`${embedder()}/generations/last`)).json();
const chat = generation.messages.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content}<|eot_id|>`).join('');
const prompt = `<|begin_of_text|>${chat}<|start_header_id|>assistant<|end_header_id|>\n\n${JSON.stringify(generation.response_format)}`;
const tokens = (text) => llama3Tokenizer.encode(text, { bos: false, eos: false }).length;
const answered = await (await fetch(`${embedder()}/ai/run/@cf/meta/llama-3.3-70b-instruct-fp8-fast`, { method: 'POST', body: JSON.stringify(generation) })).json();
const inputTokens = tokens(prompt);
const outputTokens = tokens(`${JSON.stringify(answered.result.response)}<|eot_id|>`);
const modelNeurons = milliNeurons('llama-3.3-70b', inputTokens, outputTokens);
const { parts, sum } = priced(turnUnits, modelNeurons + milliNeurons('bge-small', questionTokens));
const FIN = 0.99e12;
console.log(`  one answer's cost at Cloudflare's prices of ${PRICES.as_of}: ${dollars(sum)} (${((sum / FIN) * 100).toFixed(3)} % of Fin's $0.99 per resolution; the target is at most 0.2 %)`);
console.log(`    the model: ${inputTokens} tokens in, ${outputTokens} out (max_tokens ${generation.max_tokens}) = ${modelNeurons / 1000} neurons = ${dollars(modelNeurons * PICOS.ai_milli_neurons)}; with max_tokens out: ${dollars(milliNeurons('llama-3.3-70b', inputTokens, generation.max_tokens) * PICOS.ai_milli_neurons)}; the question embedded: ${questionTokens} tokens`);
console.log(`    the platform: requests ${dollars(parts.requests)}, D1 ${dollars(parts.d1)}, queues ${dollars(parts.queues)}, KV ${dollars(parts.kv)}, objects ${dollars(parts.objects)}, CPU at most ${dollars(parts.cpu_bound)} (${unitsOf(turnUnits)}; ${turnUnits.invocations.join(', ')})`);
graph.close();
crm.close();
if (right * 10 < SET.length * 9) process.exitCode = 1;
