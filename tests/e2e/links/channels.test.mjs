// Active, inactive and deleted links: a link switched off on one channel is not searchable there
// but still is on its other channel; switched off everywhere it is searchable nowhere and the
// sweep does not fetch it; deleted, nothing of it is searchable, listed or counted.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCrm } from './crm-server.mjs';
import { CUSTOM_EXAMPLE, SHOPIFY_EXAMPLE, asGuide } from './guide.mjs';
import { LINKS, SMALL, addLink, businessWithPages, dashboard, documents, findEntry, listLinks, makeDue, search, sleep, sweep, waitForFetched } from './links.mjs';

let crm;
let business;
let page;
let customUrl;
let shopifyUrl;

before(async () => {
  crm = await startCrm(SMALL);
  business = await businessWithPages(1);
  page = business.page;
  const custom = asGuide(CUSTOM_EXAMPLE, page, crm.url);
  customUrl = custom.url;
  await addLink(business, { ...custom, channels: ['facebook', 'messenger'] });
  const shopify = asGuide(SHOPIFY_EXAMPLE, page, crm.url);
  shopifyUrl = shopify.url;
  await addLink(business, { ...shopify, channels: ['facebook', 'messenger'] });
  for (const channel of ['facebook', 'messenger']) {
    await waitForFetched(business, page, customUrl, { channel, records: SMALL.custom });
    await waitForFetched(business, page, shopifyUrl, { channel, records: SMALL.shopify });
  }
});
after(async () => {
  await crm?.close();
});

/** Whether a search on `channel` (keyword and semantic, 20 results) returns anything of `url`. */
async function findsAnythingOf(url, channel, q) {
  for (const mode of ['keyword', 'semantic']) {
    const { results } = await search(business, { page_id: page, channel, q, top_k: 20, mode });
    if (results.some((r) => r.link.url === url)) return true;
  }
  return false;
}

const setActive = async (url, isActive, channels) => {
  const res = await dashboard(business.key, 'PUT', `${LINKS}/status`, { page_id: page, url, is_active: isActive, ...(channels ? { channels } : {}) });
  assert.equal(res.status, 200, res.text);
  return res.body;
};

describe('a link on two channels', () => {
  test('both channels find it while it is active', async () => {
    assert.ok(await findsAnythingOf(customUrl, 'facebook', 'John Doe'), 'facebook finds John Doe');
    assert.ok(await findsAnythingOf(customUrl, 'messenger', 'John Doe'), 'messenger finds John Doe');
  });

  test('inactive on facebook: nothing of it is found on facebook, and messenger still finds it', async () => {
    const answer = await setActive(customUrl, false, ['facebook']);
    assert.equal(answer.updated_count, 1, 'one entry changed');
    assert.equal(await findsAnythingOf(customUrl, 'facebook', 'John Doe'), false, 'facebook finds nothing of the inactive link');
    assert.equal(await findsAnythingOf(customUrl, 'facebook', 'What plan is John Doe on?'), false, 'not even by meaning');
    assert.ok(await findsAnythingOf(customUrl, 'messenger', 'John Doe'), 'messenger still finds it');
    assert.ok(await findsAnythingOf(shopifyUrl, 'facebook', 'Priya Nair'), 'the other link on facebook is untouched');
    const document = (await documents(business, page)).documents.find((d) => d.link.url === customUrl);
    assert.deepEqual(document.active_channels, ['messenger'], 'the documents view shows where it is active');
  });

  test('active again on facebook, it is found there again', async () => {
    await setActive(customUrl, true, ['facebook']);
    assert.ok(await findsAnythingOf(customUrl, 'facebook', 'John Doe'), 'facebook finds it again');
  });

  test('inactive on every channel: found nowhere, and not fetched by the sweep even when due', async () => {
    const answer = await setActive(customUrl, false);
    assert.equal(answer.updated_count, 2, 'channels omitted means every channel');
    assert.deepEqual([...answer.channels].sort(), ['facebook', 'messenger'], 'the answer names them');
    for (const channel of ['facebook', 'messenger']) {
      assert.equal(await findsAnythingOf(customUrl, channel, 'John Doe'), false, `${channel} finds nothing of it`);
    }
    const asked = crm.requestsTo('custom').length;
    makeDue(business, page, customUrl);
    await sweep();
    await sleep(4_000);
    assert.equal(crm.requestsTo('custom').length, asked, 'an inactive link is not fetched');
    const list = await listLinks(business, page);
    assert.deepEqual([list.active_count, list.inactive_count], [2, 2], 'the counts');
  });
});

describe('a deleted link', () => {
  test('nothing of it is searchable, listed or counted, on any channel', async () => {
    const res = await dashboard(business.key, 'DELETE', LINKS, { page_id: page, url: shopifyUrl });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.deleted_count, 2, 'channels omitted means every channel');
    for (const channel of ['facebook', 'messenger']) {
      assert.equal(await findsAnythingOf(shopifyUrl, channel, 'Priya Nair'), false, `${channel} finds nothing of it`);
      assert.equal(await findsAnythingOf(shopifyUrl, channel, 'which customers spent the most?'), false, `${channel} finds nothing of it by meaning`);
      assert.equal(await findEntry(business, page, shopifyUrl, channel), undefined, `${channel} lists no entry`);
    }
    const view = await documents(business, page);
    assert.ok(!view.documents.some((d) => d.link.url === shopifyUrl), 'the documents view has no document for it');
    assert.equal(view.total_chunks, view.documents.reduce((sum, d) => sum + d.chunks, 0), 'the totals count only what is left');
  });
});
