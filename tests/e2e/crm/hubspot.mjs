// HubSpot's public REST API as a local server on 127.0.0.1 and a random port, for the end-to-end
// and browser tests of our HubSpot connector. It answers as the native fake of the pipelines tests
// (tests/pipelines/src/partners/hubspot.rs) does, for the paths our client and the console call:
//
//   GET   /account-info/2026-03/details                     (and /account-info/v3/details)
//   POST  /crm/objects/2026-03/{object}                     create         (and /crm/v3/objects/...)
//   GET, PATCH, DELETE /crm/objects/2026-03/{object}/{id}   (`?idProperty=`, `?properties=`, `?associations=`)
//   POST  /crm/objects/2026-03/{object}/batch/upsert        `{inputs: [{id, idProperty, properties}]}`
//   POST  /crm/objects/2026-03/{object}/search              `{filterGroups, properties, sorts, query, limit, after}`
//   POST  /crm/objects/2026-03/contacts/gdpr-delete         `{objectId, idProperty?}`: 204, the contact and the
//         engagements associated with it alone deleted for good, its email blocked (an unknown email blocked too)
//   GET   /crm/pipelines/2026-03/tickets[/{id}]             (and /crm/v3/pipelines/tickets)
//   GET   /crm/owners/2026-03[/{id}]                        (and /crm/v3/owners; `?email=&limit=&after=`)
//   GET   /oauth/authorize?client_id&redirect_uri&scope&state   the consent page (HubSpot serves it
//         at app.hubspot.com); its "Connect app" button POSTs back here and is sent on, 302, to
//         `redirect_uri?code=..&state=..`
//   POST  /oauth/v1/token                                   (and /oauth/2026-03/token), form-encoded
//   GET   /oauth/v1/access-tokens/{token}   GET, DELETE /oauth/v1/refresh-tokens/{token}
//
// where {object} is contacts, communications, emails, notes or tickets (or a singular, or a type
// id such as 0-1). Conventions, as HubSpot documents them: `Authorization: Bearer <token>`, a
// private app's token (never expires) or an OAuth access token (expires after `expires_in`
// seconds); a missing or unknown one answers 401 INVALID_AUTHENTICATION, an expired one 401
// EXPIRED_AUTHENTICATION. A call without the scope it needs answers 403 MISSING_SCOPES naming it in
// `errors[0].context.requiredGranularScopes`: contacts and the engagements need
// `crm.objects.contacts.read` to read or search and `.write` to write, tickets and pipelines
// `tickets`, owners `crm.objects.owners.read`, the account's details any token. Every error is
// `{status: "error", message, correlationId, category}`, with `errors` at times. Ids are numeric
// strings beyond 32 bits; every property value is a string (numbers and booleans kept as text;
// `null` or `""` clears one); an unknown or read-only property is refused with 400
// VALIDATION_ERROR, `Property values were not valid: [{isValid, message, error, name}]`. Reads
// answer an object's default properties plus those asked for (null when unset); writes answer
// every property set. A contact's `email` is unique without case (stored in lowercase), as is a
// custom contact property made unique: a second contact with the value answers 409 `Contact
// already exists. Existing ID: <id>`. Engagements need `hs_timestamp` (milliseconds or ISO 8601,
// answered as ISO 8601), communications a channel (WHATS_APP, LINKEDIN_MESSAGE, SMS) and
// `hs_communication_logged_from: CRM`, tickets a `subject` and a `hs_pipeline_stage` of their
// `hs_pipeline` (the first pipeline unless given). Associations given on create name a
// HUBSPOT_DEFINED type id going from the created object to an existing record (ASSOCIATION_TYPES).
// JSON bodies need `Content-Type: application/json` (415 otherwise); bodies over 2 MB answer 413;
// unknown paths 404 OBJECT_NOT_FOUND, a known path with another method 405.
//
// Limits: a rolling burst per app (each private app token is an app; OAuth tokens count against
// their client id), 100 per 10 s unless set; for private apps 250,000 requests a day (the day ends
// at midnight US/Eastern, taken as UTC-5); searches per second per account, off unless set (HubSpot
// allows 5; the native fake has it on). Every authenticated answer carries
// `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds`, and for a private app's
// token `-Daily` and `-Daily-Remaining`; a spent limit answers 429 `{status: "error", message: "You
// have reached your <policy> limit.", errorType: "RATE_LIMIT", correlationId, policyName}` with
// `Retry-After` (whole seconds until the window frees).
//
// OAuth 2.0: codes are single-use and good for 10 minutes; a refresh token stays good across
// refreshes (until the app is uninstalled or the token revoked), each refresh giving a new access
// token. Refusals answer 400 `{status: BAD_CLIENT_ID | BAD_AUTH_CODE | BAD_REDIRECT_URI |
// BAD_REFRESH_TOKEN | BAD_GRANT_TYPE, message, correlationId}`.
//
// Webhooks: `webhook()` builds a delivery as HubSpot sends one to an app, a JSON array of events
// with `X-HubSpot-Signature-v3` (base64 HMAC-SHA256 under the app's client secret of method + full
// URI + raw body + timestamp) and `X-HubSpot-Request-Timestamp` (milliseconds), and the v1
// signature (hex SHA-256 of secret + body) besides.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

/** The date version of the paths served (besides the legacy `v3` ones). */
export const VERSION = '2026-03';
export const CONTACTS_READ = 'crm.objects.contacts.read';
export const CONTACTS_WRITE = 'crm.objects.contacts.write';
export const TICKETS = 'tickets';
export const OWNERS_READ = 'crm.objects.owners.read';
export const OAUTH = 'oauth';
/** The scopes a token configured without `scopes`, or an app without `scopes`, holds. */
export const DEFAULT_SCOPES = Object.freeze([CONTACTS_READ, CONTACTS_WRITE, TICKETS, OWNERS_READ]);
/** The account's id (its hub id). */
export const PORTAL_ID = 48_213_077;
export const BODY_MAX_BYTES = 2 * 1024 * 1024;
export const NOTE_BODY_MAX_CHARS = 65_536;
export const BATCH_MAX_INPUTS = 100;
export const SEARCH_DEFAULT_LIMIT = 10;
export const SEARCH_MAX_LIMIT = 200;
export const SEARCH_MAX_FILTER_GROUPS = 5;
export const SEARCH_MAX_FILTERS_PER_GROUP = 6;
export const SEARCH_MAX_FILTERS = 18;
export const BURST_PER_TEN_SECONDS = 100;
export const BURST_WINDOW_MS = 10_000;
export const DAILY_LIMIT = 250_000;
export const ACCESS_TOKEN_SECONDS = 1800;
export const AUTH_CODE_SECONDS = 600;
export const SIGNATURE_HEADER = 'X-HubSpot-Signature-v3';
export const TIMESTAMP_HEADER = 'X-HubSpot-Request-Timestamp';
/** The message of every 401 for a token HubSpot does not know. */
export const UNAUTHENTICATED =
  'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview';
export const MISSING_SCOPES_MESSAGE =
  "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.";
/** The user who installs apps and whose OAuth tokens these are. */
export const USER_EMAIL = 'admin@acme.example';
export const USER_ID = 7_340_021;
export const HUB_DOMAIN = 'acme.example';
/** How long a hung request keeps its socket before the server drops it. */
export const HANG_MS = 60_000;

/** HUBSPOT_DEFINED association types: `{ typeId, from, to }` (object names as in paths). */
export const ASSOCIATION_TYPES = Object.freeze([
  { typeId: 202, from: 'notes', to: 'contacts' },
  { typeId: 228, from: 'notes', to: 'tickets' },
  { typeId: 198, from: 'emails', to: 'contacts' },
  { typeId: 81, from: 'communications', to: 'contacts' },
  { typeId: 16, from: 'tickets', to: 'contacts' },
  { typeId: 15, from: 'contacts', to: 'tickets' },
  { typeId: 279, from: 'contacts', to: 'companies' },
]);

export const CHANNEL_TYPES = Object.freeze(['WHATS_APP', 'LINKEDIN_MESSAGE', 'SMS']);
const EMAIL_DIRECTIONS = ['EMAIL', 'INCOMING_EMAIL', 'FORWARDED_EMAIL'];
const EMAIL_STATUSES = ['BOUNCED', 'FAILED', 'SCHEDULED', 'SENDING', 'SENT'];
const TICKET_PRIORITIES = ['LOW', 'MEDIUM', 'HIGH', 'URGENT'];
const TICKET_CATEGORIES = ['PRODUCT_ISSUE', 'BILLING_ISSUE', 'FEATURE_REQUEST', 'GENERAL_INQUIRY'];
const LIFECYCLE_STAGES = [
  'subscriber',
  'lead',
  'marketingqualifiedlead',
  'salesqualifiedlead',
  'opportunity',
  'customer',
  'evangelist',
  'other',
];
/** Properties HubSpot sets itself: read, searched, never written. */
const READ_ONLY = ['hs_object_id', 'createdate', 'lastmodifieddate', 'hs_createdate', 'hs_lastmodifieddate'];
const SEARCH_OPERATORS = [
  'EQ',
  'NEQ',
  'LT',
  'LTE',
  'GT',
  'GTE',
  'BETWEEN',
  'IN',
  'NOT_IN',
  'HAS_PROPERTY',
  'NOT_HAS_PROPERTY',
  'CONTAINS_TOKEN',
  'NOT_CONTAINS_TOKEN',
];
const DAY_MS = 86_400_000;
/** US/Eastern, without daylight saving time. */
const ACCOUNT_UTC_OFFSET_MS = -18_000_000;
/** Where record ids start: past 2^32, as HubSpot's do. */
const FIRST_ID = 93_018_349_500;

const ENGAGEMENT_DEFAULTS = ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'];

/** The CRM objects kept here, by their name in paths. */
export const OBJECTS = Object.freeze({
  contacts: {
    singular: 'contact',
    typeId: '0-1',
    properties: ['email', 'firstname', 'lastname', 'phone', 'mobilephone', 'company', 'website', 'lifecyclestage', 'hs_whatsapp_phone_number'],
    required: [],
    defaults: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
    created: 'createdate',
    modified: 'lastmodifieddate',
    searchable: ['email', 'firstname', 'lastname', 'phone', 'mobilephone', 'company', 'website'],
  },
  communications: {
    singular: 'communication',
    typeId: '0-18',
    properties: ['hs_communication_channel_type', 'hs_communication_logged_from', 'hs_timestamp', 'hs_communication_body', 'hubspot_owner_id'],
    required: ['hs_communication_channel_type', 'hs_communication_logged_from', 'hs_timestamp'],
    defaults: ENGAGEMENT_DEFAULTS,
    created: 'hs_createdate',
    modified: 'hs_lastmodifieddate',
    searchable: [],
  },
  emails: {
    singular: 'email',
    typeId: '0-49',
    properties: ['hs_timestamp', 'hs_email_direction', 'hs_email_status', 'hs_email_subject', 'hs_email_text', 'hs_email_html', 'hs_email_headers', 'hubspot_owner_id'],
    required: ['hs_timestamp'],
    defaults: ENGAGEMENT_DEFAULTS,
    created: 'hs_createdate',
    modified: 'hs_lastmodifieddate',
    searchable: [],
  },
  notes: {
    singular: 'note',
    typeId: '0-46',
    properties: ['hs_timestamp', 'hs_note_body', 'hubspot_owner_id', 'hs_attachment_ids'],
    required: ['hs_timestamp'],
    defaults: ENGAGEMENT_DEFAULTS,
    created: 'hs_createdate',
    modified: 'hs_lastmodifieddate',
    searchable: [],
  },
  tickets: {
    singular: 'ticket',
    typeId: '0-5',
    properties: ['subject', 'hs_pipeline', 'hs_pipeline_stage', 'content', 'hs_ticket_priority', 'hubspot_owner_id', 'hs_ticket_category'],
    required: ['subject', 'hs_pipeline', 'hs_pipeline_stage'],
    defaults: ['content', 'createdate', 'hs_lastmodifieddate', 'hs_object_id', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category', 'hs_ticket_priority', 'subject'],
    created: 'createdate',
    modified: 'hs_lastmodifieddate',
    searchable: ['subject', 'content'],
  },
});

/** The object a path names: its plural, its singular or its type id; null when none. */
export function objectNamed(name) {
  for (const [plural, object] of Object.entries(OBJECTS)) {
    if (name === plural || name === object.singular || name === object.typeId) return plural;
  }
  return null;
}

function singularOf(name) {
  const plural = objectNamed(name);
  if (plural) return OBJECTS[plural].singular;
  return name === 'companies' ? 'company' : name;
}

/** The scope a read or a write of `object` needs. */
function scopeOf(object, write) {
  if (object === 'tickets') return TICKETS;
  return write ? CONTACTS_WRITE : CONTACTS_READ;
}

// ---- errors ----

/** A refusal in HubSpot's error form; `extra` is merged into the body (`errors`, `links`). */
class Refused extends Error {
  constructor(status, category, message, extra = {}) {
    super(message);
    this.status = status;
    this.category = category;
    this.extra = extra;
  }

  body() {
    return { ...errorBody(this.category, this.message), ...this.extra };
  }
}

const invalid = (message, extra) => new Refused(400, 'VALIDATION_ERROR', message, extra);
const notFound = () => new Refused(404, 'OBJECT_NOT_FOUND', 'resource not found');

/** HubSpot's error document. */
export function errorBody(category, message) {
  return { status: 'error', message, correlationId: correlationId(), category };
}

/** The body of a 429 of `policyName` (TEN_SECONDLY_ROLLING, SECONDLY, DAILY). */
export function rateLimitBody(policyName = 'TEN_SECONDLY_ROLLING') {
  return {
    status: 'error',
    message: `You have reached your ${policyName.toLowerCase()} limit.`,
    errorType: 'RATE_LIMIT',
    correlationId: correlationId(),
    policyName,
  };
}

/** One property value HubSpot would not take: `{ name, error, message }`. */
const problem = (name, error, message) => ({ name, error, message });
const optionProblem = (name, value, allowed) =>
  problem(name, 'INVALID_OPTION', `${value} was not one of the allowed options: [${allowed.join(', ')}]`);

/** HubSpot's 400 for property values: each problem listed in the message, as HubSpot writes it. */
function notValid(problems) {
  const listed = problems.map((p) => JSON.stringify({ isValid: false, message: p.message, error: p.error, name: p.name }));
  return invalid(`Property values were not valid: [${listed.join(',')}]`, {
    errors: problems.map((p) => ({ message: p.message, code: p.error, context: { propertyName: [p.name] } })),
  });
}

const DEFAULT_FAULT_CATEGORIES = {
  400: 'VALIDATION_ERROR',
  401: 'INVALID_AUTHENTICATION',
  403: 'MISSING_SCOPES',
  404: 'OBJECT_NOT_FOUND',
  409: 'CONFLICT',
  415: 'VALIDATION_ERROR',
};

// ---- webhook signatures ----

/**
 * HubSpot's v3 signature: base64 of HMAC-SHA256 under the app's client secret of `method` + `uri`
 * (the full URL the request is sent to) + the raw `body` + `timestampMs` (as decimal text). Sent as
 * `X-HubSpot-Signature-v3`, the timestamp as `X-HubSpot-Request-Timestamp`.
 * @param {string} clientSecret
 * @param {string} method
 * @param {string} uri
 * @param {string | Buffer} body
 * @param {number | string} timestampMs
 * @returns {string}
 */
export function hubspotSignatureV3(clientSecret, method, uri, body, timestampMs) {
  return createHmac('sha256', clientSecret)
    .update(String(method))
    .update(String(uri))
    .update(body)
    .update(String(timestampMs))
    .digest('base64');
}

/** HubSpot's v1 signature (`X-HubSpot-Signature`): hex SHA-256 of the client secret followed by the body. */
export function hubspotSignatureV1(clientSecret, body) {
  return createHash('sha256').update(clientSecret).update(body).digest('hex');
}

// ---- small helpers ----

function uuidLike() {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function correlationId() {
  return uuidLike();
}

function iso(ms) {
  return new Date(ms).toISOString();
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A property value as HubSpot keeps it: text (null: a value that cannot be one). */
function asText(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '';
  return null;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseRfc3339(text) {
  const trimmed = String(text).trim();
  if (!RFC3339.test(trimmed)) return null;
  const ms = Date.parse(trimmed.replace(/^(\d{4}-\d{2}-\d{2})[t ]/, '$1T').replace(/z$/, 'Z'));
  return Number.isNaN(ms) ? null : ms;
}

/** A time HubSpot takes: milliseconds since the epoch, an ISO 8601 date-time, or a date. */
function parseTime(text) {
  if (/^[+-]?\d+$/.test(text)) return Number(text);
  if (text.length === 10) return parseRfc3339(`${text}T00:00:00Z`);
  return parseRfc3339(text);
}

function isEmail(text) {
  const at = text.indexOf('@');
  if (at < 0) return false;
  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (local === '' || /\s/.test(text) || domain.includes('@')) return false;
  const dot = domain.lastIndexOf('.');
  return dot > 0 && domain.length - dot - 1 >= 2;
}

const FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A number a comparison takes: the value itself, or a date-time's milliseconds. */
function numeric(text) {
  if (FLOAT.test(text)) return Number(text);
  return parseRfc3339(text);
}

/** Whether `value` holds `token`: a word of it or the whole of it, without case; `*` a wildcard at either end. */
function containsToken(value, token) {
  let stem = token.toLowerCase();
  const lower = value.toLowerCase();
  const prefix = stem.startsWith('*');
  if (prefix) stem = stem.slice(1);
  const suffix = stem.endsWith('*');
  if (suffix) stem = stem.slice(0, -1);
  const fits = (word) => {
    if (prefix && suffix) return word.includes(stem);
    if (prefix) return word.endsWith(stem);
    if (suffix) return word.startsWith(stem);
    return word === stem;
  };
  return fits(lower) || lower.split(/[\s@.,;:\-_/]/).some(fits);
}

function compareText(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether a record's `properties` pass a (checked) search filter. */
function passes(filter, properties) {
  const name = filter.propertyName;
  const operator = filter.operator;
  const stored = typeof properties[name] === 'string' ? properties[name] : undefined;
  const wanted = asText(filter.value) ?? '';
  const same = (a, b) => (name === 'email' ? a.toLowerCase() === b.toLowerCase() : a === b);
  const compare = (a, b) => {
    const [x, y] = [numeric(a), numeric(b)];
    if (x !== null && y !== null) return x < y ? -1 : x > y ? 1 : 0;
    return compareText(a, b);
  };
  const values = (Array.isArray(filter.values) ? filter.values : []).map(asText).filter((v) => v !== null);
  const within = (text) => values.some((v) => v.toLowerCase() === text.toLowerCase());
  if (operator === 'HAS_PROPERTY') return stored !== undefined;
  if (operator === 'NOT_HAS_PROPERTY') return stored === undefined;
  if (stored === undefined) return ['NEQ', 'NOT_IN', 'NOT_CONTAINS_TOKEN'].includes(operator);
  switch (operator) {
    case 'EQ':
      return same(stored, wanted);
    case 'NEQ':
      return !same(stored, wanted);
    case 'IN':
      return within(stored);
    case 'NOT_IN':
      return !within(stored);
    case 'CONTAINS_TOKEN':
      return containsToken(stored, wanted);
    case 'NOT_CONTAINS_TOKEN':
      return !containsToken(stored, wanted);
    case 'LT':
      return compare(stored, wanted) < 0;
    case 'LTE':
      return compare(stored, wanted) <= 0;
    case 'GT':
      return compare(stored, wanted) > 0;
    case 'GTE':
      return compare(stored, wanted) >= 0;
    case 'BETWEEN':
      return compare(stored, wanted) >= 0 && compare(stored, asText(filter.highValue) ?? '') <= 0;
    default:
      return false;
  }
}

/** The names a query parameter lists, repeated or comma-separated. */
function listed(query, name) {
  return query
    .getAll(name)
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
}

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function defaultPipeline() {
  const stage = (id, label, displayOrder, ticketState) => ({ id, label, displayOrder, archived: false, metadata: { ticketState } });
  return {
    id: '0',
    label: 'Support Pipeline',
    displayOrder: 0,
    archived: false,
    stages: [stage('1', 'New', 0, 'OPEN'), stage('2', 'Waiting on contact', 1, 'OPEN'), stage('3', 'Waiting on us', 2, 'OPEN'), stage('4', 'Closed', 3, 'CLOSED')],
  };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function normalizeBurst(limit) {
  if (limit === null || limit === undefined) return null;
  const config = typeof limit === 'number' ? { max: limit } : limit;
  const max = config.max ?? config.perWindow;
  if (!(Number.isInteger(max) && max >= 0)) throw new Error(`hubspot fake: a rate limit's max must be a non-negative integer, got ${max}`);
  return { max, windowMs: config.windowMs ?? BURST_WINDOW_MS };
}

function nonNegativeOrNull(value, what) {
  if (value === null || value === undefined) return null;
  if (!(Number.isInteger(value) && value >= 0)) throw new Error(`hubspot fake: ${what} must be a non-negative integer or null, got ${value}`);
  return value;
}

/**
 * @typedef {{ scopes?: string[] }} TokenOptions
 * @typedef {{ clientSecret: string, redirectUris: string[], scopes?: string[], name?: string }} AppOptions
 * @typedef {{ email: string, firstName?: string, lastName?: string }} OwnerOptions
 * @typedef {{ label: string, stages: Array<{ label: string, ticketState?: 'OPEN'|'CLOSED' }> }} PipelineOptions
 * @typedef {{ status: number, body?: unknown, headers?: Record<string, string> }} Reply
 * @typedef {{ at: number, method: string, path: string, query: Record<string, string>,
 *   headers: import('node:http').IncomingHttpHeaders, body: unknown, status: number | null }} Call
 * @typedef {{ at: number, policy: 'TEN_SECONDLY_ROLLING'|'SECONDLY'|'DAILY', method: string, path: string,
 *   retryAfter: number }} Throttle
 * @typedef {{ id: string, properties: Record<string, string>, createdAt: string, updatedAt: string,
 *   archived: boolean, associations: Array<{ toObjectType: string, toObjectId: string,
 *   associationCategory: string, associationTypeId: number, label: string }> }} StoredRecord
 *
 * @typedef {object} HubSpotOptions
 * @property {Record<string, TokenOptions>} [tokens] private app tokens (scopes default to DEFAULT_SCOPES)
 * @property {Record<string, AppOptions>} [apps] public apps for OAuth, by client id
 * @property {OwnerOptions[]} [owners]
 * @property {PipelineOptions[]} [pipelines] ticket pipelines besides the default "0"
 * @property {Array<{ name: string, unique?: boolean }>} [contactProperties] custom contact properties
 * @property {number | { max: number, windowMs?: number } | null} [rateLimit] each app's burst (100 per 10 s; null: off)
 * @property {number | null} [dailyLimit] private apps' requests a day (250,000; null: off)
 * @property {number | null} [searchLimit] searches per second (null, off, unless set)
 * @property {number} [expiresIn] OAuth access tokens' lifetime in seconds (1800)
 * @property {number} [searchLagMs] how long after a write search sees it (0)
 * @property {number} [latencyMs] every answer comes this much later (0)
 * @property {number} [hangMs] how long `hang()` keeps a socket (60 s)
 * @property {number} [portalId]
 * @property {() => number} [now] the clock, in milliseconds (Date.now)
 */

/**
 * Starts the server.
 * @param {HubSpotOptions} [options]
 */
export async function startHubSpot(options = {}) {
  const now = options.now ?? (() => Date.now());
  const portalId = options.portalId ?? PORTAL_ID;
  const hangMs = options.hangMs ?? HANG_MS;
  /** @type {Call[]} */
  const requests = [];
  /** @type {Throttle[]} */
  const throttles = [];
  const deliveries = [];
  const authorizations = [];
  const failures = [];
  const hangTimers = new Set();
  let hangsLeft = 0;
  let latencyMs = options.latencyMs ?? 0;
  let searchLagMs = options.searchLagMs ?? 0;
  let accessTokenSeconds = options.expiresIn ?? ACCESS_TOKEN_SECONDS;

  let burst = normalizeBurst(options.rateLimit === undefined ? BURST_PER_TEN_SECONDS : options.rateLimit);
  let dailyLimit = nonNegativeOrNull(options.dailyLimit === undefined ? DAILY_LIMIT : options.dailyLimit, 'dailyLimit');
  let searchLimit = nonNegativeOrNull(options.searchLimit, 'searchLimit');
  /** Each app's hits in its rolling window. */
  const bursts = new Map();
  let searches = [];
  let daily = { day: 0, count: 0 };

  let nextId = FIRST_ID;
  const newId = () => String(++nextId);
  let nextAppId = 3_210_000;
  let nextEventId = 3_816_279_340;

  /** token → { scopes, oauth: null | { clientId, refreshToken, expiresMs } } */
  const tokens = new Map();
  /** clientId → { clientSecret, redirectUris, scopes, name, appId } */
  const apps = new Map();
  const codes = new Map();
  const refreshTokens = new Map();
  /** Custom contact properties: name → unique. */
  const contactProperties = new Map();
  const records = [];
  // The contacts deleted through gdpr-delete, and the emails it blocked.
  const gdprDeleted = [];
  const gdprBlocked = [];
  const owners = [];
  const pipelines = [defaultPipeline()];
  const subscriptions = new Map();

  function addToken(token, scopes = DEFAULT_SCOPES) {
    tokens.set(token, { scopes: [...scopes], oauth: null });
  }

  function addContactProperty(name, { unique = false } = {}) {
    if (OBJECTS.contacts.properties.includes(name) || READ_ONLY.includes(name)) {
      throw new Error(`hubspot fake: ${name} is a property contacts already have`);
    }
    contactProperties.set(name, Boolean(unique));
  }

  function addOwner({ email, firstName = '', lastName = '' }) {
    const id = newId();
    const at = iso(now());
    owners.push({
      id,
      email,
      type: 'PERSON',
      firstName,
      lastName,
      userId: 5_150_000 + owners.length,
      createdAt: at,
      updatedAt: at,
      archived: false,
    });
    return id;
  }

  function addPipeline({ label, stages }) {
    const pipeline = {
      id: newId(),
      label,
      displayOrder: pipelines.length,
      archived: false,
      stages: stages.map((stage, position) => ({
        id: newId(),
        label: stage.label,
        displayOrder: position,
        archived: false,
        metadata: { ticketState: stage.ticketState ?? 'OPEN' },
      })),
    };
    pipelines.push(pipeline);
    return structuredClone(pipeline);
  }

  function registerApp(clientId, { clientSecret, redirectUris, redirectUri, scopes = DEFAULT_SCOPES, name }) {
    if (typeof clientSecret !== 'string' || clientSecret === '') throw new Error(`hubspot fake: app ${clientId} has no clientSecret`);
    const uris = redirectUris ?? (redirectUri ? [redirectUri] : []);
    if (uris.length === 0) throw new Error(`hubspot fake: app ${clientId} has no redirectUris`);
    nextAppId += 1;
    apps.set(clientId, { clientSecret, redirectUris: [...uris], scopes: [...scopes], name: name ?? `App ${clientId}`, appId: nextAppId });
    return nextAppId;
  }

  for (const [token, config] of Object.entries(options.tokens ?? {})) addToken(token, config?.scopes ?? DEFAULT_SCOPES);
  for (const [clientId, config] of Object.entries(options.apps ?? {})) registerApp(clientId, config);
  for (const property of options.contactProperties ?? []) addContactProperty(property.name, property);
  for (const owner of options.owners ?? []) addOwner(owner);
  for (const pipeline of options.pipelines ?? []) addPipeline(pipeline);

  // ---- properties ----

  /** Whether `object` has the property (to set it, or to read and search it). */
  function knows(object, name) {
    const def = OBJECTS[object];
    return (
      def.properties.includes(name) ||
      [def.created, def.modified, 'hs_object_id'].includes(name) ||
      (object === 'contacts' && contactProperties.has(name))
    );
  }

  function uniqueProperties(object) {
    if (object !== 'contacts') return [];
    return ['email', ...[...contactProperties].filter(([, unique]) => unique).map(([name]) => name)];
  }

  /** The index of the record of `object` whose `name` is `value` (but `exceptId`); -1 when none. */
  function holder(object, name, value, exceptId) {
    return records.findIndex((record) => {
      if (record.object !== object || record.id === exceptId) return false;
      const held = record.properties[name];
      if (typeof held !== 'string') return false;
      return name === 'email' ? held.toLowerCase() === value.toLowerCase() : held === value;
    });
  }

  /** A unique property's value held by another record is a conflict. */
  function checkUnique(object, values, exceptId) {
    for (const name of uniqueProperties(object)) {
      const value = values[name];
      if (typeof value !== 'string' || value === '') continue;
      const at = holder(object, name, value, exceptId);
      if (at >= 0) throw new Refused(409, 'CONFLICT', `Contact already exists. Existing ID: ${records[at].id}`);
    }
  }

  /** A value checked and normalised: `{ value }` or `{ problem }`. */
  function checkValue(name, text) {
    const option = (allowed) => (allowed.includes(text) ? { value: text } : { problem: optionProblem(name, text, allowed) });
    switch (name) {
      case 'email':
        return isEmail(text) ? { value: text.toLowerCase() } : { problem: problem(name, 'INVALID_EMAIL', `Email address ${text} is invalid`) };
      case 'lifecyclestage':
        return option(LIFECYCLE_STAGES);
      case 'hs_timestamp': {
        const ms = parseTime(text);
        return ms === null || Number.isNaN(ms)
          ? { problem: problem(name, 'INVALID_DATE', `${text} is not a valid date-time: milliseconds since the epoch or ISO 8601`) }
          : { value: iso(ms) };
      }
      case 'hs_communication_channel_type':
        return option(CHANNEL_TYPES);
      case 'hs_communication_logged_from':
        return option(['CRM']);
      case 'hs_email_direction':
        return option(EMAIL_DIRECTIONS);
      case 'hs_email_status':
        return option(EMAIL_STATUSES);
      case 'hs_ticket_priority':
        return option(TICKET_PRIORITIES);
      case 'hs_ticket_category': {
        const bad = text.split(';').find((category) => !TICKET_CATEGORIES.includes(category));
        return bad === undefined ? { value: text } : { problem: optionProblem(name, bad, TICKET_CATEGORIES) };
      }
      case 'hs_note_body': {
        const length = [...text].length;
        return length > NOTE_BODY_MAX_CHARS
          ? { problem: problem(name, 'MAX_CHARACTERS', `hs_note_body is ${length} characters; at most ${NOTE_BODY_MAX_CHARS} are allowed`) }
          : { value: text };
      }
      case 'hubspot_owner_id':
        return option(owners.map((owner) => owner.id));
      default:
        return { value: text };
    }
  }

  /** A ticket's stage must be one of its pipeline's. */
  function checkStage(values, current, problems) {
    const given = (name) => (typeof values[name] === 'string' ? values[name] : undefined);
    const stored = (name) => (current && typeof current[name] === 'string' ? current[name] : undefined);
    if (given('hs_pipeline') === undefined && given('hs_pipeline_stage') === undefined) return;
    const pipelineId = given('hs_pipeline') ?? stored('hs_pipeline');
    const stageId = given('hs_pipeline_stage') ?? stored('hs_pipeline_stage');
    if (pipelineId === undefined || stageId === undefined) return;
    const found = pipelines.find((p) => p.id === pipelineId);
    if (!found) {
      problems.push(optionProblem('hs_pipeline', pipelineId, pipelines.map((p) => p.id)));
      return;
    }
    const stages = found.stages.map((s) => s.id);
    if (!stages.includes(stageId)) problems.push(optionProblem('hs_pipeline_stage', stageId, stages));
  }

  /** The values of a create (`current` null) or an update, checked and normalised; `""` clears. */
  function checkProperties(object, given, current) {
    let fields;
    if (isPlainObject(given)) fields = given;
    else if (given === null || given === undefined) fields = {};
    else throw invalid('properties must be an object of property names to values');
    const problems = [];
    const values = {};
    for (const [name, value] of Object.entries(fields)) {
      if (READ_ONLY.includes(name)) {
        problems.push(problem(name, 'READ_ONLY_VALUE', `"${name}" is a read only property; its value cannot be set.`));
        continue;
      }
      if (!knows(object, name)) {
        problems.push(problem(name, 'PROPERTY_DOESNT_EXIST', `Property "${name}" does not exist`));
        continue;
      }
      const text = asText(value);
      if (text === null) {
        problems.push(problem(name, 'INVALID_PROPERTY_VALUE', `${JSON.stringify(value)} is not a valid value for ${name}: a property's value is a string`));
        continue;
      }
      if (text === '') {
        values[name] = '';
        continue;
      }
      const checked = checkValue(name, text);
      if (checked.problem) problems.push(checked.problem);
      else values[name] = checked.value;
    }
    if (object === 'tickets' && !current && !('hs_pipeline' in values) && pipelines.length > 0) {
      values.hs_pipeline = pipelines[0].id;
    }
    for (const required of OBJECTS[object].required) {
      const value = values[required];
      const missing = typeof value !== 'string' ? !current : value === '';
      if (missing && !problems.some((p) => p.name === required)) {
        problems.push(problem(required, 'REQUIRED_PROPERTY', `Property "${required}" is required`));
      }
    }
    if (object === 'tickets' && problems.length === 0) checkStage(values, current, problems);
    if (problems.length > 0) throw notValid(problems);
    return values;
  }

  /** The associations of a create, each to an existing record by a type that fits. */
  function checkAssociations(object, given) {
    if (given === undefined || given === null) return [];
    if (!Array.isArray(given)) throw invalid('associations must be an array');
    const from = OBJECTS[object].singular;
    const associations = [];
    given.forEach((item, index) => {
      const to = isPlainObject(item) && isPlainObject(item.to) ? item.to.id : undefined;
      let toId;
      if (typeof to === 'string') toId = to;
      else if (typeof to === 'number') toId = String(to);
      else throw invalid(`associations[${index}].to.id is required`);
      const types = isPlainObject(item) ? item.types : undefined;
      if (!Array.isArray(types) || types.length === 0) throw invalid(`associations[${index}].types is required`);
      for (const kind of types) {
        const category = isPlainObject(kind) && typeof kind.associationCategory === 'string' ? kind.associationCategory : '';
        const typeId = isPlainObject(kind) ? kind.associationTypeId : undefined;
        if (!(Number.isInteger(typeId) && typeId >= 0)) {
          throw invalid(`associations[${index}].types: associationTypeId is required (a number)`);
        }
        if (category !== 'HUBSPOT_DEFINED') {
          throw invalid(`association type ${category} ${typeId} from ${from} to record ${toId} does not exist in this account`);
        }
        const type = ASSOCIATION_TYPES.find((t) => t.typeId === typeId);
        if (!type) {
          throw invalid(`association type HUBSPOT_DEFINED ${typeId} from ${from} to record ${toId} is not a known association type`);
        }
        const [typeFrom, typeTo] = [singularOf(type.from), singularOf(type.to)];
        const label = `${typeFrom}_to_${typeTo}`;
        if (type.from !== object) {
          throw invalid(`association ${label} (HUBSPOT_DEFINED ${typeId}) cannot be made from a ${from}: it goes from ${typeFrom} to ${typeTo}`);
        }
        const toObject = objectNamed(type.to);
        const exists = toObject !== null && records.some((record) => record.object === toObject && record.id === toId);
        if (!exists) throw invalid(`association ${label} (HUBSPOT_DEFINED ${typeId}) to ${typeTo} ${toId}: no ${typeTo} has that id`);
        associations.push({ toObject: type.to, toId, category, typeId });
      }
    });
    return associations;
  }

  // ---- records ----

  function api(record, properties, updatedMs) {
    return { id: record.id, properties, createdAt: iso(record.createdMs), updatedAt: iso(updatedMs), archived: false };
  }

  function associationJson(association, from) {
    return {
      toObjectType: association.toObject,
      toObjectId: association.toId,
      associationCategory: association.category,
      associationTypeId: association.typeId,
      label: `${singularOf(from)}_to_${singularOf(association.toObject)}`,
    };
  }

  /** Every property and association, as the readers give it. */
  function full(record) {
    return {
      ...api(record, { ...record.properties }, record.updatedMs),
      associations: record.associations.map((a) => associationJson(a, record.object)),
    };
  }

  /** A record's properties as a read answers them: the object's defaults and those asked for. */
  function chosen(object, properties, asked) {
    const answer = {};
    for (const name of [...OBJECTS[object].defaults, ...asked]) answer[name] = properties[name] ?? null;
    return answer;
  }

  function insert(object, values, associations, atMs) {
    const id = newId();
    const properties = {};
    for (const [name, value] of Object.entries(values)) if (value !== '') properties[name] = value;
    properties.hs_object_id = id;
    properties[OBJECTS[object].created] = iso(atMs);
    properties[OBJECTS[object].modified] = iso(atMs);
    const record = { object, id, properties, createdMs: atMs, updatedMs: atMs, associations, writes: [{ at: atMs, properties: { ...properties } }] };
    records.push(record);
    return record;
  }

  function modify(record, values, atMs) {
    for (const [name, value] of Object.entries(values)) {
      if (value === '') delete record.properties[name];
      else record.properties[name] = value;
    }
    record.properties[OBJECTS[record.object].modified] = iso(atMs);
    record.updatedMs = atMs;
    record.writes.push({ at: atMs, properties: { ...record.properties } });
  }

  /** The record a path names: by id, or by a unique property's value (`?idProperty=`). */
  function find(object, id, idProperty) {
    if (!idProperty || idProperty === 'hs_object_id') {
      const record = records.find((r) => r.object === object && r.id === id);
      if (!record) throw notFound();
      return record;
    }
    if (!uniqueProperties(object).includes(idProperty)) {
      throw invalid(`idProperty ${idProperty} is not a unique property of ${object}`);
    }
    const at = holder(object, idProperty, id, undefined);
    if (at < 0) throw notFound();
    return records[at];
  }

  function create(object, body, atMs) {
    if (!isPlainObject(body)) throw invalid('The request body must be a JSON object');
    const values = checkProperties(object, body.properties, null);
    checkUnique(object, values, undefined);
    const associations = checkAssociations(object, body.associations);
    const record = insert(object, values, associations, atMs);
    return api(record, { ...record.properties }, record.updatedMs);
  }

  function read(object, id, query) {
    const record = find(object, id, query.get('idProperty'));
    const asked = listed(query, 'properties').filter((name) => knows(object, name));
    const answer = api(record, chosen(object, record.properties, asked), record.updatedMs);
    const associated = {};
    for (const to of listed(query, 'associations')) {
      const toName = objectNamed(to) ?? to;
      const results = record.associations
        .filter((a) => a.toObject === toName)
        .map((a) => ({ id: a.toId, type: `${singularOf(object)}_to_${singularOf(a.toObject)}` }));
      if (results.length > 0) associated[toName] = { results };
    }
    if (Object.keys(associated).length > 0) answer.associations = associated;
    return answer;
  }

  function update(object, id, query, body, atMs) {
    const record = find(object, id, query.get('idProperty'));
    if (!isPlainObject(body)) throw invalid('The request body must be a JSON object');
    const values = checkProperties(object, body.properties, { ...record.properties });
    checkUnique(object, values, record.id);
    modify(record, values, atMs);
    return api(record, { ...record.properties }, record.updatedMs);
  }

  function archive(object, id, query) {
    const record = find(object, id, query.get('idProperty'));
    records.splice(records.indexOf(record), 1);
  }

  /** HubSpot's GDPR delete: the contact and what is associated with it alone, and its email blocked. */
  function gdprDelete(object, body) {
    const id = isPlainObject(body) ? body.objectId : undefined;
    if (typeof id !== 'string' || id === '') throw invalid('objectId is required');
    let record;
    try {
      record = find(object, id, body.idProperty);
    } catch (error) {
      if (body.idProperty !== 'email') throw error;
      gdprBlocked.push(id.toLowerCase());
      return;
    }
    records.splice(records.indexOf(record), 1);
    if (record.properties.email) gdprBlocked.push(record.properties.email);
    const alone = (r) => r.associations.length > 0
      && r.associations.every((a) => a.toObjectType === 'contacts' && a.toObjectId === record.id);
    for (const other of records.filter(alone)) records.splice(records.indexOf(other), 1);
    gdprDeleted.push(record.id);
  }

  function batchUpsert(object, body, atMs) {
    const inputs = isPlainObject(body) ? body.inputs : undefined;
    if (!Array.isArray(inputs)) throw invalid('inputs is required: an array of {id, idProperty, properties}');
    if (inputs.length > BATCH_MAX_INPUTS) throw invalid(`Batch input size ${inputs.length} exceeds the limit of ${BATCH_MAX_INPUTS}`);
    const unique = uniqueProperties(object);
    const plans = [];
    const seen = new Set();
    inputs.forEach((input, index) => {
      const idProperty = isPlainObject(input) ? input.idProperty : undefined;
      if (typeof idProperty !== 'string') throw invalid(`inputs[${index}].idProperty is required`);
      if (!unique.includes(idProperty)) throw invalid(`inputs[${index}].idProperty ${idProperty} is not a unique property of ${object}`);
      const given = asText(input.id);
      if (given === null || given === '') throw invalid(`inputs[${index}].id is required`);
      const checked = checkValue(idProperty, given);
      if (checked.problem) throw notValid([checked.problem]);
      const value = checked.value;
      const key = `${idProperty}\n${value.toLowerCase()}`;
      if (seen.has(key)) throw invalid(`Duplicate IDs found in batch input: [${value}]`);
      seen.add(key);
      const at = holder(object, idProperty, value, undefined);
      const existing = at >= 0 ? records[at] : null;
      const values = checkProperties(object, input.properties, existing ? { ...existing.properties } : null);
      if (!existing) values[idProperty] = value;
      checkUnique(object, values, existing?.id);
      plans.push({ existing, values });
    });
    const results = plans.map(({ existing, values }) => {
      let record = existing;
      if (record) modify(record, values, atMs);
      else record = insert(object, values, [], atMs);
      return { ...api(record, { ...record.properties }, record.updatedMs), new: !existing };
    });
    return { status: 'COMPLETE', results, startedAt: iso(atMs), completedAt: iso(atMs) };
  }

  function checkFilter(object, filter) {
    const name = isPlainObject(filter) ? filter.propertyName : undefined;
    if (typeof name !== 'string') throw invalid('Each filter needs a propertyName');
    if (!knows(object, name)) {
      throw invalid(`There was a problem with the request: ${OBJECTS[object].singular} property "${name}" does not exist`);
    }
    const operator = typeof filter.operator === 'string' ? filter.operator : '';
    if (!SEARCH_OPERATORS.includes(operator)) {
      throw invalid(`Unknown operator "${operator}" in the filter on ${name}: one of ${SEARCH_OPERATORS.join(', ')}`);
    }
    const needsValue = !['HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'IN', 'NOT_IN'].includes(operator);
    const text = (value) => (value === undefined ? null : asText(value));
    const value = text(filter.value);
    if (needsValue && (value === null || value === '')) throw invalid(`The ${operator} filter on ${name} needs a value`);
    if ((operator === 'IN' || operator === 'NOT_IN') && !Array.isArray(filter.values)) {
      throw invalid(`The ${operator} filter on ${name} needs values (an array)`);
    }
    const high = text(filter.highValue);
    if (operator === 'BETWEEN' && (high === null || high === '')) throw invalid(`The BETWEEN filter on ${name} needs a highValue`);
  }

  function search(object, body, nowMs) {
    if (!isPlainObject(body)) throw invalid('The request body must be a JSON object');
    let groups = body.filterGroups ?? [];
    if (!Array.isArray(groups)) throw invalid('filterGroups must be an array');
    if (groups.length > SEARCH_MAX_FILTER_GROUPS) {
      throw invalid(`Too many filter groups (${groups.length}): at most ${SEARCH_MAX_FILTER_GROUPS} are allowed`);
    }
    let totalFilters = 0;
    groups.forEach((group, index) => {
      const filters = isPlainObject(group) ? group.filters : undefined;
      if (!Array.isArray(filters)) throw invalid(`filterGroups[${index}].filters must be an array`);
      if (filters.length > SEARCH_MAX_FILTERS_PER_GROUP) {
        throw invalid(`Too many filters in filterGroups[${index}] (${filters.length}): at most ${SEARCH_MAX_FILTERS_PER_GROUP} are allowed`);
      }
      totalFilters += filters.length;
      for (const filter of filters) checkFilter(object, filter);
    });
    if (totalFilters > SEARCH_MAX_FILTERS) {
      throw invalid(`Too many filters (${totalFilters}): at most ${SEARCH_MAX_FILTERS} are allowed in all`);
    }
    let limit = SEARCH_DEFAULT_LIMIT;
    if (body.limit !== undefined && body.limit !== null) {
      if (!(Number.isInteger(body.limit) && body.limit >= 0 && body.limit <= SEARCH_MAX_LIMIT)) {
        throw invalid(`limit must be a number from 0 to ${SEARCH_MAX_LIMIT} (got ${JSON.stringify(body.limit)})`);
      }
      limit = body.limit;
    }
    const afterText = asText(body.after);
    if (afterText === null) throw invalid('after must be a string');
    let after = 0;
    if (afterText !== '') {
      if (!/^\+?\d+$/.test(afterText)) throw invalid(`after ${afterText} is not a valid paging cursor`);
      after = Number(afterText);
    }
    const asked = (Array.isArray(body.properties) ? body.properties : []).filter((name) => typeof name === 'string' && knows(object, name));
    const query = typeof body.query === 'string' ? body.query.toLowerCase() : null;
    const hits = [];
    for (const record of records) {
      if (record.object !== object) continue;
      const write = record.writes.findLast((w) => w.at + searchLagMs <= nowMs);
      if (!write) continue;
      const properties = write.properties;
      const filtered = groups.length === 0 || groups.some((group) => group.filters.every((filter) => passes(filter, properties)));
      if (!filtered) continue;
      if (query !== null) {
        const found = OBJECTS[object].searchable.some((name) => typeof properties[name] === 'string' && properties[name].toLowerCase().includes(query));
        if (!found) continue;
      }
      hits.push({ record, write });
    }
    const sort = Array.isArray(body.sorts) && isPlainObject(body.sorts[0]) ? body.sorts[0] : null;
    const byId = (a, b) => a.record.id.length - b.record.id.length || compareText(a.record.id, b.record.id);
    hits.sort((a, b) => {
      if (!sort) return byId(a, b);
      const name = typeof sort.propertyName === 'string' ? sort.propertyName : '';
      const value = (hit) => (typeof hit.write.properties[name] === 'string' ? hit.write.properties[name] : '');
      const [x, y] = [value(a), value(b)];
      const [nx, ny] = [numeric(x), numeric(y)];
      let order = nx !== null && ny !== null ? (nx < ny ? -1 : nx > ny ? 1 : 0) : compareText(x, y);
      if (sort.direction === 'DESCENDING') order = -order;
      return order || byId(a, b);
    });
    const results = hits.slice(after, after + limit).map(({ record, write }) => api(record, chosen(object, write.properties, asked), write.at));
    const answer = { total: hits.length, results };
    if (after + limit < hits.length) answer.paging = { next: { after: String(after + limit) } };
    return answer;
  }

  function ownersPage(query) {
    let limit = 100;
    const givenLimit = query.get('limit');
    if (givenLimit !== null) {
      const parsed = /^\+?\d+$/.test(givenLimit) ? Number(givenLimit) : NaN;
      if (!(parsed >= 1 && parsed <= 500)) throw invalid(`limit must be a number from 1 to 500 (got ${givenLimit})`);
      limit = parsed;
    }
    let after = 0;
    const givenAfter = query.get('after');
    if (givenAfter !== null) {
      if (!/^\+?\d+$/.test(givenAfter)) throw invalid(`after ${givenAfter} is not a valid paging cursor`);
      after = Number(givenAfter);
    }
    const email = query.get('email');
    const matching = owners.filter((owner) => email === null || owner.email.toLowerCase() === email.toLowerCase());
    const answer = { results: structuredClone(matching.slice(after, after + limit)) };
    if (after + limit < matching.length) answer.paging = { next: { after: String(after + limit) } };
    return answer;
  }

  function accountDetails() {
    return {
      portalId,
      accountType: 'STANDARD',
      timeZone: 'US/Eastern',
      companyCurrency: 'USD',
      additionalCurrencies: [],
      utcOffset: '-05:00',
      utcOffsetMilliseconds: ACCOUNT_UTC_OFFSET_MS,
      uiDomain: 'app.hubspot.com',
      dataHostingLocation: 'na1',
    };
  }

  // ---- routes ----

  /**
   * The route of `method` on `path`: `{ route }`, or `{ route: null, known }` (known: the path is
   * served, with another method). A route is `{ kind, object?, id?, scope?, json?, oauth? }`.
   */
  function route(method, path) {
    const segments = path.replace(/^\/+|\/+$/g, '').split('/').map(decodeSegment);
    const pick = (candidates) => {
      const found = candidates.find(([allowed]) => allowed === method);
      return found ? { route: found[1] } : { route: null, known: candidates.length > 0 };
    };
    const isVersion = (segment) => segment === VERSION;
    let rest = null;
    if (segments[0] === 'crm' && segments[1] === 'objects' && isVersion(segments[2])) rest = segments.slice(3);
    else if (segments[0] === 'crm' && segments[1] === 'v3' && segments[2] === 'objects') rest = segments.slice(3);
    if (rest) {
      if (rest.length === 0) return { route: null, known: false };
      const [name, ...tail] = rest;
      const object = objectNamed(name);
      if (!object) return { route: { kind: 'unknownObject', name } };
      const write = { object, scope: scopeOf(object, true), json: true };
      if (tail.length === 0) return pick([['POST', { kind: 'create', ...write }]]);
      if (tail.length === 2 && tail[0] === 'batch' && tail[1] === 'upsert') return pick([['POST', { kind: 'batchUpsert', ...write }]]);
      if (tail.length === 1) {
        const id = tail[0];
        const candidates = [
          ['GET', { kind: 'get', object, id, scope: scopeOf(object, false) }],
          ['PATCH', { kind: 'patch', object, id, scope: scopeOf(object, true), json: true }],
          ['DELETE', { kind: 'archive', object, id, scope: scopeOf(object, true) }],
        ];
        if (id === 'search') candidates.push(['POST', { kind: 'search', object, scope: scopeOf(object, false), json: true }]);
        if (id === 'gdpr-delete' && object === 'contacts') candidates.push(['POST', { kind: 'gdprDelete', object, scope: scopeOf(object, true), json: true }]);
        return pick(candidates);
      }
      return { route: null, known: false };
    }
    let pipelineRest = null;
    if (segments[0] === 'crm' && segments[1] === 'pipelines' && isVersion(segments[2])) pipelineRest = segments.slice(3);
    else if (segments[0] === 'crm' && segments[1] === 'v3' && segments[2] === 'pipelines') pipelineRest = segments.slice(3);
    if (pipelineRest && pipelineRest.length >= 1 && objectNamed(pipelineRest[0]) === 'tickets') {
      if (pipelineRest.length === 1) return pick([['GET', { kind: 'pipelines', scope: TICKETS }]]);
      if (pipelineRest.length === 2) return pick([['GET', { kind: 'pipeline', id: pipelineRest[1], scope: TICKETS }]]);
      return { route: null, known: false };
    }
    let ownersRest = null;
    if (segments[0] === 'crm' && segments[1] === 'owners' && isVersion(segments[2])) ownersRest = segments.slice(3);
    else if (segments[0] === 'crm' && segments[1] === 'v3' && segments[2] === 'owners') ownersRest = segments.slice(3);
    if (ownersRest) {
      if (ownersRest.length === 0) return pick([['GET', { kind: 'owners', scope: OWNERS_READ }]]);
      if (ownersRest.length === 1) return pick([['GET', { kind: 'owner', id: ownersRest[0], scope: OWNERS_READ }]]);
      return { route: null, known: false };
    }
    if (segments.length === 3 && segments[0] === 'account-info' && (isVersion(segments[1]) || segments[1] === 'v3') && segments[2] === 'details') {
      return pick([['GET', { kind: 'accountDetails' }]]);
    }
    if (segments[0] === 'oauth') {
      if (segments.length === 2 && segments[1] === 'authorize') {
        return pick([
          ['GET', { kind: 'authorizePage', oauth: true }],
          ['POST', { kind: 'consent', oauth: true }],
        ]);
      }
      if (segments[1] === 'v1' || isVersion(segments[1])) {
        if (segments.length === 3 && segments[2] === 'token') return pick([['POST', { kind: 'token', oauth: true }]]);
        if (segments.length === 4 && segments[2] === 'access-tokens') return pick([['GET', { kind: 'accessTokenInfo', token: segments[3], oauth: true }]]);
        if (segments.length === 4 && segments[2] === 'refresh-tokens') {
          return pick([
            ['GET', { kind: 'refreshTokenInfo', token: segments[3], oauth: true }],
            ['DELETE', { kind: 'revokeRefreshToken', token: segments[3], oauth: true }],
          ]);
        }
      }
    }
    return { route: null, known: false };
  }

  /** An authenticated, permitted call: `{ status, body }` (body undefined: none). */
  function serveRoute(found, query, body, atMs) {
    switch (found.kind) {
      case 'create':
        return { status: 201, body: create(found.object, body, atMs) };
      case 'get':
        return { status: 200, body: read(found.object, found.id, query) };
      case 'patch':
        return { status: 200, body: update(found.object, found.id, query, body, atMs) };
      case 'archive':
        archive(found.object, found.id, query);
        return { status: 204, body: undefined };
      case 'gdprDelete':
        gdprDelete(found.object, body);
        return { status: 204, body: undefined };
      case 'batchUpsert':
        return { status: 200, body: batchUpsert(found.object, body, atMs) };
      case 'search':
        return { status: 200, body: search(found.object, body, atMs) };
      case 'unknownObject':
        throw invalid(`Unable to infer object type from: ${found.name}`);
      case 'pipelines':
        return { status: 200, body: { results: structuredClone(pipelines) } };
      case 'pipeline': {
        const pipeline = pipelines.find((p) => p.id === found.id);
        if (!pipeline) throw notFound();
        return { status: 200, body: structuredClone(pipeline) };
      }
      case 'owners':
        return { status: 200, body: ownersPage(query) };
      case 'owner': {
        const owner = owners.find((o) => o.id === found.id);
        if (!owner) throw notFound();
        return { status: 200, body: structuredClone(owner) };
      }
      case 'accountDetails':
        return { status: 200, body: accountDetails() };
      default:
        throw notFound();
    }
  }

  // ---- authentication and limits ----

  function expiredRefusal(expiresMs, atMs) {
    const minutes = Math.floor((atMs - expiresMs) / 60_000);
    return new Refused(401, 'EXPIRED_AUTHENTICATION', `The OAuth token used to make this call expired ${minutes} minute(s) ago.`);
  }

  /** The caller of an authenticated call: `{ app, private, scopes }`; throws a 401. */
  function authenticate(headers, atMs) {
    const unknown = () => new Refused(401, 'INVALID_AUTHENTICATION', UNAUTHENTICATED);
    const match = /^bearer\s+(.+)$/i.exec(String(headers.authorization ?? '').trim());
    const bearer = match ? match[1].trim() : '';
    if (!bearer) throw unknown();
    const token = tokens.get(bearer);
    if (!token) throw unknown();
    if (!token.oauth) return { app: `private:${bearer}`, private: true, scopes: token.scopes };
    if (atMs >= token.oauth.expiresMs) throw expiredRefusal(token.oauth.expiresMs, atMs);
    return { app: `app:${token.oauth.clientId}`, private: false, scopes: token.scopes };
  }

  const dayOf = (atMs) => Math.floor((atMs + ACCOUNT_UTC_OFFSET_MS) / DAY_MS);
  const secondsToNextDay = (atMs) => Math.max(1, Math.ceil(((dayOf(atMs) + 1) * DAY_MS - ACCOUNT_UTC_OFFSET_MS - atMs) / 1000));
  const forgetUntil = (hits, cutoffMs) => {
    while (hits.length > 0 && hits[0] <= cutoffMs) hits.shift();
  };
  const secondsUntilFree = (hits, windowMs, atMs) => Math.max(1, Math.ceil(((hits[0] ?? atMs) + windowMs - atMs) / 1000));

  /** Spends one request of the caller's limits (none when a limit refuses it): `{ headers, refusal }`. */
  function spend(caller, isSearch, atMs) {
    let refusal = null;
    const day = dayOf(atMs);
    if (daily.day !== day) daily = { day, count: 0 };
    if (caller.private && dailyLimit !== null && daily.count >= dailyLimit) {
      refusal = { policy: 'DAILY', retryAfter: secondsToNextDay(atMs) };
    }
    if (burst) {
      if (!bursts.has(caller.app)) bursts.set(caller.app, []);
      const hits = bursts.get(caller.app);
      forgetUntil(hits, atMs - burst.windowMs);
      if (!refusal && hits.length >= burst.max) {
        refusal = { policy: 'TEN_SECONDLY_ROLLING', retryAfter: secondsUntilFree(hits, burst.windowMs, atMs) };
      }
    }
    if (isSearch && searchLimit !== null) {
      forgetUntil(searches, atMs - 1000);
      if (!refusal && searches.length >= searchLimit) {
        refusal = { policy: 'SECONDLY', retryAfter: secondsUntilFree(searches, 1000, atMs) };
      }
    }
    if (!refusal) {
      if (caller.private) daily.count += 1;
      if (burst) bursts.get(caller.app).push(atMs);
      if (isSearch && searchLimit !== null) searches.push(atMs);
    }
    const headers = {};
    if (burst) {
      const used = bursts.get(caller.app)?.length ?? 0;
      headers['X-HubSpot-RateLimit-Max'] = String(burst.max);
      headers['X-HubSpot-RateLimit-Remaining'] = String(Math.max(0, burst.max - used));
      headers['X-HubSpot-RateLimit-Interval-Milliseconds'] = String(burst.windowMs);
    }
    if (caller.private && dailyLimit !== null) {
      headers['X-HubSpot-RateLimit-Daily'] = String(dailyLimit);
      headers['X-HubSpot-RateLimit-Daily-Remaining'] = String(Math.max(0, dailyLimit - daily.count));
    }
    return { headers, refusal };
  }

  // ---- OAuth ----

  function issueCode(clientId, redirectUri, scopes) {
    const code = uuidLike();
    codes.set(code, { clientId, redirectUri, scopes: [...scopes], expiresMs: now() + AUTH_CODE_SECONDS * 1000 });
    return code;
  }

  /** Checks an authorization request's parameters as the consent page does; throws an Error saying what the page shows. */
  function checkAuthorization(parameters) {
    const get = (name) => {
      const value = parameters.get(name);
      return value === null ? undefined : value;
    };
    const clientId = get('client_id');
    if (!clientId) throw new Error('client_id is missing');
    const redirectUri = get('redirect_uri');
    if (!redirectUri) throw new Error('redirect_uri is missing');
    const app = apps.get(clientId);
    if (!app) throw new Error(`no app with client id ${clientId}`);
    if (!app.redirectUris.includes(redirectUri)) throw new Error(`redirect_uri ${redirectUri} is not one of the app's redirect URLs`);
    try {
      new URL(redirectUri);
    } catch {
      throw new Error(`redirect_uri ${redirectUri} is not a URL`);
    }
    const split = (text) => (text ?? '').split(/[ +]/).filter((scope) => scope !== '');
    const scopes = split(get('scope'));
    const optional = split(get('optional_scope'));
    const asked = [...scopes].sort();
    const required = [...app.scopes].sort();
    if (asked.join(' ') !== required.join(' ')) {
      throw new Error(`the scopes asked for (${asked.join(' ')}) are not the app's (${required.join(' ')})`);
    }
    return { clientId, app, redirectUri, scopes: [...scopes, ...optional.filter((s) => !scopes.includes(s))], state: get('state') };
  }

  /** Where the browser goes after consent: `redirect_uri` with `code` and `state`. */
  function consentTo(authorization) {
    const code = issueCode(authorization.clientId, authorization.redirectUri, authorization.scopes);
    const back = new URL(authorization.redirectUri);
    back.searchParams.append('code', code);
    if (authorization.state !== undefined) back.searchParams.append('state', authorization.state);
    authorizations.push({
      at: now(),
      clientId: authorization.clientId,
      redirectUri: authorization.redirectUri,
      scopes: authorization.scopes,
      state: authorization.state ?? null,
      code,
    });
    return back.toString();
  }

  function consentPage(authorization) {
    const { app, scopes } = authorization;
    const hidden = [
      ['client_id', authorization.clientId],
      ['redirect_uri', authorization.redirectUri],
      ['scope', app.scopes.join(' ')],
    ];
    const optional = scopes.filter((scope) => !app.scopes.includes(scope));
    if (optional.length > 0) hidden.push(['optional_scope', optional.join(' ')]);
    if (authorization.state !== undefined) hidden.push(['state', authorization.state]);
    const title = `Connect ${app.name} to HubSpot`;
    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<main>
<h1>Connect ${escapeHtml(app.name)} to your HubSpot account</h1>
<p>Account: ${escapeHtml(HUB_DOMAIN)} (Hub ID <span id="hub-id">${portalId}</span>), as ${escapeHtml(USER_EMAIL)}</p>
<h2>${escapeHtml(app.name)} is requesting access to these scopes</h2>
<ul id="scopes">
${scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('\n')}
</ul>
<form method="post" action="/oauth/authorize">
${hidden.map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`).join('\n')}
<button type="submit">Connect app</button>
</form>
</main>
</body>
</html>
`;
  }

  function errorPage(message) {
    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>HubSpot: authorization error</title></head>
<body>
<main>
<h1>Something went wrong connecting this app</h1>
<p id="error">${escapeHtml(message)}</p>
</main>
</body>
</html>
`;
  }

  function issueAccessToken(clientId, refreshToken, scopes, atMs) {
    const accessToken = `CO${randomBytes(31).toString('hex')}`;
    tokens.set(accessToken, { scopes: [...scopes], oauth: { clientId, refreshToken, expiresMs: atMs + accessTokenSeconds * 1000 } });
    return { token_type: 'bearer', access_token: accessToken, refresh_token: refreshToken, expires_in: accessTokenSeconds };
  }

  /** `POST /oauth/v1/token`: `{ status, body }`. */
  function token(headers, raw, atMs) {
    const bad = (status, message) => ({ status: 400, body: { status, message, correlationId: correlationId() } });
    const form = String(headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const fields = new URLSearchParams(form ? raw.toString('utf8') : '');
    const field = (name) => fields.get(name) ?? '';
    const grantType = field('grant_type');
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') {
      return bad('BAD_GRANT_TYPE', 'grant_type must be authorization_code or refresh_token');
    }
    const clientId = field('client_id');
    const app = apps.get(clientId);
    if (!app) return bad('BAD_CLIENT_ID', 'missing or invalid client id');
    if (app.clientSecret !== field('client_secret')) return bad('BAD_CLIENT_ID', 'missing or invalid client secret');
    if (grantType === 'authorization_code') {
      const code = field('code');
      const found = codes.get(code);
      if (!found || found.clientId !== clientId || atMs >= found.expiresMs) return bad('BAD_AUTH_CODE', 'missing or unknown auth code');
      if (found.redirectUri !== field('redirect_uri')) return bad('BAD_REDIRECT_URI', 'redirect_uri does not match initial auth code URL');
      codes.delete(code);
      const refreshToken = uuidLike();
      refreshTokens.set(refreshToken, { clientId, scopes: [...found.scopes] });
      return { status: 200, body: issueAccessToken(clientId, refreshToken, found.scopes, atMs) };
    }
    const refreshToken = field('refresh_token');
    const grant = refreshTokens.get(refreshToken);
    if (!grant || grant.clientId !== clientId) return bad('BAD_REFRESH_TOKEN', 'missing or invalid refresh token');
    return { status: 200, body: issueAccessToken(clientId, refreshToken, grant.scopes, atMs) };
  }

  /** The OAuth routes, which take no bearer token: `{ status, body, headers?, html? }`. */
  function oauth(found, req, url, raw, atMs) {
    switch (found.kind) {
      case 'authorizePage':
        try {
          return { status: 200, html: consentPage(checkAuthorization(url.searchParams)) };
        } catch (error) {
          return { status: 400, html: errorPage(error.message) };
        }
      case 'consent': {
        const form = String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
        try {
          const location = consentTo(checkAuthorization(new URLSearchParams(form ? raw.toString('utf8') : '')));
          return { status: 302, body: undefined, headers: { location } };
        } catch (error) {
          return { status: 400, html: errorPage(error.message) };
        }
      }
      case 'token':
        return token(req.headers, raw, atMs);
      case 'accessTokenInfo': {
        const found_ = tokens.get(found.token);
        if (!found_?.oauth) return { status: 404, body: notFound().body() };
        if (atMs >= found_.oauth.expiresMs) return { status: 401, body: expiredRefusal(found_.oauth.expiresMs, atMs).body() };
        return {
          status: 200,
          body: {
            token: found.token,
            user: USER_EMAIL,
            hub_domain: HUB_DOMAIN,
            scopes: [...found_.scopes],
            hub_id: portalId,
            app_id: apps.get(found_.oauth.clientId)?.appId ?? 0,
            expires_in: Math.floor((found_.oauth.expiresMs - atMs) / 1000),
            user_id: USER_ID,
            token_type: 'access',
          },
        };
      }
      case 'refreshTokenInfo': {
        const grant = refreshTokens.get(found.token);
        if (!grant) return { status: 404, body: notFound().body() };
        return {
          status: 200,
          body: {
            token: found.token,
            user: USER_EMAIL,
            hub_domain: HUB_DOMAIN,
            scopes: [...grant.scopes],
            hub_id: portalId,
            client_id: grant.clientId,
            user_id: USER_ID,
            token_type: 'refresh',
          },
        };
      }
      case 'revokeRefreshToken':
        if (!refreshTokens.delete(found.token)) return { status: 404, body: notFound().body() };
        return { status: 204, body: undefined };
      default:
        return { status: 404, body: notFound().body() };
    }
  }

  // ---- webhooks ----

  /** One webhook event of app `clientId` about record `objectId`, now (see the native fake's `event`). */
  function event(clientId, subscriptionType, objectId, change) {
    const app = apps.get(clientId);
    if (!app) throw new Error(`hubspot fake: no app with client id ${clientId}`);
    if (!/^\d+$/.test(String(objectId))) throw new Error(`hubspot fake: record id ${objectId} is not numeric`);
    const key = `${clientId}\n${subscriptionType}/${change?.name ?? ''}`;
    if (!subscriptions.has(key)) subscriptions.set(key, 1_900_000 + subscriptions.size + 1);
    nextEventId += 1;
    const built = {
      eventId: nextEventId,
      subscriptionId: subscriptions.get(key),
      portalId,
      appId: app.appId,
      occurredAt: now(),
      subscriptionType,
      attemptNumber: 0,
      objectId: Number(objectId),
      changeSource: 'CRM',
    };
    if (change) {
      built.propertyName = change.name;
      built.propertyValue = change.value;
      built.sourceId = `userId:${USER_ID}`;
    }
    return built;
  }

  function webhook(clientSecret, uri, events, timestampMs = now()) {
    if (!Array.isArray(events)) throw new Error("hubspot fake: a webhook's body is an array of events");
    const body = JSON.stringify(events);
    const timestamp = String(timestampMs);
    return {
      headers: {
        'Content-Type': 'application/json',
        [SIGNATURE_HEADER]: hubspotSignatureV3(clientSecret, 'POST', uri, body, timestamp),
        [TIMESTAMP_HEADER]: timestamp,
        'X-HubSpot-Signature': hubspotSignatureV1(clientSecret, body),
        'X-HubSpot-Signature-Version': 'v1',
      },
      body,
    };
  }

  // ---- HTTP ----

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent && !res.destroyed) send(res, 500, errorBody('INTERNAL_ERROR', `hubspot fake: ${error.message}`));
    });
  });

  async function handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const atMs = now();
    const text = raw.toString('utf8');
    let recorded = text;
    if (raw.length > 0) {
      try {
        recorded = JSON.parse(text);
      } catch {
        recorded = text;
      }
    } else recorded = undefined;
    /** @type {Call} */
    const record = {
      at: atMs,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: recorded,
      status: null,
    };
    requests.push(record);

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

    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));

    const answer = (status, body, headers = {}) => {
      record.status = status;
      if (body === undefined) {
        if (!res.destroyed) {
          res.writeHead(status, headers);
          res.end();
        }
      } else send(res, status, body, headers);
    };

    const failure = takeFailure(record);
    if (failure) {
      const headers = { ...(failure.headers ?? {}) };
      if (failure.retryAfter !== undefined) headers['retry-after'] = String(failure.retryAfter);
      return answer(failure.status, failure.body === undefined ? faultBody(failure.status) : failure.body, headers);
    }

    if (raw.length > BODY_MAX_BYTES) {
      return answer(413, errorBody('VALIDATION_ERROR', `Request body is ${raw.length} bytes; the limit is ${BODY_MAX_BYTES}`));
    }

    const found = route(record.method, url.pathname);
    if (!found.route) {
      if (found.known) return answer(405, errorBody('VALIDATION_ERROR', 'HTTP 405 Method Not Allowed'));
      return answer(404, notFound().body());
    }
    const matched = found.route;

    if (matched.oauth) {
      const result = oauth(matched, req, url, raw, atMs);
      if (result.html !== undefined) {
        record.status = result.status;
        if (!res.destroyed) {
          res.writeHead(result.status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(result.html) });
          res.end(result.html);
        }
        return;
      }
      return answer(result.status, result.body, result.headers);
    }

    let caller;
    try {
      caller = authenticate(req.headers, atMs);
    } catch (error) {
      if (error instanceof Refused) return answer(error.status, error.body());
      throw error;
    }

    const { headers: limitHeaders, refusal } = spend(caller, matched.kind === 'search', atMs);
    if (refusal) {
      throttles.push({ at: atMs, policy: refusal.policy, method: record.method, path: record.path, retryAfter: refusal.retryAfter });
      return answer(429, rateLimitBody(refusal.policy), { ...limitHeaders, 'retry-after': String(refusal.retryAfter) });
    }

    if (matched.scope && !caller.scopes.includes(matched.scope)) {
      const refused = new Refused(403, 'MISSING_SCOPES', MISSING_SCOPES_MESSAGE, {
        errors: [{ message: 'One or more of the following scopes are required.', context: { requiredGranularScopes: [matched.scope] } }],
        links: { scopes: 'https://developers.hubspot.com/scopes' },
      });
      return answer(403, refused.body(), limitHeaders);
    }

    let body;
    if (matched.json) {
      const jsonType = String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
      if (!jsonType) return answer(415, errorBody('VALIDATION_ERROR', 'HTTP 415 Unsupported Media Type'), limitHeaders);
      try {
        if (raw.length === 0) throw new SyntaxError('EOF while parsing a value');
        body = JSON.parse(text);
      } catch (error) {
        const position = Number(/position (\d+)/.exec(error.message)?.[1] ?? text.length);
        const before = text.slice(0, position);
        const line = before.split('\n').length;
        const column = position - (before.lastIndexOf('\n') + 1);
        return answer(400, invalid(`Invalid input JSON on line ${line}, column ${column}: ${error.message}`).body(), limitHeaders);
      }
    }

    try {
      const result = serveRoute(matched, url.searchParams, body, atMs);
      return answer(result.status, result.body, limitHeaders);
    } catch (error) {
      if (error instanceof Refused) return answer(error.status, error.body(), limitHeaders);
      return answer(500, errorBody('INTERNAL_ERROR', `hubspot fake: ${error.message}`), limitHeaders);
    }
  }

  function faultBody(status) {
    if (status === 429) return rateLimitBody('TEN_SECONDLY_ROLLING');
    if (status === 401) return errorBody('INVALID_AUTHENTICATION', UNAUTHENTICATED);
    const category = DEFAULT_FAULT_CATEGORIES[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'VALIDATION_ERROR');
    return errorBody(category, `Injected failure ${status}`);
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
        resolve(undefined);
      });
    });
    listening = true;
  }
  async function stopListening() {
    if (!listening) return;
    listening = false;
    await new Promise((resolve) => {
      server.close(() => resolve(undefined));
      server.closeAllConnections();
    });
  }

  await listen(0);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const origin = `http://127.0.0.1:${port}`;

  const recordsOf = (object) => records.filter((r) => r.object === object).map(full);
  const seed = (object, properties) => create(object, { properties }, now());

  return {
    /** The API's base (`https://api.hubapi.com` in production). */
    url: origin,
    port,
    /** The consent page (`https://app.hubspot.com/oauth/authorize` in production). */
    authorizeUrl: `${origin}/oauth/authorize`,
    /** The token endpoint. */
    tokenUrl: `${origin}/oauth/v1/token`,
    portalId,
    /** Every request received, in order: `{ at, method, path, query, headers, body, status }`
     * (`status` stays null while a request is unanswered, and for ever when it was hung). */
    requests,
    /** The same array as `requests`. */
    calls: requests,
    /** Every 429 a limit gave (not injected ones): `{ at, policy, method, path, retryAfter }`. */
    throttles,
    get rateLimited() {
      return throttles.length;
    },
    /** Consents given (on the page or with `consent()`/`authorize()`): `{ at, clientId, redirectUri, scopes, state, code }`. */
    authorizations,
    /** Webhook deliveries made with `deliverWebhook`: `{ at, url, status }`. */
    deliveries,
    /** Each record with every property set and its associations, in the order made (snapshots). */
    get contacts() {
      return recordsOf('contacts');
    },
    /** The ids of the contacts deleted through gdpr-delete, in order. */
    get gdprDeleted() {
      return [...gdprDeleted];
    },
    get communications() {
      return recordsOf('communications');
    },
    get emails() {
      return recordsOf('emails');
    },
    get notes() {
      return recordsOf('notes');
    },
    get tickets() {
      return recordsOf('tickets');
    },
    get owners() {
      return structuredClone(owners);
    },
    get pipelines() {
      return structuredClone(pipelines);
    },
    /** A snapshot of everything kept: records by object, owners, pipelines, apps. */
    get state() {
      return {
        contacts: recordsOf('contacts'),
        communications: recordsOf('communications'),
        emails: recordsOf('emails'),
        notes: recordsOf('notes'),
        tickets: recordsOf('tickets'),
        owners: structuredClone(owners),
        pipelines: structuredClone(pipelines),
        apps: [...apps].map(([clientId, app]) => ({ clientId, appId: app.appId, name: app.name, redirectUris: [...app.redirectUris], scopes: [...app.scopes] })),
        contactProperties: [...contactProperties].map(([name, unique]) => ({ name, unique })),
      };
    },
    /** One stored record (`object` as a path names it) with its associations, or null. */
    record(object, id) {
      const plural = objectNamed(object);
      const found = records.find((r) => r.object === plural && r.id === String(id));
      return found ? full(found) : null;
    },
    /** The associations a record was created with, as the readers give them. */
    associationsOf(object, id) {
      return this.record(object, id)?.associations ?? [];
    },
    /** Another private app token holding `scopes`; a token added again is replaced. */
    addToken,
    /** A custom contact property; a unique one is matched like `email` (409, batch upsert's `idProperty`). */
    addContactProperty,
    /** A user of the account who may own records: `{ email, firstName, lastName }`; the owner's id. */
    addOwner,
    /** Another ticket pipeline `{ label, stages: [{ label, ticketState }] }`; the pipeline as listed. */
    addPipeline,
    /** A public app: `registerApp(clientId, { clientSecret, redirectUris, scopes, name })`; its app id. */
    registerApp,
    /** The code a consent gives for `clientId` (no checks of the scopes): single-use, good for 10 minutes. */
    authorize(clientId, redirectUri, scopes = apps.get(clientId)?.scopes ?? DEFAULT_SCOPES) {
      const app = apps.get(clientId);
      if (!app) throw new Error(`hubspot fake: no app with client id ${clientId}`);
      if (!app.redirectUris.includes(redirectUri)) throw new Error(`hubspot fake: ${redirectUri} is not a redirect URL of app ${clientId}`);
      const code = issueCode(clientId, redirectUri, scopes);
      authorizations.push({ at: now(), clientId, redirectUri, scopes: [...scopes], state: null, code });
      return code;
    },
    /** The user consents on `authorizeUrl` (this server's page, or HubSpot's, with its query):
     * the URL the browser is sent back to; throws with what the page would show instead. */
    consent(authorizeUrl) {
      return consentTo(checkAuthorization(new URL(authorizeUrl).searchParams));
    },
    /** The app is uninstalled: its refresh and access tokens stop working. */
    uninstall(clientId) {
      for (const [refreshToken, grant] of refreshTokens) if (grant.clientId === clientId) refreshTokens.delete(refreshToken);
      for (const [accessToken, held] of tokens) if (held.oauth?.clientId === clientId) tokens.delete(accessToken);
    },
    /** Every OAuth access token issued so far expires now (refresh tokens stay good). */
    expireAccessTokensNow() {
      const at = now();
      for (const held of tokens.values()) if (held.oauth) held.oauth.expiresMs = Math.min(held.oauth.expiresMs, at);
    },
    /** How long access tokens issued from now on last, in seconds. */
    setAccessTokenLifetime(seconds) {
      accessTokenSeconds = seconds;
    },
    /** The refresh token an access token was issued with. */
    refreshTokenOf(accessToken) {
      return tokens.get(accessToken)?.oauth?.refreshToken ?? null;
    },
    /**
     * Queues an injected failure, answered before the token is looked at. Either
     * `fail({ status, body?, headers?, retryAfter?, times = 1, match? })` or
     * `fail(times, status | { status, body?, headers? }, match?)`. Without `body`, HubSpot's error
     * form for the status (a 429 as the ten-secondly limit's). `match(call)` picks the calls (all
     * without it). Steps are tried in the order queued; each call takes at most one.
     */
    fail(first, reply, match) {
      let step;
      if (typeof first === 'number') {
        const given = typeof reply === 'number' ? { status: reply } : reply ?? {};
        step = { ...given, times: first, match };
      } else step = first ?? {};
      const { status, body, headers, retryAfter, times = 1 } = step;
      if (!(Number.isInteger(status) && status >= 100 && status <= 599)) throw new Error(`hubspot fake: cannot inject status ${status}`);
      failures.push({ status, body, headers, retryAfter, left: times, match: step.match });
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
    /** Every answer from now on comes `ms` later. */
    setLatency(ms) {
      latencyMs = ms;
    },
    /** Sets (a number, or `{ max, windowMs }`) or with null removes each app's burst limit and its headers; windows start afresh. */
    setRateLimit(limit) {
      burst = normalizeBurst(limit);
      bursts.clear();
    },
    /** Sets or with null removes the private apps' daily limit; today's count starts afresh. */
    setDailyLimit(limit) {
      dailyLimit = nonNegativeOrNull(limit, 'dailyLimit');
      daily = { day: 0, count: 0 };
    },
    /** Sets or with null removes the searches allowed per second. */
    setSearchLimit(perSecond) {
      searchLimit = nonNegativeOrNull(perSecond, 'searchLimit');
      searches = [];
    },
    /** How long after a write search sees it. */
    setSearchLag(ms) {
      searchLagMs = ms;
    },
    /** A contact HubSpot already has, checked as `POST` checks it (throws a Refused otherwise); the create's answer. */
    seedContact(properties) {
      return seed('contacts', properties);
    },
    /** A ticket HubSpot already has, checked as `POST` checks it. */
    seedTicket(properties) {
      return seed('tickets', properties);
    },
    /** Deletes a contact in HubSpot (an agent did); the record removed, or null. */
    removeContact(id) {
      const at = records.findIndex((r) => r.object === 'contacts' && r.id === String(id));
      return at < 0 ? null : full(records.splice(at, 1)[0]);
    },
    /** One webhook event of app `clientId`; `change`: `{ name, value }` for a property change. */
    event,
    /** An agent moves ticket `ticketId` to stage `stageId` in HubSpot: the events app `clientId` is sent for it. */
    ticketMoved(clientId, ticketId, stageId) {
      const ticket = find('tickets', String(ticketId), null);
      const values = checkProperties('tickets', { hs_pipeline_stage: stageId }, { ...ticket.properties });
      modify(ticket, values, now());
      return [event(clientId, 'ticket.propertyChange', ticketId, { name: 'hs_pipeline_stage', value: stageId })];
    },
    /** A webhook delivery of `events` to `uri` (the full URL), signed with `clientSecret`: `{ headers, body }`. */
    webhook,
    /** POSTs `webhook(clientSecret, targetUrl, events)` to `targetUrl`; resolves to the answer's status. */
    async deliverWebhook(targetUrl, clientSecret, events, { timestampMs } = {}) {
      const { headers, body } = webhook(clientSecret, targetUrl, events, timestampMs ?? now());
      const response = await fetch(targetUrl, { method: 'POST', headers, body });
      await response.arrayBuffer();
      deliveries.push({ at: now(), url: targetUrl, status: response.status });
      return response.status;
    },
    async close() {
      for (const timer of hangTimers) clearTimeout(timer);
      hangTimers.clear();
      await stopListening();
    },
  };
}

function send(res, status, body, headers = {}) {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
