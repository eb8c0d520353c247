/**
 * `report.html`: one self-contained page (inline SVG, no scripts) with the figures people look at rather
 * than read: learning curves, error by age band, predicted vs true age, and the tables behind them.
 * @module
 */
import {
  bandLabel,
  type AgeIntervalCalibration,
  type IntervalEvaluation,
  type IntervalGroup,
} from '../core/age-interval.js'
import type { GroupMetrics, Prediction } from '../core/metrics.js'
import type { TrainMetrics } from '../core/train-documents.js'

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
const num = (v: number | null | undefined, digits = 2) =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits)

interface Series {
  readonly name: string
  readonly color: string
  readonly points: readonly [number, number][]
}

const W = 520
const H = 300
const PAD = { l: 48, r: 16, t: 16, b: 36 }

function scale(domain: [number, number], range: [number, number]) {
  const [d0, d1] = domain
  const span = d1 - d0 || 1
  return (v: number) => range[0] + ((v - d0) / span) * (range[1] - range[0])
}

function axes(
  xs: (v: number) => number,
  ys: (v: number) => number,
  xTicks: number[],
  yTicks: number[],
  xLabel: string,
  yLabel: string
) {
  const parts: string[] = []
  for (const t of yTicks) {
    parts.push(`<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${ys(t)}" y2="${ys(t)}" stroke="#eee"/>`)
    parts.push(`<text x="${PAD.l - 6}" y="${ys(t) + 4}" text-anchor="end">${+t.toFixed(2)}</text>`)
  }
  for (const t of xTicks)
    parts.push(`<text x="${xs(t)}" y="${H - PAD.b + 16}" text-anchor="middle">${+t.toFixed(2)}</text>`)
  parts.push(`<text x="${(W + PAD.l) / 2}" y="${H - 4}" text-anchor="middle">${esc(xLabel)}</text>`)
  parts.push(`<text transform="translate(12 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`)
  parts.push(
    `<rect x="${PAD.l}" y="${PAD.t}" width="${W - PAD.l - PAD.r}" height="${H - PAD.t - PAD.b}" fill="none" stroke="#999"/>`
  )
  return parts.join('')
}

function ticks(lo: number, hi: number, n = 5): number[] {
  const step = (hi - lo) / n || 1
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step)
}

export function lineChart(series: readonly Series[], xLabel: string, yLabel: string): string {
  const all = series.flatMap((s) => s.points)
  if (all.length === 0) return '<p>No data.</p>'
  const xMin = Math.min(...all.map((p) => p[0]))
  const xMax = Math.max(...all.map((p) => p[0]))
  const yMax = Math.max(...all.map((p) => p[1])) * 1.05
  const xs = scale([xMin, xMax === xMin ? xMin + 1 : xMax], [PAD.l, W - PAD.r])
  const ys = scale([0, yMax], [H - PAD.b, PAD.t])
  const lines = series.map((s) => {
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${xs(p[0]).toFixed(1)},${ys(p[1]).toFixed(1)}`).join('')
    const dots = s.points
      .map((p) => `<circle cx="${xs(p[0]).toFixed(1)}" cy="${ys(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`)
      .join('')
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>${dots}`
  })
  const legend = series
    .map(
      (s, i) =>
        `<rect x="${PAD.l + 10}" y="${PAD.t + 8 + i * 16}" width="10" height="10" fill="${s.color}"/><text x="${PAD.l + 26}" y="${PAD.t + 17 + i * 16}">${esc(s.name)}</text>`
    )
    .join('')
  const xt = [...new Set(all.map((p) => p[0]))].slice(0, 12)
  return svg(axes(xs, ys, xt, ticks(0, yMax), xLabel, yLabel) + lines.join('') + legend)
}

export function barChart(bars: readonly { label: string; value: number; note?: string }[], yLabel: string): string {
  if (bars.length === 0) return '<p>No data.</p>'
  const yMax = Math.max(...bars.map((b) => b.value)) * 1.15 || 1
  const ys = scale([0, yMax], [H - PAD.b, PAD.t])
  const slot = (W - PAD.l - PAD.r) / bars.length
  const rects = bars.map((b, i) => {
    const x = PAD.l + i * slot + slot * 0.15
    const y = ys(b.value)
    return (
      `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${(H - PAD.b - y).toFixed(1)}" fill="#4c78a8"/>` +
      `<text x="${(x + slot * 0.35).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle">${b.value.toFixed(1)}</text>` +
      `<text x="${(x + slot * 0.35).toFixed(1)}" y="${H - PAD.b + 16}" text-anchor="middle">${esc(b.label)}</text>` +
      (b.note
        ? `<text x="${(x + slot * 0.35).toFixed(1)}" y="${H - PAD.b + 28}" text-anchor="middle" fill="#888">${esc(b.note)}</text>`
        : '')
    )
  })
  const grid = ticks(0, yMax)
    .map(
      (t) =>
        `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${ys(t)}" y2="${ys(t)}" stroke="#eee"/><text x="${PAD.l - 6}" y="${ys(t) + 4}" text-anchor="end">${t.toFixed(1)}</text>`
    )
    .join('')
  return svg(
    `${grid + rects.join('')}<text transform="translate(12 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`
  )
}

export function scatter(preds: readonly Prediction[], maxPoints = 2500): string {
  if (preds.length === 0) return '<p>No test predictions.</p>'
  const step = Math.max(1, Math.ceil(preds.length / maxPoints))
  const shown = preds.filter((_, i) => i % step === 0)
  const hi = Math.max(...preds.map((p) => Math.max(p.age, p.predictedAge)), 10)
  const xs = scale([0, hi], [PAD.l, W - PAD.r])
  const ys = scale([0, hi], [H - PAD.b, PAD.t])
  const dots = shown
    .map(
      (p) =>
        `<circle cx="${xs(p.age).toFixed(1)}" cy="${ys(p.predictedAge).toFixed(1)}" r="2" fill="${p.gender ? '#e45756' : '#4c78a8'}" fill-opacity="0.35"/>`
    )
    .join('')
  const diag = `<line x1="${xs(0)}" y1="${ys(0)}" x2="${xs(hi)}" y2="${ys(hi)}" stroke="#333" stroke-dasharray="4 3"/>`
  return svg(axes(xs, ys, ticks(0, hi), ticks(0, hi), 'true age (years)', 'predicted age (years)') + diag + dots)
}

const svg = (body: string) =>
  `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">${body}</svg>`

function groupTable(title: string, groups: Record<string, GroupMetrics>): string {
  const rows = Object.entries(groups)
    .map(
      ([k, g]) =>
        `<tr><td>${esc(k)}</td><td>${g.count}</td><td>${num(g.ageMae)}</td><td>${num(g.ageRmse)}</td><td>${num(g.cs5, 3)}</td><td>${num(g.genderAccuracy, 3)}</td></tr>`
    )
    .join('')
  return `<table><caption>${esc(title)}</caption><tr><th>group</th><th>n</th><th>age MAE</th><th>RMSE</th><th>CS@5</th><th>gender acc.</th></tr>${rows}</table>`
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(1)} %`

function intervalTable(title: string, groups: Record<string, IntervalGroup>): string {
  const rows = Object.entries(groups)
    .map(
      ([k, g]) =>
        `<tr><td>${esc(k)}</td><td>${g.count}</td><td>${pct(g.coverage)}</td><td>${num(g.meanWidth, 1)}</td></tr>`
    )
    .join('')
  return `<table><caption>${esc(title)}</caption><tr><th>band</th><th>n</th><th>coverage</th><th>mean width (years)</th></tr>${rows}</table>`
}

/** The calibrated age range: how it was made and what it covered on the test split. */
export function ageIntervalSection(
  calibration: AgeIntervalCalibration | null | undefined,
  test: IntervalEvaluation | undefined
): string {
  if (!calibration)
    return '<h2>Age range</h2><p>No calibrated age range (the validation split was too small or absent).</p>'
  const bands = calibration.bands
    .map(
      (b) =>
        `<tr><td>${esc(bandLabel(b))}</td><td>${b.count}</td><td>${num(b.below, 1)}</td><td>${num(b.above, 1)}</td><td>${esc(b.shape ?? '')}</td></tr>`
    )
    .join('')
  return `<h2>Age range</h2>
<p>Each answer carries a ${pct(calibration.level)} age range: split-conformal offsets below and above the predicted age,
fitted on the validation split per band of <em>predicted</em> age (the narrowest of a symmetric, a shifted and an
equal-tails interval per band). ${
    test
      ? `On the ${test.count} test images it covered <b>${pct(test.coverage)}</b> of true ages with a mean width of <b>${num(test.meanWidth, 1)} years</b>.`
      : 'There is no test split to measure it on.'
  }</p>
<div class="grid">${test ? intervalTable('Test coverage by true age', test.byAgeBand) + intervalTable('Test coverage by predicted age band', test.byPredictedBand) : ''}
<table><caption>Calibration (validation split)</caption><tr><th>predicted age</th><th>n</th><th>below</th><th>above</th><th>shape</th></tr>${bands}</table></div>`
}

export function renderReport(m: TrainMetrics, testPredictions: readonly Prediction[]): string {
  const t = m.test
  const h = m.history
  // progressive resizing: the training image size of each epoch
  const sized = h.some((r) => r.trainImageSize !== undefined)
  const headline = t
    ? `<table><tr><th></th><th>model</th><th>trivial baseline</th></tr>
<tr><td>test age MAE (years)</td><td><b>${num(t.ageMae)}</b></td><td>${num(m.baselines?.medianAgeMae)} (always ${m.baselines?.medianAge})</td></tr>
<tr><td>test age RMSE</td><td>${num(t.ageRmse)}</td><td></td></tr>
<tr><td>CS@5</td><td>${num(t.cs5, 3)}</td><td></td></tr>
<tr><td>gender accuracy</td><td><b>${num(t.genderAccuracy, 3)}</b></td><td>${num(m.baselines?.majorityGenderAccuracy, 3)} (always ${m.baselines?.majorityGender})</td></tr>
<tr><td>gender MAE |p − label|</td><td>${num(t.genderMae, 3)}</td><td></td></tr></table>`
    : '<p>The dataset has no test images, so there are no test metrics.</p>'
  const curves = lineChart(
    [
      { name: 'train age MAE', color: '#4c78a8', points: h.map((r) => [r.epoch, r.trainAgeMae]) },
      {
        name: 'val age MAE',
        color: '#e45756',
        points: h.filter((r) => r.valAgeMae !== null).map((r) => [r.epoch, r.valAgeMae!]),
      },
    ],
    'epoch',
    'age MAE (years)'
  )
  const bands = t
    ? barChart(
        Object.entries(t.byAgeBand).map(([k, g]) => ({ label: k, value: g.ageMae, note: `n=${g.count}` })),
        'test age MAE (years)'
      )
    : ''
  const skipped = Object.entries(m.dataset.skipped)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`)
    .join('')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Training report ${esc(m.runId ?? '')}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}caption{font-weight:bold;text-align:left;padding:4px 0}
.grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:90%;color:#555}</style></head><body>
<h1>Age and gender model: training report</h1>
<p>${m.runId ? `Run <code>${esc(m.runId)}</code>, ` : ''}${esc(m.createdAt)}. Backend ${esc(m.backend.description)}.
Best epoch ${m.bestEpoch} of ${m.config.epochs} by validation age MAE; ${m.config.imageSize}px input, batch ${m.config.batchSize}.
Training ${num(m.throughput.trainImagesPerSecond, 1)} images/s.</p>
${m.machine ? `<p>${num(m.minutes, 1)} minutes on ${esc(m.machine.cpuModel)} (${m.machine.threads} threads, ${m.machine.availableParallelism} available to Node), ${m.machine.memoryGiB} GiB, Node ${esc(m.machine.node)} ${esc(m.machine.platform)}-${esc(m.machine.arch)}. Recipe: every setting is listed under <a href="#settings">Settings</a>.</p>` : ''}
<h2>Test split</h2>${headline}
${ageIntervalSection(m.ageInterval, t?.ageInterval)}
<div class="grid"><figure>${curves}<figcaption>Learning curves</figcaption></figure>
<figure>${bands}<figcaption>Test age MAE by age band</figcaption></figure>
<figure>${scatter(testPredictions)}<figcaption>Predicted vs true age on the test split (blue male, red female)</figcaption></figure></div>
${t ? groupTable('By gender', t.byGender) + groupTable('By race group', t.byRace) + groupTable('By age band', t.byAgeBand) : ''}
<h2>Data</h2><p>Source ${esc(m.dataset.source)}. Used: train ${m.dataset.counts.train ?? 0}, val ${m.dataset.counts.val ?? 0}, test ${m.dataset.counts.test ?? 0}.</p>
${skipped ? `<table><caption>Skipped files by reason</caption>${skipped}</table>` : '<p>No files skipped.</p>'}
<h2>History</h2><table><tr><th>epoch</th>${sized ? '<th>train px</th>' : ''}<th>lr</th><th>train loss</th><th>train age MAE</th><th>val age MAE</th><th>val gender acc.</th><th>img/s</th><th>s</th></tr>
${h.map((r) => `<tr><td>${r.epoch}</td>${sized ? `<td>${r.trainImageSize ?? m.config.imageSize}</td>` : ''}<td>${r.learningRate.toExponential(2)}</td><td>${num(r.trainLoss, 3)}</td><td>${num(r.trainAgeMae)}</td><td>${num(r.valAgeMae)}</td><td>${num(r.valGenderAccuracy, 3)}</td><td>${num(r.imagesPerSecond, 1)}</td><td>${num(r.seconds, 0)}</td></tr>`).join('')}</table>
<h2 id="settings">Settings</h2><pre>${esc(JSON.stringify(m.config, null, 2))}</pre>
</body></html>
`
}
