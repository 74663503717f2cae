// Twilio's Programmable Messaging API as a local server:
// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic with the account SID and
// auth token, a form body (`To`, `From`, `Body`, `MediaUrl`); errors as `{code, message, status}`.

import { basicCredentials, randomId, readForm, startProviderServer } from './server.mjs';

/** `authTokens`: account SID -> its auth token. */
export function startTwilio(authTokens) {
  const error = (status, code, message, headers = {}) => ({
    status,
    headers,
    body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
  });
  return startProviderServer({
    name: 'twilio',
    route(method, path) {
      const match = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})\/Messages\.json$/.exec(path);
      return method === 'POST' && match ? { accountSid: match[1] } : null;
    },
    authorized(headers, { accountSid }) {
      const credentials = basicCredentials(headers);
      return credentials !== null && credentials[0] === accountSid && credentials[1] === authTokens.get(accountSid);
    },
    async parse(raw, headers) {
      const { fields } = await readForm(raw, headers);
      return { recipient: fields.To, body: fields };
    },
    answer(step, request) {
      switch (step) {
        case 'ok':
        case 'slow':
          return {
            status: 201,
            body: {
              sid: `SM${randomId(32)}`,
              account_sid: request.params.accountSid,
              to: request.body.To,
              from: request.body.From,
              body: request.body.Body,
              status: 'queued',
              num_media: String([].concat(request.body.MediaUrl ?? []).length),
              api_version: '2010-04-01',
            },
          };
        case 'invalid':
          return error(400, 21211, `Invalid 'To' Phone Number: ${request.body.To}`);
        case 'rate-limited':
          return error(429, 20429, 'Too Many Requests', { 'retry-after': '1' });
        case 'error-retry':
          return error(500, 20500, 'An internal server error has occurred', { 'retry-after': '1' });
        default:
          return error(500, 20500, 'An internal server error has occurred');
      }
    },
    unauthorized() {
      return error(401, 20003, 'Authenticate');
    },
  });
}
