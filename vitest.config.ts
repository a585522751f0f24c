import { defineConfig } from 'vitest/config';

// PGlite takes seconds to create and tests talk to real services over sockets:
// generous timeouts, one process per file so that ports and handles never leak across files.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'client-lib/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
