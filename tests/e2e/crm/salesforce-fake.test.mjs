// The local Salesforce on its own, without our stack: that it answers as Salesforce documents
// (paths, bodies, error arrays, codes, limits, OAuth, Outbound Messages), so that a failing
// end-to-end test of the connector points at the connector, not at the fake.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import {
  COLLECTION_LIMIT_MESSAGE,
  COMPOSITE_LIMIT_MESSAGE,
  DATA_PATH,
  HALTED_MESSAGE,
  OUTBOUND_NAMESPACE,
  ROLLED_BACK_MESSAGE,
  SOBJECT_NAMESPACE,
  acknowledgement,
  caseSafeId,
  codeChallengeOf,
  isAcknowledgement,
  startSalesforce,
} from './salesforce.mjs';

const TOKEN = '00D000000000001!AQtoken-of-the-integration-user';
const CUSTOM_FIELDS = { Contact: [{ name: 'Chat_Id__c', externalId: true }, { name: 'Favourite_Colour__c' }] };
const REDIRECT = 'http://127.0.0.1:9/salesforce/callback?tenant=acme';
const APPS = {
  '3MVG9crm-edge': { clientSecret: 'secret-1', redirectUris: [REDIRECT], name: 'crm-edge', runAs: 'integration@acme.example' },
  '3MVG9no-runas': { clientSecret: 'secret-2', redirectUris: [REDIRECT], scopes: ['api'] },
};

/** A client of the REST API with `token`: `call(method, path, body?, headers?)` → `{ status, headers, body }`. */
function client(sf, token) {
  return async (method, path, body, headers = {}, init = {}) => {
    const sent = { accept: 'application/json', ...headers };
    if (token) sent.authorization = `Bearer ${token}`;
    if (body !== undefined) sent['content-type'] = 'application/json';
    const response = await fetch(path.startsWith('http') ? path : `${sf.url}${path.startsWith('/services') ? '' : DATA_PATH}${path}`, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      ...init,
    });
    const text = await response.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // a text answer (the identity service's refusals)
    }
    return { status: response.status, headers: response.headers, body: parsed };
  };
}

/** Asserts Salesforce's error array: `[{message, errorCode, fields?}]`; returns its first entry. */
function assertError(response, status, errorCode, description) {
  assert.equal(response.status, status, `${description}: status (${JSON.stringify(response.body)})`);
  assert.ok(Array.isArray(response.body), `${description}: an error array`);
  assert.equal(response.body[0].errorCode, errorCode, `${description}: errorCode`);
  assert.equal(typeof response.body[0].message, 'string', `${description}: message`);
  return response.body[0];
}

async function postForm(url, fields, headers = {}) {
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(fields) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const soql = (text) => `/query?q=${encodeURIComponent(text)}`;

/** A listener for Outbound Messages whose answers a test scripts: `answers` is consumed, then Ack true. */
async function startListener() {
  const received = [];
  const answers = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const next = answers.shift() ?? { status: 200, body: acknowledgement(true) };
      res.writeHead(next.status, { 'content-type': 'text/xml; charset=utf-8' });
      res.end(next.body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/salesforce/outbound`,
    received,
    answers,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('the Salesforce fake’s records', () => {
  let sf;
  let api;
  before(async () => {
    sf = await startSalesforce({ tokens: { [TOKEN]: {} }, customFields: CUSTOM_FIELDS });
    api = client(sf, TOKEN);
  });
  after(() => sf.close());

  test('creates a contact with an 18-character id of prefix 003 and reads it back with every field', async () => {
    const created = await api('POST', '/sobjects/Contact/', { FirstName: 'Ada', LastName: 'Lovelace', Email: 'Ada@Example.com' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(Object.keys(created.body), ['id', 'success', 'errors']);
    const { id } = created.body;
    assert.match(id, /^003[0-9A-Za-z]{15}$/);
    assert.equal(caseSafeId(id.slice(0, 15)), id, 'the suffix is the case-safe checksum');
    assert.equal(created.headers.get('location'), `${DATA_PATH}/sobjects/Contact/${id}`);
    assert.equal(caseSafeId('001A0000006Vm9r'), '001A0000006Vm9rIAC', 'Salesforce’s own example');

    const read = await api('GET', `/sobjects/Contact/${id.slice(0, 15)}`);
    assert.equal(read.status, 200, 'the 15-character form reads too');
    assert.deepEqual(read.body.attributes, { type: 'Contact', url: `${DATA_PATH}/sobjects/Contact/${id}` });
    assert.equal(read.body.Id, id);
    assert.equal(read.body.Name, 'Ada Lovelace');
    assert.equal(read.body.Email, 'Ada@Example.com');
    assert.equal(read.body.Phone, null, 'unset fields read as null');
    assert.equal(read.body.IsDeleted, false);
    assert.match(read.body.CreatedDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);
    const some = await api('GET', `/sobjects/Contact/${id}?fields=Email,Chat_Id__c`);
    assert.deepEqual(Object.keys(some.body), ['attributes', 'Id', 'Email', 'Chat_Id__c']);

    const patched = await api('PATCH', `/sobjects/Contact/${id}`, { Phone: '+353 1 555 0101', FirstName: null });
    assert.equal(patched.status, 204);
    assert.equal(patched.body, undefined);
    const after_ = sf.record(id);
    assert.equal(after_.Phone, '+353 1 555 0101');
    assert.equal(after_.FirstName, null, 'null clears a field');
    assert.equal(after_.Name, 'Lovelace');
  });

  test('gives every object its key prefix and defaults', async () => {
    const contact = sf.seedContact({ LastName: 'Prefix' });
    const lead = await api('POST', '/sobjects/Lead', { LastName: 'Hopper', Company: 'Navy' });
    const task = await api('POST', '/sobjects/Task', { Subject: 'WhatsApp message', WhoId: contact.Id });
    const kase = await api('POST', '/sobjects/Case', { Subject: 'Refund', ContactId: contact.Id, Origin: 'WhatsApp' });
    for (const [response, prefix] of [[lead, '00Q'], [task, '00T'], [kase, '500']]) {
      assert.equal(response.status, 201, JSON.stringify(response.body));
      assert.ok(response.body.id.startsWith(prefix), `${response.body.id} starts with ${prefix}`);
    }
    assert.equal(sf.record(lead.body.id).Status, 'Open - Not Contacted');
    assert.equal(sf.record(task.body.id).Status, 'Not Started');
    assert.equal(sf.record(task.body.id).Priority, 'Normal');
    assert.equal(sf.record(kase.body.id).Status, 'New');
    assert.match(sf.record(kase.body.id).CaseNumber, /^\d{8}$/);
  });

  test('refuses what Salesforce refuses on a create, each with its errorCode', async () => {
    const contact = sf.seedContact({ LastName: 'Referenced' });
    const lead = sf.seedLead({ LastName: 'L', Company: 'C' });
    const cases = [
      ['Contact without LastName', 'Contact', { FirstName: 'X' }, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [LastName]', ['LastName']],
      ['Lead without LastName and Company', 'Lead', { Email: 'l@example.com' }, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [LastName, Company]', ['LastName', 'Company']],
      ['Task with Priority null', 'Task', { Subject: 'x', Priority: null }, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [Priority]', ['Priority']],
      ['Case with Status ""', 'Case', { Subject: 'x', Status: '' }, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [Status]', ['Status']],
      ['an unknown field', 'Contact', { LastName: 'X', Nickname__c: 'x' }, 'INVALID_FIELD', "No such column 'Nickname__c' on sobject of type Contact", undefined],
      ['a read-only field', 'Contact', { LastName: 'X', Name: 'X Y' }, 'INVALID_FIELD_FOR_INSERT_UPDATE', undefined, ['Name']],
      ['an Id', 'Contact', { LastName: 'X', Id: contact.Id }, 'INVALID_FIELD', 'cannot specify Id in an insert call', ['Id']],
      ['a bad email', 'Contact', { LastName: 'X', Email: 'not-an-email' }, 'INVALID_EMAIL_ADDRESS', 'Email: invalid email address: not-an-email', ['Email']],
      ['a WhoId that is no id', 'Task', { Subject: 'x', WhoId: 'nope' }, 'MALFORMED_ID', undefined, ['WhoId']],
      ['a ContactId of a lead', 'Case', { Subject: 'x', ContactId: lead.Id }, 'MALFORMED_ID', undefined, ['ContactId']],
      ['a WhoId of no record', 'Task', { Subject: 'x', WhoId: caseSafeId('0035g0000ZZZZZZ') }, 'INVALID_CROSS_REFERENCE_KEY', undefined, ['WhoId']],
      ['a text too long', 'Contact', { LastName: 'x'.repeat(81) }, 'STRING_TOO_LONG', undefined, ['LastName']],
    ];
    const before_ = sf.records('Contact').length + sf.records('Task').length;
    for (const [description, object, body, errorCode, message, fields] of cases) {
      const error = assertError(await api('POST', `/sobjects/${object}`, body), 400, errorCode, description);
      if (message) assert.equal(error.message, message, description);
      if (fields) assert.deepEqual(error.fields, fields, description);
    }
    assert.equal(sf.records('Contact').length + sf.records('Task').length, before_, 'nothing refused was kept');
  });

  test('refuses on an update, a delete by key and for a read-only user what Salesforce refuses', async () => {
    const contact = sf.seedContact({ LastName: 'Updated', Email: 'updated@example.com' });
    sf.seedContact({ LastName: 'Other', Email: 'other-updated@example.com' });
    const path = `/sobjects/Contact/${contact.Id}`;
    assertError(await api('PATCH', path, { Id: contact.Id, Title: 'x' }), 400, 'INVALID_FIELD', 'an Id in the body');
    assert.deepEqual(assertError(await api('PATCH', path, { LastName: null }), 400, 'REQUIRED_FIELD_MISSING', 'clearing LastName').fields, ['LastName']);
    assertError(await api('PATCH', path, { CreatedDate: '2026-01-01T00:00:00.000+0000' }), 400, 'INVALID_FIELD_FOR_INSERT_UPDATE', 'a system field');
    sf.setDuplicateRule('Contact', true);
    try {
      assertError(await api('PATCH', path, { Email: 'OTHER-updated@example.com' }), 400, 'DUPLICATES_DETECTED', 'an email another contact has');
      assert.equal((await api('PATCH', path, { Email: 'updated@example.com' })).status, 204, 'its own email');
    } finally {
      sf.setDuplicateRule('Contact', false);
    }
    sf.addCustomField('Contact', { name: 'Badge__c', unique: true });
    sf.seedContact({ LastName: 'Badged', Badge__c: 'B-1' });
    assertError(await api('PATCH', path, { Badge__c: 'b-1' }), 400, 'DUPLICATE_VALUE', 'a unique field');

    const keyed = sf.seedContact({ LastName: 'Keyed', Chat_Id__c: 'delete-me' });
    assert.equal((await api('DELETE', '/sobjects/Contact/Chat_Id__c/delete-me')).status, 204, 'DELETE by external id');
    assert.equal(sf.record(keyed.Id).IsDeleted, true);
    assertError(await api('DELETE', '/sobjects/Contact/Chat_Id__c/delete-me'), 404, 'NOT_FOUND', 'no live record has the key');

    sf.setObjectAccess(sf.defaultUserId, 'Contact', 'read');
    try {
      assert.equal((await api('GET', path)).status, 200, 'read-only: reads');
      assertError(await api('PATCH', path, { Title: 'x' }), 403, 'INSUFFICIENT_ACCESS_OR_READONLY', 'read-only: update');
      assertError(await api('DELETE', path), 403, 'INSUFFICIENT_ACCESS_OR_READONLY', 'read-only: delete');
      assertError(await api('PATCH', '/sobjects/Contact/Chat_Id__c/x', { LastName: 'x' }), 403, 'INSUFFICIENT_ACCESS_OR_READONLY', 'read-only: upsert');
    } finally {
      sf.setObjectAccess(sf.defaultUserId, 'Contact', 'edit');
    }
  });

  test('answers a deleted record ENTITY_IS_DELETED, an id never issued NOT_FOUND, and a segment that is no id as an external id field', async () => {
    const contact = sf.seedContact({ LastName: 'Gone' });
    assert.equal((await api('DELETE', `/sobjects/Contact/${contact.Id}`)).status, 204);
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      const error = assertError(await api(method, `/sobjects/Contact/${contact.Id}`, method === 'PATCH' ? { Phone: '1' } : undefined), 404, 'ENTITY_IS_DELETED', method);
      assert.equal(error.message, 'entity is deleted');
    }
    assert.equal(sf.record(contact.Id).IsDeleted, true);
    assert.equal(assertError(await api('GET', `/sobjects/Contact/${caseSafeId('0035g0000ZZZZZY')}`), 404, 'NOT_FOUND', 'never issued').message, 'The requested resource does not exist');
    const lead = sf.seedLead({ LastName: 'L', Company: 'C' });
    for (const segment of [lead.Id, 'banana', `${contact.Id.slice(0, 15)}XYZ`]) {
      const error = assertError(await api('GET', `/sobjects/Contact/${segment}`), 404, 'NOT_FOUND', segment);
      assert.equal(error.message, `Provided external ID field does not exist or is not accessible: ${segment}`);
    }
  });

  test('upserts by external id: 201 created, 200 updated, 300 with the URLs of several, and refuses a key that is none', async () => {
    const path = '/sobjects/Contact/Chat_Id__c/chat-42';
    const created = await api('PATCH', path, { LastName: 'Turing', Email: 'alan@example.com' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body, { id: created.body.id, success: true, errors: [], created: true });
    assert.equal(sf.record(created.body.id).Chat_Id__c, 'chat-42');
    const updated = await api('PATCH', '/sobjects/Contact/Chat_Id__c/CHAT-42', { FirstName: 'Alan' });
    assert.equal(updated.status, 200, 'matched without case');
    assert.deepEqual(updated.body, { id: created.body.id, success: true, errors: [], created: false });
    assert.equal(sf.record(created.body.id).LastName, 'Turing', 'what is not given is kept');
    assert.equal((await api('GET', path)).body.Id, created.body.id, 'GET by external id');

    const byEmail = await api('PATCH', '/sobjects/Contact/Email/alan@example.com', { Title: 'Dr' });
    assert.equal(byEmail.status, 200, 'Email is an idLookup field');
    sf.seedContact({ LastName: 'Twin', Chat_Id__c: 'twin' });
    sf.seedContact({ LastName: 'Twin', Chat_Id__c: 'TWIN' });
    const several = await api('PATCH', '/sobjects/Contact/Chat_Id__c/twin', { FirstName: 'x' });
    assert.equal(several.status, 300);
    assert.equal(several.body.length, 2);
    for (const url of several.body) assert.match(url, new RegExp(`^${DATA_PATH}/sobjects/Contact/003`));
    assert.equal((await api('GET', '/sobjects/Contact/Chat_Id__c/twin')).status, 300);

    assertError(await api('PATCH', '/sobjects/Contact/Chat_Id__c/nobody?updateOnly=true', { LastName: 'x' }), 404, 'NOT_FOUND', 'updateOnly');
    assertError(await api('PATCH', '/sobjects/Contact/Favourite_Colour__c/blue', { LastName: 'x' }), 404, 'NOT_FOUND', 'not an external id');
    assertError(await api('PATCH', path, { Id: created.body.id }), 400, 'INVALID_FIELD', 'Id in the body');
    assertError(await api('PATCH', path, { Chat_Id__c: 'chat-42' }), 400, 'INVALID_FIELD', 'the key in the body');
    assertError(await api('PATCH', '/sobjects/Contact/Chat_Id__c/new-one', { FirstName: 'x' }), 400, 'REQUIRED_FIELD_MISSING', 'a create needs LastName');
  });

  test('detects duplicates by email only while the org’s rule is on, and lets allowSave through', async () => {
    const first = sf.seedContact({ LastName: 'Dup', Email: 'dup@example.com' });
    assert.equal((await api('POST', '/sobjects/Contact', { LastName: 'Dup2', Email: 'DUP@example.com' })).status, 201, 'rule off');
    sf.setDuplicateRule('Contact', true);
    const refused = await api('POST', '/sobjects/Contact', { LastName: 'Dup3', Email: 'Dup@Example.com' });
    const error = assertError(refused, 400, 'DUPLICATES_DETECTED', 'rule on');
    assert.equal(error.message, 'Use one of these records?');
    const result = error.duplicateResut;
    assert.equal(result.allowSave, false);
    assert.equal(result.duplicateRuleEntityType, 'Contact');
    const matched = result.matchResults[0].matchRecords.map((m) => m.record.Id);
    assert.ok(matched.includes(first.Id));
    const allowed = await api('POST', '/sobjects/Contact', { LastName: 'Dup4', Email: 'dup@example.com' }, { 'Sforce-Duplicate-Rule-Header': 'allowSave=true' });
    assert.equal(allowed.status, 201);
    sf.setDuplicateRule('Contact', false);
  });

  test('merges contacts as Salesforce does: the loser deleted with MasterRecordId, its tasks moved', async () => {
    const master = sf.seedContact({ LastName: 'Master', Email: 'm@example.com' });
    const loser = sf.seedContact({ LastName: 'Loser', Phone: '+3531' });
    const task = sf.seedTask({ Subject: 'Call', WhoId: loser.Id });
    const merged = sf.merge(master.Id, [loser.Id], { Phone: '+3531' });
    assert.equal(merged.Phone, '+3531');
    assert.equal(sf.record(loser.Id).IsDeleted, true);
    assert.equal(sf.record(loser.Id).MasterRecordId, master.Id);
    assert.equal(sf.record(task.Id).WhoId, master.Id);
    assertError(await api('GET', `/sobjects/Contact/${loser.Id}`), 404, 'ENTITY_IS_DELETED', 'the loser');
    assert.throws(() => sf.merge(master.Id, [sf.seedLead({ LastName: 'L', Company: 'C' }).Id]), /no other live Contact/);
  });

  test('describes objects with their fields and hides or locks objects per user', async () => {
    const described = await api('GET', '/sobjects/Contact/describe');
    assert.equal(described.status, 200);
    assert.equal(described.body.name, 'Contact');
    assert.equal(described.body.keyPrefix, '003');
    assert.equal(described.body.createable, true);
    const chat = described.body.fields.find((f) => f.name === 'Chat_Id__c');
    assert.deepEqual([chat.externalId, chat.idLookup, chat.custom], [true, true, true]);
    assert.equal(described.body.fields.find((f) => f.name === 'LastName').nillable, false);
    const global = await api('GET', '/sobjects');
    assert.equal(global.body.encoding, 'UTF-8');
    assert.equal(global.body.maxBatchSize, 200);
    assert.deepEqual(global.body.sobjects.map((o) => o.name), ['Contact', 'Lead', 'Task', 'Case']);

    sf.setObjectAccess(sf.defaultUserId, 'Case', 'none');
    sf.setObjectAccess(sf.defaultUserId, 'Lead', 'read');
    try {
      assert.deepEqual((await api('GET', '/sobjects')).body.sobjects.map((o) => o.name), ['Contact', 'Lead', 'Task']);
      assertError(await api('GET', '/sobjects/Case/describe'), 404, 'NOT_FOUND', 'no access: describe');
      assertError(await api('POST', '/sobjects/Case', { Subject: 'x' }), 404, 'NOT_FOUND', 'no access: create');
      assertError(await api('GET', soql('SELECT Id FROM Case')), 400, 'INVALID_TYPE', 'no access: SOQL');
      const lead = await api('GET', '/sobjects/Lead/describe');
      assert.equal(lead.body.createable, false);
      assert.equal(lead.body.fields.find((f) => f.name === 'Email').updateable, false);
      assertError(await api('POST', '/sobjects/Lead', { LastName: 'x', Company: 'y' }), 403, 'INSUFFICIENT_ACCESS_OR_READONLY', 'read-only: create');
      assert.equal((await api('GET', soql('SELECT Id FROM Lead'))).status, 200, 'read-only: SOQL reads');
    } finally {
      sf.setObjectAccess(sf.defaultUserId, 'Case', 'edit');
      sf.setObjectAccess(sf.defaultUserId, 'Lead', 'edit');
    }
  });

  test('answers unknown paths 404, other methods 405, and bodies that are not JSON as Salesforce does', async () => {
    assertError(await api('GET', '/nothing'), 404, 'NOT_FOUND', 'unknown path');
    assertError(await api('GET', '/sobjects/Widget/describe'), 404, 'NOT_FOUND', 'unknown object');
    const put = assertError(await api('PUT', '/sobjects/Contact/003000000000001'), 405, 'METHOD_NOT_ALLOWED', 'PUT');
    assert.equal(put.message, "HTTP Method 'PUT' not allowed. Allowed are GET,PATCH,DELETE");
    const broken = await fetch(`${sf.dataUrl}/sobjects/Contact`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"LastName":' });
    assert.equal(broken.status, 400);
    assert.equal((await broken.json())[0].errorCode, 'JSON_PARSER_ERROR');
    const text = await fetch(`${sf.dataUrl}/sobjects/Contact`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, body: 'LastName=x' });
    assert.equal(text.status, 415);
  });
});

describe('the Salesforce fake’s SOQL', () => {
  let sf;
  let api;
  before(async () => {
    sf = await startSalesforce({ tokens: { [TOKEN]: {} }, customFields: CUSTOM_FIELDS });
    api = client(sf, TOKEN);
  });
  after(() => sf.close());

  test('finds a contact by email without case, by external id, and the tasks of a WhoId, newest first', async () => {
    const ada = sf.seedContact({ LastName: 'Lovelace', Email: 'ada@example.com', Chat_Id__c: 'c-1' });
    sf.seedContact({ LastName: 'Other', Email: 'other@example.com' });
    const byEmail = await api('GET', soql("SELECT Id, Email FROM Contact WHERE Email = 'ADA@example.com' LIMIT 1"));
    assert.equal(byEmail.status, 200);
    assert.deepEqual(byEmail.body, {
      totalSize: 1,
      done: true,
      records: [{ attributes: { type: 'Contact', url: `${DATA_PATH}/sobjects/Contact/${ada.Id}` }, Id: ada.Id, Email: 'ada@example.com' }],
    });
    const byKey = await api('GET', soql("select id from contact where Chat_Id__c = 'c-1' and IsDeleted = false"));
    assert.deepEqual(byKey.body.records.map((r) => r.Id), [ada.Id], 'keywords and names without case');
    const none = await api('GET', soql("SELECT Id FROM Contact WHERE Email = 'nobody@example.com'"));
    assert.deepEqual([none.body.totalSize, none.body.done, none.body.records], [0, true, []]);

    for (const subject of ['first', 'second', 'third']) sf.seedTask({ Subject: subject, WhoId: ada.Id, ActivityDate: `2026-11-2${['first', 'second', 'third'].indexOf(subject)}` });
    const tasks = await api('GET', soql(`SELECT Id, Subject FROM Task WHERE WhoId = '${ada.Id}' ORDER BY ActivityDate DESC LIMIT 2`));
    assert.deepEqual(tasks.body.records.map((r) => r.Subject), ['third', 'second']);
    const escaped = sf.seedContact({ LastName: "O'Brien" });
    const quoted = await api('GET', soql("SELECT Id FROM Contact WHERE LastName = 'O\\'Brien'"));
    assert.deepEqual(quoted.body.records.map((r) => r.Id), [escaped.Id]);
    sf.deleteRecord(escaped.Id);
    assert.equal((await api('GET', soql("SELECT Id FROM Contact WHERE LastName = 'O\\'Brien'"))).body.totalSize, 0, 'deleted records are not found');
    const several = await api('GET', soql("SELECT Id, Email FROM Contact WHERE Email IN ('OTHER@example.com', 'ada@example.com', 'x') ORDER BY CreatedDate ASC"));
    assert.deepEqual(several.body.records.map((r) => r.Email).sort(), ['ada@example.com', 'other@example.com'], 'IN: any of the list, without case');
  });

  test('answers MALFORMED_QUERY beyond the subset, INVALID_FIELD and INVALID_TYPE with the column', async () => {
    for (const [description, text] of [
      ['OR', "SELECT Id FROM Contact WHERE Email = 'a' OR Email = 'b'"],
      ['LIKE', "SELECT Id FROM Contact WHERE Email LIKE '%a'"],
      ['an unclosed IN', "SELECT Id FROM Contact WHERE Email IN ('a'"],
      ['an empty IN', 'SELECT Id FROM Contact WHERE Email IN ()'],
      ['a function', 'SELECT COUNT() FROM Contact'],
      ['a relationship field', 'SELECT Who.Name FROM Task'],
      ['no FROM', 'SELECT Id Contact'],
      ['an unfinished WHERE', 'SELECT Id FROM Contact WHERE'],
      ['a trailing word', 'SELECT Id FROM Contact LIMIT 5 OFFSET 2'],
      ['an empty query', ''],
    ]) {
      assertError(await api('GET', soql(text)), 400, 'MALFORMED_QUERY', description);
    }
    assertError(await api('GET', '/query'), 400, 'MALFORMED_QUERY', 'no q');
    const field = assertError(await api('GET', soql('SELECT Id, Nickname FROM Contact')), 400, 'INVALID_FIELD', 'unknown field');
    assert.match(field.message, /ERROR at Row:1:Column:12\nNo such column 'Nickname' on entity 'Contact'/);
    const type = assertError(await api('GET', soql('SELECT Id FROM Widget__c')), 400, 'INVALID_TYPE', 'unknown object');
    assert.match(type.message, /sObject type 'Widget__c' is not supported/);
  });

  test('pages a large answer with nextRecordsUrl in batches of the size asked for', async () => {
    for (let i = 0; i < 450; i += 1) sf.seedLead({ LastName: `Lead ${i}`, Company: 'Bulk Co' });
    const batch = { 'Sforce-Query-Options': 'batchSize=200' };
    const first = await api('GET', soql("SELECT Id, LastName FROM Lead WHERE Company = 'Bulk Co'"), undefined, batch);
    assert.equal(first.body.totalSize, 450);
    assert.equal(first.body.done, false);
    assert.equal(first.body.records.length, 200);
    assert.match(first.body.nextRecordsUrl, /^\/services\/data\/v66\.0\/query\/01g[0-9A-Za-z]{15}-200$/);
    const second = await api('GET', `${sf.url}${first.body.nextRecordsUrl}`);
    assert.equal(second.body.records.length, 200);
    const third = await api('GET', `${sf.url}${second.body.nextRecordsUrl}`);
    assert.deepEqual([third.body.done, third.body.records.length, third.body.nextRecordsUrl], [true, 50, undefined]);
    const names = [first, second, third].flatMap((page) => page.body.records.map((r) => r.LastName));
    assert.equal(new Set(names).size, 450, 'every record once');
    const whole = await api('GET', soql("SELECT Id FROM Lead WHERE Company = 'Bulk Co'"));
    assert.deepEqual([whole.body.done, whole.body.records.length], [true, 450], '2,000 a batch unless asked');
    assertError(await api('GET', '/query/01g000000000000AAA-200'), 400, 'INVALID_QUERY_LOCATOR', 'unknown locator');
  });
});

describe('the Salesforce fake’s Collections and Composite', () => {
  let sf;
  let api;
  before(async () => {
    sf = await startSalesforce({ tokens: { [TOKEN]: {} }, customFields: CUSTOM_FIELDS });
    api = client(sf, TOKEN);
  });
  after(() => sf.close());

  const contact = (fields) => ({ attributes: { type: 'Contact' }, ...fields });

  test('creates up to 200 with one result each, partly when allOrNone is false and not at all when true', async () => {
    const partial = await api('POST', '/composite/sobjects', { allOrNone: false, records: [contact({ LastName: 'One' }), contact({ FirstName: 'NoLast' })] });
    assert.equal(partial.status, 200);
    assert.equal(partial.body[0].success, true);
    assert.match(partial.body[0].id, /^003/);
    assert.deepEqual(partial.body[1], { success: false, errors: [{ statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] }] });

    const before_ = sf.contacts.length;
    const all = await api('POST', '/composite/sobjects', { allOrNone: true, records: [contact({ LastName: 'Two' }), contact({ Email: 'bad' })] });
    assert.equal(all.status, 200);
    assert.deepEqual(all.body[0], { success: false, errors: [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: ROLLED_BACK_MESSAGE, fields: [] }] });
    assert.equal(all.body[1].errors[0].statusCode, 'INVALID_EMAIL_ADDRESS');
    assert.equal(sf.contacts.length, before_, 'rolled back');

    const mixed = await api('POST', '/composite/sobjects', {
      records: [contact({ LastName: 'Three' }), { attributes: { type: 'Lead' }, LastName: 'L', Company: 'C' }, { LastName: 'untyped' }, contact({ Id: partial.body[0].id, LastName: 'x' })],
    });
    assert.deepEqual(mixed.body.map((r) => r.success), [true, true, false, false]);
    assert.equal(mixed.body[2].errors[0].statusCode, 'INVALID_TYPE');
    assert.equal(mixed.body[3].errors[0].message, 'cannot specify Id in an insert call');

    const tooMany = Array.from({ length: 201 }, (_, i) => contact({ LastName: `n${i}` }));
    const refused = assertError(await api('POST', '/composite/sobjects', { records: tooMany }), 400, 'EXCEEDED_ID_LIMIT', '201 records');
    assert.equal(refused.message, COLLECTION_LIMIT_MESSAGE);
    assert.equal((await api('POST', '/composite/sobjects', { records: tooMany.slice(0, 200) })).body.length, 200, '200 is allowed');
  });

  test('updates by Id and upserts by external id, refusing what the documentation refuses', async () => {
    const kept = sf.seedContact({ LastName: 'Kept' });
    const gone = sf.seedContact({ LastName: 'Gone' });
    sf.deleteRecord(gone.Id);
    const updated = await api('PATCH', '/composite/sobjects', {
      records: [contact({ Id: kept.Id, Title: 'CEO' }), contact({ Title: 'no id' }), contact({ Id: gone.Id, Title: 'x' })],
    });
    assert.deepEqual(updated.body[0], { id: kept.Id, success: true, errors: [] });
    assert.equal(updated.body[1].errors[0].statusCode, 'MISSING_ARGUMENT');
    assert.equal(updated.body[1].errors[0].message, 'Id not specified in an update call');
    assert.equal(updated.body[2].errors[0].statusCode, 'ENTITY_IS_DELETED');
    assert.equal(sf.record(kept.Id).Title, 'CEO');

    sf.seedContact({ LastName: 'Existing', Chat_Id__c: 'k-1' });
    const upserted = await api('PATCH', '/composite/sobjects/Contact/Chat_Id__c', {
      allOrNone: false,
      records: [
        contact({ Chat_Id__c: 'k-1', Title: 'Updated' }),
        contact({ Chat_Id__c: 'k-2', LastName: 'New' }),
        contact({ Chat_Id__c: 'k-3', LastName: 'Twice' }),
        contact({ Chat_Id__c: 'K-3', LastName: 'Twice again' }),
        { attributes: { type: 'Lead' }, Chat_Id__c: 'k-4', LastName: 'L' },
      ],
    });
    assert.equal(upserted.status, 200);
    assert.deepEqual(upserted.body.slice(0, 2).map((r) => [r.success, r.created]), [[true, false], [true, true]]);
    assert.deepEqual(upserted.body.slice(2, 4).map((r) => r.errors[0].statusCode), ['DUPLICATE_EXTERNAL_ID', 'DUPLICATE_EXTERNAL_ID']);
    assert.equal(upserted.body[4].errors[0].statusCode, 'INVALID_TYPE');
    assertError(await api('PATCH', '/composite/sobjects/Contact/LastName', { records: [] }), 404, 'NOT_FOUND', 'not an upsert key');
  });

  test('runs composite subrequests with references and counts them as one call', async () => {
    const before_ = sf.apiUsage.used;
    const response = await api('POST', '/composite', {
      allOrNone: true,
      compositeRequest: [
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'newContact', body: { LastName: 'Composite', Email: 'comp@example.com' } },
        { method: 'GET', url: `${DATA_PATH}/sobjects/Contact/@{newContact.id}?fields=Email`, referenceId: 'readBack' },
        { method: 'POST', url: `${DATA_PATH}/sobjects/Task`, referenceId: 'newTask', body: { Subject: 'Hello @{readBack.Email}', WhoId: '@{newContact.id}' } },
        { method: 'GET', url: `${DATA_PATH}/query?q=SELECT+Id+FROM+Task+WHERE+WhoId+=+'@{newContact.id}'`, referenceId: 'tasks' },
      ],
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const [made, read, task, tasks] = response.body.compositeResponse;
    assert.deepEqual([made.httpStatusCode, made.referenceId], [201, 'newContact']);
    assert.equal(made.httpHeaders.Location, `${DATA_PATH}/sobjects/Contact/${made.body.id}`);
    assert.equal(read.body.Email, 'comp@example.com');
    assert.equal(task.httpStatusCode, 201);
    assert.equal(sf.record(task.body.id).Subject, 'Hello comp@example.com');
    assert.equal(sf.record(task.body.id).WhoId, made.body.id);
    assert.equal(tasks.body.records[0].Id, task.body.id);
    assert.equal(sf.apiUsage.used, before_ + 1, 'one call for the whole request');
  });

  test('rolls the whole request back with allOrNone, and halts only dependents without it', async () => {
    const before_ = sf.contacts.length;
    const rolled = await api('POST', '/composite', {
      allOrNone: true,
      compositeRequest: [
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'good', body: { LastName: 'Good' } },
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'bad', body: { FirstName: 'Bad' } },
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'later', body: { LastName: 'Later' } },
      ],
    });
    assert.equal(rolled.status, 200);
    const [good, bad, later] = rolled.body.compositeResponse;
    assert.deepEqual([good.httpStatusCode, good.body], [400, [{ errorCode: 'PROCESSING_HALTED', message: HALTED_MESSAGE }]]);
    assert.deepEqual([bad.httpStatusCode, bad.body[0].errorCode], [400, 'REQUIRED_FIELD_MISSING']);
    assert.deepEqual([later.httpStatusCode, later.body[0].errorCode], [400, 'PROCESSING_HALTED']);
    assert.equal(sf.contacts.length, before_, 'nothing kept');

    const partial = await api('POST', '/composite', {
      allOrNone: false,
      compositeRequest: [
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'bad', body: { FirstName: 'Bad' } },
        { method: 'POST', url: `${DATA_PATH}/sobjects/Task`, referenceId: 'dependent', body: { Subject: 'x', WhoId: '@{bad.id}' } },
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'independent', body: { LastName: 'Independent' } },
        { method: 'POST', url: `${DATA_PATH}/sobjects/Contact`, referenceId: 'bad-name', body: { LastName: 'x' } },
      ],
    });
    const [, dependent, independent, badName] = partial.body.compositeResponse;
    assert.equal(dependent.body[0].errorCode, 'PROCESSING_HALTED');
    assert.match(dependent.body[0].message, /^Invalid reference specified\. No value for bad\.id found in bad\./);
    assert.equal(independent.httpStatusCode, 201);
    assert.match(badName.body[0].message, /must start with a letter or a number/);
    assert.equal(sf.contacts.length, before_ + 1);
  });

  test('refuses more than 25 subrequests and a subrequest without referenceId', async () => {
    const sub = (i) => ({ method: 'GET', url: `${DATA_PATH}/limits`, referenceId: `r${i}` });
    const tooMany = await api('POST', '/composite', { compositeRequest: Array.from({ length: 26 }, (_, i) => sub(i)) });
    assert.equal(tooMany.status, 200);
    assert.deepEqual(tooMany.body.compositeResponse, [{ body: [{ errorCode: 'LIMIT_EXCEEDED', message: COMPOSITE_LIMIT_MESSAGE }], httpHeaders: {}, httpStatusCode: 400, referenceId: null }]);
    assert.equal((await api('POST', '/composite', { compositeRequest: Array.from({ length: 25 }, (_, i) => sub(i)) })).body.compositeResponse.length, 25);
    assertError(await api('POST', '/composite', { compositeRequest: [{ method: 'GET', url: `${DATA_PATH}/limits` }] }), 400, 'JSON_PARSER_ERROR', 'no referenceId');
    assertError(await api('POST', '/composite', { compositeRequest: [sub(1), sub(1)] }), 400, 'JSON_PARSER_ERROR', 'a referenceId twice');
  });
});

describe('the Salesforce fake’s limits and faults', () => {
  test('reports api-usage on every REST answer and refuses calls once the daily allowance is spent', async () => {
    const sf = await startSalesforce({ tokens: { [TOKEN]: {} }, dailyApiRequests: 3 });
    try {
      const api = client(sf, TOKEN);
      const versions = await api('GET', '/services/data');
      assert.deepEqual(versions.body, [{ label: "Spring '26", url: '/services/data/v66.0', version: '66.0' }]);
      assert.equal(versions.headers.get('sforce-limit-info'), null, 'the versions count against nothing');
      const limits = await api('GET', '/limits');
      assert.equal(limits.headers.get('sforce-limit-info'), 'api-usage=1/3');
      assert.deepEqual(limits.body.DailyApiRequests, { Max: 3, Remaining: 2 });
      assert.equal((await api('GET', '/sobjects/Contact/003000000000001')).headers.get('sforce-limit-info'), 'api-usage=2/3', 'a 404 spends too');
      assert.equal((await api('GET', '/limits')).headers.get('sforce-limit-info'), 'api-usage=3/3');
      const spent = assertError(await api('GET', '/limits'), 403, 'REQUEST_LIMIT_EXCEEDED', 'spent');
      assert.equal(spent.message, 'TotalRequests Limit exceeded.');
      assert.equal(sf.apiUsage.used, 3);
      sf.setDailyLimit(10);
      assert.equal((await api('GET', '/limits')).status, 200);
    } finally {
      await sf.close();
    }
  });

  test('refuses a missing, unknown, expired or revoked session with 401', async () => {
    const sf = await startSalesforce({ tokens: { [TOKEN]: {} } });
    try {
      assertError(await client(sf, null)('GET', '/limits'), 401, 'INVALID_AUTH_HEADER', 'no header');
      const unknown = assertError(await client(sf, 'nope')('GET', '/limits'), 401, 'INVALID_SESSION_ID', 'unknown');
      assert.equal(unknown.message, 'Session expired or invalid');
      const session = sf.issueToken();
      assert.equal((await client(sf, session)('GET', '/limits')).status, 200);
      sf.expireAccessTokensNow();
      assertError(await client(sf, session)('GET', '/limits'), 401, 'INVALID_SESSION_ID', 'expired');
      assert.equal(sf.apiUsage.used, 1, '401s spend nothing');
      const oauthScheme = await fetch(`${sf.dataUrl}/limits`, { headers: { authorization: `OAuth ${sf.issueToken()}` } });
      assert.equal(oauthScheme.status, 200, 'the OAuth scheme works too');
    } finally {
      await sf.close();
    }
  });

  test('answers scripted failures (503 with and without Retry-After, 500), then normally', async () => {
    const sf = await startSalesforce({ tokens: { [TOKEN]: {} } });
    try {
      const api = client(sf, TOKEN);
      sf.fail({ status: 503, retryAfter: 7 });
      sf.fail(1, 503);
      sf.fail(2, 500, (call) => call.method === 'POST');
      const first = assertError(await api('GET', '/limits'), 503, 'SERVER_UNAVAILABLE', 'with Retry-After');
      assert.ok(first);
      assert.equal(sf.calls.at(-1).status, 503);
      const without = await api('GET', '/limits');
      assert.deepEqual([without.status, without.headers.get('retry-after')], [503, null]);
      for (let i = 0; i < 2; i += 1) assertError(await api('POST', '/sobjects/Contact', { LastName: 'x' }), 500, 'UNKNOWN_EXCEPTION', `500 ${i}`);
      assert.equal((await api('POST', '/sobjects/Contact', { LastName: 'x' })).status, 201);
      assert.equal(sf.contacts.length, 1, 'failed calls stored nothing');
      sf.fail({ status: 503, retryAfter: 3, body: [{ message: 'maintenance', errorCode: 'SERVER_UNAVAILABLE' }] });
      const custom = await api('GET', '/limits');
      assert.deepEqual([custom.status, custom.headers.get('retry-after'), custom.body[0].message], [503, '3', 'maintenance']);
    } finally {
      await sf.close();
    }
  });

  test('hangs, answers slowly, and is down for a while then back with its state', async () => {
    const sf = await startSalesforce({ tokens: { [TOKEN]: {} }, hangMs: 5_000 });
    try {
      const api = client(sf, TOKEN);
      sf.hang();
      await assert.rejects(api('GET', '/limits', undefined, {}, { signal: AbortSignal.timeout(200) }), /abort|timeout/i);
      assert.equal(sf.calls.at(-1).status, null);
      sf.setLatency(150);
      const started = Date.now();
      assert.equal((await api('GET', '/limits')).status, 200);
      assert.ok(Date.now() - started >= 140, 'the answer came late');
      sf.setLatency(0);
      const created = await api('POST', '/sobjects/Contact', { LastName: 'Persistent' });
      await sf.downFor(0.3);
      // The first call may meet the pooled socket the server dropped; a new connection is refused.
      await assert.rejects(api('GET', `/sobjects/Contact/${created.body.id}`));
      await assert.rejects(api('GET', `/sobjects/Contact/${created.body.id}`), (error) => error.cause?.code === 'ECONNREFUSED');
      await new Promise((resolve) => setTimeout(resolve, 450));
      assert.equal((await api('GET', `/sobjects/Contact/${created.body.id}`)).body.LastName, 'Persistent', 'back by itself');
      await sf.down();
      await assert.rejects(api('GET', '/limits'));
      await sf.up();
      assert.equal((await api('GET', '/limits')).status, 200);
    } finally {
      await sf.close();
    }
  });

  test('remembers every call with its Authorization and what it answered', async () => {
    const sf = await startSalesforce({ tokens: { [TOKEN]: {} } });
    try {
      await client(sf, TOKEN)('POST', '/sobjects/Contact', { LastName: 'Recorded' });
      const [call] = sf.calls;
      assert.equal(sf.calls, sf.requests);
      assert.deepEqual([call.method, call.path, call.status], ['POST', `${DATA_PATH}/sobjects/Contact`, 201]);
      assert.deepEqual(call.body, { LastName: 'Recorded' });
      assert.deepEqual(sf.authorizationsUsed, [`Bearer ${TOKEN}`]);
      assert.equal(sf.countCalls('POST', `${DATA_PATH}/sobjects`), 1);
      assert.equal(sf.countCalls(null, '/services/oauth2'), 0);
    } finally {
      await sf.close();
    }
  });
});

describe('the Salesforce fake’s OAuth', () => {
  let sf;
  before(async () => {
    sf = await startSalesforce({ apps: APPS, users: [{ username: 'integration@acme.example' }, { username: 'agent@acme.example', firstName: 'Ana', lastName: 'Gent' }] });
  });
  after(() => sf.close());

  const verifier = 'a-verifier-of-at-least-forty-three-characters-0123456789';
  const authorizeParams = (extra = {}) =>
    new URLSearchParams({ response_type: 'code', client_id: '3MVG9crm-edge', redirect_uri: REDIRECT, state: 's-42', code_challenge: codeChallengeOf(verifier), code_challenge_method: 'S256', ...extra });

  /** Presses a button of the consent page as a browser would: the redirect's URL. */
  async function press(html, decision) {
    const action = /<form method="post" action="([^"]+)">/.exec(html)[1];
    const fields = new URLSearchParams();
    for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      fields.append(name, value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'"));
    }
    fields.append('decision', decision);
    const pressed = await fetch(new URL(action, sf.url), { method: 'POST', body: fields, redirect: 'manual' });
    assert.equal(pressed.status, 302);
    return new URL(pressed.headers.get('location'));
  }

  test('consent page, code, PKCE exchange, the documented token answer, the identity URL, UserInfo and the token at work', async () => {
    const page = await fetch(`${sf.authorizeUrl}?${authorizeParams()}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /crm-edge/);
    assert.match(html, /<button type="submit" name="decision" value="allow">Allow<\/button>/);
    const back = await press(html, 'allow');
    assert.equal(`${back.origin}${back.pathname}`, 'http://127.0.0.1:9/salesforce/callback');
    assert.equal(back.searchParams.get('tenant'), 'acme', 'the callback keeps its own query');
    assert.equal(back.searchParams.get('state'), 's-42');
    const code = back.searchParams.get('code');
    assert.match(code, /^aPrx/);

    const exchange = (fields) =>
      postForm(sf.tokenUrl, { grant_type: 'authorization_code', client_id: '3MVG9crm-edge', client_secret: 'secret-1', redirect_uri: REDIRECT, code, ...fields });
    assert.deepEqual((await exchange({ code_verifier: 'wrong' })).body, { error: 'invalid_request', error_description: 'invalid code verifier' });
    assert.equal((await exchange({})).body.error, 'invalid_grant', 'a challenged code needs its verifier');
    const tokens = await exchange({ code_verifier: verifier });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.deepEqual(Object.keys(tokens.body), ['access_token', 'refresh_token', 'signature', 'scope', 'instance_url', 'id', 'token_type', 'issued_at']);
    assert.equal(tokens.body.instance_url, sf.url, 'all later calls come back here');
    assert.equal(tokens.body.token_type, 'Bearer');
    assert.equal(tokens.body.scope, 'api refresh_token');
    assert.match(tokens.body.issued_at, /^\d{13}$/);
    assert.equal(tokens.body.id, `${sf.url}/id/${sf.orgId}/${sf.defaultUserId}`);
    const expected = createHmac('sha256', 'secret-1').update(`${tokens.body.id}${tokens.body.issued_at}`).digest('base64');
    assert.equal(tokens.body.signature, expected);
    assert.ok(tokens.body.access_token.startsWith(sf.orgId.slice(0, 15)));
    assert.deepEqual((await exchange({ code_verifier: verifier })).body, { error: 'invalid_grant', error_description: 'invalid authorization code' }, 'single use');

    const who = await fetch(tokens.body.id, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    const identity = await who.json();
    assert.deepEqual([identity.user_id, identity.organization_id, identity.username, identity.asserted_user], [sf.defaultUserId, sf.orgId, 'integration@acme.example', true]);
    assert.equal(identity.urls.rest, `${sf.url}/services/data/v{version}/`);
    const badToken = await fetch(tokens.body.id, { headers: { authorization: 'Bearer nope' } });
    assert.deepEqual([badToken.status, await badToken.text()], [403, 'Bad_OAuth_Token']);
    const otherUser = await fetch(`${sf.url}/id/${sf.orgId}/${caseSafeId('0055g0000ZZZZZZ')}`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    assert.deepEqual([otherUser.status, await otherUser.text()], [404, 'Bad_Id']);
    const agent = await (await fetch(`${sf.url}/id/${sf.orgId}/${sf.userId('agent@acme.example')}`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } })).json();
    assert.equal(agent.asserted_user, false, 'another user of the org');
    const info = await (await fetch(`${sf.url}/services/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } })).json();
    assert.deepEqual([info.user_id, info.organization_id, info.preferred_username], [sf.defaultUserId, sf.orgId, 'integration@acme.example']);
    const noInfo = await fetch(`${sf.url}/services/oauth2/userinfo`, { headers: { authorization: 'Bearer nope' } });
    assert.deepEqual([noInfo.status, await noInfo.text()], [403, 'Bad_OAuth_Token']);

    const api = client(sf, tokens.body.access_token);
    assert.equal((await api('POST', '/sobjects/Contact', { LastName: 'Via OAuth' })).status, 201);
  });

  test('refuses a bad client, secret, grant type, redirect or code as Salesforce does', async () => {
    const code = () => sf.authorize('3MVG9crm-edge', REDIRECT);
    const base = { grant_type: 'authorization_code', client_id: '3MVG9crm-edge', client_secret: 'secret-1', redirect_uri: REDIRECT };
    for (const [description, fields, error, errorDescription] of [
      ['an unknown grant type', { ...base, grant_type: 'password', code: code() }, 'unsupported_grant_type', 'grant type not supported'],
      ['no grant type', { client_id: '3MVG9crm-edge' }, 'unsupported_grant_type', 'grant type not supported'],
      ['an unknown client', { ...base, client_id: '3MVG9nobody', code: code() }, 'invalid_client_id', 'client identifier invalid'],
      ['a wrong secret', { ...base, client_secret: 'wrong', code: code() }, 'invalid_client', 'invalid client credentials'],
      ['another redirect', { ...base, redirect_uri: 'http://127.0.0.1:9/elsewhere', code: code() }, 'redirect_uri_mismatch', 'redirect_uri must match configuration'],
      ['an unknown code', { ...base, code: 'aPrxnothing' }, 'invalid_grant', 'invalid authorization code'],
      ['a refresh token never issued', { grant_type: 'refresh_token', client_id: '3MVG9crm-edge', client_secret: 'secret-1', refresh_token: 'nope' }, 'invalid_grant', 'expired access/refresh token'],
      ['client credentials without a run-as user', { grant_type: 'client_credentials', client_id: '3MVG9no-runas', client_secret: 'secret-2' }, 'invalid_grant', 'no client credentials user enabled'],
    ]) {
      const answer = await postForm(sf.tokenUrl, fields);
      assert.equal(answer.status, 400, description);
      assert.deepEqual(answer.body, { error, error_description: errorDescription }, description);
    }
  });

  test('expires a code after 15 minutes', async () => {
    let clock = Date.now();
    const timed = await startSalesforce({ apps: APPS, now: () => clock });
    try {
      const code = timed.authorize('3MVG9crm-edge', REDIRECT);
      clock += 15 * 60_000;
      const answer = await postForm(timed.tokenUrl, { grant_type: 'authorization_code', client_id: '3MVG9crm-edge', client_secret: 'secret-1', redirect_uri: REDIRECT, code });
      assert.deepEqual(answer.body, { error: 'invalid_grant', error_description: 'expired authorization code' });
    } finally {
      await timed.close();
    }
  });

  test('shows an error page for an unknown client or an unregistered callback, and sends other refusals back', async () => {
    for (const [description, extra, shown] of [
      ['an unknown client', { client_id: '3MVG9nobody' }, 'error=invalid_client_id&amp;error_description=client%20identifier%20invalid'],
      ['an unregistered callback', { redirect_uri: 'https://evil.example/cb' }, 'error=redirect_uri_mismatch&amp;error_description=redirect_uri%20must%20match%20configuration'],
    ]) {
      const page = await fetch(`${sf.authorizeUrl}?${authorizeParams(extra)}`, { redirect: 'manual' });
      assert.equal(page.status, 400, description);
      const html = await page.text();
      assert.ok(html.includes(shown), description);
      assert.doesNotMatch(html, /Allow<\/button>/, `${description}: no button`);
    }
    for (const [description, extra, error] of [
      ['another response type', { response_type: 'token' }, 'unsupported_response_type'],
      ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
      ['a scope the app lacks', { scope: 'api full' }, 'invalid_scope'],
    ]) {
      const page = await fetch(`${sf.authorizeUrl}?${authorizeParams(extra)}`, { redirect: 'manual' });
      assert.equal(page.status, 302, description);
      const back = new URL(page.headers.get('location'));
      assert.deepEqual([back.searchParams.get('error'), back.searchParams.get('state')], [error, 's-42'], description);
    }
    const html = await (await fetch(`${sf.authorizeUrl}?${authorizeParams()}`)).text();
    const denied = await press(html, 'deny');
    assert.equal(denied.searchParams.get('error'), 'access_denied');
    assert.equal(denied.searchParams.get('code'), null);
  });

  test('refreshes, serves client credentials as the run-as user, and revokes tokens', async () => {
    const code = sf.authorize('3MVG9crm-edge', REDIRECT, { username: 'agent@acme.example' });
    const first = await postForm(sf.tokenUrl, { grant_type: 'authorization_code', client_id: '3MVG9crm-edge', client_secret: 'secret-1', redirect_uri: REDIRECT, code });
    assert.equal(first.body.id, `${sf.url}/id/${sf.orgId}/${sf.userId('agent@acme.example')}`);
    const refreshed = await postForm(sf.tokenUrl, { grant_type: 'refresh_token', client_id: '3MVG9crm-edge', client_secret: 'secret-1', refresh_token: first.body.refresh_token });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.refresh_token, undefined, 'a refresh answers no new refresh token');
    assert.notEqual(refreshed.body.access_token, first.body.access_token);
    assert.equal(refreshed.body.instance_url, sf.url);

    const basic = Buffer.from('3MVG9crm-edge:secret-1').toString('base64');
    const server = await postForm(sf.tokenUrl, { grant_type: 'client_credentials' }, { authorization: `Basic ${basic}` });
    assert.equal(server.status, 200, JSON.stringify(server.body));
    assert.equal(server.body.refresh_token, undefined);
    assert.equal(server.body.id, `${sf.url}/id/${sf.orgId}/${sf.userId('integration@acme.example')}`);
    assert.equal((await client(sf, server.body.access_token)('GET', '/limits')).status, 200);

    const access = client(sf, first.body.access_token);
    assert.equal((await access('GET', '/limits')).status, 200);
    assert.equal((await postForm(sf.revokeUrl, { token: first.body.refresh_token })).status, 200);
    assertError(await access('GET', '/limits'), 401, 'INVALID_SESSION_ID', 'revoked with its refresh token');
    assertError(await client(sf, refreshed.body.access_token)('GET', '/limits'), 401, 'INVALID_SESSION_ID', 'the refreshed one too');
    const again = await postForm(sf.tokenUrl, { grant_type: 'refresh_token', client_id: '3MVG9crm-edge', client_secret: 'secret-1', refresh_token: first.body.refresh_token });
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal((await fetch(`${sf.revokeUrl}?token=${encodeURIComponent(server.body.access_token)}`)).status, 200, 'GET revokes too');
    assertError(await client(sf, server.body.access_token)('GET', '/limits'), 401, 'INVALID_SESSION_ID', 'revoked access token');
    assert.deepEqual((await postForm(sf.revokeUrl, { token: 'nope' })).body, { error: 'invalid_token', error_description: 'invalid token' });
  });
});

describe('the Salesforce fake’s Outbound Messages', () => {
  test('builds the documented SOAP envelope: namespaces, element order, xsi:type, headers', async () => {
    const sf = await startSalesforce();
    try {
      const contact = sf.seedContact({ FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com' });
      const message = sf.outboundMessage({ object: 'Contact', ids: [contact.Id], fields: ['Email', 'LastName', 'Phone'] });
      assert.deepEqual(message.headers, { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '""' });
      const xml = message.body;
      assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>'));
      assert.match(xml, /<soapenv:Envelope xmlns:soapenv="http:\/\/schemas\.xmlsoap\.org\/soap\/envelope\/"/);
      assert.ok(xml.includes(`<notifications xmlns="${OUTBOUND_NAMESPACE}">`));
      const order = ['<OrganizationId>', '<ActionId>', '<SessionId', '<EnterpriseUrl>', '<PartnerUrl>', '<Notification>'].map((tag) => xml.indexOf(tag));
      assert.deepEqual([...order].sort((a, b) => a - b), order, 'the WSDL’s sequence');
      assert.ok(order.every((at) => at > 0));
      assert.ok(xml.includes(`<OrganizationId>${sf.orgId}</OrganizationId>`));
      assert.match(xml, /<ActionId>04k[0-9A-Za-z]{15}<\/ActionId>/);
      assert.ok(xml.includes('<SessionId xsi:nil="true"/>'), 'no session unless asked');
      assert.ok(xml.includes(`<EnterpriseUrl>${sf.url}/services/Soap/c/66.0/${sf.orgId.slice(0, 15)}</EnterpriseUrl>`));
      assert.ok(xml.includes(`<PartnerUrl>${sf.url}/services/Soap/u/66.0/${sf.orgId.slice(0, 15)}</PartnerUrl>`));
      assert.match(xml, /<Notification>\s*<Id>04l[0-9A-Za-z]{15}<\/Id>\s*<sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject\.enterprise\.soap\.sforce\.com">/);
      assert.equal(SOBJECT_NAMESPACE, 'urn:sobject.enterprise.soap.sforce.com');
      assert.match(xml, new RegExp(`<sf:Id>${contact.Id}</sf:Id>\\s*<sf:Email>ada@example\\.com</sf:Email>\\s*<sf:LastName>Lovelace</sf:LastName>\\s*</sObject>`));
      assert.doesNotMatch(xml, /sf:Phone/, 'null fields are left out');

      const kase = sf.seedCase({ Subject: 'Broken & late' });
      const withSession = sf.outboundMessage({ object: 'Case', ids: [kase.Id], fields: ['Subject', 'Status'], sessionId: true });
      assert.match(withSession.body, /<SessionId>00D[^<]+<\/SessionId>/);
      assert.ok(withSession.body.includes('xsi:type="sf:Case"'));
      assert.ok(withSession.body.includes('<sf:Subject>Broken &amp; late</sf:Subject>'));
      const session = /<SessionId>([^<]+)<\/SessionId>/.exec(withSession.body)[1];
      assert.equal((await fetch(`${sf.dataUrl}/limits`, { headers: { authorization: `Bearer ${session}` } })).status, 200, 'the session calls back');

      const many = Array.from({ length: 101 }, (_, i) => sf.seedContact({ LastName: `n${i}` }).Id);
      assert.equal((sf.outboundMessage({ object: 'Contact', ids: many.slice(0, 100) }).body.match(/<Notification>/g) ?? []).length, 100);
      assert.throws(() => sf.outboundMessage({ object: 'Contact', ids: many }), /1 to 100 notifications/);
    } finally {
      await sf.close();
    }
  });

  test('counts only the documented acknowledgement', () => {
    assert.equal(isAcknowledgement(acknowledgement(true)), true);
    assert.equal(isAcknowledgement(acknowledgement(false)), false);
    const prefixed = `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><ns:notificationsResponse xmlns:ns="${OUTBOUND_NAMESPACE}"><ns:Ack>true</ns:Ack></ns:notificationsResponse></S:Body></S:Envelope>`;
    assert.equal(isAcknowledgement(prefixed), true, 'any prefix of the right namespace');
    assert.equal(isAcknowledgement('<notificationsResponse xmlns="urn:other"><Ack>true</Ack></notificationsResponse>'), false, 'another namespace');
    assert.equal(isAcknowledgement('{"ack": true}'), false);
    assert.equal(isAcknowledgement(''), false);
  });

  test('resends an unacknowledged message with growing intervals, at most two hours apart, and drops it after 24 hours', async () => {
    let clock = Date.parse('2026-11-26T10:00:00Z');
    const sf = await startSalesforce({ now: () => clock });
    const listener = await startListener();
    try {
      const contact = sf.seedContact({ LastName: 'Retry', Email: 'retry@example.com' });
      const id = sf.queueOutbound(listener.url, { object: 'Contact', ids: [contact.Id], fields: ['Email'] });
      listener.answers.push({ status: 500, body: 'oops' }, { status: 200, body: acknowledgement(false) }, { status: 200, body: '<ok/>' });
      assert.equal((await sf.deliverDue())[id].acked, false);
      assert.equal(listener.received[0].headers['content-type'], 'text/xml; charset=utf-8');
      assert.equal(listener.received[0].headers.soapaction, '""');
      assert.deepEqual(await sf.deliverDue(), {}, 'not due yet');
      const gaps = [];
      let last = clock;
      for (let i = 0; i < 2; i += 1) {
        clock = sf.outbox[0].nextAttemptMs;
        gaps.push(clock - last);
        last = clock;
        assert.equal((await sf.deliverDue())[id].acked, false);
      }
      assert.deepEqual(gaps, [30_000, 60_000], 'the interval doubles');
      sf.editRecord(contact.Id, { Email: 'latest@example.com' });
      clock = sf.outbox[0].nextAttemptMs;
      assert.equal((await sf.deliverDue())[id].acked, true);
      assert.equal(sf.outbox[0].state, 'delivered');
      assert.ok(listener.received.at(-1).body.includes('<sf:Email>latest@example.com</sf:Email>'), 'the latest data');
      const notes = listener.received.map((r) => /<Notification>\s*<Id>([^<]+)</.exec(r.body)[1]);
      assert.equal(new Set(notes).size, 1, 'every resend carries the same notification id');

      const stubborn = sf.queueOutbound(`${listener.url}?never`, { object: 'Contact', ids: [contact.Id], fields: ['Email'] });
      const start = clock;
      listener.answers.push(...Array.from({ length: 40 }, () => ({ status: 503, body: 'down' })));
      const waits = [];
      while (sf.outbox.find((e) => e.id === stubborn).state === 'pending') {
        await sf.deliverDue();
        const entry = sf.outbox.find((e) => e.id === stubborn);
        if (entry.state !== 'pending') break;
        waits.push(entry.nextAttemptMs - clock);
        clock = entry.nextAttemptMs;
      }
      assert.equal(Math.max(...waits), 2 * 3_600_000, 'at most two hours between tries');
      assert.equal(sf.outbox.find((e) => e.id === stubborn).state, 'dropped');
      assert.ok(clock - start <= 24 * 3_600_000, 'dropped within 24 hours');
    } finally {
      await listener.close();
      await sf.close();
    }
  });

  test('lets a test resend now, send twice and deliver out of order', async () => {
    const sf = await startSalesforce();
    const listener = await startListener();
    try {
      const first = sf.seedCase({ Subject: 'First' });
      const second = sf.seedCase({ Subject: 'Second' });
      const a = sf.queueOutbound(listener.url, { object: 'Case', ids: [first.Id], fields: ['Subject'] });
      const b = sf.queueOutbound(listener.url, { object: 'Case', ids: [second.Id], fields: ['Subject'] });
      await sf.deliverInOrder([b, a]);
      assert.deepEqual(listener.received.map((r) => /<sf:Subject>([^<]+)</.exec(r.body)[1]), ['Second', 'First'], 'out of order');
      const twice = await sf.sendTwice(a);
      assert.deepEqual(twice.map((r) => r.acked), [true, true]);
      const ids = listener.received.slice(-2).map((r) => /<Notification>\s*<Id>([^<]+)</.exec(r.body)[1]);
      assert.equal(ids[0], ids[1], 'a duplicate delivery has the same notification id');
      assert.equal((await sf.resendNow(b)).acked, true);
      assert.equal(sf.outboundDeliveries.length, 5);
      assert.ok(sf.outboundDeliveries.every((d) => d.status === 200 && d.acked));
      const unreachable = await sf.sendOutbound('http://127.0.0.1:9/nothing', sf.outboundMessage({ object: 'Case', ids: [first.Id] }));
      assert.deepEqual([unreachable.status, unreachable.acked], [null, false]);
    } finally {
      await listener.close();
      await sf.close();
    }
  });
});
