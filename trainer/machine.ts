/**
 * The machine a run was measured on, for metrics.json and the report: figures mean little without it.
 * @module
 */
import os from 'node:os'
import type { MachineInfo } from '../core/train-documents.js'

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
