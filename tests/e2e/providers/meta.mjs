// Meta's send APIs as a local server: the WhatsApp Cloud API and the Messenger Platform's Send
// API (which Instagram shares), both `POST /{version}/{sender id}/messages` with the account's
// access token as a bearer token and a JSON body (a page's private reply to a comment names the
// comment as `recipient.comment_id`), and a page's public reply to a comment,
// `POST /{version}/{comment id}/comments` with `message`; errors in the Graph API's error shape.

import { randomId, startProviderServer } from './server.mjs';

export const GRAPH_VERSION = 'v21.0';

/** A WhatsApp Cloud API webhook notification for the business number `phoneNumberId`, its
 * `value` carrying `contacts`, `messages` and/or `statuses` as Meta sends them. */
export function whatsappNotification(phoneNumberId, value) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'WABA-ID',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: phoneNumberId },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

/** `accessTokens`: sender id -> the token its account must present. */
export function startMeta(accessTokens) {
  return startProviderServer({
    name: 'meta',
    route(method, path) {
      const message = new RegExp(`^/${GRAPH_VERSION}/(\\d+)/messages$`).exec(path);
      const comment = new RegExp(`^/${GRAPH_VERSION}/(\\d+_\\d+)/comments$`).exec(path);
      if (method !== 'POST') return null;
      if (message) return { senderId: message[1] };
      return comment ? { commentId: comment[1] } : null;
    },
    authorized(headers, { senderId }) {
      // A reply under a comment names no account in its path: any page's token is taken.
      const tokens = senderId === undefined ? [...accessTokens.values()] : [accessTokens.get(senderId)];
      return tokens.some((token) => token !== undefined && headers.authorization === `Bearer ${token}`);
    },
    async parse(raw) {
      const body = JSON.parse(raw.toString('utf8'));
      const recipient = body.messaging_product === 'whatsapp' ? body.to : body.recipient?.id ?? body.recipient?.comment_id;
      return { recipient, body };
    },
    answer(step, request) {
      const whatsapp = request.body.messaging_product === 'whatsapp';
      const graphError = (status, error, headers = {}) => ({
        status,
        headers,
        body: { error: { type: 'OAuthException', fbtrace_id: `A${randomId(22)}`, ...error } },
      });
      switch (step) {
        case 'ok':
        case 'slow':
          if (request.params.commentId) return { status: 200, body: { id: `${request.params.commentId.split('_')[0]}_${randomId(16).replace(/\D/g, '7')}` } };
          return whatsapp
            ? {
                status: 200,
                body: {
                  messaging_product: 'whatsapp',
                  contacts: [{ input: request.body.to, wa_id: request.body.to }],
                  messages: [{ id: `wamid.${randomId(40)}` }],
                },
              }
            : { status: 200, body: { recipient_id: request.recipient, message_id: `m_${randomId(40)}` } };
        case 'invalid':
          return whatsapp
            ? graphError(400, {
                message: '(#131030) Recipient phone number not in allowed list',
                code: 131030,
                error_data: {
                  messaging_product: 'whatsapp',
                  details: 'Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.',
                },
              })
            : graphError(400, { message: '(#100) No matching user found', code: 100, error_subcode: 2018001 });
        case 'rate-limited':
          return graphError(429, { message: '(#4) Application request limit reached', code: 4, is_transient: true }, { 'retry-after': '1' });
        case 'error-retry':
          return graphError(
            500,
            { message: 'An unexpected error has occurred. Please retry your request later.', code: 2, is_transient: true },
            { 'retry-after': '1' },
          );
        default:
          return graphError(500, {
            message: 'An unexpected error has occurred. Please retry your request later.',
            code: 2,
            is_transient: true,
          });
      }
    },
    unauthorized() {
      return {
        status: 401,
        body: { error: { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190, fbtrace_id: 'A' } },
      };
    },
  });
}
