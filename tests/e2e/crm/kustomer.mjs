// Kustomer's REST API (v1) as a local server on 127.0.0.1 and a random port, for the end-to-end
// tests of our Kustomer connector. It speaks the paths our client calls:
//
//   GET   /v1/users/current                      the API key's machine user and its org
//   GET   /v1/auth/tokens/current                the API key itself: its roles, and `expireAt` if it expires
//   GET   /v1/customers/email={email}            (email URL-encoded in the segment)
//   GET   /v1/customers/externalId={externalId}
//   GET   /v1/customers/{id}        PUT /v1/customers/{id}        POST /v1/customers
//   DELETE /v1/customers/{id}       (204; the customer's conversations, messages and notes with it)
//   GET   /v1/customers/{id}/conversations       (paginated)
//   POST  /v1/conversations         GET, PATCH /v1/conversations/{id}
//   POST, GET /v1/conversations/{id}/messages    POST, GET /v1/conversations/{id}/notes
//   GET   /v1/teams                              (paginated)
//
// with Kustomer's conventions: `Authorization: Bearer <API key>`; JSON:API-style bodies, one record
// as `{data: {type, id, attributes, relationships, links}}`, a list as `{data, links: {self, first,
// prev, next}, meta: {pageSize, page}}` driven by `?page=&pageSize=`; errors as `{errors: [{status,
// code, title, detail, source?: {pointer | parameter}}]}`; ids shaped like MongoDB ObjectIds (24
// hex digits); custom attributes whose name's suffix (Str, Txt, Num, At, Bool, Url) fixes the
// value's type; request bodies over 100 kB refused with 413.
//
// Limits, as Kustomer documents them: one request budget per org (shared by all its keys) per
// fixed 60 s window, reported on every authenticated answer as `x-ratelimit-limit`,
// `x-ratelimit-remaining` and `x-ratelimit-reset` (here: whole seconds until the window ends;
// Kustomer documents the first two, the reset's unit is our choice) and answered
// with 429 and `Retry-After` (seconds) when spent. Off unless configured, and then no such headers
// are sent. Separately, 120 creates per customer per minute for each of conversations, messages
// and notes (one budget per type); bodies carrying `importedAt` are exempt, as Kustomer exempts
// imports.
//
// Outbound webhooks: `webhook()` builds a delivery as Kustomer sends it, the event envelope
// `{id, name, org, partition?, data, changes?, createdAt}` with `X-Kustomer-Webhook-Event: <name>`
// and `X-Kustomer-Webhook-Signature:` the lowercase hex HMAC-SHA256 of the raw body keyed with the
// webhook's token.
//
// Records belong to the org of the key that made them: one org never reads another's customers,
// conversations or teams. Permissions are the setup guide's names (`customers:write`, ...), which
// are Kustomer roles underneath (ROLES_OF); each 403 also names the role a real key would need. A
// key given `expiresAt` is refused with 401 from then on, as Kustomer refuses an expired key.

import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

/** Every permission a key can hold; a key configured without `permissions` holds them all. */
export const PERMISSIONS = Object.freeze([
  'customers:read',
  'customers:write',
  'conversations:read',
  'conversations:write',
  'messages:read',
  'messages:write',
  'notes:read',
  'notes:write',
  'teams:read',
]);

/** The Kustomer roles that make each permission: a key holds a permission when it holds them all. */
export const ROLES_OF = Object.freeze({
  'customers:read': ['org.permission.customer.read'],
  'customers:write': ['org.permission.customer.create', 'org.permission.customer.update'],
  'conversations:read': ['org.permission.conversation.read'],
  'conversations:write': ['org.permission.conversation.create', 'org.permission.conversation.update'],
  'messages:read': ['org.permission.message.read'],
  'messages:write': ['org.permission.message.create'],
  'notes:read': ['org.permission.note.read'],
  'notes:write': ['org.permission.note.create'],
  'teams:read': ['org.permission.team.read'],
});

export const NOTE_MAX_LENGTH = 10_240;
export const CUSTOM_TEXT_MAX_LENGTH = 1024;
export const BODY_MAX_BYTES = 100 * 1024;
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 100;
/** Kustomer allows larger pages for users and teams than for other lists. */
export const TEAMS_MAX_PAGE_SIZE = 500;
export const CUSTOMER_CREATES_PER_MINUTE = 120;
/** How long a hung request keeps its socket before the server drops it. */
export const HANG_MS = 60_000;

export const CHANNELS = Object.freeze([
  'email',
  'sms',
  'chat',
  'facebook',
  'instagram',
  'whatsapp',
  'twitter-dm',
  'twitter-tweet',
  'voice',
  'form',
]);

const CONVERSATION_STATUSES = ['open', 'done', 'snoozed'];
const DIRECTIONS = ['in', 'out'];

const ERROR_NAMES = {
  400: ['bad_request', 'Bad Request'],
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Forbidden'],
  404: ['not_found', 'Not Found'],
  405: ['method_not_allowed', 'Method Not Allowed'],
  409: ['conflict', 'Conflict'],
  413: ['payload_too_large', 'Payload Too Large'],
  429: ['too_many_requests', 'Too Many Requests'],
  500: ['internal_error', 'Internal Server Error'],
  502: ['bad_gateway', 'Bad Gateway'],
  503: ['service_unavailable', 'Service Unavailable'],
};

/** An answer in Kustomer's error form; `source` is `{pointer}` for a body field or `{parameter}`. */
class ApiError extends Error {
  constructor(status, detail, { source, retryAfter } = {}) {
    super(detail);
    this.status = status;
    this.source = source;
    this.retryAfter = retryAfter;
  }
}

const badField = (pointer, detail) => new ApiError(400, detail, { source: { pointer } });

export function errorBody(status, detail, source) {
  const [code, title] = ERROR_NAMES[status] ?? ['error', 'Error'];
  const error = { status: String(status), code, title, detail };
  if (source) error.source = source;
  return { errors: [error] };
}

/** The value of `X-Kustomer-Webhook-Signature` for `rawBody` under the webhook's `token`. */
export function signWebhook(token, rawBody) {
  return createHmac('sha256', token).update(rawBody).digest('hex');
}

/** A 24-hex-digit id like Kustomer's (MongoDB ObjectIds): seconds, then random bytes, then a counter. */
let idCounter = randomBytes(3).readUIntBE(0, 3);
export function objectId() {
  idCounter = (idCounter + 1) % 0x1000000;
  const seconds = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return seconds + randomBytes(5).toString('hex') + idCounter.toString(16).padStart(6, '0');
}

/**
 * Starts the server. Options:
 *   apiKeys: { [key]: { org, user: {name, email, displayName?}, permissions?: [...], readOnly?, expiresAt? } }
 *   users: [{ org, name, email }]   more agents, assignable to conversations
 *   teams: [{ name, displayName?, org? }]   a team without `org` exists in every org
 *   rateLimit: null | { perMinute, windowMs? }   the org budget (default off; window 60 s)
 *   customerCreateLimit: { perMinute, windowMs? }   per customer and type; default 120 per 60 s
 *   hangMs: how long `hang()` keeps a socket (default 60 s)
 */
export async function startKustomer(options = {}) {
  const now = () => new Date().toISOString();
  const requests = [];
  const throttles = [];
  const deliveries = [];
  const failures = [];
  const hangTimers = new Set();
  let hangsLeft = 0;
  const hangMs = options.hangMs ?? HANG_MS;

  let rateLimit = normalizeLimit(options.rateLimit);
  const customerCreateLimit = normalizeLimit(options.customerCreateLimit ?? { perMinute: CUSTOMER_CREATES_PER_MINUTE });
  const orgWindows = new Map();
  const customerWindows = new Map();

  const keys = new Map();
  const users = [];
  const orgs = [];
  const customers = [];
  // The ids of the customers deleted, in order.
  const deleted = [];
  const conversations = [];
  const messagesByConversation = new Map();
  const notesByConversation = new Map();
  const teams = [];

  const orgOf = (resource) => resource.relationships.org.data.id;
  const ref = (type, id) => ({ data: { type, id } });

  function userResource(org, { name, email, displayName }) {
    const existing = users.find((u) => orgOf(u) === org && u.attributes.email === email);
    if (existing) return existing;
    const id = objectId();
    const at = now();
    const user = {
      type: 'user',
      id,
      attributes: { name, displayName: displayName ?? name, email, userType: 'machine', createdAt: at, updatedAt: at },
      relationships: { org: ref('org', org) },
      links: { self: `/v1/users/${id}` },
    };
    users.push(user);
    return user;
  }

  for (const [apiKey, config] of Object.entries(options.apiKeys ?? {})) {
    if (!config.org) throw new Error(`kustomer fake: API key ${apiKey} has no org`);
    if (!orgs.includes(config.org)) orgs.push(config.org);
    const granted = config.permissions ?? PERMISSIONS;
    for (const permission of granted) {
      if (!PERMISSIONS.includes(permission)) throw new Error(`kustomer fake: unknown permission ${permission}`);
    }
    const permissions = new Set(config.readOnly ? granted.filter((p) => p.endsWith(':read')) : granted);
    const user = userResource(config.org, config.user ?? { name: apiKey, email: `${apiKey}@machine.kustomer.test` });
    const expiresAt = config.expiresAt === undefined ? null : new Date(config.expiresAt).toISOString();
    keys.set(apiKey, { org: config.org, user, permissions, name: user.attributes.name, createdAt: now(), expiresAt });
  }
  for (const agent of options.users ?? []) userResource(agent.org ?? orgs[0], agent);
  for (const team of options.teams ?? []) {
    for (const org of team.org ? [team.org] : orgs) {
      const id = objectId();
      const at = now();
      teams.push({
        type: 'team',
        id,
        attributes: { name: team.name, displayName: team.displayName ?? team.name, createdAt: at, updatedAt: at },
        relationships: { org: ref('org', org) },
        links: { self: `/v1/teams/${id}` },
      });
    }
  }

  // ---- customers ----

  function findCustomer(org, id) {
    return customers.find((c) => c.id === id && orgOf(c) === org);
  }

  function customerWithEmail(org, email, except) {
    const wanted = email.toLowerCase();
    return customers.find(
      (c) => c !== except && orgOf(c) === org && c.attributes.emails.some((e) => e.email.toLowerCase() === wanted),
    );
  }

  function customerWithExternalId(org, externalId, except) {
    return customers.find((c) => c !== except && orgOf(c) === org && c.attributes.externalId === externalId);
  }

  /** Checks customer attributes (all optional: `PUT` replaces only what it is given). */
  function checkCustomerAttributes(body) {
    requireObject(body, '');
    for (const key of Object.keys(body)) {
      if (!CUSTOMER_ATTRIBUTES.includes(key)) throw badField(`/${key}`, `Unknown customer attribute ${key}`);
    }
    optionalString(body, 'name');
    optionalString(body, 'externalId');
    contactList(body, 'emails', 'email', (value) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value), 'an email address');
    contactList(body, 'phones', 'phone', (value) => /^\+?[0-9 ()\-.]{3,}$/.test(value), 'a phone number');
    contactList(body, 'whatsapps', 'phone', (value) => /^\+?[0-9 ()\-.]{3,}$/.test(value), 'a phone number');
    stringList(body, 'tags');
    if (body.custom !== undefined) checkCustom(body.custom, '/custom');
    if (body.rev !== undefined && !Number.isInteger(body.rev)) throw badField('/rev', 'rev must be an integer');
  }

  function checkCustomerUniqueness(org, body, except) {
    if (body.externalId !== undefined && body.externalId !== null) {
      const other = customerWithExternalId(org, body.externalId, except);
      if (other) throw new ApiError(409, `A customer with externalId ${body.externalId} already exists`, { source: { pointer: '/externalId' } });
    }
    for (const [index, entry] of (body.emails ?? []).entries()) {
      const other = customerWithEmail(org, entry.email, except);
      if (other) throw new ApiError(409, `A customer with email ${entry.email} already exists`, { source: { pointer: `/emails/${index}/email` } });
    }
  }

  function createCustomer(org, body, creator) {
    checkCustomerAttributes(body);
    checkCustomerUniqueness(org, body, null);
    const { rev: _rev, ...given } = body;
    const id = objectId();
    const at = now();
    const attributes = {
      name: null,
      externalId: null,
      emails: [],
      phones: [],
      whatsapps: [],
      tags: [],
      custom: {},
      ...structuredClone(given),
      createdAt: at,
      updatedAt: at,
      modifiedAt: at,
      rev: 1,
    };
    attributes.displayName = attributes.name ?? attributes.emails[0]?.email ?? attributes.phones[0]?.phone ?? null;
    const customer = {
      type: 'customer',
      id,
      attributes,
      relationships: { org: ref('org', org), ...authorship(creator) },
      links: { self: `/v1/customers/${id}` },
    };
    customers.push(customer);
    return customer;
  }

  function replaceCustomerAttributes(customer, body, modifier) {
    checkCustomerAttributes(body);
    checkRevision(customer, body.rev);
    checkCustomerUniqueness(orgOf(customer), body, customer);
    const { rev: _rev, ...given } = body;
    Object.assign(customer.attributes, structuredClone(given));
    customer.attributes.displayName =
      customer.attributes.name ?? customer.attributes.emails[0]?.email ?? customer.attributes.phones[0]?.phone ?? null;
    touch(customer, modifier);
    return customer;
  }

  // ---- conversations, messages, notes ----

  function findConversation(org, id) {
    return conversations.find((c) => c.id === id && orgOf(c) === org);
  }

  function checkAssignments(org, body) {
    idList(body, 'assignedTeams', (id) => teams.some((t) => t.id === id && orgOf(t) === org), 'Team not found');
    idList(body, 'assignedUsers', (id) => users.some((u) => u.id === id && orgOf(u) === org), 'User not found');
  }

  function checkConversationFields(org, body) {
    optionalString(body, 'name');
    optionalString(body, 'externalId');
    oneOf(body, 'status', CONVERSATION_STATUSES);
    oneOf(body, 'direction', DIRECTIONS);
    if (body.priority !== undefined && !(Number.isInteger(body.priority) && body.priority >= 1 && body.priority <= 5)) {
      throw badField('/priority', 'priority must be an integer from 1 to 5');
    }
    stringList(body, 'tags');
    if (body.custom !== undefined) checkCustom(body.custom, '/custom');
    checkAssignments(org, body);
    if (body.externalId) {
      const other = conversations.find((c) => orgOf(c) === org && c.attributes.externalId === body.externalId);
      if (other) throw new ApiError(409, `A conversation with externalId ${body.externalId} already exists`, { source: { pointer: '/externalId' } });
    }
  }

  function createConversation(org, body, creator, { limited = true } = {}) {
    requireObject(body, '');
    for (const key of Object.keys(body)) {
      if (!CONVERSATION_CREATE_ATTRIBUTES.includes(key)) throw badField(`/${key}`, `Unknown conversation attribute ${key}`);
    }
    if (typeof body.customer !== 'string') throw badField('/customer', 'customer is required (a customer id)');
    const customer = findCustomer(org, body.customer);
    if (!customer) throw badField('/customer', `Customer not found: ${body.customer}`);
    checkConversationFields(org, body);
    spendCustomerCreate('conversation', customer.id, body, limited);
    const { customer: _customer, ...given } = body;
    const id = objectId();
    const at = now();
    const conversation = {
      type: 'conversation',
      id,
      attributes: {
        name: null,
        externalId: null,
        status: 'open',
        priority: 3,
        direction: 'in',
        assignedTeams: [],
        assignedUsers: [],
        tags: [],
        custom: {},
        satisfaction: 0,
        ...structuredClone(given),
        channels: [],
        messageCount: 0,
        outboundMessageCount: 0,
        noteCount: 0,
        createdAt: at,
        updatedAt: at,
        modifiedAt: at,
        rev: 1,
      },
      relationships: { customer: ref('customer', customer.id), org: ref('org', org), ...authorship(creator) },
      links: { self: `/v1/conversations/${id}` },
    };
    conversations.push(conversation);
    messagesByConversation.set(id, []);
    notesByConversation.set(id, []);
    return conversation;
  }

  function updateConversation(conversation, body, modifier) {
    requireObject(body, '');
    for (const key of Object.keys(body)) {
      if (!CONVERSATION_UPDATE_ATTRIBUTES.includes(key)) throw badField(`/${key}`, `Attribute ${key} cannot be updated`);
    }
    const org = orgOf(conversation);
    optionalString(body, 'name');
    oneOf(body, 'status', CONVERSATION_STATUSES);
    oneOf(body, 'direction', DIRECTIONS);
    if (body.priority !== undefined && !(Number.isInteger(body.priority) && body.priority >= 1 && body.priority <= 5)) {
      throw badField('/priority', 'priority must be an integer from 1 to 5');
    }
    if (body.satisfaction !== undefined && body.satisfaction !== null && typeof body.satisfaction !== 'number') {
      throw badField('/satisfaction', 'satisfaction must be a number');
    }
    stringList(body, 'tags');
    if (body.custom !== undefined) checkCustom(body.custom, '/custom');
    checkAssignments(org, body);
    checkRevision(conversation, body.rev);
    const { rev: _rev, custom, ...given } = body;
    Object.assign(conversation.attributes, structuredClone(given));
    if (custom) Object.assign(conversation.attributes.custom, structuredClone(custom));
    touch(conversation, modifier);
    return conversation;
  }

  function createMessage(conversation, body, creator) {
    requireObject(body, '');
    for (const key of Object.keys(body)) {
      if (!MESSAGE_ATTRIBUTES.includes(key)) throw badField(`/${key}`, `Unknown message attribute ${key}`);
    }
    if (body.channel === undefined) throw badField('/channel', 'channel is required');
    oneOf(body, 'channel', CHANNELS);
    if (typeof body.app !== 'string' || body.app === '') throw badField('/app', 'app is required (a string)');
    if (body.direction === undefined) throw badField('/direction', 'direction is required');
    oneOf(body, 'direction', DIRECTIONS);
    optionalString(body, 'preview');
    optionalString(body, 'status');
    optionalString(body, 'externalId');
    optionalString(body, 'subject');
    dateTime(body, 'sentAt');
    dateTime(body, 'importedAt');
    if (body.meta !== undefined) requireObject(body.meta, '/meta');
    if (body.size !== undefined && !(Number.isInteger(body.size) && body.size >= 0)) throw badField('/size', 'size must be a non-negative integer');
    const customerId = conversation.relationships.customer.data.id;
    spendCustomerCreate('message', customerId, body, true);
    const id = objectId();
    const at = now();
    const message = {
      type: 'message',
      id,
      attributes: {
        status: body.direction === 'out' ? 'sent' : 'received',
        preview: null,
        meta: {},
        sentAt: at,
        ...structuredClone(body),
        createdAt: at,
        updatedAt: at,
        modifiedAt: at,
      },
      relationships: {
        conversation: ref('conversation', conversation.id),
        customer: ref('customer', customerId),
        org: ref('org', orgOf(conversation)),
        ...authorship(creator),
      },
      links: { self: `/v1/messages/${id}` },
    };
    messagesByConversation.get(conversation.id).push(message);
    const attributes = conversation.attributes;
    attributes.messageCount += 1;
    if (body.direction === 'out') attributes.outboundMessageCount += 1;
    if (!attributes.channels.includes(body.channel)) attributes.channels.push(body.channel);
    attributes.lastMessageAt = message.attributes.sentAt;
    touch(conversation, creator);
    return message;
  }

  function createNote(conversation, body, creator) {
    requireObject(body, '');
    for (const key of Object.keys(body)) {
      if (!NOTE_ATTRIBUTES.includes(key)) throw badField(`/${key}`, `Unknown note attribute ${key}`);
    }
    if (typeof body.body !== 'string' || body.body === '') throw badField('/body', 'body is required (a string)');
    if (body.body.length > NOTE_MAX_LENGTH) {
      throw badField('/body', `body must be at most ${NOTE_MAX_LENGTH} characters (got ${body.body.length})`);
    }
    idList(body, 'userMentions', (id) => users.some((u) => u.id === id && orgOf(u) === orgOf(conversation)), 'User not found');
    dateTime(body, 'importedAt');
    const customerId = conversation.relationships.customer.data.id;
    spendCustomerCreate('note', customerId, body, true);
    const id = objectId();
    const at = now();
    const note = {
      type: 'note',
      id,
      attributes: { userMentions: [], ...structuredClone(body), createdAt: at, updatedAt: at, modifiedAt: at },
      relationships: {
        conversation: ref('conversation', conversation.id),
        customer: ref('customer', customerId),
        org: ref('org', orgOf(conversation)),
        ...authorship(creator),
      },
      links: { self: `/v1/notes/${id}` },
    };
    notesByConversation.get(conversation.id).push(note);
    conversation.attributes.noteCount += 1;
    touch(conversation, creator);
    return note;
  }

  function authorship(user) {
    return user ? { createdBy: ref('user', user.id), modifiedBy: ref('user', user.id) } : {};
  }

  function touch(resource, modifier) {
    const at = now();
    resource.attributes.updatedAt = at;
    resource.attributes.modifiedAt = at;
    if (resource.attributes.rev !== undefined) resource.attributes.rev += 1;
    if (modifier) resource.relationships.modifiedBy = ref('user', modifier.id);
  }

  /** Kustomer locks optimistically: a `rev` that is not the record's current one is a conflict. */
  function checkRevision(resource, rev) {
    if (rev !== undefined && rev !== resource.attributes.rev) {
      throw new ApiError(409, `rev ${rev} is stale (current rev is ${resource.attributes.rev})`, { source: { pointer: '/rev' } });
    }
  }

  // ---- limits ----

  function spendWindow(windows, name, limit, at) {
    let window = windows.get(name);
    if (!window || at >= window.start + limit.windowMs) {
      window = { start: at, count: 0 };
      windows.set(name, window);
    }
    const resetSeconds = Math.max(1, Math.ceil((window.start + limit.windowMs - at) / 1000));
    const exceeded = window.count >= limit.perMinute;
    if (!exceeded) window.count += 1;
    return { exceeded, remaining: limit.perMinute - window.count, resetSeconds };
  }

  function spendCustomerCreate(type, customerId, body, limited) {
    if (!limited || body.importedAt !== undefined) return;
    const spent = spendWindow(customerWindows, `${type}:${customerId}`, customerCreateLimit, Date.now());
    if (spent.exceeded) {
      throw new ApiError(
        429,
        `Rate limit of ${customerCreateLimit.perMinute} ${type}s per minute reached for customer ${customerId}`,
        { retryAfter: spent.resetSeconds },
      );
    }
  }

  // ---- routes ----

  const routes = [
    {
      method: 'GET',
      pattern: /^\/v1\/users\/current$/,
      handle: ({ key }) => ({ status: 200, body: { data: key.user } }),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/auth\/tokens\/current$/,
      handle: ({ key, token }) => ({ status: 200, body: { data: tokenResource(key, token) } }),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/customers\/email=([^/]+)$/,
      permission: 'customers:read',
      role: 'org.permission.customer.read',
      handle: ({ key, params }) => {
        const email = decodeSegment(params[0]);
        const customer = customerWithEmail(key.org, email, null);
        if (!customer) throw new ApiError(404, `No customer with email ${email}`);
        return { status: 200, body: { data: customer } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/customers\/externalId=([^/]+)$/,
      permission: 'customers:read',
      role: 'org.permission.customer.read',
      handle: ({ key, params }) => {
        const externalId = decodeSegment(params[0]);
        const customer = customerWithExternalId(key.org, externalId, null);
        if (!customer) throw new ApiError(404, `No customer with externalId ${externalId}`);
        return { status: 200, body: { data: customer } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/customers\/([^/=]+)\/conversations$/,
      permission: 'conversations:read',
      role: 'org.permission.conversation.read',
      handle: ({ key, params, query, path }) => {
        const customer = existing(findCustomer(key.org, params[0]), 'customer', params[0]);
        const own = conversations.filter((c) => c.relationships.customer.data.id === customer.id);
        return { status: 200, body: paginate(own, query, path, MAX_PAGE_SIZE) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/customers\/([^/=]+)$/,
      permission: 'customers:read',
      role: 'org.permission.customer.read',
      handle: ({ key, params }) => ({ status: 200, body: { data: existing(findCustomer(key.org, params[0]), 'customer', params[0]) } }),
    },
    {
      method: 'PUT',
      pattern: /^\/v1\/customers\/([^/=]+)$/,
      permission: 'customers:write',
      role: 'org.permission.customer.update',
      handle: ({ key, params, body }) => {
        const customer = existing(findCustomer(key.org, params[0]), 'customer', params[0]);
        return { status: 200, body: { data: replaceCustomerAttributes(customer, body, key.user) } };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/customers\/([^/=]+)$/,
      permission: 'customers:write',
      role: 'org.permission.customer.delete',
      handle: ({ key, params }) => {
        const customer = existing(findCustomer(key.org, params[0]), 'customer', params[0]);
        const theirs = conversations.filter((c) => c.relationships.customer.data.id === customer.id);
        for (const conversation of theirs) {
          messagesByConversation.delete(conversation.id);
          notesByConversation.delete(conversation.id);
          conversations.splice(conversations.indexOf(conversation), 1);
        }
        customers.splice(customers.indexOf(customer), 1);
        deleted.push(customer.id);
        return { status: 204, body: null };
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/customers$/,
      permission: 'customers:write',
      role: 'org.permission.customer.create',
      handle: ({ key, body }) => ({ status: 201, body: { data: createCustomer(key.org, body, key.user) } }),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/conversations$/,
      permission: 'conversations:write',
      role: 'org.permission.conversation.create',
      handle: ({ key, body }) => ({ status: 201, body: { data: createConversation(key.org, body, key.user) } }),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/conversations\/([^/]+)$/,
      permission: 'conversations:read',
      role: 'org.permission.conversation.read',
      handle: ({ key, params }) => ({
        status: 200,
        body: { data: existing(findConversation(key.org, params[0]), 'conversation', params[0]) },
      }),
    },
    {
      method: 'PATCH',
      pattern: /^\/v1\/conversations\/([^/]+)$/,
      permission: 'conversations:write',
      role: 'org.permission.conversation.update',
      handle: ({ key, params, body }) => {
        const conversation = existing(findConversation(key.org, params[0]), 'conversation', params[0]);
        return { status: 200, body: { data: updateConversation(conversation, body, key.user) } };
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/conversations\/([^/]+)\/messages$/,
      permission: 'messages:write',
      role: 'org.permission.message.create',
      handle: ({ key, params, body }) => {
        const conversation = existing(findConversation(key.org, params[0]), 'conversation', params[0]);
        return { status: 201, body: { data: createMessage(conversation, body, key.user) } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/conversations\/([^/]+)\/messages$/,
      permission: 'messages:read',
      role: 'org.permission.message.read',
      handle: ({ key, params, query, path }) => {
        const conversation = existing(findConversation(key.org, params[0]), 'conversation', params[0]);
        return { status: 200, body: paginate(messagesByConversation.get(conversation.id), query, path, MAX_PAGE_SIZE) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/conversations\/([^/]+)\/notes$/,
      permission: 'notes:write',
      role: 'org.permission.note.create',
      handle: ({ key, params, body }) => {
        const conversation = existing(findConversation(key.org, params[0]), 'conversation', params[0]);
        return { status: 201, body: { data: createNote(conversation, body, key.user) } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/conversations\/([^/]+)\/notes$/,
      permission: 'notes:read',
      role: 'org.permission.note.read',
      handle: ({ key, params, query, path }) => {
        const conversation = existing(findConversation(key.org, params[0]), 'conversation', params[0]);
        return { status: 200, body: paginate(notesByConversation.get(conversation.id), query, path, MAX_PAGE_SIZE) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/teams$/,
      permission: 'teams:read',
      role: 'org.permission.team.read',
      handle: ({ key, query, path }) => ({
        status: 200,
        body: paginate(teams.filter((t) => orgOf(t) === key.org), query, path, TEAMS_MAX_PAGE_SIZE),
      }),
    },
  ];

  function route(method, path) {
    let pathKnown = false;
    for (const candidate of routes) {
      const match = candidate.pattern.exec(path);
      if (!match) continue;
      pathKnown = true;
      if (candidate.method === method) return { route: candidate, params: match.slice(1) };
    }
    return { route: null, pathKnown };
  }

  // ---- HTTP ----

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent && !res.destroyed) send(res, 500, errorBody(500, `kustomer fake: ${error.message}`));
    });
  });

  async function handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://127.0.0.1');
    const parsed = parseJson(raw);
    const record = {
      at: Date.now(),
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: parsed.ok ? parsed.value : raw.toString('utf8'),
      status: null,
    };
    requests.push(record);

    const answer = (status, body, headers = {}) => {
      record.status = status;
      send(res, status, body, headers);
    };

    if (hangsLeft > 0) {
      hangsLeft -= 1;
      const timer = setTimeout(() => {
        hangTimers.delete(timer);
        res.destroy();
      }, hangMs);
      hangTimers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        hangTimers.delete(timer);
      });
      return;
    }

    const failure = takeFailure(record);
    if (failure) {
      const headers = failure.retryAfter === undefined ? {} : { 'retry-after': String(failure.retryAfter) };
      return answer(failure.status, errorBody(failure.status, `Injected failure ${failure.status}`), headers);
    }

    if (raw.length > BODY_MAX_BYTES) {
      return answer(413, errorBody(413, `Request body is ${raw.length} bytes; the limit is ${BODY_MAX_BYTES}`));
    }

    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!bearer) return answer(401, errorBody(401, 'Missing Authorization: Bearer <API key>'));
    const key = keys.get(bearer[1]);
    if (!key || (key.expiresAt && Date.parse(key.expiresAt) <= record.at)) {
      return answer(401, errorBody(401, 'Invalid or expired API key'));
    }

    let limitHeaders = {};
    if (rateLimit) {
      const spent = spendWindow(orgWindows, key.org, rateLimit, record.at);
      limitHeaders = {
        'x-ratelimit-limit': String(rateLimit.perMinute),
        'x-ratelimit-remaining': String(spent.remaining),
        'x-ratelimit-reset': String(spent.resetSeconds),
      };
      if (spent.exceeded) {
        throttles.push({ at: record.at, scope: 'org', name: key.org, method: record.method, path: record.path, retryAfter: spent.resetSeconds });
        return answer(
          429,
          errorBody(429, `Rate limit of ${rateLimit.perMinute} requests per minute reached for org ${key.org}`),
          { ...limitHeaders, 'retry-after': String(spent.resetSeconds) },
        );
      }
    }

    const found = route(req.method, url.pathname);
    if (!found.route) {
      const detail = found.pathKnown ? `Method ${req.method} not allowed on ${url.pathname}` : `No route ${req.method} ${url.pathname}`;
      return answer(found.pathKnown ? 405 : 404, errorBody(found.pathKnown ? 405 : 404, detail), limitHeaders);
    }
    const { route: matched, params } = found;
    if (matched.permission && !key.permissions.has(matched.permission)) {
      return answer(
        403,
        errorBody(403, `API key lacks permission ${matched.permission} (Kustomer role ${matched.role})`),
        limitHeaders,
      );
    }
    if (['POST', 'PUT', 'PATCH'].includes(req.method) && raw.length > 0 && !parsed.ok) {
      return answer(400, errorBody(400, 'Request body is not valid JSON'), limitHeaders);
    }

    try {
      const result = matched.handle({ key, token: bearer[1], params, query: url.searchParams, path: url.pathname, body: parsed.value });
      return answer(result.status, result.body, limitHeaders);
    } catch (error) {
      if (!(error instanceof ApiError)) return answer(500, errorBody(500, `kustomer fake: ${error.message}`), limitHeaders);
      const headers = { ...limitHeaders };
      if (error.status === 429) {
        headers['retry-after'] = String(error.retryAfter);
        throttles.push({ at: record.at, scope: 'customer', name: null, method: record.method, path: record.path, retryAfter: error.retryAfter });
      }
      return answer(error.status, errorBody(error.status, error.message, error.source), headers);
    }
  }

  // The calling key as Kustomer shows a token: name, roles, last characters, times, and
  // `expireAt` only when the key expires.
  function tokenResource(key, token) {
    const roles = [...new Set([...key.permissions].flatMap((permission) => ROLES_OF[permission] ?? []))];
    const id = createHmac('sha256', 'token-id').update(token).digest('hex').slice(0, 24);
    const attributes = {
      name: key.name,
      roles,
      lastTokenChars: token.slice(-4),
      lastAccessedAt: now(),
      createdAt: key.createdAt,
      updatedAt: key.createdAt,
    };
    if (key.expiresAt) attributes.expireAt = key.expiresAt;
    return {
      type: 'authToken',
      id,
      attributes,
      relationships: { org: ref('org', key.org), user: ref('user', key.user.id) },
      links: { self: `/v1/auth/tokens/${id}` },
    };
  }

  function takeFailure(record) {
    const index = failures.findIndex((step) => !step.match || step.match(record));
    if (index < 0) return null;
    const step = failures[index];
    step.left -= 1;
    if (step.left <= 0) failures.splice(index, 1);
    return step;
  }

  let listening = false;
  async function listen(port) {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    listening = true;
  }
  async function stopListening() {
    if (!listening) return;
    listening = false;
    await new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  function webhook(token, event) {
    const body = JSON.stringify(webhookEnvelope(event, orgs[0]));
    return {
      headers: {
        'Content-Type': 'application/json',
        'X-Kustomer-Webhook-Event': event.name,
        'X-Kustomer-Webhook-Signature': signWebhook(token, body),
      },
      body,
    };
  }

  await listen(0);
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    /** Every request received, in order: `{ at, method, path, query, headers, body, status }`
     * (`status` stays null while a request is unanswered, and for ever when it was hung). */
    requests,
    /** Every 429 a limit gave (not injected ones): `{ at, scope: 'org'|'customer', method, path, retryAfter }`. */
    throttles,
    /** Webhook deliveries made with `deliverWebhook`: `{ at, url, name, status }`. */
    deliveries,
    get rateLimited() {
      return throttles.length;
    },
    get deleted() {
      return [...deleted];
    },
    get customers() {
      return customers;
    },
    get conversations() {
      return conversations;
    },
    get teams() {
      return teams;
    },
    get users() {
      return users;
    },
    messages(conversationId) {
      return messagesByConversation.get(conversationId) ?? [];
    },
    notes(conversationId) {
      return notesByConversation.get(conversationId) ?? [];
    },
    /**
     * Queues an injected failure: the next request(s) it matches (all, without `match`) get
     * `status` in Kustomer's error form, with `Retry-After: retryAfter` when given. `times`
     * defaults to 1. Steps are tried in the order queued; each request takes at most one.
     */
    fail({ status, retryAfter, times = 1, match } = {}) {
      if (!ERROR_NAMES[status]) throw new Error(`kustomer fake: cannot inject status ${status}`);
      failures.push({ status, retryAfter, left: times, match });
    },
    /** The next `times` requests get no answer: the socket stays open `hangMs`, then is dropped. */
    hang(times = 1) {
      hangsLeft += times;
    },
    /** Stops listening (connections are refused) and drops open connections; state is kept. */
    async down() {
      await stopListening();
    },
    /** Listens again, on the same port. */
    async up() {
      if (!listening) await listen(port);
    },
    /** Sets or (with null) removes the org budget; the current windows start afresh. */
    setRateLimit(limit) {
      rateLimit = normalizeLimit(limit);
      orgWindows.clear();
    },
    /** Stores a customer as `POST /v1/customers` would (same checks; throws on invalid input). */
    seedCustomer(attributes, { org = orgs[0] } = {}) {
      return createCustomer(org, attributes, null);
    },
    /** Stores a conversation for `customerId` as `POST /v1/conversations` would. */
    seedConversation(customerId, attributes = {}) {
      const customer = customers.find((c) => c.id === customerId);
      if (!customer) throw new Error(`kustomer fake: no customer ${customerId}`);
      return createConversation(orgOf(customer), { ...attributes, customer: customerId }, null, { limited: false });
    },
    /**
     * An outbound webhook delivery as Kustomer makes it: `{ headers, body }`, `body` being the raw
     * JSON text the signature covers. `event`: `{ name, data, changes?, org?, partition?, id?,
     * createdAt? }`; `data` may be a stored record (`k.conversations[0]`).
     */
    webhook,
    /** POSTs `webhook(token, event)` to `targetUrl`; resolves to the answer's status. */
    async deliverWebhook(targetUrl, token, event) {
      const { headers, body } = webhook(token, event);
      const response = await fetch(targetUrl, { method: 'POST', headers, body });
      await response.arrayBuffer();
      deliveries.push({ at: Date.now(), url: targetUrl, name: event.name, status: response.status });
      return response.status;
    },
    async close() {
      for (const timer of hangTimers) clearTimeout(timer);
      hangTimers.clear();
      await stopListening();
    },
  };
}

function webhookEnvelope({ name, data, changes, org, partition, id, createdAt }, defaultOrg) {
  if (typeof name !== 'string' || !name.startsWith('kustomer.')) {
    throw new Error(`kustomer fake: webhook event name must look like kustomer.<resource>.<create|update>, got ${name}`);
  }
  if (!data || typeof data.type !== 'string' || typeof data.id !== 'string') {
    throw new Error('kustomer fake: webhook data must be a record with type and id');
  }
  const relationships = data.relationships ?? {};
  const envelope = {
    id: id ?? objectId(),
    name,
    org: org ?? relationships.org?.data?.id ?? defaultOrg,
  };
  const customerId = data.type === 'customer' ? data.id : relationships.customer?.data?.id;
  if ((partition ?? customerId) !== undefined) envelope.partition = partition ?? customerId;
  envelope.data = { type: data.type, id: data.id, attributes: data.attributes ?? {}, relationships };
  if (changes !== undefined) envelope.changes = changes;
  envelope.createdAt = createdAt ?? new Date().toISOString();
  return envelope;
}

// ---- checks shared by the resources ----

const CUSTOMER_ATTRIBUTES = [
  'name',
  'externalId',
  'emails',
  'phones',
  'whatsapps',
  'socials',
  'urls',
  'locations',
  'tags',
  'custom',
  'company',
  'locale',
  'timeZone',
  'gender',
  'birthdayAt',
  'avatarUrl',
  'username',
  'signedUpAt',
  'lastActivityAt',
  'importedAt',
  'rev',
];
const CONVERSATION_CREATE_ATTRIBUTES = [
  'customer',
  'name',
  'externalId',
  'status',
  'priority',
  'direction',
  'assignedTeams',
  'assignedUsers',
  'tags',
  'custom',
  'replyChannel',
  'defaultLang',
  'queue',
  'importedAt',
];
const CONVERSATION_UPDATE_ATTRIBUTES = [
  'name',
  'externalId',
  'status',
  'priority',
  'direction',
  'assignedTeams',
  'assignedUsers',
  'tags',
  'custom',
  'satisfaction',
  'replyChannel',
  'defaultLang',
  'queue',
  'snooze',
  'rev',
];
const MESSAGE_ATTRIBUTES = [
  'channel',
  'app',
  'direction',
  'preview',
  'subject',
  'meta',
  'status',
  'externalId',
  'sentAt',
  'size',
  'attachments',
  'auto',
  'lang',
  'location',
  'importedAt',
];
const NOTE_ATTRIBUTES = ['body', 'userMentions', 'importedAt'];

const CUSTOM_NAME = /^[A-Za-z][A-Za-z0-9]*(Str|Txt|Num|At|Bool|Url)$/;

function checkCustom(custom, pointer) {
  requireObject(custom, pointer);
  for (const [name, value] of Object.entries(custom)) {
    const at = `${pointer}/${name}`;
    const match = CUSTOM_NAME.exec(name);
    if (!match) {
      throw badField(at, `Custom attribute ${name} must end with a type suffix: Str, Txt, Num, At, Bool or Url`);
    }
    if (value === null) continue;
    const suffix = match[1];
    const fits = {
      Str: () => typeof value === 'string' && value.length <= CUSTOM_TEXT_MAX_LENGTH,
      Txt: () => typeof value === 'string' && value.length <= CUSTOM_TEXT_MAX_LENGTH,
      Num: () => typeof value === 'number' && Number.isFinite(value),
      At: () => isDateTime(value),
      Bool: () => typeof value === 'boolean',
      Url: () => isHttpUrl(value),
    }[suffix]();
    if (!fits) {
      const expected = {
        Str: `a string of at most ${CUSTOM_TEXT_MAX_LENGTH} characters`,
        Txt: `a string of at most ${CUSTOM_TEXT_MAX_LENGTH} characters`,
        Num: 'a number',
        At: 'an ISO 8601 date-time',
        Bool: 'a boolean',
        Url: 'a URL',
      }[suffix];
      throw badField(at, `Custom attribute ${name} must be ${expected} or null`);
    }
  }
}

function isDateTime(value) {
  return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value) && !Number.isNaN(Date.parse(value));
}

function isHttpUrl(value) {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function requireObject(value, pointer) {
  if (!isPlainObject(value)) {
    throw badField(pointer || '/', pointer ? `${pointer.slice(1)} must be an object` : 'Request body must be a JSON object');
  }
}

function optionalString(body, field) {
  const value = body[field];
  if (value !== undefined && value !== null && typeof value !== 'string') throw badField(`/${field}`, `${field} must be a string`);
}

function oneOf(body, field, allowed) {
  const value = body[field];
  if (value !== undefined && !allowed.includes(value)) {
    throw badField(`/${field}`, `${field} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  }
}

function dateTime(body, field) {
  const value = body[field];
  if (value !== undefined && !isDateTime(value)) throw badField(`/${field}`, `${field} must be an ISO 8601 date-time`);
}

function stringList(body, field) {
  const value = body[field];
  if (value === undefined) return;
  if (!Array.isArray(value)) throw badField(`/${field}`, `${field} must be an array of strings`);
  value.forEach((item, index) => {
    if (typeof item !== 'string') throw badField(`/${field}/${index}`, `${field} must be an array of strings`);
  });
}

function idList(body, field, exists, notFound) {
  const value = body[field];
  if (value === undefined) return;
  if (!Array.isArray(value)) throw badField(`/${field}`, `${field} must be an array of ids`);
  value.forEach((id, index) => {
    if (typeof id !== 'string' || !exists(id)) throw badField(`/${field}/${index}`, `${notFound}: ${id}`);
  });
}

/** `emails`, `phones`, `whatsapps`: arrays of `{type?, <valueField>}`. */
function contactList(body, field, valueField, valid, what) {
  const value = body[field];
  if (value === undefined) return;
  if (!Array.isArray(value)) throw badField(`/${field}`, `${field} must be an array`);
  value.forEach((entry, index) => {
    const at = `/${field}/${index}`;
    if (!isPlainObject(entry)) throw badField(at, `${field} entries must be objects with ${valueField}`);
    for (const key of Object.keys(entry)) {
      if (key !== 'type' && key !== valueField && key !== 'verified') throw badField(`${at}/${key}`, `Unknown ${field} field ${key}`);
    }
    if (entry.type !== undefined && typeof entry.type !== 'string') throw badField(`${at}/type`, 'type must be a string');
    if (typeof entry[valueField] !== 'string' || !valid(entry[valueField])) {
      throw badField(`${at}/${valueField}`, `${valueField} must be ${what}`);
    }
  });
}

function existing(resource, type, id) {
  if (!resource) throw new ApiError(404, `No ${type} with id ${id}`);
  return resource;
}

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, `Malformed path segment ${segment}`);
  }
}

function readPage(query, name, fallback) {
  const value = query.get(name);
  if (value === null) return fallback;
  if (!/^[1-9][0-9]*$/.test(value)) {
    throw new ApiError(400, `${name} must be a positive integer (got ${value})`, { source: { parameter: name } });
  }
  return Number(value);
}

function paginate(items, query, path, maxPageSize) {
  const page = readPage(query, 'page', 1);
  const pageSize = Math.min(readPage(query, 'pageSize', DEFAULT_PAGE_SIZE), maxPageSize);
  const start = (page - 1) * pageSize;
  const link = (n) => `${path}?page=${n}&pageSize=${pageSize}`;
  return {
    data: items.slice(start, start + pageSize),
    links: {
      self: link(page),
      first: link(1),
      prev: page > 1 ? link(page - 1) : null,
      next: start + pageSize < items.length ? link(page + 1) : null,
    },
    meta: { pageSize, page },
  };
}

function normalizeLimit(limit) {
  if (!limit) return null;
  if (!(Number.isInteger(limit.perMinute) && limit.perMinute >= 0)) {
    throw new Error(`kustomer fake: perMinute must be a non-negative integer, got ${limit.perMinute}`);
  }
  return { perMinute: limit.perMinute, windowMs: limit.windowMs ?? 60_000 };
}

function parseJson(raw) {
  if (raw.length === 0) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(raw.toString('utf8')) };
  } catch {
    return { ok: false, value: undefined };
  }
}

function send(res, status, body, headers = {}) {
  if (res.destroyed) return;
  if (status === 204) {
    res.writeHead(204, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
