/** The local system tells the trigger's typed decisions in words, without reading its log lines. */
import { expect, it } from 'vitest'
import { describeDecision } from '../../local/system.js'

const at = { bucket: 'b', key: 'datasets/faces.zip' }

it('names the run that was queued, the reason a dataset was skipped, and why a submission failed', () => {
  expect(describeDecision({ ...at, result: 'submitted', runId: 'r1', jobId: 'j1' })).toBe(
    '[trigger] datasets/faces.zip: run r1 queued'
  )
  expect(describeDecision({ ...at, result: 'skipped', reason: 'run already exists (running)', runId: 'r1' })).toBe(
    '[trigger] datasets/faces.zip: skipped (run already exists (running))'
  )
  expect(describeDecision({ ...at, result: 'failed', runId: 'r1', error: new Error('queue full') })).toBe(
    '[trigger] datasets/faces.zip: run r1 could not be queued: queue full'
  )
})

it('says nothing about skipped writes outside datasets/ (statuses, models)', () => {
  expect(
    describeDecision({ bucket: 'b', key: 'runs/r1/status.json', result: 'skipped', reason: 'not a dataset' })
  ).toBe(undefined)
})
