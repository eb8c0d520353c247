/**
 * What the engine actually runs with: the chosen backend, why the ladder passed over the ones before it, and
 * each kernel set and patch on or off with the reason. Printed by the trainer, stored in metrics.json.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'

/** The tfjs version every patch and heap access in this folder was verified against (package.json pins it). */
export const TESTED_TFJS_VERSION = '4.22.0'

export const EngineFeature = z
  .object({
    on: z.boolean(),
    /** What is on (e.g. which kernels), or why it is off. */
    detail: z.string(),
  })
  .readonly()
export type EngineFeature = z.infer<typeof EngineFeature>

/** Stored in `metrics.json` as `engine` (see core/train-documents.ts). */
export const EngineReport = z
  .object({
    /** The tfjs backend name: `tensorflow`, `wasm` or `cpu`. */
    backend: z.string(),
    /** `process.version` */
    node: z.string(),
    /** tfjs packages in use and their versions. */
    tfjs: z.record(z.string(), z.string()).readonly(),
    /** Ladder rungs passed over before this backend, `choice: reason`. */
    fallbacks: z.array(z.string()).readonly(),
    /** Every kernel set and patch of this engine by name (see `index.ts`). */
    features: z.record(z.string(), EngineFeature).readonly(),
  })
  .readonly()
export type EngineReport = z.infer<typeof EngineReport>

export const on = (detail: string): EngineFeature => ({ on: true, detail })
export const off = (detail: string): EngineFeature => ({ on: false, detail })

/** Versions of the tfjs packages in use (`@tensorflow/tfjs-backend-wasm` added by the caller when loaded). */
export function tfjsVersions(): Record<string, string> {
  return { ...(tf.version as Record<string, string>) }
}

/** The feature that says whether the tfjs in use is the one the engine was verified against. */
export function versionCheck(versions: Readonly<Record<string, string>>): EngineFeature {
  const other = Object.entries(versions).filter(([, v]) => v !== TESTED_TFJS_VERSION)
  return other.length
    ? off(
        `verified against tfjs ${TESTED_TFJS_VERSION}, running ${other.map(([k, v]) => `${k} ${v}`).join(', ')}: patches may not hold`
      )
    : on(`tfjs ${TESTED_TFJS_VERSION}, as verified`)
}

/** The report as log lines. */
export function formatEngineReport(report: EngineReport): string[] {
  const lines = [`engine: ${report.backend} on Node ${report.node}, tfjs ${report.tfjs['tfjs-core'] ?? '?'}`]
  for (const fallback of report.fallbacks) lines.push(`  passed over ${fallback}`)
  for (const [name, f] of Object.entries(report.features)) lines.push(`  ${f.on ? 'on ' : 'off'} ${name}: ${f.detail}`)
  return lines
}
