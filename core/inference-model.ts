/**
 * The served form of a trained model: the same outputs from fewer ops.
 *
 * - Every BatchNormalization that follows a convolution is folded into it: with `s = gamma / sqrt(var + eps)`,
 *   the kernel becomes `W·s` (per output channel) and the convolution gets a bias `beta − mean·s` (+ `b·s` when it
 *   had one). ResNet convolutions have no bias, so one is added.
 * - A ReLU that is the only consumer of such a convolution becomes the convolution's activation, so the backend
 *   runs bias and ReLU inside its fused convolution kernel (`FusedConv2D`).
 * - Dropout, the identity at inference, is removed.
 *
 * Only inference mode is preserved (BatchNorm uses its moving statistics there): the result is for prediction,
 * never for training. The transformation works on the layers topology, so any functional model qualifies; a
 * BatchNorm whose convolution has other consumers, or that normalizes another axis, is left as it is.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { loadModel, type ModelMeta } from './model-io.js'
import type { ObjectStore } from './store/object-store.js'

interface LayerJson {
  name: string
  class_name: string
  config: Record<string, unknown>
  inbound_nodes: Array<Array<[string, number, number, Record<string, unknown>]>>
}
interface ModelJson {
  class_name: string
  config: { name: string; layers: LayerJson[]; input_layers: unknown; output_layers: Array<[string, number, number]> }
}

export interface FoldReport {
  /** BatchNorm layers folded into their convolution. */
  readonly batchNorms: number
  /** ReLU layers turned into a convolution's fused activation. */
  readonly relus: number
  /** Dropout layers removed. */
  readonly dropouts: number
}

const singleInput = (layer: LayerJson) => {
  const nodes = layer.inbound_nodes
  return nodes.length === 1 && nodes[0]!.length === 1 ? nodes[0]![0]![0] : undefined
}

/**
 * A new model computing `model`'s inference outputs with BatchNorm folded into the convolutions, ReLUs fused
 * and dropout removed. `model` is left untouched (the caller disposes it when it is no longer needed).
 */
export async function toInferenceModel(model: tf.LayersModel): Promise<{ model: tf.LayersModel; folded: FoldReport }> {
  const topology = model.toJSON(null, false) as unknown as ModelJson
  const layers = topology.config.layers
  const byName = new Map(layers.map((l) => [l.name, l]))
  const consumers = new Map<string, string[]>(layers.map((l) => [l.name, []]))
  for (const l of layers)
    for (const node of l.inbound_nodes) for (const [from] of node) consumers.get(from)?.push(l.name)
  for (const [name] of topology.config.output_layers) consumers.get(name)?.push('<output>')

  /** Removed layer → the layer whose output replaces it. */
  const replacedBy = new Map<string, string>()
  const newWeights = new Map<string, tf.Tensor[]>()
  const toDispose: tf.Tensor[] = []
  const report = { batchNorms: 0, relus: 0, dropouts: 0 }
  const onlyConsumer = (name: string) => {
    const c = consumers.get(name) ?? []
    return c.length === 1 && c[0] !== '<output>' ? byName.get(c[0]!) : undefined
  }

  for (const layer of layers) {
    if (layer.class_name === 'Dropout') {
      const input = singleInput(layer)
      if (input !== undefined) {
        replacedBy.set(layer.name, input)
        report.dropouts++
      }
      continue
    }
    if (layer.class_name !== 'Conv2D' || layer.config.data_format !== 'channels_last') continue
    const bn = onlyConsumer(layer.name)
    const bnConfig = bn?.config
    const foldable =
      bn !== undefined && bn.class_name === 'BatchNormalization' && (bnConfig!.axis === -1 || bnConfig!.axis === 3)
    if (foldable) {
      const conv = model.getLayer(layer.name)
      const norm = model.getLayer(bn.name)
      const [kernel, bias] = conv.getWeights()
      const w = norm.getWeights()
      const gamma = bnConfig!.scale ? w.shift()! : null
      const beta = bnConfig!.center ? w.shift()! : null
      const [mean, variance] = w as [tf.Tensor, tf.Tensor]
      const folded = tf.tidy(() => {
        let s = tf.rsqrt(variance.add(bnConfig!.epsilon as number))
        if (gamma) s = s.mul(gamma)
        let b = mean.mul(s).neg()
        if (bias) b = b.add(bias.mul(s))
        if (beta) b = b.add(beta)
        return [kernel!.mul(s), b]
      })
      toDispose.push(...folded)
      newWeights.set(layer.name, folded)
      layer.config.use_bias = true
      replacedBy.set(bn.name, layer.name)
      report.batchNorms++
    }
    // a ReLU right after the convolution (or after its folded BatchNorm) becomes the fused activation
    const relu = onlyConsumer(foldable ? bn.name : layer.name)
    const plainRelu =
      relu &&
      ((relu.class_name === 'ReLU' && relu.config.max_value == null) ||
        (relu.class_name === 'Activation' && relu.config.activation === 'relu'))
    if (plainRelu && (layer.config.activation ?? 'linear') === 'linear') {
      layer.config.activation = 'relu'
      replacedBy.set(relu.name, layer.name)
      report.relus++
    }
  }

  const resolve = (name: string): string => {
    let n = name
    while (replacedBy.has(n)) n = replacedBy.get(n)!
    return n
  }
  const kept = layers.filter((l) => !replacedBy.has(l.name))
  for (const l of kept) for (const node of l.inbound_nodes) for (const ref of node) ref[0] = resolve(ref[0])
  topology.config.layers = kept
  topology.config.output_layers = topology.config.output_layers.map(([name, node, index]) => [
    resolve(name),
    node,
    index,
  ])

  const named: tf.NamedTensorMap = {}
  for (const l of kept) {
    const replaced = newWeights.get(l.name)
    if (replaced) {
      named[`${l.name}/kernel`] = replaced[0]!
      named[`${l.name}/bias`] = replaced[1]!
    } else {
      for (const w of model.getLayer(l.name).weights) named[w.originalName] = w.read()
    }
  }
  try {
    const { data, specs } = await tf.io.encodeWeights(named)
    const inference = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'],
        weightSpecs: specs,
        weightData: data,
      })
    )
    return { model: inference, folded: report }
  } finally {
    tf.dispose(toDispose)
  }
}

/**
 * Loads a saved model (see {@link loadModel}) in its served form: what the predict API, evaluation and the
 * trainer's final figures run. The trained form is disposed once folded.
 */
export async function loadInferenceModel(
  store: ObjectStore,
  prefix: string
): Promise<{ model: tf.LayersModel; meta: ModelMeta; folded: FoldReport }> {
  const { model: trained, meta } = await loadModel(store, prefix)
  try {
    const { model, folded } = await toInferenceModel(trained)
    return { model, meta, folded }
  } finally {
    trained.dispose()
  }
}
