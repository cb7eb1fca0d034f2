// demo-test.mjs - drives the demo page in Debian's headless Chromium with a
// fake camera playing a .y4m: streams FRAMES frames, exercises the drift
// correction switch and the cache reset, reads the page's own statistics
// (window.nfStats) back and checks them, compares the output canvas with
// the input, saves a screenshot, and checks the messages for a browser
// without a needed API and for a denied camera. Prints one JSON line of results;
// exits 0 when every check passed, 1 otherwise (each failure on stderr).
//
//   node tests/browser/demo-test.mjs URL CAMERA.y4m OUT.png [FRAMES [MARKER]]
//
// With MARKER, after the checks it creates the file MARKER and waits for
// the page to reconnect on its own (the caller restarts the server on the
// same port when MARKER appears) and to draw 10 more frames.
//
// Bounds (generous: this checks that the page works, the benchmarks
// measure speed): output at least 5 fps over the run, glass-to-glass p95
// under 1000 ms, zero errors, zero reconnects, every frame answered but
// the server's drops, output differing from the input by at least 8
// levels on average.
import { writeFileSync } from 'node:fs';
import { launchWithCamera } from './launch.mjs';

const [url, camera, out, framesArg = '300', marker] = process.argv.slice(2);
if (!url || !camera || !out || url === '--help') {
  console.log('usage: node tests/browser/demo-test.mjs URL CAMERA.y4m OUT.png [FRAMES]');
  process.exit(url === '--help' ? 0 : 2);
}
const FRAMES = Number(framesArg);
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

const { ctx, close } = await launchWithCamera(camera, { width: 1280, height: 900 });
const consoleErrors = [];
let result = {};
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(
    (n) => window.nfStats && (window.nfStats.framesDrawn >= n || window.nfStats.errors.length > 0),
    FRAMES,
    { timeout: 240000, polling: 200 },
  );
  const seconds = (Date.now() - t0) / 1000;
  // Let the stats panel refresh once, then read it.
  await page.waitForTimeout(600);
  const s = await page.evaluate(() => JSON.parse(JSON.stringify(window.nfStats)));

  // The page's controls: correction off (the server confirms in 'state'),
  // on again, then a cache reset; frames must keep flowing.
  const states = s.stateMessages;
  await page.click('#correction');
  await page.waitForFunction((n) => window.nfStats.stateMessages > n && !window.nfStats.correction, states, { timeout: 10000 });
  await page.click('#correction');
  await page.waitForFunction((n) => window.nfStats.stateMessages > n + 1 && window.nfStats.correction, states, { timeout: 10000 });
  const drawnBefore = await page.evaluate(() => window.nfStats.framesDrawn);
  await page.click('#reset');
  await page.waitForFunction((n) => window.nfStats.stateMessages > n + 2, states, { timeout: 10000 });
  await page.waitForFunction((n) => window.nfStats.framesDrawn >= n + 10, drawnBefore, { timeout: 30000 });

  // Output against input: the video frame scaled to the output's size.
  const cmp = await page.evaluate(() => {
    const out = document.getElementById('output');
    const video = document.getElementById('video');
    const w = out.width;
    const h = out.height;
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const cx = c.getContext('2d');
    cx.drawImage(video, 0, 0, w, h);
    const a = cx.getImageData(0, 0, w, h).data;
    const b = out.getContext('2d').getImageData(0, 0, w, h).data;
    let diff = 0;
    let sum = 0;
    let sum2 = 0;
    let n = 0;
    for (let i = 0; i < a.length; i += 4) {
      for (let k = 0; k < 3; k++) {
        diff += Math.abs(a[i + k] - b[i + k]);
        sum += b[i + k];
        sum2 += b[i + k] * b[i + k];
        n++;
      }
    }
    const mean = sum / n;
    return { width: w, height: h, meanAbsDiff: diff / n, outputStd: Math.sqrt(sum2 / n - mean * mean) };
  });
  await page.screenshot({ path: out });
  const after = await page.evaluate(() => JSON.parse(JSON.stringify(window.nfStats)));

  const fpsRun = s.framesDrawn / seconds;
  result = { seconds, fpsRun, stats: s, after: { framesDrawn: after.framesDrawn, errors: after.errors, state: after.state }, compare: cmp, consoleErrors };
  check(s.framesDrawn >= FRAMES, `only ${s.framesDrawn} of ${FRAMES} frames drawn`);
  check(s.errors.length === 0 && after.errors.length === 0, `page errors: ${JSON.stringify(after.errors)}`);
  check(consoleErrors.length === 0, `console errors: ${JSON.stringify(consoleErrors)}`);
  check(s.state === 'streaming' && after.state === 'streaming', `state ${s.state} / ${after.state}`);
  check(s.reconnects === 0, `${s.reconnects} reconnects`);
  check(fpsRun >= 5, `output ${fpsRun.toFixed(1)} fps over the run, expected >= 5`);
  check(s.latencyP50 > 0 && s.latencyP95 < 1000, `latency p50 ${s.latencyP50} p95 ${s.latencyP95} ms, expected 0 < p95 < 1000`);
  check(s.framesReceived + s.dropped >= s.framesSent - 2, `sent ${s.framesSent}, received ${s.framesReceived}, dropped ${s.dropped}: frames unaccounted for`);
  check(s.stages.predict > 0 && s.stages.network >= 0, `stage timings missing: ${JSON.stringify(s.stages)}`);
  check(Number.isFinite(s.drift) && s.drift >= 0, `drift ${s.drift}`);
  check(['worker', 'main'].includes(s.encoder), `encoder ${s.encoder}`);
  check(cmp.meanAbsDiff >= 8, `output differs from the input by only ${cmp.meanAbsDiff.toFixed(2)} levels`);
  check(cmp.outputStd >= 10, `output looks blank (std ${cmp.outputStd.toFixed(2)})`);

  // Failures a person can meet, each with its own message: a browser
  // without a needed API, and a denied camera (both simulated in a fresh
  // page before the page's script runs).
  const lacking = await ctx.newPage();
  await lacking.addInitScript(() => {
    delete window.createImageBitmap;
  });
  await lacking.goto(url.replace('autostart=1', 'autostart=0'));
  const lackText = await lacking.textContent('#errors');
  check(/lacks createImageBitmap/.test(lackText), `no unsupported-browser message (${lackText})`);
  check(await lacking.isDisabled('#start'), 'Start is enabled in an unsupported browser');
  await lacking.close();
  const denied = await ctx.newPage();
  await denied.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () =>
      Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  });
  await denied.goto(url);
  await denied.waitForFunction(() => window.nfStats.errors.length > 0, null, { timeout: 10000 });
  const deniedText = await denied.textContent('#errors');
  check(/Camera permission denied/.test(deniedText), `no permission-denied message (${deniedText})`);
  check((await denied.textContent('#start')) === 'Start', 'Start did not come back after a denied camera');
  await denied.close();

  if (marker) {
    const before = after.framesDrawn;
    writeFileSync(marker, 'restart the server now\n');
    try {
      await page.waitForFunction(() => window.nfStats.state === 'reconnecting', null, { timeout: 30000 });
      const notice = await page.textContent('#notice');
      result.reconnectNotice = notice;
      await page.waitForFunction(
        (n) => window.nfStats.reconnects >= 1 && window.nfStats.state === 'streaming' && window.nfStats.framesDrawn >= n + 10,
        before,
        { timeout: 60000, polling: 200 },
      );
      const r = await page.evaluate(() => JSON.parse(JSON.stringify(window.nfStats)));
      result.reconnect = { reconnects: r.reconnects, framesDrawn: r.framesDrawn, errors: r.errors, closeCode: r.closeCode };
      // SIGTERM closes with 1001; retries while the server is down are
      // refused (1006) until it listens again.
      check(/going away.*reconnecting/.test(notice), `the notice does not say the server went away (${notice})`);
      check(r.errors.length === 0, `errors around the reconnect: ${JSON.stringify(r.errors)}`);
    } catch (e) {
      failures.push(`no reconnect after the server restart: ${e.message}`);
    }
  }
} catch (e) {
  failures.push(`driver: ${e.message}`);
} finally {
  await close();
}
console.log(JSON.stringify(result));
for (const f of failures) console.error(`demo-test: FAIL ${f}`);
process.exit(failures.length ? 1 : 0);
