// Helpers for the CRM-links tests (tests/e2e/links/*.test.mjs): a business with Facebook pages,
// the dashboard API as the guide calls it (`Authorization: Bearer <API key>`), links added and
// waited on until their fetch has finished, search, the documents view, making a link due for the
// scheduled refresh, Standard Webhooks signing for pushed data, and scoring search answers against
// the labelled questions.

import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { admin, newBusiness, request, waitFor } from '../support.mjs';
import { d1 } from '../store.mjs';
import { stackLog } from '../crm/connectors.mjs';

export const LINKS = '/api/dashboard/crm-links';
export const SEARCH = '/api/dashboard/rag/search';
export const DETAILS = '/api/dashboard/rag/documents/details';
export const CHANNELS = Object.freeze(['facebook', 'messenger', 'instagram', 'whatsapp']);

/**
 * How long a first fetch of a small list may take: the queue, the CRM's pages, and embedding
 * (tens of ms a chunk on a 2-core machine) of a few records.
 */
export const FETCH_TIMEOUT_MS = 90_000;
/** The same for the several-hundred-record lists of the quality test. */
export const BIG_FETCH_TIMEOUT_MS = 300_000;
/** The sizes the plumbing tests use: pinned customers only, cheap to embed. */
export const SMALL = Object.freeze({ shopify: 6, hubspot: 5, custom: 4 });

/** A Facebook page id as Meta writes them: 15 digits. */
export function pageAddress() {
  return `${randomInt(100_000, 999_999)}${randomInt(100_000_000, 999_999_999)}`;
}

/** Adds a Facebook page (a channel account) to `business`; returns its page id. */
export async function addPage(business, { name } = {}) {
  const address = pageAddress();
  const res = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
    channel: 'facebook',
    provider: 'meta',
    address,
    ...(name ? { name } : {}),
    secrets: { app_secret: 'a', verify_token: 'v', access_token: 't' },
  });
  assert.equal(res.status, 201, `adding a Facebook page: ${res.text}`);
  return address;
}

/** A new business with an API key and `pages` Facebook pages: `{ id, key, page, pages }`. */
export async function businessWithPages(pages = 1) {
  const business = await newBusiness({ default_country: 'IE' });
  const ids = [];
  for (let i = 0; i < pages; i += 1) ids.push(await addPage(business));
  return { ...business, page: ids[0], pages: ids };
}

/** A dashboard call as the guide's curl examples make it: `Authorization: Bearer <API key>`. */
export function dashboard(key, method, path, body, headers = {}) {
  const all = { ...headers };
  if (key !== undefined && key !== null) all.authorization = `Bearer ${key}`;
  return request(method, path, { body, headers: all });
}

/** A query string from the defined values of `params`. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null) search.set(name, String(value));
  return search.toString();
}

/** A link body for `url` on `page`: one channel (messenger), type api, active, no credentials. */
export function linkBody(page, url, fields = {}) {
  return { page_id: page, channels: ['messenger'], name: 'Customer Database', url, type: 'api', is_active: true, ...fields };
}

/** Adds a link; asserts the 201 and returns the response body. */
export async function addLink(business, body) {
  const res = await dashboard(business.key, 'POST', LINKS, body);
  assert.equal(res.status, 201, `adding the CRM link ${body.url}: ${res.text.slice(0, 1000)}`);
  return res.body;
}

/** The page's links (optionally of one channel), as GET lists them. */
export async function listLinks(business, page, channel) {
  const res = await dashboard(business.key, 'GET', `${LINKS}?${query({ page_id: page, channel })}`);
  assert.equal(res.status, 200, `listing the CRM links: ${res.text.slice(0, 1000)}`);
  return res.body;
}

/** The entry of `url` on `page` for `channel` (default: the first entry of that url), or undefined. */
export async function findEntry(business, page, url, channel) {
  const { crm_links: links } = await listLinks(business, page, channel);
  return links.find((link) => link.url === url && (!channel || link.channel === channel));
}

/**
 * Waits until the entry of `url` satisfies `check(entry)` and returns it. Fails with the last
 * entry seen after `timeoutMs`.
 */
export async function waitForEntry(business, page, url, check, { channel, timeoutMs = FETCH_TIMEOUT_MS, description = 'the link' } = {}) {
  let last;
  try {
    return await waitFor(
      async () => {
        last = await findEntry(business, page, url, channel);
        return last && check(last) ? last : null;
      },
      timeoutMs,
      description,
      500,
    );
  } catch (error) {
    error.message += `\nlast entry: ${JSON.stringify(last)}`;
    throw error;
  }
}

/**
 * Waits until a fetch of `url` has finished well: state ok, no error, and (when given) a
 * `last_fetched_at` later than `after` (an earlier `last_fetched_at`) and `records` records.
 * Returns the entry.
 */
export function waitForFetched(business, page, url, { after, records, channel, timeoutMs = FETCH_TIMEOUT_MS } = {}) {
  return waitForEntry(
    business,
    page,
    url,
    ({ status }) =>
      status.state === 'ok' &&
      status.last_error === null &&
      status.last_fetched_at !== null &&
      (after === undefined || after === null || Date.parse(status.last_fetched_at) > Date.parse(after)) &&
      (records === undefined || status.records === records),
    { channel, timeoutMs, description: `a finished fetch of ${url}${records === undefined ? '' : ` with ${records} records`}` },
  );
}

/** Waits until the link's last fetch failed: `last_error` set (and `check(status)` when given). */
export function waitForFailure(business, page, url, check = () => true, { channel, timeoutMs = FETCH_TIMEOUT_MS, description } = {}) {
  return waitForEntry(business, page, url, ({ status }) => status.last_error !== null && check(status), {
    channel,
    timeoutMs,
    description: description ?? `a failed fetch of ${url}`,
  });
}

/** Searches; asserts the 200 and returns the body. `params`: page_id, channel, q, top_k, mode. */
export async function search(business, params) {
  const res = await dashboard(business.key, 'GET', `${SEARCH}?${query(params)}`);
  assert.equal(res.status, 200, `searching ${JSON.stringify(params)}: ${res.text.slice(0, 1000)}`);
  return res.body;
}

/** The results of a search that came from the link `linkId` (all of them when omitted). */
export async function resultsOf(business, params, linkId) {
  const { results } = await search(business, params);
  return linkId === undefined ? results : results.filter((result) => result.link.id === linkId);
}

/** Whether any of up to 20 results (keyword and semantic) contains `text`; the texts that do. */
export async function textsContaining(business, { page_id, channel }, text, q = text) {
  const found = [];
  for (const mode of ['keyword', 'semantic']) {
    const { results } = await search(business, { page_id, channel, q, top_k: 20, mode });
    found.push(...results.filter((result) => result.text.includes(text)));
  }
  return found;
}

/** The page's CRM documents (`GET /rag/documents/details?source=crm`). */
export async function documents(business, page) {
  const res = await dashboard(business.key, 'GET', `${DETAILS}?${query({ page_id: page, source: 'crm' })}`);
  assert.equal(res.status, 200, `the CRM documents: ${res.text.slice(0, 1000)}`);
  return res.body;
}

/** The document of the link `linkId`, or undefined. */
export async function documentOf(business, page, linkId) {
  return (await documents(business, page)).documents.find((document) => document.link.id === linkId);
}

/** Asks for a fetch now; asserts the 202. */
export async function refresh(business, page, url) {
  const res = await dashboard(business.key, 'POST', `${LINKS}/refresh`, { page_id: page, url });
  assert.equal(res.status, 202, `refreshing ${url}: ${res.text}`);
  return res.body;
}

/**
 * Makes the link due for the scheduled refresh: `next_fetch_at` a minute in the past in
 * `knowledge_sources` (the contract's column). Asserts a row was changed.
 */
export function makeDue(business, page, url) {
  const past = new Date(Date.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const rows = d1('UPDATE knowledge_sources SET next_fetch_at = ? WHERE business_id = ? AND page_id = ? AND url = ? RETURNING next_fetch_at', [past, business.id, page, url]);
  assert.ok(rows.length >= 1, `making ${url} due changed no row of knowledge_sources`);
  return rows.length;
}

/** Runs the maintenance sweep (what the cron runs every minute); asserts it ran. */
export async function sweep() {
  const res = await admin('POST', '/admin/maintenance/sweep');
  assert.equal(res.status, 200, `the sweep: ${res.text}`);
  if (Array.isArray(res.body?.failed)) assert.deepEqual(res.body.failed, [], 'every part of the sweep ran');
  return res.body;
}

/** Waits `ms`. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the clock is a second past `timestamp` (an RFC 3339 `last_fetched_at`), so that a
 * fetch started now has a later `last_fetched_at` even if the stack writes whole seconds.
 */
export async function pastSecondOf(timestamp) {
  const wait = Date.parse(timestamp) + 1_050 - Date.now();
  if (wait > 0) await sleep(wait);
}

// ---------------------------------------------------------------- Standard Webhooks

/**
 * The Standard Webhooks headers for `body` (the exact bytes sent): `webhook-id`,
 * `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * `{id}.{timestamp}.{body}`, keyed with the base64-decoded part of the secret after `whsec_`.
 */
export function standardWebhookHeaders(secret, body, { id = `msg_${randomBytes(12).toString('hex')}`, timestamp = Math.floor(Date.now() / 1000) } = {}) {
  assert.match(secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/, 'a Standard Webhooks secret');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${signature}` };
}

/**
 * Pushes `body` (a string, sent as is) to a link's `webhook_url`, at the stack's address with the
 * URL's path, signed with `secret` unless `headers` replaces the signature. Returns the response.
 */
export function pushWebhook(webhookUrl, secret, body, { contentType = 'application/json', headers, ...signing } = {}) {
  const target = new URL(webhookUrl);
  return request('POST', `${target.pathname}${target.search}`, {
    body,
    headers: { 'content-type': contentType, ...(headers ?? standardWebhookHeaders(secret, body, signing)) },
  });
}

// ---------------------------------------------------------------- the stack's log

/** The `Stored <n> embeddings from CRM data` counts logged after `Starting CRM data fetch for page <page>` lines, from `from` on. */
export function loggedEmbeddings(page, from = 0) {
  const log = stackLog().slice(from);
  const counts = [];
  let inFetch = false;
  for (const line of log.split('\n')) {
    if (line.includes('Starting CRM data fetch for page ')) inFetch = line.includes(`Starting CRM data fetch for page ${page}`);
    const stored = /Stored (\d+) embeddings from CRM data/.exec(line);
    if (stored && inFetch) counts.push(Number(stored[1]));
  }
  return counts;
}

/** How long the stack's log is now (a mark for `loggedEmbeddings`). */
export function logMark() {
  return stackLog().length;
}

// ---------------------------------------------------------------- search quality

/**
 * The line of a chunk that gives its record's own id: `<list>[<i>].id: <value>`, the top-level
 * `id` of a record in a list (`customers[12].id`, `results[3].id`). Nested ids
 * (`customers[3].default_address.id`) and copies (`results[3].properties.hs_object_id`) are
 * not it.
 */
const RECORD_ID_LINE = /^([A-Za-z_][A-Za-z0-9_]*\[\d+\])\.id: (.*)$/;

/**
 * Whether a search result answers a labelled question: it comes from the question's source link
 * (`linkIds[question.source]`), and its text has the id line of its own record (`result.record`)
 * with exactly the expected id as the value. A chunk that only mentions the customer elsewhere,
 * or another record's chunk, is not a hit. Every generated record is one chunk (crm-data.mjs), so
 * the record's chunk always has its id line.
 */
export function isHit(result, question, linkIds) {
  if (result.link?.id !== linkIds[question.source]) return false;
  return String(result.text)
    .split('\n')
    .some((line) => {
      const match = RECORD_ID_LINE.exec(line.trim());
      return match !== null && match[2] === question.expect && (result.record === undefined || match[1] === result.record);
    });
}

/**
 * Asks every question in `mode` (top_k 5) on `page`/`channel`; returns `{ mode, questions,
 * hitAt1, hitAt5, paraphrasedHitAt5, misses, latencies }` with the rates as fractions.
 */
export async function evaluate(business, { page, channel }, mode, questions, linkIds) {
  let at1 = 0;
  let at5 = 0;
  let paraphrasedAt5 = 0;
  const misses = [];
  const latencies = [];
  for (const question of questions) {
    const started = performance.now();
    const { results } = await search(business, { page_id: page, channel, q: question.question, top_k: 5, mode });
    latencies.push(performance.now() - started);
    const rank = results.findIndex((result) => isHit(result, question, linkIds));
    if (rank === 0) at1 += 1;
    if (rank >= 0 && rank < 5) {
      at5 += 1;
      if (question.paraphrased) paraphrasedAt5 += 1;
    } else {
      misses.push(question.question);
    }
  }
  const paraphrased = questions.filter((q) => q.paraphrased).length;
  return {
    mode,
    questions: questions.length,
    hitAt1: at1 / questions.length,
    hitAt5: at5 / questions.length,
    paraphrasedHitAt5: paraphrased ? paraphrasedAt5 / paraphrased : null,
    misses,
    latencies,
  };
}

/** One line of a quality table: `semantic  hit@1 0.62  hit@5 0.81  (paraphrased hit@5 0.66)`. */
export function qualityLine(score) {
  const f = (x) => (x === null ? 'n/a' : x.toFixed(2));
  return `${score.mode.padEnd(8)}  hit@1 ${f(score.hitAt1)}  hit@5 ${f(score.hitAt5)}  (paraphrased hit@5 ${f(score.paraphrasedHitAt5)}; ${score.questions} questions)`;
}
