// `import { defineMoeConformanceSuite } from 'moe-conformance/vitest'`: the conformance
// suite as vitest tests for a loader written in TypeScript/JavaScript (transformers.js,
// a WebGPU runtime, ...). A failure leads with the harness's own finding (case ID, tensor,
// expected and found) and one replay line that runs exactly that case:
// `MOE_CASE='<id>' npx vitest run <file> -t '<suite>'`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { casePredicate, checkSuiteProperty, defaultSeed, failureReport, REPLAY_VARIABLE, suiteProperties, targetOf, undeclaredProperties, type SuiteOptions } from './suite-properties.js';
import { parseSpec } from './spec.js';
import { Expectations } from '../harness/conformance/expectations.js';

export type { Capabilities, SuiteOptions } from './suite-properties.js';

const shellQuote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;

/** Registers one test per property; each runs its cases with a fixed seed (FC_SEED). With MOE_CASE set, one test runs exactly that case. */
export function defineMoeConformanceSuite(opts: SuiteOptions): void {
  targetOf(opts); // declared engine forms are checked now: an unknown one fails where the suite is defined
  const seed = opts.seed ?? defaultSeed();
  const path = process.env.FC_PATH;
  const only = process.env[REPLAY_VARIABLE];
  const timeout = opts.testTimeoutMs ?? 300_000;
  describe(opts.name, () => {
    // Known only inside a test: the file vitest is running.
    const replayHere = () => {
      const file = relative(process.cwd(), expect.getState().testPath ?? '');
      return (id: string) => `${REPLAY_VARIABLE}=${shellQuote(id)} npx vitest run ${file} -t ${shellQuote(opts.name)}`;
    };
    if (only !== undefined) {
      it(`replay ${only}`, async () => {
        const expectations = typeof opts.expectations === 'string' ? Expectations.parse(opts.expectations) : (opts.expectations ?? Expectations.empty());
        const workDir = await mkdtemp(join(tmpdir(), 'moe-replay-'));
        try {
          await casePredicate(targetOf(opts), { workDir }, expectations, { replay: replayHere() })(parseSpec(only));
        } finally {
          await rm(workDir, { recursive: true, force: true });
        }
      }, timeout);
      return;
    }
    for (const p of suiteProperties(opts)) {
      it(p.title, async ({ annotate }) => {
        // Known limits (expectation lines) that failed as expected show on the test, not as plain passes.
        const expected: string[] = [];
        const details = await checkSuiteProperty(p, { ...opts, seed }, { replay: replayHere(), onExpectedFailure: (id, reason) => expected.push(`${id} (${reason})`), ...(path !== undefined && { path }) });
        if (expected.length) await annotate(`expected failure: ${expected.length} case(s) failed as the expectations say: ${expected.join('; ')}`, 'notice');
        const report = failureReport(details);
        if (report !== undefined) throw new Error(report);
      }, timeout);
    }
    // What the loader does not declare shows as skipped tests, with the reason, never as passes.
    // Skipped on purpose, reason in the title: the loader's capabilities do not declare this property's cases (spec §7.3), so it is listed as skipped, never run as a pass.
    for (const u of undeclaredProperties(opts)) it.skip(`${u.title} — skip (not declared: ${u.reason})`, () => {}); // skip reason: not declared by the loader (spec §7.3)
  });
}
