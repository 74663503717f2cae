// 003, the CRM links of a Facebook bot's pages: the guide's HTTP examples ("API Endpoints" 1 to 5)
// sent as written, with the guide's request bodies, changed only in the page id (one of the test
// business's pages) and the key (`Authorization: Bearer`, as the guide's curl examples send it).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { businessWithPages, dashboard } from '../links/links.mjs';

describe('003, "API Endpoints", as written', () => {
  test('the guide’s requests add, list, switch off and delete a link, and list every page’s links', async () => {
    const business = await businessWithPages(1);
    const pageID = business.page;
    const channel = 'facebook';

    // "2. Add New CRM Link": POST /api/dashboard/crm-links with the guide's request body.
    const added = await dashboard(business.key, 'POST', '/api/dashboard/crm-links', {
      "page_id": pageID,
      "channels": ["facebook", "messenger"],
      "name": "Customer Database",
      "url": "https://api.crm.com/customers",
      "type": "api",
      "api_key": "your-api-key",
      "headers": {
        "X-Custom-Header": "value"
      },
      "description": "Main customer database",
      "is_active": true
    });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.body.message, 'CRM link added successfully');
    assert.deepEqual(added.body.channels, ['facebook', 'messenger']);
    assert.equal(added.body.page_id, pageID);

    // "1. Get CRM Links for Channel".
    const listed = await dashboard(business.key, 'GET', `/api/dashboard/crm-links?page_id=${pageID}&channel=${channel}`);
    assert.equal(listed.status, 200, listed.text);
    const [link] = listed.body.crm_links;
    assert.deepEqual(
      { name: link.name, url: link.url, type: link.type, api_key: link.api_key, headers: link.headers, description: link.description, is_active: link.is_active },
      { name: 'Customer Database', url: 'https://api.crm.com/customers', type: 'api', api_key: '***', headers: { 'X-Custom-Header': '***' }, description: 'Main customer database', is_active: true },
      'the guide’s response, the key masked, and the headers’ values too, as they may hold a key',
    );
    assert.deepEqual(
      [listed.body.page_id, listed.body.channel, listed.body.total, listed.body.active_count, listed.body.inactive_count],
      [pageID, 'facebook', 1, 1, 0],
    );

    // "3. Update CRM Link Status".
    const updated = await dashboard(business.key, 'PUT', '/api/dashboard/crm-links/status', {
      "page_id": pageID,
      "url": "https://api.crm.com/customers",
      "channels": ["facebook"],
      "is_active": false
    });
    assert.equal(updated.status, 200, updated.text);
    assert.deepEqual(
      { ...updated.body },
      { message: 'CRM link status updated successfully', updated_count: 1, url: 'https://api.crm.com/customers', channels: ['facebook'], is_active: false },
    );

    // "5. Get All CRM Data (All Pages)".
    const all = await dashboard(business.key, 'GET', '/api/dashboard/crm-links/all');
    assert.equal(all.status, 200, all.text);
    const page = all.body.pages_data.find((entry) => entry.page_id === pageID);
    assert.ok(page, all.text);
    assert.equal(page.facebook_crm_links.length, 1, all.text);
    assert.equal(page.messenger_crm_links.length, 1, all.text);

    // "4. Delete CRM Link".
    const deleted = await dashboard(business.key, 'DELETE', '/api/dashboard/crm-links', {
      "page_id": pageID,
      "url": "https://api.crm.com/customers",
      "channels": ["facebook", "messenger"]
    });
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(
      { ...deleted.body },
      { message: 'CRM link deleted successfully', deleted_count: 2, url: 'https://api.crm.com/customers', channels: ['facebook', 'messenger'] },
    );
    const after = await dashboard(business.key, 'GET', `/api/dashboard/crm-links?page_id=${pageID}`);
    assert.equal(after.body.total, 0, after.text);
  });
});
