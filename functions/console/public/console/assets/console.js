// The business console: every page does what the guides' settings pages describe, through the
// API's own endpoints, with the session cookie (and its CSRF token on every change). No library:
// the DOM is built with `h`, which never parses text as HTML.
'use strict';

(() => {
  /** @type {import('../../../types/api').EventType[]} */
  const EVENTS = [
    'message.received', 'message.sent', 'conversation.created', 'conversation.assigned',
    'conversation.status_changed', 'customer.created', 'customer.updated', 'customer.erased',
    'alert.raised', 'alert.resolved',
  ];
  /** @type {import('../../../types/api').LinkChannelName[]} */
  const LINK_CHANNELS = ['facebook', 'messenger', 'instagram', 'whatsapp'];
  let session = null;

  // ---- DOM ----------------------------------------------------------------------------------

  /** An element: attributes (`on…` are listeners), then children (strings become text). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else if (name === 'class') el.className = value;
      else if (value === true) el.setAttribute(name, '');
      else el.setAttribute(name, String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Replaces `el`'s children, as `h` takes them. */
  function fill(el, ...children) {
    el.replaceChildren();
    return append(el, children);
  }

  const svgNs = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(svgNs, tag);
    for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
    for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return el;
  }

  let toastTimer;
  function toast(message) {
    const el = document.getElementById('toast');
    el.textContent = message;
    el.classList.add('shown');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove('shown'), 4000);
  }

  const when = (text) => (text ? new Date(text).toLocaleString() : '—');
  const percent = (rate) => (rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)} %`);
  const seconds = (value) => {
    if (value === null || value === undefined) return '—';
    if (value < 90) return `${Math.round(value)} s`;
    if (value < 5400) return `${Math.round(value / 60)} min`;
    return `${(value / 3600).toFixed(1)} h`;
  };

  function badge(kind, text) {
    return h('span', { class: `badge ${kind}` }, text);
  }

  /**
   * A table; on a phone each row becomes a card with its cells labelled (the roles keep it a
   * table for screen readers when CSS lays it out as blocks).
   */
  function table(headers, rows, empty, label) {
    if (rows.length === 0) return h('p', { class: 'muted' }, empty);
    return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': label || headers.filter(Boolean).join(', ') },
      h('table', { role: 'table' },
        h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' }, headers.map((name) => h('th', { scope: 'col', role: 'columnheader' }, name)))),
        h('tbody', { role: 'rowgroup' }, rows.map((cells) => row(headers, cells)))));
  }

  function row(headers, cells) {
    return h('tr', { role: 'row' }, cells.map((cell, i) => h('td', { role: 'cell', 'data-label': headers[i] || undefined }, cell)));
  }

  /** A button that copies `text`; `what` names it in the button ("Copy URL"). */
  function copyButton(text, what) {
    return h('button', {
      type: 'button',
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text);
          toast(`Copied the ${what}`);
        } catch {
          toast('Select the text and copy it by hand');
        }
      },
    }, `Copy ${what}`);
  }

  /** A secret shown once, with the warning that it is. */
  function secretBox(title, value, advice, what) {
    return h('div', { class: 'secret', role: 'alert' },
      h('strong', {}, title),
      h('code', { 'data-secret': '' }, value),
      h('p', { class: 'hint' }, advice || 'It is shown only now: copy it and keep it somewhere safe.'),
      copyButton(value, what));
  }

  // ---- the API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const error = body && body.error ? body.error : {};
      super(error.message || `the API answered ${status}`);
      this.status = status;
      this.code = error.code;
      this.field = error.field;
    }
  }

  /**
   * A call of the API, typed from openapi.json (functions/console/types/api.d.ts, which
   * scripts/configure writes and `tsc` checks this file against in scripts/test): a path, a body
   * or a field of an answer that is not the API's fails the build, not the page.
   * @type {import('../../../types/api').Api}
   */
  const api = /** @type {any} */ (call);

  /** A read that has not been answered in this long is asked again, once: a connection that
   * stalls (a proxy, a network change) must not leave a page loading for ever. */
  const READ_STALLS_AFTER_MS = 10_000;

  async function call(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && session) headers['x-csrf-token'] = session.csrf_token;
    const send = async () => {
      const init = { method, headers, credentials: /** @type {RequestCredentials} */ ('same-origin'), body: body === undefined ? undefined : JSON.stringify(body) };
      if (method !== 'GET') {
        const res = await fetch(path, init);
        return { res, text: await res.text() };
      }
      // A read (safe to ask twice) is given up on when its answer stalls, headers or body.
      const stalled = new AbortController();
      const timer = setTimeout(() => stalled.abort(), READ_STALLS_AFTER_MS);
      try {
        const res = await fetch(path, { ...init, signal: stalled.signal });
        return { res, text: await res.text() };
      } finally {
        clearTimeout(timer);
      }
    };
    let answered;
    try {
      answered = await send();
    } catch (error) {
      if (method !== 'GET' || !(error instanceof DOMException && error.name === 'AbortError')) throw error;
      try {
        answered = await send();
      } catch (again) {
        if (again instanceof DOMException && again.name === 'AbortError') {
          throw new Error(`the server did not answer in ${READ_STALLS_AFTER_MS / 1000} s, twice: try again`);
        }
        throw again;
      }
    }
    const { res, text } = answered;
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (res.status === 401 && session) {
      signedOut();
      throw new ApiError(401, json);
    }
    if (!res.ok) throw new ApiError(res.status, json);
    return json;
  }

  const query = (params) => {
    const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
    return pairs.length ? `?${new URLSearchParams(pairs)}` : '';
  };

  // ---- forms --------------------------------------------------------------------------------

  let fieldIds = 0;

  /** A labelled input; `name` is the API's field path, so an error naming it lands next to it. */
  function field(label, name, options = {}) {
    const id = `f${++fieldIds}`;
    const hintId = options.hint ? `${id}-hint` : undefined;
    let input;
    if (options.type === 'select') {
      input = h('select', { id, name, required: options.required },
        options.choices.map(([value, text]) => h('option', { value, selected: String(options.value ?? '') === String(value) }, text)));
    } else if (options.type === 'textarea') {
      input = h('textarea', { id, name, required: options.required, placeholder: options.placeholder }, options.value ?? '');
    } else {
      input = h('input', {
        id, name, type: options.type || 'text', value: options.value ?? '', required: options.required,
        placeholder: options.placeholder, autocomplete: options.autocomplete || 'off', min: options.min, max: options.max,
        spellcheck: 'false',
      });
    }
    if (hintId) input.setAttribute('aria-describedby', hintId);
    return h('div', { class: 'field' },
      h('label', { for: id }, label, options.required ? ' (required)' : ''),
      input,
      options.hint ? h('span', { class: 'hint', id: hintId }, options.hint) : null);
  }

  function checkbox(label, name, checked) {
    return h('label', { class: 'check' }, h('input', { type: 'checkbox', name, checked: Boolean(checked) }), label);
  }

  /** A form whose submit runs `action(form)`: its errors are shown beside the field they name. */
  function form(children, submitLabel, action, options = {}) {
    const status = h('div', { role: 'alert', class: 'form-status' });
    const submit = h('button', { type: 'submit', class: options.danger ? 'danger' : 'primary' }, submitLabel);
    const el = h('form', { class: 'stack', novalidate: true, 'aria-label': options.label || submitLabel }, children, status,
      h('div', { class: 'row' }, submit, options.extra));
    el.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(el);
      submit.disabled = true;
      try {
        await action(el);
      } catch (error) {
        showError(el, status, error);
      } finally {
        submit.disabled = false;
      }
    });
    return el;
  }

  function clearErrors(el) {
    for (const node of el.querySelectorAll('.error, .form-error')) node.remove();
    for (const node of el.querySelectorAll('[aria-invalid]')) {
      node.removeAttribute('aria-invalid');
      const described = (node.getAttribute('aria-describedby') || '').split(' ').filter((id) => !id.endsWith('-error'));
      if (described.length) node.setAttribute('aria-describedby', described.join(' '));
      else node.removeAttribute('aria-describedby');
    }
  }

  /** The input an error's field names: itself, its first part (`holds` → `holds.type`), or the
   * nearest enclosing name (`settings.x[0]` → `settings.x`). */
  function inputFor(el, fieldPath) {
    let name = fieldPath;
    while (name) {
      const found = el.querySelector(`[name="${CSS.escape(name)}"]`) || el.querySelector(`[name^="${CSS.escape(name)}."]`);
      if (found) return found;
      const cut = Math.max(name.lastIndexOf('.'), name.lastIndexOf('['));
      name = cut > 0 ? name.slice(0, cut) : '';
    }
    return null;
  }

  function showError(el, status, error) {
    const message = error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
    const input = error instanceof ApiError && error.field ? inputFor(el, error.field) : null;
    if (input) {
      const id = `${input.id || input.name}-error`;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), id].filter(Boolean).join(' '));
      const holder = input.closest('.field, fieldset, .check') || input;
      holder.append(h('p', { class: 'error', id }, message));
      input.focus();
    } else {
      status.append(h('p', { class: 'form-error' }, message));
    }
  }

  const value = (el, name) => {
    const input = el.elements.namedItem(name);
    if (!input) return undefined;
    if (input.type === 'checkbox') return input.checked;
    const text = input.value.trim();
    return text === '' ? undefined : text;
  };
  const number = (el, name) => {
    const text = value(el, name);
    if (text === undefined) return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  };

  /** A button that runs `action` once per click, with its error shown in a toast. */
  function action(label, run, options = {}) {
    const button = h('button', { type: 'button', class: options.class }, label);
    button.addEventListener('click', async () => {
      if (options.confirm && !window.confirm(options.confirm)) return;
      button.disabled = true;
      try {
        await run();
      } catch (error) {
        toast(error.message);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  // ---- charts -------------------------------------------------------------------------------

  /** The smallest 1, 2 or 5 times a power of ten at or above `value`: a scale's top. */
  function niceCeiling(value) {
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= value);
  }

  /**
   * A chart of one value per day (or per hour, `options.unit`): bars for counts, a line for rates
   * and times. The numbers are
   * also in a table under it, for screen readers and for anyone who wants them exact.
   */
  function chart(title, points, options = {}) {
    const width = 640;
    const height = 200;
    const pad = { left: 52, right: 28, top: 12, bottom: 28 };
    const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
    const max = options.max ?? niceCeiling(Math.max(options.least ?? 4, ...values));
    const x = (i) => pad.left + (points.length <= 1 ? 0 : (i * (width - pad.left - pad.right)) / (points.length - 1));
    const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
    const format = options.format || ((v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)));
    const unit = options.unit || 'day';
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title}, by ${unit}` });
    for (const fraction of [0, 0.5, 1]) {
      const at = y(max * fraction);
      svg.append(s('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: at, y2: at }));
      svg.append(s('text', { x: pad.left - 6, y: at + 4, 'text-anchor': 'end' }, format(max * fraction)));
    }
    svg.append(s('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom }));
    const step = Math.max(1, Math.ceil(points.length / 7));
    points.forEach((p, i) => {
      if (i % step === 0 || i === points.length - 1) {
        svg.append(s('text', { x: x(i), y: height - 8, 'text-anchor': 'middle' }, p.label));
      }
    });
    if (options.bars) {
      const barWidth = Math.max(2, (width - pad.left - pad.right) / Math.max(points.length, 1) * 0.6);
      points.forEach((p, i) => {
        if (p.value === null || p.value === undefined) return;
        svg.append(s('rect', { class: 'bar', x: x(i) - barWidth / 2, y: y(p.value), width: barWidth, height: Math.max(0, height - pad.bottom - y(p.value)) }));
      });
    } else {
      let path = '';
      points.forEach((p, i) => {
        if (p.value === null || p.value === undefined) return;
        path += `${path ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
        svg.append(s('circle', { class: 'dot', cx: x(i), cy: y(p.value), r: 3 }));
      });
      if (path) svg.prepend(s('path', { class: 'line', d: path }));
    }
    return h('figure', { class: 'card chart' },
      h('figcaption', {}, h('strong', {}, title)),
      svg,
      h('details', {}, h('summary', {}, `${title}: the numbers`),
        table([unit === 'hour' ? 'Hour' : 'Day', title], points.map((p) => [p.label, p.value === null || p.value === undefined ? '—' : format(p.value)]), `No ${unit}s`)));
  }

  // ---- pages --------------------------------------------------------------------------------

  const pages = {
    overview, alerts, 'api-access': apiAccess, webhooks, webhook, channels, connectors, connector, links, bot, analytics, audit,
  };

  function heading(text, ...rest) {
    return [h('h1', { tabindex: -1 }, text), ...rest];
  }

  async function overview() {
    const [alertsOut, connectorsOut, webhooksOut, linksOut, keysOut, usageOut] = await Promise.all([
      api('GET', '/api-alerts?limit=20'),
      api('GET', '/api-connectors'),
      api('GET', '/api-webhooks'),
      api('GET', '/api/dashboard/crm-links/all').catch(() => null),
      api('GET', '/api-keys'),
      api('GET', '/api-usage?by=hour'),
    ]);
    const lastDay = usageOut.series.slice(-24).reduce((sum, p) => ({
      requests: sum.requests + p.requests, errors: sum.errors + p.status_4xx + p.status_5xx, limited: sum.limited + p.rate_limited,
    }), { requests: 0, errors: 0, limited: 0 });
    const activeKeys = keysOut.api_keys.filter((key) => !key.revoked_at).length;
    const failing = webhooksOut.webhooks.filter((w) => w.failing_since || (!w.enabled && w.disabled_reason));
    return [
      heading(session.business.name),
      h('p', { class: 'muted' }, 'How your integrations are doing now. Each card leads to its settings.'),
      alertsCard(alertsOut),
      h('div', { class: 'cards' },
        h('section', { class: 'card', 'aria-labelledby': 'ov-crm' },
          h('h2', { id: 'ov-crm' }, 'CRM integrations'),
          connectorsOut.connectors.length === 0
            ? h('p', {}, 'No CRM connected yet. ', h('a', { href: '#/connectors' }, 'Connect Kustomer, Krayin, HubSpot or Salesforce'))
            : h('ul', {}, connectorsOut.connectors.map((c) => h('li', {}, h('a', { href: `#/connectors/${c.id}` }, c.name), ' ', health(c)))),
        ),
        h('section', { class: 'card', 'aria-labelledby': 'ov-hooks' },
          h('h2', { id: 'ov-hooks' }, 'Webhooks'),
          h('p', { class: 'figure' }, webhooksOut.webhooks.length),
          h('p', {}, webhooksOut.webhooks.length === 0 ? h('span', { class: 'muted' }, 'none yet')
            : failing.length ? badge('bad', `${failing.length} failing`) : badge('good', 'all delivering')),
          h('a', { href: '#/webhooks' }, 'Manage webhooks')),
        h('section', { class: 'card', 'aria-labelledby': 'ov-links' },
          h('h2', { id: 'ov-links' }, 'CRM links'),
          h('p', { class: 'figure' }, linksOut ? linksOut.total_crm_links : '—'),
          h('p', { class: 'muted' }, linksOut ? `${linksOut.total_active} active on ${linksOut.total_pages} page(s)` : ''),
          h('a', { href: '#/links' }, 'Manage CRM links')),
        h('section', { class: 'card', 'aria-labelledby': 'ov-keys' },
          h('h2', { id: 'ov-keys' }, 'API keys'),
          h('p', { class: 'figure' }, activeKeys),
          h('p', { class: 'muted' }, 'active'),
          h('a', { href: '#/api-access' }, 'Manage API access')),
        h('section', { class: 'card', 'aria-labelledby': 'ov-usage' },
          h('h2', { id: 'ov-usage' }, 'API usage, 24 hours'),
          h('p', { class: 'figure' }, lastDay.requests),
          h('p', {}, lastDay.requests === 0 ? h('span', { class: 'muted' }, 'no requests')
            : lastDay.errors / lastDay.requests > 0.01 ? badge('bad', `${percent(lastDay.errors / lastDay.requests)} errors`)
              : badge('good', `${percent(lastDay.errors / lastDay.requests)} errors`),
          lastDay.limited ? [' ', badge('warn', `${lastDay.limited} rate-limited`)] : null),
          h('a', { href: '#/api-access?by=hour' }, 'See the usage'))),
    ];
  }

  /** The open alerts, each with what it says and since when, and the last ones resolved. */
  function alertsCard(out) {
    const open = out.alerts.filter((a) => a.state === 'open');
    const resolved = out.alerts.filter((a) => a.state !== 'open').slice(0, 5);
    return h('section', { class: 'card', 'aria-labelledby': 'ov-alerts' },
      h('h2', { id: 'ov-alerts' }, 'Alerts'),
      out.open === 0
        ? h('p', {}, badge('good', 'no open alerts'), ' ', h('span', { class: 'muted' }, 'Every rule is quiet.'))
        : h('ul', { class: 'alerts' }, open.map((a) => h('li', {},
          badge('bad', 'open'), ' ', a.message, ' ', h('span', { class: 'muted' }, `since ${when(a.raised_at)}`)))),
      out.open > open.length ? h('p', { class: 'muted' }, `${out.open - open.length} more open`) : null,
      resolved.length ? [
        h('h3', {}, 'Recently resolved'),
        table(['Alert', 'Raised', 'Resolved'], resolved.map((a) => [a.message, when(a.raised_at), when(a.resolved_at)]), 'None', 'Recently resolved alerts'),
      ] : null,
      h('a', { href: '#/alerts' }, 'Alerts, their history and their rules'));
  }

  /** What became of an alert's emails, in a few words. */
  function alertEmails(a) {
    const states = [`raised: ${a.raised_email}`];
    if (a.resolved_email) states.push(`resolved: ${a.resolved_email}`);
    return a.email_error && (a.raised_email !== 'sent' || (a.resolved_email && a.resolved_email !== 'sent'))
      ? `${states.join(', ')} (${a.email_error})` : states.join(', ');
  }

  async function alerts() {
    const [settings, out] = await Promise.all([api('GET', '/api-alert-settings'), api('GET', '/api-alerts?limit=200')]);
    const rules = form([
      settings.rules.map((r) => h('fieldset', { class: 'rule' },
        h('legend', {}, r.title),
        h('p', { class: 'hint' }, r.about),
        h('div', { class: 'row' },
          checkbox('On', `rules.${r.kind}.enabled`, r.enabled),
          r.threshold === null ? null
            : field(`Threshold (${r.unit})`, `rules.${r.kind}.threshold`, {
              type: 'number', value: r.threshold, min: r.min, max: r.max,
              hint: `Default ${r.default_threshold}; ${r.min} to ${r.max}.`,
            })))),
      field('Email alerts to', 'email_to', {
        type: 'textarea', value: settings.email_to.join('\n'),
        hint: settings.email_from
          ? `One address a line, at most 10. Sent from ${settings.email_from} (your Mailgun account) when an alert is raised and when it is resolved.`
          : 'One address a line, at most 10. Nothing is emailed until the business has a Mailgun email account (Channel accounts).',
      }),
    ], 'Save rules', async (f) => {
      /** @type {Record<string, { enabled?: boolean, threshold?: number }>} */
      const changes = {};
      for (const r of settings.rules) {
        changes[r.kind] = { enabled: Boolean(value(f, `rules.${r.kind}.enabled`)) };
        if (r.threshold !== null) changes[r.kind].threshold = number(f, `rules.${r.kind}.threshold`);
      }
      const emailTo = (f.elements.namedItem('email_to').value || '').split(/[\n,]/).map((a) => a.trim()).filter(Boolean);
      await api('PATCH', '/api-alert-settings', { rules: changes, email_to: emailTo });
      toast('Saved');
      route();
    }, { label: 'Alert rules' });
    return [
      heading('Alerts'),
      h('p', { class: 'muted' }, 'Every minute the rules below look at your connectors, webhook endpoints, CRM links and API usage. An alert is raised once when a rule\'s threshold is reached and resolved once when the condition is over; each is an alert.raised or alert.resolved webhook event, and an email when you name who gets them.'),
      h('section', { class: 'card', 'aria-labelledby': 'al-history' },
        h('h2', { id: 'al-history' }, `History (${out.open} open)`),
        table(['Alert', 'State', 'Raised', 'Resolved', 'Email'], out.alerts.map((a) => [
          a.message, a.state === 'open' ? badge('bad', 'open') : badge('good', 'resolved'), when(a.raised_at), when(a.resolved_at), alertEmails(a),
        ]), 'No alert has been raised', 'Alert history')),
      h('section', { class: 'card', 'aria-labelledby': 'al-rules' }, h('h2', { id: 'al-rules' }, 'Rules'), rules),
    ];
  }

  /** A connector's health at a glance: paused, failing, missing a KPI's target, backlog, or healthy. */
  function health(connector) {
    const status = connector.status;
    if (!connector.enabled) return badge('off', 'disabled');
    if (status.paused_until) return badge('warn', `paused until ${when(status.paused_until)}`);
    const kpi = status.health;
    if (status.last_24h.dead > 0 || (status.success_rate !== null && status.success_rate < kpi.targets.sync_success_rate)) {
      return badge('bad', `success ${percent(status.success_rate)}`);
    }
    if (kpi.uptime !== null && kpi.uptime < kpi.targets.uptime) return badge('bad', `uptime ${percent(kpi.uptime)}`);
    if (kpi.error_rate !== null && kpi.error_rate > kpi.targets.error_rate) return badge('bad', `CRM errors ${percent(kpi.error_rate)}`);
    if (status.backlog > 0) return badge('warn', `${status.backlog} waiting`);
    const perDay = connector.rate_limit.per_day;
    if (perDay && status.calls_today >= perDay * 0.9) return badge('warn', `${status.calls_today} of ${perDay} calls today`);
    return badge('good', status.success_rate === null ? 'idle' : `healthy · ${percent(status.success_rate)}`);
  }

  /**
   * A connector's calls to its CRM over 24 hours as the production checklist's KPIs, each beside
   * its target and marked met or not (no calls: nothing to judge).
   */
  function kpis(status) {
    const hh = status.health;
    const t = hh.targets;
    const ms = (v) => (v === null ? '—' : `${Math.round(v)} ms`);
    const judged = (value, met, none = 'no calls') => (value === null ? badge('off', none) : met ? badge('good', 'met') : badge('bad', 'missed'));
    const rows = [
      ['Uptime', percent(hh.uptime), `above ${percent(t.uptime)}`, judged(hh.uptime, hh.uptime > t.uptime),
        `${hh.minutes_up} of ${hh.minutes_with_calls} minute(s) with calls had one answered`],
      ['CRM response time, average', ms(hh.average_response_ms), `under ${t.average_response_ms} ms`,
        judged(hh.average_response_ms, hh.average_response_ms < t.average_response_ms), `95 % within ${hh.p95_response_ms === null ? '—' : `${hh.p95_response_ms} ms`}`],
      ['Error rate', percent(hh.error_rate), `under ${percent(t.error_rate)}`, judged(hh.error_rate, hh.error_rate < t.error_rate),
        `${hh.failed_calls} of ${hh.calls} call(s) failed`],
      ['Sync success', percent(status.success_rate), `above ${percent(t.sync_success_rate)}`,
        judged(status.success_rate, status.success_rate > t.sync_success_rate, 'no work'), 'work done of work attempted'],
    ];
    return h('section', { class: 'card', 'aria-labelledby': 'c-kpis' },
      h('h2', { id: 'c-kpis' }, 'Health, last 24 hours'),
      table(['Measure', 'Now', 'Target', 'Status', 'From'], rows, 'No calls yet'));
  }

  /** A connector working for only a share of customers says so (its rollout). */
  function rollout(connector) {
    return connector.rollout_percent < 100 ? [' ', badge('warn', `for ${connector.rollout_percent}% of customers`)] : null;
  }

  async function apiAccess() {
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const by = params.get('by') === 'hour' ? 'hour' : 'day';
    const keyId = params.get('key') || '';
    const [keysOut, sessionsOut, business, usageOut, costOut] = await Promise.all([
      api('GET', '/api-keys'), api('GET', '/api-console-sessions'), api('GET', '/api-business'),
      api('GET', `/api-usage${query({ by, key_id: keyId || undefined })}`),
      api('GET', '/api-cost'),
    ]);
    const issued = h('div', {});
    const create = form([
      field('Name', 'name', { placeholder: 'Salesforce production', hint: 'What the key is for: it is how you will tell keys apart.' }),
    ], 'Create API key', async (el) => {
      const key = await api('POST', '/api-keys', { name: value(el, 'name') });
      fill(issued, secretBox('API key', key.key, `Shown only now. Send it as the x-api-key header; its prefix ${key.prefix} names it in lists.`, 'key'));
      el.reset();
      refreshKeys();
    });
    const keysTable = h('div', {});
    const refreshKeys = async () => {
      const out = await api('GET', '/api-keys');
      fill(keysTable, keyRows(out.api_keys, refreshKeys));
    };
    keysTable.append(keyRows(keysOut.api_keys, refreshKeys));
    const frame = form([
      field('Sites that may frame the inbox', 'embed_frame_ancestors', {
        type: 'textarea',
        value: business.embed_frame_ancestors.join('\n'),
        hint: 'One origin a line (https://crm.example.com). Empty: any site may frame it.',
      }),
    ], 'Save', async (el) => {
      const list = (value(el, 'embed_frame_ancestors') || '').split(/\s+/).filter(Boolean);
      await api('PATCH', '/api-business', { embed_frame_ancestors: list });
      toast('Saved');
    }, { label: 'Sites that may frame the inbox' });
    const spells = form([
      field('Hours before a returning customer gets a new conversation', 'new_conversation_after_hours', {
        type: 'number', min: 0, max: 8760, value: business.new_conversation_after_hours,
        hint: 'A customer who writes after their resolved conversation has been quiet this long gets a new one (and your CRM a new case); sooner, it is reopened. 0: never reopened.',
      }),
    ], 'Save', async (el) => {
      const given = (value(el, 'new_conversation_after_hours') || '').trim();
      await api('PATCH', '/api-business', { new_conversation_after_hours: given === '' ? null : Number(given) });
      toast('Saved');
    }, { label: 'Returning customers' });
    const erased = h('div', { 'aria-live': 'polite' });
    const erase = form([
      field('Customer id', 'customer_id', {
        required: true, placeholder: '8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f',
        hint: 'As the API names them (customer_id). Their messages, files, conversations and every other record of them here are deleted, and each connected CRM is asked to delete their contact. It cannot be undone.',
      }),
    ], 'Erase', async (el) => {
      const id = (value(el, 'customer_id') || '').trim();
      if (!window.confirm(`Erase customer ${id}? Everything of them is deleted for good, here and in your CRMs.`)) return;
      fill(erased, erasureView(await api('DELETE', `/api-customers/${encodeURIComponent(id)}`)));
      el.reset();
    }, { label: 'Erase a customer', danger: true });
    return [
      heading('API access'),
      h('p', { class: 'muted' }, 'Your CRM calls the API with a key. Keys are stored only as a hash: a new key is shown once.'),
      h('section', { class: 'card', 'aria-labelledby': 'keys-new' }, h('h2', { id: 'keys-new' }, 'Create a key'), create, issued),
      h('h2', {}, 'Keys'), keysTable,
      h('p', { class: 'hint' }, `Rate limit of each key: ${business.rate_limit.per_minute} a minute, bursts of ${business.rate_limit.burst} (set by your operator).`),
      usage(usageOut, keysOut.api_keys, by, keyId),
      cost(costOut),
      h('h2', {}, 'Console sessions'),
      table(['Issued by', 'Opened', 'Ends', 'Actions'], sessionsOut.sessions.map((one) => [
        one.issued_by, when(one.opened_at), one.id === session.session_id ? h('span', {}, when(one.expires_at), ' (this one)') : when(one.expires_at ?? one.link_expires_at),
        action('Revoke', async () => {
          await api('DELETE', `/api-console-sessions/${one.id}`);
          toast('Revoked');
          route();
        }, { class: 'danger', confirm: 'Revoke this console session? It stops working at once.' }),
      ]), 'No other sessions'),
      h('section', { class: 'card', 'aria-labelledby': 'embed' }, h('h2', { id: 'embed' }, 'Embedded inbox'), frame),
      h('section', { class: 'card', 'aria-labelledby': 'spells' }, h('h2', { id: 'spells' }, 'Returning customers'), spells),
      h('section', { class: 'card', 'aria-labelledby': 'erasure' },
        h('h2', { id: 'erasure' }, 'Erase a customer'),
        h('p', { class: 'hint' }, 'When a person asks you to erase their data. What is kept is a record with no personal data: their id, when, and by whom.'),
        erase, erased),
    ];
  }

  /** An erasure as `DELETE /api-customers/{id}` answers it: where it stands, what it deleted, each CRM's part. */
  function erasureView(out) {
    const deleted = out.deleted;
    return h('div', { class: 'stack' },
      h('p', {}, badge(out.status === 'erased' ? 'good' : 'warn', out.status === 'erased' ? 'Erased' : 'Erasing'), ' ',
        `${deleted.messages} messages, ${deleted.conversations} conversations, ${deleted.attachments} files and ${deleted.knowledge_pieces} CRM link records deleted.`,
        out.status === 'erased' ? '' : ' The rest is deleted within minutes: erase the same id again to see where it stands.'),
      table(['CRM', 'Asked to', 'Status'], out.crm.map((part) => [
        part.crm, part.action === 'gdpr_delete' ? 'delete for good (GDPR)' : 'delete', part.error ? `${part.status}: ${part.error}` : part.status,
      ]), 'No CRM is connected'));
  }

  /**
   * The keys' usage (`GET /api-usage`): requests and errors by day or hour, charted, and by
   * endpoint; the period and the key are chosen in the page's address, as the analytics' range is.
   */
  function usage(out, keys, by, keyId) {
    const address = (changes) => {
      const next = { by, key: keyId, ...changes };
      return `#/api-access${query({ by: next.by === 'hour' ? 'hour' : undefined, key: next.key || undefined })}`;
    };
    const keyChoice = field('Key', 'usage_key', {
      type: 'select', value: keyId,
      choices: [['', 'All keys'], ...keys.map((key) => [key.id, `${key.name || 'unnamed'} (${key.prefix})`])],
    });
    keyChoice.querySelector('select').addEventListener('change', (event) => go(address({ key: event.target.value })));
    const label = (at) => (by === 'hour' ? `${at.slice(11, 16)}` : at.slice(5, 10));
    const points = (pick) => out.series.map((p) => ({ label: label(p.at), value: pick(p) }));
    const totals = out.totals;
    const errors = totals.status_4xx + totals.status_5xx;
    return h('section', { class: 'card', 'aria-labelledby': 'usage' },
      h('h2', { id: 'usage' }, 'Usage'),
      h('p', { class: 'hint' }, 'Requests made with your API keys (the console’s own are not counted), up to a minute behind. UTC.'),
      h('div', { class: 'row' },
        h('span', {}, 'Period: ',
          h('a', { href: address({ by: 'day' }), 'aria-current': by === 'day' ? 'page' : undefined }, 'last 30 days'), ' · ',
          h('a', { href: address({ by: 'hour' }), 'aria-current': by === 'hour' ? 'page' : undefined }, 'last 48 hours')),
        keyChoice),
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('h3', {}, 'Requests'), h('p', { class: 'figure' }, totals.requests)),
        h('div', { class: 'card' }, h('h3', {}, 'Errors'), h('p', { class: 'figure' }, errors),
          h('p', { class: 'hint' }, `${totals.status_4xx} client (4xx), ${totals.status_5xx} server (5xx); ${totals.requests ? percent(errors / totals.requests) : '—'}`)),
        h('div', { class: 'card' }, h('h3', {}, 'Rate limited'), h('p', { class: 'figure' }, totals.rate_limited),
          h('p', { class: 'hint' }, 'refused with 429, counted in 4xx'))),
      chart('Requests', points((p) => p.requests), { bars: true, least: 10, unit: by }),
      chart('Errors (4xx and 5xx)', points((p) => p.status_4xx + p.status_5xx), { bars: true, least: 10, unit: by }),
      h('h3', {}, 'By endpoint'),
      table(['Endpoint', 'Requests', '2xx', '3xx', '4xx', '5xx', 'Rate limited'], out.endpoints.map((e) => [
        h('code', {}, e.endpoint), e.requests, e.status_2xx, e.status_3xx, e.status_4xx, e.status_5xx, e.rate_limited,
      ]), 'No requests in this period'));
  }

  /** The names people know the units by (`GET /api-cost`'s meters). */
  const UNIT_NAMES = {
    worker_requests: 'Requests', d1_rows_read: 'Database rows read', d1_rows_written: 'Database rows written',
    kv_reads: 'Cache reads', kv_writes: 'Cache writes', queue_operations: 'Queue operations',
    r2_class_a: 'File writes', r2_class_b: 'File reads', do_requests: 'Rate-limiter calls',
  };

  /**
   * What the business cost to run this month (`GET /api-cost`): the month to date and at this
   * pace, each day charted, and each kind of unit with its cost.
   */
  function cost(out) {
    const points = out.days.map((d) => ({ label: d.day.slice(5), value: d.cost.picodollars / 1e12 }));
    return h('section', { class: 'card', 'aria-labelledby': 'cost' },
      h('h2', { id: 'cost' }, `Running cost, ${out.month}`),
      h('p', { class: 'hint' }, `What your calls, messages and syncs used of the platform, at Cloudflare's prices of ${out.prices_as_of}. Up to a minute behind. UTC.`),
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('h3', {}, 'This month so far'), h('p', { class: 'figure' }, out.month_to_date.usd)),
        h('div', { class: 'card' }, h('h3', {}, 'At this pace'), h('p', { class: 'figure' }, out.projected.usd),
          h('p', { class: 'hint' }, 'for the whole month'))),
      points.length > 1 ? chart('Cost a day', points, { bars: true, unit: 'day', least: 1e-9, format: (v) => `$${Number(v.toPrecision(2))}` }) : null,
      table(['Unit', 'Used', 'Cost'], out.units.map((u) => [UNIT_NAMES[u.meter] || u.meter, u.count.toLocaleString('en'), u.cost.usd]),
        'Nothing used yet this month'));
  }

  function keyRows(keys, refresh) {
    return table(['Name', 'Prefix', 'Created', 'Last used', 'Status', 'Actions'], keys.map((key) => [
      key.name || '—', h('code', {}, key.prefix), when(key.created_at),
      key.last_used_at
        ? h('span', {}, when(key.last_used_at), h('br'), h('span', { class: 'hint' }, `${key.last_used_endpoint} from ${key.last_used_address || 'an unknown address'}`))
        : h('span', { class: 'muted' }, 'never'),
      key.revoked_at ? badge('off', `revoked ${when(key.revoked_at)}`) : badge('good', 'active'),
      key.revoked_at ? '' : action('Revoke', async () => {
        await api('DELETE', `/api-keys/${key.id}`);
        toast(`Key ${key.prefix} revoked`);
        await refresh();
      }, { class: 'danger', confirm: `Revoke ${key.prefix}? Calls with it stop at once.` }),
    ]), 'No keys yet');
  }

  async function webhooks() {
    const out = await api('GET', '/api-webhooks');
    const created = h('div', {});
    const add = form([
      field('Name', 'name', { required: true, placeholder: 'CRM sync' }),
      field('URL', 'url', { type: 'url', required: true, placeholder: 'https://crm.example.com/hooks/chat', hint: 'HTTPS; events are POSTed here, signed.' }),
      h('fieldset', {}, h('legend', {}, 'Events'),
        h('div', { class: 'checks' }, EVENTS.map((event) => checkbox(event, `events.${event}`, true))),
        h('input', { type: 'hidden', name: 'events' })),
    ], 'Add webhook', async (el) => {
      const events = EVENTS.filter((event) => value(el, `events.${event}`));
      const out = await api('POST', '/api-webhooks', { name: value(el, 'name'), url: value(el, 'url'), events });
      fill(created,
        secretBox('Signing secret', out.secret, 'Shown only now. Check every delivery\'s signature with it (docs/webhooks.md).', 'secret'),
        h('p', {}, h('a', { href: `#/webhooks/${out.webhook.id}` }, `Open ${out.webhook.name}`), ' to send a test event.'));
      el.reset();
      fill(list, webhookRows((await api('GET', '/api-webhooks')).webhooks));
    });
    const list = h('div', {}, webhookRows(out.webhooks));
    return [
      heading('Webhooks'),
      h('p', { class: 'muted' }, 'Every event is delivered, signed, to the URLs you add, with retries and a log of every attempt.'),
      list,
      h('section', { class: 'card', 'aria-labelledby': 'hook-new' }, h('h2', { id: 'hook-new' }, 'Add a webhook'), add, created),
    ];
  }

  function webhookState(w) {
    if (!w.enabled) return badge('off', w.disabled_reason ? `disabled: ${w.disabled_reason}` : 'disabled');
    if (w.failing_since) return badge('bad', `failing since ${when(w.failing_since)}`);
    return badge('good', 'delivering');
  }

  function webhookRows(list) {
    return table(['Name', 'URL', 'Events', 'State'], list.map((w) => [
      h('a', { href: `#/webhooks/${w.id}` }, w.name), h('code', {}, w.url), `${w.events.length} of ${EVENTS.length}`, webhookState(w),
    ]), 'No webhooks yet');
  }

  async function webhook(id) {
    const { webhook: w } = await api('GET', `/api-webhooks/${id}`);
    const result = h('div', { 'aria-live': 'polite' });
    const deliveries = h('div', {});
    const filter = field('Show', 'status', {
      type: 'select', value: '',
      choices: [['', 'every delivery'], ['pending', 'pending'], ['delivered', 'delivered'], ['dead', 'dead letters']],
    });
    const load = async () => {
      const status = filter.querySelector('select').value;
      const out = await api('GET', `/api-webhooks/${id}/deliveries${query({ status, limit: 50 })}`);
      fill(deliveries, table(['Event', 'When', 'Status', 'Attempts', 'Last answer', 'Actions'], out.deliveries.map((d) => [
        h('span', {}, d.event_type, h('br'), h('code', { class: 'hint' }, d.event_id)), when(d.event_at),
        badge(d.status === 'delivered' ? 'good' : d.status === 'dead' ? 'bad' : 'warn', d.status),
        d.attempts, d.last_error || (d.last_status ? `HTTP ${d.last_status}` : '—'),
        h('span', { class: 'row' },
          action('Attempts', async () => showAttempts(d.id)),
          d.status === 'pending' ? '' : action('Replay', async () => {
            await api('POST', `/api-webhooks/${id}/replay`, { delivery_id: d.id });
            toast('Queued again');
            await load();
          })),
      ]), 'No deliveries yet'));
    };
    const attempts = h('div', {});
    const showAttempts = async (deliveryId) => {
      const out = await api('GET', `/api-webhook-attempts${query({ webhook_id: id, delivery_id: deliveryId })}`);
      fill(attempts, h('h3', {}, 'Attempts'), table(['When', 'Attempt', 'Outcome', 'Answer', 'Time'], out.attempts.map((a) => [
        when(a.attempted_at), a.attempt, a.outcome, a.error || `HTTP ${a.status_code}`, `${a.duration_ms} ms`,
      ]), 'No attempts'));
      attempts.querySelector('h3').scrollIntoView({ block: 'nearest' });
    };
    filter.querySelector('select').addEventListener('change', () => load().catch((e) => toast(e.message)));
    await load();
    const replay = form([
      field('From', 'from', { type: 'datetime-local', required: true }),
      field('To', 'to', { type: 'datetime-local', required: true }),
    ], 'Replay this range', async (el) => {
      const iso = (name) => (value(el, name) ? new Date(value(el, name)).toISOString() : undefined);
      const out = await api('POST', `/api-webhooks/${id}/replay`, { from: iso('from'), to: iso('to') });
      toast(`${out.replayed} delivery(ies) queued again`);
      await load();
    }, { label: 'Replay by range' });
    const rotated = h('div', {});
    const edit = form([
      field('Name', 'name', { required: true, value: w.name }),
      field('URL', 'url', { type: 'url', required: true, value: w.url }),
      h('fieldset', {}, h('legend', {}, 'Events'),
        h('div', { class: 'checks' }, EVENTS.map((event) => checkbox(event, `events.${event}`, w.events.includes(event)))),
        h('input', { type: 'hidden', name: 'events' })),
    ], 'Save changes', async (el) => {
      const events = EVENTS.filter((event) => value(el, `events.${event}`));
      await api('PATCH', `/api-webhooks/${id}`, { name: value(el, 'name'), url: value(el, 'url'), events });
      toast('Saved');
      route();
    }, { label: 'Change the webhook' });
    return [
      heading(w.name),
      h('p', {}, h('code', {}, w.url), ' ', webhookState(w)),
      h('p', { class: 'muted' }, `Events: ${w.events.join(', ')}`),
      h('div', { class: 'row' },
        action('Send a test event', async () => {
          const out = await api('POST', `/api-webhooks/${id}/test`);
          fill(result, h('div', { class: 'card' },
            out.delivered ? badge('good', `delivered: HTTP ${out.status_code} in ${out.duration_ms} ms`) : badge('bad', `not delivered: ${out.error || `HTTP ${out.status_code}`}`),
            out.response_body ? h('pre', { class: 'mono' }, out.response_body) : null));
        }, { class: 'primary' }),
        action(w.enabled ? 'Disable' : 'Enable', async () => {
          await api('PATCH', `/api-webhooks/${id}`, { enabled: !w.enabled });
          route();
        }),
        action('Rotate the secret', async () => {
          const out = await api('POST', `/api-webhooks/${id}/rotate-secret`, { grace_seconds: 86400 });
          fill(rotated, secretBox('New signing secret', out.secret, 'Shown only now. The old secret still signs for 24 hours, so you can switch without losing a delivery.', 'secret'));
        }, { confirm: 'Make a new signing secret? The old one keeps working for 24 hours.' }),
        action('Delete', async () => {
          await api('DELETE', `/api-webhooks/${id}`);
          go('#/webhooks');
        }, { class: 'danger', confirm: `Delete ${w.name}? Its deliveries stop.` })),
      result, rotated,
      h('h2', {}, 'Deliveries'), filter, deliveries, attempts,
      h('section', { class: 'card', 'aria-labelledby': 'replay' }, h('h2', { id: 'replay' }, 'Replay by range'),
        h('p', { class: 'hint' }, 'Every delivery of an event in the range is sent again.'), replay),
      h('section', { class: 'card', 'aria-labelledby': 'edit' }, h('h2', { id: 'edit' }, 'Change it'), edit),
    ];
  }

  const PROVIDERS = {
    meta: { channels: ['whatsapp', 'facebook', 'instagram'], secrets: ['app_secret', 'verify_token', 'access_token'], settings: [] },
    twilio: { channels: ['sms', 'whatsapp'], secrets: ['auth_token'], settings: ['account_sid'] },
    mailgun: { channels: ['email'], secrets: ['signing_key', 'api_key'], settings: ['domain'] },
  };

  async function channels() {
    const out = await api('GET', '/api-channel-accounts');
    const extra = h('div', { class: 'stack' });
    const providerField = field('Provider', 'provider', { type: 'select', value: 'meta', choices: [['meta', 'Meta (WhatsApp, Messenger, Instagram)'], ['twilio', 'Twilio (SMS, WhatsApp)'], ['mailgun', 'Mailgun (email)']] });
    const showProvider = () => {
      const provider = PROVIDERS[providerField.querySelector('select').value];
      fill(extra,
        field('Channel', 'channel', { type: 'select', choices: provider.channels.map((c) => [c, c]) }),
        provider.settings.map((name) => field(name, `settings.${name}`, { required: true })),
        provider.secrets.map((name) => field(name, `secrets.${name}`, { type: 'password', required: true, autocomplete: 'new-password' })));
    };
    providerField.querySelector('select').addEventListener('change', showProvider);
    showProvider();
    const add = form([
      providerField, extra,
      field('Address', 'address', { required: true, hint: 'The phone number id, page id or Instagram id (Meta), the number in E.164 (Twilio), or the address (email).' }),
      field('Name', 'name'),
    ], 'Add account', async (el) => {
      const provider = value(el, 'provider');
      const pick = (kind) => Object.fromEntries(PROVIDERS[provider][kind].map((name) => [name, value(el, `${kind}.${name}`)]).filter(([, v]) => v !== undefined));
      await api('POST', '/api-channel-accounts', {
        provider, channel: value(el, 'channel'), address: value(el, 'address'), name: value(el, 'name'),
        settings: pick('settings'), secrets: pick('secrets'),
      });
      toast('Account added');
      route();
    });
    return [
      heading('Channel accounts'),
      h('p', { class: 'muted' }, 'The accounts your channels arrive on and are sent from. Point each provider\'s webhook at the address shown.'),
      table(['Channel', 'Provider', 'Address', 'Webhook URL', 'Secrets set'], out.channel_accounts.map((a) => [
        a.channel, a.provider, a.address, h('span', { class: 'row' }, h('code', {}, location.origin + a.webhook_path), copyButton(location.origin + a.webhook_path, 'URL')),
        h('span', {}, a.secrets_set.join(', '), h('details', {}, h('summary', {}, 'Rotate a secret'), rotateSecrets(a))),
      ]), 'No accounts yet'),
      h('section', { class: 'card', 'aria-labelledby': 'acc-new' }, h('h2', { id: 'acc-new' }, 'Add an account'), add),
    ];
  }

  /** A form that replaces an account's secrets: only those filled in change. */
  function rotateSecrets(account) {
    const names = (PROVIDERS[account.provider] || { secrets: [] }).secrets;
    return form(names.map((name) => field(name, `secrets.${name}`, { type: 'password', autocomplete: 'new-password' })), 'Save secrets', async (el) => {
      const secrets = clean(Object.fromEntries(names.map((name) => [name, value(el, `secrets.${name}`)])));
      await api('PATCH', `/api-channel-accounts/${account.id}`, { secrets });
      toast(`Saved: ${Object.keys(secrets).join(', ') || 'nothing changed'}`);
      el.reset();
    }, { label: `Secrets of ${account.address}` });
  }

  async function connectors() {
    const out = await api('GET', '/api-connectors');
    const kustomer = form([
      field('Name', 'name', { value: 'Kustomer' }),
      field('API key', 'secrets.api_key', { type: 'password', required: true, autocomplete: 'new-password', hint: 'Kustomer → Settings → Security → API Keys, with the org.user and org.permission roles.' }),
      field('Organization ID', 'settings.organization_id', { hint: 'Kustomer → Settings → Organization.' }),
      field('Subdomain', 'settings.subdomain', { placeholder: 'acme', hint: 'acme for acme.kustomerapp.com.' }),
      h('details', {}, h('summary', {}, 'Another API address'),
        field('API base URL', 'settings.base_url', { type: 'url', placeholder: 'https://acme.api.kustomerapp.com', hint: 'Instead of the subdomain: Kustomer\'s API at another address.' })),
      field('Webhook secret', 'secrets.webhook_secret', { type: 'password', autocomplete: 'new-password', hint: 'The token of the webhook you point Kustomer at (optional: for its events).' }),
      h('fieldset', {}, h('legend', {}, 'Features'), h('div', { class: 'checks' },
        checkbox('Customer lookup', 'settings.customer_lookup', true),
        checkbox('Conversation sync', 'settings.conversation_sync', true),
        checkbox('Ticket creation', 'settings.ticket_creation', true),
        checkbox('Auto assignment', 'settings.auto_assignment', false))),
      field('Default priority', 'settings.default_priority', { type: 'select', value: 'medium', choices: [['low', 'low'], ['medium', 'medium'], ['high', 'high'], ['urgent', 'urgent']] }),
    ], 'Connect Kustomer', async (el) => {
      const settings = {};
      for (const name of ['organization_id', 'subdomain', 'base_url', 'default_priority']) settings[name] = value(el, `settings.${name}`);
      for (const name of ['customer_lookup', 'conversation_sync', 'ticket_creation', 'auto_assignment']) settings[name] = value(el, `settings.${name}`);
      const secrets = { api_key: value(el, 'secrets.api_key'), webhook_secret: value(el, 'secrets.webhook_secret') };
      const made = await api('POST', '/api-connectors', { kind: 'kustomer', name: value(el, 'name'), settings: clean(settings), secrets: clean(secrets) });
      go(`#/connectors/${made.id}`);
    }, { label: 'Connect Kustomer' });
    const krayin = form([
      field('Name', 'name', { value: 'Krayin' }),
      field('API URL', 'settings.api_url', { type: 'url', required: true, placeholder: 'https://your-krayin.com/api/admin' }),
      field('API token', 'secrets.api_token', { type: 'password', required: true, autocomplete: 'new-password', hint: 'Krayin → Settings → API Tokens.' }),
      field('Chatwoot webhook secret', 'secrets.webhook_secret', { type: 'password', autocomplete: 'new-password', hint: 'Only if Chatwoot sends its events here.' }),
      h('fieldset', {}, h('legend', {}, 'Sync options'), h('div', { class: 'checks' },
        checkbox('Organizations', 'settings.sync_organizations', false),
        checkbox('Conversations as activities', 'settings.sync_conversations', false),
        checkbox('Messages as activities', 'settings.sync_messages', false))),
      field('Lead source id', 'settings.lead_source_id', { type: 'number', min: 1 }),
      field('Lead type id', 'settings.lead_type_id', { type: 'number', min: 1 }),
    ], 'Connect Krayin', async (el) => {
      const settings = { api_url: value(el, 'settings.api_url'), lead_source_id: number(el, 'settings.lead_source_id'), lead_type_id: number(el, 'settings.lead_type_id') };
      for (const name of ['sync_organizations', 'sync_conversations', 'sync_messages']) settings[name] = value(el, `settings.${name}`);
      const secrets = { api_token: value(el, 'secrets.api_token'), webhook_secret: value(el, 'secrets.webhook_secret') };
      const made = await api('POST', '/api-connectors', { kind: 'krayin', name: value(el, 'name'), settings: clean(settings), secrets: clean(secrets) });
      go(`#/connectors/${made.id}`);
    }, { label: 'Connect Krayin' });
    const hubspot = form([
      field('Name', 'name', { value: 'HubSpot' }),
      field('Access token', 'secrets.access_token', { type: 'password', required: true, autocomplete: 'new-password', hint: 'A private app\'s token (HubSpot → Development → Legacy apps → your app → Auth), with the scopes crm.objects.contacts.read, crm.objects.contacts.write and tickets.' }),
      h('details', {}, h('summary', {}, 'Another API address'),
        field('API URL', 'settings.api_url', { type: 'url', placeholder: 'https://api.hubapi.com', hint: 'Only for a HubSpot test server.' })),
      h('fieldset', {}, h('legend', {}, 'Features'), h('div', { class: 'checks' },
        checkbox('Messages on the timeline', 'settings.sync_messages', true),
        checkbox('Tickets for escalations', 'settings.ticket_creation', true))),
    ], 'Connect HubSpot', async (el) => {
      const settings = { api_url: value(el, 'settings.api_url'), sync_messages: value(el, 'settings.sync_messages'), ticket_creation: value(el, 'settings.ticket_creation') };
      const made = await api('POST', '/api-connectors', { kind: 'hubspot', name: value(el, 'name'), settings: clean(settings), secrets: { access_token: value(el, 'secrets.access_token') } });
      go(`#/connectors/${made.id}`);
    }, { label: 'Connect HubSpot' });
    const back = `${location.origin}${location.pathname}`;
    const hubspotOAuth = form([
      field('Name', 'name', { value: 'HubSpot' }),
      field('App client id', 'client_id', { required: true, hint: 'Your HubSpot app\'s (Development → Apps → your app → Auth), whose redirect URLs include this console\'s address below.' }),
      field('App client secret', 'client_secret', { type: 'password', required: true, autocomplete: 'new-password', hint: 'It refreshes the connection\'s token, and checks the webhooks the app sends here.' }),
      h('p', { class: 'hint' }, 'Redirect URL to add to the app: ', h('code', {}, back)),
      h('div', { class: 'checks' }, checkbox('Companies by the email\'s domain (HubSpot is asked for the companies scopes too)', 'settings.sync_companies', false)),
      h('details', {}, h('summary', {}, 'Another API address'),
        field('API URL', 'settings.api_url', { type: 'url', placeholder: 'https://api.hubapi.com', hint: 'Only for a HubSpot test server (its consent page is served there too).' })),
    ], 'Continue to HubSpot', async (el) => {
      const started = await api('POST', '/api-connector-authorizations', {
        kind: 'hubspot', name: value(el, 'name'), client_id: value(el, 'client_id'), client_secret: value(el, 'client_secret'),
        settings: clean({ api_url: value(el, 'settings.api_url'), sync_companies: value(el, 'settings.sync_companies') }),
      });
      authorizing('HubSpot');
      location.assign(started.authorize_url);
    }, { label: 'Connect HubSpot with OAuth' });
    const salesforceOAuth = form([
      field('Name', 'name', { value: 'Salesforce' }),
      field('My Domain URL', 'settings.instance_url', { type: 'url', required: true, placeholder: 'https://acme.my.salesforce.com', hint: 'Your org\'s address (Setup → My Domain); a sandbox\'s ends .sandbox.my.salesforce.com.' }),
      field('Consumer key', 'client_id', { required: true, hint: 'Of your org\'s external client app (Setup → External Client App Manager → the app → Settings → OAuth Settings), with the scopes api, id and refresh_token, PKCE required, and this console\'s address below as its callback URL.' }),
      field('Consumer secret', 'client_secret', { type: 'password', required: true, autocomplete: 'new-password', hint: 'It refreshes the connection\'s token.' }),
      h('p', { class: 'hint' }, 'Callback URL to add to the app: ', h('code', {}, back)),
      field('A customer becomes', 'settings.customer_object', { type: 'select', value: 'contact', choices: [['contact', 'a Contact'], ['lead', 'a Lead']] }),
    ], 'Continue to Salesforce', async (el) => {
      const started = await api('POST', '/api-connector-authorizations', {
        kind: 'salesforce', name: value(el, 'name'), client_id: value(el, 'client_id'), client_secret: value(el, 'client_secret'),
        settings: clean({ instance_url: value(el, 'settings.instance_url'), customer_object: value(el, 'settings.customer_object') }),
      });
      authorizing('Salesforce');
      location.assign(started.authorize_url);
    }, { label: 'Connect Salesforce with OAuth' });
    const salesforceServer = form([
      field('Name', 'name', { value: 'Salesforce' }),
      field('My Domain URL', 'settings.instance_url', { type: 'url', required: true, placeholder: 'https://acme.my.salesforce.com' }),
      field('Consumer key', 'secrets.client_id', { required: true, hint: 'Of an external client app with the client credentials flow on and a run-as integration user.' }),
      field('Consumer secret', 'secrets.client_secret', { type: 'password', required: true, autocomplete: 'new-password' }),
    ], 'Connect Salesforce', async (el) => {
      const made = await api('POST', '/api-connectors', {
        kind: 'salesforce', name: value(el, 'name'), settings: { instance_url: value(el, 'settings.instance_url') },
        secrets: { client_id: value(el, 'secrets.client_id'), client_secret: value(el, 'secrets.client_secret') },
      });
      go(`#/connectors/${made.id}`);
    }, { label: 'Connect a Salesforce server app' });
    const notice = authorization;
    authorization = null;
    return [
      heading('CRM integrations'),
      notice ? h('p', { class: 'form-error', role: 'alert' }, notice) : null,
      table(['Name', 'CRM', 'Health', 'Waiting', 'Last error'], out.connectors.map((c) => [
        h('a', { href: `#/connectors/${c.id}` }, c.name), c.kind, [health(c), rollout(c)], c.status.backlog, c.status.last_error || '—',
      ]), 'No CRM connected yet'),
      h('section', { class: 'card', 'aria-labelledby': 'k-new' }, h('h2', { id: 'k-new' }, 'Connect Kustomer'), kustomer),
      h('section', { class: 'card', 'aria-labelledby': 'kr-new' }, h('h2', { id: 'kr-new' }, 'Connect Krayin'),
        h('p', { class: 'hint' }, 'Then choose its pipeline and the stages a lead moves through, from Krayin\'s own.'), krayin),
      h('section', { class: 'card', 'aria-labelledby': 'hs-new' }, h('h2', { id: 'hs-new' }, 'Connect HubSpot'),
        h('p', { class: 'hint' }, 'Contacts are found by email (or phone) or made; WhatsApp and SMS land on the contact\'s timeline as communications, email as emails, Messenger and Instagram as notes; escalations open tickets.'), hubspot,
        h('h3', {}, 'Or with OAuth'),
        h('p', { class: 'hint' }, 'You approve the connection on HubSpot\'s own page and come back here; its token is refreshed before it expires.'), hubspotOAuth),
      h('section', { class: 'card', 'aria-labelledby': 'sf-new' }, h('h2', { id: 'sf-new' }, 'Connect Salesforce'),
        h('p', { class: 'hint' }, 'Customers are found by email (or by an External ID field you name) or made, as Contacts or Leads; every message becomes a completed Task on them, escalations open Cases. The connector pauses before your org\'s daily API allowance is spent.'),
        salesforceOAuth,
        h('h3', {}, 'Or a server-to-server app'),
        h('p', { class: 'hint' }, 'The app gets its own tokens with the client credentials flow, as its integration user.'), salesforceServer),
    ];
  }

  /** `object` without the fields left empty. */
  /**
   * The object without its undefined fields.
   * @template T
   * @param {T} object
   * @returns {T}
   */
  const clean = (object) => /** @type {T} */ (Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)));

  async function connector(id) {
    const c = await api('GET', `/api-connectors/${id}`);
    const status = c.status;
    const tested = h('div', { 'aria-live': 'polite' });
    const log = h('div', {});
    const logFilter = field('Show', 'status', { type: 'select', value: '', choices: [['', 'all work'], ['pending', 'pending'], ['failed', 'failed'], ['dead', 'dead'], ['succeeded', 'succeeded'], ['skipped', 'skipped']] });
    const loadLog = async () => {
      const out = await api('GET', `/api-connectors/${id}/sync-log${query({ status: logFilter.querySelector('select').value, limit: 50 })}`);
      fill(log, table(['When', 'Operation', 'Status', 'Attempts', 'CRM id', 'Last error'], out.entries.map((e) => [
        when(e.updated_at), e.operation,
        badge(e.status === 'succeeded' ? 'good' : e.status === 'dead' || e.status === 'failed' ? 'bad' : e.status === 'skipped' ? 'off' : 'warn', e.status),
        e.attempts, e.crm_id || '—', e.last_error || '—',
      ]), 'No work yet'));
    };
    logFilter.querySelector('select').addEventListener('change', () => loadLog().catch((e) => toast(e.message)));
    await loadLog();
    const settingsForm = c.kind === 'krayin' ? await krayinSettings(c)
      : c.kind === 'hubspot' ? hubspotSettings(c)
        : c.kind === 'salesforce' ? salesforceSettings(c)
          : await kustomerSettings(c);
    const budget = c.rate_limit;
    const rolloutForm = form([
      field('Share of customers (%)', 'rollout_percent', {
        type: 'number', min: 1, max: 100, required: true, value: c.rollout_percent,
        hint: 'To re-enable after a rollback, start with a few: the connector works only for this share of your customers, the same ones while you widen it, and records the others\' work as skipped.',
      }),
    ], 'Save rollout', async (el) => {
      const saved = await api('PATCH', `/api-connectors/${id}`, { rollout_percent: number(el, 'rollout_percent') });
      toast(`${saved.name} works for ${saved.rollout_percent}% of customers`);
      route();
    }, { label: 'Rollout' });
    return [
      heading(c.name),
      h('p', {}, `${c.kind} · `, health(c), rollout(c)),
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('h2', {}, 'Waiting'), h('p', { class: 'figure' }, status.backlog), h('p', { class: 'hint' }, status.oldest_pending_at ? `oldest since ${when(status.oldest_pending_at)}` : 'nothing waiting')),
        h('div', { class: 'card' }, h('h2', {}, 'Success, 24 h'), h('p', { class: 'figure' }, percent(status.success_rate)),
          h('p', { class: 'hint' }, `${status.last_24h.succeeded} done, ${status.last_24h.failed} failed, ${status.last_24h.dead} dead, ${status.last_24h.skipped} skipped`)),
        h('div', { class: 'card' }, h('h2', {}, 'Last error'), h('p', {}, status.last_error || 'none'), h('p', { class: 'hint' }, status.last_error_at ? when(status.last_error_at) : '')),
        h('div', { class: 'card' }, h('h2', {}, 'CRM budget'),
          h('p', { class: 'figure' }, budget.per_day ? `${status.calls_today} of ${budget.per_day}` : status.calls_today),
          h('p', { class: 'hint' }, `calls today (UTC); limits: ${[budget.per_second && `${budget.per_second}/s`, budget.per_minute && `${budget.per_minute}/min`, budget.per_day && `${budget.per_day}/day`].filter(Boolean).join(' · ') || 'none'}`),
          h('p', { class: 'hint' }, status.paused_until ? `paused by the CRM until ${when(status.paused_until)}` : `last success ${when(status.last_success_at)}`)),
        status.key_expires_at ? keyExpiry(status.key_expires_at) : null),
      h('div', { class: 'row' },
        action('Test the connection', async () => {
          const out = await api('POST', `/api-connectors/${id}/test`);
          const permissions = out.permissions;
          fill(tested, h('div', { class: 'card' },
            out.ok ? badge('good', 'connected') : badge('bad', out.status ? `refused: HTTP ${out.status}` : 'refused'),
            out.warning ? [' ', badge('warn', 'warning')] : null,
            out.reason ? h('p', {}, out.reason) : null,
            out.warning ? h('p', {}, out.warning) : null,
            out.ok && out.user ? h('p', {}, `The CRM answered as ${out.user.name || out.user.email || 'its user'}.`) : null,
            out.expires_at ? h('p', {}, `The key expires ${when(out.expires_at)}.`) : null,
            permissions ? h('dl', { class: 'facts' },
              h('dt', {}, 'Permissions held'), h('dd', {}, permissions.held.join(', ') || 'none'),
              h('dt', {}, 'Missing'), h('dd', {}, permissions.missing.map((m) => `${m.permission} (${m.roles.join(', ')})`).join('; ') || 'none'),
              h('dt', {}, 'Roles no feature uses'), h('dd', {}, permissions.extra.join(', ') || 'none')) : null,
            out.user && Object.keys(out.user).length ? h('pre', { class: 'mono' }, JSON.stringify(out.user, null, 2)) : null));
        }, { class: 'primary' }),
        action(c.enabled ? 'Disable' : 'Enable', async () => {
          await api('PATCH', `/api-connectors/${id}`, { enabled: !c.enabled });
          route();
        }),
        deleteConnector(c)),
      kpis(status),
      tested,
      // Salesforce's address ends with a secret segment: its settings make one and show it once.
      c.kind === 'salesforce' ? null
        : h('p', {}, 'Point the CRM\'s webhook at ', h('code', {}, location.origin + c.webhook_path), ' ', copyButton(location.origin + c.webhook_path, 'URL')),
      h('section', { class: 'card', 'aria-labelledby': 'c-rollout' }, h('h2', { id: 'c-rollout' }, 'Rollout'), rolloutForm),
      settingsForm,
      c.kind === 'kustomer' ? tryKustomer(c) : null,
      replaceCredential(c),
      h('h2', {}, 'Sync log'), logFilter, log,
      h('div', { class: 'row' }, action('Replay dead and failed work', async () => {
        const out = await api('POST', `/api-connectors/${id}/replay`, { statuses: ['dead', 'failed'] });
        toast(`Work of ${out.contacts} contact(s) queued again`);
        await loadLog();
      })),
    ];
  }

  /** The guide's "Testing the Integration" by hand: Kustomer's customer found by email, then a titled conversation opened on them (the id found is filled in). */
  function tryKustomer(c) {
    /** A Kustomer resource's name (its `attributes.name`), as Kustomer answered it. */
    const nameOf = (resource) => /** @type {{ name?: string }} */ (resource.attributes || {}).name;
    const found = h('div', { 'aria-live': 'polite' });
    const opened = h('div', { 'aria-live': 'polite' });
    const open = form([
      field('Kustomer customer id', 'customer_id', { required: true, hint: 'As the lookup above answers it (24 hex digits).' }),
      field('Title', 'title', { required: true, value: 'Test Support Request' }),
      field('Channel', 'channel', { type: 'select', value: 'chat', choices: ['chat', 'email', 'sms', 'whatsapp', 'facebook', 'instagram', 'voice'].map((n) => [n, n]) }),
    ], 'Open the conversation', async (f) => {
      const out = await api('POST', `/api-connectors/${c.id}/crm-conversations`, { customer_id: value(f, 'customer_id'), title: value(f, 'title'), channel: value(f, 'channel') });
      fill(opened, h('p', {}, `Kustomer opened conversation ${out.conversation.id}: "${nameOf(out.conversation)}".`));
    }, { label: 'Open a Kustomer conversation' });
    const lookup = form([
      field('Email', 'email', { type: 'email', required: true, placeholder: 'test@example.com' }),
    ], 'Find in Kustomer', async (f) => {
      const out = await api('GET', `/api-connectors/${c.id}/crm-customers${query({ email: value(f, 'email') })}`);
      if (!out.customer) {
        fill(found, h('p', {}, 'Kustomer has no customer with that email.'));
        return;
      }
      fill(found, h('p', {}, `Found ${nameOf(out.customer) || 'a customer'} (${out.customer.id}).`));
      open.elements.namedItem('customer_id').value = out.customer.id;
    }, { label: 'Find a Kustomer customer' });
    return h('section', { class: 'card', 'aria-labelledby': 'ctry' }, h('h2', { id: 'ctry' }, 'Try Kustomer'),
      h('p', { class: 'hint' }, 'Asked of Kustomer now; nothing is kept here.'), lookup, found, open, opened);
  }

  /** The CRM key's expiry as its CRM reported it: a warning within the alert rule's default 14 days, and what to do. */
  function keyExpiry(at) {
    const days = Math.floor((new Date(at).getTime() - Date.now()) / 86_400_000);
    const state = days < 0 ? badge('bad', 'expired') : days <= 14 ? badge('warn', `${days} day(s) left`) : badge('good', `${days} days left`);
    return h('div', { class: 'card' }, h('h2', {}, 'API key'), h('p', {}, state), h('p', { class: 'hint' }, `expires ${when(at)}; replace it below before then`));
  }

  /** Every setting of a Krayin connector: its address, sync options, lead defaults, and the pipeline and stages a lead moves through, chosen from Krayin's own. */
  async function krayinSettings(c) {
    let pipelines = null;
    let problem = null;
    try {
      pipelines = (await api('GET', `/api-connectors/${c.id}/pipelines`)).pipelines;
    } catch (error) {
      problem = error.message;
    }
    const settings = c.settings || {};
    const pipelineSelect = pipelines
      ? field('Pipeline', 'settings.pipeline_id', {
        type: 'select', value: settings.pipeline_id ?? (pipelines.find((p) => p.is_default) || {}).id,
        choices: pipelines.map((p) => [p.id, p.name + (p.is_default ? ' (default)' : '')]),
      })
      : field('Pipeline id', 'settings.pipeline_id', { type: 'number', min: 1, value: settings.pipeline_id, hint: 'Empty: Krayin\'s default pipeline.' });
    const stages = h('div', { class: 'stack' });
    const stageFields = [
      ['stage_on_contact_created', 'When a contact is new (the New Lead stage)', '— the pipeline’s first stage —'],
      ['stage_on_conversation_created', 'When a conversation starts', '— leave where it is —'],
      ['stage_on_first_response', 'When an agent first answers', '— leave where it is —'],
      ['stage_on_resolved', 'When the conversation is resolved', '— leave where it is —'],
    ];
    const stageChoices = () => {
      if (!pipelines) {
        fill(stages, stageFields.map(([name, label]) => field(`${label}: stage id`, `settings.${name}`, { type: 'number', min: 1, value: settings[name] })));
        return;
      }
      const pipeline = pipelines.find((p) => String(p.id) === pipelineSelect.querySelector('select').value) || pipelines[0];
      const stageList = pipeline ? pipeline.stages.map((st) => [st.id, st.name]) : [];
      fill(stages, stageFields.map(([name, label, none]) => field(label, `settings.${name}`, { type: 'select', value: settings[name], choices: [['', none], ...stageList] })));
    };
    if (pipelines) pipelineSelect.querySelector('select').addEventListener('change', stageChoices);
    stageChoices();
    const el = form([
      field('API URL', 'settings.base_url', { type: 'url', required: true, value: settings.base_url, hint: 'Where Krayin is installed (…/api/admin, …/api/v1 or bare).' }),
      h('fieldset', {}, h('legend', {}, 'Sync options'), h('div', { class: 'checks' },
        checkbox('Organizations', 'settings.sync_organizations', settings.sync_organizations),
        checkbox('Conversations as activities', 'settings.sync_conversations', settings.sync_conversations),
        checkbox('Messages as activities', 'settings.sync_messages', settings.sync_messages)),
        h('p', { class: 'hint' }, 'The guide\'s advice: start with contacts only, then switch conversations on.')),
      field('Sales owner (user id)', 'settings.user_id', { type: 'number', min: 1, value: settings.user_id, hint: 'The Krayin user new persons and leads belong to (empty: Krayin decides).' }),
      field('Lead source id', 'settings.lead_source_id', { type: 'number', min: 1, value: settings.lead_source_id }),
      field('Lead type id', 'settings.lead_type_id', { type: 'number', min: 1, value: settings.lead_type_id }),
      field('Default lead value', 'settings.default_lead_value', { type: 'number', min: 0, value: settings.default_lead_value }),
      problem ? h('p', { class: 'hint' }, `Krayin's pipelines could not be read (${problem}): give the ids.`) : null,
      pipelineSelect,
      checkbox('Move leads through the pipeline', 'settings.stage_progression', settings.stage_progression),
      stages,
    ], 'Save settings', async (f) => {
      const patch = { base_url: value(f, 'settings.base_url'), stage_progression: value(f, 'settings.stage_progression') };
      for (const name of ['sync_organizations', 'sync_conversations', 'sync_messages']) patch[name] = value(f, `settings.${name}`);
      // An emptied field clears the setting (null), as the API's merge takes it.
      for (const name of ['pipeline_id', 'user_id', 'lead_source_id', 'lead_type_id', 'default_lead_value', ...stageFields.map(([n]) => n)]) patch[name] = number(f, `settings.${name}`) ?? null;
      await api('PATCH', `/api-connectors/${c.id}`, { settings: patch });
      toast('Saved');
      route();
    }, { label: 'Krayin settings' });
    return h('section', { class: 'card', 'aria-labelledby': 'csettings' }, h('h2', { id: 'csettings' }, 'Settings'), el);
  }

  const PRIORITIES = [[1, '1 (none)'], [2, '2 (low)'], [3, '3 (medium)'], [4, '4 (high)'], [5, '5 (urgent)']];

  /** Every setting of a Kustomer connector: where it is, the team new conversations go to (chosen from Kustomer's own), features, priorities, escalation phrases, the hand-off text and the field mapping. */
  async function kustomerSettings(c) {
    let teams = [];
    let problem = null;
    try {
      teams = (await api('GET', `/api-connectors/${c.id}/teams`)).teams;
    } catch (error) {
      problem = error.message;
    }
    const settings = c.settings || {};
    const mapping = settings.field_mapping || {};
    const teamChoices = [['', '— none —'], ...teams.map((t) => [t.id, t.name])];
    if (settings.default_team_id && !teams.some((t) => t.id === settings.default_team_id)) teamChoices.push([settings.default_team_id, settings.default_team_id]);
    const el = form([
      field('Subdomain', 'settings.subdomain', { value: settings.subdomain, placeholder: 'acme', hint: 'acme for acme.kustomerapp.com.' }),
      field('Organization ID', 'settings.organization_id', { value: settings.organization_id }),
      h('details', { open: Boolean(settings.base_url) }, h('summary', {}, 'Another API address'),
        field('API base URL', 'settings.base_url', { type: 'url', value: settings.base_url, hint: 'Instead of the subdomain (empty: the subdomain\'s).' })),
      field('Team for new conversations', 'settings.default_team_id', { type: 'select', value: settings.default_team_id ?? '', choices: teamChoices }),
      problem ? h('p', { class: 'hint' }, `Kustomer's teams could not be read: ${problem}`) : null,
      h('fieldset', {}, h('legend', {}, 'Features'), h('div', { class: 'checks' },
        checkbox('Customer lookup', 'settings.customer_lookup', settings.customer_lookup ?? true),
        checkbox('Conversation sync', 'settings.conversation_sync', settings.conversation_sync ?? true),
        checkbox('Ticket creation', 'settings.ticket_creation', settings.ticket_creation ?? true),
        checkbox('Auto assignment', 'settings.auto_assignment', settings.auto_assignment ?? false))),
      field('Priority of a new conversation', 'settings.default_priority', { type: 'select', value: settings.default_priority ?? 3, choices: PRIORITIES }),
      field('Priority of an escalation', 'settings.escalation_priority', { type: 'select', value: settings.escalation_priority ?? 4, choices: PRIORITIES }),
      field('Escalation phrases', 'settings.escalation_phrases', { type: 'textarea', value: (settings.escalation_phrases || []).join('\n'), hint: 'One a line: a customer who writes one is handed to a person (at most 50, 100 characters each).' }),
      field('Hand-off message', 'settings.handoff_message', { type: 'textarea', value: settings.handoff_message, hint: 'What the customer is told when handed to a person (at most 1,000 characters).' }),
      field('Field mapping (JSON)', 'settings.field_mapping', { type: 'textarea', value: JSON.stringify(mapping, null, 2), hint: 'Our field → Kustomer attribute path: {"customerEmail": "attributes.emails[0].email", "custom_fields.plan": "attributes.custom.planStr"}.' }),
    ], 'Save settings', async (f) => {
      let newMapping;
      try {
        newMapping = JSON.parse(value(f, 'settings.field_mapping') || '{}');
        if (!newMapping || typeof newMapping !== 'object' || Array.isArray(newMapping)) throw new Error('it is not an object');
      } catch (error) {
        throw new ApiError(422, { error: { code: 'validation_failed', field: 'settings.field_mapping', message: `The field mapping is not a JSON object: ${error.message}` } });
      }
      // The API merges objects key by key (RFC 7396): a mapping left out is removed with null.
      for (const name of Object.keys(mapping)) if (!(name in newMapping)) newMapping[name] = null;
      const patch = {
        subdomain: value(f, 'settings.subdomain') ?? null,
        organization_id: value(f, 'settings.organization_id') ?? null,
        base_url: value(f, 'settings.base_url') ?? null,
        default_team_id: value(f, 'settings.default_team_id') ?? null,
        default_priority: number(f, 'settings.default_priority'),
        escalation_priority: number(f, 'settings.escalation_priority'),
        escalation_phrases: (f.elements.namedItem('settings.escalation_phrases').value || '').split('\n').map((p) => p.trim()).filter(Boolean),
        handoff_message: value(f, 'settings.handoff_message') ?? null,
        field_mapping: newMapping,
      };
      for (const name of ['customer_lookup', 'conversation_sync', 'ticket_creation', 'auto_assignment']) patch[name] = value(f, `settings.${name}`);
      await api('PATCH', `/api-connectors/${c.id}`, { settings: patch });
      toast('Saved');
      route();
    }, { label: 'Kustomer settings' });
    return h('section', { class: 'card', 'aria-labelledby': 'csettings' }, h('h2', { id: 'csettings' }, 'Settings'), el);
  }

  /** Every setting of a HubSpot connector: what it writes, the unique property that keeps our customer's id, and where an escalation's ticket goes (checked against HubSpot's pipelines and owners on save). */
  function hubspotSettings(c) {
    const settings = c.settings || {};
    const el = form([
      h('fieldset', {}, h('legend', {}, 'Features'), h('div', { class: 'checks' },
        checkbox('Messages on the timeline', 'settings.sync_messages', settings.sync_messages ?? true),
        checkbox('Tickets for escalations', 'settings.ticket_creation', settings.ticket_creation ?? true),
        checkbox('Companies by the email\'s domain', 'settings.sync_companies', settings.sync_companies ?? false))),
      field('Customer id property', 'settings.customer_id_property', { value: settings.customer_id_property, placeholder: 'crm_edge_customer_id', hint: 'A unique contact property you made in HubSpot: it gets our customer id, and a customer without an email is kept by it (empty: by email, then phone).' }),
      field('Ticket pipeline id', 'settings.ticket_pipeline', { value: settings.ticket_pipeline ?? '0', hint: 'HubSpot → Settings → Objects → Tickets → Pipelines (0 is the account\'s first).' }),
      field('Ticket stage id', 'settings.ticket_stage', { value: settings.ticket_stage ?? '1', hint: 'A stage of that pipeline (1 is "New" in the first).' }),
      field('Ticket priority', 'settings.ticket_priority', { type: 'select', value: settings.ticket_priority ?? 'high', choices: [['low', 'low'], ['medium', 'medium'], ['high', 'high'], ['urgent', 'urgent']] }),
      field('Ticket owner id', 'settings.ticket_owner_id', { value: settings.ticket_owner_id, hint: 'The HubSpot owner new tickets go to (empty: unassigned).' }),
    ], 'Save settings', async (f) => {
      const patch = {
        customer_id_property: value(f, 'settings.customer_id_property') ?? null,
        ticket_pipeline: value(f, 'settings.ticket_pipeline') ?? null,
        ticket_stage: value(f, 'settings.ticket_stage') ?? null,
        ticket_priority: value(f, 'settings.ticket_priority') ?? null,
        ticket_owner_id: value(f, 'settings.ticket_owner_id') ?? null,
      };
      for (const name of ['sync_messages', 'ticket_creation', 'sync_companies']) patch[name] = value(f, `settings.${name}`);
      await api('PATCH', `/api-connectors/${c.id}`, { settings: patch });
      toast('Saved');
      route();
    }, { label: 'HubSpot settings' });
    return h('section', { class: 'card', 'aria-labelledby': 'csettings' }, h('h2', { id: 'csettings' }, 'Settings'), el);
  }

  /** Every setting of a Salesforce connector: what a customer becomes and how they are found, what a message and an escalation become, and how much of the org's daily allowance it may use. */
  function salesforceSettings(c) {
    const settings = c.settings || {};
    const el = form([
      h('p', { class: 'hint' }, `Org ${settings.organization_id || '(known after the connection test)'} at ${settings.instance_url}.`),
      h('fieldset', {}, h('legend', {}, 'Features'), h('div', { class: 'checks' },
        checkbox('Messages as completed Tasks', 'settings.sync_messages', settings.sync_messages ?? true),
        checkbox('Cases for escalations', 'settings.create_cases', settings.create_cases ?? true))),
      field('A customer becomes', 'settings.customer_object', { type: 'select', value: settings.customer_object ?? 'contact', choices: [['contact', 'a Contact'], ['lead', 'a Lead']] }),
      field('External ID field', 'settings.external_id_field', { value: settings.external_id_field, placeholder: 'Chat_Customer_Id__c', hint: 'A custom text field marked External ID and Unique: it gets our customer id and records are upserted by it, so a customer is never made twice (empty: found by email).' }),
      field('Lead company', 'settings.lead_company', { value: settings.lead_company ?? '[not provided]', hint: 'Salesforce requires a Company on a Lead.' }),
      field('Task channel field', 'settings.task_channel_field', { value: settings.task_channel_field, placeholder: 'Chat_Channel__c', hint: 'A custom Task field that gets the channel (whatsapp, email, …).' }),
      field('Task message id field', 'settings.task_message_id_field', { value: settings.task_message_id_field, placeholder: 'Chat_Message_Id__c', hint: 'A Task External ID field: a message sent twice is then one Task.' }),
      field('Case status', 'settings.case_status', { value: settings.case_status ?? 'New' }),
      field('Case priority', 'settings.case_priority', { type: 'number', min: 1, max: 5, value: settings.case_priority ?? 4, hint: 'For an escalation that asks for none, 1 to 5 (5 is highest).' }),
      field('Share of the daily API allowance (%)', 'settings.api_share_percent', { type: 'number', min: 1, max: 100, value: settings.api_share_percent ?? 50, hint: 'The connector pauses once the org has used this share of its calls over the last 24 hours, so your other integrations and people keep the rest.' }),
      field('Session timeout (minutes)', 'settings.session_timeout_minutes', { type: 'number', min: 15, max: 1440, value: settings.session_timeout_minutes ?? 120, hint: 'As Setup › Session Settings says: a token is refreshed five minutes before it runs out.' }),
    ], 'Save settings', async (f) => {
      const patch = {
        customer_object: value(f, 'settings.customer_object'),
        external_id_field: value(f, 'settings.external_id_field') ?? null,
        lead_company: value(f, 'settings.lead_company') ?? null,
        task_channel_field: value(f, 'settings.task_channel_field') ?? null,
        task_message_id_field: value(f, 'settings.task_message_id_field') ?? null,
        case_status: value(f, 'settings.case_status') ?? null,
        case_priority: number(f, 'settings.case_priority') ?? null,
        api_share_percent: number(f, 'settings.api_share_percent') ?? null,
        session_timeout_minutes: number(f, 'settings.session_timeout_minutes') ?? null,
      };
      for (const name of ['sync_messages', 'create_cases']) patch[name] = value(f, `settings.${name}`);
      await api('PATCH', `/api-connectors/${c.id}`, { settings: patch });
      toast('Saved');
      route();
    }, { label: 'Salesforce settings' });
    return h('section', { class: 'card', 'aria-labelledby': 'csettings' }, h('h2', { id: 'csettings' }, 'Settings'), el, outboundAddress(c));
  }

  /** A new address for the org's Outbound Messages: its last segment is a secret made here, shown once. */
  function outboundAddress(c) {
    const shown = h('p', { 'aria-live': 'polite' });
    const el = form([
      h('p', { class: 'hint' }, 'Point the Outbound Messages of your Contact and Case workflow rules or flows at this address (leave Send Session ID off). Salesforce signs nothing, so the address is the secret: it is shown once; a new one replaces it.'),
    ], 'New Outbound Message address', async () => {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      const token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      await api('PATCH', `/api-connectors/${c.id}`, { secrets: { outbound_token: token } });
      fill(shown, 'Endpoint URL: ', h('code', {}, `${location.origin}${c.webhook_path}/${token}`));
    }, { label: 'Outbound Message address' });
    return h('div', {}, h('h3', {}, 'Outbound Messages'), el, shown);
  }

  /** The connector's secrets by kind: the CRM credential first. */
  const CONNECTOR_SECRETS = {
    kustomer: [['api_key', 'API key', 'A new Kustomer API key (org.user and org.permission roles).'], ['webhook_secret', 'Webhook secret', 'The token of the Kustomer webhook pointed here.']],
    hubspot: [['access_token', 'Access token', 'A new HubSpot private app token (after rotating it in HubSpot).'], ['client_secret', 'App client secret', 'The client secret of the app whose webhooks are pointed here.']],
    salesforce: [['client_secret', 'Consumer secret', 'The external client app\'s new consumer secret (after rotating it in Salesforce).']],
    krayin: [['api_token', 'API token', 'A new Krayin API token.'], ['webhook_secret', 'Chatwoot webhook secret', 'The secret of the Chatwoot webhook pointed here.'], ['webhook_token', 'Chatwoot webhook token', 'For a Chatwoot that signs nothing: the URL\'s last segment, at least 32 characters.']],
  };

  /** Replaces the CRM credential (or a webhook secret): only the fields filled in change, the CRM checks the new one as when connecting, and nothing typed is ever shown again. */
  function replaceCredential(c) {
    const names = CONNECTOR_SECRETS[c.kind] || [];
    const el = form([
      h('p', { class: 'hint' }, `Set now: ${(c.secrets_set || []).join(', ') || 'none'}. Fill in only what changes.`),
      names.map(([name, label, hint]) => field(label, `secrets.${name}`, { type: 'password', autocomplete: 'new-password', hint })),
    ], 'Replace', async (f) => {
      const secrets = clean(Object.fromEntries(names.map(([name]) => [name, value(f, `secrets.${name}`)])));
      if (Object.keys(secrets).length === 0) throw new ApiError(422, { error: { code: 'validation_failed', field: `secrets.${names[0][0]}`, message: 'Fill in the credential to replace.' } });
      await api('PATCH', `/api-connectors/${c.id}`, { secrets });
      f.reset();
      toast(`Replaced: ${Object.keys(secrets).join(', ')}`);
    }, { label: 'Replace the credential' });
    return h('section', { class: 'card', 'aria-labelledby': 'ccredential' }, h('h2', { id: 'ccredential' }, 'Replace the credential'), el);
  }

  /** Deletes the connector after a confirm that says what goes with it. */
  function deleteConnector(c) {
    const waiting = c.status.backlog;
    const warning = `Delete ${c.name}? ${waiting} piece(s) of work still waiting will be dropped and never reach ${c.kind}; `
      + 'its sync log and the links to its records are forgotten, and its webhook URL stops working. '
      + `What ${c.kind} already holds stays there. To stop it for a while instead, Disable it.`;
    return action('Delete connector', async () => {
      const out = await api('DELETE', `/api-connectors/${c.id}`);
      toast(`${out.name} deleted: ${out.dropped_work} waiting piece(s) of work dropped`);
      go('#/connectors');
    }, { class: 'danger', confirm: warning });
  }

  async function links(pageId) {
    const [all, accounts] = await Promise.all([api('GET', '/api/dashboard/crm-links/all'), api('GET', '/api-channel-accounts')]);
    const facebookPages = accounts.channel_accounts.filter((a) => a.channel === 'facebook');
    const pageIds = all.pages_data.map((p) => p.page_id);
    const current = pageId || pageIds[0] || (facebookPages[0] || {}).address || '';
    const section = h('div', {});
    if (pageIds.includes(current)) append(section, await linksOfPage(current));
    if (facebookPages.length === 0) {
      return [
        heading('CRM links'),
        h('p', {}, 'CRM links belong to a Facebook page the bot answers on. ',
          h('a', { href: '#/channels' }, 'Add your page as a Facebook channel account'), ' first.'),
      ];
    }
    const add = form([
      field('Page', 'page_id', {
        type: 'select', required: true, value: current,
        choices: facebookPages.map((a) => [a.address, a.name ? `${a.name} (${a.address})` : a.address]),
        hint: 'The Facebook page whose bot uses the link, on the channels chosen below.',
      }),
      h('fieldset', {}, h('legend', {}, 'Channels'), h('div', { class: 'checks' }, LINK_CHANNELS.map((c) => checkbox(c, `channels.${c}`, c === 'facebook'))),
        h('input', { type: 'hidden', name: 'channels' })),
      field('Name', 'name', { required: true, placeholder: 'Products' }),
      field('URL', 'url', { type: 'url', required: true, placeholder: 'https://crm.example.com/api/products' }),
      field('Type', 'type', { type: 'select', value: 'api', choices: [['api', 'API (JSON)'], ['file', 'File (JSON or CSV)'], ['webhook', 'Webhook (the CRM pushes)'], ['database', 'Database export']] }),
      field('API key', 'api_key', { type: 'password', autocomplete: 'new-password', hint: 'Sent as a bearer token when the data is fetched (optional).' }),
      field('Headers', 'headers', { type: 'textarea', placeholder: 'X-API-Key: internal-key-123', hint: 'Sent with every fetch: one a line, Name: value (optional).' }),
      field('Fetch every (minutes)', 'fetch_interval_minutes', { type: 'number', min: 5, max: 1440, value: 30, hint: 'The guide asks for every 30 minutes (5 to 1440).' }),
      field('Description', 'description'),
      holdsFields(null, async (el) => api('POST', '/api/dashboard/crm-links/preview', clean({
        page_id: value(el, 'page_id') || '', url: value(el, 'url'), api_key: value(el, 'api_key'), headers: headerLines(value(el, 'headers')),
        type: /** @type {import('../../../types/api').PreviewIn['type']} */ (value(el, 'type') === 'file' ? 'file' : 'api'),
      }))),
    ], 'Add CRM link', async (el) => {
      const channels = LINK_CHANNELS.filter((c) => value(el, `channels.${c}`));
      await api('POST', '/api/dashboard/crm-links', clean({
        page_id: value(el, 'page_id'), channels, name: value(el, 'name'), url: value(el, 'url'), type: value(el, 'type'),
        api_key: value(el, 'api_key'), headers: headerLines(value(el, 'headers')), fetch_interval_minutes: number(el, 'fetch_interval_minutes'),
        description: value(el, 'description'), is_active: true, holds: holdsOf(el),
      }));
      toast('Link added: its data is being fetched');
      go(`#/links/${encodeURIComponent(value(el, 'page_id'))}`);
    });
    return [
      heading('CRM links'),
      h('p', { class: 'muted' }, `${all.total_crm_links} link(s), ${all.total_active} active. The bot answers from what they hold.`),
      pageIds.length > 1 ? h('p', { class: 'row' }, 'Page: ', pageIds.map((id) => h('a', { href: `#/links/${encodeURIComponent(id)}`, 'aria-current': id === current ? 'page' : undefined }, id))) : null,
      section,
      h('section', { class: 'card', 'aria-labelledby': 'link-new' }, h('h2', { id: 'link-new' }, 'Add a CRM link'), add),
    ];
  }

  /** `Name: value` lines as a headers object; a line without a colon is sent as it is, for the API to refuse. */
  function headerLines(text) {
    if (!text) return undefined;
    const headers = {};
    for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const at = line.indexOf(':');
      if (at < 1) headers[line] = '';
      else headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return headers;
  }

  /** @type {Array<[string, string]>} */
  const KEY_KINDS = [['email', 'an email address'], ['phone', 'a phone number'], ['external_id', 'your CRM\'s customer id'], ['page_scoped_id', 'the Messenger id on the page']];

  /**
   * Whose data a link is: general knowledge, or one record per customer tied by a field of the
   * record, chosen from the fields of the link's first page (`read` returns them; no value of the
   * data is shown). `current`: the link's holds, when it has any.
   * @param {import('../../../types/api').HoldsView | null} current
   * @param {(el: HTMLFormElement) => Promise<import('../../../types/api').PreviewOut>} read
   */
  function holdsFields(current, read) {
    const stated = current && current.type !== 'unstated' ? current.type : '';
    const fieldChoices = current && current.field ? [[current.field, current.field]] : [['', 'Read the data first']];
    const fieldSelect = field('The field that holds the customer\'s key', 'holds.field', { type: 'select', value: current?.field || '', choices: fieldChoices });
    const found = h('p', { class: 'hint', 'aria-live': 'polite' });
    const reader = h('button', { type: 'button' }, 'Read its fields');
    reader.addEventListener('click', async () => {
      const el = /** @type {HTMLFormElement} */ (reader.closest('form'));
      reader.disabled = true;
      try {
        const out = await read(el);
        const select = /** @type {HTMLSelectElement} */ (el.elements.namedItem('holds.field'));
        select.replaceChildren(...out.fields.map((f) => h('option', { value: f.field }, f.key ? `${f.field} (${f.key.replace(/_/g, ' ')}, ${f.records} record(s))` : `${f.field} (${f.records} record(s))`)));
        const type = /** @type {HTMLSelectElement} */ (el.elements.namedItem('holds.type'));
        type.value = out.proposed.type === 'customers' ? 'customers' : 'general';
        if (out.proposed.field) select.value = out.proposed.field;
        if (out.proposed.key) /** @type {HTMLSelectElement} */ (el.elements.namedItem('holds.key')).value = out.proposed.key;
        fill(found, out.proposed.type === 'customers'
          ? `${out.records} record(s): each names a customer by ${out.proposed.field}. Each customer will be answered from their own record only.`
          : `${out.records} record(s): none names a customer. The same for every customer.`);
      } catch (error) {
        fill(found, h('span', { class: 'error' }, error.message));
      } finally {
        reader.disabled = false;
      }
    });
    return h('fieldset', {}, h('legend', {}, 'Whose data it is'),
      field('Holds', 'holds.type', {
        type: 'select', value: stated,
        choices: [['', current ? 'Not said (checked on every fetch)' : 'Let the API check it'], ['customers', 'Customers\' records: each customer sees only their own'], ['general', 'General knowledge: the same for every customer']],
        hint: 'A link whose records name customers is never anyone\'s knowledge until you say whose it is.',
      }),
      fieldSelect,
      field('The key it holds', 'holds.key', { type: 'select', value: current?.key || 'email', choices: KEY_KINDS }),
      h('div', { class: 'row' }, reader), found);
  }

  /**
   * The holds a form says, or nothing when it leaves it unsaid.
   * @param {HTMLFormElement} el
   * @returns {import('../../../types/api').HoldsIn | undefined}
   */
  function holdsOf(el) {
    const type = value(el, 'holds.type');
    if (type === 'general') return { type: 'general' };
    if (type !== 'customers') return undefined;
    return {
      type: 'customers', field: value(el, 'holds.field') || '',
      key: /** @type {import('../../../types/api').HoldsIn['key']} */ (value(el, 'holds.key')),
    };
  }

  /** A link's edit form: every setting, its credentials kept unless replaced (the API keeps a value sent as ***). */
  function editLink(pageId, l) {
    const headers = Object.keys(l.headers).map((name) => `${name}: ***`).join('\n');
    return h('details', { class: 'card' }, h('summary', {}, `Change ${l.name}`),
      form([
        field('Name', 'name', { required: true, value: l.name }),
        field('URL', 'url', { type: 'url', required: true, value: l.url, hint: 'A value shown as *** in the URL is kept only if you leave the URL as it is.' }),
        field('API key', 'api_key', { type: 'password', autocomplete: 'new-password', hint: l.api_key ? 'Leave empty to keep the key; type a new one to rotate it.' : 'Sent as a bearer token (optional).' }),
        l.api_key ? checkbox('Remove the key', 'remove_key', false) : null,
        field('Headers', 'headers', { type: 'textarea', value: headers, hint: 'One a line, Name: value. *** keeps a header\'s value.' }),
        field('Fetch every (minutes)', 'fetch_interval_minutes', { type: 'number', min: 5, max: 1440, value: l.fetch_interval_minutes }),
        holdsFields(l.holds, async () => api('POST', '/api/dashboard/crm-links/preview', { page_id: pageId, id: l.id })),
      ], 'Save changes', async (el) => {
        const url = value(el, 'url');
        const out = await api('PATCH', '/api/dashboard/crm-links', clean({
          page_id: pageId, id: l.id, name: value(el, 'name'), url: url === l.url ? undefined : url,
          api_key: value(el, 'remove_key') ? null : value(el, 'api_key'),
          headers: headerLines(value(el, 'headers')) || {}, fetch_interval_minutes: number(el, 'fetch_interval_minutes'),
          holds: holdsOf(el),
        }));
        toast(out.changed.length ? `Saved: ${out.changed.join(', ').replace(/_/g, ' ')}${out.fetching ? '; fetching again' : ''}` : 'Nothing changed');
        route();
      }, { label: `Change ${l.name}` }));
  }

  async function linksOfPage(pageId) {
    const [out, details] = await Promise.all([
      api('GET', `/api/dashboard/crm-links${query({ page_id: pageId })}`),
      api('GET', `/api/dashboard/rag/documents/details${query({ page_id: pageId, source: 'crm' })}`),
    ]);
    // A link is named by its id: the URL shown masks its credentials (`?api_token=***`).
    const target = (l) => ({ page_id: pageId, id: l.id, channels: l.channels });
    const state = (st) => {
      const kind = { ok: 'good', failing: 'bad', pending: 'warn', not_fetched: 'off' }[st.state] || 'off';
      const progress = st.indexing ? ` · indexing ${st.indexing.records_seen} record(s), ${st.indexing.pieces_embedded} piece(s) embedded` : '';
      const kpi = st.health;
      const fetches = kpi.calls === 0 ? 'no fetch in 24 h'
        : `24 h: uptime ${percent(kpi.uptime)} (target above ${percent(kpi.targets.uptime)}), ${Math.round(kpi.average_response_ms)} ms on average, ${kpi.failed_calls} of ${kpi.calls} fetch(es) failed`;
      return h('span', {}, badge(kind, st.state.replace('_', ' ')), h('br'), h('span', { class: 'hint' }, `${st.records} record(s), ${st.chunks} piece(s)${progress}`),
        h('br'), h('span', { class: 'hint' }, fetches),
        st.last_error ? h('span', { class: 'error' }, h('br'), st.last_error) : null);
    };
    const results = h('div', { 'aria-live': 'polite' });
    const search = form([
      field('Ask as a customer would', 'q', { type: 'search', required: true, placeholder: 'Do you have the blue jacket in medium?' }),
      field('Channel', 'channel', { type: 'select', value: 'facebook', choices: LINK_CHANNELS.map((c) => [c, c]) }),
      field('Mode', 'mode', { type: 'select', value: 'hybrid', choices: [['hybrid', 'hybrid'], ['semantic', 'semantic'], ['keyword', 'keyword']] }),
    ], 'Search', async (el) => {
      const out = await api('GET', `/api/dashboard/rag/search${query({ page_id: pageId, q: value(el, 'q'), channel: value(el, 'channel'), mode: value(el, 'mode'), top_k: 5 })}`);
      fill(results, out.results.length === 0
        ? h('p', { class: 'muted' }, 'Nothing found: the bot would have nothing to say from your CRM.')
        : h('ol', {}, out.results.map((hit) => h('li', {}, h('p', {}, hit.text), h('p', { class: 'hint' }, `${hit.link ? hit.link.name : ''} · score ${hit.score.toFixed(3)}`)))));
    }, { label: 'Search what the bot would find' });
    const unique = out.crm_links.filter((l, i, all) => all.findIndex((other) => other.id === l.id) === i);
    const toConfirm = unique.filter((l) => l.status.holds_check && l.status.holds_check.state === 'names_customers');
    const confirm = toConfirm.length === 0 ? null : h('section', { class: 'card attention', 'aria-labelledby': 'confirm' },
      h('h2', { id: 'confirm' }, 'Links to confirm'),
      h('p', {}, 'Their records name customers but the links do not say whose data it is: the bot uses none of it until you do.'),
      h('ul', {}, toConfirm.map((l) => {
        const proposed = /** @type {import('../../../types/api').HoldsView} */ (l.status.holds_check?.proposed);
        return h('li', {}, h('strong', {}, l.name), ` names customers by ${proposed.field}. `,
          h('span', { class: 'row' },
            action(`Each customer's own record, by ${proposed.field}`, async () => {
              await api('PATCH', '/api/dashboard/crm-links', { page_id: pageId, id: l.id, holds: { type: 'customers', field: proposed.field || '', key: proposed.key } });
              toast('Confirmed: each customer is answered from their own record');
              route();
            }),
            action('The same for every customer', async () => {
              await api('PATCH', '/api/dashboard/crm-links', { page_id: pageId, id: l.id, holds: { type: 'general' } });
              toast('Confirmed as general knowledge');
              route();
            }, { class: 'danger', confirm: `Every customer could be told anything ${l.name} holds, about anyone. Continue?` })));
      })));
    const holdsLabel = (l) => {
      if (l.holds.type === 'customers') return `customers' records, by ${l.holds.field}`;
      if (l.holds.type === 'general') return 'general knowledge';
      const check = l.status.holds_check;
      return check && check.state === 'general' ? 'general knowledge (checked)' : check && check.state === 'names_customers' ? 'not used: confirm whose it is' : 'not used until fetched';
    };
    return [
      h('h2', {}, `Page ${pageId}`),
      confirm,
      table(['Name', 'Channels', 'Active', 'Data', 'Actions'], out.crm_links.map((l) => [
        h('span', {}, l.name, h('br'), h('code', { class: 'hint' }, l.url), h('br'), h('span', { class: 'hint' }, holdsLabel(l))),
        l.channels.join(', '),
        h('label', { class: 'check' }, h('input', {
          type: 'checkbox', checked: l.is_active, 'aria-label': `${l.name} is active`,
          onchange: async (event) => {
            try {
              await api('PUT', '/api/dashboard/crm-links/status', { ...target(l), is_active: event.target.checked });
              toast(event.target.checked ? 'Active' : 'Inactive');
            } catch (error) {
              event.target.checked = !event.target.checked;
              toast(error.message);
            }
          },
        }), l.is_active ? 'on' : 'off'),
        state(l.status),
        h('span', { class: 'row' },
          l.fetchable ? action('Refresh', async () => {
            await api('POST', '/api/dashboard/crm-links/refresh', target(l));
            toast('Fetching again');
          }) : '',
          action('Delete', async () => {
            await api('DELETE', '/api/dashboard/crm-links', target(l));
            toast('Deleted');
            route();
          }, { class: 'danger', confirm: `Delete ${l.name}? The bot forgets its data.` })),
      ]), 'No links on this page'),
      unique.map((l) => editLink(pageId, l)),
      h('section', { class: 'card', 'aria-labelledby': 'docs' }, h('h2', { id: 'docs' }, 'Documents'),
        h('p', { class: 'hint' }, `${details.total_documents} document(s), ${details.total_chunks} piece(s), ${details.total_embeddings} embedded with ${details.embedder}.`),
        details.documents.map((d) => h('details', {}, h('summary', {}, `${d.link.name}: ${d.records} record(s), ${d.chunks} piece(s)`),
          d.chunk_samples.length ? h('ul', {}, d.chunk_samples.map((sample) => h('li', {}, h('span', { class: 'hint' }, `${sample.record} · `), sample.text))) : h('p', { class: 'muted' }, 'Nothing indexed yet')))),
      h('section', { class: 'card', 'aria-labelledby': 'search' }, h('h2', { id: 'search' }, 'Try the search'), search, results),
    ];
  }

  const BOT_CHANNELS = [['messenger', 'Messenger'], ['facebook', 'Comments on posts']];
  /** @type {import('../../../types/api').BotSpan['days']} */
  const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

  async function bot(pageId) {
    const accounts = await api('GET', '/api-channel-accounts');
    const facebookPages = accounts.channel_accounts.filter((a) => a.channel === 'facebook');
    if (facebookPages.length === 0) {
      return [
        heading('Bot'),
        h('p', {}, 'The bot answers on a Facebook page. ', h('a', { href: '#/channels' }, 'Add your page as a Facebook channel account'), ' first.'),
      ];
    }
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const current = pageId || facebookPages[0].address;
    const channel = params.get('channel') === 'facebook' ? 'facebook' : 'messenger';
    const days = params.get('days') === '30' ? 30 : 7;
    const at = (changes) => `#/bot/${encodeURIComponent(current)}${query({ channel, days, ...changes })}`;
    const [out, kpis, log] = await Promise.all([
      api('GET', `/api/dashboard/bots${query({ page_id: current, channel })}`),
      api('GET', `/api/dashboard/bots/kpis${query({ page_id: current, channel, days })}`),
      api('GET', `/api/dashboard/bots/answers${query({ page_id: current, channel, limit: 20 })}`),
    ]);
    const st = out.settings;
    const span = st.hours && st.hours.open[0];
    const settingsForm = form([
      checkbox('The bot answers', 'settings.enabled', st.enabled),
      field('Instructions', 'settings.instructions', { type: 'textarea', value: st.instructions, placeholder: 'Be warm and brief. Talk only about orders and plans.', hint: 'Tone, and what it may talk about. It answers only from your CRM links whatever they say.' }),
      field('Hand-off message', 'settings.handoff_message', { type: 'textarea', required: true, value: st.handoff_message, hint: 'Sent once when the bot passes a conversation to your team.' }),
      field('Hand-off phrases', 'settings.handoff_phrases', { type: 'textarea', value: st.handoff_phrases.join('\n'), hint: 'One a line: a customer who writes one is passed to your team at once.' }),
      field('Most answers per conversation', 'settings.max_answers', { type: 'number', min: 1, max: 50, value: st.max_answers }),
      field('Least search score', 'settings.min_score', { type: 'number', min: 0, max: 1, value: st.min_score, hint: 'Below it the bot hands off rather than guess (0 to 1).' }),
      channel === 'facebook' ? field('Answer comments', 'settings.comment_reply', {
        type: 'select', value: st.comment_reply,
        choices: [['auto', 'Privately where your links hold customers\' records (recommended)'], ['private', 'Privately, in Messenger'], ['public', 'Under the comment, from general knowledge; personal questions privately'], ['both', 'Privately, and under the comment from general knowledge']],
        hint: 'Nothing of a customer\'s own record is ever posted under a post: the answer under it is made from general knowledge only.',
      }) : null,
      channel === 'facebook' ? field('Said under a comment answered privately', 'settings.public_acknowledgement', { value: st.public_acknowledgement, hint: 'Empty: nothing is said under it.' }) : null,
      h('fieldset', {}, h('legend', {}, 'Hours'),
        field('Time zone', 'settings.hours.time_zone', { value: st.hours ? st.hours.time_zone : '', placeholder: 'Europe/Dublin', hint: 'Leave empty to answer at any hour.' }),
        h('div', { class: 'checks' }, DAYS.map((d) => checkbox(d, `day.${d}`, span ? span.days.includes(d) || st.hours.open.some((o) => o.days.includes(d)) : DAYS.indexOf(d) < 5))),
        field('From', 'from', { type: 'time', value: span ? span.from : '09:00' }),
        field('To', 'to', { type: 'time', value: span ? span.to : '18:00' })),
    ], 'Save bot', async (el) => {
      const zone = value(el, 'settings.hours.time_zone');
      const openDays = DAYS.filter((d) => value(el, `day.${d}`));
      const phrases = (value(el, 'settings.handoff_phrases') || '').split('\n').map((p) => p.trim()).filter(Boolean);
      await api('PUT', '/api/dashboard/bots', {
        page_id: current, channel,
        settings: clean({
          enabled: Boolean(value(el, 'settings.enabled')),
          instructions: value(el, 'settings.instructions') || '',
          handoff_message: value(el, 'settings.handoff_message'),
          handoff_phrases: phrases,
          max_answers: number(el, 'settings.max_answers'),
          min_score: number(el, 'settings.min_score'),
          comment_reply: channel === 'facebook' ? /** @type {import('../../../types/api').BotSettingsIn['comment_reply']} */ (value(el, 'settings.comment_reply')) : undefined,
          public_acknowledgement: channel === 'facebook' ? value(el, 'settings.public_acknowledgement') || '' : undefined,
          hours: zone ? { time_zone: zone, open: [{ days: openDays, from: value(el, 'from') || '', to: value(el, 'to') || '' }] } : null,
        }),
      });
      toast('Bot saved');
      go(at({}));
    });
    const answer = h('div', { 'aria-live': 'polite' });
    // The customer to ask as, picked by name or email: the options are the API's matches.
    const picked = new Map();
    const pickList = h('datalist', { id: 'bot-customers' });
    const customerField = field('As customer (name or email)', 'customer', { placeholder: 'Ann Murphy or ann@example.com', hint: 'Their own CRM records become candidates; without one, only general knowledge.' });
    const customerInput = /** @type {HTMLInputElement} */ (customerField.querySelector('input'));
    customerInput.setAttribute('list', 'bot-customers');
    let typing;
    customerInput.addEventListener('input', () => {
      clearTimeout(typing);
      const typed = customerInput.value.trim();
      if (typed.length < 2 || picked.has(typed)) return;
      typing = setTimeout(async () => {
        try {
          const out = await api('GET', `/api/dashboard/bots/customers${query({ q: typed })}`);
          pickList.replaceChildren(...out.customers.map((c) => {
            const label = c.email ? `${c.name || c.email} <${c.email}>` : (c.name || c.id);
            picked.set(label, c.id);
            return h('option', { value: label });
          }));
        } catch {
          // The picker only suggests: a failed read leaves the list as it was.
        }
      }, 250);
    });
    const tryForm = form([
      field('Question', 'question', { type: 'textarea', required: true, placeholder: 'Where is my order?' }),
      customerField, pickList,
    ], 'Ask the bot', async (el) => {
      const typed = value(el, 'customer');
      if (typed && !picked.has(typed)) throw new ApiError(422, { error: { message: 'Pick a customer from the list (type the start of a name, or an email)', field: 'customer' } });
      const turn = await api('POST', '/api/dashboard/bots/try', clean({ page_id: current, channel, question: value(el, 'question') || '', customer_id: typed ? picked.get(typed) : undefined }));
      fill(answer, h('div', { class: 'card' },
        h('p', {}, badge(turn.action === 'reply' ? 'good' : turn.action === 'handoff' ? 'warn' : 'off', turn.action), turn.reason ? ` ${turn.reason.replace(/_/g, ' ')}` : ''),
        turn.public_text ? h('p', {}, h('strong', {}, 'Under the post, for everyone: '), turn.public_text) : null,
        turn.text ? h('p', {}, h('strong', {}, channel === 'facebook' ? 'Privately, to the commenter: ' : 'In Messenger: ')) : null,
        turn.text ? h('blockquote', {}, turn.text) : null,
        turn.refusals.length ? h('p', { class: 'hint' }, `Refused, as no fact it was given holds them: ${turn.refusals.map((r) => `${r.kind} ${r.value}`).join(', ')}`) : null,
        h('p', { class: 'hint' }, `${turn.model || 'no model asked'} · ${turn.generator_ms ?? 0} ms to write · ${turn.total_ms} ms in all`),
        turn.pieces.length ? h('ul', {}, turn.pieces.map((p) => h('li', { class: 'hint' }, `${p.kind} · ${p.record} · score ${p.score.toFixed(3)}${p.used ? ' · used' : ''}`))) : null));
    }, { label: 'Ask as a customer would' });
    return [
      heading('Bot'),
      h('p', { class: 'muted' }, `It answers from ${out.active_links} CRM link(s) active on ${channel}: each customer only from their own records and your general knowledge, and passes to your team when it cannot.`),
      facebookPages.length > 1 ? h('p', { class: 'row' }, 'Page: ', facebookPages.map((a) => h('a', { href: `#/bot/${encodeURIComponent(a.address)}${query({ channel })}`, 'aria-current': a.address === current ? 'page' : undefined }, a.name || a.address))) : null,
      h('p', { class: 'row' }, 'Channel: ', BOT_CHANNELS.map(([c, name]) => h('a', { href: at({ channel: c }), 'aria-current': c === channel ? 'page' : undefined }, name))),
      h('section', { class: 'card', 'aria-labelledby': 'bot-kpis' }, h('h2', { id: 'bot-kpis' }, `Last ${days} days`),
        h('p', { class: 'row' }, h('a', { href: at({ days: 7 }), 'aria-current': days === 7 ? 'page' : undefined }, '7 days'), h('a', { href: at({ days: 30 }), 'aria-current': days === 30 ? 'page' : undefined }, '30 days')),
        table(['Measure', 'Value'], [
          ['Answered', String(kpis.answered)],
          ['Handed off', String(kpis.handed_off)],
          ['Answered, no person needed after', String(kpis.answered_without_person)],
          ['Left to people (outside hours, with your team)', String(kpis.silent)],
          ['Time to answer', kpis.time_to_answer_ms.p50 === null ? '—' : `${kpis.time_to_answer_ms.p50} ms median, ${kpis.time_to_answer_ms.p95} ms at the 95th percentile`],
        ], 'Nothing yet', 'The bot\'s KPIs')),
      h('section', { class: 'card', 'aria-labelledby': 'bot-settings' }, h('h2', { id: 'bot-settings' }, 'Settings'), settingsForm),
      h('section', { class: 'card', 'aria-labelledby': 'bot-try' }, h('h2', { id: 'bot-try' }, 'Try it'), tryForm, answer),
      h('h2', {}, 'Log'),
      table(['When', 'Question', 'What it did', 'Answer'], log.answers.map((t) => [
        h('span', { class: 'hint' }, t.created_at.replace('T', ' ').slice(0, 19), t.is_try ? ' (try)' : ''),
        t.question,
        h('span', {}, badge(t.action === 'reply' ? 'good' : t.action === 'handoff' ? 'warn' : 'off', t.action), t.reason ? h('span', { class: 'hint' }, ` ${t.reason.replace(/_/g, ' ')}`) : null,
          h('br'), h('span', { class: 'hint' }, `${t.pieces.filter((p) => p.used).length} of ${t.pieces.length} piece(s) used · ${t.total_ms} ms`)),
        h('span', {}, t.public_text ? h('span', {}, h('span', { class: 'hint' }, 'Under the post: '), t.public_text, h('br')) : null,
          t.text || (t.public_text ? '' : '—'),
          t.refusals.length ? h('span', { class: 'hint' }, h('br'), `refused: ${t.refusals.map((r) => r.kind).join(', ')}`) : null),
      ]), 'Nothing yet: the bot has not answered on this channel', 'The bot\'s turns'),
    ];
  }

  async function analytics() {
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const days = Math.min(Math.max(Number(params.get('days')) || 14, 1), 31);
    const today = new Date();
    today.setUTCHours(0, 0, 0, 0);
    const end = new Date(today.getTime() + 86400000);
    const start = new Date(end.getTime() - days * 86400000);
    const whole = await api('GET', `/api-crm-analytics${query({ from: start.toISOString(), to: end.toISOString() })}`);
    const dayStarts = Array.from({ length: days }, (_, i) => new Date(start.getTime() + i * 86400000));
    const perDay = [];
    for (let i = 0; i < dayStarts.length; i += 4) {
      perDay.push(...await Promise.all(dayStarts.slice(i, i + 4).map((from) => api('GET', `/api-crm-analytics${query({ from: from.toISOString(), to: new Date(from.getTime() + 86400000).toISOString() })}`))));
    }
    const label = (date) => date.toISOString().slice(5, 10);
    const series = (pick) => dayStarts.map((date, i) => ({ label: label(date), value: pick(perDay[i]) }));
    const syncRate = (report) => {
      const done = report.sync.reduce((sum, c) => sum + c.succeeded, 0);
      const tried = report.sync.reduce((sum, c) => sum + c.succeeded + c.failed + c.dead, 0);
      return tried ? done / tried : null;
    };
    const rateFormat = (v) => `${Math.round(v * 100)} %`;
    return [
      heading('Analytics'),
      h('p', { class: 'row' }, 'Range: ', [7, 14, 30].map((n) => h('a', { href: `#/analytics?days=${n}`, 'aria-current': n === days ? 'page' : undefined }, `${n} days`)),
        h('span', { class: 'hint' }, `${start.toISOString().slice(0, 10)} to ${today.toISOString().slice(0, 10)}, UTC`)),
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('h2', {}, 'Conversations'), h('p', { class: 'figure' }, whole.conversations)),
        h('div', { class: 'card' }, h('h2', {}, 'Escalation rate'), h('p', { class: 'figure' }, percent(whole.escalations.rate)), h('p', { class: 'hint' }, `${whole.escalations.count} escalated`)),
        h('div', { class: 'card' }, h('h2', {}, 'First response'), h('p', { class: 'figure' }, seconds(whole.first_response.p50_seconds)), h('p', { class: 'hint' }, `median; 90 % within ${seconds(whole.first_response.p90_seconds)}`)),
        h('div', { class: 'card' }, h('h2', {}, 'Resolution'), h('p', { class: 'figure' }, seconds(whole.resolution.p50_seconds)), h('p', { class: 'hint' }, `median; 90 % within ${seconds(whole.resolution.p90_seconds)}`)),
        h('div', { class: 'card' }, h('h2', {}, 'CSAT'), h('p', { class: 'figure' }, whole.satisfaction.average === null ? '—' : whole.satisfaction.average.toFixed(2)), h('p', { class: 'hint' }, `${whole.satisfaction.count} rating(s)`)),
        h('div', { class: 'card' }, h('h2', {}, 'Sync success'), h('p', { class: 'figure' }, percent(syncRate(whole))), h('p', { class: 'hint' }, 'target above 99 %'))),
      whole.truncated ? h('p', { class: 'form-error' }, 'This range holds more than the report reads at once: the figures cover its first part.') : null,
      chart('Conversations', series((r) => r.conversations), { bars: true, least: 10 }),
      chart('Escalation rate', series((r) => r.escalations.rate), { max: 1, format: rateFormat }),
      chart('First response, median', series((r) => r.first_response.p50_seconds), { format: seconds, least: 60 }),
      chart('Resolution, median', series((r) => r.resolution.p50_seconds), { format: seconds, least: 3600 }),
      chart('CSAT, average', series((r) => r.satisfaction.average), { max: 5, format: (v) => v.toFixed(1) }),
      chart('Sync success', series(syncRate), { max: 1, format: rateFormat }),
      h('h2', {}, 'Agents'),
      table(['Agent', 'Conversations', 'Resolved', 'Resolved a day', 'First response (median)', 'Resolution (median)'], whole.agents.map((a) => [
        a.assignee, a.conversations, a.resolved, (a.resolved / days).toFixed(1), seconds(a.first_response.p50_seconds), seconds(a.resolution.p50_seconds),
      ]), 'No assigned conversations in this range'),
    ];
  }

  const AUDIT_HEADERS = ['When', 'Who', 'What', 'On', 'Detail', 'From'];

  async function audit() {
    const rows = h('tbody', { role: 'rowgroup' });
    const more = h('div', {});
    const load = async (before) => {
      const out = await api('GET', `/api-audit-log${query({ limit: 50, before })}`);
      append(rows, out.entries.map((e) => row(AUDIT_HEADERS, [
        when(e.at), h('code', {}, e.actor), e.action,
        e.target.id ? h('code', {}, e.target.id) : '—',
        Object.keys(e.detail).length ? h('code', {}, JSON.stringify(e.detail)) : '—',
        e.client_ip || '—',
      ])));
      fill(more, out.next_cursor ? action('Older entries', () => load(out.next_cursor)) : h('p', { class: 'muted' }, 'That is everything.'));
    };
    await load();
    return [
      heading('Audit log'),
      h('p', { class: 'muted' }, 'Who did what to your keys, secrets, accounts and integrations: the operator (admin), a key by its prefix, or a console session.'),
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Audit log' },
        h('table', { role: 'table' },
          h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' }, AUDIT_HEADERS.map((t) => h('th', { scope: 'col', role: 'columnheader' }, t)))), rows)),
      more,
    ];
  }

  // ---- routing ------------------------------------------------------------------------------

  /** Shows the page the address names. Focus moves to its heading when the reader went there
   * (not on the first load, where the skip link comes first). */
  /** Each showing of a page; a page that finishes loading after another was asked for is dropped. */
  let showing = 0;

  async function route(event) {
    const shown = ++showing;
    const main = document.getElementById('main');
    const [name, arg] = (location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview').split('/');
    const page = pages[name === 'webhooks' && arg ? 'webhook' : name === 'connectors' && arg ? 'connector' : name] || overview;
    const section = name in pages ? name : 'overview';
    for (const link of document.querySelectorAll('nav a')) {
      if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    document.getElementById('nav').classList.remove('open');
    document.getElementById('menu').setAttribute('aria-expanded', 'false');
    fill(main, h('p', { class: 'loading' }, 'Loading…'));
    try {
      const content = await page(arg ? decodeURIComponent(arg) : undefined);
      if (shown !== showing) return;
      fill(main, content);
    } catch (error) {
      if (!session || shown !== showing) return;
      fill(main, h('h1', { tabindex: -1 }, 'This page could not be loaded'), h('p', { class: 'form-error' }, error.message));
    }
    const title = main.querySelector('h1');
    document.title = `${title ? title.textContent : 'Console'} · crm-edge`;
    if (title && event !== 'first load') title.focus();
  }

  /** Shows `hash`, or shows it again when it is already the page shown. */
  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function signedOut() {
    session = null;
    document.getElementById('sign-out').hidden = true;
    document.getElementById('business').textContent = '';
    fill(document.getElementById('main'), 
      h('h1', { tabindex: -1 }, 'Signed out'),
      h('p', {}, 'Open a console link to sign in. A link comes from your API key (POST /api-console-links) or from your platform\'s operator; it works once, for 15 minutes.'));
  }

  /** Why the last OAuth authorisation did not connect, shown once on the CRM integrations page. */
  let authorization = null;

  /** Which CRM's consent page the browser went to (this tab only), to name it when it comes back. */
  const AUTHORIZING = 'crm-edge-authorizing';
  const authorizing = (crm) => sessionStorage.setItem(AUTHORIZING, crm);

  /** Finishes an OAuth authorisation the CRM's consent page sent the browser back with (`?code=&state=`,
   * or `?error=` when the person declined): the connector's page, or why not on the integrations'. */
  async function authorizationReturned() {
    const back = new URLSearchParams(location.search);
    const state = back.get('state');
    if (!state || !(back.has('code') || back.has('error'))) return;
    history.replaceState(null, '', `${location.pathname}#/connectors`);
    const crm = sessionStorage.getItem(AUTHORIZING) === 'Salesforce' ? 'Salesforce' : 'HubSpot';
    sessionStorage.removeItem(AUTHORIZING);
    if (back.has('error')) {
      // Fixed words only: anyone can send a link with an `error_description` of their choosing.
      authorization = back.get('error') === 'access_denied'
        ? `${crm} did not connect: the authorisation was declined on ${crm}'s page.`
        : `${crm} did not connect: its consent page answered an error. Start again with Connect ${crm}.`;
      return;
    }
    try {
      const made = await api('POST', '/api-connector-authorizations/complete', { state, code: back.get('code') || '' });
      history.replaceState(null, '', `${location.pathname}#/connectors/${made.id}`);
      toast(`${made.name} connected`);
    } catch (error) {
      authorization = `The connection was not made: ${error.message}`;
    }
  }

  async function start() {
    const menu = document.getElementById('menu');
    menu.addEventListener('click', () => {
      const nav = document.getElementById('nav');
      const open = nav.classList.toggle('open');
      menu.setAttribute('aria-expanded', String(open));
    });
    document.getElementById('sign-out').addEventListener('click', async () => {
      try {
        await api('POST', '/console/sign-out');
      } finally {
        signedOut();
      }
    });
    try {
      session = await api('GET', '/console/session');
    } catch {
      signedOut();
      return;
    }
    document.getElementById('business').textContent = session.business.name;
    document.getElementById('sign-out').hidden = false;
    await authorizationReturned();
    window.addEventListener('hashchange', route);
    await route('first load');
  }

  document.addEventListener('DOMContentLoaded', start);
})();
