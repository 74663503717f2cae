// SSO tokens and the embedded inbox, end to end: a CRM issues a token with its API key; the
// token opens one customer's inbox (the page, and the JSON the page polls) and nothing else;
// it cannot be forged, widened or used after it expires or is revoked; bad requests get the one
// JSON error shape; the page carries the headers that keep it framed only where allowed.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BASE_URL, PUBLIC_URL, admin, api, assertError, getCustomer, newBusiness, request, sync, unique, waitFor } from './support.mjs';
import { PNG, seedInbox } from './sso-seed.mjs';
import { d1 } from './store.mjs';

const TOKEN = /^sso_[A-Za-z0-9_-]{43}$/;
const CRM = 'https://crm.example.com';

let seed;
/** A 60-second token issued first, whose expiry the last test moves into the past. */
let shortLived;
/** A business with a customer of its own, to show that tokens do not cross businesses. */
let other;

before(async () => {
  seed = await seedInbox({ frameAncestors: [CRM, 'https://*.crm.example.com'] });
  shortLived = await seed.token({ expires_in: 60, scope: 'inbox' });
  other = await newBusiness({ default_country: 'IE' });
  const synced = await sync(other.key, [{ name: 'Someone Else', email: `${unique('other')}@example.com` }]);
  other.customerId = synced.results.details[0].customer_id;
});

after(() => seed?.close());

/** The page at `embed_url`, as the browser inside the CRM's iframe would load it. */
const page = (url) => request('GET', url.slice(PUBLIC_URL.length));
const timeline = (token, query = '') =>
  request('GET', `/embed/api/timeline${query}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
const reply = (token, body) =>
  request('POST', '/embed/api/reply', { body, headers: { authorization: `Bearer ${token}` } });
const allMessages = async (key) =>
  (await api(key, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=500')).body.messages;

describe('POST /api-sso-generate-token', () => {
  test('issues a token for one customer, with its expiry and a ready embed_url, that never shows the API key', async () => {
    const before = Date.now();
    const res = await api(seed.business.key, 'POST', '/api-sso-generate-token', {
      customer_id: seed.customer.id,
      scope: 'inbox',
      expires_in: 3600,
    });
    assert.equal(res.status, 201, res.text);
    const { token, token_id, expires_at, embed_url, scope, customer_id, expires_in } = res.body;
    assert.match(token, TOKEN);
    assert.match(token_id, /^[0-9a-f-]{36}$/);
    assert.equal(scope, 'inbox');
    assert.equal(customer_id, seed.customer.id);
    assert.equal(expires_in, 3600);
    const expiry = Date.parse(expires_at);
    assert.ok(expiry >= before + 3600_000 - 2000 && expiry <= Date.now() + 3600_000 + 2000, `expires_at ${expires_at}`);
    assert.equal(embed_url, `${PUBLIC_URL}/embed/inbox?token=${token}`);
    assert.ok(!res.text.includes(seed.business.key), 'the answer does not contain the API key');
    assert.ok(!res.text.includes(seed.business.key.slice(4, 20)), 'nor any part of it');
  });

  test('defaults to an hour of the read-only scope, and each token is new', async () => {
    const first = await seed.token();
    const second = await seed.token();
    assert.equal(first.scope, 'inbox');
    assert.equal(first.expires_in, 3600);
    assert.notEqual(first.token, second.token);
    assert.notEqual(first.token_id, second.token_id);
  });

  test("follows the seed's flow: the customer found by external_id, then a token for customer.id; or external_id directly", async () => {
    const found = await getCustomer(seed.business.key, 'external_id', seed.customer.external_id);
    assert.equal(found.status, 200, found.text);
    const byId = await seed.token({ customer_id: found.body.id });
    assert.equal(byId.customer_id, seed.customer.id);
    const byExternal = await api(seed.business.key, 'POST', '/api-sso-generate-token', {
      external_id: seed.customer.external_id,
      scope: 'inbox:reply',
    });
    assert.equal(byExternal.status, 201, byExternal.text);
    assert.equal(byExternal.body.customer_id, seed.customer.id);
    assert.equal(byExternal.body.scope, 'inbox:reply');
  });

  test("another business's customer, or one that does not exist, is not found", async () => {
    const cases = [
      ['another business', { customer_id: other.customerId }],
      ['an id nobody has', { customer_id: randomUUID() }],
      ['an external id nobody has', { external_id: unique('CRM-missing') }],
    ];
    for (const [description, body] of cases) {
      const res = await api(seed.business.key, 'POST', '/api-sso-generate-token', body);
      assertError(res, 404, 'not_found', description);
    }
  });

  test('bad requests are refused with the field at fault', async () => {
    const id = seed.customer.id;
    const cases = [
      ['no customer', {}, 'customer_id'],
      ['two ways of naming the customer', { customer_id: id, external_id: 'CRM-1' }, 'customer_id'],
      ['an unknown scope', { customer_id: id, scope: 'admin' }, 'scope'],
      ['a scope in another case', { customer_id: id, scope: 'INBOX' }, 'scope'],
      ['expires_in under a minute', { customer_id: id, expires_in: 59 }, 'expires_in'],
      ['expires_in over a day', { customer_id: id, expires_in: 86_401 }, 'expires_in'],
      ['a negative expires_in', { customer_id: id, expires_in: -1 }, 'expires_in'],
      ['expires_in as text', { customer_id: id, expires_in: '3600' }, 'expires_in'],
      ['a fractional expires_in', { customer_id: id, expires_in: 90.5 }, 'expires_in'],
      ['scope of the wrong type', { customer_id: id, scope: ['inbox'] }, 'scope'],
    ];
    for (const [description, body, field] of cases) {
      const res = await api(seed.business.key, 'POST', '/api-sso-generate-token', body);
      const error = assertError(res, 422, 'validation_failed', description);
      assert.equal(error.field, field, description);
    }
  });

  test('malformed, oversized, unauthorised and wrongly sent requests get the matching error', async () => {
    const key = seed.business.key;
    assertError(await api(key, 'POST', '/api-sso-generate-token', '{"customer_id": '), 400, 'malformed_request', 'truncated JSON');
    assertError(await api(key, 'POST', '/api-sso-generate-token', ''), 400, 'malformed_request', 'no body');
    const huge = JSON.stringify({ customer_id: seed.customer.id, padding: 'x'.repeat(70 * 1024) });
    assertError(await api(key, 'POST', '/api-sso-generate-token', huge), 413, 'payload_too_large', 'a 70 KiB body');
    assertError(await api(null, 'POST', '/api-sso-generate-token', { customer_id: seed.customer.id }), 401, 'unauthorized', 'no key');
    assertError(
      await api(`cek_${'0'.repeat(48)}`, 'POST', '/api-sso-generate-token', { customer_id: seed.customer.id }),
      401,
      'unauthorized',
      'an unknown key',
    );
    const get = await api(key, 'GET', '/api-sso-generate-token');
    assertError(get, 405, 'method_not_allowed', 'GET');
    assert.equal(get.headers.get('allow'), 'POST');
  });
});

describe('GET /embed/inbox and the JSON it polls', () => {
  test('the page is served with a policy that lets only the allowed CRM frame it', async () => {
    const { embed_url } = await seed.token();
    const res = await page(embed_url);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /frame-ancestors https:\/\/crm\.example\.com https:\/\/\*\.crm\.example\.com(;|$)/);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.ok(!csp.includes('unsafe-inline'), csp);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.match(res.headers.get('cache-control'), /no-store/);
    assert.match(res.text, /<script src="\/embed\/assets\/inbox\.js" defer><\/script>/);
    assert.ok(!/<script>/.test(res.text), 'no inline script');

    for (const [path, type] of [
      ['/embed/assets/inbox.js', /^text\/javascript/],
      ['/embed/assets/inbox.css', /^text\/css/],
    ]) {
      const asset = await request('GET', path);
      assert.equal(asset.status, 200, path);
      assert.match(asset.headers.get('content-type'), type, path);
      assert.equal(asset.headers.get('x-content-type-options'), 'nosniff', path);
      assert.ok(asset.text.length > 500 && asset.text.length < 40_000, `${path} is small: ${asset.text.length} bytes`);
    }
  });

  test('any site may frame the page of a business that set nothing, none once it says so; the admin API validates origins', async () => {
    const business = await newBusiness();
    const shown = await admin('GET', `/admin/businesses/${business.id}`);
    assert.deepEqual(shown.body.embed_frame_ancestors, [], shown.text);
    const synced = await sync(business.key, [{ name: 'Framed Anywhere', email: `${unique('nf')}@example.com` }]);
    const issue = () => api(business.key, 'POST', '/api-sso-generate-token', {
      customer_id: synced.results.details[0].customer_id,
    });
    const issued = await issue();
    assert.equal(issued.status, 201, issued.text);
    const res = await page(issued.body.embed_url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy'), /frame-ancestors \*$/, 'the guide\'s iframe works with no setting');

    const nowhere = await admin('PATCH', `/admin/businesses/${business.id}`, { embed_frame_ancestors: ["'none'"] });
    assert.equal(nowhere.status, 200, nowhere.text);
    assert.deepEqual(nowhere.body.embed_frame_ancestors, ["'none'"]);
    const framedNowhere = await page((await issue()).body.embed_url);
    assert.match(framedNowhere.headers.get('content-security-policy'), /frame-ancestors 'none'$/);

    const bad = [
      ['a bare host', ['crm.example.com']],
      ['a path', ['https://crm.example.com/app']],
      ['a smuggled directive', ['https://crm.example.com; script-src *']],
      ['a wildcard for everyone', ['*']],
      ['none beside an origin', ["'none'", 'https://crm.example.com']],
      ['not a list', 'https://crm.example.com'],
    ];
    for (const [description, value] of bad) {
      const res = await admin('PATCH', `/admin/businesses/${business.id}`, { embed_frame_ancestors: value });
      const error = assertError(res, 422, 'validation_failed', description);
      assert.match(error.field, /^embed_frame_ancestors/, description);
    }
    const set = await admin('PATCH', `/admin/businesses/${business.id}`, {
      embed_frame_ancestors: ['HTTPS://App.Example.com/', 'http://127.0.0.1:9000'],
    });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.body.embed_frame_ancestors, ['https://app.example.com', 'http://127.0.0.1:9000']);
    const framed = await page(issued.body.embed_url);
    assert.match(framed.headers.get('content-security-policy'), /frame-ancestors https:\/\/app\.example\.com http:\/\/127\.0\.0\.1:9000$/);
    const reset = await admin('PATCH', `/admin/businesses/${business.id}`, { embed_frame_ancestors: [] });
    assert.deepEqual(reset.body.embed_frame_ancestors, [], reset.text);
    assert.match((await page(issued.body.embed_url)).headers.get('content-security-policy'), /frame-ancestors \*$/, 'an empty list is any site again');
    assertError(
      await admin('PATCH', `/admin/businesses/${randomUUID()}`, { embed_frame_ancestors: [] }),
      404,
      'not_found',
      'an unknown business',
    );
  });

  test("the timeline shows the customer's messages on every channel, oldest first, with working file links", async () => {
    const { token } = await seed.token();
    const res = await timeline(token);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.customer.name, 'Joe Bloggs');
    assert.equal(res.body.scope, 'inbox');
    assert.equal(res.body.reply, undefined, 'the read-only scope offers no reply');
    const stored = (await allMessages(seed.business.key)).filter((m) => m.customer_id === seed.customer.id);
    assert.deepEqual(
      res.body.messages.map((m) => [m.id, m.channel, m.direction]),
      stored.map((m) => [m.id, m.channel, m.direction]),
    );
    assert.ok(new Set(res.body.messages.map((m) => m.channel)).size >= 2, 'more than one channel');
    assert.ok(res.body.messages.some((m) => m.direction === 'inbound') && res.body.messages.some((m) => m.direction === 'outbound'));

    const files = res.body.messages.flatMap((m) => m.attachments);
    const image = files.find((file) => file.filename === 'tracking-label.png');
    const pdf = files.find((file) => file.filename === 'invoice-1234.pdf');
    assert.ok(image?.preview, 'the image is previewed');
    assert.equal(pdf?.preview, false, 'the PDF is a download');
    for (const file of [image, pdf]) {
      assert.ok(file.url.startsWith(`${PUBLIC_URL}/api/download-media?`), file.url);
      assert.match(file.url, /[?&]expires=\d+&signature=[0-9a-f]{64}$/);
      const expires = Number(new URL(file.url).searchParams.get('expires'));
      assert.ok(expires * 1000 <= Date.now() + 15 * 60_000 + 5000, 'a short-lived link');
      const download = await fetch(file.url);
      assert.equal(download.status, 200, `${file.filename} downloads without an API key`);
      const bytes = Buffer.from(await download.arrayBuffer());
      if (file === image) assert.deepEqual(bytes, PNG);
    }
    assert.ok(!res.text.includes(seed.business.id), 'the page is not told the business id');
  });

  test('a poll with the cursor returns nothing until the customer writes, then exactly the new message', async () => {
    const { token } = await seed.token();
    const first = await timeline(token);
    const cursor = first.body.next_cursor;
    const quiet = await timeline(token, `?after=${cursor}`);
    assert.equal(quiet.status, 200, quiet.text);
    assert.deepEqual(quiet.body.messages, []);
    assert.equal(quiet.body.next_cursor, cursor);
    assert.equal(quiet.body.customer, undefined, 'polls carry only what changed');

    await seed.whatsappFromCustomer('Is it out for delivery yet?');
    const later = await timeline(token, `?after=${cursor}`);
    assert.deepEqual(
      later.body.messages.map((m) => [m.content, m.channel, m.direction]),
      [['Is it out for delivery yet?', 'whatsapp', 'inbound']],
    );
    assertError(await timeline(token, '?after=not-a-cursor'), 422, 'validation_failed', 'a made-up cursor');
  });

  test('the reply scope sends through the send-message path; the read-only scope cannot reply', async () => {
    const readOnly = await seed.token({ scope: 'inbox' });
    const refused = await reply(readOnly.token, { channel: 'whatsapp', content: 'Should not be sent' });
    assertError(refused, 403, 'forbidden', 'replying with the inbox scope');
    assert.ok(
      !(await allMessages(seed.business.key)).some((m) => m.content === 'Should not be sent'),
      'nothing was stored',
    );

    const writer = await seed.token({ scope: 'inbox:reply' });
    const options = await timeline(writer.token);
    assert.equal(options.body.scope, 'inbox:reply');
    assert.deepEqual([...options.body.reply.channels].sort(), ['email', 'whatsapp']);
    assert.equal(options.body.reply.default_channel, 'whatsapp', 'the channel the customer last wrote on');

    const sent = await reply(writer.token, { channel: 'whatsapp', content: 'Yes, it arrives this afternoon.' });
    assert.equal(sent.status, 202, sent.text);
    assert.equal(sent.body.message.direction, 'outbound');
    assert.equal(sent.body.message.status, 'queued');
    const settled = await waitFor(async () => {
      const poll = await timeline(writer.token, `?after=${options.body.next_cursor}&pending=${sent.body.message.id}`);
      return poll.body.updated.find((m) => m.id === sent.body.message.id && m.status !== 'queued');
    }, 30_000, 'the reply to be dispatched');
    assert.equal(settled.status, 'sent', JSON.stringify(settled));

    const cases = [
      ['an unknown channel', { channel: 'telegram', content: 'hi' }, 'channel'],
      ['no content', { channel: 'whatsapp', content: '  ' }, 'content'],
      ['a channel without an account', { channel: 'sms', content: 'hi' }, 'channel'],
      ['too long for WhatsApp', { channel: 'whatsapp', content: 'x'.repeat(4097) }, 'content'],
    ];
    for (const [description, body, field] of cases) {
      const error = assertError(await reply(writer.token, body), 422, 'validation_failed', description);
      assert.equal(error.field, field, description);
    }
    const huge = JSON.stringify({ channel: 'whatsapp', content: 'x'.repeat(70 * 1024) });
    assertError(await reply(writer.token, huge), 413, 'payload_too_large', 'a 70 KiB reply');
  });

  test('forged, altered, missing and borrowed credentials open nothing, and the page says so', async () => {
    const { token } = await seed.token();
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const forged = [
      ['one character changed', `${token.slice(0, -1)}${last}`],
      ['a well-formed token never issued', `sso_${'A'.repeat(43)}`],
      ['the API key instead', seed.business.key],
      ['truncated', token.slice(0, 20)],
      ['empty', ''],
    ];
    for (const [description, value] of forged) {
      const html = await request('GET', `/embed/inbox?token=${encodeURIComponent(value)}`);
      assert.equal(html.status, 401, description);
      assert.match(html.headers.get('content-type'), /^text\/html/, description);
      assert.match(html.text, /This link is not valid/, description);
      assert.match(html.headers.get('content-security-policy'), /script-src|default-src 'none'/, description);
      assert.equal(html.headers.get('referrer-policy'), 'no-referrer', description);
      assert.ok(!/panicked|RuntimeError|at .*\.rs/.test(html.text), `${description}: no trace`);
      assertError(await timeline(value), 401, 'unauthorized', description);
    }
    assert.equal((await request('GET', '/embed/inbox')).status, 401, 'no token at all');
    assertError(await timeline(null), 401, 'unauthorized', 'no Authorization header');
    const withKey = await request('GET', '/embed/api/timeline', { headers: { 'x-api-key': seed.business.key } });
    assertError(withKey, 401, 'unauthorized', 'an API key is not a token');
  });

  test('a revoked token stops at once; revoking is scoped to the business and idempotent', async () => {
    const byToken = await seed.token({ scope: 'inbox:reply' });
    const byId = await seed.token();
    assert.equal((await timeline(byToken.token)).status, 200);

    assertError(
      await api(other.key, 'POST', '/api-sso-revoke-token', { token: byToken.token }),
      404,
      'not_found',
      "another business's token",
    );
    assert.equal((await timeline(byToken.token)).status, 200, 'still valid after the refused revoke');

    const revoked = await api(seed.business.key, 'POST', '/api-sso-revoke-token', { token: byToken.token });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(revoked.body, { revoked: true, token_id: byToken.token_id });
    const again = await api(seed.business.key, 'POST', '/api-sso-revoke-token', { token: byToken.token });
    assert.equal(again.status, 200, 'revoking twice is fine');

    const html = await page(byToken.embed_url);
    assert.equal(html.status, 403);
    assert.match(html.text, /This link was revoked/);
    assertError(await timeline(byToken.token), 403, 'forbidden', 'timeline after revoke');
    assertError(await reply(byToken.token, { channel: 'whatsapp', content: 'late' }), 403, 'forbidden', 'reply after revoke');

    const viaId = await api(seed.business.key, 'POST', '/api-sso-revoke-token', { token_id: byId.token_id });
    assert.equal(viaId.status, 200, viaId.text);
    assert.equal((await page(byId.embed_url)).status, 403);

    const bad = [
      ['nothing named', {}, 422],
      ['both named', { token: byId.token, token_id: byId.token_id }, 422],
      ['a token_id that is not one', { token_id: 'abc' }, 422],
      ['an unknown token_id', { token_id: randomUUID() }, 404],
      ['a forged token', { token: `sso_${'B'.repeat(43)}` }, 404],
    ];
    for (const [description, body, status] of bad) {
      const res = await api(seed.business.key, 'POST', '/api-sso-revoke-token', body);
      assertError(res, status, status === 404 ? 'not_found' : 'validation_failed', description);
    }
    assertError(await api(null, 'POST', '/api-sso-revoke-token', { token_id: byId.token_id }), 401, 'unauthorized', 'no key');
  });

  test('a token stops working when it expires, and the page says it expired', async () => {
    // Issued before every other test of this file with the shortest lifetime (60 s): valid until
    // now, and stored with the expiry its answer gave.
    const expiry = Date.parse(shortLived.expires_at);
    assert.equal((await timeline(shortLived.token)).status, 200, 'valid before its expiry');
    const stored = d1('SELECT expires_ms FROM sso_tokens WHERE id = ?', [shortLived.token_id]);
    assert.deepEqual(stored, [[expiry]], 'stored with the expires_at it was issued with');
    // The minute passes: its expiry is moved to a second ago, where waiting it out would cost the
    // suite a minute. The stack reads it as it reads any token, against its own clock.
    d1('UPDATE sso_tokens SET expires_ms = ? WHERE id = ?', [Date.now() - 1000, shortLived.token_id]);
    const html = await page(shortLived.embed_url);
    assert.equal(html.status, 401);
    assert.match(html.text, /This link has expired/);
    const error = assertError(await timeline(shortLived.token), 401, 'unauthorized', 'timeline after expiry');
    assert.match(error.message, /expired/);
  });
});
