// 000 and 001, the Kustomer setup guide and its production checklist: their flows that name our
// API, run against the local Kustomer.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, newBusiness, waitFor } from '../support.mjs';
import { receiveWhatsapp, uniquePhone } from '../receivers/webhook-api.mjs';
import { localPartners } from '../partners.mjs';
import { connectKustomer, connectedBusiness, kustomerOrg, settledLog, syncLog } from '../crm/connectors.mjs';

const partners = localPartners();

describe('001, "Fallback Mode: system works without Kustomer when API is down"', () => {
  test('a customer asking for a person is told at once while Kustomer is down; the ticket follows when it is back', async () => {
    const setup = await connectedBusiness({ settings: { handoff_message: 'A person will reply soon.' } });
    partners.closeAfter(setup.kustomer);
    const whatsapp = await partners.whatsappOf(setup.business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'Hello' });
    await settledLog(setup.connector.id, 3);
    await setup.kustomer.down();
    try {
      await receiveWhatsapp(whatsapp, { from, text: 'I want to talk to a person please' });
      await partners.meta.waitFor(from.slice(1), 1, 20_000);
      assert.equal(partners.meta.for(from.slice(1))[0].body.text.body, 'A person will reply soon.', 'told while Kustomer is down');
      const pending = await syncLog(setup.connector.id, 'status=pending');
      assert.ok(pending.some((e) => e.operation === 'escalate'), 'the ticket waits for Kustomer');
    } finally {
      await setup.kustomer.up();
    }
    await waitFor(async () => (await syncLog(setup.connector.id)).some((e) => e.operation === 'escalate' && e.status === 'succeeded'), 120_000, 'the ticket made', 1_000);
    assert.equal(setup.kustomer.conversations[0].attributes.priority, 4, 'the Kustomer conversation is escalated');
    assert.equal(partners.meta.for(from.slice(1)).length, 1, 'the customer was told once');
  });

  test('a phrase escalates with Conversation Sync off', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const org = await kustomerOrg();
    partners.closeAfter(org.kustomer);
    const connector = await connectKustomer(business, org, { settings: { conversation_sync: false } });
    const whatsapp = await partners.whatsappOf(business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'can I speak to someone' });
    await partners.meta.waitFor(from.slice(1), 1, 20_000);
    await waitFor(async () => (await syncLog(connector.id)).some((e) => e.operation === 'escalate' && e.status === 'succeeded'), 30_000, 'the ticket');
    assert.equal(org.kustomer.conversations.length, 1, 'the escalation made its conversation in Kustomer');
    const analytics = await api(business.key, 'GET', '/api-crm-analytics');
    assert.equal(analytics.body.escalations.count, 1);
  });
});
