/**
 * `agegender metrics <runId>`: a finished run's key figures from `metrics.json`, and where its report, model
 * and log are (`--report FILE` downloads the report).
 * @module
 */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { readPromotion, readRun, runKeys } from '../../core/runs.js'
import { getJson, InvalidDocumentError } from '../../core/store/object-store.js'
import { TrainMetrics } from '../../core/train-documents.js'
import { stringFlag, type Command } from '../command.js'
import { formatBytes, formatDuration, formatNumber, formatPercent } from '../format.js'
import { println, UsageError } from '../io.js'

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
    const [metrics, status, promotion] = await Promise.all([
      getJson(s3.store, keys.metrics, TrainMetrics).catch((err: unknown) => {
        if (err instanceof InvalidDocumentError) return err
        throw err
      }),
      readRun(s3.store, runId),
      readPromotion(s3.store),
    ])
    if (metrics instanceof InvalidDocumentError) {
      println(ctx.io.stderr, `${s3.uri(keys.metrics)} is not in the expected shape: ${metrics.message}`)
      return 1
    }
    if (metrics === undefined) {
      const why = !status
        ? `no run ${runId} in ${s3.store.location}`
        : status.state === 'failed'
          ? `run ${runId} failed, so it has no metrics: ${status.reason ?? 'no reason recorded'}`
          : `run ${runId} is ${status.state}: metrics appear when it ends (agegender status ${runId} --follow)`
      println(ctx.io.stderr, why)
      return 1
    }
    if (ctx.values['json']) {
      println(ctx.io.stdout, JSON.stringify(metrics, null, 2))
    } else {
      const served = promotion?.runId === runId
      const state = status
        ? `${status.state}${status.promoted ? ', promoted' : ''}${served ? ', serving' : ''}`
        : 'no status'
      println(ctx.io.stdout, `run         ${runId} (${state})`)
      println(ctx.io.stdout, figures(metrics).join('\n'))
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

function figures(m: TrainMetrics): string[] {
  const lines: string[] = []
  const counts = m.dataset.counts
  const skipped = Object.entries(m.dataset.skipped).filter(([, n]) => n > 0)
  lines.push(
    `images      train ${counts['train'] ?? 0}, val ${counts['val'] ?? 0}, test ${counts['test'] ?? 0}` +
      (skipped.length ? `; skipped ${skipped.map(([why, n]) => `${n} ${why}`).join(', ')}` : '')
  )
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
    const bands = Object.entries(t.byAgeBand).filter(([, g]) => g.count > 0)
    if (bands.length)
      lines.push(`by age      ${bands.map(([band, g]) => `${band}: ${formatNumber(g.ageMae, 1)}`).join(', ')}  (MAE)`)
  } else {
    lines.push('test        no test split: nothing to judge the model by')
  }
  if (m.val)
    lines.push(
      `validation  age MAE ${formatNumber(m.val.ageMae)}, gender accuracy ${formatPercent(m.val.genderAccuracy)}`
    )
  const totalSeconds = m.timings['totalSeconds']
  lines.push(
    `training    ${m.history.length} epochs (best ${m.bestEpoch}), ${m.config.imageSize} px` +
      (m.config.width !== undefined ? `, width ${m.config.width}` : '') +
      `, ${formatNumber(m.throughput.trainImagesPerSecond, 1)} images/s` +
      (totalSeconds !== undefined ? `, ${formatDuration(totalSeconds)} in all` : '')
  )
  lines.push(`backend     ${m.backend.description}`)
  return lines
}
