// Runs a list of cases: `jobs` at a time, each bounded in time, expectations applied, the
// `--shard i/n` partition taken by case-ID hash. A failing case never stops the run.
import { MoeConformanceError } from '../harness/errors.js';
import { caseHash, formatCaseId, type CaseId } from '../harness/conformance/case-id.js';
import { Expectations } from '../harness/conformance/expectations.js';
import { undeclaredReason, type Capabilities } from '../harness/conformance/capabilities.js';
import { failureOf, NOT_DECLARED, type CaseOutcome, type CaseResult, type ConformanceCase } from '../harness/conformance/results.js';

export class CaseTimedOut extends MoeConformanceError {}
export class ShardSpecError extends MoeConformanceError {}

/** `--shard i/n`, 1-based like vitest and playwright. */
export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) {
    throw new ShardSpecError('--shard takes i/n with 1 ≤ i ≤ n', { expected: 'e.g. 2/4', found: text });
  }
  return { index, count };
}

export function inShard(id: CaseId, shard: Shard | undefined): boolean {
  return shard === undefined || caseHash(id) % shard.count === shard.index - 1;
}

export interface ProgressSink {
  start(total: number): void;
  done(result: CaseResult): void;
  finish(): void;
}

export interface RunOptions {
  jobs?: number;
  timeoutMs?: number;
  expectations?: Expectations;
  shard?: Shard;
  progress?: ProgressSink;
  /** What the loader declares: a case that needs more is skipped as not declared (never run, never a pass). */
  capabilities?: Capabilities;
}

export async function runCases(cases: readonly ConformanceCase[], opts: RunOptions = {}): Promise<CaseResult[]> {
  const expectations = opts.expectations ?? Expectations.empty();
  const mine = cases.filter((c) => inShard(c.id, opts.shard));
  const results: CaseResult[] = new Array(mine.length);
  opts.progress?.start(mine.length);
  let next = 0;
  const worker = async () => {
    while (next < mine.length) {
      const index = next++;
      const result = await runOne(mine[index]!, expectations, opts.timeoutMs ?? 120_000, opts.capabilities);
      results[index] = result;
      opts.progress?.done(result);
    }
  };
  const jobs = Math.max(1, Math.min(opts.jobs ?? 1, mine.length));
  await Promise.all(Array.from({ length: jobs }, worker));
  opts.progress?.finish();
  return results;
}

async function runOne(c: ConformanceCase, expectations: Expectations, timeoutMs: number, capabilities: Capabilities | undefined): Promise<CaseResult> {
  const id = formatCaseId(c.id);
  const base = { id, replay: c.replay, ...(c.seed !== undefined && { seed: c.seed }) };
  const undeclared = c.needs && undeclaredReason(capabilities, c.needs);
  if (undeclared !== undefined) return { ...base, status: 'skip', durationMs: 0, note: NOT_DECLARED + undeclared };
  const expected = expectations.lookup(c.id);
  if (expected?.kind === 'skip') return { ...base, status: 'skip', durationMs: 0, note: expected.reason || 'skipped by expectations' };

  const started = performance.now();
  const outcome = await withTimeout(c, timeoutMs);
  const durationMs = Math.round(performance.now() - started);
  if (outcome.stderr) Object.assign(base, { stderr: outcome.stderr });

  // Neither a pass nor a failure: an expectation cannot turn it into either.
  if (outcome.status === 'inconclusive') return { ...base, status: 'inconclusive', durationMs, note: outcome.note };
  if (expected?.kind === 'fail') {
    if (outcome.status === 'fail') return { ...base, status: 'xfail', durationMs, note: expected.reason, failure: outcome.failure };
    return {
      ...base,
      status: 'unexpected-pass',
      durationMs,
      failure: { message: `expected to fail (${expected.reason || 'expectations line ' + expected.line}) but passed: delete the expectation` },
    };
  }
  if (outcome.status === 'warn') return { ...base, status: 'warn', durationMs, note: outcome.note };
  if (outcome.status === 'fail') {
    // A line expecting this very failure (its reason or diagnosis kind) makes it an expected one.
    const known = expectations.lookupFailure(c.id, outcome.failure);
    if (known) return { ...base, status: 'xfail', durationMs, note: known.reason || `expectations line ${known.line}`, failure: outcome.failure };
    return { ...base, status: 'fail', durationMs, failure: outcome.failure };
  }
  return { ...base, status: 'pass', durationMs };
}

async function withTimeout(c: ConformanceCase, timeoutMs: number): Promise<CaseOutcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CaseOutcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ status: 'fail', failure: failureOf(new CaseTimedOut(`case ran past ${timeoutMs} ms`)) });
    }, timeoutMs);
  });
  const run = c.run(controller.signal).catch((e: unknown): CaseOutcome => ({ status: 'fail', failure: failureOf(e) }));
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
