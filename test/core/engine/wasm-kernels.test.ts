/**
 * Every custom wasm kernel against the plain JS 'cpu' backend, with the SIMD kernels and with them forced off: values, and gradients through `tf.grads` where
 * the kernel is a gradient. Shapes are small and random; tolerance is relative to the largest reference value.
 */
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyGradients, blendVariables, initEngine, WASM_TRAINING_KERNELS } from '../../../core/engine/index.js'
import { setSimdKernelsEnabled } from '../../../core/engine/simd/kernels.js'
import { asWasm, simd } from '../../../core/engine/wasm-heap.js'

type Values = Float32Array | Int32Array | Uint8Array

beforeAll(async () => {
  const engine = await initEngine({ backend: 'wasm' })
  expect(engine.name).toBe('wasm')
})

/** Deterministic values in [-1, 1). */
function random(size: number, seed: number): Float32Array {
  let s = seed * 2654435761 + 1
  const out = new Float32Array(size)
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    out[i] = (s / 2 ** 32) * 2 - 1
  }
  return out
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1)

/** Runs `f` on the named backend and returns its outputs' values; the wasm backend stays active afterwards. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Promise<Values[]> {
  await tf.setBackend(backend)
  try {
    const out = tf.tidy(f)
    const list = Array.isArray(out) ? out : [out]
    const values = list.map((t) => t.dataSync().slice() as Values)
    tf.dispose(list)
    return values
  } finally {
    await tf.setBackend('wasm')
  }
}

function expectClose(actual: Values, expected: Values, tolerance = 1e-4): void {
  expect(actual.length).toBe(expected.length)
  let scale = 0
  for (const v of expected) scale = Math.max(scale, Math.abs(v))
  let worst = 0
  let at = -1
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!)
    if (!(d <= worst)) {
      worst = d
      at = i
    }
  }
  const limit = tolerance * Math.max(scale, 1e-3)
  expect(
    worst,
    `max abs diff ${worst} at ${at} (actual ${actual[at]}, expected ${expected[at]}), scale ${scale}`
  ).toBeLessThanOrEqual(limit)
}

async function expectSame(f: () => tf.Tensor | tf.Tensor[], tolerance?: number): Promise<void> {
  const [wasm, cpu] = [await on('wasm', f), await on('cpu', f)]
  expect(wasm.length).toBe(cpu.length)
  wasm.forEach((w, i) => {
    expectClose(w, cpu[i]!, tolerance)
  })
}

// Every case runs twice: with the SIMD kernel module, and with it forced off so the JS loops that runtimes
// without wasm SIMD use are held to the same reference.
describe.each([
  ['SIMD kernels', true],
  ['JS loops (SIMD forced off)', false],
] as const)('%s', (_, simdOn) => {
  beforeAll(() => setSimdKernelsEnabled(simdOn))
  afterAll(() => setSimdKernelsEnabled(true))

  it(simdOn ? 'assembles the SIMD kernels on this runtime' : 'runs without the SIMD kernels', () => {
    if (simdOn) expect(simd(asWasm(tf.backend()))).not.toBeNull()
    else expect(simd(asWasm(tf.backend()))).toBeNull()
  })

  it('registers every kernel it exports for the wasm backend', () => {
    for (const name of Object.keys(WASM_TRAINING_KERNELS)) {
      expect(tf.getKernel(name, 'wasm')?.kernelFunc).toBe(WASM_TRAINING_KERNELS[name])
    }
  })

  describe('convolution gradients', () => {
    type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]]
    const cases: Array<{ x: number[]; k: number; co: number; stride: number; pad: Pad }> = [
      { x: [2, 7, 7, 3], k: 3, co: 5, stride: 1, pad: 'same' },
      { x: [2, 6, 6, 4], k: 3, co: 6, stride: 1, pad: 'valid' },
      { x: [3, 8, 8, 4], k: 3, co: 5, stride: 2, pad: 'same' }, // TF's asymmetric 'same' (extra bottom/right)
      { x: [2, 9, 9, 4], k: 3, co: 6, stride: 2, pad: 'same' },
      { x: [2, 9, 9, 5], k: 3, co: 4, stride: 2, pad: 'valid' },
      { x: [2, 10, 10, 4], k: 3, co: 8, stride: 2, pad: 'valid' }, // model layout: explicit zero padding + valid
      { x: [3, 10, 10, 4], k: 1, co: 6, stride: 2, pad: 'valid' },
      { x: [2, 5, 5, 6], k: 1, co: 3, stride: 1, pad: 'same' },
      { x: [2, 16, 16, 3], k: 7, co: 4, stride: 2, pad: 'same' },
      { x: [2, 11, 11, 3], k: 7, co: 4, stride: 2, pad: 3 },
      { x: [2, 6, 7, 3], k: 3, co: 2, stride: 1, pad: 1 },
      // co a multiple of 8: the FMA GEMM path where the runtime has relaxed SIMD (else XNNPACK, same cases)
      { x: [2, 7, 7, 3], k: 7, co: 8, stride: 2, pad: 3 }, // the stem: ci 3, 147 inner (not a multiple of 4)
      { x: [3, 5, 5, 8], k: 3, co: 16, stride: 1, pad: 'same' }, // 75 positions (a partial row block)
      { x: [2, 9, 9, 4], k: 3, co: 8, stride: 2, pad: 'same' },
      { x: [3, 6, 6, 8], k: 1, co: 16, stride: 2, pad: 'valid' },
      { x: [2, 4, 4, 16], k: 3, co: 512, stride: 1, pad: 'same' }, // inner dimension split in slices
      { x: [2, 16, 16, 16], k: 3, co: 256, stride: 1, pad: 1 }, // several chunks, with a partial last one
      {
        x: [2, 7, 6, 3],
        k: 3,
        co: 2,
        stride: 2,
        pad: [
          [0, 0],
          [1, 0],
          [0, 2],
          [0, 0],
        ],
      },
    ]
    for (const c of cases) {
      it(`k${c.k} s${c.stride} pad ${JSON.stringify(c.pad)} x [${c.x}] -> ${c.co}`, async () => {
        const wShape = [c.k, c.k, c.x[3]!, c.co]
        const xv = random(size(c.x), 1)
        const wv = random(size(wShape), 2)
        const f = () => {
          const x = tf.tensor4d(xv, c.x as [number, number, number, number])
          const w = tf.tensor4d(wv, wShape as [number, number, number, number])
          const y = tf.conv2d(x, w, c.stride, c.pad)
          // A random upstream gradient, so dy is not constant.
          const r = tf.tensor(random(y.size, 3), y.shape)
          const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r))
          )([x, w])
          return [y, dx!, dw!]
        }
        await expectSame(f)
      })
    }

    it('fused convolution (the served model): bias and ReLU, linear, PReLU, on the GEMM path and off it', async () => {
      for (const c of [
        { x: [2, 9, 9, 8], k: 3, co: 16, stride: 1, activation: 'relu' as const, bias: true },
        { x: [2, 9, 9, 8], k: 3, co: 16, stride: 2, activation: 'linear' as const, bias: true },
        { x: [2, 8, 8, 3], k: 7, co: 8, stride: 2, activation: 'relu' as const, bias: false },
        { x: [2, 6, 6, 4], k: 1, co: 6, stride: 1, activation: 'relu' as const, bias: true }, // co not a multiple of 8
        { x: [2, 6, 6, 4], k: 3, co: 8, stride: 1, activation: 'prelu' as const, bias: true }, // stock kernel
      ]) {
        const xv = random(size(c.x), 4)
        const wv = random(c.k * c.k * c.x[3]! * c.co, 5)
        const bv = random(c.co, 6)
        await expectSame(() =>
          tf.fused.conv2d({
            x: tf.tensor4d(xv, c.x as [number, number, number, number]),
            filter: tf.tensor4d(wv, [c.k, c.k, c.x[3]!, c.co]),
            strides: c.stride,
            pad: 'same',
            ...(c.bias ? { bias: tf.tensor1d(bv) } : {}),
            activation: c.activation,
            ...(c.activation === 'prelu' ? { preluActivationWeights: tf.tensor1d(bv.map((v) => v / 4)) } : {}),
          })
        )
      }
    })

    it('falls back to the stock kernel for padding wider than the kernel', async () => {
      const dyv = random(2 * 9 * 9 * 2, 4)
      const wv = random(3 * 3 * 3 * 2, 5)
      // Forward: [2, 3, 3, 3] padded by 4 on each side -> [2, 9, 9, 2]; k - 1 - pad < 0 has no convolution form.
      await expectSame(() =>
        tf.conv2dTranspose(tf.tensor4d(dyv, [2, 9, 9, 2]), tf.tensor4d(wv, [3, 3, 3, 2]), [2, 3, 3, 3], 1, [
          [0, 0],
          [4, 4],
          [4, 4],
          [0, 0],
        ])
      )
    })

    it('Conv2D layers: same values and gradients as stock, and no input gradient for a constant input', async () => {
      const xv = random(2 * 8 * 8 * 3, 6)
      const wv = random(3 * 3 * 3 * 4, 7)
      const layer = (useBias: boolean) => {
        const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias, biasInitializer: 'ones' })
        conv.build([null, 8, 8, 3])
        conv.setWeights([tf.tensor4d(wv, [3, 3, 3, 4]), ...(useBias ? [tf.ones([4])] : [])])
        return conv
      }
      for (const useBias of [false, true]) {
        await expectSame(() => {
          const conv = layer(useBias)
          const x = tf.tensor4d(xv, [2, 8, 8, 3])
          const vars = conv.trainableWeights.map((w) => w.read() as tf.Variable)
          const forward = conv.apply(x) as tf.Tensor
          const { grads } = tf.variableGrads(() => tf.sum(tf.square(conv.apply(x) as tf.Tensor)), vars)
          const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(conv.apply(xx) as tf.Tensor)))(x)
          const out = [forward, dx, ...vars.map((v) => grads[v.name]!)]
          for (const w of conv.weights) w.dispose()
          return out
        })
      }
      const kernelsRun = async (useBias: boolean) => {
        const conv = layer(useBias)
        const profile = await tf.profile(() => {
          tf.tidy(() => {
            const vars = conv.trainableWeights.map((w) => w.read() as tf.Variable)
            tf.variableGrads(() => tf.sum(conv.apply(tf.tensor4d(xv, [2, 8, 8, 3])) as tf.Tensor), vars)
          })
        })
        for (const w of conv.weights) w.dispose()
        return profile.kernels.map((k) => k.name)
      }
      const plain = await kernelsRun(false)
      expect(plain).toContain('Conv2DBackpropFilter')
      expect(plain).not.toContain('Conv2DBackpropInput')
      // With a bias the layer keeps tfjs's fused op, whose gradient computes both.
      expect(await kernelsRun(true)).toContain('Conv2DBackpropInput')
    })
  })

  describe('memory kernels', () => {
    it('Slice: contiguous, strided, ranks 1-5, int32 and bool', async () => {
      const v = random(2 * 3 * 4 * 5 * 6, 8)
      await expectSame(() => {
        const x = tf.tensor(v, [2, 3, 4, 5, 6])
        const x4 = tf.reshape(x, [6, 4, 5, 6])
        return [
          tf.slice(x, [1, 0, 1, 2, 1], [1, 3, 2, 3, 4]),
          tf.slice(x, [0, 1, 0, 0, 0], [2, 2, 4, 5, 6]),
          tf.slice(x4, [1, 1, 1, 0], [4, 2, 3, 6]),
          tf.slice(x4, [0, 0, 0, 3], [6, 4, 5, 1]),
          tf.slice(tf.reshape(x, [720]), [5], [100]),
          tf.slice(tf.reshape(x, [24, 30]), [3, 4], [10, 20]),
          tf.slice(tf.cast(tf.mul(x4, 100), 'int32'), [1, 1, 0, 2], [2, 3, 5, 3]),
          tf.cast(tf.slice(tf.greater(x4, 0), [1, 1, 0, 2], [2, 3, 5, 3]), 'int32'),
        ]
      })
    })

    it('Slice gradient (zero padding of the model) and PadV2', async () => {
      const v = random(2 * 6 * 6 * 3, 9)
      await expectSame(() => {
        const x = tf.tensor4d(v, [2, 6, 6, 3])
        const r = tf.tensor(random(2 * 9 * 9 * 3, 10), [2, 9, 9, 3])
        const padded = tf.pad(
          x,
          [
            [0, 0],
            [1, 2],
            [3, 0],
            [0, 0],
          ],
          0.5
        )
        const dx = tf.grad((a: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.pad(a, [
                [0, 0],
                [1, 2],
                [3, 0],
                [0, 0],
              ]),
              r
            )
          )
        )(x)
        return [
          padded,
          dx,
          tf.pad(x, [
            [1, 1],
            [0, 0],
            [0, 0],
            [0, 0],
          ]),
          tf.pad(
            x,
            [
              [0, 0],
              [0, 0],
              [0, 0],
              [2, 1],
            ],
            -1
          ),
          tf.cast(
            tf.pad(
              tf.cast(tf.mul(x, 10), 'int32'),
              [
                [0, 1],
                [1, 0],
                [0, 0],
                [1, 1],
              ],
              7
            ),
            'float32'
          ),
          tf.pad(tf.tensor1d([1, 2, 3]), [[2, 1]]),
        ]
      })
    })

    it('Tile: broadcast-style and general repeats', async () => {
      const v = random(2 * 3 * 4, 11)
      await expectSame(() => {
        const x = tf.tensor3d(v, [2, 3, 4])
        return [
          tf.tile(tf.reshape(tf.slice(x, [0, 0, 0], [1, 1, 4]), [1, 1, 1, 4]), [3, 5, 2, 1]),
          tf.tile(x, [2, 1, 3]),
          tf.tile(x, [1, 4, 1]),
          tf.tile(tf.tensor1d([1, 2, 3]), [4]),
          tf.tile(tf.cast(tf.mul(x, 9), 'int32'), [2, 2, 2]),
          tf.cast(tf.tile(tf.greater(x, 0), [1, 2, 1]), 'float32'),
        ]
      })
    })

    it('Identity shares memory without breaking immutability', async () => {
      const v = random(24, 12)
      await expectSame(() => {
        const x = tf.tensor2d(v, [4, 6])
        const clone = tf.clone(x)
        const moved = tf.variable(x)
        moved.assign(tf.zerosLike(x))
        x.dispose()
        const out = [tf.add(clone, 0), tf.add(moved, 1)]
        moved.dispose()
        return out
      })
    })

    it('Sum and Mean over leading axes, with and without keepDims, and other axes', async () => {
      const v = random(3 * 5 * 4 * 6, 13)
      await expectSame(() => {
        const x = tf.tensor4d(v, [3, 5, 4, 6])
        const flat = tf.reshape(x, [60, 6])
        const onePixel = tf.reshape(x, [30, 1, 2, 6])
        return [
          tf.sum(x, [0, 1, 2]),
          tf.mean(x, [0, 1, 2]),
          tf.sum(x, [0, 1, 2], true),
          tf.mean(x, [0, 1]),
          tf.sum(x, 0),
          tf.sum(flat, 0),
          tf.mean(flat, 0, true),
          tf.sum(tf.reshape(x, [360, 1]), 0),
          tf.sum(onePixel, [0, 1, 2]),
          tf.sum(tf.reshape(x, [90, 1, 1, 4]), [0, 1, 2]),
          tf.sum(x, [1, 2]),
          tf.mean(x, 3),
          tf.sum(x),
          tf.cast(tf.sum(tf.cast(tf.mul(x, 10), 'int32'), [0, 1, 2]), 'float32'),
        ]
      })
    })

    it('MaxPoolGrad, including ties between zeros after ReLU (SIMD for channels % 4 == 0, else JS)', async () => {
      for (const [channels, pool, stride, pad] of [
        [8, 3, 2, 'valid'],
        [8, 3, 2, 'same'],
        [4, 2, 2, 'valid'],
        [12, 3, 1, 'same'],
      ] as const) {
        const v = random(2 * 9 * 9 * channels, 16 + channels)
        await expectSame(() => {
          const x = tf.relu(tf.tensor4d(v, [2, 9, 9, channels]))
          const y = tf.maxPool(x, pool, stride, pad)
          const r = tf.tensor(random(y.size, 15), y.shape)
          return [y, tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, pool, stride, pad), r)))(x)]
        })
      }
      const v = random(2 * 9 * 9 * 5, 14)
      for (const [pool, stride, pad] of [
        [3, 2, 'valid'],
        [3, 2, 'same'],
        [2, 2, 'valid'],
        [3, 1, 'same'],
      ] as const) {
        await expectSame(() => {
          const x = tf.relu(tf.tensor4d(v, [2, 9, 9, 5]))
          const y = tf.maxPool(x, pool, stride, pad)
          const r = tf.tensor(random(y.size, 15), y.shape)
          return [y, tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, pool, stride, pad), r)))(x)]
        })
      }
    })
  })

  describe('fused Adam', () => {
    it('matches tfjs Adam on the cpu backend over several steps', async () => {
      const shapes = [[3, 3, 4, 5], [5], [7, 2]]
      const run = (fused: boolean) => {
        const vars = shapes.map((s, i) =>
          tf.variable(tf.tensor(random(size(s), 20 + i), s), true, `adam-test-${fused}-${i}`)
        )
        const optimizer = tf.train.adam(0.01)
        for (let step = 0; step < 4; step++) {
          tf.tidy(() => {
            const grads = vars.map((v, i) => ({
              name: v.name,
              tensor: tf.tensor(random(v.size, 100 * step + i), v.shape),
            }))
            // A missing gradient leaves its variable alone, as in tfjs.
            if (step === 1) grads[1]!.tensor = null as unknown as tf.Tensor
            if (fused) applyGradients(optimizer, grads)
            else optimizer.applyGradients(grads)
          })
        }
        const out = vars.map((v) => tf.clone(v))
        tf.dispose(vars)
        optimizer.dispose()
        return out
      }
      const fused = await on('wasm', () => run(true))
      const reference = await on('cpu', () => run(false))
      fused.forEach((v, i) => {
        expectClose(v, reference[i]!, 1e-5)
      })
    })

    it('keeps the optimizer state compatible with getWeights/setWeights', async () => {
      await tf.setBackend('wasm')
      const v = tf.variable(tf.tensor1d([1, 2, 3]), true, 'adam-state-test')
      const optimizer = tf.train.adam(0.1)
      tf.tidy(() => applyGradients(optimizer, [{ name: v.name, tensor: tf.tensor1d([1, -1, 0.5]) }]))
      const weights = await optimizer.getWeights()
      expect(weights.map((w) => w.name)).toEqual(['iter', 'adam-state-test/m', 'adam-state-test/v'])
      expect(Array.from(weights[0]!.tensor.dataSync())).toEqual([1])
      const again = tf.train.adam(0.1)
      await again.setWeights(weights)
      tf.tidy(() => applyGradients(again, [{ name: v.name, tensor: tf.tensor1d([1, -1, 0.5]) }]))
      expect(again.iterations).toBe(2)
      tf.dispose([v, ...weights.map((w) => w.tensor)])
      optimizer.dispose()
      again.dispose()
    })
  })

  describe('fused blend (the weight average)', () => {
    const shapes = [[3, 3, 4, 5], [5], [7, 2], [1]]
    /** Three blends with different d over variables whose sizes exercise the SIMD loop and its scalar tail. */
    const run = (fused: boolean) => {
      const targets = shapes.map((s, i) => tf.variable(tf.tensor(random(size(s), 40 + i), s), false))
      for (const [step, d] of [0.1, 0.9, 0.998].entries()) {
        const values = shapes.map((s, i) => tf.tensor(random(size(s), 50 + 10 * step + i), s))
        if (fused) blendVariables(targets, values, d)
        else
          tf.tidy(() => {
            for (const [i, t] of targets.entries()) t.assign(tf.add(tf.mul(t, d), tf.mul(values[i]!, 1 - d)))
          })
        tf.dispose(values)
      }
      const out = targets.map((t) => t.dataSync().slice())
      tf.dispose(targets)
      return out
    }

    it('gives the bits of tfjs add(mul(a, d), mul(w, 1 - d)), on wasm and on cpu', async () => {
      await tf.setBackend('wasm')
      const reference = run(false)
      expect(run(true)).toEqual(reference)
      await tf.setBackend('cpu')
      try {
        expect(run(true)).toEqual(reference)
      } finally {
        await tf.setBackend('wasm')
      }
    })

    it('writes a fresh tensor: a clone taken before keeps the old values', async () => {
      await tf.setBackend('wasm')
      const t = tf.variable(tf.tensor1d([1, 2, 3, 4, 5]), false)
      const before = t.clone()
      const w = tf.tensor1d([3, 2, 1, 0, -1])
      blendVariables([t], [w], 0.5)
      expect(Array.from(t.dataSync())).toEqual([2, 2, 2, 2, 2])
      expect(Array.from(before.dataSync())).toEqual([1, 2, 3, 4, 5])
      expect(() => blendVariables([t], [tf.tensor1d([1])], 0.5)).toThrow('one size')
      expect(() => blendVariables([t], [], 0.5)).toThrow('1 targets but 0 values')
      tf.dispose([t, before, w])
    })
  })
})
