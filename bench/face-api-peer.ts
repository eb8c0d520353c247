/**
 * The peer for face benchmarks: @vladmandic/face-api (a devDependency), its Node wasm build, on the same tfjs wasm
 * backend as ours (`face-api.node-wasm.js` requires `@tensorflow/tfjs` and `@tensorflow/tfjs-backend-wasm`, which
 * resolve to the project's copies). Call after `initEngine({ backend: 'wasm' })`.
 * @module
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Box, OrientedImage } from '../core/preprocess.js'

const require = createRequire(import.meta.url)

/** The handful of face-api calls the benchmarks use (its bundled typings do not load under NodeNext). */
interface FaceApi {
  tf: {
    tensor3d(data: Uint8Array, shape: [number, number, number], dtype: 'int32'): { dispose(): void }
    getBackend(): string
  }
  nets: Record<'ssdMobilenetv1' | 'tinyFaceDetector' | 'ageGenderNet', { loadFromDisk(dir: string): Promise<void> }>
  SsdMobilenetv1Options: new (o: { minConfidence: number; maxResults?: number }) => object
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => object
  detectAllFaces(
    input: unknown,
    options: object
  ): Promise<FaceApiDetection[]> & {
    withAgeAndGender(): Promise<
      Array<{ detection: FaceApiDetection; age: number; gender: string; genderProbability: number }>
    >
  }
}
interface FaceApiDetection {
  score: number
  box: { x: number; y: number; width: number; height: number }
}

export const FACE_API_MODEL_DIR = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model')
export const FACE_API_FILES = {
  ssd: ['ssd_mobilenetv1_model-weights_manifest.json', 'ssd_mobilenetv1_model.bin'],
  tiny: ['tiny_face_detector_model-weights_manifest.json', 'tiny_face_detector_model.bin'],
  ageGender: ['age_gender_model-weights_manifest.json', 'age_gender_model.bin'],
} as const

export type FaceApiDetector = 'ssd' | 'tiny'

export interface FaceApiPeer {
  readonly backend: string
  detect(image: OrientedImage, detector: FaceApiDetector): Promise<Array<{ box: Box; score: number }>>
  detectAgeGender(image: OrientedImage): Promise<Array<{ box: Box; score: number; age: number; gender: string }>>
}

export async function loadFaceApi(minScore = 0.5): Promise<FaceApiPeer> {
  const api = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi
  await api.nets.ssdMobilenetv1.loadFromDisk(FACE_API_MODEL_DIR)
  await api.nets.tinyFaceDetector.loadFromDisk(FACE_API_MODEL_DIR)
  await api.nets.ageGenderNet.loadFromDisk(FACE_API_MODEL_DIR)
  const options = {
    ssd: new api.SsdMobilenetv1Options({ minConfidence: minScore, maxResults: 20 }),
    tiny: new api.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: minScore }),
  }
  const withTensor = async <T>(image: OrientedImage, fn: (t: unknown) => Promise<T>): Promise<T> => {
    const t = api.tf.tensor3d(image.data, [image.height, image.width, 3], 'int32')
    try {
      return await fn(t)
    } finally {
      t.dispose()
    }
  }
  const plainBox = (b: FaceApiDetection['box']): Box => ({ x: b.x, y: b.y, width: b.width, height: b.height })
  return {
    backend: api.tf.getBackend(),
    detect: (image, detector) =>
      withTensor(image, async (t) =>
        (await api.detectAllFaces(t, options[detector])).map((d) => ({ box: plainBox(d.box), score: d.score }))
      ),
    detectAgeGender: (image) =>
      withTensor(image, async (t) =>
        (await api.detectAllFaces(t, options.ssd).withAgeAndGender()).map((r) => ({
          box: plainBox(r.detection.box),
          score: r.detection.score,
          age: r.age,
          gender: r.gender,
        }))
      ),
  }
}
