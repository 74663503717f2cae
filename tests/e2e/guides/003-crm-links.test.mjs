// 003, the CRM links of a Facebook bot's pages: the guide's HTTP examples ("API Endpoints" 1 to 5)
// sent as written, with the guide's request bodies, and its curl commands ("Integration Examples",
// "Monitoring & Debugging") run in bash, changed only in the base URL, the key (`Authorization:
// Bearer`, as the guide's curl examples send it), the page id (one of the test business's pages)
// and the CRMs' origins (the local CRM, which speaks Shopify's, HubSpot's and a custom API).

import { after, describe, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { BASE_URL, newBusiness, waitFor } from '../support.mjs';
import { SMALL, addPage, businessWithPages, dashboard, waitForFetched } from '../links/links.mjs';
import { startCrm } from '../links/crm-server.mjs';

// 003's curl commands, verbatim (escaped for a template literal).
const SHOPIFY = `curl -X POST http://localhost:8080/api/dashboard/crm-links \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer [session-token]" \\
  -d '{
    "page_id": "123456789",
    "channels": ["messenger"],
    "name": "Shopify Customers",
    "url": "https://mystore.myshopify.com/admin/api/2024-01/customers.json",
    "type": "api",
    "api_key": "shppa_1234567890",
    "headers": {
      "X-Shopify-Access-Token": "shppa_1234567890"
    },
    "description": "Shopify customer database",
    "is_active": true
  }'`;
const HUBSPOT = `curl -X POST http://localhost:8080/api/dashboard/crm-links \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer [session-token]" \\
  -d '{
    "page_id": "123456789",
    "channels": ["facebook", "messenger"],
    "name": "HubSpot Contacts",
    "url": "https://api.hubapi.com/crm/v3/objects/contacts",
    "type": "api",
    "api_key": "pat-na1-1234567890",
    "headers": {
      "Content-Type": "application/json"
    },
    "description": "HubSpot CRM contacts",
    "is_active": true
  }'`;
const CUSTOM = `curl -X POST http://localhost:8080/api/dashboard/crm-links \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer [session-token]" \\
  -d '{
    "page_id": "123456789",
    "channels": ["facebook"],
    "name": "Internal CRM",
    "url": "https://crm.company.com/api/customers",
    "type": "api",
    "headers": {
      "X-API-Key": "internal-key-123",
      "X-Client-ID": "facebook-bot"
    },
    "description": "Company internal CRM",
    "is_active": true
  }'`;
const CHECK_STATUS = `curl -X GET "http://localhost:8080/api/dashboard/crm-links?page_id=123456789" \\
  -H "Authorization: Bearer [session-token]"`;
const VECTOR_DOCUMENTS = `curl -X GET "http://localhost:8080/api/dashboard/rag/documents/details?page_id=123456789&source=crm" \\
  -H "Authorization: Bearer [session-token]"`;

/**
 * A curl command of the guide as the test runs it: ours for its host, key, page and CRMs. Run
 * without blocking: the scripted CRM answers from this process while curl waits (adding a link
 * reads its first page).
 */
async function curl(command, { key, page, crm }) {
  const local = command
    .replaceAll('http://localhost:8080', BASE_URL)
    .replaceAll('[session-token]', key)
    .replaceAll('"123456789"', `"${page}"`)
    .replaceAll('page_id=123456789', `page_id=${page}`)
    .replaceAll('https://mystore.myshopify.com', crm)
    .replaceAll('https://api.hubapi.com', crm)
    .replaceAll('https://crm.company.com', crm);
  const { stdout } = await promisify(execFile)('bash', ['-c', local], { encoding: 'utf8' });
  return JSON.parse(stdout);
}

describe('003, "5. Get All CRM Data (All Pages)", its answer', () => {
  test('the guide’s example answer of /all, field by field: My Company’s one page with four links, three active', async () => {
    const business = await newBusiness({ default_country: 'IE', name: 'My Company' });
    const page = await addPage(business, { name: 'My Facebook Page' });
    const link = (n, channel, active) => dashboard(business.key, 'POST', '/api/dashboard/crm-links', {
      page_id: page, channels: [channel], name: `Customer Database ${n}`, url: `https://api.crm.com/customers/${n}`, type: 'api', is_active: active,
    });
    for (const [n, channel, active] of [[1, 'facebook', true], [2, 'facebook', true], [3, 'messenger', true], [4, 'messenger', false]]) {
      const added = await link(n, channel, active);
      assert.equal(added.status, 201, added.text);
    }
    const all = await dashboard(business.key, 'GET', '/api/dashboard/crm-links/all');
    assert.equal(all.status, 200, all.text);

    // The guide's answer, as written (its comments stand for the links themselves).
    const guideAnswer = {
  "company_id": "company-001",
  "company_name": "My Company",
  "pages_data": [
    {
      "page_id": "123456789",
      "page_name": "My Facebook Page",
      "facebook_crm_links": [ /* CRM links */ ],
      "messenger_crm_links": [ /* CRM links */ ],
      "legacy_crm_links": [ /* Legacy links */ ],
      "total_active": 3,
      "total_inactive": 1
    }
  ],
  "total_pages": 1,
  "total_crm_links": 4,
  "total_active": 3,
  "total_inactive": 1
};
    // Each of its fields in ours: the ids are the business's and the page's; a list of links is a
    // list (the guide shows none of its links), ours holding the page's links by channel.
    const ours = all.body;
    const expected = { ...guideAnswer, company_id: business.id, pages_data: [{ ...guideAnswer.pages_data[0], page_id: page }] };
    for (const [name, value] of Object.entries(expected)) {
      if (name === 'pages_data') continue;
      assert.deepEqual(ours[name], value, `${name}: ${all.text}`);
    }
    assert.equal(ours.pages_data.length, 1);
    for (const [name, value] of Object.entries(expected.pages_data[0])) {
      if (Array.isArray(value)) assert.ok(Array.isArray(ours.pages_data[0][name]), `pages_data[0].${name} is a list: ${all.text}`);
      else assert.deepEqual(ours.pages_data[0][name], value, `pages_data[0].${name}: ${all.text}`);
    }
    const [ourPage] = ours.pages_data;
    assert.deepEqual([ourPage.facebook_crm_links.length, ourPage.messenger_crm_links.length, ourPage.legacy_crm_links.length], [2, 2, 0]);
  });
});

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
    const emptied = await dashboard(business.key, 'GET', `/api/dashboard/crm-links?page_id=${pageID}`);
    assert.equal(emptied.body.total, 0, emptied.text);
  });

  test('the guide’s curl examples, as written, are refused naming holds (their records name customers); with holds they add a Shopify, a HubSpot and a custom CRM, whose customers are fetched and stored as documents', async () => {
    const crm = await startCrm(SMALL);
    after(() => crm.close());
    const business = await businessWithPages(1);
    const ours = { key: business.key, page: business.page, crm: crm.url };

    // As written: a link of customers' records without holds would give every customer's record
    // to anyone who asks the bot; the answer names holds and the field the records are keyed by.
    const fields = new Map([[SHOPIFY, 'email'], [HUBSPOT, 'properties.email'], [CUSTOM, 'email']]);
    for (const [example, field] of fields) {
      const refused = await curl(example, ours);
      assert.equal(refused.error?.field, 'holds', JSON.stringify(refused));
      assert.ok(refused.error.message.includes(`{"field":"${field}","key":"email","type":"customers"}`), JSON.stringify(refused));
    }
    for (const [example, field] of fields) {
      const holds = `"holds": {"type": "customers", "field": "${field}", "key": "email"},\n    "is_active": true`;
      const added = await curl(example.replace('"is_active": true', holds), ours);
      assert.equal(added.message, 'CRM link added successfully', JSON.stringify(added));
    }
    const links = await curl(CHECK_STATUS, ours);
    // One entry per channel: HubSpot's link is on two.
    assert.deepEqual(links.crm_links.map((link) => link.name).sort(), ['HubSpot Contacts', 'HubSpot Contacts', 'Internal CRM', 'Shopify Customers']);
    for (const link of links.crm_links.filter((entry, index, all) => all.findIndex((other) => other.url === entry.url) === index)) {
      await waitForFetched(business, business.page, link.url, { records: SMALL[{ 'Shopify Customers': 'shopify', 'HubSpot Contacts': 'hubspot', 'Internal CRM': 'custom' }[link.name]] });
    }
    // Each link's fetches as the checklist's KPIs (docs/links.md), counted as the fetcher's
    // invocation ends (just after the fetch's status): answered, none failed.
    const counted = await waitFor(async () => {
      const now = (await curl(CHECK_STATUS, ours)).crm_links;
      return now.every((link) => link.status.health.calls >= 1) ? now : null;
    }, 20_000, 'every link\'s fetches counted', 500);
    for (const { name, status: { health } } of counted) {
      assert.ok(health.failed_calls === 0 && health.uptime === 1 && health.error_rate === 0, `${name}: ${JSON.stringify(health)}`);
      assert.equal(health.targets.uptime, 0.995);
    }
    const stored = await curl(VECTOR_DOCUMENTS, ours);
    assert.deepEqual([...new Set(stored.documents.map((document) => document.link.name))].sort(), ['HubSpot Contacts', 'Internal CRM', 'Shopify Customers'], JSON.stringify(stored).slice(0, 500));
  });
});
