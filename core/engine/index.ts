/**
 * The TensorFlow.js engine: backend selection and the wasm training kernels.
 * @module
 */
export { BACKEND_CHOICES, initEngine, type BackendChoice, type EngineInfo, type EngineOptions } from './backend.js'
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './wasm-kernels.js'
export { applyGradients, type NamedGradient } from './fused-adam.js'
