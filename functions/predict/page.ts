/**
 * The try-it page at `GET /`: plain HTML, one ES module and one stylesheet from `page/`, no build step and no
 * framework. The page posts the chosen photo (file, drop or camera) to `./predict` and draws each face's box,
 * age range and gender on a canvas (see `page/page.js`).
 *
 * The files are read once, on first request, from the `page/` folder beside this module: in the source tree
 * `functions/predict/page/`, in the Lambda bundle `/var/task/page/` (copied there by infra/predict-api.ts).
 *
 * Headers: a strict Content-Security-Policy (only this origin's script, style and API; images from blob:/data:
 * URLs the page makes itself; no inline script, no framing), camera allowed for this origin only, and the rest
 * of Hono's `secureHeaders` defaults.
 * @module
 */
import { readFileSync } from 'node:fs'
import type { Hono } from 'hono'
import { secureHeaders } from 'hono/secure-headers'

/** Where the page's files are, beside this module (or beside the bundle). */
export const PAGE_DIR = new URL('./page/', import.meta.url)

const ASSETS = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
} as const

const pageHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'blob:', 'data:'],
    mediaSrc: ["'self'", 'blob:'],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
  permissionsPolicy: { camera: ['self'], microphone: [], geolocation: [] },
  referrerPolicy: 'no-referrer',
})

/** Registers `GET /`, `/page.js` and `/page.css` on `app`. */
export function servePage(app: Hono): void {
  const cache = new Map<string, string>()
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, pageHeaders, (c) => {
      let body = cache.get(asset.file)
      if (body === undefined) {
        body = readFileSync(new URL(asset.file, PAGE_DIR), 'utf8')
        cache.set(asset.file, body)
      }
      c.header('content-type', asset.type)
      // Small files: always revalidate, so a deployment is seen at once.
      c.header('cache-control', 'no-cache')
      return c.body(body)
    })
  }
}
