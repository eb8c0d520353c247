/**
 * Training throughput of the two-headed ResNet18 (`npm run bench:train`): images per second of
 * {@link ../trainer/step.ts}'s step (Adam, L1 + BCE, BatchNorm in training mode) on random data, at 64 and
 * 128 px, batch 32, and the PyTorch peer (`../shared/bench/torch-reference.py`, one thread) on the same
 * sizes and batch when Debian's `python3-torch` is installed.
 *
 *   tsx bench/train.ts [--sizes 64,128] [--batch 32] [--warmup 2] [--steps 3] [--repeats 3]
 *                      [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--workers N] [--profile] [--no-peer]
 *                      [--no-fma] [--threads N] [--ema DECAY]
 *
 * Each repeat times `steps` steps; the median repeat is reported. Besides wall-clock images/s it prints
 * images per CPU-second of this process (all its threads, `process.cpuUsage`): on a machine shared with other
 * work, wall time swings with their load while CPU time stays close to what an idle machine would show.
 * `--threads N` runs XNNPACK's operators on N threads (default: what the trainer uses, every core up to 8, or 1
 * with `--workers` above 1); results do not depend on it. `--workers N` runs the data-parallel step (`trainer/parallel-step.ts`) with N replicas: its wall-clock gain
 * needs N idle cores; images per CPU-second shows its overhead (equal to 1 replica's figure means none). With N
 * threads or replicas the peer also runs on N threads, so the same run shows how far this machine lets a mature
 * engine scale. `--profile` adds the ten
 * slowest kernels of one step from `tf.profile` (a kernel's time includes the kernels it runs itself).
 * `--no-fma` makes the wasm SIMD kernels use plain mul + add where the runtime has relaxed SIMD's fused
 * multiply-add (Node 22+), to time FMA against it: two runs with and without, back to back on the same machine.
 * Without FMA the convolutions also leave the engine's GEMM for XNNPACK's; the GEMM runs by default only on one
 * thread (`AGEGENDER_GEMM=on` puts it on every thread, as the README's 2-thread GEMM rows were measured). The
 * `convolutions:` line says which ran. `--ema 0.998` also moves the weight average after every step, as the
 * trainer's default recipe does (`trainer/weight-average.ts`), so the figure is a training step as the trainer
 * runs it rather than the step alone.
 * @module
 */
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { BACKEND_CHOICES, type BackendChoice, defaultWasmThreads, initEngine } from '../core/engine/index.js'
import { setSimdFmaEnabled } from '../core/engine/simd/kernels.js'
import { createModel } from '../core/model.js'
import { createTrainStep } from '../trainer/step.js'
import { WeightAverage } from '../trainer/weight-average.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const PEER_SCRIPT = path.resolve(repoRoot, '../shared/bench/torch-reference.py')
const PYTHON = '/usr/bin/python3'

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '64,128' },
    batch: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '2' },
    steps: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '3' },
    backend: { type: 'string' },
    workers: { type: 'string', default: '1' },
    profile: { type: 'boolean', default: false },
    'no-peer': { type: 'boolean', default: false },
    'no-fma': { type: 'boolean', default: false },
    threads: { type: 'string' },
    ema: { type: 'string' },
  },
})

function positive(name: string, value: string | undefined): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`)
  return n
}

const sizes = (args.sizes ?? '').split(',').map((s) => positive('sizes', s.trim()))
const batch = positive('batch', args.batch)
const warmup = Number(args.warmup)
const steps = positive('steps', args.steps)
const repeats = positive('repeats', args.repeats)
const workers = positive('workers', args.workers)
const threads =
  args.threads === undefined ? (workers > 1 ? 1 : defaultWasmThreads()) : positive('threads', args.threads)
const parallel = Math.max(workers, threads)
const emaDecay = args.ema === undefined ? undefined : Number(args.ema)
if (emaDecay !== undefined && !(emaDecay > 0 && emaDecay < 1))
  throw new Error(`--ema must be in (0, 1), got ${args.ema}`)
const backendChoice = (args.backend ?? process.env['AGEGENDER_BACKEND'] ?? 'auto') as BackendChoice
if (!BACKEND_CHOICES.includes(backendChoice)) {
  throw new Error(`--backend must be one of ${BACKEND_CHOICES.join(', ')}, got ${backendChoice}`)
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const fmt = (n: number) => n.toFixed(1)

interface Measurement {
  size: number
  wall: number
  cpu: number
  rounds: number[]
}

async function measure(size: number): Promise<Measurement> {
  const model = createModel({ inputSize: size, seed: 1 })
  const optimizer = tf.train.adam(1e-3)
  const step = createTrainStep(model, optimizer, { replicas: workers })
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D
  const age = tf.randomUniform([batch], 1, 90, 'float32', 2) as tf.Tensor1D
  const gender = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch], 0, 1, 'float32', 3), 0.5), 'float32'))
  const average = emaDecay === undefined ? undefined : new WeightAverage(model, emaDecay)
  let done = 0
  const trainStep = () => {
    step(x, age, gender)
    average?.update(done++)
  }
  for (let i = 0; i < warmup; i++) trainStep()
  const rounds: number[] = []
  const cpuRounds: number[] = []
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now()
    const c0 = cpuMs()
    for (let i = 0; i < steps; i++) trainStep()
    rounds.push((steps * batch * 1000) / (performance.now() - t0))
    cpuRounds.push((steps * batch * 1000) / (cpuMs() - c0))
  }
  if (args.profile) await profileStep(() => step(x, age, gender), size)
  await (step as { close?: () => Promise<void> }).close?.()
  tf.dispose([x, age, gender])
  average?.dispose()
  model.dispose()
  optimizer.dispose()
  return { size, wall: median(rounds), cpu: median(cpuRounds), rounds }
}

async function profileStep(run: () => void, size: number): Promise<void> {
  const t0 = performance.now()
  const info = await tf.profile(run)
  const total = performance.now() - t0
  const byKernel = new Map<string, { ms: number; calls: number }>()
  for (const k of info.kernels) {
    // Op-level wrappers (`foo__op`) and custom-gradient ops ('unnamed scope', e.g. the fused BatchNorm) repeat
    // the time of the kernels inside them.
    if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 }
    entry.ms += Number(k.kernelTimeMs) || 0
    entry.calls++
    byKernel.set(k.name, entry)
  }
  const inKernels = [...byKernel.values()].reduce((s, e) => s + e.ms, 0)
  console.log(`  profile of one step at ${size} px: ${fmt(total)} ms wall, ${fmt(inKernels)} ms in kernels`)
  for (const [name, e] of [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10)) {
    console.log(`    ${name.padEnd(24)} ${fmt(e.ms).padStart(8)} ms ${String(e.calls).padStart(5)} calls`)
  }
  console.log(
    `    ${'(outside kernels)'.padEnd(24)} ${fmt(total - inKernels).padStart(8)} ms   optimizer update, tape, JS`
  )
}

/** The PyTorch peer's training images/s on `threads` threads, or a reason it could not run. */
function peer(size: number, threads: number): { imagesPerSecond: number } | { missing: string } {
  const check = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' })
  if (check.status !== 0) {
    return { missing: 'PyTorch is not installed; to compare: apt-get install -y python3-torch python3-torchvision' }
  }
  const run = spawnSync(
    PYTHON,
    [PEER_SCRIPT, '--size', String(size), '--throughput', '20', '--threads', String(threads), '--batch', String(batch)],
    { encoding: 'utf8', timeout: 30 * 60_000 }
  )
  const match = /train_images_per_s ([\d.]+)/.exec(run.stdout ?? '')
  if (run.status !== 0 || !match) {
    return {
      missing: `${PEER_SCRIPT} failed: ${(run.stderr || run.stdout || String(run.error)).trim().split('\n').pop()}`,
    }
  }
  return { imagesPerSecond: Number(match[1]) }
}

if (args['no-fma']) setSimdFmaEnabled(false)
const engine = await initEngine({ backend: backendChoice, threads })
console.log(`backend: ${engine.description}`)
const fma = engine.report.features['simd-fma']
if (fma) console.log(`FMA ${fma.on ? 'on' : 'off'}: ${fma.detail}`)
const gemm = engine.report.features['gemm-conv']
if (gemm) console.log(`convolutions: ${gemm.on ? 'our FMA GEMM' : 'XNNPACK'}: ${gemm.detail}`)
console.log(
  `batch ${batch}, ${workers} replica${workers === 1 ? '' : 's'}${emaDecay === undefined ? '' : `, weight average ${emaDecay} after each step`}, ${warmup} warm-up steps, median of ${repeats} x ${steps} timed steps; ` +
    `${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`
)
for (const size of sizes) {
  const m = await measure(size)
  let line = `${size} px: ${fmt(m.wall)} training images/s (${fmt(m.cpu)} per CPU-second; rounds ${m.rounds.map(fmt).join(', ')})`
  if (!args['no-peer']) {
    const one = peer(size, 1)
    if ('missing' in one) line += `; peer: ${one.missing}`
    else {
      line += `; PyTorch 1 thread ${fmt(one.imagesPerSecond)} images/s, ours/peer ${(m.wall / one.imagesPerSecond).toFixed(2)}`
      const many = parallel > 1 ? peer(size, parallel) : null
      if (many && 'missing' in many) line += `; peer on ${parallel} threads: ${many.missing}`
      else if (many) {
        const scaling = (many.imagesPerSecond / one.imagesPerSecond).toFixed(2)
        line += `; PyTorch ${parallel} threads ${fmt(many.imagesPerSecond)} images/s (${scaling}x its 1 thread), ours/peer ${(m.wall / many.imagesPerSecond).toFixed(2)}`
      }
    }
  }
  console.log(line)
}
