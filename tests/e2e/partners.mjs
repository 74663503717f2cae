// The partners a file of end-to-end tests talks to throughout: a local Meta (the Graph API a
// WhatsApp account sends through) and a webhook receiver, started before the file's tests and
// closed after them with every server a test adds.

import { after, before } from 'node:test';
import { GRAPH_VERSION, startMeta } from './providers/meta.mjs';
import { startWebhookReceiver } from './receivers/webhook-receiver.mjs';
import { metaAccount, whatsappAccount } from './receivers/webhook-api.mjs';

/**
 * Registers the file's `before` and `after`. `meta` and `receiver` are set once `before` has
 * run; `closeAfter(server)` closes a test's own server with them; `whatsappOf(business)` makes a
 * WhatsApp account of `business` that sends through the local Meta, which accepts its token, and
 * `pageOf(business)` a Facebook page that does.
 */
export function localPartners() {
  const servers = [];
  const accessTokens = new Map();
  const partners = {
    meta: undefined,
    receiver: undefined,
    closeAfter(server) {
      servers.push(server);
      return server;
    },
    async whatsappOf(business) {
      const whatsapp = await whatsappAccount(business, `${partners.meta.url}/${GRAPH_VERSION}`);
      accessTokens.set(whatsapp.address, whatsapp.secrets.access_token);
      return whatsapp;
    },
    /** A Facebook page of `business` whose messages and replies go through the local Meta. */
    async pageOf(business) {
      const page = await metaAccount(business, 'facebook', `${partners.meta.url}/${GRAPH_VERSION}`);
      accessTokens.set(page.address, page.secrets.access_token);
      return page;
    },
  };
  before(async () => {
    [partners.meta, partners.receiver] = await Promise.all([startMeta(accessTokens), startWebhookReceiver()]);
    servers.push(partners.meta, partners.receiver);
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });
  return partners;
}
