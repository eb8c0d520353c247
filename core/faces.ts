/**
 * Faces in a photo → one age/gender answer per face. The shared inference path of the predict API, the CLI and
 * evaluation.
 *
 * ```
 * bytes → decodeOriented (EXIF applied) → detector → framed square crop per face (preprocess.cropFace)
 *       → Predictor (same preprocessing as training) → age + calibrated range, gender + probability
 * ```
 * Modes: `auto` (default) detects and falls back to the whole image when no face is found, saying so;
 * `detect` answers an empty list when no face is found; `whole` treats the image as one face crop (the
 * behaviour for pre-cropped faces such as UTKFace).
 * @module
 */
import { ageRange, type AgeRange } from './age-interval.js'
import type { Predictor } from './predictor.js'
import { cropFace, decodeOriented, wholeImageBox, type Box, type OrientedImage } from './preprocess.js'

export const FACE_MODES = ['auto', 'detect', 'whole'] as const
export type FaceMode = (typeof FACE_MODES)[number]

export interface DetectedFace {
  /** Pixels in the oriented image. */
  readonly box: Box
  /** Detector confidence in [0, 1]. */
  readonly score: number
  /** Eye centres in pixels, when the detector gives them (used to level the crop). */
  readonly eyes?: { readonly left: readonly [number, number]; readonly right: readonly [number, number] }
}

export interface FaceDetector {
  readonly name: string
  /** Faces in an oriented RGB image, best first. */
  detect(image: OrientedImage): Promise<DetectedFace[]>
}

export interface FaceAnswer {
  /** Pixels of the oriented image (EXIF applied). */
  readonly box: Box
  /** The same box as fractions of the oriented image's width and height. */
  readonly boxRelative: Box
  /** Detector confidence; null for the whole image. */
  readonly score: number | null
  readonly method: 'detector' | 'whole-image'
  /** Years. */
  readonly age: number
  /** Calibrated range; null when the model has no calibration. */
  readonly ageRange: AgeRange | null
  readonly gender: 'male' | 'female'
  /** Probability that the face is female. */
  readonly genderProbability: number
}

export interface ImageAnswer {
  /** Oriented image size. */
  readonly width: number
  readonly height: number
  readonly mode: FaceMode
  /** `auto` found no face and answered for the whole image. */
  readonly fellBack: boolean
  readonly faces: FaceAnswer[]
}

export interface FacePipelineOptions {
  readonly predictor: Predictor
  /** Without a detector, `auto` answers for the whole image and `detect` fails. */
  readonly detector?: FaceDetector
}

export class NoDetectorError extends Error {
  override readonly name = 'NoDetectorError'
}

export class FacePipeline {
  readonly predictor: Predictor
  readonly detector: FaceDetector | undefined

  constructor(options: FacePipelineOptions) {
    this.predictor = options.predictor
    this.detector = options.detector
  }

  /** @throws ImageDecodeError when the bytes are not a readable image. */
  async analyze(bytes: Uint8Array, mode: FaceMode = 'auto'): Promise<ImageAnswer> {
    const image = await decodeOriented(bytes)
    const size = this.predictor.meta.inputSize
    let detected: DetectedFace[] = []
    if (mode !== 'whole') {
      if (!this.detector) {
        if (mode === 'detect') throw new NoDetectorError('this server has no face detector; use mode "whole" or "auto"')
      } else {
        detected = await this.detector.detect(image)
      }
    }
    const fellBack = mode === 'auto' && detected.length === 0
    const regions: Array<{ box: Box; score: number | null; method: FaceAnswer['method']; pixels: Uint8Array }> = []
    if (mode === 'whole' || fellBack) {
      regions.push({
        box: wholeImageBox(image),
        score: null,
        method: 'whole-image',
        pixels: await cropFace(image, null, size),
      })
    } else {
      for (const face of detected) {
        regions.push({
          box: face.box,
          score: face.score,
          method: 'detector',
          pixels: await cropFace(image, face, size),
        })
      }
    }
    const predictions = regions.length ? await this.predictor.predictDecoded(regions.map((r) => r.pixels)) : []
    const calibration = this.predictor.meta.ageInterval
    const faces = regions.map((r, i): FaceAnswer => {
      const p = predictions[i]!
      return {
        box: r.box,
        boxRelative: {
          x: r.box.x / image.width,
          y: r.box.y / image.height,
          width: r.box.width / image.width,
          height: r.box.height / image.height,
        },
        score: r.score,
        method: r.method,
        age: p.age,
        ageRange: calibration ? ageRange(calibration, p.age) : null,
        gender: p.gender,
        genderProbability: p.genderProbability,
      }
    })
    return { width: image.width, height: image.height, mode, fellBack, faces }
  }
}
