/**
 * `npm run train` as a user runs it (`node --import tsx trainer/bin/train.ts`): Ctrl-C (SIGINT) mid-run saves a
 * checkpoint, says how to continue and exits 130, and the same command with `--resume` continues from that
 * checkpoint instead of starting over.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { makeImages } from '../../support/images.js'

const TRAIN = fileURLToPath(new URL('../../trainer/bin/train.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
let work: string

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'train-cli-signal-'))
  await mkdir(join(work, 'faces'))
  for (const image of await makeImages({ count: 120, size: 40, seed: 21 })) {
    await writeFile(join(work, 'faces', image.name), image.bytes)
  }
})
afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

/** Runs the CLI; sends SIGINT once `when(stderr)` holds. Resolves the exit code and everything it printed. */
function trainUntil(extra: string[], when: (stderr: string) => boolean) {
  const args = ['--data', join(work, 'faces'), '--out', join(work, 'out'), '--epochs', '40', '--image-size', '32']
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      TRAIN,
      ...args,
      '--batch',
      '8',
      '--width',
      '8',
      '--threads',
      '1',
      '--backend',
      'wasm',
      ...extra,
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }
  )
  let stderr = ''
  let sent = false
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (!sent && when(stderr)) {
      sent = true
      child.kill('SIGINT')
    }
  })
  return new Promise<{ code: number | null; stderr: string }>((done) =>
    child.once('close', (code) => done({ code, stderr }))
  )
}

it('stops on Ctrl-C with a checkpoint and exit 130, and --resume continues from it', { timeout: 120_000 }, async () => {
  // Act: Ctrl-C once the second epoch is under way
  const first = await trainUntil([], (err) => /epoch 2\/40/.test(err))
  // Assess
  expect(first.code, first.stderr).toBe(130)
  expect(first.stderr).toMatch(/SIGINT: stopping after this step and saving a checkpoint/)
  expect(first.stderr).toMatch(
    /stopped after step \d+ \(epoch \d+, batch \d+\); checkpoint saved: run the same command with --resume/
  )
  expect(existsSync(join(work, 'out', 'checkpoint', 'state.json'))).toBe(true)
  expect(existsSync(join(work, 'out', 'metrics.json'))).toBe(false)

  // Act: the same command with --resume, stopped again as soon as it says where it continues
  const second = await trainUntil(['--resume'], (err) => /resumed after epoch/.test(err))
  // Assess: it continued mid-epoch, where the first run stopped, not from the start
  expect(second.stderr).toMatch(/resumed after epoch \d+, batch [1-9]\d*/)
  expect(second.code, second.stderr).toBe(130)
})
