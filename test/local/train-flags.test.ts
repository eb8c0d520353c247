/** `npm start`'s training flags come from the trainer's job-variable table: one flag per variable, none made up. */
import { parseArgs } from 'node:util'
import { expect, it } from 'vitest'
import { TRAIN_ENV_NAMES } from '../../local/config.js'
import { TRAIN_FLAGS, trainFlagUsage } from '../../local/train-flags.js'
import { TRAIN_ENV_VARIABLES } from '../../trainer/config.js'

it('has one flag per job variable, named after the setting in kebab case', () => {
  const variables = Object.values(TRAIN_FLAGS).map((f) => f.variable)
  expect(new Set(variables).size).toBe(variables.length)
  for (const variable of TRAIN_ENV_VARIABLES) expect(variables).toContain(variable)
  // every flag sets a variable the local system passes on to the job
  for (const variable of variables) expect(TRAIN_ENV_NAMES).toContain(variable)
  expect(TRAIN_FLAGS['batch-size']?.variable).toBe('TRAIN_BATCH_SIZE')
  expect(TRAIN_FLAGS['gender-smoothing']?.variable).toBe('TRAIN_GENDER_SMOOTHING')
  expect(TRAIN_FLAGS['pretrained-sha256']?.variable).toBe('TRAIN_PRETRAINED_SHA256')
  expect(TRAIN_FLAGS['quality-gate']?.variable).toBe('QUALITY_GATE_MAX_AGE_MAE')
})

it('prints a help line per flag with its variable, and the flags parse', () => {
  const usage = trainFlagUsage()
  for (const [flag, { variable }] of Object.entries(TRAIN_FLAGS)) {
    expect(usage).toMatch(new RegExp(`^  --${flag} \\S+ +.*\\[${variable}\\]`, 'm'))
  }
  expect(usage).toMatch(/--quality-gate MAE .*\(default 12\)/)
  const { values } = parseArgs({
    args: ['--age-loss', 'mean-variance', '--workers', '2'],
    options: Object.fromEntries(Object.keys(TRAIN_FLAGS).map((f) => [f, { type: 'string' as const }])),
  })
  expect(values).toEqual({ 'age-loss': 'mean-variance', workers: '2' })
})
