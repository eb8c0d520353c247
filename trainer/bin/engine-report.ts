/**
 * `npm run engine`: initializes the TensorFlow.js engine as the trainer does and prints its report (each
 * kernel and patch on or off, with the reason); `--json` prints the report as JSON instead.
 *
 *   tsx trainer/bin/engine-report.ts [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--wasm-path DIR]
 *                                    [--threads N] [--json]
 *
 * `--threads` defaults to the trainer's: every core up to 8.
 * @module
 */
import { parseArgs } from 'node:util'
import { type BackendChoice, formatEngineReport, initEngine } from '../../core/engine/index.js'
import { parseSettings } from '../../core/zod-issues.js'
import { EngineThreads, trainingThreads } from '../config.js'

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    'wasm-path': { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const asked = values.threads ?? process.env.AGEGENDER_THREADS
const engine = await initEngine({
  backend: (values.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto') as BackendChoice,
  ...(values['wasm-path'] ? { wasmPath: values['wasm-path'] } : {}),
  threads: trainingThreads(asked === undefined ? undefined : parseSettings(EngineThreads, asked, 'threads'), 1),
})
if (values.json) console.log(JSON.stringify(engine.report, null, 2))
else
  for (const line of [`TensorFlow.js backend: ${engine.description}`, ...formatEngineReport(engine.report)])
    console.log(line)
