// The business console's sign-in and what a session may do, over HTTP as a browser would send it:
// a link issued with an API key (or the admin token) opens once into a session cookie; the
// session can do what the business's key can at the endpoints the console uses (and only for that
// business), every change needs
// its CSRF token, the audit log names the session, and signing out or revoking ends it at once.
// The business's own management endpoints (/api-keys, /api-connectors, …) are checked here too:
// another business's ids are not found, and the rate limit stays the operator's.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, PUBLIC_URL, admin, api, assertError, newBusiness, request, unique } from './support.mjs';

const LINK = /^ccl_[A-Za-z0-9_-]{43}$/;
const COOKIE = '__Host-crm-edge-console';
const UUID_LIKE = '8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f';

/** A console link of `business`, issued with its key. */
async function link(business) {
  const res = await api(business.key, 'POST', '/api-console-links');
  assert.equal(res.status, 201, `issuing a console link: ${res.text}`);
  return res.body;
}

const tokenOf = (issued) => new URL(issued.url).searchParams.get('token');

/** The sign-in form posted as a browser posts it from the sign-in page (its 303 not followed). */
async function openLink(token, origin = PUBLIC_URL) {
  const res = await fetch(`${BASE_URL}/console/sign-in`, {
    method: 'POST',
    body: `token=${encodeURIComponent(token)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = null; }
  return { status: res.status, headers: res.headers, text, body };
}

/** A signed-in session: its cookie header and its CSRF token. */
async function signIn(business) {
  const opened = await openLink(tokenOf(await link(business)));
  assert.equal(opened.status, 303, `opening a link: ${opened.text}`);
  const cookie = opened.headers.get('set-cookie').split(';')[0];
  const me = await request('GET', '/console/session', { headers: { cookie } });
  assert.equal(me.status, 200, me.text);
  return { cookie, csrf: me.body.csrf_token, id: me.body.session_id };
}

/** A call as the console makes it: the cookie, and the CSRF token on a change. */
function asConsole(session, method, path, body, { csrf = true } = {}) {
  const headers = { cookie: session.cookie };
  if (csrf && method !== 'GET') headers['x-csrf-token'] = session.csrf;
  return request(method, path, { body, headers });
}

let acme;
let other;

before(async () => {
  acme = await newBusiness({ name: unique('Acme') });
  other = await newBusiness({ name: unique('Other') });
});

describe('a console link', () => {
  test('is issued with the key or the admin token, opens to the console for 15 minutes, and names its business', async () => {
    const before = Date.now();
    const issued = await link(acme);
    assert.match(tokenOf(issued), LINK);
    assert.equal(new URL(issued.url).pathname, '/console/sign-in');
    const lifetime = Date.parse(issued.expires_at) - before;
    assert.ok(lifetime > 14 * 60_000 && lifetime <= 15 * 60_000 + 5_000, `expires in 15 minutes (${lifetime} ms)`);
    const byAdmin = await admin('POST', `/admin/businesses/${acme.id}/console-links`);
    assert.equal(byAdmin.status, 201, byAdmin.text);

    const page = await request('GET', `/console/sign-in?token=${tokenOf(issued)}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.ok(page.text.includes(acme.business.name), 'the page names the business');
    assert.ok(page.text.includes('method="post"'), 'the link is opened by a form, not by loading the page');
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.equal(page.headers.get('referrer-policy'), 'same-origin');
    // Loading the page used nothing up.
    assert.equal((await openLink(tokenOf(issued))).status, 303);
  });

  test('opens once: the second opening, a made-up link and a revoked link get the page that says why', async () => {
    const token = tokenOf(await link(acme));
    const first = await openLink(token);
    assert.equal(first.status, 303);
    assert.equal(first.headers.get('location'), '/console');
    const cookie = first.headers.get('set-cookie');
    for (const attribute of [`${COOKIE}=ccs_`, 'HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/', 'Max-Age=28800']) {
      assert.ok(cookie.includes(attribute), `${attribute} in ${cookie}`);
    }
    const again = await openLink(token);
    assert.equal(again.status, 401);
    assert.match(again.text, /cannot be opened/);
    assert.equal(again.headers.get('set-cookie'), null);

    const revoked = await link(acme);
    const gone = await api(acme.key, 'DELETE', `/api-console-sessions/${revoked.id}`);
    assert.equal(gone.status, 200, gone.text);
    assert.ok(gone.body.revoked_at);
    assert.equal((await openLink(tokenOf(revoked))).status, 401, 'a revoked link opens nothing');
    assert.equal((await request('GET', `/console/sign-in?token=${tokenOf(revoked)}`)).status, 401);

    const hostile = ['', 'ccl_short', `ccl_${'A'.repeat(43)}`, `${token}x`, '<script>alert(1)</script>', 'ccl_'.padEnd(2000, 'x')];
    for (const candidate of hostile) {
      const page = await request('GET', `/console/sign-in?token=${encodeURIComponent(candidate)}`);
      assert.equal(page.status, 401, `GET ${candidate.slice(0, 20)}`);
      assert.ok(!page.text.includes('<script>alert'), 'nothing given is echoed as markup');
      assert.equal((await openLink(candidate)).status, 401, `POST ${candidate.slice(0, 20)}`);
    }
  });

  test("posted from another site's page is refused, so nobody can sign a browser into their own console", async () => {
    const token = tokenOf(await link(acme));
    assertError(await openLink(token, 'https://evil.example'), 403, 'forbidden');
    assertError(await openLink(token, 'null'), 403, 'forbidden', 'a page that hides where it is');
    assert.equal((await openLink(token)).status, 303, 'the refused attempt used nothing up');
  });

  test('is issued only with a valid key or the admin token, and only for a business that exists', async () => {
    assertError(await api(null, 'POST', '/api-console-links'), 401, 'unauthorized');
    assertError(await api('cek_nope', 'POST', '/api-console-links'), 401, 'unauthorized');
    assertError(await admin('POST', `/admin/businesses/${UUID_LIKE}/console-links`), 404, 'not_found');
    assertError(await request('POST', `/admin/businesses/${acme.id}/console-links`), 401, 'unauthorized');
  });
});

describe('a console session', () => {
  test('answers who is signed in, with the CSRF token its page sends on changes', async () => {
    const session = await signIn(acme);
    const me = await asConsole(session, 'GET', '/console/session');
    assert.equal(me.body.business.id, acme.id);
    assert.equal(me.body.business.name, acme.business.name);
    assert.match(me.body.csrf_token, /^[0-9a-f]{64}$/);
    assert.ok(Date.parse(me.body.expires_at) > Date.now() + 7 * 3600_000);
    assertError(await request('GET', '/console/session'), 401, 'unauthorized', 'no cookie');
  });

  test("does what the business's key can, for that business only", async () => {
    const session = await signIn(acme);
    const listed = await asConsole(session, 'GET', '/api-webhooks');
    assert.equal(listed.status, 200, listed.text);
    const made = await asConsole(session, 'POST', '/api-webhooks', {
      name: 'From the console', url: 'https://crm.example.com/hook', events: ['customer.created'],
    });
    assert.equal(made.status, 201, made.text);
    assert.ok(made.body.secret);
    const byKey = await api(acme.key, 'GET', `/api-webhooks/${made.body.webhook.id}`);
    assert.equal(byKey.status, 200, 'the key sees what the session made');
    assertError(await api(other.key, 'GET', `/api-webhooks/${made.body.webhook.id}`), 404, 'not_found', "another business's key");
    const analytics = await asConsole(session, 'GET', '/api-crm-analytics');
    assert.equal(analytics.status, 200, analytics.text);
    const links = await asConsole(session, 'GET', '/api/dashboard/crm-links/all');
    assert.equal(links.status, 200, links.text);
  });

  test("reaches only the endpoints the console uses: the data the CRM syncs stays the key's", async () => {
    const session = await signIn(acme);
    const synced = await asConsole(session, 'POST', '/api-customers-sync', { customers: [{ external_id: unique('c'), name: 'Console Made' }] });
    assertError(synced, 401, 'unauthorized');
    assertError(await asConsole(session, 'GET', '/api-messages-since?since=1970-01-01T00:00:00Z'), 401, 'unauthorized');
  });

  test('changes nothing without its CSRF token, or with another session\'s', async () => {
    const session = await signIn(acme);
    const second = await signIn(acme);
    const body = { name: 'No token', url: 'https://crm.example.com/hook', events: ['customer.created'] };
    assertError(await asConsole(session, 'POST', '/api-webhooks', body, { csrf: false }), 403, 'forbidden');
    const wrong = await request('POST', '/api-webhooks', { body, headers: { cookie: session.cookie, 'x-csrf-token': second.csrf } });
    assertError(wrong, 403, 'forbidden', "another session's token");
    assertError(await asConsole(session, 'POST', '/console/sign-out', undefined, { csrf: false }), 403, 'forbidden', 'signing out needs it too');
    const hooks = await api(acme.key, 'GET', '/api-webhooks');
    assert.ok(!hooks.body.webhooks.some((w) => w.name === 'No token'), 'nothing was made');
  });

  test('is named in the audit log as the session that acted', async () => {
    const session = await signIn(acme);
    const issued = await asConsole(session, 'POST', '/api-keys', { name: unique('console key') });
    assert.equal(issued.status, 201, issued.text);
    const log = await api(acme.key, 'GET', '/api-audit-log?limit=20');
    assert.equal(log.status, 200, log.text);
    const entry = log.body.entries.find((e) => e.action === 'api_key.issued' && e.target.id === issued.body.id);
    assert.equal(entry?.actor, `console:${session.id}`);
    const opened = log.body.entries.find((e) => e.action === 'console_session.opened' && e.target.id === session.id);
    assert.equal(opened?.actor, `console:${session.id}`);
    assert.ok(log.body.entries.some((e) => e.action === 'console_session.link_issued' && e.actor.startsWith('key:cek_')));
  });

  test('ends at once when it signs out, or when the business or the operator revokes it', async () => {
    const first = await signIn(acme);
    const out = await asConsole(first, 'POST', '/console/sign-out');
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie'), /Max-Age=0/);
    assertError(await asConsole(first, 'GET', '/api-webhooks'), 401, 'unauthorized', 'after signing out');

    const second = await signIn(acme);
    const current = await api(acme.key, 'GET', '/api-console-sessions');
    assert.ok(current.body.sessions.some((s) => s.id === second.id && s.opened_at), 'the open session is listed');
    assert.ok(!current.body.sessions.some((s) => s.id === first.id), 'the ended one is not');
    assert.equal((await api(acme.key, 'DELETE', `/api-console-sessions/${second.id}`)).status, 200);
    assertError(await asConsole(second, 'GET', '/console/session'), 401, 'unauthorized', 'revoked by the business');

    const third = await signIn(acme);
    assertError(await api(other.key, 'DELETE', `/api-console-sessions/${third.id}`), 404, 'not_found', "another business's key");
    assert.equal((await admin('DELETE', `/admin/console-sessions/${third.id}`)).status, 200);
    assertError(await asConsole(third, 'GET', '/api-keys'), 401, 'unauthorized', 'revoked by the operator');
  });

  test('a cookie that is not a session is no credential, and says so', async () => {
    const cases = [
      ['garbage', `${COOKIE}=nonsense`, 'missing x-api-key header'],
      ['a session that never was', `${COOKIE}=ccs_${'A'.repeat(43)}`, 'console session has ended'],
      ['a link in the cookie', `${COOKIE}=ccl_${'A'.repeat(43)}`, 'missing x-api-key header'],
    ];
    for (const [label, cookie, message] of cases) {
      const res = await request('GET', '/api-webhooks', { headers: { cookie } });
      const error = assertError(res, 401, 'unauthorized', label);
      assert.ok(error.message.includes(message), `${label}: ${error.message}`);
    }
    const session = await signIn(acme);
    const withKey = await request('GET', '/api-webhooks', { headers: { cookie: session.cookie, 'x-api-key': other.key } });
    assert.equal(withKey.status, 200);
    assert.ok(withKey.body.webhooks.every((w) => !w.name.startsWith('From the console')), 'a key, when sent, is what counts');
  });
});

describe("a business's own settings with its key", () => {
  test('keys: issued, listed and revoked; another business\'s key is not found', async () => {
    const made = await api(acme.key, 'POST', '/api-keys', { name: 'HubSpot staging' });
    assert.equal(made.status, 201, made.text);
    assert.match(made.body.key, /^cek_/);
    const works = await api(made.body.key, 'GET', '/api-keys');
    assert.equal(works.status, 200);
    assert.ok(works.body.api_keys.some((k) => k.id === made.body.id));
    assert.ok(works.body.api_keys.every((k) => k.business_id === acme.id));
    assertError(await api(other.key, 'DELETE', `/api-keys/${made.body.id}`), 404, 'not_found');
    const revoked = await api(acme.key, 'DELETE', `/api-keys/${made.body.id}`);
    assert.equal(revoked.status, 200);
    assertError(await api(made.body.key, 'GET', '/api-keys'), 401, 'unauthorized', 'the revoked key');
    assertError(await api(acme.key, 'POST', '/api-keys', { name: 'x'.repeat(201) }), 422, 'validation_failed');
  });

  test('the business: read, its inbox framing set, its rate limit left to the operator', async () => {
    const read = await api(acme.key, 'GET', '/api-business');
    assert.equal(read.body.id, acme.id);
    const framed = await api(acme.key, 'PATCH', '/api-business', { embed_frame_ancestors: ['https://crm.acme.example'] });
    assert.equal(framed.status, 200, framed.text);
    assert.deepEqual(framed.body.embed_frame_ancestors, ['https://crm.acme.example']);
    const raised = await api(acme.key, 'PATCH', '/api-business', { rate_limit: { per_minute: 100000 } });
    const error = assertError(raised, 403, 'forbidden');
    assert.equal(error.field, 'rate_limit');
    const after = await api(acme.key, 'GET', '/api-business');
    assert.deepEqual(after.body.rate_limit, read.body.rate_limit, 'the limit did not change');
  });

  test("channel accounts and connectors of another business are not found, whatever the method", async () => {
    const account = await admin('POST', `/admin/businesses/${other.id}/channel-accounts`, {
      channel: 'sms', provider: 'twilio', address: `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '5')}`,
      settings: { account_sid: 'AC123' }, secrets: { auth_token: 'secret' },
    });
    assert.equal(account.status, 201, account.text);
    assertError(await api(acme.key, 'PATCH', `/api-channel-accounts/${account.body.id}`, { name: 'mine now' }), 404, 'not_found');
    const own = await api(other.key, 'PATCH', `/api-channel-accounts/${account.body.id}`, { name: 'renamed' });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.body.name, 'renamed');
    const listed = await api(acme.key, 'GET', '/api-channel-accounts');
    assert.ok(!listed.body.channel_accounts.some((a) => a.id === account.body.id));
    for (const path of ['', '/test', '/teams', '/pipelines', '/sync-log', '/contacts/chatwoot:1']) {
      assertError(await api(acme.key, path === '/test' ? 'POST' : 'GET', `/api-connectors/${UUID_LIKE}${path}`), 404, 'not_found', path);
    }
  });

  test('the admin paths still tell nothing without the admin token, and a key is no admin token', async () => {
    assertError(await api(acme.key, 'GET', `/admin/businesses/${acme.id}/api-keys`), 401, 'unauthorized');
    assertError(await request('GET', '/admin/no-such-thing'), 401, 'unauthorized');
  });
});
