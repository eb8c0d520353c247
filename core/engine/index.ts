/**
 * The TensorFlow.js engine: backend selection (a probed ladder) and, on the wasm backend, this project's
 * kernels and patches. What it contains, each listed on or off with a reason in {@link EngineReport}:
 *
 * - `node-compat.ts`: `node:util` shim so tfjs-node(-gpu) 4.22 computes on Node 23+ (tfjs#8609).
 * - `ladder.ts`: tries tfjs-node-gpu, tfjs-node, wasm, cpu; each must pass a probe op.
 * - `wasm-kernels.ts` (registered kernels, wasm only): Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput
 *   (`wasm-conv.ts`: on our FMA GEMM, below, else as XNNPACK forward convolutions), Identity, MaxPoolGrad, Mean, PadV2, Slice, Sum, Tile and
 *   the fused BatchNorm gradient (`wasm-memory.ts`, on the heap directly).
 * - `simd/`: a small wasm SIMD module assembled at start (Adam, transpose, row copies, max-pool gradient,
 *   BatchNorm gradient passes) over the backend's heap; JS loops where the runtime has no SIMD, an error where
 *   the module is broken. Where the runtime has relaxed SIMD (Node 22+) the BatchNorm gradient passes use its
 *   fused multiply-add (`simd-fma` in the report).
 * - `simd/gemm.ts` + `wasm-gemm-conv.ts`: where that FMA is on, a GEMM micro-kernel of our own (4x8 f32x4
 *   accumulators, `relaxed_madd`) runs the convolutions' forward pass, filter gradient and input-gradient phases
 *   instead of XNNPACK (`gemm-conv` in the report): by default where the engine has one thread, on several with
 *   `AGEGENDER_GEMM=on` (`gemm-pool.ts`; see its header for why); XNNPACK's kernels convolve elsewhere.
 * - `wasm-threads.ts`: XNNPACK's thread pool under Node (tfjs's threaded SIMD build, which tfjs keeps from
 *   Node): `initEngine({ threads })`, what the trainer uses by default; results do not depend on the count.
 * - patches of tfjs internals, installed only with wasm and inert on other backends: `tf.fused.conv2d`
 *   (`lazy-conv-grad.ts`), `BatchNormalization.prototype.call` (`batch-norm.ts`), Adam's private state
 *   (`fused-adam.ts`: fused update, `setLearningRate`).
 *
 * Verified against tfjs {@link TESTED_TFJS_VERSION} exactly (package.json pins it; a test fails on a bump).
 * @module
 */
export {
  BACKEND_CHOICES,
  BackendChoice,
  defaultWasmThreads,
  initEngine,
  type EngineInfo,
  type EngineOptions,
} from './backend.js'
export { MAX_WASM_THREADS } from './wasm-threads.js'
export { gemmOffReason } from './simd/gemm.js'
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './wasm-kernels.js'
export { applyGradients, setLearningRate, type NamedGradient } from './fused-adam.js'
export { blendVariables } from './fused-blend.js'
export { formatEngineReport, TESTED_TFJS_VERSION, type EngineFeature, type EngineReport } from './report.js'
