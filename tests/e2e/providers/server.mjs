// A local stand-in for a channel provider's send API: an HTTP server on 127.0.0.1 that speaks
// one provider's real paths, credentials and payloads (each provider module supplies those), and
// answers each recipient according to a script the test sets, so that retries and failures can
// be provoked on purpose. Every request is recorded, so a test asserts on exactly what was sent.
//
// Steps of a script, one per request to that recipient (the last step repeats):
//   'ok'            the provider's documented success
//   'invalid'       a 400 the provider gives for a recipient it cannot reach (not retryable)
//   'rate-limited'  429 with Retry-After: 1
//   'error'         500 without Retry-After
//   'error-retry'   500 with Retry-After: 1 (keeps "always failing" tests short)
//   'slow'          success, but only after SLOW_MS (longer than the dispatcher's 10 s timeout)

import { createServer } from 'node:http';

export const SLOW_MS = 12_000;

/**
 * Starts a provider server. `provider` has:
 *   name
 *   route(method, path) -> params object, or null when the path is not the provider's
 *   authorized(headers, params) -> true when the credentials are the account's
 *   parse(rawBody, headers) -> Promise<{ recipient, body }>
 *   answer(step, request) -> { status, headers?, body }   (body: object (JSON) or string)
 *   unauthorized() -> the provider's 401 answer
 */
export async function startProviderServer(provider) {
  const requests = [];
  const scripts = new Map();
  const waiters = new Set();
  const pending = new Set();

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://localhost');
    const params = provider.route(req.method, url.pathname);
    if (!params) {
      return send(res, { status: 404, body: { error: `${provider.name} stub: no route ${req.method} ${url.pathname}` } });
    }
    let parsed;
    try {
      parsed = await provider.parse(raw, req.headers);
    } catch (error) {
      return send(res, { status: 400, body: { error: `${provider.name} stub: unreadable body: ${error.message}` } });
    }
    const authorized = provider.authorized(req.headers, params);
    const earlier = requests.filter((r) => r.recipient === parsed.recipient).length;
    const script = scripts.get(parsed.recipient) ?? ['ok'];
    const scripted = authorized ? script[Math.min(earlier, script.length - 1)] : 'unauthorized';
    // A step may also be { step, beforeAnswer(answer, record) }: the hook runs (and is awaited)
    // after the provider has decided its answer and before it is sent, as a provider's own
    // status callback can reach us before the answer to the send does.
    const step = typeof scripted === 'object' ? scripted.step : scripted;
    const record = {
      at: Date.now(),
      method: req.method,
      path: url.pathname,
      params,
      headers: req.headers,
      authorized,
      recipient: parsed.recipient,
      body: parsed.body,
      raw,
      step,
      aborted: false,
    };
    requests.push(record);
    for (const waiter of waiters) waiter();
    const answer = step === 'unauthorized' ? provider.unauthorized() : provider.answer(step, record);
    if (typeof scripted === 'object' && scripted.beforeAnswer) await scripted.beforeAnswer(answer, record);
    if (step === 'slow') {
      const timer = setTimeout(() => {
        pending.delete(timer);
        record.aborted = res.destroyed || req.socket.destroyed;
        if (!record.aborted) send(res, answer);
      }, SLOW_MS);
      pending.add(timer);
      res.on('close', () => {
        if (!res.writableEnded) record.aborted = true;
      });
      return undefined;
    }
    return send(res, answer);
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Sets how the provider answers requests for `recipient`, one step per request. */
    script(recipient, steps) {
      scripts.set(recipient, steps);
    },
    /** The requests made for `recipient`, in order. */
    for(recipient) {
      return requests.filter((r) => r.recipient === recipient);
    },
    /** Waits (bounded) until `count` requests for `recipient` arrived. */
    async waitFor(recipient, count, timeoutMs = 30_000) {
      const done = () => requests.filter((r) => r.recipient === recipient).length >= count;
      if (done()) return;
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${provider.name} stub: ${count} request(s) for ${recipient} did not arrive in ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          if (done()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
      });
    },
    async close() {
      for (const timer of pending) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function send(res, { status, headers = {}, body }) {
  if (res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain' : 'application/json';
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(text);
}

/** Decodes `Authorization: Basic` into [user, password], or null. */
export function basicCredentials(headers) {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(headers.authorization ?? '');
  if (!match) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

/**
 * Reads a form body, urlencoded or multipart, with the platform's own parser. Returns
 * `{ fields: {name: value | [values]}, files: [{ field, filename, type, bytes }] }`.
 */
export async function readForm(raw, headers) {
  const form = await new Response(raw, { headers: { 'content-type': headers['content-type'] ?? '' } }).formData();
  const fields = {};
  const files = [];
  for (const [name, value] of form.entries()) {
    if (typeof value === 'string') {
      if (name in fields) fields[name] = [].concat(fields[name], value);
      else fields[name] = value;
    } else {
      files.push({ field: name, filename: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
    }
  }
  return { fields, files };
}

/** A provider-style random id. */
export function randomId(length = 32) {
  let id = '';
  while (id.length < length) id += Math.random().toString(16).slice(2);
  return id.slice(0, length);
}
