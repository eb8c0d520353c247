import { defineConfig } from 'vitest/config'

/** `npm run test:faults`: fault injection (kill -9, stopped S3, duplicate events) and fuzzing, kept out of `npm test`. */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
})
