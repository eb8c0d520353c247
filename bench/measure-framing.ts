/**
 * `npm run measure:framing`: re-measures the constants in core/preprocess.ts (`UTKFACE_FRAMING`) that frame a
 * detected face the way UTKFace's aligned crops are framed.
 *
 * Pastes train-split UTKFace crops (never val/test) into `--scenes` synthetic scenes (support/scenes.ts: 1–4
 * crops each, 16–50 % of the canvas's short side, as faces appear in photos), runs the face detector
 * (core/face-detector.ts) and, for each pasted crop it finds (a detection centred in the crop's middle half),
 * expresses the pasted square in the face's own frame:
 * - eyes: eye distance d, midpoint m, angle θ → crop side / d, and (crop centre − m) rotated by −θ, over d;
 * - box: crop side / box width, (crop centre − box centre) / box width.
 * Prints the median and interquartile range of each, and |θ|. The medians are the constants.
 * @module
 */
import { parseArgs } from 'node:util'
import { initEngine } from '../core/engine/index.js'
import { loadFaceDetector } from '../core/face-detector.js'
import { decodeOriented, UTKFACE_FRAMING } from '../core/preprocess.js'
import { makeScenes, sampleUtkFace, utkfacePresent, UTKFACE_DIR } from '../support/scenes.js'

const { values: args } = parseArgs({ options: { scenes: { type: 'string', default: '150' } } })

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}
const summary = (name: string, xs: number[]) =>
  `${name.padEnd(28)} median ${quantile(xs, 0.5).toFixed(4)}  IQR ${quantile(xs, 0.25).toFixed(4)}–${quantile(xs, 0.75).toFixed(4)}`

async function main() {
  if (!utkfacePresent()) throw new Error(`${UTKFACE_DIR} is absent: measure:framing needs ../shared/data/utkface`)
  const engine = await initEngine({ backend: 'wasm' })
  const detector = await loadFaceDetector()
  const count = Number(args.scenes)
  const scenes = await makeScenes(
    await sampleUtkFace('train', count * 4, 21),
    await sampleUtkFace('train', count, 22),
    count,
    23
  )
  const pasted = scenes.reduce((n, s) => n + s.faces.length, 0)
  console.log(`${detector.name} on ${engine.description}, ${scenes.length} scenes with ${pasted} train-split crops`)
  const m = { eyeSide: [] as number[], eyeDx: [] as number[], eyeDy: [] as number[], angle: [] as number[] }
  const b = { boxSide: [] as number[], boxDx: [] as number[], boxDy: [] as number[], aspect: [] as number[] }
  let done = 0
  for (const scene of scenes) {
    const image = await decodeOriented(scene.bytes)
    const detected = await detector.detect(image)
    if (++done % 50 === 0) console.log(`  ${done}/${scenes.length}`)
    for (const { region } of scene.faces) {
      const cx = region.x + region.width / 2
      const cy = region.y + region.height / 2
      const side = region.width
      const face = detected.find((f) => {
        const fx = f.box.x + f.box.width / 2
        const fy = f.box.y + f.box.height / 2
        return Math.abs(fx - cx) < side / 4 && Math.abs(fy - cy) < side / 4
      })
      if (!face) continue
      const bw = face.box.width
      b.boxSide.push(side / bw)
      b.boxDx.push((cx - (face.box.x + bw / 2)) / bw)
      b.boxDy.push((cy - (face.box.y + face.box.height / 2)) / bw)
      b.aspect.push(face.box.height / bw)
      if (face.eyes) {
        // the subject's right eye appears on the image's left
        const [rx, ry] = face.eyes.right
        const [lx, ly] = face.eyes.left
        const d = Math.hypot(lx - rx, ly - ry)
        const theta = Math.atan2(ly - ry, lx - rx)
        const vx = cx - (rx + lx) / 2
        const vy = cy - (ry + ly) / 2
        m.eyeSide.push(side / d)
        m.eyeDx.push((Math.cos(theta) * vx + Math.sin(theta) * vy) / d)
        m.eyeDy.push((-Math.sin(theta) * vx + Math.cos(theta) * vy) / d)
        m.angle.push((Math.abs(theta) * 180) / Math.PI)
      }
    }
  }
  console.log(`faces found: ${b.boxSide.length}/${pasted}`)
  console.log(summary('box: crop side / box width', b.boxSide))
  console.log(summary('box: centre dx / box width', b.boxDx))
  console.log(summary('box: centre dy / box width', b.boxDy))
  console.log(summary('box: height / width', b.aspect))
  console.log(summary('eyes: crop side / eye dist', m.eyeSide))
  console.log(summary('eyes: centre dx / eye dist', m.eyeDx))
  console.log(summary('eyes: centre dy / eye dist', m.eyeDy))
  console.log(summary('eyes: |angle| degrees', m.angle))
  const f = (xs: number[]) => Number(quantile(xs, 0.5).toFixed(3))
  console.log(
    '\nmeasured:',
    JSON.stringify({
      box: { side: f(b.boxSide), dx: f(b.boxDx), dy: f(b.boxDy) },
      eyes: { side: f(m.eyeSide), dx: f(m.eyeDx), dy: f(m.eyeDy) },
    })
  )
  console.log('in core/preprocess.ts:', JSON.stringify(UTKFACE_FRAMING))
}

await main()
