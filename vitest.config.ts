import { defineConfig } from 'vitest/config';

// Property tests read FC_SEED (default fixed) so CI is reproducible and a failure prints
// the seed and path to replay it.
export default defineConfig({
  test: {
    include: ['{app,harness,kernels,properties,golden,kits}/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['app/**/*.ts', 'harness/**/*.ts', 'kernels/**/*.ts', 'properties/**/*.ts', 'golden/**/*.ts'],
      exclude: ['**/*.test.ts', '**/test/**', 'app/cli/main.ts'],
      reporter: ['text-summary', 'json-summary'],
      thresholds: {
        'harness/**/*.ts': { lines: 90, branches: 85 },
      },
    },
  },
});
