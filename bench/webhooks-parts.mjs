// Benchmark: where a steady stream's time goes, part by part, on the running stack. At one rate
// (BENCH_PARTS_RATE per second, default 50) for BENCH_PARTS_COUNT requests (default 500) each, after
// 20 unmeasured: GET /health (the gateway alone), a lookup by email of a stored customer (the
// gateway and one function with one D1 read), a sync of one new customer to a business with no endpoint (no event), and the
// same to a business with one endpoint on 127.0.0.1 (the event, the queue, the consumer and its
// POST). For each: the workerd thread's time per request (the one thread every Worker, the queue
// broker and D1 share in wrangler dev), the answer's p50, and for the last the receipt's p50 (from
// when the sync was sent to when the endpoint got the event). The difference between the last two
// rows is what a delivery costs that thread; the sync's own answer bounds how soon any delivery
// behind it can arrive.
import { admin, call, sleep } from './lib.mjs';
import { mainThreadSeconds, startReceiver } from './webhooks-shapes.mjs';

const RATE = Number(process.env.BENCH_PARTS_RATE ?? 50);
const COUNT = Number(process.env.BENCH_PARTS_COUNT ?? 500);
const stack = (pid, command) => command.includes('workerd');

/** A business with the highest rate limit (the bench measures the stack, not the limit): its key. */
async function business(name) {
  const { id } = await admin('POST', '/admin/businesses', { name });
  await admin('PATCH', `/admin/businesses/${id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
  const { key } = await admin('POST', `/admin/businesses/${id}/api-keys`, {});
  return key;
}

const receiver = await startReceiver();
const plain = await business('parts-plain');
const hooked = await business('parts-hooked');
const { secret } = await call(
  'POST',
  '/api-webhooks',
  { name: 'parts', url: `${receiver.url}/parts`, events: ['customer.created'] },
  { 'x-api-key': hooked },
);
receiver.trust('/parts', secret);
await syncOne(plain, 'looked-up');

/** One new customer synced under `key`; fails the bench unless it was created. */
async function syncOne(key, id) {
  const answer = await call('POST', '/api-customers-sync', { customers: [{ external_id: id, name: id, email: `${id}@example.com` }] }, { 'x-api-key': key });
  if (answer?.results?.created !== 1) throw new Error(`the sync of ${id} created nothing: ${JSON.stringify(answer)}`);
}

/** `each(id)` COUNT times at RATE per second: the thread's time per request, answer and receipt p50. */
async function steady(part, each) {
  for (let at = 0; at < 20; at += 1) await each(`warm-${part}-${at}`);
  await sleep(1000);
  const before = mainThreadSeconds(stack);
  const answers = [];
  const sent = new Map();
  const start = Date.now();
  const pending = [];
  for (let at = 0; at < COUNT; at += 1) {
    const wait = start + (at * 1000) / RATE - Date.now();
    if (wait > 0) await sleep(wait);
    const id = `${part}-${at}`;
    const t0 = performance.now();
    sent.set(id, t0);
    pending.push(each(id).then(() => answers.push(performance.now() - t0)));
  }
  await Promise.all(pending);
  await sleep(1500);
  const threadMs = ((mainThreadSeconds(stack) - before) * 1000) / COUNT;
  const p50 = (values) => values.sort((a, b) => a - b)[values.length >> 1];
  const receipts = [...sent].filter(([id]) => receiver.received.has(id)).map(([id, t0]) => receiver.received.get(id) - t0);
  return { part, thread_ms: threadMs, answer_p50_ms: p50(answers), receipt_p50_ms: receipts.length ? p50(receipts) : null, received: receipts.length };
}

const parts = [
  await steady('health', () => call('GET', '/health')),
  await steady('lookup', () => call('GET', '/api-customers?email=looked-up@example.com', undefined, { 'x-api-key': plain })),
  await steady('sync', (id) => syncOne(plain, id)),
  await steady('delivered', (id) => syncOne(hooked, id)),
];
const delivered = parts[3];
if (delivered.received !== COUNT) throw new Error(`${delivered.received} of ${COUNT} events reached the endpoint`);

console.log(`\nwebhooks, part by part: ${COUNT} requests at ${RATE}/s each (stack through wrangler dev)`);
console.log('part                                              thread ms/req  answer p50 ms  receipt p50 ms');
const names = {
  health: 'GET /health (the gateway alone)',
  lookup: 'a lookup by email',
  sync: 'a sync of 1 new customer, no endpoint',
  delivered: 'the same, its event delivered',
};
for (const part of parts) {
  const receipt = part.receipt_p50_ms === null ? '' : part.receipt_p50_ms.toFixed(1).padStart(16);
  console.log(`${names[part.part].padEnd(50)}${part.thread_ms.toFixed(2).padStart(13)}${part.answer_p50_ms.toFixed(1).padStart(15)}${receipt}`);
}
console.log(`a delivery's share of the thread: ${(delivered.thread_ms - parts[2].thread_ms).toFixed(2)} ms per event`);
console.log(JSON.stringify({ webhooks_parts: { rate: RATE, count: COUNT, parts } }));
receiver.close?.();
process.exit(0);
