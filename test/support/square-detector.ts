/**
 * A deliberately simple, real {@link FaceDetector} for testing what the API and the page do with detections
 * (boxes, scores, several faces, none) without depending on the face model: it finds solid near-white squares
 * on a darker image (connected components of pixels whose channels are all ≥ 230, at least 8 px wide), and
 * scores each by how much of its bounding box it fills. {@link squaresScene} draws such an image.
 * @module
 */
import sharp from 'sharp'
import type { DetectedFace, FaceDetector } from '../../core/faces.js'
import type { Box, OrientedImage } from '../../core/preprocess.js'

const WHITE = 230
const MIN_SIDE = 8

export const squareDetector: FaceDetector = {
  name: 'test-white-squares',
  async detect(image: OrientedImage): Promise<DetectedFace[]> {
    const { width, height, data } = image
    const seen = new Uint8Array(width * height)
    const white = (i: number) => data[i * 3]! >= WHITE && data[i * 3 + 1]! >= WHITE && data[i * 3 + 2]! >= WHITE
    const faces: DetectedFace[] = []
    for (let start = 0; start < width * height; start++) {
      if (seen[start] || !white(start)) continue
      let x0 = width
      let y0 = height
      let x1 = -1
      let y1 = -1
      let count = 0
      const stack = [start]
      seen[start] = 1
      while (stack.length) {
        const i = stack.pop()!
        const x = i % width
        const y = (i - x) / width
        count++
        x0 = Math.min(x0, x)
        x1 = Math.max(x1, x)
        y0 = Math.min(y0, y)
        y1 = Math.max(y1, y)
        for (const j of [
          x > 0 ? i - 1 : -1,
          x < width - 1 ? i + 1 : -1,
          y > 0 ? i - width : -1,
          y < height - 1 ? i + width : -1,
        ]) {
          if (j >= 0 && !seen[j] && white(j)) {
            seen[j] = 1
            stack.push(j)
          }
        }
      }
      const box = { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 }
      if (box.width >= MIN_SIDE && box.height >= MIN_SIDE) faces.push({ box, score: count / (box.width * box.height) })
    }
    return faces.sort((a, b) => b.score - a.score || a.box.x - b.box.x)
  },
}

/** A dark-grey JPEG of `width`×`height` with a white square at each box (none: an image without "faces"). */
export async function squaresScene(width: number, height: number, boxes: readonly Box[]): Promise<Buffer> {
  const square = (b: Box) =>
    sharp({ create: { width: b.width, height: b.height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
      .png()
      .toBuffer()
  const composites = await Promise.all(boxes.map(async (b) => ({ input: await square(b), left: b.x, top: b.y })))
  return sharp({ create: { width, height, channels: 3, background: { r: 60, g: 60, b: 70 } } })
    .composite(composites)
    .jpeg({ quality: 95 })
    .toBuffer()
}
