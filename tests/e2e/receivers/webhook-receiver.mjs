// A local receiver for our outbound webhooks: an HTTP server on 127.0.0.1 that records every
// delivery (headers, raw body, arrival time) and checks its signatures two independent ways,
// written from the two specifications rather than from our server's code:
//
//   the seed's way      the receiver of the integration guide: Express parses the body
//                       (`express.json()`), then HMAC-SHA256 in hex, keyed with the whole secret
//                       string, over `${X-Webhook-Timestamp}.${JSON.stringify(req.body)}`: the
//                       re-serialised body, not the bytes on the wire.
//   Standard Webhooks   `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`:
//                       HMAC-SHA256 keyed with the base64-decoded part of `whsec_...`, over
//                       `${id}.${timestamp}.${raw body}`; any one matching entry verifies.
//
// Each endpoint is a path of its own (`receiver.endpoint()`), answered by a script the test
// sets, one step per request (the last step repeats):
//   200 / 204 / 400 / 410 / 500          that status
//   { status: 429, retryAfter: 5 }       a status with Retry-After
//   { status: 200, delayMs: 5000 }       answers only after the delay (a slow receiver)
//   { status: 301, headers: {...}, body } extra headers, and a body (object as JSON, or text)
// `refusedUrl()` gives a loopback URL where nothing listens (connection refused).

import { createServer } from 'node:http';
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/** How far a signed timestamp may be from now, as the seed's example checks. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

function equalInConstantTime(a, b) {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function freshTimestamp(value) {
  if (!/^\d+$/.test(value ?? '')) return false;
  return Math.abs(Math.floor(Date.now() / 1000) - Number(value)) <= TIMESTAMP_TOLERANCE_SECONDS;
}

/**
 * The seed's verification, as its Express example does it: parse the body, re-serialise it with
 * JSON.stringify, HMAC `${timestamp}.${payload}` with the secret string, compare the hex.
 * `checkTime: false` skips the 300 s freshness check (to re-verify an old recording).
 */
export function verifySeedSignature(headers, rawBody, secret, { checkTime = true } = {}) {
  const signature = headers['x-webhook-signature'];
  const timestamp = headers['x-webhook-timestamp'];
  if (typeof signature !== 'string' || typeof timestamp !== 'string' || !secret) return false;
  if (checkTime && !freshTimestamp(timestamp)) return false;
  let body;
  try {
    body = JSON.parse(Buffer.from(rawBody).toString('utf8'));
  } catch {
    return false;
  }
  const payload = JSON.stringify(body);
  const expected = createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
  return equalInConstantTime(signature, expected);
}

/** The `v1,<base64>` entries of a `webhook-signature` header, decoded (others are ignored). */
export function standardSignatureEntries(header) {
  if (typeof header !== 'string') return [];
  return header
    .split(' ')
    .filter((part) => part.startsWith('v1,'))
    .map((part) => Buffer.from(part.slice(3), 'base64'));
}

/** The key a `whsec_` secret stands for: the base64 after the prefix. */
export function standardKey(secret) {
  if (typeof secret !== 'string' || !secret.startsWith('whsec_')) return null;
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

/**
 * Standard Webhooks verification: for each secret, the index of the `v1` entry it verifies, or
 * -1. (`matches.some(i => i >= 0)` is a library's "verified".)
 */
export function standardSignatureMatches(headers, rawBody, secrets, { checkTime = true } = {}) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const entries = standardSignatureEntries(headers['webhook-signature']);
  return secrets.map((secret) => {
    const key = standardKey(secret);
    if (!key || typeof id !== 'string' || typeof timestamp !== 'string') return -1;
    if (checkTime && !freshTimestamp(timestamp)) return -1;
    const expected = createHmac('sha256', key)
      .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), Buffer.from(rawBody)]))
      .digest();
    return entries.findIndex((entry) => entry.length === expected.length && timingSafeEqual(entry, expected));
  });
}

/** True when any entry of `webhook-signature` verifies with `secret`. */
export function verifyStandardSignature(headers, rawBody, secret, options) {
  return standardSignatureMatches(headers, rawBody, [secret], options)[0] >= 0;
}

function normaliseStep(step) {
  if (typeof step === 'number') return { status: step };
  return { status: 200, ...step };
}

/** Starts the receiver; `close()` it in `after`. */
export async function startWebhookReceiver() {
  const requests = [];
  const endpoints = new Map();
  const waiters = new Set();
  const timers = new Set();

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const path = new URL(req.url, 'http://localhost').pathname;
    const endpoint = endpoints.get(path);
    let body = null;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // Recorded as null: a test that reads it fails with the raw text in its message.
    }
    const earlier = requests.filter((r) => r.path === path).length;
    const script = endpoint?.script ?? [404];
    const secrets = endpoint?.secrets ?? [];
    const scripted = normaliseStep(script[Math.min(earlier, script.length - 1)]);
    // `requireSeedSignature`: a seed receiver, which refuses what its one secret (the first of
    // `secrets`) does not verify in X-Webhook-Signature.
    const step =
      scripted.requireSeedSignature && !verifySeedSignature(req.headers, raw, secrets[0])
        ? { status: 401, body: { error: 'Invalid signature' } }
        : scripted;
    const record = {
      at: Date.now(),
      method: req.method,
      path,
      headers: req.headers,
      raw,
      text: raw.toString('utf8'),
      body,
      /** `webhook-id`: the event id, stable across retries and replays. */
      id: req.headers['webhook-id'],
      event: body?.event,
      step,
      /** Checked on arrival with the secret(s) the test registered for this path. */
      seedVerified: secrets.length > 0 && verifySeedSignature(req.headers, raw, secrets[0]),
      standardVerified: secrets.some((secret) => verifyStandardSignature(req.headers, raw, secret)),
      answeredAt: null,
      aborted: false,
    };
    requests.push(record);
    for (const waiter of waiters) waiter();

    const answer = () => {
      if (res.destroyed) {
        record.aborted = true;
        return;
      }
      const headers = { 'content-type': 'application/json', ...(step.headers ?? {}) };
      if (step.retryAfter !== undefined) headers['retry-after'] = String(step.retryAfter);
      res.writeHead(step.status, headers);
      if (step.streamForever) {
        // A body that never ends: 64 KiB at a time for as long as the caller keeps reading.
        record.streamedBytes = 0;
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (!res.destroyed && record.streamedBytes < 4 * 1024 ** 3) {
            record.streamedBytes += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        res.on('close', () => {
          record.aborted = true;
          record.closedAt = Date.now();
        });
        record.answeredAt = Date.now();
        return pump();
      }
      const body = step.body ?? { received: step.status < 300, step: step.status };
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
      record.answeredAt = Date.now();
    };
    if (step.delayMs) {
      res.on('close', () => {
        if (!res.writableEnded) record.aborted = true;
      });
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, step.delayMs);
      timers.add(timer);
    } else {
      answer();
    }
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;

  function waitUntil(done, timeoutMs, describe) {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`webhook receiver: ${describe()} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
    });
  }

  return {
    url: base,
    requests,
    /**
     * A new path on the receiver, answered by `script` (default: always 200). Returns a handle:
     * `url`, `requests` (this path's, in arrival order), `secrets` (set them to verify on
     * arrival: the first is the one the seed signature must use), `script(steps)`, `waitFor`.
     */
    endpoint(script = [200]) {
      const path = `/hooks/${randomUUID()}`;
      const entry = { script, secrets: [] };
      endpoints.set(path, entry);
      const handle = {
        path,
        url: `${base}${path}`,
        get requests() {
          return requests.filter((r) => r.path === path);
        },
        /** Which of `requests` carry `event` (optionally only those matching `filter`). */
        events(event, filter = () => true) {
          return handle.requests.filter((r) => r.event === event && filter(r));
        },
        set secrets(list) {
          entry.secrets = list;
        },
        get secrets() {
          return entry.secrets;
        },
        script(steps) {
          entry.script = steps;
        },
        /** Waits until `predicate(requests of this path)` holds. */
        waitFor(predicate, timeoutMs = 20_000, what = 'the expected deliveries') {
          return waitUntil(
            () => predicate(handle.requests),
            timeoutMs,
            () =>
              `${what} did not arrive (got ${handle.requests.length}: ${handle.requests
                .map((r, i, all) => `${r.event ?? '?'}@${r.id ?? '?'} +${r.at - all[0].at} ms`)
                .join(', ')})`,
          );
        },
        /** Waits until at least `count` requests reached this path. */
        waitForCount(count, timeoutMs = 20_000) {
          return handle.waitFor((list) => list.length >= count, timeoutMs, `${count} request(s)`);
        },
      };
      return handle;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A loopback URL where nothing listens: a port that was just bound and released. */
export async function refusedUrl() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}/nobody-listens`;
}
