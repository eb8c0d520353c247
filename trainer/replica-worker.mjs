// Entry of a data-parallel replica thread (see parallel-step.ts). Plain JS, so that Node starts it without a
// TypeScript loader; it loads the TypeScript replica through tsx's API (workers do not inherit tsx's hooks).
import { workerData } from 'node:worker_threads'
import { tsImport } from 'tsx/esm/api'

const replica = await tsImport('./parallel-step.ts', import.meta.url)
await replica.runReplica(workerData)
