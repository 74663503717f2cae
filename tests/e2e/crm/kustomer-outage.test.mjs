// Fallback mode: Kustomer down for two minutes under traffic. The chat path goes on as if nothing
// happened, the work waits (the connector's status shows the backlog and the last error), and
// when Kustomer is back every customer and message arrives exactly once, each conversation's
// messages in order.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support.mjs';
import { receiveWhatsapp, sleep, uniquePhone, whatsappAccount } from '../receivers/webhook-api.mjs';
import { connectedBusiness, connectorOf, syncLog } from './connectors.mjs';

const OUTAGE_MS = 120_000;
const CUSTOMERS = 4;

let kustomer;
after(async () => {
  await kustomer?.close();
});

test('two minutes of Kustomer down under traffic: nothing lost, nothing twice, order kept', { timeout: 420_000 }, async () => {
  const setup = await connectedBusiness();
  kustomer = setup.kustomer;
  const whatsapp = await whatsappAccount(setup.business);
  const phones = Array.from({ length: CUSTOMERS }, uniquePhone);
  const sent = new Map(phones.map((phone) => [phone, []]));
  let n = 0;
  const send = async (phone) => {
    const text = `m${(n += 1)}`;
    sent.get(phone).push(text);
    const started = Date.now();
    await receiveWhatsapp(whatsapp, { from: phone, text });
    return Date.now() - started;
  };
  for (const phone of phones) await send(phone);

  await kustomer.down();
  const downSince = Date.now();
  const chatLatencies = [];
  while (Date.now() - downSince < OUTAGE_MS) {
    chatLatencies.push(await send(phones[n % CUSTOMERS]));
    await sleep(4_000);
  }
  const during = await connectorOf(setup.connector.id);
  assert.ok(during.status.backlog > 0, 'the backlog is shown');
  assert.match(during.status.last_error ?? '', /could not be reached|did not answer/, 'the last error is shown');
  assert.ok(Math.max(...chatLatencies) < 5_000, `the chat path never waited on Kustomer: ${Math.max(...chatLatencies)} ms`);
  await kustomer.up();

  const total = [...sent.values()].reduce((sum, texts) => sum + texts.length, 0);
  await waitFor(async () => {
    const messages = kustomer.conversations.flatMap((c) => kustomer.messages(c.id));
    return messages.length >= total && (await syncLog(setup.connector.id, 'status=pending')).length === 0;
  }, 240_000, 'the backlog drained', 2_000);

  assert.equal(kustomer.customers.length, CUSTOMERS, 'each customer once');
  assert.equal(kustomer.conversations.length, CUSTOMERS, 'each conversation once');
  for (const conversation of kustomer.conversations) {
    const previews = kustomer.messages(conversation.id).map((m) => m.attributes.preview);
    const customer = kustomer.customers.find((c) => c.id === conversation.attributes.customer ?? conversation.relationships?.customer?.data?.id);
    const phone = phones.find((p) => previews[0] && sent.get(p)[0] === previews[0]);
    assert.ok(phone, `a conversation of ours: ${previews.join(',')} (${customer?.id})`);
    assert.deepEqual(previews, sent.get(phone), 'every message once, in order');
  }
  const log = await syncLog(setup.connector.id);
  assert.equal(log.filter((entry) => entry.status === 'failed' || entry.status === 'dead').length, 0);
});
