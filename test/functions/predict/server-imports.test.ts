/**
 * The local predict server shares the app with the Lambda but none of its Powertools wiring: no structured
 * Lambda logs and no EMF documents on a developer's terminal.
 */
import { expect, it } from 'vitest'
import { packagesImportedBy } from '../../support/imports.js'

it('keeps Powertools out of the local server, and in the Lambda entry', async () => {
  const server = await packagesImportedBy('functions/predict/server.ts')
  expect(server.filter((name) => name.startsWith('@aws-lambda-powertools/'))).toEqual([])
  expect(server).toContain('@hono/node-server')
  const lambda = await packagesImportedBy('functions/predict/lambda.ts')
  expect(lambda).toEqual(expect.arrayContaining(['@aws-lambda-powertools/logger', '@aws-lambda-powertools/metrics']))
})
