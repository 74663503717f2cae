// Salesforce's REST API (v66.0), its OAuth 2.0 endpoints and its Outbound Messages as a local
// server on 127.0.0.1 and a random port, for the end-to-end tests of our Salesforce connector. One
// server is one org (its "My Domain"): `instance_url` in every token answer is this server's
// origin, so every later call comes back here. It serves:
//
//   GET   /services/oauth2/authorize          the consent page (web server flow, PKCE); its
//         "Allow" button POSTs back here and is sent on, 302, to `redirect_uri?code=..&state=..`
//         ("Deny": `?error=access_denied&error_description=..&state=..`)
//   POST  /services/oauth2/token              form-encoded; grant_type authorization_code (with
//         `code_verifier` checked against the `code_challenge`), refresh_token, client_credentials
//   POST  /services/oauth2/revoke             `token=` (also GET `?token=`); 200, or 400 invalid_token
//   GET   /id/{orgId}/{userId}                the identity service (the token answer's `id`)
//   GET   /services/oauth2/userinfo           OpenID Connect's UserInfo: the token's user and org
//   GET   /services/data                      the versions (needs no token, counts against no limit)
//   GET   /services/data/v66.0/limits         `DailyApiRequests: {Max, Remaining}` and a few more
//   GET   /services/data/v66.0/sobjects       the objects the user may see
//   GET   /services/data/v66.0/sobjects/{Object}[/describe]
//   POST  /services/data/v66.0/sobjects/{Object}/                 201 `{id, success, errors}`
//   GET, PATCH, DELETE /services/data/v66.0/sobjects/{Object}/{id}  (`?fields=`; PATCH and DELETE 204)
//   GET, PATCH, DELETE /services/data/v66.0/sobjects/{Object}/{ExternalIdField}/{value}
//         PATCH upserts: 201 `{id, success, errors, created: true}`, 200 `{.., created: false}`,
//         300 with the matching records' URLs when the value is on more than one (`?updateOnly=true`: 404
//         instead of a create)
//   GET   /services/data/v66.0/query?q=       SOQL, the subset below; GET /services/data/v66.0/query/{locator}
//   POST, PATCH /services/data/v66.0/composite/sobjects         create / update up to 200 (`allOrNone`)
//   PATCH /services/data/v66.0/composite/sobjects/{Object}/{ExternalIdField}   upsert up to 200
//   POST  /services/data/v66.0/composite     up to 25 subrequests, `referenceId`, `@{ref.id}`, `allOrNone`
//
// where {Object} is Contact (key prefix 003), Lead (00Q), Task (00T) or Case (500). Conventions, as
// Salesforce documents them:
//
// - Auth: `Authorization: Bearer <access token>` (Salesforce also takes `OAuth <token>`). A token
//   that is unknown, expired (the session timeout, 2 hours unless set) or revoked answers 401
//   `[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]`; no header at all
//   401 INVALID_AUTH_HEADER (as Salesforce answers; its wording "INVALID_HEADER_TYPE" is our memory of it).
// - Every JSON error is an array `[{message, errorCode, fields?}]`; inside sObject Collections a
//   record's errors are `{statusCode, message, fields}`. Unknown paths answer 404 NOT_FOUND "The
//   requested resource does not exist", a known path with another method 405 METHOD_NOT_ALLOWED,
//   a body that is not JSON 400 JSON_PARSER_ERROR, a body of another media type 415.
// - Ids are 18 characters: the object's key prefix, then the 15-character id's case-safe suffix
//   (three characters, one per five, computed as Salesforce does). Paths take the 15- or 18-character
//   form. A path id that is no id of the object answers 404 NOT_FOUND "Provided external ID field does
//   not exist or is not accessible: <segment>" (the segment is read as an external id field, as
//   Salesforce reads it); an id never issued 404 NOT_FOUND; a deleted (or merged-away) record 404
//   ENTITY_IS_DELETED "entity is deleted". Merging keeps the master and deletes the others with
//   `MasterRecordId` set to the master's id; their Tasks move to the master.
// - Records read as `{attributes: {type, url}, Id, ...every field}` (null when unset), dates as
//   `2026-11-26T10:00:00.000+0000`. A create needs the object's required fields: Contact `LastName`,
//   Lead `LastName` and `Company`; Lead `Status`, Task `Status` and `Priority` and Case `Status` are
//   required but defaulted on create ('Open - Not Contacted', 'Not Started', 'Normal', 'New'), so only
//   an explicit null or "" misses them.
//   Missing ones answer 400 REQUIRED_FIELD_MISSING "Required fields are missing: [LastName]" with
//   `fields`; an unknown field 400 INVALID_FIELD "No such column 'X' on sobject of type Contact"; a
//   read-only one (Id, Name, CreatedDate, MasterRecordId, CaseNumber, ...) 400
//   INVALID_FIELD_FOR_INSERT_UPDATE; a bad email 400 INVALID_EMAIL_ADDRESS; a reference (WhoId, WhatId,
//   ContactId) that is no id 400 MALFORMED_ID, one to no record 400 INVALID_CROSS_REFERENCE_KEY. A test can
//   switch on an org's duplicate rule on Contact or Lead email (`setDuplicateRule`): a second record
//   with the email (any case) answers 400 DUPLICATES_DETECTED "Use one of these records?" with the
//   matches under `duplicateResut` (sic: Salesforce's REST body spells it so), unless the request
//   carries `Sforce-Duplicate-Rule-Header: allowSave=true`.
// - Upsert keys: a field marked external id (custom ones, given per test, e.g. `Chat_Id__c`) or a
//   standard idLookup field (Email); matched without case, and unique only when declared so (a custom
//   field declared unique answers 400 DUPLICATE_VALUE on a second record). Any other field answers
//   404 NOT_FOUND.
//   Neither `Id` nor the key field may be in an upsert's body (400 INVALID_FIELD; Salesforce documents
//   that it errs, the wording is ours).
// - Object access is per user and per object, `edit` (the default), `read` or `none`: `none` hides
//   the object (absent from /sobjects; its paths 404 NOT_FOUND; SOQL 400 INVALID_TYPE), `read` makes
//   its describe say `createable: false` and answers writes 403 INSUFFICIENT_ACCESS_OR_READONLY
//   "insufficient access rights on object id" (the code and wording are our choice within the
//   documented 403 "verify that the logged-in user has appropriate permissions").
//
// SOQL: only the shapes a connector sends are parsed: `SELECT f1, f2 FROM Object [WHERE f = 'v'
// [AND f2 = 'w' ...]] [ORDER BY f [ASC|DESC]] [LIMIT n]`, where a value is a quoted string (`\'`
// escapes), null, true, false or a number, `=`, `!=` or `IN ('v', 'w', ...)`; text compares without
// case, as SOQL's `=` does. Anything else (OR, LIKE, functions, relationship fields, a missing q) answers 400
// MALFORMED_QUERY with Salesforce's "ERROR at Row:1:Column:N" form: that is this fake's limit, not
// Salesforce's. An unknown field answers 400 INVALID_FIELD "No such column ...", an unknown object
// 400 INVALID_TYPE. Deleted records are not found. Answers are `{totalSize, done, records,
// nextRecordsUrl?}`, 2,000 records a batch (`Sforce-Query-Options: batchSize=N`, 200 to 2,000, asks
// for fewer); `nextRecordsUrl` is `/services/data/v66.0/query/01g...-2000`, an unknown locator 400
// INVALID_QUERY_LOCATOR.
//
// Collections and Composite: sObject Collections take up to 200 records (more: 400 EXCEEDED_ID_LIMIT
// "record limit reached. cannot submit more than 200 records into this call") and answer 200 with one
// result per record in order; with `allOrNone: true` one failure rolls all back and the others read
// ALL_OR_NONE_OPERATION_ROLLED_BACK. A create must not carry an Id, an update must (MISSING_ARGUMENT
// "Id not specified in an update call"), an upsert's records must be of the URL's object; two records
// with one key value answer DUPLICATE_EXTERNAL_ID. Composite takes up to 25 subrequests (more: 200 with
// one result, 400 LIMIT_EXCEEDED "The request can't contain more than 25 operations."), answers 200
// `{compositeResponse: [{body, httpHeaders, httpStatusCode, referenceId}]}`; `@{ref.id}` and
// `@{ref.records[0].Id}` read an earlier result (a reference to a failed or missing result: 400
// PROCESSING_HALTED "Invalid reference specified. ..."); with `allOrNone: true` a failure rolls back the
// whole request and every other subrequest answers 400 PROCESSING_HALTED "The transaction was rolled back
// since another operation in the same transaction failed.". A subrequest missing `referenceId` refuses
// the whole request, 400. Composite and Collections count as one API call each.
//
// Limits: every answer of the REST API carries `Sforce-Limit-Info: api-usage=N/MAX` (calls used today,
// and the org's daily allowance, 100,000 unless set); once spent, calls answer 403
// `[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]`. The versions
// resource counts against nothing. Tests script failures as the other fakes do: `fail()` (503 with or
// without Retry-After, 500 UNKNOWN_EXCEPTION, any status), `hang()`, `setLatency()`, `down()`/`up()` and
// `downFor(seconds)`.
//
// OAuth 2.0 (web server flow with PKCE, refresh token flow, client credentials flow): codes are
// single-use and good for 15 minutes; `code_challenge` is the base64url SHA-256 of the verifier
// (`code_challenge_method` absent or S256). Token answers carry `access_token`, `refresh_token` (when
// the app's scopes hold refresh_token or offline_access; never for client credentials), `signature`
// (base64 HMAC-SHA256 of `id` + `issued_at` under the client secret), `scope`, `instance_url`, `id`,
// `token_type: "Bearer"` and `issued_at` (milliseconds, as text). Refusals are 400 `{error,
// error_description}`: unsupported_grant_type "grant type not supported", invalid_client_id "client
// identifier invalid", invalid_client "invalid client credentials", invalid_grant "invalid authorization
// code" / "expired authorization code" / "expired access/refresh token" / "no client credentials user
// enabled", redirect_uri_mismatch "redirect_uri must match configuration"; a verifier that does not match
// the challenge invalid_request, a missing one invalid_grant (as Salesforce documents; the descriptions
// "invalid code verifier" and "code verifier required" are ours). Revoking a refresh token revokes its
// access tokens.
//
// Outbound Messages: `outboundMessage()` builds what Salesforce POSTs to a listener, the SOAP 1.1
// envelope with `notifications` in `http://soap.sforce.com/2005/09/outbound` (OrganizationId, ActionId,
// SessionId (xsi:nil when not sent), EnterpriseUrl, PartnerUrl, then up to 100 Notification, each an `Id`
// and an `sObject` of `xsi:type="sf:Contact"` (or sf:Case, ...) in `urn:sobject.enterprise.soap.sforce.com`
// holding `sf:Id` and the chosen fields), sent with `Content-Type: text/xml; charset=utf-8` and
// `SOAPAction: ""`. A delivery counts only when the listener answers 200 with `notificationsResponse`
// holding `<Ack>true</Ack>`. Queued messages (`queueOutbound`) are retried as Salesforce documents: the
// interval grows exponentially (here 30 s doubling, our choice) to at most two hours, for up to 24
// hours, then dropped; retries ignore queue order, so delivery may be out of order, and a message may
// arrive more than once (same notification ids). The record's data is read when a message is sent, so
// a resend carries the latest values. Null fields are left out of the sObject (our choice).

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

export const API_VERSION = '66.0';
export const DATA_PATH = `/services/data/v${API_VERSION}`;
export const VERSION_LABEL = "Spring '26";
/** The org's daily allowance of API calls unless set (the base of Salesforce's formula). */
export const DAILY_API_REQUESTS = 100_000;
export const SESSION_SECONDS = 7_200;
export const AUTH_CODE_SECONDS = 900;
export const QUERY_BATCH_SIZE = 2_000;
export const QUERY_MIN_BATCH_SIZE = 200;
export const COLLECTION_MAX_RECORDS = 200;
export const COMPOSITE_MAX_SUBREQUESTS = 25;
export const MERGE_MAX_RECORDS = 3;
export const OUTBOUND_MAX_NOTIFICATIONS = 100;
export const OUTBOUND_RETRY_FIRST_MS = 30_000;
export const OUTBOUND_RETRY_MAX_MS = 2 * 3_600_000;
export const OUTBOUND_KEEP_MS = 24 * 3_600_000;
export const OUTBOUND_NAMESPACE = 'http://soap.sforce.com/2005/09/outbound';
export const SOBJECT_NAMESPACE = 'urn:sobject.enterprise.soap.sforce.com';
export const SOAP_ENVELOPE_NAMESPACE = 'http://schemas.xmlsoap.org/soap/envelope/';
/** How long a hung request keeps its socket before the server drops it. */
export const HANG_MS = 60_000;

export const SESSION_EXPIRED = 'Session expired or invalid';
export const NOT_FOUND_MESSAGE = 'The requested resource does not exist';
export const LIMIT_EXCEEDED_MESSAGE = 'TotalRequests Limit exceeded.';
export const DUPLICATE_MESSAGE = 'Use one of these records?';
export const ROLLED_BACK_MESSAGE = 'Record rolled back because not all records were valid and the request was using AllOrNone header';
export const HALTED_MESSAGE = 'The transaction was rolled back since another operation in the same transaction failed.';
export const COLLECTION_LIMIT_MESSAGE = 'record limit reached. cannot submit more than 200 records into this call';
export const COMPOSITE_LIMIT_MESSAGE = 'The request can’t contain more than 25 operations.';

/** Key prefixes of the objects and of the ids that are not records here. */
export const KEY_PREFIXES = Object.freeze({ Contact: '003', Lead: '00Q', Task: '00T', Case: '500', User: '005', Organization: '00D' });

const text = (length = 255) => ({ type: 'string', length });
const email = () => ({ type: 'email', length: 80 });
const phone = () => ({ type: 'phone', length: 40 });
const textarea = (length = 32_000) => ({ type: 'textarea', length });
const picklist = (values, defaultValue) => ({ type: 'picklist', values, defaultValue });
const reference = (...to) => ({ type: 'reference', referenceTo: to, length: 18 });
const readOnly = (type) => ({ type, readOnly: true });

/** Fields every object has, which Salesforce sets itself. */
const SYSTEM_FIELDS = {
  Id: readOnly('id'),
  IsDeleted: readOnly('boolean'),
  OwnerId: { type: 'reference', referenceTo: ['User'], length: 18, defaulted: true },
  CreatedDate: readOnly('datetime'),
  CreatedById: readOnly('reference'),
  LastModifiedDate: readOnly('datetime'),
  LastModifiedById: readOnly('reference'),
  SystemModstamp: readOnly('datetime'),
};

/** The objects kept here: their fields, which are required, which are idLookup keys. */
export const OBJECTS = Object.freeze({
  Contact: {
    label: 'Contact',
    labelPlural: 'Contacts',
    fields: {
      ...SYSTEM_FIELDS,
      MasterRecordId: readOnly('reference'),
      Name: readOnly('string'),
      FirstName: text(40),
      LastName: text(80),
      Salutation: picklist(['Mr.', 'Ms.', 'Mrs.', 'Dr.', 'Prof.']),
      Email: email(),
      Phone: phone(),
      MobilePhone: phone(),
      Title: text(128),
      Department: text(80),
      Description: textarea(),
      LeadSource: picklist(['Web', 'Phone Inquiry', 'Partner Referral', 'Purchased List', 'Other']),
      MailingCity: text(40),
      MailingCountry: text(80),
      HasOptedOutOfEmail: { type: 'boolean' },
    },
    required: ['LastName'],
    idLookup: ['Email'],
    name: (fields) => [fields.FirstName, fields.LastName].filter(Boolean).join(' '),
  },
  Lead: {
    label: 'Lead',
    labelPlural: 'Leads',
    fields: {
      ...SYSTEM_FIELDS,
      MasterRecordId: readOnly('reference'),
      Name: readOnly('string'),
      FirstName: text(40),
      LastName: text(80),
      Company: text(255),
      Email: email(),
      Phone: phone(),
      MobilePhone: phone(),
      Title: text(128),
      Description: textarea(),
      Status: { ...picklist(['Open - Not Contacted', 'Working - Contacted', 'Closed - Converted', 'Closed - Not Converted'], 'Open - Not Contacted') },
      LeadSource: picklist(['Web', 'Phone Inquiry', 'Partner Referral', 'Purchased List', 'Other']),
      IsConverted: readOnly('boolean'),
      HasOptedOutOfEmail: { type: 'boolean' },
    },
    required: ['LastName', 'Company', 'Status'],
    idLookup: ['Email'],
    name: (fields) => [fields.FirstName, fields.LastName].filter(Boolean).join(' '),
  },
  Task: {
    label: 'Task',
    labelPlural: 'Tasks',
    fields: {
      ...SYSTEM_FIELDS,
      Subject: text(255),
      WhoId: reference('Contact', 'Lead'),
      WhatId: reference('Case'),
      ActivityDate: { type: 'date' },
      Status: picklist(['Not Started', 'In Progress', 'Completed', 'Waiting on someone else', 'Deferred'], 'Not Started'),
      Priority: picklist(['High', 'Normal', 'Low'], 'Normal'),
      Description: textarea(),
      TaskSubtype: picklist(['Task', 'Email', 'List Email', 'Cadence', 'Call', 'LinkedIn']),
      Type: picklist(['Call', 'Email', 'Meeting', 'Other']),
      CallDurationInSeconds: { type: 'int' },
      IsClosed: readOnly('boolean'),
    },
    required: ['Status', 'Priority'],
    idLookup: [],
  },
  Case: {
    label: 'Case',
    labelPlural: 'Cases',
    fields: {
      ...SYSTEM_FIELDS,
      MasterRecordId: readOnly('reference'),
      CaseNumber: readOnly('string'),
      Subject: text(255),
      Description: textarea(),
      Status: picklist(['New', 'Working', 'Escalated', 'Closed'], 'New'),
      Priority: picklist(['High', 'Medium', 'Low'], 'Medium'),
      Origin: picklist(['Phone', 'Email', 'Web', 'Chat', 'WhatsApp']),
      Type: picklist(['Question', 'Problem', 'Feature Request']),
      Reason: text(255),
      ContactId: reference('Contact'),
      SuppliedName: text(80),
      SuppliedEmail: email(),
      SuppliedPhone: phone(),
      IsClosed: readOnly('boolean'),
      ClosedDate: readOnly('datetime'),
    },
    required: ['Status'],
    idLookup: ['CaseNumber'],
  },
});

export const OBJECT_NAMES = Object.freeze(Object.keys(OBJECTS));
export const ACCESS_LEVELS = Object.freeze(['none', 'read', 'edit']);

// ---- ids ----

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/** The 18-character form of a 15-character id: one suffix character per five, a bit per capital. */
export function caseSafeId(id15) {
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk += 1) {
    let bits = 0;
    for (let i = 0; i < 5; i += 1) {
      const c = id15[chunk * 5 + i];
      if (c >= 'A' && c <= 'Z') bits |= 1 << i;
    }
    suffix += SUFFIX_ALPHABET[bits];
  }
  return id15 + suffix;
}

/** A 15- or 18-character id with `prefix` in its 18-character form; null when it is not one. */
export function normalizeId(text, prefix) {
  if (typeof text !== 'string' || !/^[0-9A-Za-z]+$/.test(text)) return null;
  if (prefix !== undefined && !text.startsWith(prefix)) return null;
  if (text.length === 15) return caseSafeId(text);
  if (text.length === 18 && caseSafeId(text.slice(0, 15)) === text) return text;
  return null;
}

function base62(value, width) {
  let out = '';
  let rest = value;
  for (let i = 0; i < width; i += 1) {
    out = BASE62[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

/** The object an id belongs to by its key prefix; null when none kept here. */
function objectOfId(id) {
  return OBJECT_NAMES.find((name) => typeof id === 'string' && id.startsWith(KEY_PREFIXES[name])) ?? null;
}

// ---- errors ----

/** A refusal in Salesforce's form: `[{message, errorCode, fields?}]`; `body` replaces the array. */
class SfError extends Error {
  constructor(status, errorCode, message, { fields, body, headers } = {}) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.fields = fields;
    this.customBody = body;
    this.headers = headers;
  }

  body() {
    if (this.customBody !== undefined) return this.customBody;
    return [errorItem(this.errorCode, this.message, this.fields)];
  }

  /** The error as an sObject Collections record error. */
  saveError() {
    return { statusCode: this.errorCode, message: this.message, fields: this.fields ?? [] };
  }
}

/** One entry of Salesforce's JSON error array. */
export function errorItem(errorCode, message, fields) {
  const item = { message, errorCode };
  if (fields !== undefined) item.fields = fields;
  return item;
}

const notFound = () => new SfError(404, 'NOT_FOUND', NOT_FOUND_MESSAGE);
const badRequest = (errorCode, message, fields) => new SfError(400, errorCode, message, { fields });
const malformedQuery = (soql, at, what) =>
  badRequest('MALFORMED_QUERY', `\n${soql}\n${' '.repeat(at)}^\nERROR at Row:1:Column:${at + 1}\n${what}`);

// ---- small helpers ----

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A datetime as Salesforce writes one: `2026-11-26T10:00:00.000+0000`. */
export function sfDateTime(ms) {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

function isEmail(value) {
  return /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/.test(value);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function escapeXml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function base64url(buffer) {
  return Buffer.from(buffer).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The S256 code challenge of a PKCE verifier: base64url of its SHA-256, without padding. */
export function codeChallengeOf(verifier) {
  return base64url(createHash('sha256').update(verifier).digest());
}

/** The token answer's `signature`: base64 HMAC-SHA256 of `id` + `issued_at` under the client secret. */
export function tokenSignature(clientSecret, id, issuedAt) {
  return createHmac('sha256', clientSecret).update(`${id}${issuedAt}`).digest('base64');
}

function sameText(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- SOQL, the subset a connector sends ----

const SOQL_TOKEN = /\s*(?:('(?:[^'\\]|\\.)*')|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?)|(!=|<>|<=|>=|[=<>(),*]))/y;

/** The tokens of `soql`: `{ kind: 'string'|'word'|'number'|'symbol'|'end', value, at }`; throws MALFORMED_QUERY. */
function tokenize(soql) {
  const tokens = [];
  let at = 0;
  while (at < soql.length) {
    if (/^\s*$/.test(soql.slice(at))) break;
    SOQL_TOKEN.lastIndex = at;
    const match = SOQL_TOKEN.exec(soql);
    if (!match) {
      const start = at + (soql.slice(at).length - soql.slice(at).trimStart().length);
      throw malformedQuery(soql, start, `unexpected token: '${soql[start]}'`);
    }
    const start = match.index + (match[0].length - match[0].trimStart().length);
    if (match[1] !== undefined) {
      const value = match[1].slice(1, -1).replace(/\\(.)/g, (_, c) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
      tokens.push({ kind: 'string', value, at: start });
    } else if (match[2] !== undefined) tokens.push({ kind: 'word', value: match[2], at: start });
    else if (match[3] !== undefined) tokens.push({ kind: 'number', value: Number(match[3]), at: start });
    else tokens.push({ kind: 'symbol', value: match[4], at: start });
    at = SOQL_TOKEN.lastIndex;
  }
  tokens.push({ kind: 'end', value: '<EOF>', at: soql.trimEnd().length });
  return tokens;
}

/**
 * `SELECT fields FROM object [WHERE cond [AND cond]...] [ORDER BY field [ASC|DESC]] [LIMIT n]`
 * as `{ fields: [{name, at}], object, objectAt, conditions: [{field, at, op, value}], orderBy, limit }`;
 * throws MALFORMED_QUERY for anything else.
 */
export function parseSoql(soql) {
  if (typeof soql !== 'string' || soql.trim() === '') throw badRequest('MALFORMED_QUERY', 'A SOQL query is required in the q parameter');
  const tokens = tokenize(soql);
  let position = 0;
  const peek = () => tokens[position];
  const unexpected = (token = peek()) => malformedQuery(soql, token.at, `unexpected token: '${token.value}'`);
  const keyword = (word) => peek().kind === 'word' && peek().value.toUpperCase() === word;
  const expectKeyword = (word) => {
    if (!keyword(word)) throw unexpected();
    position += 1;
  };
  const identifier = () => {
    const token = peek();
    if (token.kind !== 'word' || ['SELECT', 'FROM', 'WHERE', 'AND', 'OR', 'ORDER', 'BY', 'LIMIT'].includes(token.value.toUpperCase())) {
      throw unexpected(token);
    }
    if (token.value.includes('.')) throw malformedQuery(soql, token.at, `relationship field '${token.value}' is beyond this fake's SOQL subset`);
    position += 1;
    return token;
  };

  expectKeyword('SELECT');
  const fields = [];
  do {
    if (fields.length > 0) position += 1;
    const token = identifier();
    if (peek().kind === 'symbol' && peek().value === '(') throw unexpected();
    fields.push({ name: token.value, at: token.at });
  } while (peek().kind === 'symbol' && peek().value === ',');
  expectKeyword('FROM');
  const objectToken = identifier();
  const conditions = [];
  if (keyword('WHERE')) {
    position += 1;
    do {
      if (conditions.length > 0) position += 1;
      const field = identifier();
      const literal = () => {
        const token = peek();
        let value;
        if (token.kind === 'string' || token.kind === 'number') value = token.value;
        else if (token.kind === 'word' && ['NULL', 'TRUE', 'FALSE'].includes(token.value.toUpperCase())) {
          value = { NULL: null, TRUE: true, FALSE: false }[token.value.toUpperCase()];
        } else throw unexpected(token);
        position += 1;
        return value;
      };
      const symbol = (value) => {
        if (peek().kind !== 'symbol' || peek().value !== value) throw unexpected();
        position += 1;
      };
      if (keyword('IN')) {
        position += 1;
        symbol('(');
        const values = [literal()];
        while (peek().kind === 'symbol' && peek().value === ',') {
          position += 1;
          values.push(literal());
        }
        symbol(')');
        conditions.push({ field: field.value, at: field.at, op: 'IN', value: values });
        continue;
      }
      const operator = peek();
      if (operator.kind !== 'symbol' || !['=', '!='].includes(operator.value)) throw unexpected(operator);
      position += 1;
      conditions.push({ field: field.value, at: field.at, op: operator.value, value: literal() });
    } while (keyword('AND'));
  }
  let orderBy = null;
  if (keyword('ORDER')) {
    position += 1;
    expectKeyword('BY');
    const field = identifier();
    let descending = false;
    if (keyword('ASC') || keyword('DESC')) {
      descending = peek().value.toUpperCase() === 'DESC';
      position += 1;
    }
    orderBy = { field: field.value, at: field.at, descending };
  }
  let limit = null;
  if (keyword('LIMIT')) {
    position += 1;
    const count = peek();
    if (count.kind !== 'number' || !Number.isInteger(count.value) || count.value < 0) throw unexpected(count);
    limit = count.value;
    position += 1;
  }
  if (peek().kind !== 'end') throw unexpected();
  return { fields, object: objectToken.value, objectAt: objectToken.at, conditions, orderBy, limit };
}

/** Whether a stored value passes `field op value` (text without case, as SOQL compares it; `IN`, any of a list). */
function soqlMatches(stored, op, wanted) {
  const normal = (v) => (v === undefined ? null : typeof v === 'string' ? v.toLowerCase() : v);
  const equal = (one) => normal(stored) === normal(one) || (typeof one === 'number' && Number(stored) === one);
  if (op === 'IN') return wanted.some(equal);
  return op === '=' ? equal(wanted) : !equal(wanted);
}

// ---- Outbound Messages ----

/** Whether a listener's answer is the documented acknowledgement: `notificationsResponse` with `<Ack>true</Ack>`. */
export function isAcknowledgement(body) {
  const text = String(body ?? '');
  const response = /<(?:([A-Za-z_][\w.-]*):)?notificationsResponse\b([^>]*)>([\s\S]*?)<\/(?:[A-Za-z_][\w.-]*:)?notificationsResponse>/.exec(text);
  if (!response) return false;
  const [, prefix, attributes] = response;
  const declared = prefix ? new RegExp(`xmlns:${prefix}="([^"]*)"`).exec(text) : /xmlns="([^"]*)"/.exec(attributes);
  if (!declared || declared[1] !== OUTBOUND_NAMESPACE) return false;
  return /<(?:[A-Za-z_][\w.-]*:)?Ack>\s*true\s*<\/(?:[A-Za-z_][\w.-]*:)?Ack>/.test(response[3]);
}

/** The listener's acknowledgement as Salesforce's WSDL defines it (for tests' own listeners). */
export function acknowledgement(ack = true) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="${SOAP_ENVELOPE_NAMESPACE}">
 <soapenv:Body>
  <notificationsResponse xmlns="${OUTBOUND_NAMESPACE}">
   <Ack>${ack ? 'true' : 'false'}</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
`;
}

/** A field value as the enterprise WSDL writes it. */
function soapValue(value) {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return escapeXml(value);
}

/**
 * @typedef {'none'|'read'|'edit'} Access
 * @typedef {{ username: string, email?: string, firstName?: string, lastName?: string,
 *   access?: Partial<Record<string, Access>> }} UserOptions
 * @typedef {{ clientSecret: string, redirectUris: string[], scopes?: string[], name?: string,
 *   runAs?: string, requireSecret?: boolean }} AppOptions
 * @typedef {{ name: string, type?: string, externalId?: boolean, unique?: boolean, length?: number }} CustomField
 * @typedef {{ at: number, method: string, path: string, query: Record<string, string>,
 *   headers: import('node:http').IncomingHttpHeaders, body: unknown, status: number | null }} Call
 *
 * @typedef {object} SalesforceOptions
 * @property {UserOptions[]} [users] the org's users (the first is the default one); one integration user unless given
 * @property {Record<string, { username?: string }>} [tokens] access tokens that exist already (no OAuth), by token
 * @property {Record<string, AppOptions>} [apps] connected apps, by consumer key (client_id)
 * @property {Record<string, CustomField[]>} [customFields] custom fields by object, e.g. `{ Contact: [{ name: 'Chat_Id__c', externalId: true }] }`
 * @property {number} [dailyApiRequests] the org's daily allowance (100,000)
 * @property {number} [sessionSeconds] how long an access token lasts (7,200)
 * @property {number} [queryBatchSize] records a query batch holds unless asked for fewer (2,000)
 * @property {string[]} [duplicateRules] objects whose duplicate rule on Email is on (none)
 * @property {number} [latencyMs] every answer comes this much later (0)
 * @property {number} [hangMs] how long `hang()` keeps a socket (60 s)
 * @property {() => number} [now] the clock, in milliseconds (Date.now)
 */

/**
 * Starts the server: one org.
 * @param {SalesforceOptions} [options]
 */
export async function startSalesforce(options = {}) {
  const now = options.now ?? (() => Date.now());
  const hangMs = options.hangMs ?? HANG_MS;
  let latencyMs = options.latencyMs ?? 0;
  let sessionSeconds = options.sessionSeconds ?? SESSION_SECONDS;
  let queryBatchSize = options.queryBatchSize ?? QUERY_BATCH_SIZE;
  let dailyApiRequests = options.dailyApiRequests ?? DAILY_API_REQUESTS;
  let apiUsed = 0;

  /** @type {Call[]} */
  const requests = [];
  const failures = [];
  const hangTimers = new Set();
  let hangsLeft = 0;
  let downTimer = null;

  let counter = randomBytes(4).readUInt32BE(0) % 1_000_000;
  const newId = (prefix) => {
    counter += 1;
    return caseSafeId(`${prefix}5g${base62(counter, 10)}`);
  };
  const orgId = newId(KEY_PREFIXES.Organization);
  let caseNumber = 1000;

  // ---- the org: users, apps, tokens, fields, rules ----

  /** userId → { id, username, email, firstName, lastName, access } */
  const users = new Map();
  function addUser({ username, email, firstName = 'Integration', lastName = 'User', access = {} }) {
    if (typeof username !== 'string' || username === '') throw new Error('salesforce fake: a user needs a username');
    const id = newId(KEY_PREFIXES.User);
    const levels = {};
    for (const object of OBJECT_NAMES) {
      const level = access[object] ?? 'edit';
      if (!ACCESS_LEVELS.includes(level)) throw new Error(`salesforce fake: access ${level} is not one of ${ACCESS_LEVELS.join(', ')}`);
      levels[object] = level;
    }
    users.set(id, { id, username, email: email ?? username, firstName, lastName, access: levels });
    return id;
  }
  for (const user of options.users ?? [{ username: 'integration@acme.example', firstName: 'Chat', lastName: 'Integration' }]) addUser(user);
  const defaultUserId = users.keys().next().value;
  const userNamed = (nameOrId) => {
    const found = users.get(nameOrId) ?? [...users.values()].find((u) => u.username === nameOrId);
    if (!found) throw new Error(`salesforce fake: no user ${nameOrId}`);
    return found;
  };

  /** clientId → { clientSecret, redirectUris, scopes, name, runAs } */
  const apps = new Map();
  function registerApp(clientId, { clientSecret, redirectUris, redirectUri, scopes = ['api', 'refresh_token'], name, runAs, requireSecret = true }) {
    if (typeof clientSecret !== 'string' || clientSecret === '') throw new Error(`salesforce fake: app ${clientId} has no clientSecret`);
    const uris = redirectUris ?? (redirectUri ? [redirectUri] : []);
    if (runAs !== undefined) userNamed(runAs);
    apps.set(clientId, { clientSecret, redirectUris: [...uris], scopes: [...scopes], name: name ?? `App ${clientId}`, runAs, requireSecret });
  }
  for (const [clientId, app] of Object.entries(options.apps ?? {})) registerApp(clientId, app);

  /** access token → { userId, clientId, refreshToken, expiresMs, revoked, scopes } */
  const accessTokens = new Map();
  /** refresh token → { userId, clientId, scopes, revoked } */
  const refreshTokens = new Map();
  /** code → { clientId, redirectUri, userId, scopes, codeChallenge, expiresMs } */
  const codes = new Map();
  const authorizations = [];

  function issueAccessToken(userId, clientId, refreshToken, scopes, atMs) {
    const token = `${orgId.slice(0, 15)}!AQ${base64url(randomBytes(72)).replace(/[-_]/g, 'x')}`;
    accessTokens.set(token, { userId, clientId, refreshToken, scopes, expiresMs: atMs + sessionSeconds * 1000, revoked: false });
    return token;
  }
  for (const [token, config] of Object.entries(options.tokens ?? {})) {
    const userId = config?.username ? userNamed(config.username).id : defaultUserId;
    accessTokens.set(token, { userId, clientId: null, refreshToken: null, scopes: ['api'], expiresMs: Infinity, revoked: false });
  }

  /** object → name → field definition (standard and custom) */
  const fieldsOf = {};
  for (const object of OBJECT_NAMES) fieldsOf[object] = { ...OBJECTS[object].fields };
  function addCustomField(object, { name, type = 'string', externalId = false, unique = false, length = 255 }) {
    if (!OBJECTS[object]) throw new Error(`salesforce fake: no object ${object}`);
    if (!/^[A-Za-z][A-Za-z0-9_]*__c$/.test(name)) throw new Error(`salesforce fake: a custom field's name ends in __c, got ${name}`);
    fieldsOf[object][name] = { type, length, externalId, unique, custom: true };
  }
  for (const [object, fields] of Object.entries(options.customFields ?? {})) for (const field of fields) addCustomField(object, field);

  const duplicateRules = new Set(options.duplicateRules ?? []);

  // ---- records ----

  /** id → { object, id, fields, createdMs, modifiedMs, deleted, createdBy } */
  let records = new Map();
  /** query locator → { records, object, fields, offset, batch } */
  let locators = new Map();

  const recordUrl = (object, id) => `${DATA_PATH}/sobjects/${object}/${id}`;
  const live = (object) => [...records.values()].filter((r) => r.object === object && !r.deleted);

  /** A field of `object` by name, without case, as Salesforce reads names: [name, definition] or null. */
  function fieldNamed(object, name) {
    if (typeof name !== 'string') return null;
    const key = Object.keys(fieldsOf[object]).find((f) => f.toLowerCase() === name.toLowerCase());
    return key ? [key, fieldsOf[object][key]] : null;
  }

  /** The fields that can key an upsert: external id fields and idLookup ones. */
  function isUpsertKey(object, name) {
    const def = fieldsOf[object][name];
    return Boolean(def && (def.externalId || OBJECTS[object].idLookup.includes(name)));
  }

  /** Every field of a record, null when unset, as a read answers it. */
  function view(record, only) {
    const answer = { attributes: { type: record.object, url: recordUrl(record.object, record.id) } };
    const names = only ?? Object.keys(fieldsOf[record.object]);
    for (const name of names) answer[name] = record.fields[name] ?? null;
    return answer;
  }

  /** Checks the body of a create (`current` null) or an update; answers the values to store. */
  function checkFields(object, body, current) {
    if (!isPlainObject(body)) throw badRequest('JSON_PARSER_ERROR', 'The request body must be a JSON object of field names to values');
    const values = {};
    const readOnlyGiven = [];
    for (const [given, value] of Object.entries(body)) {
      if (given === 'attributes') continue;
      const found = fieldNamed(object, given);
      if (!found) throw badRequest('INVALID_FIELD', `No such column '${given}' on sobject of type ${object}`);
      const [name, def] = found;
      if (def.readOnly) {
        readOnlyGiven.push(name);
        continue;
      }
      values[name] = checkValue(object, name, def, value);
    }
    if (readOnlyGiven.length > 0) {
      throw badRequest(
        'INVALID_FIELD_FOR_INSERT_UPDATE',
        `Unable to create/update fields: ${readOnlyGiven.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
        readOnlyGiven,
      );
    }
    const missing = [];
    for (const name of OBJECTS[object].required) {
      const def = fieldsOf[object][name];
      const given = Object.hasOwn(values, name);
      if (given && values[name] === null) missing.push(name);
      else if (!given && !current && def.defaultValue === undefined) missing.push(name);
    }
    if (missing.length > 0) throw badRequest('REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing);
    return values;
  }

  /** A value checked against its field: the value to store (null clears). */
  function checkValue(object, name, def, value) {
    if (value === null || value === '') return null;
    const wrongType = () => badRequest('JSON_PARSER_ERROR', `Cannot deserialize instance of ${def.type} from ${JSON.stringify(value)} for field ${name}`, [name]);
    switch (def.type) {
      case 'boolean':
        if (typeof value !== 'boolean') throw wrongType();
        return value;
      case 'int':
        if (!Number.isInteger(value)) throw wrongType();
        return value;
      case 'date':
        if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) throw wrongType();
        return value;
      case 'reference': {
        if (typeof value !== 'string') throw wrongType();
        const id = normalizeId(value);
        const kind = id === null ? null : id.startsWith(KEY_PREFIXES.User) ? 'User' : objectOfId(id);
        if (!id || !(def.referenceTo ?? []).includes(kind)) {
          throw badRequest('MALFORMED_ID', `${fieldLabel(name)}: id value of incorrect type: ${value}`, [name]);
        }
        const exists = kind === 'User' ? users.has(id) : records.has(id) && !records.get(id).deleted;
        if (!exists) throw badRequest('INVALID_CROSS_REFERENCE_KEY', `${fieldLabel(name)}: invalid cross reference id`, [name]);
        return id;
      }
      default: {
        if (typeof value !== 'string' && typeof value !== 'number') throw wrongType();
        const textValue = String(value);
        if (def.type === 'email' && !isEmail(textValue)) {
          throw badRequest('INVALID_EMAIL_ADDRESS', `${fieldLabel(name)}: invalid email address: ${textValue}`, [name]);
        }
        if (def.length && [...textValue].length > def.length) {
          throw badRequest('STRING_TOO_LONG', `${fieldLabel(name)}: data value too large: ${textValue.slice(0, 40)} (max length=${def.length})`, [name]);
        }
        if (def.type === 'picklist' && def.restricted && !def.values.includes(textValue)) {
          throw badRequest('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${fieldLabel(name)}: bad value for restricted picklist field: ${textValue}`, [name]);
        }
        return textValue;
      }
    }
  }

  function fieldLabel(name) {
    return name.replace(/__c$/, '').replace(/Id$/, ' ID').replace(/([a-z])([A-Z])/g, '$1 $2');
  }

  /** A unique custom field's value held by another live record is refused, as Salesforce refuses it. */
  function checkUnique(object, values, exceptId) {
    for (const [name, def] of Object.entries(fieldsOf[object])) {
      if (!def.unique || values[name] === undefined || values[name] === null) continue;
      const holder = live(object).find((r) => r.id !== exceptId && String(r.fields[name] ?? '').toLowerCase() === String(values[name]).toLowerCase());
      if (holder) {
        throw badRequest('DUPLICATE_VALUE', `duplicate value found: ${name} duplicates value on record with id: ${holder.id}`, [name]);
      }
    }
  }

  /** The org's duplicate rule on Email, when on for `object`. */
  function checkDuplicates(object, values, exceptId, allowSave) {
    if (!duplicateRules.has(object) || allowSave) return;
    const emailValue = values.Email;
    if (typeof emailValue !== 'string') return;
    const matches = live(object).filter((r) => r.id !== exceptId && typeof r.fields.Email === 'string' && r.fields.Email.toLowerCase() === emailValue.toLowerCase());
    if (matches.length === 0) return;
    const duplicateResut = {
      allowSave: false,
      duplicateRule: `Standard_${object}_Duplicate_Rule`,
      duplicateRuleEntityType: object,
      errorMessage: DUPLICATE_MESSAGE,
      matchResults: [
        {
          entityType: object,
          errors: [],
          matchEngine: 'FuzzyMatchEngine',
          matchRecords: matches.map((r) => ({
            additionalInformation: [],
            fieldDiffs: [],
            matchConfidence: 100.0,
            record: { attributes: { type: object, url: recordUrl(object, r.id) }, Id: r.id },
          })),
          rule: `Standard_${object}_Match_Rule_v1_1`,
          size: matches.length,
          success: true,
        },
      ],
    };
    const error = new SfError(400, 'DUPLICATES_DETECTED', DUPLICATE_MESSAGE, {
      body: [{ duplicateResut, errorCode: 'DUPLICATES_DETECTED', message: DUPLICATE_MESSAGE }],
    });
    throw error;
  }

  function derive(record) {
    const def = OBJECTS[record.object];
    if (def.name) record.fields.Name = def.name(record.fields) || null;
    if (record.object === 'Task' || record.object === 'Case') record.fields.IsClosed = ['Completed', 'Closed'].includes(record.fields.Status);
    if (record.object === 'Case' && record.fields.IsClosed && !record.fields.ClosedDate) record.fields.ClosedDate = sfDateTime(record.modifiedMs);
  }

  function insert(object, values, userId, atMs) {
    const id = newId(KEY_PREFIXES[object]);
    const fields = {};
    for (const [name, def] of Object.entries(fieldsOf[object])) if (def.defaultValue !== undefined) fields[name] = def.defaultValue;
    for (const [name, value] of Object.entries(values)) if (value !== null) fields[name] = value;
    Object.assign(fields, {
      Id: id,
      IsDeleted: false,
      OwnerId: fields.OwnerId ?? userId,
      CreatedDate: sfDateTime(atMs),
      CreatedById: userId,
      LastModifiedDate: sfDateTime(atMs),
      LastModifiedById: userId,
      SystemModstamp: sfDateTime(atMs),
    });
    if (object === 'Case') fields.CaseNumber = String((caseNumber += 1)).padStart(8, '0');
    if (object === 'Lead') fields.IsConverted = false;
    const record = { object, id, fields, createdMs: atMs, modifiedMs: atMs, deleted: false, writes: 1 };
    derive(record);
    records.set(id, record);
    return record;
  }

  function modify(record, values, userId, atMs) {
    for (const [name, value] of Object.entries(values)) {
      if (value === null) delete record.fields[name];
      else record.fields[name] = value;
    }
    record.modifiedMs = atMs;
    record.writes += 1;
    Object.assign(record.fields, { LastModifiedDate: sfDateTime(atMs), LastModifiedById: userId, SystemModstamp: sfDateTime(atMs) });
    derive(record);
  }

  function remove(record, atMs, masterId) {
    record.deleted = true;
    record.fields.IsDeleted = true;
    if (masterId) record.fields.MasterRecordId = masterId;
    record.fields.SystemModstamp = sfDateTime(atMs);
  }

  /** The live record `object` `id` names, or the documented refusal. */
  function findById(object, segment) {
    const id = normalizeId(segment, KEY_PREFIXES[object]);
    if (!id) throw new SfError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${segment}`);
    const record = records.get(id);
    if (!record) throw notFound();
    if (record.deleted) throw new SfError(404, 'ENTITY_IS_DELETED', 'entity is deleted');
    return record;
  }

  /** The live records whose upsert key `field` holds `value` (without case). */
  function findByKey(object, field, value) {
    return live(object).filter((r) => r.fields[field] !== undefined && String(r.fields[field]).toLowerCase() === String(value).toLowerCase());
  }

  /** The upsert key named in a path: its canonical name; 404 when it is none. */
  function upsertKey(object, given) {
    const found = fieldNamed(object, given);
    if (!found || !isUpsertKey(object, found[0])) throw notFound();
    return found[0];
  }

  // ---- transactions: what allOrNone rolls back ----

  function snapshot() {
    return { records: new Map([...records].map(([id, record]) => [id, structuredClone(record)])), caseNumber };
  }

  function restore(saved) {
    records = saved.records;
    caseNumber = saved.caseNumber;
  }

  // ---- access ----

  /** The user's access to `object`: 404 when none, 403 for a write without edit access. */
  function requireAccess(user, object, write) {
    const level = user.access[object];
    if (level === 'none') throw notFound();
    if (write && level !== 'edit') throw new SfError(403, 'INSUFFICIENT_ACCESS_OR_READONLY', 'insufficient access rights on object id');
  }

  /** The object a path names (without case); 404 when none kept here or hidden from the user. */
  function objectNamed(user, given) {
    const object = OBJECT_NAMES.find((name) => name.toLowerCase() === String(given).toLowerCase());
    if (!object) throw notFound();
    requireAccess(user, object, false);
    return object;
  }

  // ---- sObject rows ----

  function create(ctx, object, body) {
    requireAccess(ctx.user, object, true);
    if (isPlainObject(body) && Object.keys(body).some((name) => name.toLowerCase() === 'id')) {
      throw badRequest('INVALID_FIELD', 'cannot specify Id in an insert call', ['Id']);
    }
    const values = checkFields(object, body, null);
    checkUnique(object, values, undefined);
    checkDuplicates(object, values, undefined, ctx.allowSave);
    const record = insert(object, values, ctx.user.id, ctx.atMs);
    return { status: 201, body: { id: record.id, success: true, errors: [] }, headers: { Location: recordUrl(object, record.id) } };
  }

  function read(ctx, object, record, query) {
    const only = query?.get('fields');
    if (only === null || only === undefined) return { status: 200, body: view(record) };
    const names = only.split(',').map((name) => name.trim()).filter(Boolean).map((name) => {
      const found = fieldNamed(object, name);
      if (!found) throw badRequest('INVALID_FIELD', `No such column '${name}' on sobject of type ${object}`);
      return found[0];
    });
    return { status: 200, body: view(record, ['Id', ...names.filter((name) => name !== 'Id')]) };
  }

  function update(ctx, object, record, body) {
    requireAccess(ctx.user, object, true);
    if (isPlainObject(body) && Object.keys(body).some((name) => name.toLowerCase() === 'id')) {
      throw badRequest('INVALID_FIELD', 'The Id field should not be specified in the sobject data.', ['Id']);
    }
    const values = checkFields(object, body, record);
    checkUnique(object, values, record.id);
    if (values.Email !== undefined) checkDuplicates(object, values, record.id, ctx.allowSave);
    modify(record, values, ctx.user.id, ctx.atMs);
    return { status: 204 };
  }

  function destroy(ctx, object, record) {
    requireAccess(ctx.user, object, true);
    remove(record, ctx.atMs);
    return { status: 204 };
  }

  /** PATCH by an upsert key: 201 created, 200 updated, 300 several matches. */
  function upsert(ctx, object, field, value, body, updateOnly) {
    requireAccess(ctx.user, object, true);
    if (isPlainObject(body)) {
      for (const given of Object.keys(body)) {
        if (given.toLowerCase() === 'id') throw badRequest('INVALID_FIELD', 'The Id field should not be specified in the sobject data.', ['Id']);
        if (given.toLowerCase() === field.toLowerCase()) {
          throw badRequest('INVALID_FIELD', `${field}: the external id field is specified in the URL and must not be specified in the sobject data`, [field]);
        }
      }
    }
    const matches = findByKey(object, field, value);
    if (matches.length > 1) return { status: 300, body: matches.map((r) => recordUrl(object, r.id)) };
    if (matches.length === 1) {
      const [record] = matches;
      const values = checkFields(object, body, record);
      checkUnique(object, values, record.id);
      if (values.Email !== undefined) checkDuplicates(object, values, record.id, ctx.allowSave);
      modify(record, values, ctx.user.id, ctx.atMs);
      return { status: 200, body: { id: record.id, success: true, errors: [], created: false } };
    }
    if (updateOnly) throw notFound();
    const values = checkFields(object, body, null);
    values[field] = checkValue(object, field, fieldsOf[object][field], value);
    checkUnique(object, values, undefined);
    checkDuplicates(object, values, undefined, ctx.allowSave);
    const record = insert(object, values, ctx.user.id, ctx.atMs);
    return { status: 201, body: { id: record.id, success: true, errors: [], created: true }, headers: { Location: recordUrl(object, record.id) } };
  }

  /** GET or DELETE by an upsert key: the one record, or 300 with the URLs of several. */
  function byKey(ctx, method, object, field, value, query) {
    const matches = findByKey(object, field, value);
    if (matches.length === 0) throw notFound();
    if (matches.length > 1) return { status: 300, body: matches.map((r) => recordUrl(object, r.id)) };
    return method === 'DELETE' ? destroy(ctx, object, matches[0]) : read(ctx, object, matches[0], query);
  }

  // ---- query ----

  function soqlError(errorCode, soql, at, what) {
    return badRequest(errorCode, `\n${soql}\n${' '.repeat(at)}^\nERROR at Row:1:Column:${at + 1}\n${what}`);
  }

  function runQuery(ctx, soql, batchSize) {
    const parsed = parseSoql(soql);
    const object = OBJECT_NAMES.find((name) => name.toLowerCase() === parsed.object.toLowerCase());
    if (!object || ctx.user.access[object] === 'none') {
      throw soqlError(
        'INVALID_TYPE',
        soql,
        parsed.objectAt,
        `sObject type '${parsed.object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`,
      );
    }
    const column = (name, at) => {
      const found = fieldNamed(object, name);
      if (!found) {
        throw soqlError(
          'INVALID_FIELD',
          soql,
          at,
          `No such column '${name}' on entity '${object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
        );
      }
      return found[0];
    };
    const fields = parsed.fields.map((f) => column(f.name, f.at));
    const conditions = parsed.conditions.map((c) => ({ ...c, field: column(c.field, c.at) }));
    let hits = live(object).filter((r) => conditions.every((c) => soqlMatches(r.fields[c.field], c.op, c.value)));
    if (parsed.orderBy) {
      const field = column(parsed.orderBy.field, parsed.orderBy.at);
      const sign = parsed.orderBy.descending ? -1 : 1;
      hits = hits
        .map((record, index) => ({ record, index }))
        .sort((a, b) => {
          const [x, y] = [a.record.fields[field] ?? null, b.record.fields[field] ?? null];
          if (x === y) return a.index - b.index;
          if (x === null) return -sign;
          if (y === null) return sign;
          return (x < y ? -1 : 1) * sign;
        })
        .map(({ record }) => record);
    }
    if (parsed.limit !== null) hits = hits.slice(0, parsed.limit);
    const rows = hits.map((record) => view(record, fields));
    return { status: 200, body: queryPage(rows, 0, batchSize) };
  }

  function queryPage(rows, offset, batch) {
    const done = offset + batch >= rows.length;
    const answer = { totalSize: rows.length, done };
    if (!done) {
      const locator = newId('01g');
      locators.set(locator, { rows, batch });
      answer.nextRecordsUrl = `${DATA_PATH}/query/${locator}-${offset + batch}`;
    }
    answer.records = rows.slice(offset, offset + batch);
    return answer;
  }

  function queryMore(segment) {
    const match = /^(01g[0-9A-Za-z]{15})-(\d+)$/.exec(segment);
    const saved = match ? locators.get(match[1]) : undefined;
    if (!saved || Number(match[2]) > saved.rows.length) throw badRequest('INVALID_QUERY_LOCATOR', 'invalid query locator');
    return { status: 200, body: queryPage(saved.rows, Number(match[2]), saved.batch) };
  }

  /** The batch size asked for with `Sforce-Query-Options: batchSize=N` (200 to 2,000), else the default. */
  function batchSizeOf(headers) {
    const asked = /batchSize\s*=\s*(\d+)/i.exec(String(headers['sforce-query-options'] ?? ''));
    if (!asked) return queryBatchSize;
    const size = Number(asked[1]);
    return size >= QUERY_MIN_BATCH_SIZE && size <= QUERY_BATCH_SIZE ? Math.min(size, queryBatchSize) : queryBatchSize;
  }

  // ---- sObject Collections ----

  /** The object a collection record names in `attributes.type`; throws a record error. */
  function typeOf(ctx, record) {
    const type = isPlainObject(record) && isPlainObject(record.attributes) ? record.attributes.type : undefined;
    if (typeof type !== 'string' || type === '') throw badRequest('INVALID_TYPE', 'Must specify a type in the attributes map of each record');
    const object = OBJECT_NAMES.find((name) => name.toLowerCase() === type.toLowerCase());
    if (!object || ctx.user.access[object] === 'none') throw badRequest('INVALID_TYPE', `sObject type '${type}' is not supported.`);
    return object;
  }

  function fieldsOnly(record) {
    const { attributes: _attributes, ...fields } = record;
    return fields;
  }

  function collectionRecords(body) {
    if (!isPlainObject(body) || !Array.isArray(body.records)) throw badRequest('JSON_PARSER_ERROR', 'records is required: a list of sObjects');
    if (body.records.length > COLLECTION_MAX_RECORDS) throw badRequest('EXCEEDED_ID_LIMIT', COLLECTION_LIMIT_MESSAGE);
    return body.records;
  }

  /** Runs `each` on every record; with allOrNone one failure rolls all back. */
  function collection(body, each) {
    const list = collectionRecords(body);
    const saved = snapshot();
    const results = list.map((record, index) => {
      try {
        return each(record, index);
      } catch (error) {
        if (!(error instanceof SfError)) throw error;
        return { success: false, errors: [error.saveError()] };
      }
    });
    if (body.allOrNone === true && results.some((result) => !result.success)) {
      restore(saved);
      const rolledBack = { statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: ROLLED_BACK_MESSAGE, fields: [] };
      return { status: 200, body: results.map((result) => (result.success ? { success: false, errors: [rolledBack] } : result)) };
    }
    return { status: 200, body: results };
  }

  function createMany(ctx, body) {
    return collection(body, (record) => {
      const object = typeOf(ctx, record);
      if (Object.keys(record).some((name) => name.toLowerCase() === 'id')) throw badRequest('INVALID_FIELD', 'cannot specify Id in an insert call', ['Id']);
      return create(ctx, object, fieldsOnly(record)).body;
    });
  }

  function updateMany(ctx, body) {
    return collection(body, (record) => {
      const object = typeOf(ctx, record);
      const { Id: given, ...fields } = fieldsOnly(record);
      if (typeof given !== 'string' || given === '') throw badRequest('MISSING_ARGUMENT', 'Id not specified in an update call', ['Id']);
      const id = normalizeId(given, KEY_PREFIXES[object]);
      if (!id) throw badRequest('MALFORMED_ID', `Record ID: id value of incorrect type: ${given}`, ['Id']);
      const existing = records.get(id);
      if (!existing) throw badRequest('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', []);
      if (existing.deleted) throw badRequest('ENTITY_IS_DELETED', 'entity is deleted', []);
      update(ctx, object, existing, fields);
      return { id, success: true, errors: [] };
    });
  }

  function upsertMany(ctx, object, keyGiven, body) {
    requireAccess(ctx.user, object, true);
    const field = upsertKey(object, keyGiven);
    const list = collectionRecords(body);
    const counts = new Map();
    for (const record of list) {
      const value = isPlainObject(record) ? record[Object.keys(record).find((name) => name.toLowerCase() === field.toLowerCase())] : undefined;
      if (value !== undefined && value !== null) counts.set(String(value).toLowerCase(), (counts.get(String(value).toLowerCase()) ?? 0) + 1);
    }
    return collection(body, (record) => {
      const type = typeOf(ctx, record);
      if (type !== object) throw badRequest('INVALID_TYPE', `The list can only contain records of the type ${object}, not ${type}`);
      const fields = fieldsOnly(record);
      if (Object.keys(fields).some((name) => name.toLowerCase() === 'id')) throw badRequest('INVALID_FIELD', 'Only external ids are supported: do not set Id', ['Id']);
      const keyName = Object.keys(fields).find((name) => name.toLowerCase() === field.toLowerCase());
      const value = keyName === undefined ? undefined : fields[keyName];
      if (value === undefined || value === null || value === '') throw badRequest('MISSING_ARGUMENT', `${field} not specified`, [field]);
      if (counts.get(String(value).toLowerCase()) > 1) throw badRequest('DUPLICATE_EXTERNAL_ID', `Duplicate external id specified: ${value}`, [field]);
      delete fields[keyName];
      const answer = upsert(ctx, object, field, value, fields, false);
      if (answer.status === 300) {
        const ids = findByKey(object, field, value).map((r) => r.id);
        throw badRequest('DUPLICATE_EXTERNAL_ID', `${field}: more than one record found for external id field: [${ids.join(', ')}]`, [field]);
      }
      return answer.body;
    });
  }

  // ---- Composite ----

  /** `@{ref.path}` references in `value` replaced by an earlier result's values. */
  function resolveReferences(value, results) {
    const lookup = (expression) => {
      const [, ref, rest] = /^([^.[\]]+)(.*)$/.exec(expression) ?? [];
      const halted = () => new SfError(400, 'PROCESSING_HALTED', `Invalid reference specified. No value for ${expression} found in ${ref}.`);
      const result = ref === undefined ? undefined : results.get(ref);
      if (!result || result.status >= 400) throw halted();
      let current = result.body;
      for (const [, name, index] of rest.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) {
        current = current === null || current === undefined ? undefined : current[name ?? Number(index)];
      }
      if (current === undefined || current === null || typeof current === 'object') throw halted();
      return current;
    };
    if (typeof value === 'string') {
      const whole = /^@\{([^}]+)\}$/.exec(value);
      if (whole) return lookup(whole[1]);
      return value.replace(/@\{([^}]+)\}/g, (_, expression) => String(lookup(expression)));
    }
    if (Array.isArray(value)) return value.map((item) => resolveReferences(item, results));
    if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolveReferences(item, results)]));
    return value;
  }

  function composite(ctx, body) {
    if (!isPlainObject(body) || !Array.isArray(body.compositeRequest)) throw badRequest('JSON_PARSER_ERROR', 'compositeRequest is required: a list of subrequests');
    const subrequests = body.compositeRequest;
    if (subrequests.length > COMPOSITE_MAX_SUBREQUESTS) {
      const body_ = [{ errorCode: 'LIMIT_EXCEEDED', message: COMPOSITE_LIMIT_MESSAGE }];
      return { status: 200, body: { compositeResponse: [{ body: body_, httpHeaders: {}, httpStatusCode: 400, referenceId: null }] } };
    }
    const seen = new Set();
    subrequests.forEach((sub, index) => {
      if (!isPlainObject(sub)) throw badRequest('JSON_PARSER_ERROR', `compositeRequest[${index}] must be an object`);
      for (const key of ['method', 'url', 'referenceId']) {
        if (typeof sub[key] !== 'string' || sub[key] === '') throw badRequest('JSON_PARSER_ERROR', `compositeRequest[${index}]: the ${key} field is required`);
      }
      if (!['GET', 'POST', 'PATCH', 'PUT', 'DELETE'].includes(sub.method)) throw badRequest('JSON_PARSER_ERROR', `compositeRequest[${index}]: method ${sub.method} is not one of GET, POST, PATCH, PUT, DELETE`);
      if (seen.has(sub.referenceId)) throw badRequest('JSON_PARSER_ERROR', `Duplicate referenceId provided in the request: ${sub.referenceId}`);
      seen.add(sub.referenceId);
    });
    const allOrNone = body.allOrNone === true;
    const saved = snapshot();
    const results = new Map();
    const answers = [];
    let failed = false;
    for (const sub of subrequests) {
      if (failed && allOrNone) {
        answers.push({ sub, answer: null });
        continue;
      }
      let answer;
      try {
        if (!/^[A-Za-z0-9][A-Za-z0-9_]*$/.test(sub.referenceId)) {
          throw new SfError(
            400,
            'PROCESSING_HALTED',
            `Provided referenceId ('${sub.referenceId}') must start with a letter or a number, and it can contain only letters, numbers and underscores ('_').`,
          );
        }
        const url = resolveReferences(sub.url, results);
        const subBody = sub.body === undefined ? undefined : resolveReferences(sub.body, results);
        answer = subrequest(ctx, sub.method, url, subBody);
      } catch (error) {
        if (!(error instanceof SfError)) throw error;
        answer = { status: error.status, body: error.body() };
      }
      results.set(sub.referenceId, answer);
      answers.push({ sub, answer });
      if (answer.status >= 400) failed = true;
    }
    if (failed && allOrNone) restore(saved);
    const halted = [{ errorCode: 'PROCESSING_HALTED', message: HALTED_MESSAGE }];
    const compositeResponse = answers.map(({ sub, answer }) => {
      if (!answer || (failed && allOrNone && answer.status < 400)) {
        return { body: halted, httpHeaders: {}, httpStatusCode: 400, referenceId: sub.referenceId };
      }
      return { body: answer.body ?? null, httpHeaders: answer.headers ?? {}, httpStatusCode: answer.status, referenceId: sub.referenceId };
    });
    return { status: 200, body: { compositeResponse } };
  }

  /** One composite subrequest, served as the same call made alone would be. */
  function subrequest(ctx, method, url, body) {
    const parsed = new URL(url, 'http://salesforce.invalid');
    if (!parsed.pathname.startsWith(`${DATA_PATH}/`)) throw notFound();
    const segments = parsed.pathname.slice(DATA_PATH.length + 1).split('/').filter((s) => s !== '').map(decodeSegment);
    const found = route(segments);
    if (!found || found.kind === 'composite') throw notFound();
    if (!found.methods.includes(method)) throw methodNotAllowed(method, found.methods);
    return serve(ctx, method, found, parsed.searchParams, body, {});
  }

  // ---- describe, limits ----

  function objectUrls(object) {
    const base = `${DATA_PATH}/sobjects/${object}`;
    return { sobject: base, describe: `${base}/describe`, rowTemplate: `${base}/{ID}` };
  }

  function objectSummary(user, object) {
    const editable = user.access[object] === 'edit';
    const def = OBJECTS[object];
    return {
      name: object,
      label: def.label,
      labelPlural: def.labelPlural,
      keyPrefix: KEY_PREFIXES[object],
      custom: false,
      createable: editable,
      updateable: editable,
      deletable: editable,
      mergeable: editable && object !== 'Task',
      queryable: true,
      retrieveable: true,
      searchable: true,
      urls: objectUrls(object),
    };
  }

  function describe(user, object) {
    const editable = user.access[object] === 'edit';
    const required = OBJECTS[object].required;
    const fields = Object.entries(fieldsOf[object]).map(([name, def]) => ({
      name,
      label: fieldLabel(name),
      type: def.type,
      length: def.length ?? 0,
      custom: Boolean(def.custom),
      nillable: !required.includes(name) && name !== 'Id' && !def.readOnly,
      createable: editable && !def.readOnly,
      updateable: editable && !def.readOnly,
      defaultedOnCreate: def.defaultValue !== undefined || Boolean(def.defaulted) || Boolean(def.readOnly),
      externalId: Boolean(def.externalId),
      idLookup: name === 'Id' || OBJECTS[object].idLookup.includes(name) || Boolean(def.externalId),
      unique: Boolean(def.unique),
      caseSensitive: false,
      referenceTo: def.referenceTo ?? [],
      picklistValues: (def.values ?? []).map((value) => ({ active: true, defaultValue: value === def.defaultValue, label: value, validFor: null, value })),
    }));
    return { ...objectSummary(user, object), fields };
  }

  function limits() {
    return {
      DailyApiRequests: { Max: dailyApiRequests, Remaining: Math.max(0, dailyApiRequests - apiUsed) },
      DailyAsyncApexExecutions: { Max: 250_000, Remaining: 250_000 },
      DailyBulkV2QueryJobs: { Max: 10_000, Remaining: 10_000 },
      DataStorageMB: { Max: 1_024, Remaining: 1_024 },
      FileStorageMB: { Max: 10_240, Remaining: 10_240 },
    };
  }

  function versions() {
    return [{ label: VERSION_LABEL, url: DATA_PATH, version: API_VERSION }];
  }

  // ---- REST routes ----

  function methodNotAllowed(method, allowed) {
    return new SfError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are ${allowed.join(',')}`);
  }

  /**
   * The route of a path below `/services/data/v66.0/` (its segments): `{ kind, methods, ... }`, or
   * null when no resource lives there. Object names are resolved later, against the user.
   */
  function route(segments) {
    const [head, ...rest] = segments;
    if (segments.length === 0) return { kind: 'resources', methods: ['GET'] };
    if (head === 'limits' && rest.length === 0) return { kind: 'limits', methods: ['GET'] };
    if (head === 'query') {
      if (rest.length === 0) return { kind: 'query', methods: ['GET'] };
      if (rest.length === 1) return { kind: 'queryMore', locator: rest[0], methods: ['GET'] };
      return null;
    }
    if (head === 'sobjects') {
      if (rest.length === 0) return { kind: 'global', methods: ['GET'] };
      const [object, second, third] = rest;
      if (rest.length === 1) return { kind: 'object', object, methods: ['GET', 'POST'] };
      if (rest.length === 2 && second === 'describe') return { kind: 'describe', object, methods: ['GET'] };
      if (rest.length === 2) return { kind: 'row', object, id: second, methods: ['GET', 'PATCH', 'DELETE'] };
      if (rest.length === 3) return { kind: 'key', object, field: second, value: third, methods: ['GET', 'PATCH', 'DELETE'] };
      return null;
    }
    if (head === 'composite') {
      if (rest.length === 0) return { kind: 'composite', methods: ['POST'] };
      if (rest[0] !== 'sobjects') return null;
      if (rest.length === 1) return { kind: 'collection', methods: ['POST', 'PATCH'] };
      if (rest.length === 3) return { kind: 'collectionUpsert', object: rest[1], field: rest[2], methods: ['PATCH'] };
    }
    return null;
  }

  /** Whether the route reads a JSON body for `method`. */
  function takesJson(found, method) {
    if (method === 'GET' || method === 'DELETE') return false;
    return ['object', 'row', 'key', 'composite', 'collection', 'collectionUpsert'].includes(found.kind);
  }

  /** An authenticated, counted call: `{ status, body?, headers? }`; throws SfError. */
  function serve(ctx, method, found, query, body, headers) {
    switch (found.kind) {
      case 'resources':
        return {
          status: 200,
          body: {
            sobjects: `${DATA_PATH}/sobjects`,
            query: `${DATA_PATH}/query`,
            composite: `${DATA_PATH}/composite`,
            limits: `${DATA_PATH}/limits`,
          },
        };
      case 'limits':
        return { status: 200, body: limits() };
      case 'global':
        return {
          status: 200,
          body: {
            encoding: 'UTF-8',
            maxBatchSize: COLLECTION_MAX_RECORDS,
            sobjects: OBJECT_NAMES.filter((object) => ctx.user.access[object] !== 'none').map((object) => objectSummary(ctx.user, object)),
          },
        };
      case 'object': {
        const object = objectNamed(ctx.user, found.object);
        if (method === 'POST') return create(ctx, object, body);
        const recent = live(object).slice(-3).reverse().map((record) => view(record, ['Id', ...(fieldsOf[object].Name ? ['Name'] : [])]));
        return { status: 200, body: { objectDescribe: objectSummary(ctx.user, object), recentItems: recent } };
      }
      case 'describe':
        return { status: 200, body: describe(ctx.user, objectNamed(ctx.user, found.object)) };
      case 'row': {
        const object = objectNamed(ctx.user, found.object);
        const record = findById(object, found.id);
        if (method === 'GET') return read(ctx, object, record, query);
        if (method === 'PATCH') return update(ctx, object, record, body);
        return destroy(ctx, object, record);
      }
      case 'key': {
        const object = objectNamed(ctx.user, found.object);
        const field = upsertKey(object, found.field);
        if (method === 'PATCH') return upsert(ctx, object, field, found.value, body, query.get('updateOnly') === 'true');
        return byKey(ctx, method, object, field, found.value, query);
      }
      case 'query':
        return runQuery(ctx, query.get('q'), batchSizeOf(headers));
      case 'queryMore':
        return queryMore(found.locator);
      case 'collection':
        return method === 'POST' ? createMany(ctx, body) : updateMany(ctx, body);
      case 'collectionUpsert':
        return upsertMany(ctx, objectNamed(ctx.user, found.object), found.field, body);
      case 'composite':
        return composite(ctx, body);
      default:
        throw notFound();
    }
  }

  // ---- authentication and the daily allowance ----

  /** The bearer of a REST call: `{ user, token }`; throws a 401. */
  function authenticate(headers, atMs) {
    const header = String(headers.authorization ?? '').trim();
    if (header === '') throw new SfError(401, 'INVALID_AUTH_HEADER', 'INVALID_HEADER_TYPE');
    const match = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(header);
    const held = match ? accessTokens.get(match[1]) : undefined;
    if (!held || held.revoked || atMs >= held.expiresMs) throw new SfError(401, 'INVALID_SESSION_ID', SESSION_EXPIRED);
    return { user: users.get(held.userId), token: match[1] };
  }

  const limitInfo = () => ({ 'Sforce-Limit-Info': `api-usage=${apiUsed}/${dailyApiRequests}` });

  /** Spends one call of the daily allowance; throws REQUEST_LIMIT_EXCEEDED once it is spent. */
  function spend() {
    if (apiUsed >= dailyApiRequests) throw new SfError(403, 'REQUEST_LIMIT_EXCEEDED', LIMIT_EXCEEDED_MESSAGE);
    apiUsed += 1;
  }

  // ---- OAuth 2.0 ----

  const identityUrl = (userId) => `${origin}/id/${orgId}/${userId}`;
  const oauthError = (error, description) => ({ status: 400, body: { error, error_description: description } });

  /** Reads an authorization request as the consent page does: `{ ok }` or `{ page }` (an error shown) or `{ redirect }`. */
  function readAuthorization(parameters) {
    const get = (name) => parameters.get(name) ?? undefined;
    const clientId = get('client_id');
    const app = clientId ? apps.get(clientId) : undefined;
    if (!app) return { page: 'error=invalid_client_id&error_description=client%20identifier%20invalid' };
    const redirectUri = get('redirect_uri');
    if (!redirectUri || !app.redirectUris.includes(redirectUri)) {
      return { page: 'error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration' };
    }
    const state = get('state');
    const back = (error, description) => {
      const url = new URL(redirectUri);
      url.searchParams.append('error', error);
      url.searchParams.append('error_description', description);
      if (state !== undefined) url.searchParams.append('state', state);
      return { redirect: url.toString() };
    };
    if (get('response_type') !== 'code') return back('unsupported_response_type', 'response type not supported');
    const method = get('code_challenge_method');
    if (method !== undefined && method !== 'S256') return back('invalid_request', 'code_challenge_method must be S256');
    const asked = (get('scope') ?? '').split(/[ +]/).filter((scope) => scope !== '');
    const allowed = [...app.scopes, 'id', 'openid'];
    const unknown = asked.find((scope) => !allowed.includes(scope));
    if (unknown) return back('invalid_scope', `the requested scope is not allowed: ${unknown}`);
    let user;
    try {
      user = get('login_hint') ? userNamed(get('login_hint')) : users.get(defaultUserId);
    } catch {
      return back('access_denied', 'end-user denied authorization');
    }
    return {
      ok: { clientId, app, redirectUri, state, user, scopes: asked.length > 0 ? asked : [...app.scopes], codeChallenge: get('code_challenge') },
    };
  }

  function issueCode(authorization, atMs) {
    const code = `aPrx${base64url(randomBytes(36))}`;
    codes.set(code, {
      clientId: authorization.clientId,
      redirectUri: authorization.redirectUri,
      userId: authorization.user.id,
      scopes: authorization.scopes,
      codeChallenge: authorization.codeChallenge,
      expiresMs: atMs + AUTH_CODE_SECONDS * 1000,
    });
    authorizations.push({
      at: atMs,
      clientId: authorization.clientId,
      redirectUri: authorization.redirectUri,
      username: authorization.user.username,
      scopes: [...authorization.scopes],
      state: authorization.state ?? null,
      codeChallenge: authorization.codeChallenge ?? null,
      code,
    });
    return code;
  }

  /** Where the browser goes when the user allows: `redirect_uri` with `code` and `state`. */
  function allow(authorization, atMs) {
    const back = new URL(authorization.redirectUri);
    back.searchParams.append('code', issueCode(authorization, atMs));
    if (authorization.state !== undefined) back.searchParams.append('state', authorization.state);
    return back.toString();
  }

  function consentPage({ app, user, scopes, clientId, redirectUri, state, codeChallenge }, parameters) {
    const hidden = [
      ['response_type', 'code'],
      ['client_id', clientId],
      ['redirect_uri', redirectUri],
      ['scope', scopes.join(' ')],
      ['login_hint', user.username],
    ];
    if (state !== undefined) hidden.push(['state', state]);
    if (codeChallenge !== undefined) hidden.push(['code_challenge', codeChallenge]);
    if (parameters.get('code_challenge_method') !== null) hidden.push(['code_challenge_method', parameters.get('code_challenge_method')]);
    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Allow Access?</title></head>
<body>
<main>
<h1>Allow Access?</h1>
<p><strong>${escapeHtml(app.name)}</strong> is asking to access your Salesforce data, as <span id="username">${escapeHtml(user.username)}</span>.</p>
<ul id="scopes">
${scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('\n')}
</ul>
<form method="post" action="/services/oauth2/authorize">
${hidden.map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`).join('\n')}
<button type="submit" name="decision" value="deny">Deny</button>
<button type="submit" name="decision" value="allow">Allow</button>
</form>
</main>
</body>
</html>
`;
  }

  function errorPage(message) {
    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Remote Access Authorization Error</title></head>
<body>
<main>
<h1>Remote Access Authorization Error</h1>
<p id="error">${escapeHtml(message)}</p>
</main>
</body>
</html>
`;
  }

  /** The token answer: the documented fields, signed with the client secret. */
  function tokenAnswer(app, clientId, userId, scopes, refreshToken, atMs) {
    const issuedAt = String(atMs);
    const id = identityUrl(userId);
    const answer = { access_token: issueAccessToken(userId, clientId, refreshToken, scopes, atMs) };
    if (refreshToken) answer.refresh_token = refreshToken;
    Object.assign(answer, {
      signature: tokenSignature(app.clientSecret, id, issuedAt),
      scope: scopes.join(' '),
      instance_url: origin,
      id,
      token_type: 'Bearer',
      issued_at: issuedAt,
    });
    return answer;
  }

  /** The client's credentials from the form or an HTTP Basic header: `{ clientId, clientSecret }`. */
  function clientCredentials(form, headers) {
    const basic = /^Basic\s+(\S+)$/i.exec(String(headers.authorization ?? ''));
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { clientId: decodeURIComponent(decoded.slice(0, colon)), clientSecret: decodeURIComponent(decoded.slice(colon + 1)) };
    }
    return { clientId: form.get('client_id') ?? '', clientSecret: form.get('client_secret') ?? undefined };
  }

  /** `POST /services/oauth2/token`: `{ status, body }`. */
  function token(form, headers, atMs) {
    const grantType = form.get('grant_type') ?? '';
    if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType)) {
      return oauthError('unsupported_grant_type', 'grant type not supported');
    }
    const { clientId, clientSecret } = clientCredentials(form, headers);
    const app = apps.get(clientId);
    if (!app) return oauthError('invalid_client_id', 'client identifier invalid');
    const publicPkce = grantType !== 'client_credentials' && app.requireSecret === false;
    if (!(publicPkce && clientSecret === undefined) && !sameText(clientSecret ?? '', app.clientSecret)) {
      return oauthError('invalid_client', 'invalid client credentials');
    }
    if (grantType === 'authorization_code') {
      const code = form.get('code') ?? '';
      const grant = codes.get(code);
      if (!grant || grant.clientId !== clientId) return oauthError('invalid_grant', 'invalid authorization code');
      if (atMs >= grant.expiresMs) return oauthError('invalid_grant', 'expired authorization code');
      if (form.get('redirect_uri') !== grant.redirectUri) return oauthError('redirect_uri_mismatch', 'redirect_uri must match configuration');
      if (grant.codeChallenge !== undefined) {
        const verifier = form.get('code_verifier');
        if (verifier === null || verifier === '') return oauthError('invalid_grant', 'code verifier required');
        if (codeChallengeOf(verifier) !== grant.codeChallenge) return oauthError('invalid_request', 'invalid code verifier');
      }
      codes.delete(code);
      let refreshToken = null;
      if (grant.scopes.some((scope) => ['refresh_token', 'offline_access', 'full'].includes(scope))) {
        refreshToken = `5Aep${base64url(randomBytes(60)).replace(/[-_]/g, 'x')}`;
        refreshTokens.set(refreshToken, { userId: grant.userId, clientId, scopes: grant.scopes, revoked: false });
      }
      return { status: 200, body: tokenAnswer(app, clientId, grant.userId, grant.scopes, refreshToken, atMs) };
    }
    if (grantType === 'refresh_token') {
      const refreshToken = form.get('refresh_token') ?? '';
      const grant = refreshTokens.get(refreshToken);
      if (!grant || grant.revoked || grant.clientId !== clientId) return oauthError('invalid_grant', 'expired access/refresh token');
      const answer = tokenAnswer(app, clientId, grant.userId, grant.scopes, null, atMs);
      accessTokens.get(answer.access_token).refreshToken = refreshToken;
      return { status: 200, body: answer };
    }
    if (!app.runAs) return oauthError('invalid_grant', 'no client credentials user enabled');
    const runAs = userNamed(app.runAs);
    return { status: 200, body: tokenAnswer(app, clientId, runAs.id, app.scopes.filter((s) => s !== 'refresh_token' && s !== 'offline_access'), null, atMs) };
  }

  /** `/services/oauth2/revoke`: an access token alone, or a refresh token with its access tokens. */
  function revoke(tokenText) {
    const access = accessTokens.get(tokenText);
    if (access && !access.revoked) {
      access.revoked = true;
      return { status: 200 };
    }
    const refresh = refreshTokens.get(tokenText);
    if (refresh && !refresh.revoked) {
      refresh.revoked = true;
      for (const held of accessTokens.values()) if (held.refreshToken === tokenText) held.revoked = true;
      return { status: 200 };
    }
    return oauthError('invalid_token', 'invalid token');
  }

  function identity(user, asserted) {
    const org15 = orgId.slice(0, 15);
    const soap = (letter) => `${origin}/services/Soap/${letter}/{version}/${org15}`;
    const rest = (path) => `${origin}/services/data/v{version}/${path}`;
    return {
      id: identityUrl(user.id),
      asserted_user: asserted,
      user_id: user.id,
      organization_id: orgId,
      username: user.username,
      nick_name: user.username.split('@')[0],
      display_name: `${user.firstName} ${user.lastName}`,
      email: user.email,
      email_verified: true,
      first_name: user.firstName,
      last_name: user.lastName,
      timezone: 'Europe/Dublin',
      photos: { picture: `${origin}/profilephoto/005/F`, thumbnail: `${origin}/profilephoto/005/T` },
      addr_street: null,
      addr_city: null,
      addr_state: null,
      addr_country: 'IE',
      addr_zip: null,
      mobile_phone: null,
      mobile_phone_verified: false,
      is_lightning_login_user: false,
      status: { created_date: null, body: null },
      urls: {
        enterprise: soap('c'),
        metadata: soap('m'),
        partner: soap('u'),
        rest: rest(''),
        sobjects: rest('sobjects/'),
        search: rest('search/'),
        query: rest('query/'),
        recent: rest('recent/'),
        tooling_soap: soap('T'),
        tooling_rest: rest('tooling/'),
        profile: `${origin}/${user.id}`,
        feeds: rest('chatter/feeds'),
        groups: rest('chatter/groups'),
        users: rest('chatter/users'),
        feed_items: rest('chatter/feed-items'),
        feed_elements: rest('chatter/feed-elements'),
        custom_domain: origin,
      },
      active: true,
      user_type: 'STANDARD',
      language: 'en_US',
      locale: 'en_IE',
      utcOffset: 0,
      last_modified_date: sfDateTime(now()),
      is_app_installed: true,
    };
  }

  // ---- Outbound Messages ----

  /** Every POST made to a listener: `{ at, url, messageId, notificationIds, status, acked, error }`. */
  const outboundDeliveries = [];
  /** Queued messages: `{ id, url, object, recordIds, fields, actionId, notificationIds, createdMs, nextAttemptMs, state, attempts }`. */
  const outbox = [];
  let outboxCounter = 0;

  /**
   * The SOAP message Salesforce POSTs for `object` records `ids` (at most 100) with `fields`:
   * `{ headers, body, notificationIds }`. `sessionId`: true sends a new session of the default
   * user, a string sends that, null (the default) sends none (xsi:nil).
   */
  function outboundMessage({ object, ids, fields = [], actionId, notificationIds, sessionId = null }) {
    if (!OBJECTS[object]) throw new Error(`salesforce fake: no object ${object}`);
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > OUTBOUND_MAX_NOTIFICATIONS) {
      throw new Error(`salesforce fake: an outbound message carries 1 to ${OUTBOUND_MAX_NOTIFICATIONS} notifications, got ${ids?.length}`);
    }
    const names = fields.map((name) => {
      const found = fieldNamed(object, name);
      if (!found) throw new Error(`salesforce fake: ${object} has no field ${name}`);
      return found[0];
    });
    const chosen = [...new Set(names.filter((name) => name !== 'Id'))].sort();
    const rows = ids.map((id) => {
      const record = records.get(normalizeId(id, KEY_PREFIXES[object]) ?? '');
      if (!record || record.deleted) throw new Error(`salesforce fake: no live ${object} ${id}`);
      return record;
    });
    const notes = notificationIds ?? rows.map(() => newId('04l'));
    let session = sessionId;
    if (session === true) session = issueAccessToken(defaultUserId, null, null, ['api'], now());
    const org15 = orgId.slice(0, 15);
    const notifications = rows
      .map((record, index) => {
        const values = chosen
          .filter((name) => record.fields[name] !== undefined && record.fields[name] !== null)
          .map((name) => `     <sf:${name}>${soapValue(record.fields[name])}</sf:${name}>`);
        return `   <Notification>
    <Id>${notes[index]}</Id>
    <sObject xsi:type="sf:${object}" xmlns:sf="${SOBJECT_NAMESPACE}">
     <sf:Id>${record.id}</sf:Id>
${values.map((line) => `${line}\n`).join('')}    </sObject>
   </Notification>
`;
      })
      .join('');
    const sessionElement = session ? `<SessionId>${escapeXml(session)}</SessionId>` : '<SessionId xsi:nil="true"/>';
    const body = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="${SOAP_ENVELOPE_NAMESPACE}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="${OUTBOUND_NAMESPACE}">
   <OrganizationId>${orgId}</OrganizationId>
   <ActionId>${actionId ?? outboundActionId}</ActionId>
   ${sessionElement}
   <EnterpriseUrl>${origin}/services/Soap/c/${API_VERSION}/${org15}</EnterpriseUrl>
   <PartnerUrl>${origin}/services/Soap/u/${API_VERSION}/${org15}</PartnerUrl>
${notifications}  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
`;
    return { headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '""' }, body, notificationIds: [...notes] };
  }
  const outboundActionId = newId('04k');

  /** POSTs a built message to `url`: `{ status, acked, body, error }` (status null when no answer came). */
  async function sendOutbound(url, message, { timeoutMs = 10_000, messageId = null } = {}) {
    let status = null;
    let body = '';
    let error = null;
    try {
      const response = await fetch(url, { method: 'POST', headers: message.headers, body: message.body, signal: AbortSignal.timeout(timeoutMs) });
      status = response.status;
      body = await response.text();
    } catch (caught) {
      error = caught.cause?.code ?? caught.name ?? String(caught);
    }
    const acked = status === 200 && isAcknowledgement(body);
    outboundDeliveries.push({ at: now(), url, messageId, notificationIds: message.notificationIds, status, acked, error });
    return { status, acked, body, error };
  }

  /** Queues a message for `url`, as a workflow rule firing does; its id. Nothing is sent until a test delivers. */
  function queueOutbound(url, { object, ids, fields = [], actionId, sessionId = null }) {
    const built = outboundMessage({ object, ids, fields, actionId, sessionId });
    outboxCounter += 1;
    const entry = {
      id: `om-${outboxCounter}`,
      url,
      object,
      recordIds: ids.map((id) => normalizeId(id, KEY_PREFIXES[object])),
      fields: [...fields],
      actionId: actionId ?? outboundActionId,
      sessionId,
      notificationIds: built.notificationIds,
      createdMs: now(),
      nextAttemptMs: now(),
      state: 'pending',
      attempts: [],
    };
    outbox.push(entry);
    return entry.id;
  }

  function entryNamed(id) {
    const entry = outbox.find((e) => e.id === id);
    if (!entry) throw new Error(`salesforce fake: no queued outbound message ${id}`);
    return entry;
  }

  /** The wait before the next try after `failures` failed ones: 30 s doubling, at most two hours. */
  function retryDelay(failures) {
    return Math.min(OUTBOUND_RETRY_FIRST_MS * 2 ** Math.max(0, failures - 1), OUTBOUND_RETRY_MAX_MS);
  }

  /** One try of a queued message, with the records' data as it is now. */
  async function attempt(entry, options) {
    const atMs = now();
    const liveIds = entry.recordIds.filter((id) => records.get(id) && !records.get(id).deleted);
    const keep = entry.recordIds.map((id) => liveIds.includes(id));
    if (liveIds.length === 0) {
      entry.state = 'dropped';
      return { status: null, acked: false, error: 'records deleted' };
    }
    const message = outboundMessage({
      object: entry.object,
      ids: liveIds,
      fields: entry.fields,
      actionId: entry.actionId,
      notificationIds: entry.notificationIds.filter((_, index) => keep[index]),
      sessionId: entry.sessionId,
    });
    const result = await sendOutbound(entry.url, message, { ...options, messageId: entry.id });
    entry.attempts.push({ at: atMs, status: result.status, acked: result.acked, error: result.error });
    if (result.acked) {
      entry.state = 'delivered';
      return result;
    }
    if (entry.state === 'delivered') return result;
    const failures = entry.attempts.filter((a) => !a.acked).length;
    entry.nextAttemptMs = atMs + retryDelay(failures);
    if (entry.nextAttemptMs - entry.createdMs >= OUTBOUND_KEEP_MS) entry.state = 'dropped';
    return result;
  }

  /** Tries every pending message that is due (dropping those 24 hours old); the results by message id. */
  async function deliverDue(options = {}) {
    const atMs = now();
    const results = {};
    for (const entry of outbox) {
      if (entry.state !== 'pending') continue;
      if (atMs - entry.createdMs >= OUTBOUND_KEEP_MS) {
        entry.state = 'dropped';
        continue;
      }
      if (entry.nextAttemptMs <= atMs) results[entry.id] = await attempt(entry, options);
    }
    return results;
  }

  // ---- merge ----

  /** Salesforce's merge: the master stays (with `fields` applied), the others are deleted with MasterRecordId set. */
  function merge(masterId, loserIds, fields = {}) {
    const master = records.get(normalizeId(masterId) ?? '');
    if (!master || master.deleted) throw new Error(`salesforce fake: no live master record ${masterId}`);
    if (!['Contact', 'Lead', 'Case'].includes(master.object)) throw new Error(`salesforce fake: ${master.object} records cannot be merged`);
    const losers = loserIds.map((id) => {
      const loser = records.get(normalizeId(id) ?? '');
      if (!loser || loser.deleted || loser.object !== master.object || loser.id === master.id) {
        throw new Error(`salesforce fake: ${id} is no other live ${master.object}`);
      }
      return loser;
    });
    if (losers.length === 0 || losers.length + 1 > MERGE_MAX_RECORDS) throw new Error(`salesforce fake: a merge takes 2 to ${MERGE_MAX_RECORDS} records`);
    const atMs = now();
    const values = checkFields(master.object, fields, master);
    modify(master, values, defaultUserId, atMs);
    for (const loser of losers) {
      for (const record of records.values()) {
        if (record.deleted) continue;
        for (const field of ['WhoId', 'ContactId']) {
          if (record.fields[field] === loser.id) modify(record, { [field]: master.id }, defaultUserId, atMs);
        }
      }
      remove(loser, atMs, master.id);
    }
    return view(master);
  }

  // ---- HTTP ----

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent && !res.destroyed) {
        sendJson(res, 500, [errorItem('UNKNOWN_EXCEPTION', `salesforce fake: ${error.message}`)]);
      }
    });
  });

  async function handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const atMs = now();
    const textBody = raw.toString('utf8');
    let recorded;
    if (raw.length > 0) {
      try {
        recorded = JSON.parse(textBody);
      } catch {
        recorded = textBody;
      }
    }
    /** @type {Call} */
    const call = {
      at: atMs,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: recorded,
      status: null,
    };
    requests.push(call);

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
    if (latencyMs > 0) await sleep(latencyMs);

    const answer = (status, body, headers = {}) => {
      call.status = status;
      if (body === undefined) {
        if (!res.destroyed) {
          res.writeHead(status, headers);
          res.end();
        }
      } else sendJson(res, status, body, headers);
    };
    const answerHtml = (status, html) => {
      call.status = status;
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
      res.end(html);
    };

    const failure = takeFailure(call);
    if (failure) {
      const headers = { ...(failure.headers ?? {}) };
      if (failure.retryAfter !== undefined) headers['Retry-After'] = String(failure.retryAfter);
      return answer(failure.status, failure.body === undefined ? faultBody(failure.status) : failure.body, headers);
    }

    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = call.method;
    const form = () => new URLSearchParams(String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') ? textBody : '');

    if (path.startsWith('/services/oauth2/')) {
      const endpoint = path.slice('/services/oauth2/'.length);
      if (endpoint === 'authorize' && (method === 'GET' || method === 'POST')) {
        const parameters = method === 'GET' ? url.searchParams : form();
        const asked = readAuthorization(parameters);
        if (asked.page) return answerHtml(400, errorPage(asked.page));
        if (asked.redirect) return answer(302, undefined, { location: asked.redirect });
        if (method === 'GET') return answerHtml(200, consentPage(asked.ok, parameters));
        if (parameters.get('decision') !== 'allow') {
          const back = new URL(asked.ok.redirectUri);
          back.searchParams.append('error', 'access_denied');
          back.searchParams.append('error_description', 'end-user denied authorization');
          if (asked.ok.state !== undefined) back.searchParams.append('state', asked.ok.state);
          return answer(302, undefined, { location: back.toString() });
        }
        return answer(302, undefined, { location: allow(asked.ok, atMs) });
      }
      if (endpoint === 'token' && method === 'POST') {
        const result = token(form(), req.headers, atMs);
        return answer(result.status, result.body, { 'Cache-Control': 'no-cache,must-revalidate,max-age=0,no-store,private' });
      }
      if (endpoint === 'revoke' && (method === 'POST' || method === 'GET')) {
        const tokenText = (method === 'GET' ? url.searchParams.get('token') : form().get('token')) ?? '';
        const result = revoke(tokenText);
        return answer(result.status, result.body);
      }
      if (endpoint === 'userinfo' && method === 'GET') {
        // The OpenID Connect UserInfo endpoint: the token's user and org; a token that is not a
        // live one answers as the identity URL does (403 Bad_OAuth_Token).
        const bearer = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
        const held = bearer ? accessTokens.get(bearer) : undefined;
        if (!held || held.revoked || atMs >= held.expiresMs) return answerText(res, call, 403, 'Bad_OAuth_Token');
        const user = users.get(held.userId);
        return answer(200, {
          sub: identityUrl(user.id), user_id: user.id, organization_id: orgId, preferred_username: user.username,
          nickname: user.username.split('@')[0], name: `${user.firstName} ${user.lastName}`, email: user.email,
          email_verified: true, given_name: user.firstName, family_name: user.lastName, zoneinfo: 'Europe/Dublin',
        });
      }
      if (['authorize', 'token', 'revoke', 'userinfo'].includes(endpoint)) return answer(405, [errorItem('METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed.`)]);
      return answer(404, [errorItem('NOT_FOUND', NOT_FOUND_MESSAGE)]);
    }

    const identityPath = /^\/id\/([0-9A-Za-z]{15,18})\/([0-9A-Za-z]{15,18})$/.exec(path);
    if (identityPath) {
      const bearer = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1] ?? url.searchParams.get('oauth_token') ?? url.searchParams.get('access_token');
      const held = bearer ? accessTokens.get(bearer) : undefined;
      if (!held || held.revoked || atMs >= held.expiresMs) return answerText(res, call, 403, 'Bad_OAuth_Token');
      const user = users.get(normalizeId(identityPath[2], KEY_PREFIXES.User) ?? '');
      if (normalizeId(identityPath[1], KEY_PREFIXES.Organization) !== orgId || !user) return answerText(res, call, 404, 'Bad_Id');
      return answer(200, identity(user, user.id === held.userId));
    }

    if (path === '/services/data') {
      if (method !== 'GET') return answer(405, [errorItem('METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are GET`)]);
      return answer(200, versions());
    }
    if (!(path === DATA_PATH || path.startsWith(`${DATA_PATH}/`))) return answer(404, [errorItem('NOT_FOUND', NOT_FOUND_MESSAGE)]);

    let caller;
    try {
      caller = authenticate(req.headers, atMs);
      spend();
    } catch (error) {
      if (!(error instanceof SfError)) throw error;
      return answer(error.status, error.body(), error.status === 401 ? {} : limitInfo());
    }
    const segments = path === DATA_PATH ? [] : path.slice(DATA_PATH.length + 1).split('/').map(decodeSegment);
    const found = route(segments);
    if (!found) return answer(404, [errorItem('NOT_FOUND', NOT_FOUND_MESSAGE)], limitInfo());
    if (!found.methods.includes(method)) return answer(405, methodNotAllowed(method, found.methods).body(), limitInfo());

    let body;
    if (takesJson(found, method)) {
      const type = String(req.headers['content-type'] ?? '').toLowerCase();
      if (raw.length > 0 && !type.startsWith('application/json')) {
        return answer(415, [errorItem('UNSUPPORTED_MEDIA_TYPE', `MediaType of '${type || 'none'}' is not supported by this resource`)], limitInfo());
      }
      try {
        body = JSON.parse(textBody);
      } catch (error) {
        const message = raw.length === 0 ? 'No content to map due to end-of-input' : `Unexpected character: ${error.message}`;
        return answer(400, [errorItem('JSON_PARSER_ERROR', message)], limitInfo());
      }
    }

    const ctx = { user: caller.user, atMs, allowSave: /allowSave\s*=\s*true/i.test(String(req.headers['sforce-duplicate-rule-header'] ?? '')) };
    try {
      const result = serve(ctx, method, found, url.searchParams, body, req.headers);
      return answer(result.status, result.body, { ...(result.headers ?? {}), ...limitInfo() });
    } catch (error) {
      if (error instanceof SfError) return answer(error.status, error.body(), { ...(error.headers ?? {}), ...limitInfo() });
      throw error;
    }
  }

  function answerText(res, call, status, textValue) {
    call.status = status;
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(textValue) });
    res.end(textValue);
  }

  function faultBody(status) {
    if (status === 503) return [errorItem('SERVER_UNAVAILABLE', 'Server is unavailable to handle the request. Please retry later.')];
    if (status >= 500) return [errorItem('UNKNOWN_EXCEPTION', 'An unexpected error occurred. Please include this ErrorId if you contact support: 1406437288-51216 (-1021631226)')];
    if (status === 401) return [errorItem('INVALID_SESSION_ID', SESSION_EXPIRED)];
    if (status === 403) return [errorItem('REQUEST_LIMIT_EXCEEDED', LIMIT_EXCEEDED_MESSAGE)];
    if (status === 404) return [errorItem('NOT_FOUND', NOT_FOUND_MESSAGE)];
    return [errorItem('UNKNOWN_EXCEPTION', `Injected failure ${status}`)];
  }

  function takeFailure(call) {
    const index = failures.findIndex((step) => !step.match || step.match(call));
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

  const objectOf = (given) => {
    const object = OBJECT_NAMES.find((name) => name.toLowerCase() === String(given).toLowerCase());
    if (!object) throw new Error(`salesforce fake: no object ${given}`);
    return object;
  };
  /** Records of `object` as reads give them (deleted ones too with `{ deleted: true }`). */
  const recordsOf = (object, { deleted = false } = {}) =>
    [...records.values()].filter((r) => r.object === object && (deleted || !r.deleted)).map((r) => view(r));
  /** A record Salesforce already has, checked as a create checks it (throws the refusal otherwise). */
  const seed = (object, fields = {}, { as } = {}) => {
    const name = objectOf(object);
    const user = as ? userNamed(as) : users.get(defaultUserId);
    const values = checkFields(name, fields, null);
    checkUnique(name, values, undefined);
    return view(insert(name, values, user.id, now()));
  };

  return {
    /** The org's My Domain: the instance URL, the login URL and the identity service's host. */
    url: origin,
    instanceUrl: origin,
    port,
    orgId,
    apiVersion: API_VERSION,
    /** The REST API's base: `${url}/services/data/v66.0`. */
    dataUrl: `${origin}${DATA_PATH}`,
    authorizeUrl: `${origin}/services/oauth2/authorize`,
    tokenUrl: `${origin}/services/oauth2/token`,
    revokeUrl: `${origin}/services/oauth2/revoke`,
    /** Every request received, in order: `{ at, method, path, query, headers, body, status }`
     * (`status` stays null while a request is unanswered, and for ever when it was hung). */
    requests,
    /** The same array as `requests`. */
    calls: requests,
    /** How many requests had `method` (or any, when null) and a path starting with `pathPrefix`. */
    countCalls(method, pathPrefix = '') {
      return requests.filter((r) => (method === null || method === undefined || r.method === method) && r.path.startsWith(pathPrefix)).length;
    },
    /** The Authorization headers the REST API was called with, in order. */
    get authorizationsUsed() {
      return requests.filter((r) => r.path.startsWith(DATA_PATH)).map((r) => r.headers.authorization ?? null);
    },
    /** Consents given (on the page or with `authorize()`): `{ at, clientId, redirectUri, username, scopes, state, codeChallenge, code }`. */
    authorizations,
    /** The org's users: `{ id, username, email, firstName, lastName, access }`. */
    get users() {
      return structuredClone([...users.values()]);
    },
    defaultUserId,
    /** The id of the user named `username`. */
    userId(username) {
      return userNamed(username).id;
    },
    /** Another user of the org; their id. */
    addUser,
    /** What `user` (username or id) may do with `object`: 'edit', 'read' or 'none'. */
    setObjectAccess(user, object, level) {
      if (!ACCESS_LEVELS.includes(level)) throw new Error(`salesforce fake: access ${level} is not one of ${ACCESS_LEVELS.join(', ')}`);
      userNamed(user).access[objectOf(object)] = level;
    },
    /** A custom field of `object`: `{ name, type?, externalId?, unique?, length? }`. */
    addCustomField,
    /** Switches the org's duplicate rule on Email for Contact or Lead on or off. */
    setDuplicateRule(object, on = true) {
      if (on) duplicateRules.add(objectOf(object));
      else duplicateRules.delete(objectOf(object));
    },
    /** Live records of each object as reads give them; `records(object, { deleted: true })` with deleted ones. */
    get contacts() {
      return recordsOf('Contact');
    },
    get leads() {
      return recordsOf('Lead');
    },
    get tasks() {
      return recordsOf('Task');
    },
    get cases() {
      return recordsOf('Case');
    },
    records(object, filter) {
      return recordsOf(objectOf(object), filter);
    },
    /** One record, deleted or not (then `IsDeleted: true`), as a read gives it; null when never made. */
    record(id) {
      const found = records.get(normalizeId(id) ?? '');
      return found ? view(found) : null;
    },
    /** How many times a record was written (its create included). */
    writesOf(id) {
      return records.get(normalizeId(id) ?? '')?.writes ?? 0;
    },
    /** A record Salesforce already has: `seed('Contact', { LastName, Email })`; the record. */
    seed,
    seedContact: (fields, opts) => seed('Contact', fields, opts),
    seedLead: (fields, opts) => seed('Lead', fields, opts),
    seedTask: (fields, opts) => seed('Task', fields, opts),
    seedCase: (fields, opts) => seed('Case', fields, opts),
    /** An agent changes a record in Salesforce. */
    editRecord(id, fields) {
      const found = records.get(normalizeId(id) ?? '');
      if (!found || found.deleted) throw new Error(`salesforce fake: no live record ${id}`);
      modify(found, checkFields(found.object, fields, found), defaultUserId, now());
      return view(found);
    },
    /** An agent deletes a record in Salesforce (to the recycle bin: reads answer ENTITY_IS_DELETED). */
    deleteRecord(id) {
      const found = records.get(normalizeId(id) ?? '');
      if (!found || found.deleted) throw new Error(`salesforce fake: no live record ${id}`);
      remove(found, now());
    },
    /** An agent merges records: `merge(masterId, [loserId, ...], fieldsForMaster?)`; the master as read. */
    merge,
    /** Calls spent today and the allowance (`Sforce-Limit-Info`). */
    get apiUsage() {
      return { used: apiUsed, max: dailyApiRequests };
    },
    /** Sets the org's daily allowance of API calls. */
    setDailyLimit(max) {
      if (!(Number.isInteger(max) && max >= 0)) throw new Error(`salesforce fake: a daily limit is a non-negative integer, got ${max}`);
      dailyApiRequests = max;
    },
    /** Sets the calls spent today (a new day: 0). */
    setApiUsage(used) {
      apiUsed = used;
    },
    /** Records a query batch holds from now on, unless a request asks for fewer. */
    setQueryBatchSize(size) {
      queryBatchSize = size;
    },
    /** A session of `username` (the default user unless given) without OAuth; the access token. */
    issueToken(username) {
      const user = username ? userNamed(username) : users.get(defaultUserId);
      return issueAccessToken(user.id, null, null, ['api'], now());
    },
    /** Every access token issued so far expires now (refresh tokens stay good). */
    expireAccessTokensNow() {
      const atMs = now();
      for (const held of accessTokens.values()) held.expiresMs = Math.min(held.expiresMs, atMs);
    },
    /** How long access tokens issued from now on last, in seconds (the org's session timeout). */
    setSessionSeconds(seconds) {
      sessionSeconds = seconds;
    },
    /** The refresh token an access token was issued with (null when none). */
    refreshTokenOf(accessToken) {
      return accessTokens.get(accessToken)?.refreshToken ?? null;
    },
    /** A connected app: `registerApp(clientId, { clientSecret, redirectUris, scopes, name, runAs, requireSecret })`. */
    registerApp,
    /** The code the consent gives for `clientId` without the page; `{ username, scopes, codeChallenge, state }`. */
    authorize(clientId, redirectUri, { username, scopes, codeChallenge, state } = {}) {
      const app = apps.get(clientId);
      if (!app) throw new Error(`salesforce fake: no app with client id ${clientId}`);
      if (!app.redirectUris.includes(redirectUri)) throw new Error(`salesforce fake: ${redirectUri} is not a callback URL of app ${clientId}`);
      const user = username ? userNamed(username) : users.get(defaultUserId);
      return issueCode({ clientId, app, redirectUri, state, user, scopes: scopes ?? [...app.scopes], codeChallenge }, now());
    },
    /** The user presses "Allow" on `authorizeUrl` (this server's, with its query): the URL the browser is sent to. */
    consent(authorizeUrl) {
      const asked = readAuthorization(new URL(authorizeUrl).searchParams);
      if (asked.page) throw new Error(`salesforce fake: the authorization page shows ${asked.page}`);
      return asked.redirect ?? allow(asked.ok, now());
    },
    /**
     * Queues an injected failure, answered before anything else. Either `fail({ status, body?,
     * headers?, retryAfter?, times = 1, match? })` or `fail(times, status | { status, body?, headers? },
     * match?)`. Without `body`, Salesforce's error array for the status (503 SERVER_UNAVAILABLE, other
     * 5xx UNKNOWN_EXCEPTION). `match(call)` picks the calls (all without it); each call takes one step.
     */
    fail(first, reply, match) {
      let step;
      if (typeof first === 'number') {
        const given = typeof reply === 'number' ? { status: reply } : reply ?? {};
        step = { ...given, times: first, match };
      } else step = first ?? {};
      const { status, body, headers, retryAfter, times = 1 } = step;
      if (!(Number.isInteger(status) && status >= 100 && status <= 599)) throw new Error(`salesforce fake: cannot inject status ${status}`);
      failures.push({ status, body, headers, retryAfter, left: times, match: step.match });
    },
    /** The next `times` requests get no answer: the socket stays open `hangMs`, then is dropped. */
    hang(times = 1) {
      hangsLeft += times;
    },
    /** Every answer from now on comes `ms` later. */
    setLatency(ms) {
      latencyMs = ms;
    },
    /** Stops listening (connections are refused) and drops open connections; state is kept. */
    async down() {
      if (downTimer) clearTimeout(downTimer);
      downTimer = null;
      await stopListening();
    },
    /** Listens again, on the same port. */
    async up() {
      if (downTimer) clearTimeout(downTimer);
      downTimer = null;
      if (!listening) await listen(port);
    },
    /** Down now and back up by itself after `seconds`; resolves once down. */
    async downFor(seconds) {
      await stopListening();
      if (downTimer) clearTimeout(downTimer);
      downTimer = setTimeout(() => {
        downTimer = null;
        listen(port).catch(() => {});
      }, seconds * 1000);
    },
    /** The SOAP message Salesforce POSTs: `outboundMessage({ object, ids, fields, actionId?, sessionId? })` → `{ headers, body, notificationIds }`. */
    outboundMessage,
    /** POSTs a built message to `url`: `{ status, acked, body, error }`. */
    sendOutbound,
    /** Queues a message for `url` (a workflow rule fired): `queueOutbound(url, { object, ids, fields, sessionId? })`; its id. */
    queueOutbound,
    /** Tries every queued message that is due, as Salesforce's retries would; `{ [id]: result }`. */
    deliverDue,
    /** Tries a queued message now, whatever its schedule or state (a resend: same notification ids). */
    resendNow(id, options) {
      return attempt(entryNamed(id), options);
    },
    /** Sends a queued message twice in a row, as Salesforce may. */
    async sendTwice(id, options) {
      const entry = entryNamed(id);
      return [await attempt(entry, options), await attempt(entry, options)];
    },
    /** Sends the queued messages `ids` in the order given (e.g. newest first), whatever their schedule. */
    async deliverInOrder(ids, options) {
      const results = {};
      for (const id of ids) results[id] = await attempt(entryNamed(id), options);
      return results;
    },
    /** The queued messages with their state ('pending', 'delivered', 'dropped'), attempts and next try. */
    get outbox() {
      return structuredClone(outbox);
    },
    /** Every POST made to a listener, in order. */
    outboundDeliveries,
    async close() {
      for (const timer of hangTimers) clearTimeout(timer);
      hangTimers.clear();
      if (downTimer) clearTimeout(downTimer);
      downTimer = null;
      await stopListening();
    },
  };
}

function sendJson(res, status, body, headers = {}) {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
