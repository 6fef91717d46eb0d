// Vitest setup file: the processes a test starts (the CLI, loader commands) write their V8
// coverage where scripts/coverage.mjs merges it with vitest's own. NODE_V8_COVERAGE is set
// here, inside the worker, after the worker itself started: the worker is measured by vitest
// in process, and only its children by V8's own coverage files.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

const dir = process.env.MOE_CHILD_COVERAGE;
if (dir) {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  process.env.NODE_V8_COVERAGE = abs;
}
