// token-test.mjs - the demo page against a server with a stream token
// (--token-file): opened with #token=TOKEN it streams; opened without, it
// stops and says that the server needs a token. Prints one JSON line;
// exits 0 when both hold, 1 otherwise.
//
//   node tests/browser/token-test.mjs URL CAMERA.y4m TOKEN
import { launchWithCamera } from './launch.mjs';

const [url, camera, token] = process.argv.slice(2);
if (!url || !camera || !token) {
  console.log('usage: node tests/browser/token-test.mjs URL CAMERA.y4m TOKEN');
  process.exit(2);
}
const failures = [];
const result = {};
const { ctx, close } = await launchWithCamera(camera, { width: 960, height: 720 });
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  await page.goto(`${url}#token=${token}`);
  await page.waitForFunction(
    () => window.nfStats && (window.nfStats.framesDrawn >= 10 || window.nfStats.errors.length > 0),
    null, { timeout: 30000 });
  const ok = await page.evaluate(() => window.nfStats);
  result.withToken = { framesDrawn: ok.framesDrawn, errors: ok.errors };
  if (ok.framesDrawn < 10 || ok.errors.length) failures.push('no stream with the token');

  const bare = await ctx.newPage();
  await bare.goto(url);
  await bare.waitForFunction(() => window.nfStats && window.nfStats.errors.length > 0,
    null, { timeout: 30000 });
  const no = await bare.evaluate(() => window.nfStats);
  result.withoutToken = { framesDrawn: no.framesDrawn, errors: no.errors, closeCode: no.closeCode };
  if (no.closeCode !== 4403) failures.push(`close ${no.closeCode}, expected 4403`);
  if (!no.errors.some((e) => e.includes('needs a stream token'))) {
    failures.push(`no "needs a stream token" message: ${JSON.stringify(no.errors)}`);
  }
} catch (e) {
  failures.push(`driver: ${e.message}`);
} finally {
  await close();
}
console.log(JSON.stringify(result));
for (const f of failures) console.error(`token-test: FAIL ${f}`);
process.exit(failures.length ? 1 : 0);
