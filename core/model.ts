/**
 * ResNet18 in the torchvision topology with two heads, built with TensorFlow.js layers.
 *
 * Input: `[batch, size, size, 3]` float32, normalized by `preprocess.ts`.
 * Outputs: `age` `[batch, 1]` in years, `gender` `[batch, 1]` probability of female.
 *
 * Layer names follow torchvision's `state_dict` (`conv1`, `bn1`, `layer2.0.downsample.0`, ...), so
 * torchvision weights map by name (see `pretrained.ts`). Padding is explicit, as in PyTorch: TF's `same`
 * padding is asymmetric for stride 2 on even inputs and would shift every strided window by one pixel.
 * @module
 */
import * as tf from '@tensorflow/tfjs'

export interface ModelOptions {
  /** Square input size in pixels; any multiple of 32 works. */
  readonly inputSize: number
  /** Initial bias of the age head: the training median makes the first steps useful. @default 30 */
  readonly ageBias?: number
  /** Dropout before the heads. @default 0 */
  readonly dropout?: number
  readonly seed?: number
  /**
   * Channels of the first stage; later stages double it. 64 is ResNet18 (and what pretrained weights need);
   * smaller widths give a proportionally cheaper model for smoke tests and tiny datasets.
   * @default 64
   */
  readonly width?: number
  /**
   * `regression`: one linear unit gives the age. `distribution` (DLDL-v2, Gao et al. 2018): {@link AGE_BINS}
   * logits (`age_logits`), their softmax (`age_distribution`) and its expectation, a frozen dense layer whose
   * kernel is the bin ages, as the `age` output; the outputs stay `[age, gender]` either way.
   * @default 'regression'
   */
  readonly ageHead?: AgeHead
}

export type AgeHead = 'regression' | 'distribution'
/** Bins of the distribution head: whole years 0–116, UTKFace's range. */
export const AGE_BINS = 117
/** Spread (years) of the starting prior of the distribution head, centred on `ageBias`. */
const AGE_PRIOR_SIGMA = 15

/** PyTorch BatchNorm defaults: eps 1e-5, running stats updated with momentum 0.1. */
const BN = { epsilon: 1e-5, momentum: 0.9 } as const
const STAGES = [
  { name: 'layer1', filters: 64, stride: 1 },
  { name: 'layer2', filters: 128, stride: 2 },
  { name: 'layer3', filters: 256, stride: 2 },
  { name: 'layer4', filters: 512, stride: 2 },
] as const

type Layer = (x: tf.SymbolicTensor) => tf.SymbolicTensor

function seeded(seed: number | undefined, offset: number) {
  return seed === undefined ? {} : { seed: seed + offset }
}

export function createModel(options: ModelOptions): tf.LayersModel {
  const { inputSize, ageBias = 30, dropout = 0, seed, width = 64, ageHead = 'regression' } = options
  if (!Number.isInteger(inputSize) || inputSize < 32 || inputSize % 32 !== 0) {
    throw new Error(`inputSize must be a multiple of 32 and at least 32, got ${inputSize}`)
  }
  if (!Number.isInteger(width) || width < 4 || width % 4 !== 0) {
    throw new Error(`width must be a positive multiple of 4, got ${width}`)
  }
  let layerCount = 0
  // He-normal (fan_out) as torchvision initializes convolutions.
  const conv = (name: string, filters: number, kernel: number, stride: number, pad: number): Layer => {
    const c = tf.layers.conv2d({
      name,
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: pad === (kernel - 1) / 2 && stride === 1 ? 'same' : 'valid',
      useBias: false,
      kernelInitializer: tf.initializers.varianceScaling({
        scale: 2,
        mode: 'fanOut',
        distribution: 'normal',
        ...seeded(seed, layerCount++),
      }),
    })
    if (stride === 1 || pad === 0) return (x) => c.apply(x) as tf.SymbolicTensor
    const p = tf.layers.zeroPadding2d({ name: `${name}.pad`, padding: pad })
    return (x) => c.apply(p.apply(x)) as tf.SymbolicTensor
  }
  const bn = (name: string): Layer => {
    const b = tf.layers.batchNormalization({ name, axis: -1, ...BN })
    return (x) => b.apply(x) as tf.SymbolicTensor
  }
  const relu = (name: string): Layer => {
    const r = tf.layers.reLU({ name })
    return (x) => r.apply(x) as tf.SymbolicTensor
  }

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'image' })
  let x = relu('relu')(bn('bn1')(conv('conv1', width, 7, 2, 3)(input)))
  x = tf.layers.zeroPadding2d({ name: 'maxpool.pad', padding: 1 }).apply(x) as tf.SymbolicTensor
  x = tf.layers
    .maxPooling2d({ name: 'maxpool', poolSize: 3, strides: 2, padding: 'valid' })
    .apply(x) as tf.SymbolicTensor

  let channels = width
  for (const stage of STAGES) {
    const filters = (stage.filters / 64) * width
    for (let block = 0; block < 2; block++) {
      const stride = block === 0 ? stage.stride : 1
      const p = `${stage.name}.${block}`
      let y = relu(`${p}.relu1`)(bn(`${p}.bn1`)(conv(`${p}.conv1`, filters, 3, stride, 1)(x)))
      y = bn(`${p}.bn2`)(conv(`${p}.conv2`, filters, 3, 1, 1)(y))
      const shortcut =
        stride !== 1 || channels !== filters
          ? bn(`${p}.downsample.1`)(conv(`${p}.downsample.0`, filters, 1, stride, 0)(x))
          : x
      x = relu(`${p}.relu2`)(tf.layers.add({ name: `${p}.add` }).apply([y, shortcut]) as tf.SymbolicTensor)
      channels = filters
    }
  }
  let features = tf.layers.globalAveragePooling2d({ name: 'avgpool' }).apply(x) as tf.SymbolicTensor
  if (dropout > 0) {
    features = tf.layers
      .dropout({ name: 'dropout', rate: dropout, ...seeded(seed, 1000) })
      .apply(features) as tf.SymbolicTensor
  }
  const age = ageHead === 'distribution' ? distributionHead(features, seed) : regressionHead(features, ageBias, seed)
  const gender = tf.layers
    .dense({ name: 'gender', units: 1, activation: 'sigmoid', ...headInit(seed, 3000) })
    .apply(features) as tf.SymbolicTensor
  const model = tf.model({ name: 'resnet18_age_gender', inputs: input, outputs: [age, gender] })
  if (ageHead === 'distribution') initDistributionHead(model, ageBias)
  return model
}

function regressionHead(features: tf.SymbolicTensor, ageBias: number, seed: number | undefined): tf.SymbolicTensor {
  return tf.layers
    .dense({
      name: 'age',
      units: 1,
      biasInitializer: tf.initializers.constant({ value: ageBias }),
      ...headInit(seed, 2000),
    })
    .apply(features) as tf.SymbolicTensor
}

function distributionHead(features: tf.SymbolicTensor, seed: number | undefined): tf.SymbolicTensor {
  const logits = tf.layers
    .dense({ name: 'age_logits', units: AGE_BINS, ...headInit(seed, 2000) })
    .apply(features) as tf.SymbolicTensor
  const distribution = tf.layers.softmax({ name: 'age_distribution' }).apply(logits) as tf.SymbolicTensor
  return tf.layers
    .dense({ name: 'age', units: 1, useBias: false, trainable: false })
    .apply(distribution) as tf.SymbolicTensor
}

/** The expectation kernel holds the bin ages; the logits start as a wide Gaussian prior around `ageBias`. */
function initDistributionHead(model: tf.LayersModel, ageBias: number): void {
  const bins = Array.from({ length: AGE_BINS }, (_, k) => k)
  const expectation = model.getLayer('age')
  const kernel = tf.tensor2d(bins, [AGE_BINS, 1])
  expectation.setWeights([kernel])
  const logits = model.getLayer('age_logits')
  const [logitKernel] = logits.getWeights()
  const prior = tf.tensor1d(bins.map((k) => -((k - ageBias) ** 2) / (2 * AGE_PRIOR_SIGMA ** 2)))
  logits.setWeights([logitKernel!, prior])
  tf.dispose([kernel, prior])
}

/** The `age_logits` layer's output when `model` has a distribution head, else undefined. */
export function ageLogitsOutput(model: tf.LayersModel): tf.SymbolicTensor | undefined {
  const layer = model.layers.find((l) => l.name === 'age_logits')
  return layer?.output as tf.SymbolicTensor | undefined
}

function headInit(seed: number | undefined, offset: number) {
  return { kernelInitializer: tf.initializers.glorotUniform({ ...seeded(seed, offset) }) }
}

/** The backbone's pooled features `[batch, 512]`, sharing weights with `model`. */
export function featureExtractor(model: tf.LayersModel): tf.LayersModel {
  return tf.model({ inputs: model.inputs, outputs: model.getLayer('avgpool').output as tf.SymbolicTensor })
}
