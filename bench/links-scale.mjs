// Benchmark: a CRM link at a large shop's size, against the local CRM of the end-to-end tests.
//   ceiling   the local embedder's own throughput on this machine, in this run (after the first
//             index and after the refresh): 1,000 of the pieces the link was cut into, read from
//             the store as the model embedded them, embedded directly, 100 a call (Workers AI's
//             batch), with 1, 2 and 4 calls in flight, the best of them (after the refresh at
//             that count only); in pieces per second, the unit the pipeline embeds.
//   first     a link to a Shopify store of BENCH_LINKS_SCALE_RECORDS customers (default 100,000;
//             250 a page, Shopify's largest page): from the POST to the link's status ok with
//             every record counted; records and pieces per second, and the pieces' rate against
//             the ceiling.
//   refresh   after 1% of the records changed (half edited, half deleted): the refresh's time as a
//             fraction of the first (target at most 5%), and what it embedded and removed.
//   search    p50/p99 at the client over BENCH_LINKS_SCALE_QUERIES queries (default 200) per
//             mode on that one link's pieces (target: keyword and hybrid within 2x of semantic).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../tests/e2e/links/crm-data.mjs';
import { startCrm } from '../tests/e2e/links/crm-server.mjs';
import { SHOPIFY_EXAMPLE, asGuide, ownRecords } from '../tests/e2e/links/guide.mjs';
import { addLink, businessWithPages, findEntry, pastSecondOf, refresh, search } from '../tests/e2e/links/links.mjs';
import { d1 } from '../tests/e2e/store.mjs';
import { searchLatency, sleep } from './lib.mjs';

if (!process.env.CRM_EDGE_URL || !process.env.CRM_EDGE_STATE) throw new Error('CRM_EDGE_URL and CRM_EDGE_STATE must be set (scripts/bench does)');
const RECORDS = Number(process.env.BENCH_LINKS_SCALE_RECORDS ?? 100_000);
const QUERIES = Number(process.env.BENCH_LINKS_SCALE_QUERIES ?? 200);
const PAGE_SIZE = 250;
const CHANNEL = 'messenger';
const MODES = ['semantic', 'keyword', 'hybrid'];


/** The embedder scripts/dev started: the first line of its log names where it listens. */
function embedderUrl() {
  const log = readFileSync(join(process.env.CRM_EDGE_STATE, 'embedder.log'), 'utf8');
  const url = log.split('\n')[0].replace(/^listening on /, '').trim();
  if (!url.startsWith('http')) throw new Error(`no embedder URL in its log: ${log.slice(0, 200)}`);
  return url;
}

/**
 * What the model embedded for 1,000 of a link's pieces, spread over the whole link: each piece's
 * text without its record's position (`customers[3].email: …` → `email: …`), as the pipeline
 * hands it to the embedder (domain::links::document, `without_record`).
 */
function pieceTexts(business, url) {
  const sql = `SELECT c.text, c.record FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
    WHERE s.business_id = ?1 AND s.url = ?2 AND c.run_id IS NULL ORDER BY c.hash LIMIT 1000`;
  const withoutRecord = (text, record) => !record ? text : text.split('\n').map((line) => {
    if (!line.startsWith(record)) return line;
    const rest = line.slice(record.length);
    return rest.startsWith('.') ? rest.slice(1) : rest.startsWith(': ') ? rest.slice(2) : rest;
  }).join('\n');
  const texts = d1(sql, [business.id, url]).map(([text, record]) => withoutRecord(text, record));
  if (texts.length === 0) throw new Error(`no pieces of ${url} in the store`);
  return texts;
}

/** Pieces per second the embedder makes of `texts` by itself, 100 a call, `inFlight` calls at a time. */
async function rateAt(texts, inFlight) {
  const url = `${embedderUrl()}/ai/run/all-minilm-l6-v2`;
  const batches = [];
  for (let at = 0; at < texts.length; at += 100) batches.push(texts.slice(at, at + 100));
  const started = performance.now();
  const caller = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: batch }) });
      if (!response.ok) throw new Error(`the embedder answered ${response.status}`);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, caller));
  return texts.length / ((performance.now() - started) / 1000);
}

/**
 * The embedder's most: its rate with 1, 2 and 4 calls in flight (the pipeline keeps several
 * slices' calls in flight), the best of them and at how many.
 */
async function ceiling(texts) {
  const rates = [];
  for (const inFlight of [1, 2, 4]) rates.push({ inFlight, rate: await rateAt(texts, inFlight) });
  console.log(`embedder alone, pieces/s with 1, 2, 4 calls in flight: ${rates.map(({ rate }) => rate.toFixed(1)).join(', ')}`);
  return rates.reduce((best, next) => (next.rate > best.rate ? next : best));
}

/** Waits until the link is ok with `records` records and its last fetch is after `after`. */
async function fetched(business, url, records, after, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  for (;;) {
    const entry = await findEntry(business, business.page, url, CHANNEL);
    // A failed slice (a CRM or the embedder slow for a moment) is retried by the stack: said, and
    // waited through; only the deadline ends the wait.
    if (entry?.status.last_error && entry.status.last_error !== lastError) {
      lastError = entry.status.last_error;
      console.error(`${new Date().toISOString()} ${url}: ${lastError}`);
    }
    const done = entry?.status.state === 'ok' && entry.status.records === records && !entry.status.indexing;
    if (done && (!after || entry.status.last_fetched_at > after)) return entry;
    if (Date.now() > deadline) throw new Error(`not fetched within ${timeoutMs} ms: ${JSON.stringify(entry?.status)}`);
    await sleep(1_000);
  }
}

const crm = await startCrm({ shopify: { customers: RECORDS, pageSize: PAGE_SIZE }, hubspot: 1, custom: 1, bucket: false });
try {
  const business = await businessWithPages(1);
  const body = { ...asGuide(SHOPIFY_EXAMPLE, business.page, crm.url), ...ownRecords(), channels: [CHANNEL] };
  const started = Date.now();
  await addLink(business, body);
  const first = await fetched(business, body.url, RECORDS, null, 6 * 3_600_000);
  const firstMs = Date.now() - started;
  const texts = pieceTexts(business, body.url);
  const best = await ceiling(texts);

  const onePercent = Math.max(2, Math.round(RECORDS / 100));
  const edited = crm.data.shopify.slice(10, 10 + onePercent / 2).map((c) => crm.update('shopify', c.id, { note: `Edited ${c.id}` }));
  const deleted = crm.data.shopify.slice(RECORDS / 2, RECORDS / 2 + onePercent / 2).map((c) => c.id);
  for (const id of deleted) crm.remove('shopify', id);
  await pastSecondOf(first.status.last_fetched_at);
  const refreshStarted = Date.now();
  await refresh(business, business.page, body.url);
  const second = await fetched(business, body.url, RECORDS - deleted.length, first.status.last_fetched_at, 3_600_000);
  const refreshMs = Date.now() - refreshStarted;
  // Measured again after the refresh: anything else the machine ran meanwhile shows as a
  // difference between the two.
  const rateAfter = await rateAt(texts, best.inFlight);

  const random = prng(7);
  const people = crm.data.shopify;
  const templates = [(c) => `${c.first_name} ${c.last_name}`, (c) => c.email, (c) => `orders of ${c.first_name} ${c.last_name}`, (c) => `${c.default_address?.city ?? ''} customers`];
  const queries = Array.from({ length: QUERIES }, (_, i) => templates[i % templates.length](random.pick(people)));
  const latency = await searchLatency((params) => search(business, params), { page_id: business.page, channel: CHANNEL }, queries, MODES);

  const perSecond = RECORDS / (firstMs / 1000);
  const piecesPerSecond = first.status.chunks / (firstMs / 1000);
  console.log(`## CRM link at size: ${RECORDS} Shopify customers, ${PAGE_SIZE} a page (${crm.requestsTo('shopify').length} page requests in all)`);
  console.log(`embedder ceiling (same run, ${texts.length} of the link's pieces, ${best.inFlight} call(s) in flight): ${best.rate.toFixed(1)} pieces/s after the first index, ${rateAfter.toFixed(1)} after the refresh`);
  console.log(`first index: ${(firstMs / 1000).toFixed(0)} s, ${perSecond.toFixed(1)} records/s, ${first.status.chunks} pieces = ${piecesPerSecond.toFixed(1)} pieces/s = ${((100 * piecesPerSecond) / Math.max(best.rate, rateAfter)).toFixed(0)}% of the ceiling`);
  console.log(`refresh after 1% changed: ${(refreshMs / 1000).toFixed(1)} s = ${((100 * refreshMs) / firstMs).toFixed(1)}% of the first; embedded ${second.status.last_embedded}, removed ${second.status.last_removed}`);
  for (const mode of MODES) console.log(`search ${mode} at ${second.status.chunks} pieces: p50 ${latency[mode].p50.toFixed(1)} ms, p99 ${latency[mode].p99.toFixed(1)} ms (${(latency[mode].p50 / latency.semantic.p50).toFixed(2)}x semantic p50)`);
} finally {
  await crm.close();
}
