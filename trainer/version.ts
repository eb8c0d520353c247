import { createRequire } from 'node:module'

/** This package's version, recorded in model metadata and metrics. */
export const packageVersion: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version
