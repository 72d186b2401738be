// The vendor portal in headless Chromium: log in, upload a firmware image with its metadata
// through the form, check the manifest preview, approve, see the release in the channel
// history, issue a gateway token on the portal, and read the release back END TO END with
// `fwledger channel read TOKEN --json`. Screenshots go to artifacts/portal-*.png. Needs a
// running portal: run_portal.sh starts one and sets FWLEDGER_PORTAL_URL,
// FWLEDGER_PORTAL_PASSWORD, FWLEDGER_PORTAL_HOME and FWLEDGER_BIN.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = join(here, 'artifacts');
const url = process.env.FWLEDGER_PORTAL_URL;
const password = process.env.FWLEDGER_PORTAL_PASSWORD;
const home = process.env.FWLEDGER_PORTAL_HOME;
const bin = process.env.FWLEDGER_BIN;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A PNG file of at least `minBytes` with a plausible size. */
function assertScreenshot(path, minBytes) {
  const bytes = readFileSync(path);
  assert.ok(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${path} is a PNG`);
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  assert.ok(width >= 800 && height >= 400, `${path} is ${width}x${height}`);
  assert.ok(statSync(path).size > minBytes, `${path} has ${statSync(path).size} bytes: an empty page?`);
}

async function shot(page, name) {
  const path = join(artifacts, `portal-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  assertScreenshot(path, 15_000);
}

describe('vendor portal', { timeout: 180_000 }, () => {
  let profile;
  let context;
  let page;
  let image;
  let sha256;
  let cid;
  let token;

  before(async () => {
    assert.ok(url && password && home && bin, 'run through run_portal.sh');
    profile = mkdtempSync(join(tmpdir(), 'fwledger-portal-chromium-'));
    // A small firmware image with varied bytes.
    const data = Buffer.alloc(200_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 253;
    image = join(profile, 'sensor-1.2.0.bin');
    writeFileSync(image, data);
    sha256 = createHash('sha256').update(data).digest('hex');
    context = await chromium.launchPersistentContext(join(profile, 'user-data'), {
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

  it('sends visitors to the login page and refuses a wrong password', async () => {
    await page.goto(`${url}/upload`);
    assert.match(page.url(), /\/login$/);
    await page.fill('input[name=user]', 'admin');
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/login$/);
    assert.match(await page.locator('main').innerText(), /Wrong user name or password/);
  });

  it('logs in with a strict, HTTP-only session cookie', async () => {
    await page.fill('input[name=user]', 'admin');
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${url}/`);
    assert.equal(await page.locator('h1').innerText(), 'Channel');
    const session = (await context.cookies(url)).find((c) => c.name === '__Host-fwledger_portal_session');
    assert.ok(session, 'session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.locator('#heartbeat-status').getAttribute('data-status'), 'none');
  });

  it('uploads an image with its metadata and previews the manifest', async () => {
    await page.click('nav >> text=New release');
    await page.waitForURL(`${url}/upload`);
    const form = page.locator('form#upload');
    await form.locator('input[name=model]').fill('sensor-v2');
    await form.locator('input[name=hw]').fill('rev-a, rev-b');
    await form.locator('input[name=version]').fill('1.2.0');
    await form.locator('input[name=security_version]').fill('4');
    await form.locator('input[name=expires]').fill('90d');
    await form.locator('input[name=prerequisite]').fill('1.0.0');
    await form.locator('textarea[name=notes]').fill('Fixes the <b>sleep</b> bug & more');
    await form.locator('input[name=file]').setInputFiles(image);
    await shot(page, 'upload');
    await form.locator('button[type=submit]').click();
    await page.waitForURL(/\/preview\/[0-9a-f]{32}$/);
    assert.equal(await page.locator('h1').innerText(), 'Preview the manifest');
    assert.equal(await page.locator('#m-vendor').innerText(), 'acme');
    assert.equal(await page.locator('#m-model').innerText(), 'sensor-v2');
    assert.equal(await page.locator('#m-hardware').innerText(), 'rev-a, rev-b');
    assert.equal(await page.locator('#m-version').innerText(), '1.2.0');
    assert.equal(await page.locator('#m-security-version').innerText(), '4');
    assert.equal(await page.locator('#m-size').getAttribute('data-bytes'), '200000');
    assert.equal(await page.locator('#m-sha256').innerText(), sha256);
    cid = await page.locator('#m-cid').innerText();
    // The CID the CLI computes for the same file.
    assert.equal(cid, execFileSync(bin, ['cid', image], { encoding: 'utf8' }).trim());
    // Escaped, not interpreted.
    assert.match(await page.locator('main').innerText(), /Fixes the <b>sleep<\/b> bug & more/);
    await shot(page, 'preview');
  });

  it('approves and publishes, showing each step with its time', async () => {
    await page.click('button#approve');
    await page.waitForURL(/\/approve$/);
    assert.equal(await page.locator('h1').innerText(), 'Published');
    const steps = await page.locator('#steps').innerText();
    assert.match(steps, /Content added to the store\s+\d+ ms/);
    assert.match(steps, /Manifest signed\s+\d+ ms/);
    assert.match(steps, /Message appended to the channel \(seq \d+\)\s+\d+ ms/);
    assert.match(steps, /Latency, upload to announcement\s+\d+ ms/);
    await shot(page, 'published');
  });

  it('shows the release in the channel history and appends a heartbeat', async () => {
    await page.click('nav >> text=Channel');
    await page.waitForURL(`${url}/`);
    const row = page.locator('tr.release[data-version="1.2.0"]');
    assert.match(await row.innerText(), /sensor-v2 1\.2\.0/);
    assert.match(await row.innerText(), new RegExp(sha256));
    await page.click('text=Append heartbeat');
    await page.waitForURL(`${url}/heartbeat`);
    assert.equal(await page.locator('#heartbeat-status').getAttribute('data-status'), 'fresh');
    await shot(page, 'history');
  });

  it('issues a token for a named gateway', async () => {
    await page.click('nav >> text=Gateways');
    await page.waitForURL(`${url}/gateways`);
    await page.fill('input[name=gateway]', 'home-hub');
    await page.click('text=Issue token');
    await page.waitForURL(`${url}/gateways/token`);
    token = (await page.locator('#token').inputValue()).trim();
    assert.ok(token.length > 40, 'token');
    assert.match(await page.locator('#gateways').innerText(), /home-hub\s.*active/s);
    await shot(page, 'gateways');
  });

  it('the release is readable END TO END with `fwledger channel read`', () => {
    // A separate process on the same ledger, as a gateway with the token would read it.
    const out = execFileSync(bin, ['--home', home, 'channel', 'read', token, '--json'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const entries = JSON.parse(out);
    const release = entries.find((e) => e.kind === 'release' && e.version === '1.2.0');
    assert.ok(release, `release in ${out}`);
    assert.equal(release.vendor, 'acme');
    assert.equal(release.model, 'sensor-v2');
    assert.deepEqual(release.hardware, ['rev-a', 'rev-b']);
    assert.equal(release.security_version, 4);
    assert.equal(release.size, 200_000);
    assert.equal(release.sha256, sha256);
    assert.equal(release.cid, cid);
    assert.ok(entries.some((e) => e.kind === 'heartbeat'), 'heartbeat');
  });
});
