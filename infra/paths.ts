/**
 * Paths inside this repository, resolved from this file so `cdk synth` works from any working directory.
 * @module
 */
import { fileURLToPath } from 'node:url'

/** Absolute path of the repository root (where package.json, the lock file and node_modules live). */
export const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')

/** Absolute path of `relative` (a `/`-separated path from the repository root). */
export const repoPath = (relative: string) => `${repoRoot}/${relative}`
