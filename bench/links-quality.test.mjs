// Search quality on realistic lists: one page with the guide's Shopify (300 customers), HubSpot
// (250 contacts) and custom (60 customers) links on one channel, asked the labelled questions of
// questions.mjs in semantic mode and in keyword mode (the BM25 baseline). hit@k is the share of
// questions whose expected record is among the first k results, a result counting when it comes
// from the question's link and its chunk carries that record's own id line (links.mjs isHit).
// Both rates are printed; semantic hit@5 must reach the floor below.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FULL_SIZES } from '../tests/e2e/links/crm-data.mjs';
import { startCrm } from '../tests/e2e/links/crm-server.mjs';
import { CUSTOM_EXAMPLE, HUBSPOT_EXAMPLE, SHOPIFY_EXAMPLE, asGuide, ownRecords } from '../tests/e2e/links/guide.mjs';
import { BIG_FETCH_TIMEOUT_MS, addLink, businessWithPages, evaluate, qualityLine, waitForFetched } from '../tests/e2e/links/links.mjs';
import { QUESTIONS } from '../tests/e2e/links/questions.mjs';

/**
 * The least semantic hit@5 we accept over all the labelled questions: a change that makes
 * retrieval clearly worse must not pass unnoticed. A first value, to be set to what the stack
 * measures (less a small margin) once the feature runs. Before that, an offline estimate
 * (all-MiniLM-L6-v2 in numpy, cosine over one chunk per record flattened as the guide does, 256
 * tokens a chunk) gave hit@1 0.58 and hit@5 0.73 (paraphrased 0.72); 374 of the 610 chunks were
 * longer than the model's 256 tokens and were cut, Shopify's address lines among what was lost.
 */
const SEMANTIC_HIT_AT_5_FLOOR = 0.7;

const CHANNEL = 'messenger';
let crm;
let business;
const linkIds = {};

before(async () => {
  crm = await startCrm(FULL_SIZES);
  business = await businessWithPages(1);
  const bodies = {
    shopify: { ...asGuide(SHOPIFY_EXAMPLE, business.page, crm.url), ...ownRecords() },
    // 100 a page (HubSpot's most) instead of the default 10: 3 requests instead of 25.
    hubspot: { ...asGuide(HUBSPOT_EXAMPLE, business.page, crm.url, '?limit=100'), ...ownRecords('properties.email') },
    custom: { ...asGuide(CUSTOM_EXAMPLE, business.page, crm.url), ...ownRecords() },
  };
  for (const [source, body] of Object.entries(bodies)) {
    linkIds[source] = (await addLink(business, { ...body, channels: [CHANNEL] })).crm_link.id;
  }
  await waitForFetched(business, business.page, bodies.shopify.url, { records: FULL_SIZES.shopify, timeoutMs: BIG_FETCH_TIMEOUT_MS });
  await waitForFetched(business, business.page, bodies.hubspot.url, { timeoutMs: BIG_FETCH_TIMEOUT_MS });
  await waitForFetched(business, business.page, bodies.custom.url, { records: FULL_SIZES.custom, timeoutMs: BIG_FETCH_TIMEOUT_MS });
});
after(async () => {
  await crm?.close();
});

describe('search quality on the labelled questions', () => {
  test(`semantic search finds the asked-about customer in its top 5 for at least ${SEMANTIC_HIT_AT_5_FLOOR * 100}% of the questions; keyword is the baseline`, async (t) => {
    const keyword = await evaluate(business, { page: business.page, channel: CHANNEL }, 'keyword', QUESTIONS, linkIds);
    const semantic = await evaluate(business, { page: business.page, channel: CHANNEL }, 'semantic', QUESTIONS, linkIds);
    for (const score of [keyword, semantic]) {
      const line = qualityLine(score);
      t.diagnostic(line);
      console.log(`links quality: ${line}`);
    }
    t.diagnostic(`semantic misses: ${semantic.misses.join(' | ')}`);
    assert.ok(
      semantic.hitAt5 >= SEMANTIC_HIT_AT_5_FLOOR,
      `semantic hit@5 ${semantic.hitAt5.toFixed(2)} is under ${SEMANTIC_HIT_AT_5_FLOOR}; missed: ${semantic.misses.join(' | ')}`,
    );
  });
});
