// `import { defineMoeConformanceSuite } from 'moe-conformance/vitest'`: the conformance
// suite as vitest tests for a loader written in TypeScript/JavaScript (transformers.js,
// a WebGPU runtime, ...). Every failure names the case ID, the seed and path to replay
// it, and the shrunk counterexample (fast-check's report).
import { describe, it } from 'vitest';
import { checkSuiteProperty, defaultSeed, failureReport, suiteProperties, targetOf, undeclaredProperties, type SuiteOptions } from './suite-properties.js';

export type { Capabilities, SuiteOptions } from './suite-properties.js';

/** Registers one test per property; each runs its cases with a fixed seed (FC_SEED, FC_PATH to replay). */
export function defineMoeConformanceSuite(opts: SuiteOptions): void {
  targetOf(opts); // declared engine forms are checked now: an unknown one fails where the suite is defined
  const seed = opts.seed ?? defaultSeed();
  const path = process.env.FC_PATH;
  describe(opts.name, () => {
    for (const p of suiteProperties(opts)) {
      it(p.title, async () => {
        const details = await checkSuiteProperty(p, { ...opts, seed }, { ...(path !== undefined && { path }) });
        const report = failureReport(details);
        if (report !== undefined) throw new Error(report);
      }, opts.testTimeoutMs ?? 300_000);
    }
    // What the loader does not declare shows as skipped tests, with the reason, never as passes.
    for (const u of undeclaredProperties(opts)) it.skip(`${u.title} — skip (not declared: ${u.reason})`, () => {});
  });
}
