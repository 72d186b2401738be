// The gateway web UI in headless Chromium: log in, add a device through the configuration
// page, see it listed, download its bundle, look at versions, channels and events, take
// screenshots. Needs a running gateway: run.sh starts one and sets FWLEDGER_URL,
// FWLEDGER_USER and FWLEDGER_PASSWORD.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = join(here, 'artifacts');
const url = process.env.FWLEDGER_URL;
const user = process.env.FWLEDGER_USER ?? 'admin';
const password = process.env.FWLEDGER_PASSWORD;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const deviceId = 'lamp-web-01';

/** A PNG file of at least `minBytes` with a plausible size. */
function assertScreenshot(path, minBytes) {
  const bytes = readFileSync(path);
  assert.ok(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${path} is a PNG`);
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  assert.ok(width >= 800 && height >= 400, `${path} is ${width}x${height}`);
  assert.ok(statSync(path).size > minBytes, `${path} has ${statSync(path).size} bytes: an empty page?`);
}

describe('gateway web UI', { timeout: 120_000 }, () => {
  let profile;
  let context;
  let page;

  before(async () => {
    assert.ok(url && password, 'run through run.sh (FWLEDGER_URL and FWLEDGER_PASSWORD)');
    profile = mkdtempSync(join(tmpdir(), 'fwledger-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      // The gateway's certificate comes from its own CA.
      ignoreHTTPSErrors: true,
      acceptDownloads: true,
      viewport: { width: 1280, height: 860 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('sends visitors to the login page', async () => {
    await page.goto(`${url}/devices`);
    assert.match(page.url(), /\/login$/);
    assert.equal(await page.locator('h1').innerText(), 'fwledger gateway');
  });

  it('refuses a wrong password', async () => {
    await page.fill('input[name=user]', user);
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/login$/);
    assert.match(await page.locator('main').innerText(), /Wrong user name or password/);
  });

  it('logs in with a strict, HTTP-only, secure session cookie', async () => {
    await page.fill('input[name=user]', user);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${url}/`);
    assert.equal(await page.locator('h1').innerText(), 'Overview');
    const session = (await context.cookies(url)).find((c) => c.name === '__Host-fwledger_session');
    assert.ok(session, 'session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Strict');
    await page.screenshot({ path: join(artifacts, 'overview.png'), fullPage: true });
    assertScreenshot(join(artifacts, 'overview.png'), 20_000);
  });

  it('adds a device through the configuration page', async () => {
    await page.click('nav >> text=Configuration');
    await page.waitForURL(`${url}/config`);
    await page.screenshot({ path: join(artifacts, 'config.png'), fullPage: true });
    assertScreenshot(join(artifacts, 'config.png'), 20_000);
    const form = page.locator('form[action="/config/devices"]');
    await form.locator('input[name=id]').fill(deviceId);
    await form.locator('input[name=mac]').fill('24:0A:C4:AB:CD:01');
    await form.locator('input[name=model]').fill('lamp');
    await form.locator('input[name=hardware]').fill('rev-b');
    await form.locator('button[type=submit]').click();
    await page.waitForURL(`${url}/devices/${deviceId}?added=1`);
    const text = await page.locator('main').innerText();
    assert.match(text, /Device added/);
    assert.match(text, /24:0a:c4:ab:cd:01/);
    assert.ok(await page.locator('figure.qr svg').isVisible(), 'pairing QR code');
    await page.screenshot({ path: join(artifacts, 'device.png'), fullPage: true });
    assertScreenshot(join(artifacts, 'device.png'), 20_000);
  });

  it('downloads the device bundle', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('text=Download bundle'),
    ]);
    assert.equal(download.suggestedFilename(), `${deviceId}.json`);
    const bundle = JSON.parse(readFileSync(await download.path(), 'utf8'));
    assert.equal(bundle.device_id, deviceId);
    assert.equal(bundle.model, 'lamp');
    assert.match(bundle.device_key_pem, /PRIVATE KEY/);
    assert.match(bundle.ca_cert_pem, /BEGIN CERTIFICATE/);
    assert.equal(bundle.vendors[0].name, 'acme');
  });

  it('lists the new device next to the existing one', async () => {
    await page.click('nav >> text=Devices');
    await page.waitForURL(`${url}/devices`);
    const table = await page.locator('table').innerText();
    assert.match(table, new RegExp(deviceId));
    assert.match(table, /lamp-00/);
    assert.match(table, /notified 1\.1\.0/, 'lamp-00 was offered the published release');
    await page.screenshot({ path: join(artifacts, 'devices.png'), fullPage: true });
    assertScreenshot(join(artifacts, 'devices.png'), 20_000);
  });

  it('shows versions, channels, repository and events', async () => {
    await page.click('nav >> text=Versions');
    const versions = await page.locator('main').innerText();
    assert.match(versions, /1\.1\.0/);
    assert.match(versions, /verified/);

    await page.click('nav >> text=Channels');
    const channels = await page.locator('main').innerText();
    assert.match(channels, /acme/);
    assert.match(channels, /fresh/);
    await page.screenshot({ path: join(artifacts, 'channels.png'), fullPage: true });
    assertScreenshot(join(artifacts, 'channels.png'), 15_000);

    await page.click('nav >> text=Repository');
    assert.match(await page.locator('main').innerText(), /verified/);

    await page.click('nav >> text=Events');
    const events = await page.locator('main').innerText();
    assert.match(events, new RegExp(`device ${deviceId} added`));
    assert.match(events, /subscribed to channel/);
    await page.screenshot({ path: join(artifacts, 'events.png'), fullPage: true });
    assertScreenshot(join(artifacts, 'events.png'), 20_000);
  });

  it('answers the JSON API with the session', async () => {
    const response = await page.request.get(`${url}/api/devices`);
    assert.equal(response.status(), 200);
    const ids = (await response.json()).map((d) => d.id);
    assert.ok(ids.includes(deviceId), JSON.stringify(ids));
  });

  it('refuses a form whose CSRF token was tampered with', async () => {
    await page.goto(`${url}/config`);
    const form = page.locator('form[action="/config/subscribe"]');
    await form.locator('input[name=csrf]').evaluate((input) => { input.value = 'forged'; });
    await form.locator('textarea[name=token]').fill('fwl1-anything');
    await form.locator('button[type=submit]').click();
    await page.waitForLoadState();
    assert.match(await page.locator('body').innerText(), /CSRF token/);
  });

  it('logs out', async () => {
    await page.goto(`${url}/`);
    await page.click('text=Log out');
    await page.waitForURL(/\/login$/);
    await page.goto(`${url}/devices`);
    assert.match(page.url(), /\/login$/);
  });
});
