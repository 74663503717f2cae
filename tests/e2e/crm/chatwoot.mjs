// Chatwoot's outbound webhooks, for the end-to-end tests of our Krayin connector: builders of the
// payloads Chatwoot (v4) posts for `contact_created`, `contact_updated`, `conversation_created`,
// `conversation_updated`, `conversation_status_changed` and `message_created`, and a signer and
// sender that deliver them as Chatwoot does.
//
// Shapes, as Chatwoot builds them: the payload is the record's `webhook_data` merged with `event`
// (and `changed_attributes` for updates, a list of `{attribute: {previous_value, current_value}}`).
// A contact is `{account, additional_attributes, avatar, custom_attributes, email, id, identifier,
// name, phone_number, thumbnail, blocked}`. A conversation is its push data: `id` is the display id
// (the number agents see, per account), `channel` the inbox's channel class (`Channel::Email`,
// `Channel::TwilioSms`, `Channel::Whatsapp`, `Channel::WebWidget`, `Channel::Api`, …), `meta:
// {sender, assignee, team, hmac_verified}`, times as Unix seconds. A message has `message_type`
// `incoming` | `outgoing` | `activity` | `template`, `private`, `sender` (a contact's or a user's
// webhook data), `conversation` (the conversation's push data), `inbox: {id, name}`, `account:
// {id, name}` and `created_at` as an ISO 8601 time.
//
// Delivery: a POST of the JSON as Rails encodes it (`<`, `>`, `&`, U+2028 and U+2029 escaped as
// \uXXXX) with `Content-Type: application/json`, `Accept: application/json`, `X-Chatwoot-Delivery:
// <uuid>` (kept across retries), `X-Chatwoot-Timestamp: <Unix seconds>` and, when the webhook has a
// secret, `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`.

import { createHmac, randomUUID } from 'node:crypto';

/** The channel classes of Chatwoot's inboxes, by the name our tests use. */
export const CHANNELS = Object.freeze({
  email: 'Channel::Email',
  sms: 'Channel::Sms',
  twilio_sms: 'Channel::TwilioSms',
  whatsapp: 'Channel::Whatsapp',
  web: 'Channel::WebWidget',
  api: 'Channel::Api',
  facebook: 'Channel::FacebookPage',
  instagram: 'Channel::Instagram',
  telegram: 'Channel::Telegram',
  line: 'Channel::Line',
});

export const MESSAGE_TYPES = Object.freeze(['incoming', 'outgoing', 'activity', 'template']);
export const CONVERSATION_STATUSES = Object.freeze(['open', 'resolved', 'pending', 'snoozed']);
export const EVENTS = Object.freeze([
  'contact_created',
  'contact_updated',
  'conversation_created',
  'conversation_updated',
  'conversation_status_changed',
  'message_created',
]);

export const DEFAULT_ACCOUNT = Object.freeze({ id: 1, name: 'Acme Support' });
export const DEFAULT_AGENT = Object.freeze({ id: 3, name: 'Priya Raman', email: 'priya@acme.example' });

/** Inboxes a test can pick by channel name; ids as a fresh account would have them. */
export const INBOXES = Object.freeze({
  web: { id: 1, name: 'Website', channel: 'web' },
  email: { id: 2, name: 'Support Email', channel: 'email' },
  whatsapp: { id: 3, name: 'WhatsApp', channel: 'whatsapp' },
  sms: { id: 4, name: 'SMS', channel: 'twilio_sms' },
  api: { id: 5, name: 'API', channel: 'api' },
});

const unix = (date) => Math.floor(new Date(date).getTime() / 1000);
/** Rails encodes times in JSON as ISO 8601 with milliseconds, in UTC for Chatwoot. */
const railsTime = (date) => new Date(date).toISOString();

/**
 * A contact as Chatwoot's `webhook_data` has it. `fields`: `{ id, name, email, phone_number,
 * identifier, additional_attributes, custom_attributes, blocked, account, avatar }`. The seed's
 * CRM fields go in `additional_attributes`: `job_title`, `company_name`, `company_address`,
 * `company_city`, `company_state`, `company_country`, `company_zipcode`, `lead_value`.
 */
export function contact(fields = {}) {
  const avatar = fields.avatar ?? '';
  return {
    account: { ...(fields.account ?? DEFAULT_ACCOUNT) },
    additional_attributes: { ...(fields.additional_attributes ?? {}) },
    avatar,
    custom_attributes: { ...(fields.custom_attributes ?? {}) },
    email: fields.email === undefined ? null : fields.email?.toLowerCase() ?? null,
    id: fields.id ?? 101,
    identifier: fields.identifier ?? null,
    name: fields.name ?? 'Jane Doe',
    phone_number: fields.phone_number ?? null,
    thumbnail: avatar,
    blocked: fields.blocked ?? false,
  };
}

/** The contact as a conversation's `meta.sender` carries it (its push data). */
function contactPushData(c) {
  return {
    additional_attributes: c.additional_attributes,
    custom_attributes: c.custom_attributes,
    email: c.email,
    id: c.id,
    identifier: c.identifier,
    name: c.name,
    phone_number: c.phone_number,
    thumbnail: c.thumbnail,
    blocked: c.blocked,
    type: 'contact',
  };
}

/** An agent as a message's `sender` (webhook data) has it. */
export function agent(fields = {}) {
  return { id: fields.id ?? DEFAULT_AGENT.id, name: fields.name ?? DEFAULT_AGENT.name, email: fields.email ?? DEFAULT_AGENT.email, type: 'user' };
}

/** An agent as a conversation's `meta.assignee` (push data) has it. */
function agentPushData(a) {
  return { id: a.id, name: a.name, available_name: a.name, avatar_url: '', type: 'user', availability_status: 'online', thumbnail: '' };
}

function inboxOf(inbox) {
  if (typeof inbox === 'string') {
    const known = INBOXES[inbox];
    if (!known) throw new Error(`chatwoot: no inbox named ${inbox} (one of ${Object.keys(INBOXES).join(', ')})`);
    return known;
  }
  return inbox ?? INBOXES.web;
}

function channelClass(name) {
  return CHANNELS[name] ?? name;
}

/**
 * A conversation as Chatwoot's push data has it. `fields`: `{ id (display id), db_id, inbox
 * (name from INBOXES or {id, name, channel}), contact (from contact()), assignee (from agent()),
 * team: {id, name}, status, labels, custom_attributes, additional_attributes, priority,
 * created_at, last_activity_at, messages, source_id, account }`.
 */
export function conversation(fields = {}) {
  const inbox = inboxOf(fields.inbox);
  const who = fields.contact ?? contact();
  const account = fields.account ?? who.account ?? DEFAULT_ACCOUNT;
  const createdAt = fields.created_at ?? new Date();
  const lastActivityAt = fields.last_activity_at ?? createdAt;
  const channel = channelClass(inbox.channel);
  const status = fields.status ?? 'open';
  if (!CONVERSATION_STATUSES.includes(status)) throw new Error(`chatwoot: conversation status must be one of ${CONVERSATION_STATUSES.join(', ')}`);
  const sourceId = fields.source_id ?? defaultSourceId(channel, who);
  return {
    additional_attributes: { ...(fields.additional_attributes ?? defaultConversationAttributes(channel)) },
    can_reply: true,
    channel,
    contact_inbox: {
      id: fields.contact_inbox_id ?? 201,
      contact_id: who.id,
      inbox_id: inbox.id,
      source_id: sourceId,
      created_at: railsTime(createdAt),
      updated_at: railsTime(createdAt),
      hmac_verified: false,
      pubsub_token: 'pQw8sWk2yJ3nYbT7rVfL1mZc',
    },
    id: fields.id ?? 42,
    inbox_id: inbox.id,
    messages: fields.messages ?? [],
    labels: fields.labels ?? [],
    meta: {
      sender: contactPushData(who),
      assignee: fields.assignee ? agentPushData(fields.assignee) : null,
      team: fields.team ? { id: fields.team.id, name: fields.team.name } : null,
      hmac_verified: false,
    },
    status,
    custom_attributes: { ...(fields.custom_attributes ?? {}) },
    snoozed_until: null,
    unread_count: fields.unread_count ?? 0,
    first_reply_created_at: fields.first_reply_created_at ?? null,
    priority: fields.priority ?? null,
    waiting_since: fields.waiting_since ?? 0,
    agent_last_seen_at: 0,
    contact_last_seen_at: 0,
    last_activity_at: unix(lastActivityAt),
    timestamp: unix(lastActivityAt),
    created_at: unix(createdAt),
    updated_at: new Date(lastActivityAt).getTime() / 1000,
    account_id: account.id,
  };
}

function defaultSourceId(channel, who) {
  if (channel === CHANNELS.email) return who.email ?? 'jane@example.com';
  if (channel === CHANNELS.whatsapp) return (who.phone_number ?? '+14155550123').replace(/^\+/, '');
  if (channel === CHANNELS.twilio_sms || channel === CHANNELS.sms) return who.phone_number ?? '+14155550123';
  return '0c7bd4a5-5b6f-4d2e-9f8a-3e1c2b7d9a10';
}

function defaultConversationAttributes(channel) {
  if (channel === CHANNELS.email) return { mail_subject: 'Question about pricing' };
  if (channel === CHANNELS.web) {
    return {
      browser: { device_name: 'Unknown', browser_name: 'Chrome', platform_name: 'macOS', browser_version: '131.0.0.0', platform_version: '10.15.7' },
      referer: 'https://acme.example/pricing',
      initiated_at: { timestamp: 'Mon Nov 23 2026 12:00:00 GMT+0000 (Coordinated Universal Time)' },
      browser_language: 'en',
    };
  }
  return {};
}

/**
 * A message as Chatwoot's `webhook_data` has it. `fields`: `{ id, content, message_type,
 * private, conversation (from conversation()), sender (a contact() for incoming, an agent()
 * for outgoing; defaults follow message_type), content_type, content_attributes,
 * additional_attributes, source_id, attachments, created_at }`.
 */
export function message(fields = {}) {
  const messageType = fields.message_type ?? 'incoming';
  if (!MESSAGE_TYPES.includes(messageType)) throw new Error(`chatwoot: message_type must be one of ${MESSAGE_TYPES.join(', ')}`);
  const conv = fields.conversation ?? conversation();
  const inbox = Object.values(INBOXES).find((i) => i.id === conv.inbox_id) ?? { id: conv.inbox_id, name: 'Inbox' };
  const account = fields.account ?? DEFAULT_ACCOUNT;
  let sender = fields.sender;
  if (sender === undefined) {
    if (messageType === 'incoming') sender = contactFromPush(conv.meta.sender, account);
    else if (messageType === 'outgoing' || fields.private) sender = agent();
    else sender = null;
  }
  const data = {
    account: { id: account.id, name: account.name },
    additional_attributes: { ...(fields.additional_attributes ?? {}) },
    content_attributes: { ...(fields.content_attributes ?? {}) },
    content_type: fields.content_type ?? 'text',
    content: fields.content ?? 'Hello, I would like a quote.',
    conversation: conv,
    created_at: railsTime(fields.created_at ?? new Date()),
    id: fields.id ?? 1001,
    inbox: { id: inbox.id, name: inbox.name },
    message_type: messageType,
    private: fields.private ?? false,
    sender,
    source_id: fields.source_id ?? null,
  };
  if (fields.attachments?.length) data.attachments = fields.attachments;
  return data;
}

function contactFromPush(push, account) {
  return contact({ ...push, account });
}

/** `changes`: `{ attribute: [previous, current] }` → Chatwoot's `changed_attributes` list. */
export function changedAttributes(changes) {
  return Object.entries(changes).map(([key, [previous, current]]) => ({ [key]: { previous_value: previous, current_value: current } }));
}

export const contactCreated = (c = contact()) => ({ ...c, event: 'contact_created' });
/** Chatwoot sends no contact_updated without a change. */
export function contactUpdated(c, changes) {
  if (!changes || Object.keys(changes).length === 0) throw new Error('chatwoot: contact_updated needs at least one change');
  return { ...c, event: 'contact_updated', changed_attributes: changedAttributes(changes) };
}
export const conversationCreated = (conv = conversation()) => ({ ...conv, event: 'conversation_created' });
export const conversationUpdated = (conv, changes = {}) => ({ ...conv, event: 'conversation_updated', changed_attributes: changedAttributes(changes) });
/** `conv.status` is the new status; the change is derived from `previous`. */
export function conversationStatusChanged(conv, previous = 'open') {
  return { ...conv, event: 'conversation_status_changed', changed_attributes: changedAttributes({ status: [previous, conv.status] }) };
}
export const messageCreated = (m = message()) => ({ ...m, event: 'message_created' });

/** JSON as Rails' `to_json` writes it: compact, with HTML-significant characters escaped. */
export function railsJson(value) {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The value of `X-Chatwoot-Signature` for `rawBody` sent at `timestamp` (Unix seconds). */
export function signChatwoot(secret, timestamp, rawBody) {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

/**
 * A delivery as Chatwoot makes it: `{ headers, body }`, `body` being the raw text the signature
 * covers. `secret` null sends no signature (a webhook without a secret). Options: `timestamp`
 * (Unix seconds, default now), `delivery` (uuid, default random; reuse it to replay a retry).
 */
export function chatwootWebhook(secret, payload, { timestamp, delivery } = {}) {
  const body = typeof payload === 'string' ? payload : railsJson(payload);
  const ts = String(timestamp ?? Math.floor(Date.now() / 1000));
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
    'X-Chatwoot-Delivery': delivery ?? randomUUID(),
    'X-Chatwoot-Timestamp': ts,
  };
  if (secret !== null && secret !== undefined) headers['X-Chatwoot-Signature'] = signChatwoot(secret, ts, body);
  return { headers, body };
}

/** POSTs `chatwootWebhook(secret, payload, opts)` to `url`: `{ status, body, headers, delivery }`. */
export async function deliver(url, secret, payload, opts = {}) {
  const { headers, body } = chatwootWebhook(secret, payload, opts);
  const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: the raw text is the body.
  }
  return { status: response.status, body: parsed, headers: response.headers, delivery: headers['X-Chatwoot-Delivery'] };
}
