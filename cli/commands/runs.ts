/**
 * `agegender runs`: every run in the bucket, newest first, as a table (or JSON).
 * @module
 */
import { listRuns, readPromotion, type RunStatus } from '../../core/runs.js'
import type { Command } from '../command.js'
import { formatAgo, formatNumber, table, truncate } from '../format.js'
import { println } from '../io.js'

export const runsCommand: Command = {
  name: 'runs',
  args: '[--json]',
  summary: 'list the training runs: state, epoch, test MAE, last update',
  help: `  --json   the statuses as a JSON array`,
  options: { json: { type: 'boolean' } },
  async run({ io, values, s3 }) {
    const { store } = s3()
    const [listing, promotion] = await Promise.all([listRuns(store), readPromotion(store)])
    const statuses = listing.flatMap((l) => (l.ok ? [l.status] : []))
    const broken = listing.flatMap((l) => (l.ok ? [] : [l]))
    statuses.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.runId.localeCompare(b.runId))
    if (values['json']) {
      println(io.stdout, JSON.stringify({ runs: statuses, serving: promotion?.runId ?? null }, null, 2))
      return 0
    }
    if (statuses.length === 0 && broken.length === 0) {
      println(io.stdout, 'no runs yet: upload a dataset with `agegender upload <folder|archive>`')
      return 0
    }
    const now = io.now()
    const rows = statuses.map((s) => [
      s.runId,
      s.state,
      epochText(s),
      formatNumber(s.summary?.['testAgeMae']),
      formatAgo(s.updatedAt, now),
      truncate(note(s, promotion?.runId), 70),
    ])
    for (const b of broken) rows.push([b.runId, '?', '-', '-', '-', truncate(b.error, 70)])
    println(io.stdout, table(['RUN ID', 'STATE', 'EPOCH', 'TEST MAE', 'UPDATED', 'NOTE'], rows))
    return 0
  },
}

export function epochText(s: RunStatus): string {
  if (s.epoch === undefined && s.epochs === undefined) return '-'
  return `${s.epoch ?? 0}/${s.epochs ?? '?'}`
}

/** What else to know at a glance: serving, promoted, or the reason. */
function note(s: RunStatus, serving: string | undefined): string {
  if (s.runId === serving) return 'serving (models/latest.json)'
  if (s.state === 'succeeded' && s.promoted) return 'promoted earlier'
  return s.reason ?? ''
}
