// The guide's own examples (/work/shared/seeds/003: "Integration Examples"), as data: the three
// POST bodies its curl commands send, and a way to point one at the local CRM by changing only
// the URL's scheme, host and port (and the page id, which must be one of the test's own pages).

/** Example 1: Shopify Customer Data. */
export const SHOPIFY_EXAMPLE = Object.freeze({
  page_id: '123456789',
  channels: ['messenger'],
  name: 'Shopify Customers',
  url: 'https://mystore.myshopify.com/admin/api/2024-01/customers.json',
  type: 'api',
  api_key: 'shppa_1234567890',
  headers: { 'X-Shopify-Access-Token': 'shppa_1234567890' },
  description: 'Shopify customer database',
  is_active: true,
});

/** Example 2: HubSpot CRM. */
export const HUBSPOT_EXAMPLE = Object.freeze({
  page_id: '123456789',
  channels: ['facebook', 'messenger'],
  name: 'HubSpot Contacts',
  url: 'https://api.hubapi.com/crm/v3/objects/contacts',
  type: 'api',
  api_key: 'pat-na1-1234567890',
  headers: { 'Content-Type': 'application/json' },
  description: 'HubSpot CRM contacts',
  is_active: true,
});

/** Example 3: Custom CRM System. */
export const CUSTOM_EXAMPLE = Object.freeze({
  page_id: '123456789',
  channels: ['facebook'],
  name: 'Internal CRM',
  url: 'https://crm.company.com/api/customers',
  type: 'api',
  headers: { 'X-API-Key': 'internal-key-123', 'X-Client-ID': 'facebook-bot' },
  description: 'Company internal CRM',
  is_active: true,
});

/**
 * The example as sent to our stack: the same body with the URL's origin replaced by `origin`
 * (the local CRM) and `page_id` by `page`; `query` is appended to the URL when given.
 */
export function asGuide(example, page, origin, query = '') {
  const url = new URL(example.url);
  return { ...structuredClone(example), page_id: page, url: `${origin}${url.pathname}${url.search}${query}` };
}

/** What a customer list must add to the guide's examples since links name what they hold
 *  (docs/links.md, "holds"): each customer answered from their own record only, the one whose
 *  `field` is the asker's email. */
export const ownRecords = (field = 'email') => ({ holds: { type: 'customers', field, key: 'email' } });

/** The guide's "Processed Text Format" for its John Doe example, at record `index`. */
export function guideJohnDoe(index = 0) {
  return [
    `customers[${index}].id: cust-123`,
    `customers[${index}].name: John Doe`,
    `customers[${index}].email: john@example.com`,
    `customers[${index}].subscription: Premium`,
    `customers[${index}].support_level: Gold`,
  ].join('\n');
}
