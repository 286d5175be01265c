// Drives filecast's dashboard in headless Chromium; run by the Go tests
// (events/dashboard/dashboardtest), which talk to it over stdout:
//
//   node browser.mjs BASE_URL SCREENSHOT.png      (or env BASE_URL, SCREENSHOT)
//   env FILE_NAME          the path of the event the page must show (required)
//   env FILE_TYPE          its type, e.g. file.created (optional)
//   env EXPECT_TEXT        a JSON array of texts the page must also show (optional)
//   env CHECK_UNREACHABLE  "1": afterwards, check the page notices the hub going away
//   env TIMEOUT_MS         per step, default 30000
//   env CHROMIUM           the browser, default /usr/bin/chromium
//
// It prints READY once the page says "live" (the Go side then changes the
// file), waits for a row whose path text is FILE_NAME, takes the
// screenshot and prints OK. With CHECK_UNREACHABLE it prints STOP before OK
// (the Go side then stops the hub), waits for the "hub unreachable" state
// and takes a second screenshot beside the first (-unreachable.png). On any
// failure it prints FAIL with the reason and the page's text, and exits 1.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.argv[2] || process.env.BASE_URL;
const shot = process.argv[3] || process.env.SCREENSHOT;
const fileName = process.env.FILE_NAME;
const fileType = process.env.FILE_TYPE || '';
const expect = JSON.parse(process.env.EXPECT_TEXT || '[]') || [];
const checkUnreachable = process.env.CHECK_UNREACHABLE === '1';
const timeout = Number(process.env.TIMEOUT_MS || 30000);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const query = process.env.PAGE_QUERY || '';

if (!base || !shot || !fileName) {
  console.log('FAIL usage: FILE_NAME=path node browser.mjs BASE_URL SCREENSHOT.png');
  process.exit(2);
}

const userDataDir = await mkdtemp(join(tmpdir(), 'filecast-chromium-'));
let context;
let page;
const problems = [];

async function finish(code, message) {
  if (message) console.log(message);
  if (code !== 0 && page) {
    try {
      const text = await page.evaluate(() => document.body.innerText);
      console.log('--- page text ---\n' + text + '\n--- end of page text ---');
      await page.screenshot({ path: shot });
      console.log('screenshot of the failure: ' + shot);
    } catch (err) {
      console.log('(cannot read the page: ' + err.message + ')');
    }
  }
  try { if (context) await context.close(); } catch (_) { /* already gone */ }
  await rm(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

process.on('SIGTERM', () => finish(1, 'FAIL terminated'));

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1360, height: 820 },
    timeout,
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on('pageerror', (err) => problems.push('page error: ' + err.message));
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push('console: ' + text);
  });

  await page.goto(base.replace(/\/?$/, '/') + (query ? '?' + query : ''), { waitUntil: 'load' });
  await page.waitForSelector('#status[data-state="live"]');
  console.log('READY');

  const row = await page.waitForFunction(([name, type]) => {
    for (const tr of document.querySelectorAll('#events tbody tr')) {
      const p = tr.querySelector('.path .p');
      if (!p || p.textContent !== name) continue;
      const t = tr.querySelector('.type');
      return {
        type: t ? t.textContent : '',
        elements: p.children.length, // markup in a file name must stay text
        wantType: type,
      };
    }
    return null;
  }, [fileName, fileType]).then((h) => h.jsonValue());
  if (row.elements !== 0) problems.push('the file name was rendered as HTML');
  if (fileType && row.type !== fileType) problems.push('type shown "' + row.type + '", want "' + fileType + '"');
  for (const text of expect) {
    await page.waitForFunction((t) => document.body.innerText.includes(t), text)
      .catch(() => problems.push('the page does not show "' + text + '"'));
  }
  await page.screenshot({ path: shot });

  if (checkUnreachable) {
    console.log('STOP');
    await page.waitForSelector('#status[data-state="unreachable"]');
    await page.waitForSelector('#banner:not([hidden])');
    await page.screenshot({ path: shot.replace(/(\.png)?$/, '-unreachable.png') });
  }
  if (problems.length) await finish(1, 'FAIL ' + problems.join('; '));
  await finish(0, 'OK');
} catch (err) {
  await finish(1, 'FAIL ' + String(err && err.message ? err.message : err).split('\n')[0] +
    (problems.length ? '; ' + problems.join('; ') : ''));
}
