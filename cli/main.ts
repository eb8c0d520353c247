/**
 * The `agegender` CLI: command dispatch, global options, usage text and exit codes.
 *
 * Exit codes: 0 success, 1 failure (a failed run, a missing run, an S3 or HTTP error), 2 wrong arguments.
 * @module
 */
import { parseArgs } from 'node:util'
import type { Command, OptionsConfig } from './command.js'
import { metricsCommand } from './commands/metrics.js'
import { predictCommand } from './commands/predict.js'
import { runsCommand } from './commands/runs.js'
import { statusCommand } from './commands/status.js'
import { uploadCommand } from './commands/upload.js'
import { openS3, type S3Context } from './context.js'
import { println, processIo, UsageError, type Io } from './io.js'

export const COMMANDS: readonly Command[] = [uploadCommand, runsCommand, statusCommand, metricsCommand, predictCommand]

const GLOBAL_OPTIONS: OptionsConfig = {
  bucket: { type: 'string' },
  endpoint: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args}`.length))
  return `Usage: agegender <command> [options]

Commands:
${COMMANDS.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.summary}`).join('\n')}

Options for every command:
  --bucket NAME     the bucket [AGEGENDER_BUCKET] (default on a local endpoint: agegender)
  --endpoint URL    S3 endpoint, e.g. http://127.0.0.1:4568 (sets AWS_ENDPOINT_URL; none = AWS)
  -h, --help        this text, or a command's: agegender <command> --help

The S3 endpoint and credentials come from the standard AWS environment (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL,
AWS_PROFILE or AWS_ACCESS_KEY_ID...). For the local system (npm start): source .local/env.sh`
}

function commandUsage(c: Command): string {
  return `Usage: agegender ${c.name} ${c.args}\n\n${c.summary}\n\n${c.help}\n\nGlobal options: --bucket NAME, --endpoint URL (see agegender --help)`
}

/**
 * Runs one command line and returns the exit code; never throws.
 * @example
 * process.exitCode = await main(process.argv.slice(2))
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    println(name === undefined ? io.stderr : io.stdout, usage())
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) {
    println(io.stderr, `agegender: unknown command ${JSON.stringify(name)}\n\n${usage()}`)
    return 2
  }
  let s3: S3Context | undefined
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    })
    const values = parsed.values as Record<string, string | boolean | undefined>
    const positionals = parsed.positionals
    if (values['help']) {
      println(io.stdout, commandUsage(command))
      return 0
    }
    const globals = {
      bucket: values['bucket'] as string | undefined,
      endpoint: values['endpoint'] as string | undefined,
    }
    return await command.run({
      io,
      values,
      positionals,
      s3: () => (s3 ??= openS3(globals, io.env, io.cwd)),
    })
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      println(io.stderr, `agegender ${command.name}: ${(err as Error).message}\n\n${commandUsage(command)}`)
      return 2
    }
    println(io.stderr, `agegender ${command.name}: ${explain(err, s3)}`)
    return 1
  } finally {
    s3?.client.destroy()
  }
}

/** The error in a sentence, with the likely fix for the usual S3 setup mistakes. */
function explain(err: unknown, s3: S3Context | undefined): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string } } | undefined
  const message = e?.message ?? String(err)
  const where = s3 ? `${s3.uri('')} at ${s3.endpoint ?? 'AWS'}` : 'S3'
  if (e?.name === 'NoSuchBucket')
    return `no bucket ${s3?.bucket ?? ''} at ${s3?.endpoint ?? 'AWS'}: check --bucket / AGEGENDER_BUCKET`
  if (e?.name === 'CredentialsProviderError' || /credentials/i.test(message)) {
    return `${message}\n  no AWS credentials: configure them, or for the local system: source .local/env.sh`
  }
  const code = e?.code ?? e?.cause?.code
  if (code === 'ECONNREFUSED')
    return `cannot reach ${where} (${code}): is \`npm start\` running, or is --endpoint right?`
  return message
}
