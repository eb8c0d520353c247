/**
 * The backend ladder with a fake backend that initializes but cannot compute (as tfjs-node 4.22 does on
 * Node 23+ without the util shim): the probe catches it and the next rung is chosen, with the reason kept.
 * Runs in its own worker (vitest `forks` pool), so registering backends here touches no other test.
 */
import * as tf from '@tensorflow/tfjs'
import { expect, it } from 'vitest'
import { activateBackend, climb, probeBackend } from '../../../core/engine/ladder.js'

/** Accepts tensors but runs no op: the first kernel throws, like a backend whose native calls fail. */
class BrokenBackend extends tf.KernelBackend {
  private readonly data = new WeakMap<object, unknown>()
  override write(values: tf.backend_util.BackendValues): object {
    const id = {}
    this.data.set(id, values)
    return id
  }
  override move(dataId: object, values: tf.backend_util.BackendValues): void {
    this.data.set(dataId, values)
  }
  override numDataIds(): number {
    return 0
  }
  override disposeData(): boolean {
    return true
  }
  override refCount(): number {
    return 1
  }
  override incRef(): void {}
  override floatPrecision(): 32 {
    return 32
  }
  override dispose(): void {}
}

it('passes over a backend whose probe op fails and says why', async () => {
  tf.registerBackend('broken-fake', () => new BrokenBackend(), 100)
  const chosen: string[] = []
  const result = await climb([
    {
      name: 'broken-fake',
      load: async () => {
        await activateBackend('broken-fake')
        return 'broken-fake'
      },
    },
    {
      name: 'cpu',
      load: async () => {
        await activateBackend('cpu')
        return 'cpu'
      },
    },
  ])
  chosen.push(result.value)
  expect(chosen).toEqual(['cpu'])
  expect(tf.getBackend()).toBe('cpu')
  expect(result.fallbacks).toHaveLength(1)
  expect(result.fallbacks[0]).toMatch(
    /^broken-fake: backend broken-fake loaded but its probe op failed: .*not registered for backend 'broken-fake'/
  )
})

it('fails with every reason when no rung works', async () => {
  await expect(
    climb([
      { name: 'a', load: () => Promise.reject(new Error('first\nsecond line dropped')) },
      { name: 'b', load: () => activateBackend('no-such-backend') },
    ])
  ).rejects.toThrow(/^no TensorFlow.js backend works \(a: first; b: backend no-such-backend failed to initialize.*\)$/)
})

it('probes values, not just the absence of errors', async () => {
  await tf.setBackend('cpu')
  expect(() => probeBackend()).not.toThrow()
  // A kernel computing wrong values on an otherwise working backend: Sum off by one.
  const sum = tf.getKernel('Sum', 'cpu')!
  tf.unregisterKernel('Sum', 'cpu')
  tf.registerKernel({
    ...sum,
    kernelFunc: (args) => {
      const out = sum.kernelFunc(args) as tf.TensorInfo
      const backend = args.backend as unknown as { data: { get(id: object): { values: Float32Array } } }
      backend.data.get(out.dataId).values[0]! += 1
      return out
    },
  })
  try {
    expect(() => probeBackend()).toThrow(/wrong results: sum 13 \(expected 12\)/)
  } finally {
    tf.unregisterKernel('Sum', 'cpu')
    tf.registerKernel(sum)
  }
})
