// The API reference (/console/reference) in a real browser (Debian's chromium, headless, driven by
// playwright-core), read as a developer reads it, at 1280 px and at 375 px: every operation of
// openapi.json is drawn (counted from the committed file, compared with what the page shows, by
// method and path, read down the page: Swagger UI draws a document of 150 tags and operations or
// more as it scrolls into view), one operation opens to its parameters, body and answers with no "Try it out",
// the page asks nothing of any origin but its own and of the API nothing but /openapi.json,
// its Content-Security-Policy refuses nothing, axe-core finds no serious or critical violation
// (closed and with an operation open), and nothing is wider than the screen. Screenshots go to
// tests/browser/screenshots/reference-*.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { PUBLIC_URL } from '../e2e/support.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = join(HERE, 'screenshots');
const CHROMIUM = process.env.CRM_EDGE_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT_MS = 20_000;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** The committed contract, which the gateway serves as it is (tests/e2e/openapi.test.mjs). */
const DOCUMENT = JSON.parse(readFileSync(join(HERE, '..', '..', 'openapi.json'), 'utf8'));
/** Every operation of the document, as `METHOD path`. */
const OPERATIONS = Object.entries(DOCUMENT.paths)
  .flatMap(([path, item]) => METHODS.filter((method) => item[method]).map((method) => `${method.toUpperCase()} ${path}`))
  .sort();
/** What the page may fetch: itself, its four files, and the document. */
const FETCHED = new Set([
  '/console/reference',
  '/console/reference/swagger-ui.css',
  '/console/reference/reference.css',
  '/console/reference/swagger-ui-bundle.js',
  '/console/reference/reference.js',
  '/openapi.json',
]);
/** The operation opened in each run: it has a query, a JSON body, answers and errors. */
const OPENED = 'POST /api-customers-sync';

let browser;

/** axe-core's serious and critical violations on the page as it is now. */
async function violations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
}

/** Scrolls the page down a screen at a time from the top until `selector` is drawn (Swagger UI
 * draws a long document's operations only as they come into view: 150 tags and operations or
 * more); false when the bottom comes first. */
async function reveal(page, selector) {
  await page.evaluate(() => window.scrollTo(0, 0));
  for (let screens = 0; screens < 1000; screens++) {
    if ((await page.locator(selector).count()) > 0) return true;
    const moved = await page.evaluate(() => {
      const before = window.scrollY;
      window.scrollBy(0, window.innerHeight * 0.8);
      return window.scrollY !== before;
    });
    if (!moved) return false;
    await page.waitForTimeout(50);
  }
  return false;
}

/** Every operation the page draws, as `METHOD path`, read a screen at a time from top to bottom
 * (see `reveal`), and the operations drawn twice on one screen; the page is left at the top. */
async function drawn(page) {
  const seen = new Set();
  const twice = new Set();
  await page.evaluate(() => window.scrollTo(0, 0));
  for (let screens = 0; screens < 1000; screens++) {
    const shown = await page.locator('.opblock').evaluateAll((all) => all.map((block) =>
      `${block.querySelector('.opblock-summary-method').textContent.trim()} ${block.querySelector('.opblock-summary-path').getAttribute('data-path')}`));
    for (const [at, op] of shown.entries()) {
      if (shown.indexOf(op) !== at) twice.add(op);
      seen.add(op);
    }
    const moved = await page.evaluate(() => {
      const before = window.scrollY;
      window.scrollBy(0, window.innerHeight * 0.8);
      return window.scrollY !== before;
    });
    if (!moved) break;
    await page.waitForTimeout(50);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  return { operations: [...seen].sort(), twice: [...twice] };
}

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

describe('the API reference', () => {
  /** One reader's visit, from the console's menu: each test goes on from where the last left it. */
  let context;
  let page;
  let answer;
  const errors = [];
  const fetched = [];

  before(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    await context.addInitScript(() => {
      window.refused = [];
      document.addEventListener('securitypolicyviolation', (event) => {
        window.refused.push(`${event.effectiveDirective}: ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`);
      });
    });
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    page.on('request', (request) => fetched.push(request.url()));
  });

  after(async () => {
    await context?.close();
  });

  test("the console's menu leads to it, and it draws each operation of openapi.json once", async () => {
    await page.goto(`${PUBLIC_URL}/console`);
    // Signed out, the console asks for a session and is refused (a 401 in the console): that
    // error is the console's, not the reference's.
    await page.getByRole('heading', { level: 1, name: 'Signed out' }).waitFor({ timeout: WAIT_MS });
    errors.length = 0;
    fetched.length = 0;
    [answer] = await Promise.all([
      page.waitForResponse((res) => new URL(res.url()).pathname === '/console/reference'),
      page.getByRole('navigation').getByRole('link', { name: 'API reference' }).click(),
    ]);
    assert.equal(answer.status(), 200);
    await page.getByRole('heading', { level: 1, name: 'API reference' }).waitFor({ timeout: WAIT_MS });
    await page.locator('.opblock').first().waitFor({ timeout: WAIT_MS });
    assert.ok(OPERATIONS.length > 100, `openapi.json has ${OPERATIONS.length} operations`);
    const { operations, twice } = await drawn(page);
    assert.deepEqual(operations, OPERATIONS, 'the page shows each operation of openapi.json');
    assert.deepEqual(twice, [], 'and each once');
  });

  test(`${OPENED} opens to its parameters, body and answers, with no "Try it out"`, async () => {
    const [method, path] = OPENED.split(' ');
    assert.ok(await reveal(page, `.opblock-summary-path[data-path="${path}"]`), `${OPENED} is drawn`);
    const block = page.locator(`.opblock-${method.toLowerCase()}`)
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
    await block.locator('.opblock-summary-control').click();
    await block.locator('.responses-table').waitFor({ timeout: WAIT_MS });
    assert.ok(await block.getByText('Idempotency-Key', { exact: true }).isVisible(), 'its header parameter');
    assert.ok(await block.getByText('Request body').isVisible(), 'its body');
    const codes = await block.locator('.responses-table .response-col_status').allTextContents();
    for (const code of ['200', '401', '422', '429']) assert.ok(codes.some((text) => text.trim().startsWith(code)), `answers ${code}: ${codes}`);
    assert.equal(await page.getByRole('button', { name: /try it out/i }).count(), 0, 'no "Try it out"');
    assert.equal(await page.getByRole('button', { name: /authorize/i }).count(), 0, 'no Authorize');
  });

  for (const width of [1280, 375]) {
    test(`at ${width} px: no serious or critical accessibility violation, nothing wider than the screen`, async () => {
      await page.setViewportSize({ width, height: 900 });
      assert.deepEqual(await violations(page), [], `axe-core at ${width} px, ${OPENED} open`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
      assert.ok(await reveal(page, '.opblock.is-open'), `${OPENED} is still open`);
      await page.locator('.opblock.is-open').evaluate((block) => block.scrollIntoView({ block: 'start' }));
      await page.screenshot({ path: join(SCREENSHOTS, `reference-operation-${width}.png`) });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SCREENSHOTS, `reference-${width}.png`) });
    });
  }

  test('its policy refuses nothing, no error is shown, and it fetches only its own files and /openapi.json', async () => {
    const policy = answer.headers()['content-security-policy'];
    assert.match(policy, /script-src 'self';/, policy);
    assert.match(policy, /style-src 'self';/, policy);
    assert.doesNotMatch(policy, /unsafe-|sha256-|nonce-/, policy);
    assert.deepEqual(await page.evaluate(() => window.refused), [], 'the Content-Security-Policy refused nothing');
    assert.deepEqual(errors, [], 'no error in the console');
    const elsewhere = fetched.filter((url) => new URL(url).origin !== PUBLIC_URL || !FETCHED.has(new URL(url).pathname));
    assert.deepEqual(elsewhere, [], 'the page fetches only its own files and /openapi.json');
  });
});
