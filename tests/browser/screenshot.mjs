// screenshot.mjs - opens the demo page in Debian's headless Chromium with a
// fake camera playing a .y4m, lets it stream, saves a screenshot and prints
// the page's own statistics (window.nfStats) as JSON.
//
//   node tests/browser/screenshot.mjs URL CAMERA.y4m OUT.png [SECONDS]
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, camera, out, secs = '6'] = process.argv.slice(2);
if (!url || !camera || !out || url === '--help') {
  console.log('usage: node tests/browser/screenshot.mjs URL CAMERA.y4m OUT.png [SECONDS]');
  process.exit(url === '--help' ? 0 : 2);
}
const dir = mkdtempSync(join(tmpdir(), 'nf-chromium-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: [
    '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${camera}`,
  ],
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  await page.goto(url);
  await page.waitForTimeout(Number(secs) * 1000);
  await page.screenshot({ path: out });
  console.log(JSON.stringify(await page.evaluate(() => window.nfStats)));
} finally {
  await ctx.close();
  rmSync(dir, { recursive: true, force: true });
}
