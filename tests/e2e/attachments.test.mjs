// Attachments: upload (multipart, 10 MB, checked types) and download (API key or signed link).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BASE_URL, PUBLIC_URL, api, assertError, newBusiness } from './support.mjs';

const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('a tiny png body')]);

async function upload(key, bytes, { type = 'image/png', filename = 'photo.png', field = 'file' } = {}) {
  const form = new FormData();
  form.append(field, new Blob([bytes], { type }), filename);
  const headers = key ? { 'x-api-key': key } : {};
  const response = await fetch(`${BASE_URL}/api-upload-attachment`, { method: 'POST', body: form, headers });
  const text = await response.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, body, text };
}

async function download(path, key) {
  const response = await fetch(`${BASE_URL}${path}`, { headers: key ? { 'x-api-key': key } : {} });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

describe('attachments', () => {
  test('an uploaded file is downloaded, byte for byte, by its business', async () => {
    const { key } = await newBusiness();
    const res = await upload(key, PNG, { filename: 'receipt.png' });
    assert.equal(res.status, 201, res.text);
    const { attachment } = res.body;
    assert.equal(res.body.success, true);
    assert.equal(attachment.filename, 'receipt.png');
    assert.equal(attachment.type, 'image/png');
    assert.equal(attachment.size, PNG.length);
    assert.equal(attachment.file_url, `${PUBLIC_URL}/api/download-media?id=${attachment.id}`);
    const file = await download(`/api/download-media?id=${attachment.id}`, key);
    assert.equal(file.status, 200);
    assert.deepEqual(file.bytes, PNG);
    assert.equal(file.headers.get('content-type'), 'image/png');
    assert.match(file.headers.get('content-disposition'), /attachment; filename="receipt.png"/);
    assert.equal(file.headers.get('x-content-type-options'), 'nosniff');
  });

  test('a file named in any script or with an emoji downloads under its exact name', async () => {
    const { key } = await newBusiness();
    const name = '账单 №5 🧾.png';
    const res = await upload(key, PNG, { filename: name });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.attachment.filename, name);
    const file = await download(`/api/download-media?id=${res.body.attachment.id}`, key);
    assert.equal(file.status, 200);
    assert.deepEqual(file.bytes, PNG);
    const disposition = file.headers.get('content-disposition');
    assert.match(disposition, /^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    assert.equal(decodeURIComponent(disposition.split("UTF-8''")[1]), name, 'the exact name, percent-encoded');
  });

  test('a file of exactly 10 MB is accepted and one byte more is refused with 413', async () => {
    const { key } = await newBusiness();
    const limit = 10 * 1024 * 1024;
    const atLimit = Buffer.alloc(limit, 0x61);
    const accepted = await upload(key, atLimit, { type: 'text/plain', filename: 'big.txt' });
    assert.equal(accepted.status, 201, accepted.text);
    assert.equal(accepted.body.attachment.size, limit);
    const refused = await upload(key, Buffer.alloc(limit + 1, 0x61), { type: 'text/plain', filename: 'bigger.txt' });
    assertError(refused, 413, 'payload_too_large', 'one byte over 10 MB');
  });

  test('types that are not accepted, or whose content lies about its type, are refused', async () => {
    const { key } = await newBusiness();
    const cases = [
      [Buffer.from('MZ\x90\x00'), 'application/x-msdownload', 'tool.exe', 'an executable'],
      [Buffer.from('MZ\x90\x00 pretending'), 'image/png', 'photo.png', 'an executable named and typed as png'],
      [Buffer.from('<script>alert(1)</script>'), 'text/html', 'page.html', 'html'],
    ];
    for (const [bytes, type, filename, description] of cases) {
      assertError(await upload(key, bytes, { type, filename }), 415, 'unsupported_media_type', description);
    }
  });

  test('malformed uploads are refused with a clear error', async () => {
    const { key } = await newBusiness();
    assertError(await upload(key, PNG, { field: 'document' }), 422, 'validation_failed', 'no field named file');
    assertError(await api(key, 'POST', '/api-upload-attachment', { file: 'base64?' }), 415, 'unsupported_media_type', 'JSON instead of multipart');
    assertError(await upload(null, PNG), 401, 'unauthorized', 'no key');
  });

  test('a business cannot download another business\'s attachment, and links need a key or a valid signature', async () => {
    const mine = await newBusiness();
    const other = await newBusiness();
    const { body } = await upload(mine.key, PNG);
    const id = body.attachment.id;
    const denied = await download(`/api/download-media?id=${id}`, other.key);
    assert.equal(denied.status, 404, 'another business sees nothing');
    assert.equal((await download(`/api/download-media?id=${id}`)).status, 401, 'no key, no signature');
    const expires = Math.floor(Date.now() / 1000) + 600;
    const forged = await download(`/api/download-media?id=${id}&expires=${expires}&signature=${'ab'.repeat(32)}`);
    assert.equal(forged.status, 403, 'a forged signature');
    assert.equal((await download(`/api/download-media?id=${randomUUID()}`, mine.key)).status, 404, 'unknown id');
    assert.equal((await download('/api/download-media?id=../../etc/passwd', mine.key)).status, 422, 'a malformed id');
  });
});
