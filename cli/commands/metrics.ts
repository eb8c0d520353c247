/**
 * `agegender metrics <runId>`: a finished run's key figures from `metrics.json`, and where its report, model
 * and log are (`--report FILE` downloads the report).
 * @module
 */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { z } from 'zod'
import { runKeys } from '../../core/runs.js'
import { getJson } from '../../core/store/object-store.js'
import { stringFlag, type Command } from '../command.js'
import { formatBytes, formatDuration, formatNumber, formatPercent } from '../format.js'
import { println, UsageError } from '../io.js'
import { readPromotion, readRun } from '../run-queries.js'

const Group = z.looseObject({
  count: z.number(),
  ageMae: z.number(),
  ageRmse: z.number(),
  cs5: z.number(),
  genderAccuracy: z.number(),
})

/** The parts of the trainer's metrics.json printed here; everything else passes through untouched. */
const MetricsDoc = z.looseObject({
  test: Group.extend({ byAgeBand: z.record(z.string(), Group).optional() }).nullable(),
  val: Group.nullable().optional(),
  bestEpoch: z.number().optional(),
  baselines: z.looseObject({ medianAgeMae: z.number(), majorityGenderAccuracy: z.number() }).nullable().optional(),
  history: z.array(z.looseObject({ epoch: z.number() })).optional(),
  throughput: z
    .looseObject({ trainImagesPerSecond: z.number(), evalImagesPerSecond: z.number().nullable() })
    .optional(),
  backend: z.looseObject({ description: z.string() }).optional(),
  dataset: z
    .looseObject({ counts: z.record(z.string(), z.number()), skipped: z.record(z.string(), z.number()).optional() })
    .optional(),
  config: z.looseObject({ epochs: z.number(), imageSize: z.number(), width: z.number().optional() }).optional(),
  timings: z.record(z.string(), z.number()).optional(),
})
type MetricsDoc = z.infer<typeof MetricsDoc>

export const metricsCommand: Command = {
  name: 'metrics',
  args: '<runId> [--report FILE]',
  summary: "a finished run's test figures, and where its report.html, model and log are",
  help: `  --report FILE    also download report.html to FILE (open it in a browser)
  --json           metrics.json as stored`,
  options: { report: { type: 'string' }, json: { type: 'boolean' } },
  async run(ctx) {
    const runId = ctx.positionals[0]
    if (runId === undefined || ctx.positionals.length > 1) throw new UsageError('metrics takes one run id')
    const s3 = ctx.s3()
    const keys = runKeys(runId)
    const [raw, status, promotion] = await Promise.all([
      getJson(s3.store, keys.metrics),
      readRun(s3.store, runId),
      readPromotion(s3.store),
    ])
    if (raw === undefined) {
      const why = !status
        ? `no run ${runId} in ${s3.store.location}`
        : status.state === 'failed'
          ? `run ${runId} failed, so it has no metrics: ${status.reason ?? 'no reason recorded'}`
          : `run ${runId} is ${status.state}: metrics appear when it ends (agegender status ${runId} --follow)`
      println(ctx.io.stderr, why)
      return 1
    }
    if (ctx.values['json']) {
      println(ctx.io.stdout, JSON.stringify(raw, null, 2))
    } else {
      const parsed = MetricsDoc.safeParse(raw)
      if (!parsed.success) {
        println(ctx.io.stderr, `${s3.uri(keys.metrics)} is not in the expected shape: ${parsed.error.message}`)
        return 1
      }
      const served = promotion?.runId === runId
      const state = status
        ? `${status.state}${status.promoted ? ', promoted' : ''}${served ? ', serving' : ''}`
        : 'no status'
      println(ctx.io.stdout, `run         ${runId} (${state})`)
      println(ctx.io.stdout, figures(parsed.data).join('\n'))
      println(ctx.io.stdout)
      const reportUrl = await s3.localUrl(keys.report).catch(() => undefined)
      println(ctx.io.stdout, `report      ${s3.uri(keys.report)}`)
      if (reportUrl) println(ctx.io.stdout, `            ${reportUrl}  (open in a browser)`)
      println(
        ctx.io.stdout,
        `model       ${s3.uri(keys.model)}${served ? `  (served from ${s3.uri(promotion.modelPrefix)})` : ''}`
      )
      println(ctx.io.stdout, `log         ${s3.uri(keys.log)}`)
    }
    const reportFile = stringFlag(ctx, 'report')
    if (reportFile !== undefined) {
      const html = await s3.store.get(keys.report)
      if (!html) {
        println(ctx.io.stderr, `no report at ${s3.uri(keys.report)}`)
        return 1
      }
      const path = resolve(ctx.io.cwd, reportFile)
      await writeFile(path, html)
      println(ctx.io.stdout, `saved the report to ${path} (${formatBytes(html.byteLength)})`)
    }
    return 0
  },
}

function figures(m: MetricsDoc): string[] {
  const lines: string[] = []
  const counts = m.dataset?.counts
  if (counts) {
    const skipped = Object.entries(m.dataset?.skipped ?? {}).filter(([, n]) => n > 0)
    lines.push(
      `images      train ${counts['train'] ?? 0}, val ${counts['val'] ?? 0}, test ${counts['test'] ?? 0}` +
        (skipped.length ? `; skipped ${skipped.map(([why, n]) => `${n} ${why}`).join(', ')}` : '')
    )
  }
  if (m.test) {
    const t = m.test
    lines.push(
      `test        age MAE ${formatNumber(t.ageMae)} years, RMSE ${formatNumber(t.ageRmse)}, within 5 years ${formatPercent(t.cs5)}, ` +
        `gender accuracy ${formatPercent(t.genderAccuracy)} (${t.count} images)`
    )
    if (m.baselines) {
      lines.push(
        `baselines   median-age MAE ${formatNumber(m.baselines.medianAgeMae)}, majority-gender accuracy ${formatPercent(m.baselines.majorityGenderAccuracy)}`
      )
    }
    const bands = Object.entries(t.byAgeBand ?? {}).filter(([, g]) => g.count > 0)
    if (bands.length)
      lines.push(`by age      ${bands.map(([band, g]) => `${band}: ${formatNumber(g.ageMae, 1)}`).join(', ')}  (MAE)`)
  } else {
    lines.push('test        no test split: nothing to judge the model by')
  }
  if (m.val)
    lines.push(
      `validation  age MAE ${formatNumber(m.val.ageMae)}, gender accuracy ${formatPercent(m.val.genderAccuracy)}`
    )
  if (m.config) {
    const epochs = m.history?.length ?? m.config.epochs
    lines.push(
      `training    ${epochs} epochs (best ${m.bestEpoch ?? '?'}), ${m.config.imageSize} px` +
        (m.config.width !== undefined ? `, width ${m.config.width}` : '') +
        (m.throughput ? `, ${formatNumber(m.throughput.trainImagesPerSecond, 1)} images/s` : '') +
        (m.timings?.['totalSeconds'] !== undefined ? `, ${formatDuration(m.timings['totalSeconds'])} in all` : '')
    )
  }
  if (m.backend) lines.push(`backend     ${m.backend.description}`)
  return lines
}
