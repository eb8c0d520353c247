import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { createModel, featureExtractor } from '../../core/model.js'
import { loadPretrainedFile, loadTorchvisionBackbone, parseSafetensors } from '../../core/pretrained.js'
import { SHARED_DIR, sharedPresent } from '../support/shared.js'

const FIXTURE = resolve(SHARED_DIR, 'fixtures/resnet18-torchvision')
const present = sharedPresent('fixtures/resnet18-torchvision/model.safetensors', 'torchvision parity')

const f32 = (name: string) => {
  const b = readFileSync(`${FIXTURE}/${name}`)
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))
}

describe.skipIf(!present)('torchvision ResNet18 weights', () => {
  beforeAll(async () => {
    await initEngine()
  })

  it('reproduce the reference backbone features to 1e-4', async () => {
    // GIVEN our model with the fixture's weights
    const model = createModel({ inputSize: 64 })
    const layers = await loadPretrainedFile(model, `${FIXTURE}/model.safetensors`)
    expect(layers).toBe(40) // 20 convolutions + 20 batch norms
    // WHEN the fixture input goes through the backbone in inference mode
    const x = tf.tensor4d(f32('input_nhwc.f32'), [2, 64, 64, 3])
    const features = featureExtractor(model).predict(x) as tf.Tensor
    // THEN it matches torchvision's pooled layer4 output
    const got = await features.data()
    const want = f32('features.f32')
    let worst = 0
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!))
    expect(got.length).toBe(want.length)
    expect(worst).toBeLessThan(1e-4)
    // and the ImageNet classifier applied by hand gives the reference logits
    const tensors = parseSafetensors(readFileSync(`${FIXTURE}/model.safetensors`))
    const w = tensors.get('fc.weight')!
    const b = tensors.get('fc.bias')!
    const logits = tf.tidy(() =>
      features.matMul(tf.tensor2d(w.data, w.shape as [number, number]), false, true).add(tf.tensor1d(b.data))
    )
    const l = await logits.data()
    const wantLogits = f32('logits.f32')
    let worstLogit = 0
    for (let i = 0; i < wantLogits.length; i++) worstLogit = Math.max(worstLogit, Math.abs(l[i]! - wantLogits[i]!))
    expect(worstLogit).toBeLessThan(1e-3)
    tf.dispose([x, features, logits])
    model.dispose()
  })
})

// needs no fixture: it builds its own broken safetensors file
it('fails clearly on a file that is not a ResNet18 state_dict', () => {
  const header = Buffer.from(JSON.stringify({ 'conv1.weight': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(header.length))
  const file = Buffer.concat([len, header, Buffer.alloc(4)])
  const model = createModel({ inputSize: 32, width: 8 })
  expect(() => parseSafetensors(file.subarray(0, 10))).toThrow(/header length/)
  const tensors = parseSafetensors(file)
  expect(tensors.get('conv1.weight')?.shape).toEqual([1])
  expect(() => loadTorchvisionBackbone(model, tensors)).toThrow(/conv1: pretrained shapes \[1\] do not match/)
  tensors.delete('conv1.weight')
  expect(() => loadTorchvisionBackbone(model, tensors)).toThrow(/lack tensor conv1.weight/)
  model.dispose()
})
