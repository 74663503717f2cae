// The floor our webhook delivery is measured against (bench/webhooks-floor.mjs): a bench floor,
// never deployed. One plain Worker does the least a correct delivery of `customer.created` needs
// on the same local runtime, queue broker and D1: a sync records its customers and their events in
// one D1 batch and puts one queue message per 100 events; its own queue consumer reads a message's
// events with the endpoints (one D1 read), signs and POSTs each (Standard Webhooks), and records
// the attempts (one D1 write). It authenticates nothing, validates nothing and schedules no retries
// of its own: a message with a failed POST is retried by the queue, which sends again only the
// events that endpoint has not yet taken.
//
//   POST /floor/setup      creates the tables (the bench calls it once, before anything else)
//   POST /floor/endpoint   {url, secret}: registers an endpoint, answers {id}
//   POST /floor/sync       the body of /api-customers-sync: {customers: [{external_id, name, email, ...}]}
//
// With `--env hops` a sync first makes the two hops every request to our stack makes: it is handed
// to a second Worker by a service binding (the Worker binds itself), which reads a key from KV.

const EVENTS_PER_MESSAGE = 100;
// `--env hops`: the KV entry a sync reads as our key check does, and the header that marks a
// request handed on to the second Worker.
const KEY = 'api-key:floor';
const HOPPED = 'x-floor-hop';
// As our dispatcher: up to 16 POSTs of one message at once, the messages of a batch all at once.
const PARALLEL_ATTEMPTS = 16;

// Created by /floor/setup rather than with IF NOT EXISTS on each request: the measured paths then
// run only the statements a delivery needs, and the bench's fresh --persist-to makes setup a
// one-off. Attempts are keyed by event, endpoint and the queue's delivery count, so that a retried
// message can tell which events an endpoint already took without an index of its own.
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, created_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, external_id TEXT, name TEXT, email TEXT, phone TEXT,
    tags TEXT, custom_fields TEXT, created_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS attempts (event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, attempt INTEGER NOT NULL,
    status INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (event_id, endpoint_id, attempt)) WITHOUT ROWID`,
];

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method !== 'POST') return json(405, { error: 'POST only' });
    if (pathname === '/floor/setup') {
      await env.DB.batch(SCHEMA.map((sql) => env.DB.prepare(sql)));
      if (env.KEYS) await env.KEYS.put(KEY, 'floor');
      return json(200, { ok: true });
    }
    if (pathname === '/floor/endpoint') return register(env, await request.json());
    if (pathname === '/floor/sync') {
      // With our stack's hops (`--env hops`): into a second Worker, which reads the key from KV.
      if (env.NEXT && !request.headers.has(HOPPED)) {
        const headers = new Headers(request.headers);
        headers.set(HOPPED, '1');
        return env.NEXT.fetch(new Request(request, { headers }));
      }
      if (env.KEYS && (await env.KEYS.get(KEY)) === null) return json(401, { error: 'no key' });
      return sync(env, await request.json());
    }
    return json(404, { error: pathname });
  },

  async queue(batch, env) {
    await Promise.all(batch.messages.map((message) => dispatch(env, message)));
  },
};

async function register(env, { url, secret }) {
  if (typeof url !== 'string' || typeof secret !== 'string' || !secret.startsWith('whsec_')) {
    return json(400, { error: 'url and a whsec_ secret are required' });
  }
  const id = crypto.randomUUID();
  await env.DB.prepare('INSERT INTO endpoints (id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)')
    .bind(id, url, secret, new Date().toISOString())
    .run();
  return json(200, { id });
}

const INSERT_CUSTOMERS = `INSERT INTO customers (id, external_id, name, email, phone, tags, custom_fields, created_at)
  SELECT json_extract(value, '$.id'), json_extract(value, '$.external_id'), json_extract(value, '$.name'),
    json_extract(value, '$.email'), json_extract(value, '$.phone'), json_extract(value, '$.tags'),
    json_extract(value, '$.custom_fields'), ?2
  FROM json_each(?1)`;
const INSERT_EVENTS = `INSERT INTO events (id, type, payload, created_at)
  SELECT json_extract(value, '$.id'), 'customer.created', json_extract(value, '$.payload'), ?2 FROM json_each(?1)`;

/** Every customer is taken as new (the bench sends only new ones): no matching, no upsert. */
async function sync(env, body) {
  const now = new Date().toISOString();
  const customers = body.customers.map((c) => ({
    id: crypto.randomUUID(),
    external_id: c.external_id == null ? null : String(c.external_id),
    name: c.name ?? null,
    email: c.email ?? null,
    phone: c.phone ?? null,
    tags: JSON.stringify(c.tags ?? []),
    custom_fields: JSON.stringify(c.custom_fields ?? {}),
    created_at: now,
  }));
  const events = customers.map((customer, index) => {
    const { tags = [], custom_fields = {} } = body.customers[index];
    const data = { customer: { ...customer, tags, custom_fields } };
    return { id: crypto.randomUUID(), payload: JSON.stringify({ type: 'customer.created', timestamp: now, data }) };
  });
  await env.DB.batch([
    env.DB.prepare(INSERT_CUSTOMERS).bind(JSON.stringify(customers), now),
    env.DB.prepare(INSERT_EVENTS).bind(JSON.stringify(events), now),
  ]);
  const messages = [];
  for (let at = 0; at < events.length; at += EVENTS_PER_MESSAGE) {
    messages.push({ body: { events: events.slice(at, at + EVENTS_PER_MESSAGE).map((event) => event.id) } });
  }
  // One sendBatch takes up to 100 messages, 10,000 events: more than a sync may carry.
  if (messages.length > 0) await env.WEBHOOKS.sendBatch(messages);
  return json(200, { success: true, results: { total: customers.length, created: customers.length, messages: messages.length } });
}

// The message's events that each endpoint has not yet taken (a 2xx), with the endpoint.
const DUE = `SELECT e.id, e.payload, p.id AS endpoint_id, p.url, p.secret
  FROM events e CROSS JOIN endpoints p
  WHERE e.id IN (SELECT value FROM json_each(?1))
    AND NOT EXISTS (SELECT 1 FROM attempts a
      WHERE a.event_id = e.id AND a.endpoint_id = p.id AND a.status BETWEEN 200 AND 299)`;
const RECORD = `INSERT INTO attempts (event_id, endpoint_id, attempt, status, at)
  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2, json_extract(value, '$[2]'), ?3
  FROM json_each(?1)`;

async function dispatch(env, message) {
  try {
    const { results: due } = await env.DB.prepare(DUE).bind(JSON.stringify(message.body.events)).all();
    const statuses = await eachAtMost(PARALLEL_ATTEMPTS, due, post);
    if (due.length > 0) {
      const rows = due.map((row, index) => [row.id, row.endpoint_id, statuses[index]]);
      await env.DB.prepare(RECORD).bind(JSON.stringify(rows), message.attempts, new Date().toISOString()).run();
    }
    if (statuses.every((status) => status >= 200 && status < 300)) message.ack();
    else message.retry();
  } catch (error) {
    console.error(`webhook floor: message ${message.id} failed, the queue retries it: ${error}`);
    message.retry();
  }
}

/** One signed POST; its status, or 0 when no answer came. */
async function post({ id, payload, url, secret }) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = await signingKey(secret);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${timestamp}.${payload}`));
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${base64(new Uint8Array(mac))}`,
      },
      body: payload,
    });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}

// An endpoint's secret imported once per isolate, not once per POST.
const keys = new Map();
function signingKey(secret) {
  if (!keys.has(secret)) {
    const raw = Uint8Array.from(atob(secret.slice('whsec_'.length)), (char) => char.charCodeAt(0));
    keys.set(secret, crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
  }
  return keys.get(secret);
}

function base64(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

/** `work` over `items`, at most `limit` at once; the results in the items' order. */
async function eachAtMost(limit, items, work) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}
