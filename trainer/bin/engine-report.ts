/**
 * `npm run engine`: initializes the TensorFlow.js engine as the trainer does and prints its report (each
 * kernel and patch on or off, with the reason); `--json` prints the report as JSON instead.
 *
 *   tsx trainer/bin/engine-report.ts [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--wasm-path DIR] [--json]
 * @module
 */
import { parseArgs } from 'node:util'
import { type BackendChoice, formatEngineReport, initEngine } from '../../core/engine/index.js'

const { values } = parseArgs({
  options: { backend: { type: 'string' }, 'wasm-path': { type: 'string' }, json: { type: 'boolean', default: false } },
})
const engine = await initEngine({
  backend: (values.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto') as BackendChoice,
  ...(values['wasm-path'] ? { wasmPath: values['wasm-path'] } : {}),
})
if (values.json) console.log(JSON.stringify(engine.report, null, 2))
else
  for (const line of [`TensorFlow.js backend: ${engine.description}`, ...formatEngineReport(engine.report)])
    console.log(line)
