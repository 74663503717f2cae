// A local CRM for the CRM-links tests: one HTTP server on 127.0.0.1 and a free port that answers
// as the CRMs the guide's examples link to, with the data of crm-data.mjs:
//
//   GET /admin/api/2024-01/customers.json   Shopify's REST Admin API. `X-Shopify-Access-Token`;
//       `limit` (default 50, at most 250); cursor pagination by `Link: <…&page_info=…>; rel="next"`
//       (and rel="previous"), page_info opaque and the only way to another page; every answer
//       reports the leaky bucket (`X-Shopify-Shop-Api-Call-Limit: n/40`, 2 a second leak) and a
//       full bucket is a 429 with `Retry-After: 2.0`.
//   GET /crm/v3/objects/contacts             HubSpot's CRM v3. `Authorization: Bearer <token>`;
//       `limit` (default 10, at most 100) and `after`; `paging.next.{after, link}` in the body;
//       errors in HubSpot's `{status: "error", message, correlationId, category}` shape.
//   GET /api/customers                       the guide's own example API: `{customers: [{id, name,
//       email, subscription, support_level}]}` in one answer, `X-API-Key` required.
//   GET /exports/customers.csv               the custom customers as a CSV file (text/csv).
//   GET /kb/returns-policy.txt               a plain-text document (text/plain).
//
// The test controls it: failures for the next N matching requests (`fail`), a delay (`slow`), a
// body over 4 MiB (`oversize`), refused connections (`down`/`up`, same port), and changes to the
// data (`update`/`add`/`remove`) between fetches. Every request is recorded with its method,
// path, query and headers, so a test asserts on what the stack sent.

import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { FULL_SIZES, RETURNS_POLICY, generateSource, recordId } from './crm-data.mjs';

export const SHOPIFY_PATH = '/admin/api/2024-01/customers.json';
export const HUBSPOT_PATH = '/crm/v3/objects/contacts';
export const CUSTOM_PATH = '/api/customers';
export const CSV_PATH = '/exports/customers.csv';
export const TEXT_PATH = '/kb/returns-policy.txt';

/** The credentials of the guide's examples, the fake's defaults. */
export const DEFAULT_CREDENTIALS = Object.freeze({ shopify: 'shppa_1234567890', hubspot: 'pat-na1-1234567890', custom: 'internal-key-123' });

export const SHOPIFY_BUCKET_SIZE = 40;
export const SHOPIFY_LEAK_PER_SECOND = 2;
/** Just over the stack's 4 MiB limit. */
export const OVERSIZE_BYTES = 4 * 1024 * 1024 + 256 * 1024;

const MESSAGES = Object.freeze({
  shopifyUnauthorized: '[API] Invalid API key or access token (unrecognized login or wrong password)',
  shopifyThrottled: 'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.',
  hubspotUnauthorized:
    'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
  hubspotThrottled: 'You have reached your ten_secondly_rolling limit.',
});

const REASONS = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

/** Which source a path serves, or null. */
function sourceOf(path) {
  return { [SHOPIFY_PATH]: 'shopify', [HUBSPOT_PATH]: 'hubspot', [CUSTOM_PATH]: 'custom', [CSV_PATH]: 'csv', [TEXT_PATH]: 'text' }[path] ?? null;
}

/** Opaque cursors, base64url JSON as Shopify's page_info and HubSpot's after look. */
const encodeCursor = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
function decodeCursor(text) {
  try {
    const value = JSON.parse(Buffer.from(String(text), 'base64url').toString('utf8'));
    return value && typeof value === 'object' ? value : null;
  } catch {
    return null;
  }
}

/** One CSV field, quoted when it must be (RFC 4180). */
const csvField = (value) => (/[",\r\n]/.test(String(value)) ? `"${String(value).replaceAll('"', '""')}"` : String(value));

/** A size option: a number, or `{ customers|contacts, pageSize }`. */
function sizeOf(option, fallback) {
  if (option === undefined) return { size: fallback };
  if (typeof option === 'number') return { size: option };
  return { size: option.customers ?? option.contacts ?? fallback, pageSize: option.pageSize };
}

/**
 * Starts the CRM. Options:
 *   seed          the data's seed (default 3)
 *   shopify       300 | { customers: 300, pageSize: 50 }    (pageSize: the default `limit`)
 *   hubspot       250 | { contacts: 250, pageSize: 10 }
 *   custom        60  | { customers: 60 }
 *   pinned        false to leave out the pinned records the questions ask about
 *   credentials   { shopify, hubspot, custom } (default: the guide's example keys)
 *   bucket        false to turn Shopify's leaky bucket off
 */
export async function startCrm(options = {}) {
  const seed = options.seed ?? 3;
  const credentials = { ...DEFAULT_CREDENTIALS, ...options.credentials };
  const shopifySize = sizeOf(options.shopify, FULL_SIZES.shopify);
  const hubspotSize = sizeOf(options.hubspot, FULL_SIZES.hubspot);
  const customSize = sizeOf(options.custom, FULL_SIZES.custom);
  const pageSizes = { shopify: shopifySize.pageSize ?? 50, hubspot: hubspotSize.pageSize ?? 10 };
  const generated = {
    shopify: generateSource('shopify', { seed, size: shopifySize.size, pinned: options.pinned !== false }),
    hubspot: generateSource('hubspot', { seed, size: hubspotSize.size, pinned: options.pinned !== false }),
    custom: generateSource('custom', { seed, size: customSize.size, pinned: options.pinned !== false }),
  };
  const data = { shopify: generated.shopify.records, hubspot: generated.hubspot.records, custom: generated.custom.records };
  let bucketOn = options.bucket !== false;
  let bucket = { level: 0, at: Date.now() };

  const requests = [];
  const failures = [];
  const delays = [];
  const oversizes = [];
  const timers = new Set();
  let origin = '';

  /** Takes the first queued step that matches `record`, counting it down. */
  function take(queue, record) {
    const index = queue.findIndex((step) => !step.match || step.match(record));
    if (index < 0) return null;
    const step = queue[index];
    step.left -= 1;
    if (step.left <= 0) queue.splice(index, 1);
    return step;
  }

  // ---- the CRMs' own answers

  const correlationId = () => randomUUID();
  const json = (status, body, headers = {}) => ({ status, body: JSON.stringify(body), type: 'application/json; charset=utf-8', headers });

  /** The answer a source gives for an error status, in that CRM's own shape. */
  function errorAnswer(source, status, retryAfter) {
    const headers = {};
    if (retryAfter !== undefined) headers['Retry-After'] = source === 'shopify' ? Number(retryAfter).toFixed(1) : String(retryAfter);
    const reason = REASONS[status] ?? 'Error';
    if (source === 'shopify') {
      const errors = status === 401 ? MESSAGES.shopifyUnauthorized : status === 429 ? MESSAGES.shopifyThrottled : reason;
      return json(status, { errors }, headers);
    }
    if (source === 'hubspot') {
      const body = { status: 'error', message: reason, correlationId: correlationId() };
      if (status === 401) Object.assign(body, { message: MESSAGES.hubspotUnauthorized, category: 'INVALID_AUTHENTICATION' });
      else if (status === 404) Object.assign(body, { message: 'Resource not found', category: 'OBJECT_NOT_FOUND' });
      else if (status === 429) Object.assign(body, { message: MESSAGES.hubspotThrottled, errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING', requestId: correlationId() });
      else Object.assign(body, { message: 'internal error', category: 'INTERNAL_ERROR' });
      return json(status, body, headers);
    }
    if (status === 503) return { status, body: 'Service Unavailable', type: 'text/plain; charset=utf-8', headers };
    return json(status, { error: reason }, headers);
  }

  /** Shopify's leaky bucket: each call adds one, 2 leak away a second; a full bucket is a 429. */
  function shopifyCallLimit() {
    const now = Date.now();
    const level = Math.max(0, bucket.level - ((now - bucket.at) / 1000) * SHOPIFY_LEAK_PER_SECOND);
    if (bucketOn && level + 1 > SHOPIFY_BUCKET_SIZE) {
      bucket = { level, at: now };
      return null;
    }
    bucket = { level: level + 1, at: now };
    return `${Math.ceil(level + 1)}/${SHOPIFY_BUCKET_SIZE}`;
  }

  function shopify(record) {
    if (record.headers['x-shopify-access-token'] !== credentials.shopify) return errorAnswer('shopify', 401);
    const callLimit = shopifyCallLimit();
    if (callLimit === null) return errorAnswer('shopify', 429, 2);
    const limit = Math.min(250, Math.max(1, Number(record.query.limit ?? pageSizes.shopify) || pageSizes.shopify));
    let start = 0;
    if (record.query.page_info !== undefined) {
      const cursor = decodeCursor(record.query.page_info);
      if (!cursor || !Number.isInteger(cursor.start)) return json(400, { errors: { page_info: ['Invalid value.'] } });
      start = Math.max(0, Math.min(cursor.start, data.shopify.length));
    }
    const page = data.shopify.slice(start, start + limit);
    const links = [];
    const pageUrl = (from, direction) => `${origin}${SHOPIFY_PATH}?limit=${limit}&page_info=${encodeCursor({ start: from, direction, last_id: page.at(direction === 'next' ? -1 : 0)?.id ?? null })}`;
    if (start > 0) links.push(`<${pageUrl(Math.max(0, start - limit), 'prev')}>; rel="previous"`);
    if (start + limit < data.shopify.length) links.push(`<${pageUrl(start + limit, 'next')}>; rel="next"`);
    const headers = { 'X-Shopify-Shop-Api-Call-Limit': callLimit, 'X-Shopify-API-Version': '2024-01' };
    if (links.length) headers.Link = links.join(', ');
    return json(200, { customers: page }, headers);
  }

  function hubspot(record) {
    const match = /^Bearer (\S+)$/.exec(record.headers.authorization ?? '');
    if (!match || match[1] !== credentials.hubspot) return errorAnswer('hubspot', 401);
    const limit = Math.min(100, Math.max(1, Number(record.query.limit ?? pageSizes.hubspot) || pageSizes.hubspot));
    let start = 0;
    if (record.query.after !== undefined) {
      const cursor = decodeCursor(record.query.after);
      if (!cursor || !Number.isInteger(cursor.offset)) {
        return json(400, { status: 'error', message: 'Invalid input JSON on line 1: after is not a valid paging cursor', correlationId: correlationId(), category: 'VALIDATION_ERROR' });
      }
      start = Math.max(0, Math.min(cursor.offset, data.hubspot.length));
    }
    const body = { results: data.hubspot.slice(start, start + limit) };
    if (start + limit < data.hubspot.length) {
      const after = encodeCursor({ offset: start + limit });
      body.paging = { next: { after, link: `${origin}${HUBSPOT_PATH}?limit=${limit}&after=${after}` } };
    }
    return json(200, body);
  }

  function custom(record) {
    if (record.headers['x-api-key'] !== credentials.custom) return json(401, { error: 'invalid or missing X-API-Key' });
    return json(200, { customers: data.custom });
  }

  function csv() {
    const columns = ['id', 'name', 'email', 'subscription', 'support_level'];
    const lines = [columns.join(','), ...data.custom.map((c) => columns.map((k) => csvField(c[k])).join(','))];
    return { status: 200, body: `${lines.join('\r\n')}\r\n`, type: 'text/csv; charset=utf-8', headers: {} };
  }

  const text = () => ({ status: 200, body: RETURNS_POLICY, type: 'text/plain; charset=utf-8', headers: {} });

  /**
   * The same answer made bigger than `bytes`: a JSON body gains trailing whitespace (the same
   * data, as a pretty-printing server sends it), text more lines.
   */
  function inflate(answer, bytes) {
    if (answer.type.startsWith('application/json')) return { ...answer, body: `${answer.body}\n${' '.repeat(bytes)}` };
    const line = `${'filler '.repeat(15)}\n`;
    return { ...answer, body: answer.body + line.repeat(Math.ceil(bytes / line.length)) };
  }

  function route(record) {
    const source = sourceOf(record.path);
    if (record.method !== 'GET' || !source) return json(404, { errors: 'Not Found' });
    const failure = take(failures, record);
    if (failure) return failure.body !== undefined ? json(failure.status, failure.body, failure.retryAfter !== undefined ? { 'Retry-After': String(failure.retryAfter) } : {}) : errorAnswer(source, failure.status, failure.retryAfter);
    const answer = { shopify, hubspot, custom, csv, text }[source](record);
    const oversize = answer.status === 200 ? take(oversizes, record) : null;
    return oversize ? inflate(answer, oversize.bytes) : answer;
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const record = {
      at: Date.now(),
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      url: `${origin}${url.pathname}${url.search}`,
      headers: { ...req.headers },
      status: null,
      bytes: 0,
      answeredAt: null,
    };
    requests.push(record);
    req.resume();
    const reply = () => {
      if (res.destroyed) return;
      const answer = route(record);
      const body = Buffer.from(answer.body, 'utf8');
      record.status = answer.status;
      record.bytes = body.length;
      record.answeredAt = Date.now();
      res.writeHead(answer.status, { 'Content-Type': answer.type, 'Content-Length': body.length, ...answer.headers });
      res.end(body);
    };
    const delay = take(delays, record);
    if (!delay) return reply();
    const timer = setTimeout(() => {
      timers.delete(timer);
      reply();
    }, delay.ms);
    timers.add(timer);
    res.on('close', () => {
      if (!res.writableEnded) {
        record.aborted = true;
        clearTimeout(timer);
        timers.delete(timer);
      }
    });
    return undefined;
  });

  let listening = false;
  let port = 0;
  async function listen(at) {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    listening = true;
    port = server.address().port;
    origin = `http://127.0.0.1:${port}`;
  }
  async function stopListening() {
    if (!listening) return;
    listening = false;
    await new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  await listen(0);

  const listOf = (source) => {
    if (!data[source]) throw new Error(`crm fake: unknown source ${source}`);
    return data[source];
  };
  const indexOf = (source, id) => {
    const index = listOf(source).findIndex((r) => recordId(r) === String(id));
    if (index < 0) throw new Error(`crm fake: no ${source} record ${id}`);
    return index;
  };

  return {
    /** The server's origin, `http://127.0.0.1:<port>`. */
    get url() {
      return origin;
    },
    port,
    /** The URL of each source, as a link would be configured. */
    urls: {
      shopify: `${origin}${SHOPIFY_PATH}`,
      hubspot: `${origin}${HUBSPOT_PATH}`,
      custom: `${origin}${CUSTOM_PATH}`,
      csv: `${origin}${CSV_PATH}`,
      text: `${origin}${TEXT_PATH}`,
    },
    credentials,
    /** The live data, by source: `data.shopify` is the store's customers in list order. */
    data,
    /** Every request: `{ at, method, path, query, url, headers, status, bytes, answeredAt, aborted? }`. */
    requests,
    /** The requests to one path (a source's path or a name: 'shopify', 'hubspot', …). */
    requestsTo(pathOrSource) {
      const path = { shopify: SHOPIFY_PATH, hubspot: HUBSPOT_PATH, custom: CUSTOM_PATH, csv: CSV_PATH, text: TEXT_PATH }[pathOrSource] ?? pathOrSource;
      return requests.filter((r) => r.path === path);
    },
    /**
     * The next `times` requests that `match(record)` (default: any) answer `status` in the CRM's
     * own error shape (or `body`), with `Retry-After: retryAfter` when given. `times` may be
     * Infinity until `clearFailures()`.
     */
    fail({ status, times = 1, retryAfter, match, body } = {}) {
      if (!REASONS[status]) throw new Error(`crm fake: cannot inject status ${status}`);
      failures.push({ status, left: times, retryAfter, match, body });
    },
    clearFailures() {
      failures.length = 0;
      delays.length = 0;
      oversizes.length = 0;
    },
    /** The next `times` matching requests are answered only after `ms` (the answer as usual). */
    slow(ms, { times = 1, match } = {}) {
      delays.push({ ms, left: times, match });
    },
    /** The next `times` matching successful answers carry more than `bytes` (default just over 4 MiB). */
    oversize({ times = 1, bytes = OVERSIZE_BYTES, match } = {}) {
      oversizes.push({ bytes, left: times, match });
    },
    /** Turns Shopify's leaky bucket on or off. */
    setBucket(on) {
      bucketOn = on;
      bucket = { level: 0, at: Date.now() };
    },
    /** Stops listening: connections are refused until `up()`; the data is kept. */
    async down() {
      await stopListening();
    },
    /** Listens again on the same port. */
    async up() {
      if (!listening) await listen(port);
    },
    /** Changes fields of one record (`changes` merged; `properties` merged for HubSpot). */
    update(source, id, changes) {
      const list = listOf(source);
      const index = indexOf(source, id);
      const record = structuredClone(list[index]);
      for (const [key, value] of Object.entries(changes)) {
        if (key === 'properties' || key === 'default_address') record[key] = { ...record[key], ...value };
        else record[key] = value;
      }
      const now = new Date().toISOString();
      if ('updated_at' in record) record.updated_at = now.replace(/\.\d{3}Z$/, '+00:00');
      if ('updatedAt' in record) {
        record.updatedAt = now;
        record.properties.lastmodifieddate = now;
      }
      list[index] = record;
      return record;
    },
    /** Appends `count` new generated records (or the given records); returns them. */
    add(source, countOrRecords = 1) {
      const added = typeof countOrRecords === 'number' ? generated[source].more(countOrRecords) : countOrRecords;
      listOf(source).push(...added);
      return added;
    },
    /** Removes one record; returns it. */
    remove(source, id) {
      const list = listOf(source);
      return list.splice(indexOf(source, id), 1)[0];
    },
    /** A record by id, or undefined. */
    find(source, id) {
      return listOf(source).find((r) => recordId(r) === String(id));
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await stopListening();
    },
  };
}
