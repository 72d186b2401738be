// Staged rollouts in the gateway web UI, in headless Chromium: stage the published release from
// the Versions page, see the rollout panel (stage, state, device counts), advance it and abort
// it with the panel's buttons and through the JSON API (session + CSRF), take a screenshot.
// Needs a running gateway: run.sh starts one and sets FWLEDGER_URL, FWLEDGER_USER and
// FWLEDGER_PASSWORD.
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

describe('gateway web UI: staged rollouts', { timeout: 120_000 }, () => {
  let profile;
  let context;
  let page;

  before(async () => {
    assert.ok(url && password, 'run through run.sh (FWLEDGER_URL and FWLEDGER_PASSWORD)');
    profile = mkdtempSync(join(tmpdir(), 'fwledger-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 860 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    await page.goto(`${url}/login`);
    await page.fill('input[name=user]', user);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${url}/`);
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('stages the release from the Versions page', async () => {
    await page.click('nav >> text=Versions');
    const panel = page.locator('section#rollouts');
    assert.match(await panel.innerText(), /Staged rollouts/);
    await panel.locator('summary').click();
    const form = panel.locator('form[action="/releases/rollout"]');
    const release = await form.locator('select[name=release] option', { hasText: 'lamp 1.1.0' }).first().getAttribute('value');
    await form.locator('select[name=release]').selectOption(release);
    await form.locator('input[name=stages]').fill('group:canary,50%,all');
    await form.locator('input[name=failure_threshold]').fill('30');
    await form.locator('select[name=advance]').selectOption('manual');
    await form.locator('button[type=submit]').click();
    await page.waitForURL(/\/releases(#rollouts)?$/);
    const row = page.locator('table.rollouts tbody tr').first();
    assert.equal(await row.getAttribute('data-state'), 'active');
    const text = await row.innerText();
    assert.match(text, /lamp 1\.1\.0/);
    assert.match(text, /group:canary,50%,100%/);
    assert.match(text, /halt above 30 % failed/);
    assert.match(text, /1\/3 \(group:canary\)/);
    assert.match(text, /active, stage 1\/3 \(group:canary\)/);
    // lamp-00 was offered the release before the plan: it keeps its offer.
    assert.match(text, /1 offered/);
  });

  it('advances with the panel button and shows it in the event log', async () => {
    await page.locator('table.rollouts form[action$="/rollout/advance"] button').first().click();
    await page.waitForURL(/\/releases(#rollouts)?$/);
    const row = page.locator('table.rollouts tbody tr').first();
    assert.match(await row.innerText(), /active, stage 2\/3 \(50%\)/);
    await page.locator('section#rollouts').screenshot({ path: join(artifacts, 'rollout.png') });
    assert.ok(statSync(join(artifacts, 'rollout.png')).size > 5_000, 'rollout panel screenshot');
    await page.screenshot({ path: join(artifacts, 'versions-rollout.png'), fullPage: true });
    const png = readFileSync(join(artifacts, 'versions-rollout.png'));
    assert.ok(png.readUInt32BE(16) >= 800, 'full-page screenshot width');
    await page.click('nav >> text=Events');
    assert.match(await page.locator('main').innerText(), /rollout lamp 1\.1\.0: advanced by operator \(web\), stage 2\/3 \(50%\)/);
  });

  it('reads and aborts it through the JSON API with the session and its CSRF token', async () => {
    const list = await page.request.get(`${url}/api/rollouts`);
    assert.equal(list.status(), 200);
    const body = await list.json();
    const rollout = body.rollouts[0];
    assert.equal(rollout.state, 'active');
    assert.equal(rollout.stage, 1);
    assert.equal(rollout.version, '1.1.0');
    assert.equal(rollout.plan.failure_threshold, 30);

    // Without the CSRF token: refused before the handler runs.
    const forged = await page.request.post(`${url}/api/rollouts/${rollout.release_id}/abort`, { form: { csrf: 'forged' } });
    assert.equal(forged.status(), 403);

    await page.goto(`${url}/releases`);
    const csrf = await page.locator('table.rollouts input[name=csrf]').first().inputValue();
    const aborted = await page.request.post(`${url}/api/rollouts/${rollout.release_id}/abort`, { form: { csrf } });
    assert.equal(aborted.status(), 200);
    assert.equal((await aborted.json()).state, 'aborted');
    const again = await page.request.post(`${url}/api/rollouts/${rollout.release_id}/resume`, { form: { csrf } });
    assert.equal(again.status(), 409);
    assert.match((await again.json()).error, /final/);

    await page.reload();
    const row = page.locator('table.rollouts tbody tr').first();
    assert.equal(await row.getAttribute('data-state'), 'aborted');
    assert.match(await row.innerText(), /aborted: aborted by operator \(api\)/);
    await page.locator('section#rollouts').screenshot({ path: join(artifacts, 'rollout-aborted.png') });
  });
});
