import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { capture } from '../test/capture.js';
import { run } from './generate.js';
import { run as inspect } from './inspect.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'generate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sizes = ['--experts', '4', '--hidden', '256', '--intermediate', '128', '--layers', '1'];

describe('generate', () => {
  it('--help lists every option with its default and marks the required ones', async () => {
    const r = await capture(run, ['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--model-type T\s+.*\(required\)/);
    expect(r.out).toMatch(/--out DIR\s+.*\(required\)/);
    expect(r.out).toMatch(/--layout L\s+.*\(default original\)/);
    expect(r.out).toMatch(/--dtype D\s+.*\(default f32\)/);
    expect(r.out).toMatch(/--top-k K\s+.*\(default 2\)/);
    expect(r.out).toMatch(/--version/);
  });

  it('reports every missing or bad option at once, as a usage error', async () => {
    const e = await run(['--dtype', 'f64', '--experts', '0']).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    const m = (e as Error).message;
    for (const want of ['--model-type is required', '--hidden is required', '--intermediate is required', '--layers is required', '--out is required', '--dtype takes one of', '--experts takes an integer >= 1']) {
      expect(m).toContain(want);
    }
  });

  it('refuses sizes it cannot build in memory before drawing anything, and a top-k above the experts', async () => {
    const out = join(tmpdir(), 'moe-generate-never-written');
    // 4 experts of 100,000 × 100,000: 1.2e11 weights (a typed-array RangeError before); a million experts: 3.8e8 (minutes and gigabytes before).
    for (const sizes of [['--experts', '4', '--hidden', '100000', '--intermediate', '100000'], ['--experts', '1000000', '--hidden', '16', '--intermediate', '8']]) {
      await expect(run(['--model-type', 'mixtral', ...sizes, '--layers', '1', '--out', out])).rejects.toThrow(/weights, more than generate builds in memory \(2\.68e\+8\)/);
    }
    expect(existsSync(out)).toBe(false);
    await expect(run(['--model-type', 'mixtral', '--experts', '4', '--top-k', '9', '--hidden', '16', '--intermediate', '8', '--layers', '1', '--out', out])).rejects.toThrow(/--top-k 9 exceeds --experts 4/);
    // The default top-k (2) follows a single expert.
    expect(await capture(run, ['--model-type', 'mixtral', '--experts', '1', '--hidden', '16', '--intermediate', '8', '--layers', '1', '--out', out])).toMatchObject({ code: 0 });
    await rm(out, { recursive: true, force: true });
  });

  it.each([
    ['fp8', /routed experts F8_E4M3 with F32 block scales, BF16 elsewhere/, 'F8_E4M3'],
    ['mxfp4', /routed experts MXFP4 \(U8 blocks, U8 E8M0 scales\), BF16 elsewhere/, 'U8'],
    ['bf16', /\(fused, BF16\)/, 'BF16'],
  ])('says what --dtype %s wrote, as inspect sees it', async (dtype, said, stored) => {
    const out = join(dir, dtype);
    const modelType = dtype === 'mxfp4' ? 'gpt_oss' : 'qwen3_moe';
    const r = await capture(run, ['--model-type', modelType, '--layout', 'fused', '--dtype', dtype, ...sizes, '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(said);
    const seen = await capture(inspect, [out]);
    expect(seen.out).toContain(stored);
  });
});
