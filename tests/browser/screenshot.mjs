// screenshot.mjs - opens the demo page in Debian's headless Chromium with a
// fake camera playing a .y4m, lets it stream, saves a screenshot and prints
// the page's own statistics (window.nfStats) as JSON.
//
//   node tests/browser/screenshot.mjs URL CAMERA.y4m OUT.png [SECONDS]
import { launchWithCamera } from './launch.mjs';

const [url, camera, out, secs = '6'] = process.argv.slice(2);
if (!url || !camera || !out || url === '--help') {
  console.log('usage: node tests/browser/screenshot.mjs URL CAMERA.y4m OUT.png [SECONDS]');
  process.exit(url === '--help' ? 0 : 2);
}
const { ctx, close } = await launchWithCamera(camera, { width: 1280, height: 720 });
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  await page.goto(url);
  await page.waitForTimeout(Number(secs) * 1000);
  await page.screenshot({ path: out });
  console.log(JSON.stringify(await page.evaluate(() => window.nfStats)));
} finally {
  await close();
}
