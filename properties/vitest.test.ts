// defineMoeConformanceSuite as a user would call it, on the reference loader (must pass),
// and the property runner beneath it on a broken loader (must fail, saying how to replay).
import { describe, expect, it } from 'vitest';
import { referenceLoader } from '../harness/loader/load.js';
import { referenceBackend } from '../kernels/moe.js';
import { MUTANTS } from './mutants/catalogue.js';
import { checkSuiteProperty, failureReport, suiteProperties } from './suite-properties.js';
import { defineMoeConformanceSuite } from './vitest.js';

// Three cases per property keep this file quick; the mutant test runs the defaults.
defineMoeConformanceSuite({ name: 'reference loader', load: referenceLoader, forward: referenceBackend, cases: 3 });

describe('a broken loader', () => {
  const swapped = MUTANTS.find((m) => m.name === 'swapped-gate-up')!;
  const opts = { name: 'swapped', load: (dir: string, req: Parameters<typeof referenceLoader.load>[1]) => swapped.loader.load(dir, req), seed: 42 };

  it('fails, leading with the case ID, tensor and replay line, then the seed and path', async () => {
    const [first] = suiteProperties(opts);
    const details = await checkSuiteProperty(first!, opts);
    expect(details.failed).toBe(true);
    const message = String((details.errorInstance as Error).message);
    expect(message).toMatch(/^case moe:load:model=mixtral;layout=(original|fused);dtype=\w+;e=\d+;/);
    expect(message).toMatch(/tensor: {3}layers\.\d+\.experts\.w13/);
    expect(message).toMatch(/replay: moe-conformance check --loader "CMD" --case 'moe:load:model=mixtral;/);
    expect(details.counterexamplePath).toMatch(/^\d+(:\d+)*$/);
    const report = failureReport(details)!;
    // The harness's finding leads (case, tensor, replay); fast-check's facts follow in one line.
    expect(report.startsWith(message)).toBe(true);
    expect(report).toContain(`seed ${details.seed}, path "${details.counterexamplePath}"`);
    expect(report.split('\n').length).toBeLessThan(15);
    // Shrinking reached a small configuration: one layer, TP 1.
    const [spec] = details.counterexample!;
    expect(spec.kind).toBe('load');
    expect(spec.checkpoint.model.layers).toBe(1);
    // Replaying the printed path gives the same counterexample.
    const replay = await checkSuiteProperty(first!, opts, { path: details.counterexamplePath! });
    expect(replay.failed).toBe(true);
    expect(replay.counterexample).toEqual(details.counterexample);
  });

  it('an expected failure passes, and an expected failure that passes is reported', async () => {
    const [first] = suiteProperties(opts);
    const xfail = await checkSuiteProperty(first!, { ...opts, expectations: 'moe:load:model=mixtral;* fail # known swap' });
    expect(xfail.failed).toBe(false);
    const stale = await checkSuiteProperty(first!, { ...opts, load: referenceLoader, expectations: 'moe:load:model=mixtral;* fail # fixed since' });
    expect(stale.failed).toBe(true);
    expect(String((stale.errorInstance as Error).message)).toMatch(/passed but is expected to fail \(fixed since\)/);
  });
});
