/**
 * Debian's `chromium` driven by playwright-core, for the page test and `npm run screenshot`.
 *
 * No browser is downloaded: `CHROMIUM_PATH` or `/usr/bin/chromium` (`apt-get install -y chromium`; `.ci/run`
 * installs it). A fake camera (`--use-fake-device-for-media-stream`, a moving test pattern) stands in for a
 * webcam, and its permission prompt is answered yes, so the camera path of the page can be exercised too.
 * @module
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'

export const hasChromium = () => existsSync(CHROMIUM_PATH)

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
]

/** @throws Error naming how to install chromium when it is absent. */
export async function launchChromium(): Promise<Browser> {
  if (!hasChromium()) {
    throw new Error(`${CHROMIUM_PATH} is absent: apt-get install -y chromium (or set CHROMIUM_PATH)`)
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS })
}
