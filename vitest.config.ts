import { defineConfig } from 'vitest/config';

// Property tests read FC_SEED (default fixed) so CI is reproducible and a failure prints
// the seed and path to replay it.
export default defineConfig({
  test: {
    include: ['{app,harness,kernels,properties,golden,scripts,kits}/**/*.test.ts'],
    // The consumer project of app/package.test.ts runs in its own folder, against the packed package.
    exclude: ['**/node_modules/**', 'app/test/consumer/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    setupFiles: ['scripts/child-coverage.ts'],
    coverage: {
      provider: 'v8',
      include: ['app/**/*.ts', 'harness/**/*.ts', 'kernels/**/*.ts', 'properties/**/*.ts', 'golden/**/*.ts'],
      // main.ts runs the CLI when imported: only processes load it, and c8 measures those.
      exclude: ['**/*.test.ts', '**/test/**', 'app/cli/main.ts'],
      // scripts/coverage.mjs merges this with the processes' coverage, prints it and checks the thresholds.
      reporter: ['json'],
    },
  },
});
