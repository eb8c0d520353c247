/**
 * `npm run evaluate -- --model <folder> --data <folder|archive> [--split test|val|train|all] [--calibrate [--level 0.9]] [--json file]`:
 * re-computes a saved model's metrics on a dataset as served (BatchNorm folded, test-time flip), beside the
 * figures the run's metrics.json recorded. `--calibrate` fits the age range on the validation split and writes it
 * into the model's meta.json (see {@link ./evaluate-run.ts}).
 * @module
 */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { IntervalEvaluation } from '../../core/age-interval.js'
import { initEngine } from '../../core/engine/index.js'
import type { GroupMetrics } from '../../core/metrics.js'
import { EVAL_SPLITS, evaluateRun, type EvalSplit } from '../evaluate-run.js'
import { machineInfo } from '../machine.js'

const USAGE =
  'Usage: npm run evaluate -- --model <folder> --data <folder|.zip|.tar|.tar.gz> [--split test|val|train|all] ' +
  '[--calibrate] [--level 0.9] [--json <file>] [--backend NAME]'

const FIGURES: Array<[keyof GroupMetrics, string, number]> = [
  ['ageMae', 'age MAE', 3],
  ['ageRmse', 'RMSE', 3],
  ['cs5', 'CS@5', 3],
  ['genderAccuracy', 'gender accuracy', 4],
  ['genderMae', 'gender MAE', 4],
]

const pct = (v: number) => `${(v * 100).toFixed(1)} %`

function printInterval(title: string, e: IntervalEvaluation): void {
  console.log(
    `${title}: ${pct(e.level)} age range covers ${pct(e.coverage)} of ${e.count} images, mean width ${e.meanWidth.toFixed(2)} years`
  )
  for (const [band, g] of Object.entries(e.byAgeBand)) {
    console.log(
      `  true age ${band.padEnd(6)} n=${String(g.count).padStart(5)}  coverage ${pct(g.coverage).padStart(7)}  width ${g.meanWidth.toFixed(1)}`
    )
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      split: { type: 'string', default: 'test' },
      json: { type: 'string' },
      backend: { type: 'string' },
      calibrate: { type: 'boolean', default: false },
      level: { type: 'string', default: '0.9' },
    },
  })
  const level = Number(values.level)
  if (!values.model || !values.data || !EVAL_SPLITS.includes(values.split as EvalSplit) || !(level > 0 && level < 1)) {
    console.error(USAGE)
    process.exitCode = 2
    return
  }
  const engine = await initEngine({ backend: (values.backend ?? process.env.AGEGENDER_BACKEND ?? 'auto') as never })
  console.error(`TensorFlow.js backend: ${engine.description}`)
  const split = values.split as EvalSplit
  const r = await evaluateRun({
    modelDir: resolve(values.model),
    data: resolve(values.data),
    split,
    calibrate: values.calibrate,
    level,
  })
  const m = r.metrics
  console.log(
    `${split} split, ${m.count} images (${r.unreadable} unreadable): ` +
      FIGURES.map(([k, name, d]) => `${name} ${m[k].toFixed(d)}`).join(', ') +
      `, ${r.imagesPerSecond.toFixed(1)} images/s`
  )
  if (r.recorded) {
    const rec = r.recorded
    console.log(
      `the run's metrics.json (${rec.count} images): ${FIGURES.map(([k, name, d]) => `${name} ${rec[k].toFixed(d)}`).join(', ')}`
    )
    const worst = Math.max(...FIGURES.map(([k]) => Math.abs(m[k] - rec[k])))
    console.log(
      `largest difference ${worst.toExponential(2)}${rec.count === m.count && worst < 1e-3 ? ': reproduced' : ''}`
    )
  }
  for (const [band, g] of Object.entries(m.byAgeBand))
    console.log(`  age ${band.padEnd(6)} n=${String(g.count).padStart(5)}  MAE ${g.ageMae.toFixed(2)}`)
  if (r.calibrated) {
    const c = r.calibrated.calibration
    console.log(`calibrated on ${r.calibrated.val.count} validation images, ${c.bands.length} predicted-age bands:`)
    for (const b of c.bands) {
      console.log(
        `  predicted ${String(b.from).padStart(3)}-${b.to === null ? '   ' : String(b.to).padEnd(3)} n=${String(b.count).padStart(5)}  −${b.below.toFixed(1)} / +${b.above.toFixed(1)}  (${b.shape})`
      )
    }
    if (r.calibrated.test) printInterval('test split', r.calibrated.test)
    console.log(`wrote ${r.wrote.join(', ')} in ${resolve(values.model)}`)
  } else if (r.ageInterval) {
    printInterval(`${split} split`, r.ageInterval)
  }
  if (values.json) {
    const { cpuModel, threads } = machineInfo()
    await writeFile(
      values.json,
      JSON.stringify(
        {
          split,
          backend: engine,
          machine: { cpuModel, threads },
          metrics: m,
          unreadable: r.unreadable,
          ageInterval: r.ageInterval,
          recorded: r.recorded,
        },
        null,
        2
      )
    )
    console.log(`wrote ${values.json}`)
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
