#!/usr/bin/env -S npx tsx
/**
 * The `agegender` command (`npx agegender`, `npm run cli --`): upload datasets, follow runs, read metrics and
 * ask the predict API, against the local system, LocalStack or AWS. See `main.ts` and `agegender --help`.
 * @module
 */
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2))
