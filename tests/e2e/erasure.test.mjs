// A customer erased on request, on the real runtime: the business's DELETE reaches the admin
// function through the gateway, their messages, file (R2) and conversation are deleted from D1,
// Kustomer and Krayin delete their records through the CRM work it records, the customer is not
// found afterwards and the erasure says where it stands when asked again. What the erasure
// deletes, step by step and at 100,000 messages, is tested natively (tests/pipelines,
// paths::erasure).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, BASE_URL, admin, api, getCustomer, waitFor } from './support.mjs';
import { receiveWhatsapp, startMediaHost, uniquePhone, whatsappAccount } from './receivers/webhook-api.mjs';
import { localPartners } from './partners.mjs';
import { d1 } from './store.mjs';
import { connectKrayin, connectedBusiness, krayinServer, settledLog } from './crm/connectors.mjs';

const partners = localPartners();
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = process.env.CRM_EDGE_CLI || join(ROOT, 'target', 'cli', 'crm-edge');

test('an erased customer is gone from every table, file and CRM, and the erasure says so when asked again', async () => {
  const setup = await connectedBusiness();
  partners.closeAfter(setup.kustomer);
  const { business, kustomer } = setup;
  const krayin = await krayinServer();
  partners.closeAfter(krayin.krayin);
  const krayinConnector = await connectKrayin(business, krayin);
  const mediaHost = await startMediaHost();
  partners.closeAfter(mediaHost);
  const whatsapp = await whatsappAccount(business, mediaHost.url);
  const ann = uniquePhone();
  await receiveWhatsapp(whatsapp, { from: ann, text: 'my order is 5512' });
  await receiveWhatsapp(whatsapp, { from: ann, text: 'the receipt', mediaId: `m${randomBytes(6).toString('hex')}` });
  const found = await getCustomer(business.key, 'phone', ann);
  assert.equal(found.status, 200, found.text);
  const annId = found.body.id;
  await settledLog(setup.connector.id, 3, 60_000);
  await waitFor(() => krayin.krayin.persons.length === 1, 30_000, 'her person in Krayin');
  await waitFor(
    () => d1("SELECT COUNT(*) FROM attachments WHERE business_id = ? AND status = 'stored'", [business.id])[0]?.[0] === 1,
    30_000,
    'her file stored',
  );
  assert.equal(kustomer.customers.length, 1, 'she is in Kustomer');

  const erased = await api(business.key, 'DELETE', `/api-customers/${annId}`);
  assert.equal(erased.status, 200, erased.text);
  assert.equal(erased.body.status, 'erased');
  assert.deepEqual(erased.body.deleted, { messages: 2, conversations: 1, attachments: 1, knowledge_pieces: 0 });
  assert.deepEqual(erased.body.crm.map((part) => part.crm).sort(), ['krayin', 'kustomer']);

  for (const [table, column] of [
    ['messages', 'customer_id'], ['conversations', 'customer_id'], ['customer_identities', 'customer_id'],
    ['customers', 'id'],
  ]) {
    assert.equal(d1(`SELECT COUNT(*) FROM ${table} WHERE ${column} = ?`, [annId])[0]?.[0], 0, `nothing of her in ${table}`);
  }
  assert.equal(d1('SELECT COUNT(*) FROM attachments WHERE business_id = ?', [business.id])[0]?.[0], 0, 'her file is gone');
  assert.equal((await getCustomer(business.key, 'id', annId)).status, 404);
  assert.equal((await getCustomer(business.key, 'phone', ann)).status, 404);

  await waitFor(() => kustomer.deleted.length === 1, 30_000, 'Kustomer deleting her');
  await waitFor(() => krayin.krayin.deletedPersons.length === 1, 30_000, 'Krayin deleting her');
  assert.equal(kustomer.customers.length, 0);
  assert.equal(krayin.krayin.persons.length, 0);
  await waitFor(async () => {
    const again = await api(business.key, 'DELETE', `/api-customers/${annId}`);
    return again.status === 200 && again.body.crm.every((part) => part.status === 'succeeded');
  }, 30_000, 'each CRM part succeeded, as the erasure says when asked again');
  const log = await settledLog(krayinConnector.id, 1);
  assert.ok(log.some((entry) => entry.operation === 'erase' && entry.status === 'succeeded'), JSON.stringify(log));

  const operator = await admin('DELETE', `/admin/businesses/${business.id}/customers/${annId}`);
  assert.equal(operator.status, 200, 'the operator reads the same tombstone');
  assert.equal(operator.body.requested_by.startsWith('key:'), true, operator.text);
  const cli = spawnSync(CLI, ['admin', 'erase-customer', business.id, annId], {
    env: { PATH: process.env.PATH, CRM_EDGE_CONFIG: join(ROOT, 'no-config'), CRM_EDGE_URL: BASE_URL, CRM_EDGE_ADMIN_TOKEN: ADMIN_TOKEN },
    encoding: 'utf8',
  });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /status\s+erased/, cli.stdout);
  assert.match(cli.stdout, /krayin\s+delete\s+succeeded/, cli.stdout);
});
