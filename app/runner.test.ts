import { describe, expect, it } from 'vitest';
import { MoeConformanceError } from '../harness/errors.js';
import { caseId, formatCaseId } from '../harness/conformance/case-id.js';
import { Expectations } from '../harness/conformance/expectations.js';
import { createProgress } from './progress.js';
import type { CaseResult } from '../harness/conformance/results.js';
import { inShard, parseShard, runCases, ShardSpecError } from './runner.js';
import type { CaseOutcome, ConformanceCase } from '../harness/conformance/results.js';

function makeCase(n: number, run: (signal: AbortSignal) => Promise<CaseOutcome>): ConformanceCase {
  return { id: caseId('moe', 'unit', { n }), seed: n, replay: `replay ${n}`, run };
}
const pass = async (): Promise<CaseOutcome> => ({ status: 'pass' });
const fail = async (): Promise<CaseOutcome> => ({ status: 'fail', failure: { message: 'wrong' } });

describe('runCases', () => {
  it('records each outcome and goes on after failures', async () => {
    const cases = [
      makeCase(0, pass),
      makeCase(1, fail),
      makeCase(2, async () => ({ status: 'warn', note: 'loose tier' })),
      makeCase(3, async () => {
        throw new MoeConformanceError('bad bytes', { tensor: 'layers.0.experts.w13', expected: 1, found: 2 });
      }),
      makeCase(4, pass),
    ];
    const r = await runCases(cases);
    expect(r.map((x) => x.status)).toEqual(['pass', 'fail', 'warn', 'fail', 'pass']);
    expect(r[0]).toMatchObject({ id: 'moe:unit:n=0', seed: 0, replay: 'replay 0' });
    expect(r[2]!.note).toBe('loose tier');
    expect(r[3]!.failure).toEqual({ message: expect.stringMatching(/^MoeConformanceError: bad bytes/), tensor: 'layers.0.experts.w13', expected: '1', found: '2' });
  });

  it('fails a case that runs past its time and aborts its signal', async () => {
    let aborted = false;
    const hanging = makeCase(0, (signal) => new Promise(() => signal.addEventListener('abort', () => (aborted = true))));
    const [r] = await runCases([hanging, makeCase(1, pass)], { timeoutMs: 50 });
    expect(r!.status).toBe('fail');
    expect(r!.failure!.message).toMatch(/CaseTimedOut: case ran past 50 ms/);
    expect(aborted).toBe(true);
  });

  it('keeps inconclusive as its own status whatever the expectations, and the stderr tail of any outcome', async () => {
    const e = Expectations.parse('moe:unit:n=0 fail # known\nmoe:unit:* fail reason=/exited\\s1/ # engine limit');
    const inconclusive = async (): Promise<CaseOutcome> => ({ status: 'inconclusive', note: 'the valid twin was refused too', stderr: 'no such type' });
    const r = await runCases(
      [
        makeCase(0, inconclusive),
        makeCase(1, inconclusive),
        makeCase(2, async () => ({ status: 'fail', failure: { message: 'loader exited 1' } })),
        makeCase(3, async () => ({ status: 'fail', failure: { message: 'bytes differ' } })),
        makeCase(4, async () => ({ status: 'pass', stderr: 'warning: fallback' })),
      ],
      { expectations: e },
    );
    expect(r.map((x) => x.status)).toEqual(['inconclusive', 'inconclusive', 'xfail', 'fail', 'pass']);
    expect(r[0]).toMatchObject({ note: 'the valid twin was refused too', stderr: 'no such type' });
    expect(r[2]!.note).toBe('engine limit');
    expect(r[4]!.stderr).toBe('warning: fallback');
  });

  it('applies expectations: skip, xfail, unexpected pass', async () => {
    const e = Expectations.parse('moe:unit:n=0 skip # slow\nmoe:unit:n=1 fail # known\nmoe:unit:n=2 fail # fixed?');
    let ran0 = false;
    const r = await runCases(
      [
        makeCase(0, async () => {
          ran0 = true;
          return { status: 'pass' };
        }),
        makeCase(1, fail),
        makeCase(2, pass),
      ],
      { expectations: e },
    );
    expect(ran0).toBe(false);
    expect(r.map((x) => x.status)).toEqual(['skip', 'xfail', 'unexpected-pass']);
    expect(r[0]!.note).toBe('slow');
    expect(r[2]!.failure!.message).toMatch(/expected to fail \(fixed\?\) but passed/);
  });

  it('runs at most `jobs` cases at once, and uses them', async () => {
    let running = 0;
    let peak = 0;
    const slow = async (): Promise<CaseOutcome> => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return { status: 'pass' };
    };
    const r = await runCases(Array.from({ length: 12 }, (_, i) => makeCase(i, slow)), { jobs: 3 });
    expect(r).toHaveLength(12);
    expect(r.every((x) => x.status === 'pass')).toBe(true);
    expect(peak).toBe(3);
  });

  it('shards partition the cases by ID', async () => {
    const cases = Array.from({ length: 50 }, (_, i) => makeCase(i, pass));
    const shards = await Promise.all([1, 2, 3].map((i) => runCases(cases, { shard: { index: i, count: 3 } })));
    const ids = shards.flat().map((r) => r.id).sort();
    expect(ids).toEqual(cases.map((c) => formatCaseId(c.id)).sort());
    expect(shards.every((s) => s.length > 0)).toBe(true);
    expect(inShard(cases[0]!.id, undefined)).toBe(true);
  });

  it('parses --shard i/n', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['0/4', '5/4', '1/0', 'a/b', '1', '1/2/3']) expect(() => parseShard(bad), bad).toThrow(ShardSpecError);
  });
});

describe('progress', () => {
  const result = (status: CaseResult['status']): CaseResult => ({ id: 'moe:unit:', status, durationMs: 1, replay: '' });

  it('prints plain lines off a terminal: at the start, every tenth and at the end', () => {
    let out = '';
    const p = createProgress({ write: (s: string) => (out += s) }, { now: () => 0 });
    p.start(20);
    for (let i = 0; i < 20; i++) p.done(result(i === 5 ? 'fail' : 'pass'));
    p.finish();
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('[ 0/20]   0 % pass 0 fail 0 skip 0');
    expect(lines.at(-1)).toBe('[20/20] 100 % pass 19 fail 1 skip 0');
    expect(lines).toHaveLength(11);
    expect(out).not.toContain('\r');
  });

  it('redraws a bar in place on a terminal', () => {
    let out = '';
    let t = 0;
    const p = createProgress({ write: (s: string) => (out += s), isTTY: true, columns: 100 }, { now: () => (t += 1000) });
    p.start(2);
    p.done(result('pass'));
    p.done(result('pass'));
    p.finish();
    expect(out.split('\r')).toHaveLength(4);
    expect(out).toContain('█');
    expect(out.endsWith('\n')).toBe(true);
  });
});
