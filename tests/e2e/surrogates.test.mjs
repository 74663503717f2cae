// A lone UTF-16 surrogate escape, as JSON.stringify writes a JavaScript string cut in the middle
// of an emoji, is no Unicode. Rather than refusing the whole body for it, every endpoint reads it
// as U+FFFD (the replacement character), so one broken name does not sink a batch.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, getCustomer, newBusiness, unique } from './support.mjs';

describe('lone surrogate escapes in a JSON body', () => {
  test('a sync with one lone surrogate in a name stores all three customers, the broken unit as U+FFFD', async () => {
    const { key } = await newBusiness();
    const emails = [1, 2, 3].map((n) => `${unique(`surrogate${n}`)}@example.com`);
    // Written by hand so that `\ud800` is literally in the body, as JSON.stringify('A\ud800B') writes it.
    const body = String.raw`{"customers": [
      {"name": "First Person", "email": "${emails[0]}"},
      {"name": "A\ud800B", "email": "${emails[1]}"},
      {"name": "Third \ud83d\ude00 Person", "email": "${emails[2]}"}
    ]}`;
    assert.ok(body.includes('"A\\ud800B"'), 'the escape is in the body as text');

    const res = await api(key, 'POST', '/api-customers-sync', body, { 'content-type': 'application/json' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.results.total, 3, res.text);
    assert.equal(res.body.results.created, 3, res.text);
    assert.equal(res.body.results.failed, 0, res.text);

    const names = [];
    for (const email of emails) {
      const customer = await getCustomer(key, 'email', email);
      assert.equal(customer.status, 200, `looking up ${email}: ${customer.text}`);
      names.push(customer.body.name);
    }
    assert.deepEqual(names, ['First Person', 'A\uFFFDB', 'Third \u{1F600} Person']);
  });
});
