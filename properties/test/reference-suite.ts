// The built-in reference loader and kernels against the generated conformance suite, as
// `moe-conformance run` does it, split into disjoint shards so that vitest can spread them
// over the machine's cores (one test file per shard). Every case must pass.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isFailing } from '../../harness/conformance/results.js';
import { runCases, type Shard } from '../../app/runner.js';
import { referenceLoader } from '../../harness/loader/load.js';
import { referenceBackend } from '../../kernels/moe.js';
import { generatedCases, sampleSpecs } from '../suite.js';

/** Generated cases in the whole suite (every shard together). */
export const SUITE_CASES = 2000;
export const SUITE_SHARDS = 2;

export function referenceSuiteShard(shard: Shard): void {
  const seed = Number(process.env.FC_SEED ?? 42);
  let workDir = '';
  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });
  describe(`reference loader, generated conformance cases, shard ${shard.index}/${shard.count} (seed ${seed})`, () => {
    it('passes every case of its shard', async () => {
      workDir = await mkdtemp(join(tmpdir(), 'moe-suite-'));
      const specs = sampleSpecs(SUITE_CASES, seed);
      expect(specs.length).toBe(SUITE_CASES);
      const replay = (id: string) => `FC_SEED=${seed} moe-conformance check --loader 'moe-conformance load' --case '${id}'`;
      const cases = generatedCases(specs, { loader: referenceLoader, forward: referenceBackend }, { workDir }, replay);
      const results = await runCases(cases, { jobs: 2, timeoutMs: 120_000, shard });
      const failing = results.filter((r) => isFailing(r.status)).map((r) => `${r.id}: ${r.failure?.message ?? r.status}\n  replay: ${r.replay}`);
      expect(failing).toEqual([]);
      // The shards partition the cases: this one ran a fair share of them, none skipped.
      expect(results.length).toBeGreaterThan(SUITE_CASES / shard.count / 2);
      expect(results.every((r) => r.status === 'pass')).toBe(true);
    }, 600_000);
  });
}
