// The embedded inbox: loads the customer's timeline, polls for new messages with a cursor,
// and sends replies when the token's scope allows. No framework, no third-party code.
'use strict';

(function () {
  const POLL_MS = 4000;
  // Attachment links are signed for 15 minutes; the timeline is reloaded before they lapse.
  const RELOAD_LINKS_MS = 10 * 60 * 1000;
  const CHANNEL_NAMES = {
    whatsapp: 'WhatsApp', email: 'Email', sms: 'SMS', facebook: 'Messenger', instagram: 'Instagram',
  };
  const STATUS_NAMES = {
    queued: 'Sending…', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not delivered',
  };

  const token = new URLSearchParams(location.search).get('token') || '';
  const $ = (id) => document.getElementById(id);
  const list = $('messages');
  const timeline = $('timeline');
  const form = $('reply');
  const text = $('reply-text');
  const select = $('reply-channel');
  const send = $('reply-send');

  let cursor = null;
  let stopped = false;
  let lastDay = null;
  let linksLoadedAt = 0;
  const shown = new Map(); // message id -> its <li>
  const pending = new Set(); // ids of our replies still queued
  const channelsSeen = new Set();

  const when = (iso) => new Date(String(iso).replace(/(\.\d{3})\d+/, '$1'));
  const dayLabel = (date) => {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === today.toDateString()) return 'Today';
    if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return date.toLocaleDateString(undefined, {
      weekday: 'short', day: 'numeric', month: 'short',
      year: date.getFullYear() === today.getFullYear() ? undefined : 'numeric',
    });
  };
  const size = (bytes) => bytes < 1024 ? bytes + ' B'
    : bytes < 1048576 ? Math.round(bytes / 1024) + ' KB' : (bytes / 1048576).toFixed(1) + ' MB';

  function el(tag, className, textContent) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (textContent !== undefined) node.textContent = textContent;
    return node;
  }

  async function call(path, options) {
    const response = await fetch(path, Object.assign({ cache: 'no-store', referrerPolicy: 'no-referrer' }, options, {
      headers: Object.assign({ authorization: 'Bearer ' + token }, (options && options.headers) || {}),
    }));
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { status: response.status, body };
  }

  function notice(message, isError) {
    const node = $('notice');
    node.hidden = !message;
    node.textContent = message || '';
    node.classList.toggle('error', !!isError);
  }

  // A refused token ends the session: no more polling, no replies, a clear reason.
  function end(status, body) {
    stopped = true;
    $('live').classList.add('offline');
    $('live').textContent = 'Offline';
    const reason = body && body.error && body.error.message ? body.error.message : 'this link no longer works';
    notice('The inbox stopped updating: ' + reason + '. Open the customer again in your CRM to continue.', true);
    form.querySelectorAll('select, textarea, button').forEach((node) => { node.disabled = true; });
  }

  function nearBottom() {
    return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
  }

  function statusLine(message) {
    if (message.direction !== 'outbound') return null;
    let label = STATUS_NAMES[message.status] || message.status;
    if (message.status === 'failed' && message.status_reason) label += ': ' + message.status_reason;
    return label;
  }

  function render(message) {
    const date = when(message.created_at);
    const item = el('li', 'msg ' + message.direction + (message.status === 'failed' ? ' failed' : ''));
    item.dataset.id = message.id;
    const channel = CHANNEL_NAMES[message.channel] || message.channel;
    const who = message.direction === 'inbound' ? 'Customer' : 'You';

    const meta = el('div', 'meta');
    meta.appendChild(el('span', 'badge ' + message.channel, channel));
    const time = el('time', null, date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' }));
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString();
    meta.appendChild(time);
    item.appendChild(meta);

    const bubble = el('div', 'bubble', message.content);
    bubble.setAttribute('aria-label', who + ' on ' + channel + ' at ' + date.toLocaleString() + ': ' + (message.content || 'attachment'));
    item.appendChild(bubble);

    if (message.attachments && message.attachments.length) {
      const files = el('div', 'files');
      for (const file of message.attachments) {
        const link = el('a', file.preview ? 'image' : 'file');
        link.href = file.url;
        link.rel = 'noopener noreferrer';
        link.target = '_blank';
        if (file.preview) {
          const image = el('img');
          image.src = file.url;
          image.alt = file.filename;
          image.loading = 'lazy';
          link.appendChild(image);
          link.setAttribute('aria-label', 'Open image ' + file.filename);
        } else {
          link.setAttribute('download', file.filename);
          link.appendChild(el('span', 'name', file.filename));
          link.appendChild(el('span', 'size', size(file.size)));
          link.setAttribute('aria-label', 'Download ' + file.filename + ', ' + size(file.size));
        }
        files.appendChild(link);
      }
      item.appendChild(files);
    }
    const line = statusLine(message);
    if (line) item.appendChild(el('p', 'status', line));
    if (message.direction === 'outbound' && message.status === 'queued') pending.add(message.id);
    else pending.delete(message.id);
    return { item, day: dayLabel(date), date };
  }

  function add(messages, announce) {
    const stick = nearBottom();
    for (const message of messages) {
      if (shown.has(message.id)) { update(message); continue; }
      const { item, day } = render(message);
      if (day !== lastDay) {
        const divider = el('li', 'day', day);
        divider.setAttribute('role', 'separator');
        list.appendChild(divider);
        lastDay = day;
      }
      list.appendChild(item);
      shown.set(message.id, item);
      channelsSeen.add(message.channel);
      if (announce && message.direction === 'inbound') {
        $('announcer').textContent = 'New ' + (CHANNEL_NAMES[message.channel] || message.channel) +
          ' message from the customer: ' + (message.content || 'attachment');
      }
    }
    $('empty').hidden = shown.size > 0;
    if (messages.length && (stick || !announce)) timeline.scrollTop = timeline.scrollHeight;
    else if (messages.length) $('jump').hidden = false;
  }

  function update(message) {
    const old = shown.get(message.id);
    if (!old) return;
    const { item } = render(message);
    old.replaceWith(item);
    shown.set(message.id, item);
  }

  function summarise() {
    const names = [...channelsSeen].map((channel) => CHANNEL_NAMES[channel] || channel);
    $('channels-summary').textContent = names.length ? names.join(' · ') : 'No conversations yet';
  }

  function setUpReply(reply) {
    if (!reply) return;
    form.hidden = false;
    select.replaceChildren();
    for (const channel of reply.channels) {
      const option = el('option', null, CHANNEL_NAMES[channel] || channel);
      option.value = channel;
      option.selected = channel === reply.default_channel;
      select.appendChild(option);
    }
    if (!reply.channels.length) {
      select.appendChild(el('option', null, 'No channel'));
      [select, text, send].forEach((node) => { node.disabled = true; });
      text.placeholder = 'This customer cannot be reached from here yet';
    }
  }

  async function load() {
    const { status, body } = await call('/embed/api/timeline');
    if (status !== 200) return end(status, body);
    $('customer-name').textContent = body.customer.name;
    $('avatar').textContent = body.customer.name.trim().split(/\s+/).slice(0, 2).map((w) => w[0]).join('').toUpperCase();
    document.title = body.customer.name + ' · Conversations';
    list.replaceChildren();
    shown.clear();
    lastDay = null;
    add(body.messages, false);
    summarise();
    setUpReply(body.reply);
    cursor = body.next_cursor;
    linksLoadedAt = Date.now();
  }

  async function poll() {
    if (stopped) return;
    try {
      if (Date.now() - linksLoadedAt > RELOAD_LINKS_MS) {
        await reloadLinks();
      }
      let more = true;
      while (more && !stopped) {
        const query = new URLSearchParams({ after: cursor });
        if (pending.size) query.set('pending', [...pending].join(','));
        const { status, body } = await call('/embed/api/timeline?' + query);
        if (status !== 200) {
          if (status === 401 || status === 403 || status === 404) return end(status, body);
          throw new Error('status ' + status);
        }
        body.updated.forEach(update);
        add(body.messages, true);
        if (body.messages.length) summarise();
        cursor = body.next_cursor;
        more = body.has_more;
      }
      $('live').classList.remove('offline');
      $('live').textContent = 'Live';
      if (!$('notice').classList.contains('error')) notice('');
    } catch (_) {
      $('live').classList.add('offline');
      $('live').textContent = 'Reconnecting…';
    } finally {
      if (!stopped) setTimeout(poll, POLL_MS);
    }
  }

  // Fresh signed links for everything shown, without losing the reader's place.
  async function reloadLinks() {
    const { status, body } = await call('/embed/api/timeline');
    if (status !== 200) return;
    body.messages.forEach(update);
    linksLoadedAt = Date.now();
  }

  async function submit(event) {
    event.preventDefault();
    const content = text.value;
    if (!content.trim()) { text.focus(); return; }
    send.disabled = true;
    notice('');
    try {
      const { status, body } = await call('/embed/api/reply', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ channel: select.value, content }),
      });
      if (status === 202) {
        text.value = '';
        grow();
        add([body.message], false);
        timeline.scrollTop = timeline.scrollHeight;
      } else if (status === 401 || status === 403 || status === 404) {
        end(status, body);
      } else {
        notice((body && body.error && body.error.message) || 'The reply could not be sent; try again.', true);
      }
    } catch (_) {
      notice('The reply could not be sent: no connection. Try again.', true);
    } finally {
      if (!stopped) send.disabled = false;
      text.focus();
    }
  }

  function grow() {
    text.style.height = 'auto';
    text.style.height = Math.min(text.scrollHeight + 2, 140) + 'px';
  }

  form.addEventListener('submit', submit);
  text.addEventListener('input', grow);
  text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  timeline.addEventListener('scroll', () => { if (nearBottom()) $('jump').hidden = true; });
  $('jump').addEventListener('click', () => {
    timeline.scrollTop = timeline.scrollHeight;
    $('jump').hidden = true;
    timeline.focus();
  });

  load().then(() => { if (!stopped) setTimeout(poll, POLL_MS); }, () => {
    notice('The conversations could not be loaded. Check your connection and reload.', true);
  });
})();
