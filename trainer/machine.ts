/**
 * The machine a run was measured on, for metrics.json and the report: figures mean little without it.
 * @module
 */
import os from 'node:os'

export interface MachineInfo {
  /** `os.cpus()[0].model`, e.g. "Intel(R) Xeon(R) CPU @ 2.20GHz". */
  readonly cpuModel: string
  /** Logical CPUs the OS reports (hardware threads). */
  readonly threads: number
  /** What Node may use (`os.availableParallelism()`: cgroup/affinity limits included). */
  readonly availableParallelism: number
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  readonly arch: string
}

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
