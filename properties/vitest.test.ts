// defineMoeConformanceSuite as a user would call it, on the reference loader (must pass),
// and the property runner beneath it on a broken loader (must fail, saying how to replay).
import { describe, expect, it } from 'vitest';
import { referenceLoader } from '../harness/loader/load.js';
import { referenceBackend } from '../kernels/moe.js';
import { MUTANTS } from './mutants/catalogue.js';
import { checkSuiteProperty, failureReport, suiteProperties, undeclaredProperties } from './suite-properties.js';
import { defineMoeConformanceSuite } from './vitest.js';

// Three cases per property keep this file quick; the mutant test runs the defaults.
defineMoeConformanceSuite({ name: 'reference loader', load: referenceLoader, forward: referenceBackend, cases: 3 });

// A narrow loader: what it does not declare shows as skipped tests ("not declared"), not as passes.
const narrow = { name: 'narrow loader', load: referenceLoader, cases: 2, capabilities: { modelTypes: ['mixtral'], layouts: ['fused'], dtypes: ['f32'], maxTp: 2, placements: ['linear'] } } as const;
defineMoeConformanceSuite(narrow);

describe('capabilities', () => {
  it('lists what is not declared, with the reason, and parses the object like a handshake', () => {
    const u = undeclaredProperties(narrow);
    expect(u).toContainEqual({ title: 'qwen3_moe: every rank loads bit-exact', reason: 'model type qwen3_moe (declared: mixtral)' });
    expect(u).toContainEqual({ title: 'original and fused layouts load to the same bytes', reason: 'layout original (declared: fused)' });
    expect(u).toContainEqual({ title: 'quantized checkpoints (fp8)', reason: 'dtype fp8 (declared: f32)' });
    expect(suiteProperties(narrow).map((p) => p.title.split(':')[0])).toContain('mixtral');
    expect(() => suiteProperties({ ...narrow, capabilities: { maxTp: 0 } })).toThrow(/capabilities.maxTp must be an integer ≥ 1/);
    expect(() => suiteProperties({ ...narrow, capabilities: { placement: ['linear'] } as never })).toThrow(/unknown capabilities field "placement"/);
  });

  it('a case in an undeclared placement is skipped by fast-check, never counted as run', async () => {
    const [load] = suiteProperties(narrow);
    const details = await checkSuiteProperty(load!, { ...narrow, cases: 6, capabilities: { ...narrow.capabilities, maxEp: 3 } });
    expect(details.failed).toBe(false);
    expect(details.numSkips).toBeGreaterThan(0);
  });
});

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
    const seen: string[] = [];
    const xfail = await checkSuiteProperty(first!, { ...opts, expectations: 'moe:load:model=mixtral;* fail # known swap' }, { onExpectedFailure: (id, reason) => seen.push(`${id}: ${reason}`) });
    expect(xfail.failed).toBe(false);
    // Reported as expected failures (vitest annotates the test with them), never silently as passes.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((x) => /^moe:load:model=mixtral;.*: known swap$/.test(x))).toBe(true);
    const stale = await checkSuiteProperty(first!, { ...opts, load: referenceLoader, expectations: 'moe:load:model=mixtral;* fail # fixed since' });
    expect(stale.failed).toBe(true);
    expect(String((stale.errorInstance as Error).message)).toMatch(/passed but is expected to fail \(fixed since\)/);
  });
});
