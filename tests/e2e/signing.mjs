// How each channel provider signs its webhooks, written from the providers' documentation, so
// the end-to-end tests can send what Meta, Twilio and Mailgun would send.

import { createHmac } from 'node:crypto';

/** Meta: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`. */
export function metaSignature(appSecret, body) {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

/**
 * Twilio: `X-Twilio-Signature` = base64 HMAC-SHA1(auth token, the full URL called, then every
 * POST parameter sorted by name, as name followed by value).
 */
export function twilioSignature(authToken, url, params) {
  const sorted = Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = sorted.reduce((signed, [name, value]) => signed + name + value, url);
  return createHmac('sha1', authToken).update(text).digest('base64');
}

/** Mailgun: `signature` = hex HMAC-SHA256(signing key, timestamp + token). */
export function mailgunSignature(signingKey, timestamp, token) {
  return createHmac('sha256', signingKey).update(`${timestamp}${token}`).digest('hex');
}

/** A form body as Twilio and Mailgun post it (application/x-www-form-urlencoded). */
export function formBody(params) {
  return new URLSearchParams(params).toString();
}
