// The floor the customer sync is measured against (bench/sync-floor.mjs): the least an
// authenticated sync of the same customers can do on the same runtime and D1. It takes the same
// body and x-api-key (the key's SHA-256 looked up in api_keys once, then cached in KV), makes one
// read of the stored customers sharing an external id, email or phone with the batch, and writes
// every row with one upsert from a JSON array; it validates nothing, normalises nothing, records
// no events, and answers the same per-item shape. Beside it, two plain Workers doing the job the
// way the guides' readers would: a sync of one statement per customer, and a lookup by email.
//
//   POST /floor/sync      the floor
//   POST /naive/sync      one INSERT ... ON CONFLICT per customer, in one batch
//   GET  /plain/lookup    ?email=: one SELECT, the customer as JSON
// and for the bench's set-up: POST /floor/seed?count=N stores N customers in the key's business,
// GET /floor/shard names the shard the key's business is on.

const KEY_SECONDS = 60;
const SHARDS = ['DB', 'DB_1'];

export default {
  async fetch(request, env) {
    const { pathname, searchParams } = new URL(request.url);
    const tenant = await authenticate(request, env);
    if (!tenant) return json(401, { success: false, error: { code: 'unauthorized', message: 'unknown key' } });
    const db = env[tenant.shard];
    if (request.method === 'POST' && pathname === '/floor/sync') return floorSync(db, tenant.business, await request.json());
    if (request.method === 'POST' && pathname === '/naive/sync') return naiveSync(db, tenant.business, await request.json());
    if (request.method === 'GET' && pathname === '/plain/lookup') return lookup(db, tenant.business, searchParams.get('email'));
    if (request.method === 'POST' && pathname === '/floor/seed') return seed(db, tenant.business, Number(searchParams.get('count')));
    if (request.method === 'GET' && pathname === '/floor/shard') return json(200, tenant);
    return json(404, { success: false, error: { code: 'not_found', message: pathname } });
  },
};

async function authenticate(request, env) {
  const presented = request.headers.get('x-api-key');
  if (!presented) return null;
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(presented));
  const hash = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  const cached = await env.KEYS.get(`key:${hash}`, 'json');
  if (cached) return cached;
  for (const shard of SHARDS) {
    const row = await env[shard]
      .prepare('SELECT business_id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL')
      .bind(hash)
      .first();
    if (row) {
      const tenant = { business: row.business_id, shard };
      await env.KEYS.put(`key:${hash}`, JSON.stringify(tenant), { expirationTtl: KEY_SECONDS });
      return tenant;
    }
  }
  return null;
}

const KNOWN_SQL = `SELECT id, external_id, email, phone FROM customers
  WHERE business_id = ?1 AND external_id IN (SELECT value FROM json_each(?2))
  UNION SELECT id, external_id, email, phone FROM customers
  WHERE business_id = ?1 AND email IN (SELECT value FROM json_each(?3))
  UNION SELECT id, external_id, email, phone FROM customers
  WHERE business_id = ?1 AND phone IN (SELECT value FROM json_each(?4))`;

const COLUMNS = ['name', 'email', 'phone', 'tags', 'external_id', 'external_system', 'custom_fields'];
const UPSERT_SQL = `INSERT INTO customers (id, business_id, ${COLUMNS.join(', ')}, created_at, updated_at)
  SELECT json_extract(value, '$.id'), ?1, json_extract(value, '$.name'), json_extract(value, '$.email'),
    json_extract(value, '$.phone'), COALESCE(json_extract(value, '$.tags'), '[]'), json_extract(value, '$.external_id'),
    json_extract(value, '$.external_system'), COALESCE(json_extract(value, '$.custom_fields'), '{}'), ?3, ?3
  FROM json_each(?2) WHERE true
  ON CONFLICT (id) DO UPDATE SET ${COLUMNS.map((column) => `${column} = excluded.${column}`).join(', ')}, updated_at = excluded.updated_at`;

async function floorSync(db, business, body) {
  const customers = body.customers;
  const keys = (field) => JSON.stringify(customers.map((c) => c[field]).filter((value) => value != null).map(String));
  const known = await db.prepare(KNOWN_SQL).bind(business, keys('external_id'), keys('email'), keys('phone')).all();
  const { results } = known;
  const by = { external_id: new Map(), email: new Map(), phone: new Map() };
  for (const row of results) for (const field of Object.keys(by)) if (row[field] != null) by[field].set(row[field], row.id);
  const details = customers.map((customer, index) => {
    const matched_by = Object.keys(by).find((field) => customer[field] != null && by[field].has(String(customer[field])));
    const customer_id = matched_by ? by[matched_by].get(String(customer[matched_by])) : crypto.randomUUID();
    const external_id = customer.external_id == null ? null : String(customer.external_id);
    return { index, external_id, customer_id, action: matched_by ? 'updated' : 'created', matched_by: matched_by ?? null };
  });
  const rows = customers.map((customer, index) => ({
    ...customer,
    id: details[index].customer_id,
    tags: customer.tags === undefined ? undefined : JSON.stringify(customer.tags),
    custom_fields: customer.custom_fields === undefined ? undefined : JSON.stringify(customer.custom_fields),
  }));
  const written = await db.prepare(UPSERT_SQL).bind(business, JSON.stringify(rows), new Date().toISOString()).run();
  return answer(details, known.meta.duration + written.meta.duration);
}

const NAIVE_SQL = `INSERT INTO customers (id, business_id, ${COLUMNS.join(', ')}, created_at, updated_at)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
  ON CONFLICT (business_id, external_id) DO UPDATE SET ${COLUMNS.map((column) => `${column} = excluded.${column}`).join(', ')}, updated_at = excluded.updated_at
  RETURNING id, created_at = updated_at AS created`;

async function naiveSync(db, business, body) {
  const now = new Date().toISOString();
  const statement = db.prepare(NAIVE_SQL);
  const results = await db.batch(
    body.customers.map((c) =>
      statement.bind(
        crypto.randomUUID(), business, c.name, c.email ?? null, c.phone ?? null, JSON.stringify(c.tags ?? []),
        c.external_id == null ? null : String(c.external_id), c.external_system ?? null, JSON.stringify(c.custom_fields ?? {}), now,
      ),
    ),
  );
  const details = results.map(({ results: [row] }, index) => {
    const external_id = body.customers[index].external_id;
    return {
      index,
      external_id: external_id == null ? null : String(external_id),
      customer_id: row.id,
      action: row.created ? 'created' : 'updated',
      matched_by: row.created ? null : 'external_id',
    };
  });
  return answer(details);
}

async function lookup(db, business, email) {
  const customer = await db.prepare('SELECT * FROM customers WHERE business_id = ?1 AND email = ?2').bind(business, email).first();
  return customer ? json(200, { success: true, customer }) : json(404, { success: false, error: { code: 'not_found' } });
}

const SEED_SQL = `INSERT INTO customers (id, business_id, ${COLUMNS.join(', ')}, created_at, updated_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
  SELECT lower(hex(randomblob(16))), ?1, 'Seeded ' || i, 'seed.' || ?2 || '.' || i || '@example.com',
    '+3539' || ?2 || printf('%07d', i), '["seed"]', 'SEED-' || ?2 || '-' || i, 'salesforce', '{"crm_segment":"smb"}', ?4, ?4
  FROM n`;

/** N stored customers, in statements of 50,000; their phones and emails apart from the bench's. */
async function seed(db, business, count) {
  const now = new Date().toISOString();
  for (let done = 0; done < count; done += 50_000) {
    const tag = `${crypto.randomUUID().slice(0, 8)}${done}`;
    await db.prepare(SEED_SQL).bind(business, tag, Math.min(50_000, count - done), now).run();
  }
  return json(200, { success: true, seeded: count });
}

/** The per-item answer; `sqlMs`, D1's own time for the SQL, in a header for the bench's breakdown. */
function answer(details, sqlMs = 0) {
  const created = details.filter((detail) => detail.action === 'created').length;
  return json(200, {
    success: true,
    results: { total: details.length, created, updated: details.length - created, failed: 0, details },
  }, { 'x-d1-sql-ms': String(sqlMs) });
}

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}
