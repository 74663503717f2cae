// The integration guides' steps, as a new user copies them: each test runs the guide's own code
// (marked "unchanged" where it is copied whole) or request, changed only in BASE_URL and the key,
// against the local stack and the local Meta, Kustomer and Krayin. Where a guide's step needs more than one call of ours, the test says
// which step of which guide (../shared/seeds: 004 the CRM-facing API, 000/001 Kustomer, 002
// Krayin) it follows.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { BASE_URL, admin, api, assertError, bulkCreate, newBusiness, sync, unique, waitFor } from './support.mjs';
import { businessWithEndpoint, messagesOf, receiveWhatsapp, startMediaHost, uniquePhone, whatsappAccount } from './receivers/webhook-api.mjs';
import { localPartners } from './partners.mjs';
import { connectKustomer, connectedBusiness, kustomerOrg, krayinServer, settledLog, syncLog } from './crm/connectors.mjs';

const partners = localPartners();

describe('004, "Authentication Setup"', () => {
  test('"Test Authentication": GET /api-customers with only the key lists the customers, at the origin and under the guide’s /functions/v1', async () => {
    const { key: API_KEY } = await newBusiness();
    await sync(API_KEY, [{ name: 'Ann Guide', email: `${unique('ann')}@example.com` }]);
    // The guide's curl, as fetch sends it.
    const response = await fetch(`${BASE_URL}/api-customers`, {
      method: 'GET',
      headers: { 'x-api-key': API_KEY, 'Content-Type': 'application/json' },
    });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.customers.length, 1);
    assert.equal(body.customers[0].name, 'Ann Guide');
    assert.equal(body.has_more, false);
    assert.equal(body.next_cursor, null);

    const wrongKey = await fetch(`${BASE_URL}/api-customers`, { headers: { 'x-api-key': `${API_KEY}x` } });
    assert.equal(wrongKey.status, 401, 'a wrong key is told so');

    // The guide's BASE_URL ends in /functions/v1: the same API there, bodies and queries included.
    const GUIDE_BASE_URL = `${BASE_URL}/functions/v1`;
    const viaGuide = await fetch(`${GUIDE_BASE_URL}/api-customers?limit=10`, { headers: { 'x-api-key': API_KEY } });
    assert.equal(viaGuide.status, 200);
    assert.equal((await viaGuide.json()).customers[0].name, 'Ann Guide');
    const posted = await fetch(`${GUIDE_BASE_URL}/api-customers-sync`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify({ customers: [{ name: 'Bo Guide', email: `${unique('bo')}@example.com` }] }),
    });
    assert.equal(posted.status, 200);
    assert.equal((await posted.json()).results.created, 1);
  });

  test('the listing is newest first, a page at a time, never repeating or skipping a customer', async () => {
    const { key } = await newBusiness();
    const tag = unique('list');
    // 250 customers in three requests: each request's customers share their created_at.
    for (const [batch, count] of [[0, 100], [1, 100], [2, 50]]) {
      await bulkCreate(key, Array.from({ length: count }, (_, i) => ({
        name: `List ${batch}-${i}`,
        email: `${tag}-${batch}-${i}@example.com`,
        external_id: `${tag}-${batch}-${i}`,
        external_system: batch === 2 ? 'hubspot' : 'salesforce',
        tags: i % 10 === 0 ? ['vip'] : [],
      })));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const res = await api(key, 'GET', `/api-customers?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200, res.text);
      pages += 1;
      seen.push(...res.body.customers);
      assert.equal(res.body.has_more, res.body.next_cursor !== null, 'a cursor exactly when there is more');
      cursor = res.body.next_cursor;
    } while (cursor);
    assert.equal(pages, 3);
    assert.equal(seen.length, 250, 'every customer once');
    assert.equal(new Set(seen.map((c) => c.id)).size, 250, 'no customer twice');
    const stamps = seen.map((c) => c.created_at);
    assert.deepEqual(stamps, [...stamps].sort().reverse(), 'newest first');
    assert.match(seen[0].name, /^List 2-/, 'the last request’s customers come first');

    const vip = await api(key, 'GET', '/api-customers?tag=vip&limit=500');
    assert.equal(vip.body.customers.length, 25, vip.text.slice(0, 300));
    assert.ok(vip.body.customers.every((c) => c.tags.includes('vip')));
    const hubspot = await api(key, 'GET', '/api-customers?external_system=hubspot&limit=500');
    assert.equal(hubspot.body.customers.length, 50);
    const later = await api(key, 'GET', `/api-customers?updated_since=${encodeURIComponent(seen[0].updated_at)}`);
    assert.equal(later.body.customers.length, 0, 'nothing changed after the newest change');

    const bad = [
      ['?cursor=forged', 'cursor', 'a forged cursor'],
      ['?limit=0', 'limit', 'limit 0'],
      ['?limit=501', 'limit', 'limit 501'],
      ['?updated_since=yesterday', 'updated_since', 'prose as a time'],
      ['?name=John', 'name', 'a filter the listing does not have'],
    ];
    for (const [query, field, description] of bad) {
      const error = assertError(await api(key, 'GET', `/api-customers${query}`), 422, 'validation_failed', description);
      assert.equal(error.field, field, description);
    }
    const other = await newBusiness();
    const theirs = await api(other.key, 'GET', '/api-customers');
    assert.deepEqual(theirs.body.customers, [], 'another business lists only its own');
  });
});

describe('004, "Sending Messages from CRM"', () => {
  test('the guide’s sendMessageFromCRM, with a File made without a type, sends the receipt', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    await partners.whatsappOf(business);
    const phone = uniquePhone();
    await sync(business.key, [{ external_id: 'CRM-12345', name: 'Joe Bloggs', phone }]);
    const API_KEY = business.key;

    // The guide's function, unchanged.
    async function sendMessageFromCRM(crmCustomerId, channel, content, attachments = []) {
      // Step 1: Upload attachments (if any)
      const uploadedAttachments = [];
      for (const file of attachments) {
        const formData = new FormData();
        formData.append('file', file);

        const uploadResponse = await fetch(`${BASE_URL}/api-upload-attachment`, {
          method: 'POST',
          headers: { 'x-api-key': API_KEY },
          body: formData
        });

        const { attachment } = await uploadResponse.json();
        uploadedAttachments.push(attachment.file_url);
      }

      // Step 2: Send message
      const response = await fetch(`${BASE_URL}/api-send-message`, {
        method: 'POST',
        headers: {
          'x-api-key': API_KEY,
          'Content-Type': 'application/json'
        },
        body: JSON.stringify({
          customer_id: crmCustomerId, // Or use email/phone lookup
          channel: channel, // 'whatsapp', 'email', 'sms', 'facebook', 'instagram'
          content: content,
          attachments: uploadedAttachments
        })
      });

      const result = await response.json();
      console.log('Message sent:', result);
      return result;
    }

    // Usage, as the guide writes it.
    const result = await sendMessageFromCRM(
      'CRM-12345',
      'whatsapp',
      'Hi! Your order is ready for pickup.',
      [new File([''], 'receipt.pdf')]
    );
    assert.equal(result.success, true, JSON.stringify(result));
    assert.equal(result.message.attachments[0].type, 'application/pdf', 'the type was inferred from the name');
    await partners.meta.waitFor(phone.slice(1), 1);
    const [sent] = partners.meta.for(phone.slice(1)).map((r) => r.body);
    assert.equal(sent.type, 'document', JSON.stringify(sent));
    assert.equal(sent.document.filename, 'receipt.pdf');
    assert.equal(sent.document.caption, 'Hi! Your order is ready for pickup.');
    assert.equal(sent.to, phone.slice(1), 'to the customer the CRM named by its id');
  });

  test('a file without a type is known by its first bytes or its name; a refusal lists the accepted types', async () => {
    const { key } = await newBusiness();
    const upload = async (bytes, name) => {
      const form = new FormData();
      form.append('file', new File([bytes], name));
      const res = await fetch(`${BASE_URL}/api-upload-attachment`, { method: 'POST', headers: { 'x-api-key': key }, body: form });
      return { status: res.status, body: await res.json() };
    };
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const cases = [
      [png, 'photo', 'image/png'],
      [Buffer.from('%PDF-1.4\n%…'), 'scan.bin', 'application/pdf'],
      [Buffer.from('OggS\0\x02voice'), 'voice-note', 'audio/ogg'],
      [Buffer.from([0, 0, 0, 0x18, ...Buffer.from('ftypmp42')]), 'clip', 'video/mp4'],
      [Buffer.from('order,total\n1,20\n'), 'orders.csv', 'text/csv'],
      [Buffer.from('just some words\n'), 'notes', 'text/plain'],
    ];
    for (const [bytes, name, type] of cases) {
      const res = await upload(bytes, name);
      assert.equal(res.status, 201, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.attachment.type, type, name);
    }
    const exe = await upload(Buffer.from('MZ\x90\x00binary'), 'setup.exe');
    assert.equal(exe.status, 415);
    assert.equal(exe.body.error.field, 'file');
    assert.match(exe.body.error.message, /pdf/);
    assert.match(exe.body.error.message, /jpeg, png/);
    const liar = await upload(Buffer.from('MZ\x90\x00binary'), 'receipt.pdf');
    assert.equal(liar.status, 415, 'a name that lies about the content');
  });
});

describe('004, "Option B: Embed Iframe"', () => {
  test('the guide’s steps 1 and 2 give an inbox any CRM page may frame, with no setting', async () => {
    const business = await newBusiness();
    const API_KEY = business.key;
    const crmCustomerId = unique('CRM');
    await sync(API_KEY, [{ external_id: crmCustomerId, name: 'Joe Bloggs', email: `${unique('joe')}@example.com` }]);

    // Step 1: Get customer by external_id
    const customerResponse = await fetch(
      `${BASE_URL}/api-customers?external_id=${crmCustomerId}`,
      { headers: { 'x-api-key': API_KEY } }
    );
    const customer = await customerResponse.json();

    // Step 2: Generate SSO token
    const tokenResponse = await fetch(`${BASE_URL}/api-sso-generate-token`, {
      method: 'POST',
      headers: {
        'x-api-key': API_KEY,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({
        customer_id: customer.id,
        scope: 'inbox',
        expires_in: 3600 // 1 hour
      })
    });

    const { token } = await tokenResponse.json();

    // Step 3: the iframe's page.
    const page = await fetch(`${BASE_URL}/embed/inbox?token=${token}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /frame-ancestors \*$/, 'any site may frame it');
    assert.equal(page.headers.get('x-frame-options'), null, 'no header that would forbid framing');
  });
});

describe('004, "Bulk Import", "Real-time Sync on CRM Update" and "Option A: API Retrieval", as written', () => {
  test('the guide’s importCustomers, syncCustomerToChatPlatform and loadCustomerConversations run unchanged', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const API_KEY = business.key;
    const tag = unique('g');
    // A customer who wrote before the import, stored without an external_id: the import's
    // duplicate detection finds them by email.
    await sync(API_KEY, [{ name: 'Walk In', email: `walk-${tag}@example.com` }]);
    // The business's own CRM, which the guide's code reads from and shows in.
    const crmRecords = [
      { full_name: 'Ann Crm', email: `ann-${tag}@example.com`, phone: '087 111 0001', whatsapp: '+353871110001', crm_id: `SF-${tag}-1`, tags: ['vip'] },
      { full_name: 'Walk In', email: `walk-${tag}@example.com`, phone: null, whatsapp: null, crm_id: `SF-${tag}-2` },
    ];
    const fetchCustomersFromCRM = async () => crmRecords;
    const shown = {};
    const displayCustomer = (customer) => { shown.customer = customer; };
    const displayConversations = (conversations) => { shown.conversations = conversations; };
    const logged = [];
    const console = { log: (...args) => logged.push(args) };

    // The guide's functions, unchanged.
    async function importCustomers(customers) {
      const BATCH_SIZE = 1000;
      const results = { created: 0, updated: 0, failed: 0, errors: [] };
      
      for (let i = 0; i < customers.length; i += BATCH_SIZE) {
        const batch = customers.slice(i, i + BATCH_SIZE);
        
        // Add external_id for bidirectional sync
        const payload = batch.map(customer => ({
          name: customer.full_name,
          email: customer.email,
          phone: customer.phone,
          whatsapp_number: customer.whatsapp,
          external_id: customer.crm_id,
          external_system: 'salesforce', // or 'hubspot', 'custom', etc.
          tags: customer.tags || []
        }));
        
        const response = await fetch(`${BASE_URL}/api-customers-bulk-create`, {
          method: 'POST',
          headers: {
            'x-api-key': API_KEY,
            'Content-Type': 'application/json'
          },
          body: JSON.stringify({ customers: payload })
        });
        
        const result = await response.json();
        results.created += result.created;
        results.updated += result.updated;
        results.failed += result.failed;
        results.errors.push(...result.errors);
        
        console.log(`Batch ${i / BATCH_SIZE + 1}: ${result.created} created, ${result.updated} updated`);
      }
      
      return results;
    }

    // Trigger this when a contact is updated in your CRM
    async function syncCustomerToChatPlatform(crmContact) {
      const response = await fetch(`${BASE_URL}/api-customers-sync`, {
        method: 'POST',
        headers: {
          'x-api-key': API_KEY,
          'Content-Type': 'application/json'
        },
        body: JSON.stringify({
          customers: [{
            external_id: crmContact.id,
            name: `${crmContact.firstName} ${crmContact.lastName}`,
            email: crmContact.email,
            phone: crmContact.phone,
            custom_fields: {
              crm_status: crmContact.status,
              last_purchase: crmContact.lastPurchaseDate,
              lifetime_value: crmContact.ltv
            }
          }]
        })
      });
      
      const result = await response.json();
      console.log('Sync result:', result.results.details[0]);
    }

    async function loadCustomerConversations(crmCustomerId) {
      // Lookup by external_id (your CRM's customer ID)
      const response = await fetch(
        `${BASE_URL}/api-conversations-by-customer?` +
        `external_id=${crmCustomerId}&` +
        `include_messages=true&` +
        `include_attachments=true`,
        {
          headers: { 'x-api-key': API_KEY }
        }
      );
      
      const data = await response.json();
      
      // Display in your CRM UI
      displayCustomer(data.customer);
      displayConversations(data.conversations); // All channels included
      
      return data;
    }

    // Usage (the guide's)
    const customers = await fetchCustomersFromCRM();
    const results = await importCustomers(customers);
    console.log('Import complete:', results);
    assert.deepEqual(results, { created: 1, updated: 1, failed: 0, errors: [] }, JSON.stringify(logged));
    assert.deepEqual(logged[0], ['Batch 1: 1 created, 1 updated']);
    const walkIn = await api(API_KEY, 'GET', `/api-customers?email=${encodeURIComponent(`walk-${tag}@example.com`)}`);
    assert.equal(walkIn.body.external_id, `SF-${tag}-2`, 'the customer who wrote first took the CRM’s id');
    assert.equal(walkIn.body.external_system, 'salesforce');

    await syncCustomerToChatPlatform({
      id: `SF-${tag}-1`, firstName: 'Ann', lastName: 'Crm-Lee', email: `ann-${tag}@example.com`, phone: '+353871110001',
      status: 'customer', lastPurchaseDate: '2026-11-01', ltv: 1250,
    });
    const [, detail] = logged.find(([label]) => label === 'Sync result:');
    assert.equal(detail.action, 'updated', JSON.stringify(detail));
    assert.equal(detail.matched_by, 'external_id');

    const data = await loadCustomerConversations(`SF-${tag}-1`);
    assert.equal(shown.customer.name, 'Ann Crm-Lee', 'the CRM shows the synced name');
    assert.deepEqual(shown.customer.custom_fields, { crm_status: 'customer', last_purchase: '2026-11-01', lifetime_value: 1250 });
    assert.deepEqual(shown.customer.tags, ['vip']);
    assert.deepEqual(shown.conversations, [], 'no conversation yet, all channels included');
    assert.equal(data.customer.id, detail.customer_id);
  });
});

describe('004, "Polling (Alternative)", as written', () => {
  test('the guide’s pollForNewMessages picks up an inbound message from where it last looked', async () => {
    const business = await newBusiness();
    const API_KEY = business.key;
    const whatsapp = await partners.whatsappOf(business);
    // The business's CRM, and the timer the guide starts (held here, not left running).
    const processed = [];
    const processIncomingMessage = (message) => processed.push(message);
    const timers = [];
    const setInterval = (callback, ms) => timers.push({ callback, ms });

    // The guide's code, unchanged.
    let lastCheckTimestamp = new Date().toISOString();

    async function pollForNewMessages() {
      const response = await fetch(
        `${BASE_URL}/api-messages-since?` +
        `since=${encodeURIComponent(lastCheckTimestamp)}&` +
        `include_attachments=true&` +
        `limit=100`,
        {
          headers: { 'x-api-key': API_KEY }
        }
      );
      
      const { messages, has_more } = await response.json();
      
      // Process new messages
      for (const message of messages) {
        if (message.direction === 'inbound') {
          processIncomingMessage(message);
        }
      }
      
      // Update timestamp for next poll
      if (messages.length > 0) {
        lastCheckTimestamp = messages[messages.length - 1].created_at;
      }
      
      return { count: messages.length, has_more };
    }

    // Poll every 30 seconds
    setInterval(pollForNewMessages, 30000);

    assert.deepEqual(timers.map((timer) => timer.ms), [30000]);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'Is my order ready?' });
    const first = await pollForNewMessages();
    assert.deepEqual(first, { count: 1, has_more: false });
    assert.deepEqual(processed.map((message) => message.content), ['Is my order ready?']);
    const again = await timers[0].callback();
    assert.equal(again.count, 0, `the next poll starts after what it saw: ${JSON.stringify(again)}`);
    assert.equal(processed.length, 1, 'nothing processed twice');
  });
});

describe('004, "Complete Integration Example: Salesforce Integration" and "Security: Signature Verification", as written', () => {
  test('the guide’s class imports the contacts, takes our signed webhooks (verifyWebhook agrees) and shows the WhatsApp conversation', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const endpoint = partners.receiver.endpoint();
    const { secret } = await businessWithEndpoint(endpoint, { events: ['message.received', 'conversation.created'] }, business);
    const whatsapp = await partners.whatsappOf(business);
    // What the guide's code takes from Node and its environment.
    const require = createRequire(import.meta.url);
    const process = { env: { ALACARTE_API_KEY: business.key, ALACARTE_WEBHOOK_SECRET: secret, WEBHOOK_SECRET: secret } };

    // 004's "Security: Signature Verification", unchanged.
    const crypto = require('crypto');

    function verifyWebhook(req) {
      const signature = req.headers['x-webhook-signature'];
      const timestamp = req.headers['x-webhook-timestamp'];
      const payload = JSON.stringify(req.body);
      const secret = process.env.WEBHOOK_SECRET; // From Business Settings
      
      // Verify timestamp (prevent replay attacks)
      const now = Math.floor(Date.now() / 1000);
      if (Math.abs(now - parseInt(timestamp)) > 300) {
        throw new Error('Webhook timestamp too old');
      }
      
      // Verify signature
      const expectedSignature = crypto
        .createHmac('sha256', secret)
        .update(`${timestamp}.${payload}`)
        .digest('hex');
        
      return crypto.timingSafeEqual(
        Buffer.from(signature),
        Buffer.from(expectedSignature)
      );
    }

    // The guide's class, unchanged but for its base URL (ours, with the guide's /functions/v1).
    class AlacarteChatSalesforceIntegration {
      constructor(apiKey, webhookSecret) {
        this.apiKey = apiKey;
        this.webhookSecret = webhookSecret;
        this.baseUrl = `${BASE_URL}/functions/v1`;
      }
      
      // Sync all Salesforce contacts to AlaCarte
      async syncContacts() {
        const contacts = await this.fetchSalesforceContacts();
        const batches = this.chunkArray(contacts, 1000);
        
        for (const batch of batches) {
          const payload = batch.map(contact => ({
            name: contact.Name,
            email: contact.Email,
            phone: contact.Phone,
            external_id: contact.Id,
            external_system: 'salesforce'
          }));
          
          await this.bulkCreateCustomers(payload);
        }
      }
      
      // Display customer communication in Salesforce
      async loadCustomerView(salesforceContactId) {
        const data = await this.getConversationsByCustomer(salesforceContactId);
        
        // Render in Salesforce Lightning Component
        return {
          customer: data.customer,
          conversations: data.conversations.map(conv => ({
            id: conv.id,
            channel: conv.whatsapp_account_id ? 'WhatsApp' : 'Other',
            messageCount: conv.messages?.length || 0,
            lastMessage: conv.last_message_at,
            status: conv.status
          }))
        };
      }
      
      // Handle webhook from AlaCarte
      handleWebhook(req) {
        const signature = req.headers['x-webhook-signature'];
        const timestamp = req.headers['x-webhook-timestamp'];
        
        if (!this.verifyWebhookSignature(req.body, timestamp, signature)) {
          throw new Error('Invalid webhook signature');
        }
        
        const { event, data } = req.body;
        
        switch (event) {
          case 'message.received':
            this.createSalesforceTask(data);
            break;
          case 'conversation.created':
            this.createSalesforceCase(data);
            break;
        }
      }
      
      // Helper methods
      async bulkCreateCustomers(customers) {
        const response = await fetch(`${this.baseUrl}/api-customers-bulk-create`, {
          method: 'POST',
          headers: {
            'x-api-key': this.apiKey,
            'Content-Type': 'application/json'
          },
          body: JSON.stringify({ customers })
        });
        return response.json();
      }
      
      async getConversationsByCustomer(externalId) {
        const response = await fetch(
          `${this.baseUrl}/api-conversations-by-customer?external_id=${externalId}&include_messages=true`,
          { headers: { 'x-api-key': this.apiKey } }
        );
        return response.json();
      }
      
      verifyWebhookSignature(body, timestamp, signature) {
        const crypto = require('crypto');
        const payload = `${timestamp}.${JSON.stringify(body)}`;
        const expected = crypto
          .createHmac('sha256', this.webhookSecret)
          .update(payload)
          .digest('hex');
        return signature === expected;
      }
      
      chunkArray(array, size) {
        const chunks = [];
        for (let i = 0; i < array.length; i += size) {
          chunks.push(array.slice(i, i + size));
        }
        return chunks;
      }
    }

    // Salesforce's side, which the guide leaves to the business: its contacts, tasks and cases.
    const from = uniquePhone();
    const contactId = unique('003');
    const tasks = [];
    const cases = [];
    class InSalesforce extends AlacarteChatSalesforceIntegration {
      async fetchSalesforceContacts() {
        return [{ Id: contactId, Name: 'Joe Bloggs', Email: `${contactId}@example.com`, Phone: from }];
      }
      createSalesforceTask(data) { tasks.push(data); }
      createSalesforceCase(data) { cases.push(data); }
    }

    // Usage (the guide's)
    const integration = new InSalesforce(
      process.env.ALACARTE_API_KEY,
      process.env.ALACARTE_WEBHOOK_SECRET
    );

    // Initial sync
    await integration.syncContacts();

    await receiveWhatsapp(whatsapp, { from, text: 'Where is my order?' });
    await endpoint.waitFor((list) => list.length >= 2, 30_000);
    for (const request of endpoint.requests) {
      assert.equal(verifyWebhook({ headers: request.headers, body: request.body }), true, `${request.event} verifies`);
      integration.handleWebhook({ headers: request.headers, body: request.body });
    }
    assert.deepEqual(cases.map((data) => data.customer.external_id), [contactId], 'one case, for the contact');
    assert.deepEqual(tasks.map((data) => data.content), ['Where is my order?'], 'one task, with the message');

    // In Salesforce Lightning Component
    const customerData = await integration.loadCustomerView(contactId);
    assert.equal(customerData.customer.external_id, contactId);
    assert.deepEqual(
      customerData.conversations.map(({ channel, messageCount, status }) => ({ channel, messageCount, status })),
      [{ channel: 'WhatsApp', messageCount: 1, status: 'open' }],
    );
  });
});

describe('002, Krayin "Quick Setup"', () => {
  test('"Enter your API URL: https://your-krayin.com/api/admin" connects, and the connector shows Krayin’s address', async () => {
    const business = await newBusiness();
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    const given = [
      ['api_url', `${server.krayin.origin}/api/admin`],
      ['base_url', `${server.krayin.origin}/api/admin/`],
      ['base_url', `${server.krayin.origin}/api/v1`],
      ['api_url', server.krayin.origin],
    ];
    for (const [name, url] of given) {
      const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
        kind: 'krayin',
        name: unique('Krayin'),
        settings: { [name]: url },
        secrets: { api_token: server.apiToken },
      });
      assert.equal(res.status, 201, `${name} ${url}: ${res.text}`);
      assert.equal(res.body.settings.base_url.replace(/\/$/, ''), server.krayin.origin, `${url} is kept as Krayin's address`);
      assert.equal(res.body.settings.api_url, undefined, 'one name is kept');
      const tested = await admin('POST', `/admin/connectors/${res.body.id}/test`);
      assert.equal(tested.body.ok, true, `the connection works: ${tested.text}`);
    }
    const connector = (await admin('GET', `/admin/businesses/${business.id}/connectors`)).body.connectors[0];
    const moved = await admin('PATCH', `/admin/connectors/${connector.id}`, { settings: { api_url: `${server.krayin.origin}/api/admin` } });
    assert.equal(moved.status, 200, `a PATCH may use the guide's name too: ${moved.text}`);
    const wrong = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      settings: { api_url: `${server.krayin.origin}/api/admin/leads` },
      secrets: { api_token: server.apiToken },
    });
    const error = assertError(wrong, 422, 'validation_failed', 'a path that is not the API');
    assert.equal(error.field, 'settings.api_url');
    assert.match(error.message, /api\/admin/);
  });

  test('the sync options default to off, as the guide’s tables say: contacts only until the business turns them on', async () => {
    const business = await newBusiness();
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    const res = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      settings: { api_url: `${server.krayin.origin}/api/admin` },
      secrets: { api_token: server.apiToken },
      rate_limit: { per_minute: null, per_second: null, per_day: null },
    });
    assert.equal(res.status, 201, res.text);
    const { settings } = res.body;
    assert.deepEqual(
      [settings.sync_conversations, settings.sync_messages, settings.sync_organizations, settings.stage_progression],
      [false, false, false, false],
    );
    const whatsapp = await partners.whatsappOf(business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'Hello Krayin' });
    const log = await settledLog(res.body.id, 3);
    assert.equal(server.krayin.persons.length, 1, 'the contact is synced');
    assert.equal(server.krayin.activities.length, 0, 'no conversation or message activity');
    assert.deepEqual(
      log.filter((e) => e.status === 'skipped').map((e) => e.last_error).sort(),
      ['Sync Conversations is off', 'Sync Messages is off'],
    );
  });
});

describe('every connector’s customers carry their CRM ids', () => {
  test('a customer the Kustomer connector put in Kustomer shows its Kustomer id in crm_ids', async () => {
    const setup = await connectedBusiness();
    partners.closeAfter(setup.kustomer);
    const [created] = (await sync(setup.business.key, [{ name: 'Kim Kustomer', email: `${unique('kim')}@example.com` }])).results.details;
    await settledLog(setup.connector.id, 1);
    const [inKustomer] = setup.kustomer.customers;
    const expected = [{ connector_id: setup.connector.id, kind: 'kustomer', external_id: `kustomer:customer:${inKustomer.id}` }];
    const shown = await api(setup.business.key, 'GET', `/api-customers?id=${created.customer_id}`);
    assert.equal(shown.status, 200, shown.text);
    assert.deepEqual(shown.body.crm_ids, expected);
    const listed = await api(setup.business.key, 'GET', '/api-customers');
    assert.deepEqual(listed.body.customers[0].crm_ids, expected, 'the listing shows them too');
  });
});

describe('conversations reopen when the customer writes again', () => {
  test('a resolved conversation is reopened by the customer’s message: one conversation, an event, the CRMs follow', async () => {
    const setup = await connectedBusiness();
    partners.closeAfter(setup.kustomer);
    const endpoint = partners.receiver.endpoint();
    await businessWithEndpoint(endpoint, {}, setup.business);
    const whatsapp = await partners.whatsappOf(setup.business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'My parcel is late' });
    await endpoint.waitFor((list) => list.some((r) => r.event === 'conversation.created'));
    const conversationId = endpoint.events('conversation.created')[0].body.data.conversation.id;
    const resolved = await api(setup.business.key, 'PATCH', `/api-conversations/${conversationId}`, { status: 'resolved' });
    assert.equal(resolved.status, 200, resolved.text);
    await waitFor(() => setup.kustomer.conversations[0]?.attributes.status === 'done', 20_000, 'Kustomer resolved it');

    await receiveWhatsapp(whatsapp, { from, text: 'It still has not come' });
    await endpoint.waitFor((list) => list.filter((r) => r.event === 'conversation.status_changed').length === 2);
    const reopened = endpoint.events('conversation.status_changed').at(-1).body.data;
    assert.equal(reopened.conversation.id, conversationId, 'the same conversation');
    assert.equal(reopened.conversation.status, 'open');
    assert.equal(reopened.conversation.reopen_count, 1);
    assert.equal(reopened.previous_status, 'resolved');
    assert.equal(reopened.reopened_by, 'customer_message');
    assert.equal(endpoint.events('conversation.created').length, 1, 'no second conversation');

    const history = await api(setup.business.key, 'GET', `/api-conversations-by-customer?customer_id=${reopened.conversation.customer_id}`);
    assert.equal(history.body.conversations.length, 1, history.text);
    assert.equal(history.body.conversations[0].status, 'open');
    await waitFor(() => setup.kustomer.conversations[0]?.attributes.status === 'open', 20_000, 'Kustomer reopened it');
    assert.equal(setup.kustomer.conversations.length, 1, 'the Kustomer conversation is reopened, not replaced');

    const analytics = await api(setup.business.key, 'GET', '/api-crm-analytics');
    assert.deepEqual(analytics.body.reopened, { count: 1, rate: 1 }, analytics.text);
  });

  test('Krayin gets a new conversation activity for the reopened spell', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const server = await krayinServer();
    partners.closeAfter(server.krayin);
    const created = await admin('POST', `/admin/businesses/${business.id}/connectors`, {
      kind: 'krayin',
      settings: { base_url: server.krayin.origin, sync_conversations: true },
      secrets: { api_token: server.apiToken },
      rate_limit: { per_minute: null, per_second: null, per_day: null },
    });
    assert.equal(created.status, 201, created.text);
    const whatsapp = await partners.whatsappOf(business);
    const from = uniquePhone();
    await receiveWhatsapp(whatsapp, { from, text: 'First question' });
    await waitFor(() => server.krayin.activities.length === 1, 20_000, 'the first activity');
    const [first] = await messagesOf(business.key);
    const conversationId = first.conversation_id;
    assert.equal((await api(business.key, 'PATCH', `/api-conversations/${conversationId}`, { status: 'resolved' })).status, 200);
    await waitFor(() => server.krayin.activities[0].is_done === 1, 20_000, 'the activity done');
    await receiveWhatsapp(whatsapp, { from, text: 'Second question' });
    await waitFor(() => server.krayin.activities.length === 2, 20_000, 'a second activity');
    const [, second] = server.krayin.activities;
    assert.equal(second.is_done, 0, 'the new spell is open');
    assert.match(second.comment, /Reopened by the customer \(1 time\)/);
  });
});

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

// 004's second Express handler's message function, as the guide writes it; createCRMActivity is the
// business's own CRM, which the test provides.
const crmActivities = [];
function createCRMActivity(activity) {
  crmActivities.push(activity);
}
function handleIncomingMessage(data) {
  // Update CRM with new message
  // data contains: message_id, customer_id, external_id, content, channel, etc.
  console.log(`New message from ${data.customer.name}: ${data.content}`);
  
  // Create activity in CRM
  createCRMActivity({
    type: 'chat_message',
    customer_id: data.customer.external_id,
    subject: `Message via ${data.channel}`,
    description: data.content,
    timestamp: data.created_at
  });
}

describe('004, "Webhook Payload Structure"', () => {
  test('the guide’s handleIncomingMessage reads content, channel and created_at; each attachment carries url and download_url, both links that download the file', async () => {
    const business = await newBusiness({ default_country: 'IE' });
    const media = await startMediaHost();
    partners.closeAfter(media);
    const whatsapp = await whatsappAccount(business, media.url);
    const endpoint = partners.receiver.endpoint();
    await businessWithEndpoint(endpoint, { events: ['message.received'] }, business);
    await receiveWhatsapp(whatsapp, { from: uniquePhone(), text: 'see photo', mediaId: `m${Date.now()}` });
    await endpoint.waitFor((list) => list.length >= 1, 30_000);
    const { data } = endpoint.requests[0].body;
    handleIncomingMessage(data);
    assert.deepEqual(crmActivities, [
      {
        type: 'chat_message',
        customer_id: data.customer.external_id,
        subject: 'Message via whatsapp',
        description: 'see photo',
        timestamp: data.message.created_at,
      },
    ]);
    assert.match(data.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const [attachment] = data.attachments;
    assert.ok(attachment.url && attachment.download_url, JSON.stringify(attachment));
    for (const link of [attachment.url, attachment.download_url]) {
      const file = await fetch(link);
      assert.equal(file.status, 200, link);
      assert.deepEqual(Buffer.from(await file.arrayBuffer()), media.image, 'the file itself, without an API key');
    }
  });
});

describe('migrations', () => {
  test('no two migrations share a number', async () => {
    const { readdirSync } = await import('node:fs');
    const names = readdirSync(new URL('../../migrations/', import.meta.url)).filter((name) => name.endsWith('.sql'));
    const numbers = names.map((name) => name.slice(0, 4));
    assert.equal(new Set(numbers).size, numbers.length, names.join(', '));
  });
});
