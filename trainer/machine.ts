/**
 * The machine a run was measured on, for metrics.json and the report (figures mean little without it), and what it
 * offers data-parallel replicas.
 * @module
 */
import os from 'node:os'
import { gemmOffReason } from '../core/engine/index.js'
import type { MachineInfo } from '../core/train-documents.js'
import type { ReplicaRuntime } from './config.js'

export function machineInfo(): MachineInfo {
  const cpus = os.cpus()
  return {
    cpuModel: cpus[0]?.model.trim() || 'unknown',
    threads: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
  }
}

/**
 * What this process offers data-parallel replicas on `backend` (see `replicasFor` in config.ts). A backend still
 * to be chosen (`auto`) counts as wasm, the ladder's pick without tfjs-node; tfjs-node ignores the thread count
 * that this guess sizes, and the trainer decides again on the backend it got.
 */
export function replicaRuntime(backend: string): ReplicaRuntime {
  return {
    backend: backend === 'auto' ? 'wasm' : backend,
    gemm: gemmOffReason() === null,
    cores: os.availableParallelism(),
  }
}
