// Benchmark: CRM links (knowledge base for the bot) through the running stack, against the local
// CRM of the end-to-end tests (tests/e2e/links/crm-server.mjs).
//   fetch       a link to a Shopify store of BENCH_LINKS_RECORDS customers (default 500, 50 a page
//               as Shopify pages by default): from the POST to the link's status ok with every
//               record counted and every chunk embedded (the documents view); records per second.
//   search      search latency at the client, p50/p99 over BENCH_LINKS_QUERIES queries (default
//               200) per mode, on one page/channel holding BENCH_LINKS_CHUNKS chunks (default
//               10,000). The chunks are made honestly, through the real fetch and embedding path:
//               BENCH_LINKS_CHUNKS / BENCH_LINKS_PER_LINK links (default 10 of 1,000) to custom-CRM
//               lists (the guide's example shape, one chunk per customer). Embedding 10,000 chunks
//               locally takes minutes (tens of ms a chunk on 2 cores); the setup time is printed.
//   quality     hit@1 and hit@5 of the labelled questions (tests/e2e/links/questions.mjs) in
//               keyword (the BM25 baseline), semantic and hybrid mode, on the Shopify (300),
//               HubSpot (250) and custom (60) lists the end-to-end quality test uses.
import { FULL_SIZES, prng } from '../tests/e2e/links/crm-data.mjs';
import { startCrm } from '../tests/e2e/links/crm-server.mjs';
import { CUSTOM_EXAMPLE, HUBSPOT_EXAMPLE, SHOPIFY_EXAMPLE, asGuide, ownRecords } from '../tests/e2e/links/guide.mjs';
import { addLink, businessWithPages, documents, evaluate, findEntry, search } from '../tests/e2e/links/links.mjs';
import { QUESTIONS } from '../tests/e2e/links/questions.mjs';
import { searchLatency as latencyByMode, percentile } from './lib.mjs';
import { PICOS, PRICES, dollars, embeddedTokens, measure, milliNeurons, priced, quiet, unitsOf, usageSince } from './units.mjs';

if (!process.env.CRM_EDGE_URL || !process.env.CRM_EDGE_ADMIN_TOKEN) throw new Error('CRM_EDGE_URL and CRM_EDGE_ADMIN_TOKEN must be set (scripts/bench does)');
const RECORDS = Number(process.env.BENCH_LINKS_RECORDS ?? 500);
const CHUNKS = Number(process.env.BENCH_LINKS_CHUNKS ?? 10_000);
const PER_LINK = Number(process.env.BENCH_LINKS_PER_LINK ?? 1_000);
const QUERIES = Number(process.env.BENCH_LINKS_QUERIES ?? 200);
const CHANNEL = 'messenger';
const MODES = ['keyword', 'semantic', 'hybrid'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms) => (ms / 1000).toFixed(1);

async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Waits until every link in `urls` on `page` is ok with `records` records, all chunks embedded. */
async function allEmbedded(business, page, urls, records, timeoutMs, what) {
  return waitUntil(
    async () => {
      for (const url of urls) {
        const entry = await findEntry(business, page, url);
        if (!entry || entry.status.last_error) {
          if (entry?.status.last_error) throw new Error(`${url}: ${entry.status.last_error}`);
          return false;
        }
        if (entry.status.state !== 'ok' || entry.status.records !== records) return false;
      }
      const view = await documents(business, page);
      const done = view.documents.length === urls.length && view.documents.every((d) => d.chunks >= d.records && d.embeddings === d.chunks);
      return done && view;
    },
    timeoutMs,
    what,
  );
}

/** Thousandths of a neuron for `tokens` embedded by bge-small. */
const embeddingNeurons = (tokens) => milliNeurons('bge-small', tokens);
/** bge-small's vectors, and so the dimensions one Vectorize query reads. */
const DIMENSIONS = 384;

async function fetchThroughput() {
  const crm = await startCrm({ shopify: RECORDS, hubspot: 1, custom: 1 });
  try {
    const business = await businessWithPages(1);
    const body = { ...asGuide(SHOPIFY_EXAMPLE, business.page, crm.url), ...ownRecords('email'), channels: [CHANNEL] };
    const from = await quiet();
    const tokensBefore = await embeddedTokens();
    const started = Date.now();
    await addLink(business, body);
    const view = await allEmbedded(business, business.page, [body.url], RECORDS, 1_800_000, `${RECORDS} Shopify customers searchable`);
    const elapsed = Date.now() - started;
    await quiet();
    const units = usageSince(from);
    const tokens = (await embeddedTokens()) - tokensBefore;
    const cost = priced(units, embeddingNeurons(tokens));
    return { records: RECORDS, pages: crm.requestsTo('shopify').length, chunks: view.total_chunks, elapsed, rate: RECORDS / (elapsed / 1000), units, tokens, cost };
  } finally {
    await crm.close();
  }
}

/** The cost of one search of `mode` on the page: its invocations, the query's tokens embedded,
 *  and, semantic or hybrid, one Vectorize query of the index's dimensions. */
async function searchCost(business, query, mode) {
  const tokensBefore = await embeddedTokens();
  const measured = await measure(mode, () => search(business, { page_id: business.page, channel: CHANNEL, q: query, top_k: 5, mode }), 3);
  const tokens = ((await embeddedTokens()) - tokensBefore) / 3;
  const cost = priced(measured, embeddingNeurons(tokens));
  const vectors = mode === 'keyword' ? 0 : DIMENSIONS * PICOS.vectorize_queried_dimensions;
  return { mode, measured, tokens, sum: cost.sum + vectors, vectors };
}

async function searchLatency() {
  const links = Math.ceil(CHUNKS / PER_LINK);
  const crms = [];
  try {
    const business = await businessWithPages(1);
    const started = Date.now();
    const urls = [];
    for (let i = 0; i < links; i += 1) {
      const crm = await startCrm({ seed: 1_000 + i, shopify: 1, hubspot: 1, custom: PER_LINK, pinned: false });
      crms.push(crm);
      const body = { ...asGuide(CUSTOM_EXAMPLE, business.page, crm.url), ...ownRecords('email'), channels: [CHANNEL], name: `Customer list ${i + 1}` };
      await addLink(business, body);
      urls.push(body.url);
    }
    const view = await allEmbedded(business, business.page, urls, PER_LINK, 3_600_000, `${links * PER_LINK} chunks embedded`);
    const setup = Date.now() - started;
    // Queries a customer or agent would type about these lists: names, emails, plans.
    const random = prng(42);
    const people = crms.flatMap((crm) => crm.data.custom);
    const templates = [
      (c) => `What plan is ${c.name} on?`,
      (c) => c.email,
      (c) => `${c.name} support level`,
      (c) => `which customers have ${c.support_level} support on the ${c.subscription} plan?`,
    ];
    const queries = Array.from({ length: QUERIES }, (_, i) => templates[i % templates.length](random.pick(people)));
    const latency = await latencyByMode((params) => search(business, params), { page_id: business.page, channel: CHANNEL }, queries, MODES);
    const costs = [];
    for (const mode of MODES) costs.push(await searchCost(business, queries[0], mode));
    return { links, chunks: view.total_chunks, embeddings: view.total_embeddings, setup, latency, costs };
  } finally {
    await Promise.all(crms.map((crm) => crm.close()));
  }
}

async function quality() {
  const crm = await startCrm(FULL_SIZES);
  try {
    const business = await businessWithPages(1);
    const bodies = {
      shopify: { ...asGuide(SHOPIFY_EXAMPLE, business.page, crm.url), ...ownRecords('email') },
      hubspot: { ...asGuide(HUBSPOT_EXAMPLE, business.page, crm.url, '?limit=100'), ...ownRecords('properties.email') },
      custom: { ...asGuide(CUSTOM_EXAMPLE, business.page, crm.url), ...ownRecords('email') },
    };
    const linkIds = {};
    for (const [source, body] of Object.entries(bodies)) linkIds[source] = (await addLink(business, { ...body, channels: [CHANNEL] })).crm_link.id;
    await waitUntil(
      async () => {
        for (const [source, body] of Object.entries(bodies)) {
          const entry = await findEntry(business, business.page, body.url);
          if (entry?.status.last_error) throw new Error(`${source}: ${entry.status.last_error}`);
          if (!entry || entry.status.state !== 'ok' || entry.status.records < FULL_SIZES[source]) return false;
        }
        return true;
      },
      1_800_000,
      'the quality lists fetched',
    );
    const scores = [];
    for (const mode of MODES) scores.push(await evaluate(business, { page: business.page, channel: CHANNEL }, mode, QUESTIONS, linkIds));
    return scores;
  } finally {
    await crm.close();
  }
}

const f = await fetchThroughput();
console.log(`links fetch -> searchable: ${f.records} Shopify customers (${f.pages} page requests, ${f.chunks} chunks) in ${seconds(f.elapsed)} s = ${f.rate.toFixed(1)} records/s`);
console.log(`  its cost at Cloudflare's prices of ${PRICES.as_of}: ${dollars(f.cost.sum)}, ${dollars(f.cost.sum / f.records)} a record fetched, embedded and indexed (${f.tokens} tokens embedded = ${dollars(f.cost.parts.ai)}; ${unitsOf(f.units)}; the stack's cron runs in that time included); stored, each record's ${DIMENSIONS} dimensions cost ${dollars(DIMENSIONS * PICOS.vectorize_stored_dimensions)} a month`);
const s = await searchLatency();
console.log(`links search at ${s.chunks} chunks (${s.links} links x ${PER_LINK} customers, ${s.embeddings} embeddings; setup through fetch and embedding took ${seconds(s.setup)} s), ${QUERIES} queries each, top_k 5:`);
for (const mode of MODES) console.log(`  ${mode.padEnd(8)} p50 ${s.latency[mode].p50.toFixed(1)} ms  p99 ${s.latency[mode].p99.toFixed(1)} ms`);
for (const c of s.costs) {
  console.log(`  one ${c.mode} search costs ${dollars(c.sum)} (${c.tokens.toFixed(0)} tokens embedded${c.vectors ? `, ${DIMENSIONS} queried dimensions = ${dollars(c.vectors)}` : ''}; ${unitsOf(c.measured)})`);
}
const q = await quality();
console.log(`links quality: ${QUESTIONS.length} labelled questions (${QUESTIONS.filter((x) => x.paraphrased).length} paraphrased) on ${FULL_SIZES.shopify} Shopify, ${FULL_SIZES.hubspot} HubSpot and ${FULL_SIZES.custom} custom records:`);
console.log('  mode      hit@1  hit@5  paraphrased hit@5  search p50');
for (const score of q) {
  const sorted = [...score.latencies].sort((a, b) => a - b);
  console.log(`  ${score.mode.padEnd(8)}  ${score.hitAt1.toFixed(2)}   ${score.hitAt5.toFixed(2)}   ${score.paraphrasedHitAt5.toFixed(2)}               ${percentile(sorted, 50).toFixed(1)} ms`);
}
