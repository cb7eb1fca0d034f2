// launch.mjs - Debian's headless Chromium with a fake camera playing a
// .y4m, as the browser tests and the screenshot tool use it (options from
// FACTS.md: no sandbox, no GPU, nothing fetched in the background).
//
//   const { ctx, close } = await launchWithCamera(camera, { width, height });
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launchWithCamera(camera, viewport) {
  const dir = mkdtempSync(join(tmpdir(), 'nf-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport,
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`,
    ],
  });
  const close = async () => {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ctx, close };
}
