// Alerts on the real runtime (docs/alerts.md): a business's Kustomer goes down and the sweep the
// cron runs every minute (run here by the operator's POST /admin/maintenance/sweep) raises
// exactly one alert: one signed `alert.raised` webhook and one email through the business's
// Mailgun account; Kustomer comes back and exactly one `alert.resolved` and one email follow,
// however many sweeps run. The rule is set to alert at the first failure, so that the test takes
// seconds of the stack's real clock (the ten minutes of the default window pass on the native
// stack's clock in tests/pipelines/src/paths/alerts.rs). The settings' endpoint refuses bad input.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { admin, api, assertError, request, sync, unique, waitFor } from './support.mjs';
import { connectedBusiness } from './crm/connectors.mjs';
import { startWebhookReceiver } from './receivers/webhook-receiver.mjs';
import { businessWithEndpoint } from './receivers/webhook-api.mjs';
import { startMailgun } from './providers/mailgun.mjs';

const DOMAIN = 'mg.alerts.example';
const MAILGUN_KEY = `key-${randomBytes(8).toString('hex')}`;
const OPS = 'ops@alerts.example';
const WAIT_MS = 30_000;

let receiver;
let mailgun;
let setup;

before(async () => {
  receiver = await startWebhookReceiver();
  mailgun = await startMailgun(new Map([[DOMAIN, MAILGUN_KEY]]));
});

after(async () => {
  await receiver?.close();
  await mailgun?.close();
  await setup?.kustomer?.close();
});

/** The sweep, as the operator runs it; every part of it ran. */
async function sweep() {
  const res = await admin('POST', '/admin/maintenance/sweep');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.failed, [], `every part of the sweep ran: ${res.text}`);
  return res.body;
}

/** Sweeps until `check()` holds. */
function sweptUntil(check, what) {
  return waitFor(async () => {
    await sweep();
    return check();
  }, WAIT_MS, what, 500);
}

describe('alerts', () => {
  test('Kustomer down: one signed alert.raised and one email; back up: one alert.resolved and one email', async () => {
    setup = await connectedBusiness();
    const { business, kustomer } = setup;
    const endpoint = receiver.endpoint();
    await businessWithEndpoint(endpoint, { events: ['alert.raised', 'alert.resolved'] }, business);
    const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
      channel: 'email',
      provider: 'mailgun',
      address: `alerts@${DOMAIN}`,
      settings: { domain: DOMAIN, api_base_url: mailgun.url },
      secrets: { signing_key: randomBytes(16).toString('hex'), api_key: MAILGUN_KEY },
    });
    assert.equal(account.status, 201, account.text);
    const set = await api(business.key, 'PATCH', '/api-alert-settings', {
      rules: { connector_failing: { threshold: 0 } },
      email_to: [OPS],
    });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.email_from, `alerts@${DOMAIN}`);

    await kustomer.down();
    await sync(business.key, [{ external_id: unique('CRM'), name: 'Down Time', email: `${unique('down')}@example.com` }]);
    await sweptUntil(() => endpoint.events('alert.raised').length > 0, 'alert.raised');
    await mailgun.waitFor(OPS, 1);
    for (let n = 0; n < 3; n++) await sweep();
    const raised = endpoint.events('alert.raised');
    assert.equal(raised.length, 1, 'raised once');
    assert.ok(raised[0].standardVerified && raised[0].seedVerified, 'signed');
    const alert = raised[0].body.data.alert;
    assert.equal(alert.kind, 'connector_failing');
    assert.equal(alert.subject_id, setup.connector.id);
    assert.equal(alert.state, 'open');
    assert.equal(mailgun.for(OPS).length, 1, 'one email');
    const mail = mailgun.for(OPS)[0].body;
    assert.match(mail.subject, /Alert: CRM connector failing/);
    assert.equal(mail.from, `alerts@${DOMAIN}`);

    await kustomer.up();
    await sync(business.key, [{ external_id: unique('CRM'), name: 'Back Again', email: `${unique('up')}@example.com` }]);
    await sweptUntil(() => endpoint.events('alert.resolved').length > 0, 'alert.resolved');
    await mailgun.waitFor(OPS, 2);
    for (let n = 0; n < 3; n++) await sweep();
    assert.equal(endpoint.events('alert.resolved').length, 1, 'resolved once');
    assert.equal(endpoint.events('alert.raised').length, 1, 'and not raised again');
    assert.equal(endpoint.events('alert.resolved')[0].body.data.alert.id, alert.id);
    assert.equal(mailgun.for(OPS).length, 2, 'one email more');
    assert.match(mailgun.for(OPS)[1].body.subject, /Resolved: CRM connector failing/);
    const listed = await api(business.key, 'GET', '/api-alerts');
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.body.open, 0);
    const [shown] = listed.body.alerts;
    assert.deepEqual(
      [shown.id, shown.state, shown.raised_email, shown.resolved_email],
      [alert.id, 'resolved', 'sent', 'sent'],
    );
  });

  test('bad settings are refused naming their field, without a key or a session nothing is read', async () => {
    const key = setup.business.key;
    for (const [body, field] of [
      [{ rules: { connector_failing: { threshold: -1 } } }, 'rules.connector_failing.threshold'],
      [{ rules: { connector_paused: { enabled: 'yes' } } }, 'rules.connector_paused.enabled'],
      [{ email_to: Array.from({ length: 11 }, (_, n) => `ops${n}@alerts.example`) }, 'email_to'],
      [{ email_to: ['<script>@x'] }, 'email_to[0]'],
    ]) {
      const res = await api(key, 'PATCH', '/api-alert-settings', body);
      assertError(res, 422, 'validation_failed', JSON.stringify(body));
      assert.equal(res.body.error.field, field, res.text);
    }
    const malformed = await request('PATCH', '/api-alert-settings', {
      body: '{"rules":',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
    });
    assert.equal(malformed.status, 400, malformed.text);
    const oversized = await api(key, 'PATCH', '/api-alert-settings', { email_to: ['a@b.co'], pad: 'x'.repeat(2 * 1024 * 1024) });
    assert.ok([413, 422].includes(oversized.status), oversized.text);
    assert.equal((await request('GET', '/api-alerts')).status, 401);
    assert.equal((await api('cek_nope', 'GET', '/api-alert-settings')).status, 401);
    const kept = await api(key, 'GET', '/api-alert-settings');
    assert.deepEqual(kept.body.email_to, [OPS], 'nothing changed');
  });
});
