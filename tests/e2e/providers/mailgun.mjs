// Mailgun's Messages API as a local server: `POST /v3/{domain}/messages`, HTTP Basic with user
// `api` and the API key, a form body (`from`, `to`, `subject`, `text`, `attachment` files, the
// latter only in multipart); answers `{id, message}` or `{message}`, and a plain `Forbidden`.

import { basicCredentials, randomId, readForm, startProviderServer } from './server.mjs';

/** `apiKeys`: sending domain -> its API key. */
export function startMailgun(apiKeys) {
  return startProviderServer({
    name: 'mailgun',
    route(method, path) {
      const match = /^\/v3\/([^/]+)\/messages$/.exec(path);
      return method === 'POST' && match ? { domain: decodeURIComponent(match[1]) } : null;
    },
    authorized(headers, { domain }) {
      const credentials = basicCredentials(headers);
      return credentials !== null && credentials[0] === 'api' && credentials[1] === apiKeys.get(domain);
    },
    async parse(raw, headers) {
      const { fields, files } = await readForm(raw, headers);
      return { recipient: fields.to, body: { ...fields, files } };
    },
    answer(step, request) {
      switch (step) {
        case 'ok':
        case 'slow':
          return { status: 200, body: { id: `<${Date.now()}.${randomId(12)}@${request.params.domain}>`, message: 'Queued. Thank you.' } };
        case 'invalid':
          return { status: 400, body: { message: "'to' parameter is not a valid address. please check documentation" } };
        case 'rate-limited':
          return { status: 429, headers: { 'retry-after': '1' }, body: { message: 'Too many requests' } };
        case 'error-retry':
          return { status: 500, headers: { 'retry-after': '1' }, body: { message: 'Internal Server Error' } };
        default:
          return { status: 500, body: { message: 'Internal Server Error' } };
      }
    },
    unauthorized() {
      return { status: 401, body: 'Forbidden' };
    },
  });
}
