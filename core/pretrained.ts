/**
 * Loads ImageNet backbone weights in torchvision's ResNet18 layout (`model.safetensors`, as public hubs serve
 * them) into {@link createModel}'s backbone. Layer names already match the state_dict prefixes.
 *
 * Layout conversions: conv weights OIHW → HWIO; BatchNorm weight/bias/running_mean/running_var →
 * gamma/beta/moving_mean/moving_variance. `fc.*` (the ImageNet classifier) is not used by our heads.
 * @module
 */
import { readFile } from 'node:fs/promises'
import * as tf from '@tensorflow/tfjs'

export interface SafeTensor {
  readonly dtype: string
  readonly shape: number[]
  readonly data: Float32Array
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8 }

/**
 * Parses a safetensors file: 8-byte little-endian header length, JSON header, raw little-endian data.
 * F32, F16 and BF16 tensors are returned as float32; integer tensors (e.g. `num_batches_tracked`) are skipped.
 */
export function parseSafetensors(bytes: Uint8Array): Map<string, SafeTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.byteLength < 8) throw new Error('not a safetensors file: shorter than its header length')
  const headerLength = Number(view.getBigUint64(0, true))
  if (headerLength <= 0 || 8 + headerLength > bytes.byteLength) {
    throw new Error(`not a safetensors file: header length ${headerLength} exceeds file size ${bytes.byteLength}`)
  }
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >
  const dataStart = 8 + headerLength
  const tensors = new Map<string, SafeTensor>()
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue
    const width = DTYPE_BYTES[info.dtype]
    if (width === undefined) throw new Error(`tensor ${name}: unsupported dtype ${info.dtype}`)
    if (info.dtype === 'I64') continue
    const [begin, end] = info.data_offsets
    const count = info.shape.reduce((a, b) => a * b, 1)
    if (end - begin !== count * width || dataStart + end > bytes.byteLength) {
      throw new Error(`tensor ${name}: data offsets [${begin}, ${end}] do not fit shape ${info.shape}`)
    }
    const raw = bytes.subarray(dataStart + begin, dataStart + end)
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data: toFloat32(raw, info.dtype, count) })
  }
  return tensors
}

function toFloat32(raw: Uint8Array, dtype: string, count: number): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const out = new Float32Array(count)
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true)
  } else if (dtype === 'BF16') {
    const u = new Uint32Array(1)
    const f = new Float32Array(u.buffer)
    for (let i = 0; i < count; i++) {
      u[0] = view.getUint16(i * 2, true) << 16
      out[i] = f[0]!
    }
  } else {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true))
  }
  return out
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024)
  if (exp === 31) return frac ? NaN : sign * Infinity
  return sign * 2 ** (exp - 15) * (1 + frac / 1024)
}

const BN_PARAMS = ['weight', 'bias', 'running_mean', 'running_var'] as const

/**
 * Copies every backbone weight from a torchvision state_dict into the model.
 * @returns how many layers were loaded.
 * @throws when a backbone layer has no matching tensor or a shape differs (a wrong file fails loudly).
 */
export function loadTorchvisionBackbone(model: tf.LayersModel, tensors: Map<string, SafeTensor>): number {
  let loaded = 0
  for (const layer of model.layers) {
    const cls = layer.getClassName()
    if (cls === 'Conv2D') {
      const t = need(tensors, `${layer.name}.weight`)
      if (t.shape.length !== 4) {
        throw new Error(
          `layer ${layer.name}: pretrained shapes [${t.shape.join('x')}] do not match a convolution kernel`
        )
      }
      const [o, i, h, w] = t.shape as [number, number, number, number]
      const kernel = tf.tidy(() => tf.tensor4d(t.data, [o, i, h, w]).transpose([2, 3, 1, 0]))
      setWeights(layer, [kernel])
      loaded++
    } else if (cls === 'BatchNormalization') {
      const ws = BN_PARAMS.map((p) => {
        const t = need(tensors, `${layer.name}.${p}`)
        return tf.tensor1d(t.data)
      })
      setWeights(layer, ws)
      loaded++
    }
  }
  return loaded
}

function need(tensors: Map<string, SafeTensor>, name: string): SafeTensor {
  const t = tensors.get(name)
  if (!t) throw new Error(`pretrained weights lack tensor ${name}: is this a torchvision ResNet18 state_dict?`)
  return t
}

function setWeights(layer: tf.layers.Layer, weights: tf.Tensor[]): void {
  const expected = layer.getWeights().map((w) => w.shape.join('x'))
  const got = weights.map((w) => w.shape.join('x'))
  if (expected.join() !== got.join()) {
    tf.dispose(weights)
    throw new Error(`layer ${layer.name}: pretrained shapes [${got}] do not match model [${expected}]`)
  }
  layer.setWeights(weights)
  tf.dispose(weights)
}

export async function loadPretrainedFile(model: tf.LayersModel, file: string): Promise<number> {
  return loadTorchvisionBackbone(model, parseSafetensors(await readFile(file)))
}

/** Loads torchvision-layout weights already in memory (see `pretrained-source.ts` for where they come from). */
export function loadPretrainedBytes(model: tf.LayersModel, bytes: Uint8Array): number {
  return loadTorchvisionBackbone(model, parseSafetensors(bytes))
}
