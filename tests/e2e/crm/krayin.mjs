// Krayin CRM's REST API (the krayin/rest-api package, v2.1, on Laravel 10 with Sanctum) as a local
// server on 127.0.0.1 and a random port, for the end-to-end tests of our Krayin connector. It speaks
// the paths our client calls, all under `/api/v1`:
//
//   GET   /get                                      the token's user
//   GET   /contacts/persons                         (paginated)   POST /contacts/persons
//   GET   /contacts/persons/search?search=&searchFields=&searchJoin=&limit=
//   GET, PUT, DELETE /contacts/persons/{id}   (DELETE: the person's leads with them)
//   GET   /contacts/organizations?name=...          (paginated, exact filters)   POST ...
//   GET, PUT /contacts/organizations/{id}
//   GET   /leads                                    (paginated)   POST /leads
//   GET, PUT /leads/{id}      PUT /leads/stage/edit/{id}
//   GET   /settings/pipelines[/{id}]  /settings/sources[/{id}]  /settings/types[/{id}]
//   GET   /activities                               (paginated)   POST /activities
//   GET, PUT /activities/{id}
//
// with Krayin's conventions, read from its sources: `Authorization: Bearer <Sanctum token>`; JSON
// answers only when the request "expects JSON" (an `Accept` naming JSON, or `X-Requested-With:
// XMLHttpRequest` with no or a `*/*` Accept): otherwise a 401 or a 422 is a 302 redirect, as
// Laravel does for browsers. A created or updated record is answered 200 `{data, message}`; a
// record `{data}`; a list `{data, links, meta}` (Laravel's paginator: 10 a page, newest first, `?page=
// &limit=`, `?pagination=0` for all); a person search `{data}` without paging. Errors: 422 `{message,
// errors: {"emails.0.value": ["..."]}}` with Laravel's and Krayin's wording, 404/401 `{message}`.
//
// Validation follows Krayin's attribute forms, including their quirks: a rule applies only to a key
// the body carries (a missing `name` is not "required"); emails and contact numbers are unique across
// persons (compared exactly, as JSON values); `lead_pipeline_stage_id` must be a key of a lead body
// (without it Krayin fails with a 500; null is refused as required; 0 means the default pipeline's
// first stage); a person body must carry `contact_numbers` with at least one entry whose value is not
// null (Krayin fails with a 500 otherwise; `""` passes and is never checked for uniqueness);
// an unknown organization, source, type or user id is a database error, a 500.
//
// Limits, as Laravel's `throttle:api` applies them: 60 requests per minute per user by default,
// the minute starting at the user's first request; every authenticated answer carries
// `X-RateLimit-Limit` and `X-RateLimit-Remaining`; past the budget a 429 `{"message": "Too Many
// Attempts."}` with `Retry-After`, `X-RateLimit-Reset` (Unix seconds) and a remaining of 0.
// Unauthenticated requests are refused before they count.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

export const API_PREFIX = '/api/v1';
export const DEFAULT_PER_MINUTE = 60;
export const DEFAULT_PAGE_SIZE = 10;
/** How long a hung request keeps its socket before the server drops it. */
export const HANG_MS = 60_000;

/** The activity types Krayin's screens create; the API itself only requires `type` to be present. */
export const ACTIVITY_TYPES = Object.freeze(['call', 'meeting', 'lunch', 'note', 'file']);
/** Types Krayin shows in a timeline but makes itself: `email` for mail, `system` for change logs. */
export const TIMELINE_TYPES = Object.freeze(['email', 'system']);

export const MESSAGES = Object.freeze({
  unauthenticated: 'You are not authenticated. Please log in to continue.',
  notFound: 'The requested resource could not be found.',
  forbidden: 'You do not have permission to access this resource.',
  serverError: 'An unexpected error occurred on the server. Please try again later.',
  tooManyAttempts: 'Too Many Attempts.',
  taken: 'The value has already been taken.',
  decimal: 'The field must be a decimal number.',
});

/** The pipelines Krayin's installer seeds (ids 1 to 6), and a second one of ours. */
export const DEFAULT_PIPELINES = Object.freeze([
  {
    id: 1,
    name: 'Default Pipeline',
    is_default: 1,
    rotten_days: 30,
    stages: [
      { id: 1, code: 'new', name: 'New', probability: 100, sort_order: 1 },
      { id: 2, code: 'follow-up', name: 'Follow Up', probability: 100, sort_order: 2 },
      { id: 3, code: 'prospect', name: 'Prospect', probability: 100, sort_order: 3 },
      { id: 4, code: 'negotiation', name: 'Negotiation', probability: 100, sort_order: 4 },
      { id: 5, code: 'won', name: 'Won', probability: 100, sort_order: 5 },
      { id: 6, code: 'lost', name: 'Lost', probability: 0, sort_order: 6 },
    ],
  },
  {
    id: 2,
    name: 'Partnerships',
    is_default: 0,
    rotten_days: 60,
    stages: [
      { id: 7, code: 'new', name: 'New', probability: 100, sort_order: 1 },
      { id: 8, code: 'qualified', name: 'Qualified', probability: 100, sort_order: 2 },
      { id: 9, code: 'won', name: 'Won', probability: 100, sort_order: 3 },
      { id: 10, code: 'lost', name: 'Lost', probability: 0, sort_order: 4 },
    ],
  },
]);
export const DEFAULT_SOURCES = Object.freeze([
  { id: 1, name: 'Email' },
  { id: 2, name: 'Web' },
  { id: 3, name: 'Web Form' },
  { id: 4, name: 'Phone' },
  { id: 5, name: 'Direct' },
]);
export const DEFAULT_TYPES = Object.freeze([
  { id: 1, name: 'New Business' },
  { id: 2, name: 'Existing Business' },
]);

const REASONS = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

/** An answer `{status, body, headers?}` thrown from a handler. */
class Answer extends Error {
  constructor(status, body, headers = {}) {
    super(body?.message ?? String(status));
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

const notFound = () => new Answer(404, { message: MESSAGES.notFound });
const serverError = (detail) => new Answer(500, { message: MESSAGES.serverError, detail });

/** Laravel's 422: the first message, "(and N more errors)", and every field's messages. */
export function validationBody(errors) {
  const messages = Object.values(errors).flat();
  const more = messages.length - 1;
  const message = more > 0 ? `${messages[0]} (and ${more} more error${more === 1 ? '' : 's'})` : messages[0];
  return { message, errors };
}

/** Collects errors field by field, in the order the rules are checked. */
class Errors {
  constructor() {
    this.byField = {};
  }
  add(field, message) {
    (this.byField[field] ??= []).push(message);
  }
  throwIfAny() {
    if (Object.keys(this.byField).length > 0) throw new Answer(422, validationBody(this.byField));
  }
}

/** Laravel names a field in a message by its key with underscores as spaces. */
const label = (field) => field.replaceAll('_', ' ');
const isBlank = (value) =>
  value === undefined || value === null || (typeof value === 'string' && value.trim() === '') || (Array.isArray(value) && value.length === 0) || (isPlainObject(value) && Object.keys(value).length === 0);
const isEmail = (value) => typeof value === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
const isDecimal = (value) => /^\d*(\.\d{1,4})?$/.test(String(value));
const isDateTime = (value) => typeof value === 'string' && /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) && !Number.isNaN(Date.parse(value.replace(' ', 'T')));

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Laravel serialises dates as ISO 8601 with microseconds in UTC. */
function laravelDate(date) {
  if (date === null || date === undefined) return null;
  return new Date(date).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A plain token like Sanctum 3 makes: `{id}|{40 characters}`. */
export function sanctumToken(id = 1) {
  return `${id}|${randomBytes(30).toString('base64url').slice(0, 40)}`;
}

/**
 * Starts the server. Options:
 *   tokens: { [token]: { user: { id?, name, email, view_permission?: 'global'|'individual' } } }
 *   rateLimit: undefined (60 a minute) | null (off) | { perMinute, windowMs? }
 *   pipelines, sources, types: to replace the seeded ones (same shapes as DEFAULT_*)
 *   hangMs: how long `hang()` keeps a socket (default 60 s)
 */
export async function startKrayin(options = {}) {
  const requests = [];
  const throttles = [];
  const failures = [];
  const hangTimers = new Set();
  let hangsLeft = 0;
  const hangMs = options.hangMs ?? HANG_MS;
  let rateLimit = normalizeLimit(options.rateLimit === undefined ? { perMinute: DEFAULT_PER_MINUTE } : options.rateLimit);
  const windows = new Map();

  const seededAt = new Date();
  const users = [];
  const tokens = new Map();
  let nextUserId = 1;
  for (const [token, config] of Object.entries(options.tokens ?? {})) {
    const given = config.user ?? {};
    let user = users.find((u) => (given.id !== undefined ? u.id === given.id : u.email === given.email));
    if (!user) {
      user = {
        id: given.id ?? nextUserId,
        name: given.name ?? 'Krayin Admin',
        email: given.email ?? `admin${nextUserId}@krayin.test`,
        status: 1,
        view_permission: given.view_permission ?? 'global',
        role: { id: 1, name: 'Administrator', description: 'Administrator role', permission_type: 'all', permissions: null, created_at: laravelDate(seededAt), updated_at: laravelDate(seededAt) },
        image: null,
        image_url: null,
        created_at: seededAt,
        updated_at: seededAt,
      };
      users.push(user);
      nextUserId = Math.max(nextUserId, user.id) + 1;
    }
    tokens.set(token, user);
  }

  const pipelines = structuredClone(options.pipelines ?? DEFAULT_PIPELINES).map((p) => ({
    ...p,
    created_at: seededAt,
    updated_at: seededAt,
    stages: p.stages.map((s) => ({ lead_value: 0, is_user_defined: 0, ...s, lead_pipeline_id: p.id, created_at: seededAt, updated_at: seededAt })),
  }));
  const stages = pipelines.flatMap((p) => p.stages);
  const sources = structuredClone(options.sources ?? DEFAULT_SOURCES).map((s) => ({ ...s, created_at: seededAt, updated_at: seededAt }));
  const types = structuredClone(options.types ?? DEFAULT_TYPES).map((t) => ({ ...t, created_at: seededAt, updated_at: seededAt }));

  const persons = [];
  // The ids of the persons deleted, in order.
  const deletedPersons = [];
  const organizations = [];
  const leads = [];
  const activities = [];
  const ids = { person: 0, organization: 0, lead: 0, activity: 0 };

  const defaultPipeline = () => pipelines.find((p) => p.is_default) ?? pipelines[0];
  const stageById = (id) => stages.find((s) => s.id === Number(id));
  const findIn = (list, id) => list.find((r) => r.id === Number(id));
  const must = (record) => {
    if (!record) throw notFound();
    return record;
  };
  const foreignKey = (list, id, column) => {
    if (id === undefined || id === null || id === '') return null;
    if (!findIn(list, id)) throw serverError(`SQLSTATE[23000]: Integrity constraint violation: foreign key ${column}`);
    return Number(id);
  };

  // ---- resources as Krayin's API answers them ----

  const userOut = (u) =>
    u && { id: u.id, name: u.name, email: u.email, status: u.status, view_permission: u.view_permission, role: u.role, created_at: laravelDate(u.created_at), updated_at: laravelDate(u.updated_at), image: u.image, image_url: u.image_url };
  const organizationOut = (o) => o && { id: o.id, name: o.name, address: o.address, created_at: laravelDate(o.created_at), updated_at: laravelDate(o.updated_at) };
  function personOut(p) {
    if (!p) return null;
    const out = { id: p.id, name: p.name, emails: p.emails, contact_numbers: p.contact_numbers };
    const organization = findIn(organizations, p.organization_id);
    if (organization) out.organization = organizationOut(organization);
    out.job_title = p.job_title;
    const owner = findIn(users, p.user_id);
    if (owner) out.sales_owner = userOut(owner);
    out.created_at = laravelDate(p.created_at);
    out.updated_at = laravelDate(p.updated_at);
    return out;
  }
  const stageOut = (s) => ({
    id: s.id,
    code: s.code,
    name: s.name,
    lead_value: s.lead_value,
    formatted_lead_value: `$${Number(s.lead_value).toFixed(2)}`,
    is_user_defined: s.is_user_defined,
    created_at: laravelDate(s.created_at),
    updated_at: laravelDate(s.updated_at),
  });
  const pipelineOut = (p) => ({ id: p.id, name: p.name, is_default: p.is_default, rotten_days: p.rotten_days, stages: p.stages.map(stageOut), created_at: laravelDate(p.created_at), updated_at: laravelDate(p.updated_at) });
  const namedOut = (r) => ({ id: r.id, name: r.name, created_at: laravelDate(r.created_at), updated_at: laravelDate(r.updated_at) });
  const leadOut = (l, { fresh = false } = {}) => ({
    id: l.id,
    title: l.title,
    description: l.description,
    // A record read back from MySQL has its decimal(12,4) as a string; a fresh one echoes the input.
    lead_value: fresh ? l.lead_value_input : l.lead_value === null ? null : Number(l.lead_value).toFixed(4),
    status: l.status,
    lost_reason: l.lost_reason,
    closed_at: laravelDate(l.closed_at),
    user: userOut(findIn(users, l.user_id)),
    person: personOut(findIn(persons, l.person_id)),
    lead_products: [],
    lead_source_id: l.lead_source_id,
    lead_type_id: l.lead_type_id,
    lead_pipeline_id: l.lead_pipeline_id,
    lead_pipeline_stage_id: l.lead_pipeline_stage_id,
    created_at: laravelDate(l.created_at),
    updated_at: laravelDate(l.updated_at),
    expected_close_date: l.expected_close_date,
  });
  const activityOut = (a) => ({
    id: a.id,
    parent_id: null,
    title: a.title,
    type: a.type,
    comment: a.comment,
    additional: a.additional,
    schedule_from: laravelDate(a.schedule_from),
    schedule_to: laravelDate(a.schedule_to),
    is_done: a.is_done,
    user: userOut(findIn(users, a.user_id)),
    files: [],
    participants: a.participants.map((p) => (p.user_id ? { user: userOut(findIn(users, p.user_id)) } : { person: personOut(findIn(persons, p.person_id)) })),
    location: a.location,
    created_at: laravelDate(a.created_at),
    updated_at: laravelDate(a.updated_at),
  });

  // ---- validation (Krayin's attribute forms) ----

  function uniqueAcrossPersons(errors, field, kind, value, exceptId) {
    if (typeof value !== 'string' || value.trim() === '') return;
    const taken = persons.some((p) => p.id !== Number(exceptId) && (p[kind] ?? []).some((entry) => entry.value === value));
    if (taken) errors.add(field, MESSAGES.taken);
  }

  /** The person attributes a body carries, checked under `prefix` (`''` or `'person.'`). */
  function checkPersonAttributes(errors, body, prefix, exceptId) {
    if ('name' in body && isBlank(body.name)) errors.add(`${prefix}name`, `The ${label(prefix + 'name')} field is required.`);
    if ('emails' in body) {
      if (isBlank(body.emails)) errors.add(`${prefix}emails`, `The ${label(prefix + 'emails')} field is required.`);
      for (const [index, entry] of entries(body.emails)) {
        const field = `${prefix}emails.${index}.value`;
        if (isBlank(entry?.value)) errors.add(field, `The ${label(field)} field is required.`);
        else if (!isEmail(entry.value)) errors.add(field, `The ${label(field)} must be a valid email address.`);
        else uniqueAcrossPersons(errors, field, 'emails', entry.value, exceptId);
        const labelField = `${prefix}emails.${index}.label`;
        if (isBlank(entry?.label)) errors.add(labelField, `The ${label(labelField)} field is required.`);
      }
    }
    if ('contact_numbers' in body) {
      for (const [index, entry] of entries(body.contact_numbers)) {
        uniqueAcrossPersons(errors, `${prefix}contact_numbers.${index}.value`, 'contact_numbers', entry?.value, exceptId);
      }
    }
  }

  function entries(list) {
    if (Array.isArray(list)) return list.entries();
    if (isPlainObject(list)) return Object.entries(list);
    return [];
  }

  /** What Krayin's person repository keeps of a body, with its failures on odd contact numbers. */
  function personFields(body, { fromController }) {
    if (fromController && !('contact_numbers' in body)) throw serverError('Undefined array key "contact_numbers"');
    const fields = {};
    for (const key of ['name', 'job_title']) if (key in body) fields[key] = body[key];
    if ('emails' in body) fields.emails = [...entries(body.emails)].map(([, e]) => e).filter((e) => e?.value !== null && e?.value !== undefined);
    if ('contact_numbers' in body) {
      const numbers = [...entries(body.contact_numbers)].map(([, e]) => e).filter((e) => e?.value !== null && e?.value !== undefined);
      if (numbers.length === 0) throw serverError('Undefined array key 0');
      fields.contact_numbers = numbers;
    }
    if ('organization_id' in body) fields.organization_id = foreignKey(organizations, body.organization_id || null, 'persons.organization_id');
    if ('user_id' in body) fields.user_id = foreignKey(users, body.user_id || null, 'persons.user_id');
    if (!fromController && body.organization_name) fields.organization_id = organizationNamed(body.organization_name).id;
    return fields;
  }

  function organizationNamed(name) {
    return organizations.find((o) => o.name === name) ?? storeOrganization({ name });
  }

  function storePerson(body, { fromController = true } = {}) {
    const fields = personFields(body, { fromController });
    if (fields.name === undefined || fields.name === null) throw serverError("SQLSTATE[23000]: Column 'name' cannot be null");
    const at = new Date();
    const person = { id: ++ids.person, name: null, emails: [], contact_numbers: [], job_title: null, organization_id: null, user_id: null, ...fields, created_at: at, updated_at: at };
    persons.push(person);
    return person;
  }

  function checkOrganization(body, exceptId) {
    const errors = new Errors();
    if ('name' in body) {
      if (isBlank(body.name)) errors.add('name', 'The name field is required.');
      else if (organizations.some((o) => o.id !== Number(exceptId) && o.name === body.name)) errors.add('name', MESSAGES.taken);
    }
    errors.throwIfAny();
  }

  function storeOrganization(body) {
    if (isBlank(body.name)) throw serverError("SQLSTATE[23000]: Column 'name' cannot be null");
    const at = new Date();
    const organization = { id: ++ids.organization, name: body.name, address: body.address ?? null, user_id: body.user_id ?? null, created_at: at, updated_at: at };
    organizations.push(organization);
    return organization;
  }

  function checkLead(body, personExceptId) {
    const errors = new Errors();
    for (const field of ['title', 'lead_source_id', 'lead_type_id', 'lead_pipeline_id', 'lead_pipeline_stage_id']) {
      if (field in body && isBlank(body[field])) errors.add(field, `The ${label(field)} field is required.`);
    }
    if ('lead_value' in body) {
      if (isBlank(body.lead_value)) errors.add('lead_value', 'The lead value field is required.');
      else if (!isDecimal(body.lead_value)) errors.add('lead_value', MESSAGES.decimal);
    }
    if ('expected_close_date' in body && body.expected_close_date !== null && body.expected_close_date !== '') {
      const value = String(body.expected_close_date);
      const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) errors.add('expected_close_date', 'The expected close date does not match the format Y-m-d.');
      else if (!(value > yesterday)) errors.add('expected_close_date', `The expected close date must be a date after ${yesterday}.`);
    }
    if (isPlainObject(body.person)) checkPersonAttributes(errors, body.person, 'person.', body.person.id ?? personExceptId);
    errors.throwIfAny();
  }

  /** The stage a lead body names: its `lead_pipeline_stage_id`, or the default pipeline's first. */
  function stageOfBody(body) {
    if (!('lead_pipeline_stage_id' in body)) throw serverError('Undefined array key "lead_pipeline_stage_id"');
    if (body.lead_pipeline_stage_id) return must(stageById(body.lead_pipeline_stage_id));
    return defaultPipeline().stages[0];
  }

  function personOfLead(body) {
    if (!isPlainObject(body.person)) return 'person_id' in body ? foreignKey(persons, body.person_id, 'leads.person_id') : undefined;
    if (body.person.id) return must(findIn(persons, body.person.id)).id;
    return storePerson(body.person, { fromController: false }).id;
  }

  function moveLead(lead, stage, via) {
    const from = lead.lead_pipeline_stage_id;
    lead.lead_pipeline_id = stage.lead_pipeline_id;
    lead.lead_pipeline_stage_id = stage.id;
    if (from !== stage.id) lead.stageHistory.push({ at: new Date().toISOString(), from, to: stage.id, code: stage.code, via });
  }

  function storeLead(body) {
    checkLead(body, null);
    const stage = stageOfBody(body);
    const personId = personOfLead(body);
    const at = new Date();
    const lead = {
      id: ++ids.lead,
      title: body.title ?? null,
      description: body.description ?? null,
      lead_value: body.lead_value ?? null,
      lead_value_input: body.lead_value ?? null,
      status: 1,
      lost_reason: body.lost_reason ?? null,
      closed_at: ['won', 'lost'].includes(stage.code) ? at : null,
      user_id: foreignKey(users, body.user_id, 'leads.user_id'),
      person_id: personId ?? null,
      lead_source_id: foreignKey(sources, body.lead_source_id, 'leads.lead_source_id'),
      lead_type_id: foreignKey(types, body.lead_type_id, 'leads.lead_type_id'),
      lead_pipeline_id: null,
      lead_pipeline_stage_id: null,
      expected_close_date: body.expected_close_date || null,
      created_at: at,
      updated_at: at,
      stageHistory: [],
    };
    moveLead(lead, stage, 'create');
    leads.push(lead);
    return lead;
  }

  function updateLead(id, body) {
    checkLead(body, null);
    const stage = stageOfBody(body);
    const personId = personOfLead(body);
    const lead = must(findIn(leads, id));
    for (const key of ['title', 'description', 'lost_reason']) if (key in body) lead[key] = body[key];
    if ('lead_value' in body) lead.lead_value = lead.lead_value_input = body.lead_value;
    if ('user_id' in body) lead.user_id = foreignKey(users, body.user_id, 'leads.user_id');
    if ('lead_source_id' in body) lead.lead_source_id = foreignKey(sources, body.lead_source_id, 'leads.lead_source_id');
    if ('lead_type_id' in body) lead.lead_type_id = foreignKey(types, body.lead_type_id, 'leads.lead_type_id');
    lead.expected_close_date = body.expected_close_date || null;
    if (personId !== undefined) lead.person_id = personId;
    setClosedAt(lead, stage);
    moveLead(lead, stage, 'update');
    lead.updated_at = new Date();
    return lead;
  }

  function setClosedAt(lead, stage) {
    lead.closed_at = ['won', 'lost'].includes(stage.code) ? (lead.closed_at ?? new Date()) : null;
  }

  function editLeadStage(id, body) {
    const errors = new Errors();
    const wanted = body?.lead_pipeline_stage_id;
    if (isBlank(wanted)) errors.add('lead_pipeline_stage_id', 'The lead pipeline stage id field is required.');
    else if (!stageById(wanted)) errors.add('lead_pipeline_stage_id', 'The selected lead pipeline stage id is invalid.');
    errors.throwIfAny();
    const lead = must(findIn(leads, id));
    // Krayin looks the stage up among the lead's pipeline's stages, with firstOrFail: a 404.
    const stage = must(stages.find((s) => s.id === Number(wanted) && s.lead_pipeline_id === lead.lead_pipeline_id));
    setClosedAt(lead, stage);
    moveLead(lead, stage, 'stage-edit');
    lead.updated_at = new Date();
    return lead;
  }

  // ---- activities ----

  function checkActivity(body) {
    const errors = new Errors();
    const type = body.type;
    if (isBlank(type)) errors.add('type', 'The type field is required.');
    if (type === 'note' && isBlank(body.comment)) errors.add('comment', 'The comment field is required when type is note.');
    for (const field of ['schedule_from', 'schedule_to']) {
      if (type !== 'note' && type !== 'file' && isBlank(body[field])) errors.add(field, `The ${label(field)} field is required unless type is in note, file.`);
    }
    if (type === 'file' && isBlank(body.file)) errors.add('file', 'The file field is required when type is file.');
    errors.throwIfAny();
  }

  function scheduleValue(value, field) {
    if (value === undefined || value === null || value === '') return null;
    if (!isDateTime(value)) throw serverError(`SQLSTATE[22007]: Invalid datetime format for column '${field}'`);
    return new Date(/Z|[+-]\d{2}:?\d{2}$/.test(value) ? value.replace(' ', 'T') : `${value.replace(' ', 'T')}Z`);
  }

  /**
   * participants[users][] and participants[persons][], one activity_participants row each
   * (ActivityRepository::create; an update carrying participants replaces them all, one without
   * leaves them); an unknown id is a foreign key error, a 500.
   */
  function participantsOf(given) {
    if (!isPlainObject(given)) return [];
    return [
      ...(given.users ?? []).filter(Boolean).map((id) => ({ user_id: foreignKey(users, id, 'activity_participants.user_id') })),
      ...(given.persons ?? []).filter(Boolean).map((id) => ({ person_id: foreignKey(persons, id, 'activity_participants.person_id') })),
    ];
  }

  /**
   * Krayin's listener (Admin\Listeners\Activity::afterUpdateOrCreate) links an activity to the
   * request's lead, or else to its person; its participants are stored apart from that link
   * (participantsOf), so a body may name a lead and a participant person.
   */
  function linkActivity(activity, body) {
    if (body.lead_id) {
      const lead = findIn(leads, body.lead_id);
      if (!lead) throw serverError('Attempt to read property "activities" on null');
      if (!activity.lead_ids.includes(lead.id)) activity.lead_ids.push(lead.id);
    } else if (body.person_id) {
      const person = findIn(persons, body.person_id);
      if (!person) throw serverError('Attempt to read property "activities" on null');
      if (!activity.person_ids.includes(person.id)) activity.person_ids.push(person.id);
    }
  }

  function storeActivity(body, user) {
    checkActivity(body);
    const at = new Date();
    const activity = {
      id: ++ids.activity,
      title: body.title ?? null,
      type: body.type,
      comment: body.comment ?? null,
      additional: body.additional ?? null,
      location: body.location ?? null,
      schedule_from: scheduleValue(body.schedule_from, 'schedule_from'),
      schedule_to: scheduleValue(body.schedule_to, 'schedule_to'),
      is_done: body.type === 'note' ? 1 : 0,
      user_id: user.id,
      participants: participantsOf(body.participants),
      lead_ids: [],
      person_ids: [],
      created_at: at,
      updated_at: at,
    };
    linkActivity(activity, body);
    activities.push(activity);
    return activity;
  }

  function updateActivity(id, body) {
    const activity = must(findIn(activities, id));
    for (const key of ['title', 'type', 'comment', 'additional', 'location']) if (key in body) activity[key] = body[key];
    for (const key of ['schedule_from', 'schedule_to']) if (key in body) activity[key] = scheduleValue(body[key], key);
    if ('is_done' in body) activity.is_done = body.is_done ? 1 : 0;
    if ('participants' in body) activity.participants = participantsOf(body.participants);
    linkActivity(activity, body);
    activity.updated_at = new Date();
    return activity;
  }

  // ---- lists and search ----

  /** Krayin's `allResources`: every other query key filters exactly (comma-separated values). */
  function listResources(list, query, path, out) {
    let rows = [...list];
    for (const [key, value] of query) {
      if (['entity_type', 'limit', 'page', 'pagination', 'order', 'sort'].includes(key)) continue;
      const wanted = value.split(',').map((v) => v.trim());
      rows = rows.filter((row) => row[key] !== undefined && wanted.includes(String(row[key])));
    }
    const sort = query.get('sort') ?? 'id';
    const direction = (query.get('order') ?? 'desc').toLowerCase() === 'asc' ? 1 : -1;
    rows.sort((a, b) => (a[sort] > b[sort] ? direction : a[sort] < b[sort] ? -direction : 0));
    const pagination = query.get('pagination');
    if (pagination !== null && !Number(pagination)) return { data: rows.map(out) };
    return paginate(rows.map(out), query, path);
  }

  /** The search of Prettus' RequestCriteria, on the fields Krayin makes searchable for persons. */
  function searchPersons(query, user) {
    const searchable = { name: '=', emails: '=', contact_numbers: '=', organization_id: '=', job_title: '=', user_id: '=' };
    const search = query.get('search') ?? '';
    const fieldValues = {};
    let plain = search;
    if (search.includes(':') || search.includes(';')) {
      plain = null;
      for (const part of search.split(';')) {
        const [field, ...rest] = part.split(':');
        if (rest.length === 0) plain = field;
        else fieldValues[field] = rest.join(':');
      }
    }
    let fields = Object.keys(searchable);
    const conditions = { ...searchable };
    const searchFields = query.get('searchFields');
    if (searchFields) {
      const accepted = [];
      for (const part of searchFields.split(';')) {
        const [field, condition] = part.split(':');
        if (!(field in searchable)) continue;
        accepted.push(field);
        if (condition) conditions[field] = condition.trim().toLowerCase();
      }
      if (accepted.length === 0) throw serverError(`None of the search fields were accepted. Acceptable search fields are: ${Object.keys(searchable).join(',')}`);
      fields = accepted;
    }
    const clauses = [];
    for (const field of fields) {
      const value = field in fieldValues ? fieldValues[field] : plain;
      if (value === null || value === undefined || value === '') continue;
      clauses.push((person) => matches(personColumn(person, field), conditions[field], value, field));
    }
    const join = (query.get('searchJoin') ?? 'or').toLowerCase() === 'and' ? 'every' : 'some';
    let rows = clauses.length === 0 ? [...persons] : persons.filter((p) => clauses[join]((clause) => clause(p)));
    if (user.view_permission !== 'global') rows = rows.filter((p) => p.user_id === user.id);
    const limit = Number(query.get('limit') ?? DEFAULT_PAGE_SIZE) || DEFAULT_PAGE_SIZE;
    return { data: rows.slice(0, limit).map(personOut) };
  }

  /** A column as MySQL holds it: emails and numbers as JSON text (compared case-sensitively). */
  function personColumn(person, field) {
    if (field === 'emails' || field === 'contact_numbers') return JSON.stringify(person[field]);
    const value = person[field];
    return value === null || value === undefined ? null : String(value);
  }

  function matches(column, condition, value, field) {
    if (column === null) return false;
    const caseless = !(field === 'emails' || field === 'contact_numbers');
    const fold = (s) => (caseless ? s.toLowerCase() : s);
    if (condition === 'like' || condition === 'ilike') return fold(column).includes(fold(value));
    return fold(column) === fold(value);
  }

  // ---- routes ----

  const idOf = (params) => Number(params[0]);
  const saved = (data, message) => ({ status: 200, body: { data, message } });
  const routes = [
    { method: 'GET', pattern: /^\/get$/, handle: ({ user }) => ({ status: 200, body: { data: userOut(user) } }) },
    { method: 'GET', pattern: /^\/contacts\/persons$/, handle: ({ query, path }) => ({ status: 200, body: listResources(persons, query, path, personOut) }) },
    { method: 'GET', pattern: /^\/contacts\/persons\/search$/, handle: ({ query, user }) => ({ status: 200, body: searchPersons(query, user) }) },
    { method: 'GET', pattern: /^\/contacts\/persons\/([0-9]+)$/, handle: ({ params }) => ({ status: 200, body: { data: personOut(must(findIn(persons, idOf(params)))) } }) },
    {
      method: 'POST',
      pattern: /^\/contacts\/persons$/,
      handle: ({ body }) => {
        const errors = new Errors();
        checkPersonAttributes(errors, body, '', null);
        errors.throwIfAny();
        return saved(personOut(storePerson(body)), 'Person created successfully.');
      },
    },
    {
      method: 'PUT',
      pattern: /^\/contacts\/persons\/([^/]+)$/,
      handle: ({ body, params }) => {
        const errors = new Errors();
        checkPersonAttributes(errors, body, '', body.id ?? params[0]);
        errors.throwIfAny();
        const fields = personFields(body, { fromController: true });
        const person = must(findIn(persons, params[0]));
        Object.assign(person, fields, { updated_at: new Date() });
        return saved(personOut(person), 'Person updated successfully.');
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/contacts\/persons\/([0-9]+)$/,
      handle: ({ params }) => {
        // Krayin deletes the person's leads with them (their foreign key cascades).
        const person = must(findIn(persons, idOf(params)));
        persons.splice(persons.indexOf(person), 1);
        for (const lead of leads.filter((l) => l.person_id === person.id)) leads.splice(leads.indexOf(lead), 1);
        deletedPersons.push(person.id);
        return { status: 200, body: { message: 'Person deleted successfully.' } };
      },
    },
    { method: 'GET', pattern: /^\/contacts\/organizations$/, handle: ({ query, path }) => ({ status: 200, body: listResources(organizations, query, path, organizationOut) }) },
    { method: 'GET', pattern: /^\/contacts\/organizations\/([^/]+)$/, handle: ({ params }) => ({ status: 200, body: { data: organizationOut(must(findIn(organizations, params[0]))) } }) },
    {
      method: 'POST',
      pattern: /^\/contacts\/organizations$/,
      handle: ({ body }) => {
        checkOrganization(body, null);
        return saved(organizationOut(storeOrganization(body)), 'Organization created successfully.');
      },
    },
    {
      method: 'PUT',
      pattern: /^\/contacts\/organizations\/([^/]+)$/,
      handle: ({ body, params }) => {
        checkOrganization(body, body.id ?? params[0]);
        const organization = must(findIn(organizations, params[0]));
        for (const key of ['name', 'address']) if (key in body) organization[key] = body[key];
        organization.updated_at = new Date();
        return saved(organizationOut(organization), 'Organization updated successfully.');
      },
    },
    { method: 'GET', pattern: /^\/leads$/, handle: ({ query, path }) => ({ status: 200, body: listResources(leads, query, path, (l) => leadOut(l)) }) },
    { method: 'GET', pattern: /^\/leads\/([0-9]+)$/, handle: ({ params }) => ({ status: 200, body: { data: leadOut(must(findIn(leads, idOf(params)))) } }) },
    { method: 'POST', pattern: /^\/leads$/, handle: ({ body }) => saved(leadOut(storeLead(body), { fresh: true }), 'Lead created successfully.') },
    { method: 'PUT', pattern: /^\/leads\/stage\/edit\/([^/]+)$/, handle: ({ body, params }) => saved(leadOut(editLeadStage(params[0], body)), 'Lead updated successfully.') },
    { method: 'PUT', pattern: /^\/leads\/([^/]+)$/, handle: ({ body, params }) => saved(leadOut(updateLead(params[0], body), { fresh: true }), 'Lead updated successfully.') },
    { method: 'GET', pattern: /^\/settings\/pipelines$/, handle: ({ query, path }) => ({ status: 200, body: listResources(pipelines, query, path, pipelineOut) }) },
    { method: 'GET', pattern: /^\/settings\/pipelines\/([^/]+)$/, handle: ({ params }) => ({ status: 200, body: { data: pipelineOut(must(findIn(pipelines, params[0]))) } }) },
    { method: 'GET', pattern: /^\/settings\/sources$/, handle: ({ query, path }) => ({ status: 200, body: listResources(sources, query, path, namedOut) }) },
    { method: 'GET', pattern: /^\/settings\/sources\/([^/]+)$/, handle: ({ params }) => ({ status: 200, body: { data: namedOut(must(findIn(sources, params[0]))) } }) },
    { method: 'GET', pattern: /^\/settings\/types$/, handle: ({ query, path }) => ({ status: 200, body: listResources(types, query, path, namedOut) }) },
    { method: 'GET', pattern: /^\/settings\/types\/([^/]+)$/, handle: ({ params }) => ({ status: 200, body: { data: namedOut(must(findIn(types, params[0]))) } }) },
    { method: 'GET', pattern: /^\/activities$/, handle: ({ query, path }) => ({ status: 200, body: listResources(activities, query, path, activityOut) }) },
    { method: 'GET', pattern: /^\/activities\/([^/]+)$/, handle: ({ params }) => ({ status: 200, body: { data: activityOut(must(findIn(activities, params[0]))) } }) },
    { method: 'POST', pattern: /^\/activities$/, handle: ({ body, user }) => saved(activityOut(storeActivity(body, user)), 'Activity created successfully.') },
    { method: 'PUT', pattern: /^\/activities\/([^/]+)$/, handle: ({ body, params }) => saved(activityOut(updateActivity(params[0], body)), 'Activity updated successfully.') },
  ];

  function route(method, path) {
    const allowed = [];
    for (const candidate of routes) {
      const match = candidate.pattern.exec(path);
      if (!match) continue;
      if (candidate.method === method || (method === 'HEAD' && candidate.method === 'GET')) return { route: candidate, params: match.slice(1) };
      allowed.push(candidate.method);
    }
    return { route: null, allowed };
  }

  // ---- the rate limit ----

  function spend(userId, at) {
    let window = windows.get(userId);
    if (!window || at >= window.resetAt) {
      window = { hits: 0, resetAt: at + rateLimit.windowMs };
      windows.set(userId, window);
    }
    const retryAfter = Math.max(1, Math.ceil((window.resetAt - at) / 1000));
    if (window.hits >= rateLimit.perMinute) return { exceeded: true, remaining: 0, retryAfter, resetAt: window.resetAt };
    window.hits += 1;
    return { exceeded: false, remaining: rateLimit.perMinute - window.hits };
  }

  // ---- HTTP ----

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent && !res.destroyed) send(res, 500, { message: MESSAGES.serverError, detail: `krayin fake: ${error.message}` });
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
      if (body === null) {
        res.writeHead(status, headers);
        res.end();
      } else send(res, status, body, headers);
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
      const message = { 401: MESSAGES.unauthenticated, 403: MESSAGES.forbidden, 404: MESSAGES.notFound, 429: MESSAGES.tooManyAttempts }[failure.status] ?? `Injected failure ${failure.status}`;
      return answer(failure.status, failure.body ?? { message }, headers);
    }

    if (!url.pathname.startsWith(`${API_PREFIX}/`)) return answer(404, { message: MESSAGES.notFound });
    const path = url.pathname.slice(API_PREFIX.length);
    const json = expectsJson(req.headers);

    const found = route(req.method, path);
    if (!found.route && found.allowed.length === 0) return answer(404, { message: MESSAGES.notFound });
    if (!found.route) {
      const allowed = [...new Set(found.allowed.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])))];
      return answer(405, { message: `The ${req.method} method is not supported for route ${url.pathname.slice(1)}. Supported methods: ${allowed.join(', ')}.` });
    }

    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const user = bearer ? tokens.get(bearer[1]) : undefined;
    if (!user) {
      if (!json) return answer(302, null, { location: '/admin/login' });
      return answer(401, { message: MESSAGES.unauthenticated });
    }

    let limitHeaders = {};
    if (rateLimit) {
      const spent = spend(user.id, record.at);
      limitHeaders = { 'x-ratelimit-limit': String(rateLimit.perMinute), 'x-ratelimit-remaining': String(spent.remaining) };
      if (spent.exceeded) {
        throttles.push({ at: record.at, userId: user.id, method: record.method, path: record.path, retryAfter: spent.retryAfter });
        return answer(429, { message: MESSAGES.tooManyAttempts }, {
          ...limitHeaders,
          'retry-after': String(spent.retryAfter),
          'x-ratelimit-reset': String(Math.ceil(spent.resetAt / 1000)),
        });
      }
    }

    if (['POST', 'PUT'].includes(req.method) && raw.length > 0 && !parsed.ok) {
      return answer(400, { message: 'Syntax error' }, limitHeaders);
    }
    const body = isPlainObject(parsed.value) ? trimStrings(parsed.value) : {};

    try {
      const result = found.route.handle({ user, params: found.params, query: url.searchParams, path: url.pathname, body });
      return answer(result.status, result.body, limitHeaders);
    } catch (error) {
      if (!(error instanceof Answer)) return answer(500, { message: MESSAGES.serverError, detail: `krayin fake: ${error.message}` }, limitHeaders);
      if (error.status === 422 && !json) {
        return answer(302, null, { ...limitHeaders, location: req.headers.referer ?? '/' });
      }
      return answer(error.status, error.body, { ...limitHeaders, ...error.headers });
    }
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

  await listen(0);
  const { port } = server.address();
  const apiUrl = `http://127.0.0.1:${port}${API_PREFIX}`;

  return {
    /** The base our client is configured with (`…/api/v1`). */
    url: apiUrl,
    origin: `http://127.0.0.1:${port}`,
    port,
    /** Every request received, in order: `{ at, method, path, query, headers, body, status }`. */
    requests,
    /** Every 429 the limit gave (not injected ones): `{ at, userId, method, path, retryAfter }`. */
    throttles,
    get rateLimited() {
      return throttles.length;
    },
    /** Persons as stored: `{ id, name, emails, contact_numbers, job_title, organization_id, user_id, … }`. */
    get persons() {
      return persons;
    },
    /** The ids of the persons deleted, in order. */
    get deletedPersons() {
      return [...deletedPersons];
    },
    get organizations() {
      return organizations;
    },
    /** Leads as stored, each with `stageHistory: [{ at, from, to, code, via: 'create'|'update'|'stage-edit' }]`. */
    get leads() {
      return leads;
    },
    /** Activities as stored, with `lead_ids` and `person_ids` they are linked to and `participants` ({ user_id } or { person_id }). */
    get activities() {
      return activities;
    },
    get pipelines() {
      return pipelines;
    },
    get sources() {
      return sources;
    },
    get types() {
      return types;
    },
    get users() {
      return users;
    },
    /** A record as the API answers it, for assertions: `out('lead', 3)`. */
    out(kind, id) {
      const table = { person: [persons, personOut], organization: [organizations, organizationOut], lead: [leads, leadOut], activity: [activities, activityOut] }[kind];
      const record = findIn(table[0], id);
      return record ? table[1](record) : null;
    },
    /**
     * Queues an injected failure: the next request(s) it matches (all, without `match(record)`) get
     * `status` with `{message}` (or `body`), and `Retry-After: retryAfter` when given. `times`
     * defaults to 1. Steps are tried in the order queued; each request takes at most one.
     */
    fail({ status, retryAfter, times = 1, match, body } = {}) {
      if (!REASONS[status]) throw new Error(`krayin fake: cannot inject status ${status}`);
      failures.push({ status, retryAfter, left: times, match, body });
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
    /** Sets or (with null) removes the per-user budget; the current windows start afresh. */
    setRateLimit(limit) {
      rateLimit = normalizeLimit(limit);
      windows.clear();
    },
    /** Stores a person as `POST /contacts/persons` would, without the HTTP checks. */
    seedPerson(fields) {
      return storePerson({ contact_numbers: [{ value: '', label: 'work' }], ...fields });
    },
    seedOrganization(fields) {
      return storeOrganization(fields);
    },
    seedLead(fields) {
      return storeLead({ lead_pipeline_stage_id: 0, ...fields });
    },
    async close() {
      for (const timer of hangTimers) clearTimeout(timer);
      hangTimers.clear();
      await stopListening();
    },
  };
}

/** Laravel's `expectsJson()`: an Accept naming JSON, or an XHR that accepts anything. */
export function expectsJson(headers) {
  const accept = String(headers.accept ?? '');
  const first = accept.split(',')[0]?.split(';')[0]?.trim() ?? '';
  if (first.includes('/json') || first.includes('+json')) return true;
  const ajax = String(headers['x-requested-with'] ?? '').toLowerCase() === 'xmlhttprequest';
  return ajax && (first === '' || first === '*/*' || first === '*');
}

/** Krayin runs Laravel's TrimStrings (but not ConvertEmptyStringsToNull) on every request. */
function trimStrings(value) {
  if (typeof value === 'string') return value.trim();
  if (Array.isArray(value)) return value.map(trimStrings);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, trimStrings(v)]));
  return value;
}

function paginate(items, query, path) {
  const perPage = Math.max(1, Number(query.get('limit') ?? DEFAULT_PAGE_SIZE) || DEFAULT_PAGE_SIZE);
  const page = Math.max(1, Number(query.get('page') ?? 1) || 1);
  const total = items.length;
  const lastPage = Math.max(1, Math.ceil(total / perPage));
  const start = (page - 1) * perPage;
  const data = items.slice(start, start + perPage);
  const link = (n) => `http://localhost${path}?page=${n}`;
  return {
    data,
    links: { first: link(1), last: link(lastPage), prev: page > 1 ? link(page - 1) : null, next: page < lastPage ? link(page + 1) : null },
    meta: {
      current_page: page,
      from: data.length ? start + 1 : null,
      last_page: lastPage,
      links: [],
      path: `http://localhost${path}`,
      per_page: perPage,
      to: data.length ? start + data.length : null,
      total,
    },
  };
}

function normalizeLimit(limit) {
  if (!limit) return null;
  if (!(Number.isInteger(limit.perMinute) && limit.perMinute >= 0)) {
    throw new Error(`krayin fake: perMinute must be a non-negative integer, got ${limit.perMinute}`);
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
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-cache, private',
    ...headers,
  });
  res.end(text);
}
