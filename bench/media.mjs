// Benchmark: inbound media at the largest size we fetch. BENCH_MEDIA_FILES MMS messages (default
// 10), each with one file of BENCH_MEDIA_MIB MiB (default 25, the limit), posted to the Twilio
// receiver at once; their files are served by a local media host with their length, as Twilio's
// media CDN serves them. Measured: time from the first post to every file stored (each checked by
// size and SHA-256 on download), and the most memory a media-fetcher invocation used: its Rust
// heap (the isolate's wasm memory) and the bytes it held whole, from the stack's [usage] lines.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { formBody, twilioSignature } from '../tests/e2e/signing.mjs';
import { BASE, admin, call, sleep, stackLog, usagePeak } from './lib.mjs';

const PUBLIC = process.env.CRM_EDGE_PUBLIC_URL;
const FILES = Number(process.env.BENCH_MEDIA_FILES ?? 10);
const MIB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_MEDIA_MIB ?? 25) * MIB;
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

const files = Array.from({ length: FILES }, () => randomBytes(SIZE));
const host = createServer((req, res) => {
  const index = Number(req.url.split('/').pop());
  const bytes = files[index];
  if (!bytes) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': bytes.length });
  res.end(bytes);
});
await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
const hostUrl = `http://127.0.0.1:${host.address().port}`;

const business = await admin('POST', '/admin/businesses', { name: `bench-media-${Date.now()}`, default_country: 'IE' });
await admin('PATCH', `/admin/businesses/${business.id}`, { rate_limit: { per_minute: 100000, burst: 10000 } });
const { key } = await admin('POST', `/admin/businesses/${business.id}/api-keys`, {});
const authToken = randomBytes(16).toString('hex');
const address = `+35387${Date.now() % 10_000_000}`;
const account = await admin('POST', `/admin/businesses/${business.id}/channel-accounts`, {
  channel: 'sms',
  provider: 'twilio',
  address,
  settings: { account_sid: `AC${randomBytes(16).toString('hex')}`, api_base_url: hostUrl },
  secrets: { auth_token: authToken },
});

const logFrom = stackLog().length;
const started = performance.now();
await Promise.all(
  files.map(async (_, index) => {
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const params = {
      MessageSid: sid,
      SmsSid: sid,
      AccountSid: account.settings.account_sid,
      From: `+35386${String(index).padStart(7, '0')}`,
      To: address,
      Body: `file ${index}`,
      NumMedia: '1',
      MediaUrl0: `${hostUrl}/media/${index}`,
      MediaContentType0: 'video/mp4',
    };
    const response = await fetch(BASE + account.webhook_path, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature(authToken, `${PUBLIC}${account.webhook_path}`, params),
      },
      body: formBody(params),
    });
    if (response.status !== 200) throw new Error(`message ${index}: ${response.status} ${await response.text()}`);
  }),
);

let attachments = [];
for (const deadline = Date.now() + 15 * 60_000; ; await sleep(250)) {
  let page;
  try {
    page = await call('GET', '/api-messages-since?since=1970-01-01T00:00:00Z&limit=100&include_attachments=true', undefined, { 'x-api-key': key });
  } catch (error) {
    console.error(`polling: ${error.message}; again`);
    continue;
  }
  attachments = page.messages.flatMap((message) => (message.attachments ?? []).map((a) => ({ ...a, content: message.content })));
  if (attachments.length === FILES && attachments.every((a) => a.status !== 'pending')) break;
  if (Date.now() > deadline) throw new Error(`files still pending after 15 minutes: ${JSON.stringify(attachments.map((a) => a.status))}`);
}
const seconds = (performance.now() - started) / 1000;
const failed = attachments.filter((a) => a.status !== 'stored');
if (failed.length) throw new Error(`files not stored: ${JSON.stringify(failed)}`);
for (const attachment of attachments) {
  const index = Number(attachment.content.split(' ')[1]);
  const download = await fetch(attachment.download_url, { headers: { 'x-api-key': key } });
  const bytes = Buffer.from(await download.arrayBuffer());
  if (bytes.length !== SIZE || sha256(bytes) !== sha256(files[index])) throw new Error(`file ${index} differs after storing`);
}
const peak = usagePeak(stackLog(logFrom), 'media-fetcher queue', ['wasm_memory', 'peak_buffered', 'subrequests', 'd1_queries']);
host.close();
console.log(`## Inbound media: ${FILES} files of ${SIZE / MIB} MiB at once`);
console.log(`all stored and checked: ${seconds.toFixed(1)} s (${((FILES * SIZE) / MIB / seconds).toFixed(1)} MiB/s)`);
console.log(
  `media-fetcher, most in one invocation (${peak.invocations} invocations): wasm memory ${(peak.wasm_memory / MIB).toFixed(1)} MiB of 128, ` +
    `held whole ${(peak.peak_buffered / MIB).toFixed(1)} MiB, subrequests ${peak.subrequests}, D1 queries ${peak.d1_queries}`,
);
