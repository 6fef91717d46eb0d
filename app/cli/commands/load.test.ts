// The load, generate and inspect commands, run in-process: generate a checkpoint, inspect
// it, load ranks of it to files and read them back; usage errors and refusals.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { SafetensorsFile } from '../../../harness/safetensors/read.js';
import { loadCanonical } from '../../../harness/loader/load.js';
import type { ParallelRequest } from '../../../harness/tensor.js';
import { run as generate } from './generate.js';
import { run as inspect } from './inspect.js';
import { run as load } from './load.js';
import { capture } from '../test/capture.js';

const GOLDEN = join(import.meta.dirname, '../../../golden/hf');
const scratch = mkdtempSync(join(tmpdir(), 'moe-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const gptOss = join(scratch, 'gpt_oss');
const generateArgs = ['--model-type', 'gpt_oss', '--layout', 'fused', '--dtype', 'bf16', '--experts', '5', '--hidden', '6', '--intermediate', '4', '--layers', '2', '--seed', '9', '--out', gptOss, '--max-shard-bytes', '300'];

describe('generate', () => {
  it('writes a sharded checkpoint of the type asked for', async () => {
    const r = await capture(generate, generateArgs);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(existsSync(join(gptOss, 'model.safetensors.index.json'))).toBe(true);
    const again = join(scratch, 'gpt_oss_again');
    expect((await capture(generate, [...generateArgs.slice(0, -4), '--out', again])).code).toBe(0);
    expect(await loadCanonical(again, { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' })).toEqual(
      await loadCanonical(gptOss, { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' }),
    );
  });
  it('refuses bad options as usage errors, and sizes the type cannot express with exit 1', async () => {
    await expect(generate(['--model-type', 'gpt5', '--out', scratch])).rejects.toThrow(UsageError);
    await expect(generate([...generateArgs.slice(0, 4), '--dtype', 'f8', '--out', scratch])).rejects.toThrow(UsageError);
    await expect(generate(['--model-type', 'mixtral', '--out', join(scratch, 'x'), '--experts', '4'])).rejects.toThrow(UsageError);
    const r = await capture(generate, ['--model-type', 'mixtral', '--experts', '4', '--hidden', '4', '--intermediate', '4', '--layers', '1', '--shared-intermediate', '8', '--out', join(scratch, 'y')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/WriterInputError/);
  });
});

describe('inspect', () => {
  it('summarises type, dtypes, files and the layout of each MoE layer', async () => {
    const r = await capture(inspect, [join(GOLDEN, 'mixtral-bf16', 'fused')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/model_type: mixtral/);
    expect(r.out).toMatch(/BF16/);
    expect(r.out).toMatch(/layer 0: fused, 3 tensors/);
    expect(r.out).toMatch(/model\.layers\.1\.mlp\.experts\.gate_up_proj {2}BF16 \[8, 40, 48\]/);
    const original = await capture(inspect, [join(GOLDEN, 'dbrx-f32', 'original')]);
    expect(original.out).toMatch(/layer 1: original \(this model's original and fused layouts are the same\)/);
  });
  it('exits 1 with the reason for a directory it cannot read, and 2 for bad usage', async () => {
    const r = await capture(inspect, [join(scratch, 'absent')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ConfigError/);
    await expect(inspect([])).rejects.toThrow(UsageError);
  });
});

describe('load', () => {
  const req = (argv: string[]): ParallelRequest => ({
    tpSize: Number(argv[1]),
    tpRank: Number(argv[3]),
    epSize: Number(argv[5]),
    epRank: Number(argv[7]),
    epPlacement: argv[9] as ParallelRequest['epPlacement'],
  });
  it('writes one rank\'s canonical tensors to --out, equal to the in-memory load', async () => {
    for (const split of [
      ['--tp-size', '2', '--tp-rank', '1', '--ep-size', '2', '--ep-rank', '0', '--ep-placement', 'round_robin'],
      ['--tp-size', '4', '--tp-rank', '3', '--ep-size', '5', '--ep-rank', '4', '--ep-placement', 'linear'],
    ]) {
      const out = join(scratch, `rank-${split.join('-')}.safetensors`);
      const r = await capture(load, ['--checkpoint', gptOss, '--out', out, ...split]);
      expect(r).toMatchObject({ code: 0, err: '' });
      const file = await SafetensorsFile.open(out);
      const expected = await loadCanonical(gptOss, req(split));
      expect([...file.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, t] of expected) expect(await file.readTensor(name)).toEqual(t);
      await file.close();
    }
  });
  it('uses TP 1, EP 1, linear by default', async () => {
    const out = join(scratch, 'whole.safetensors');
    expect((await capture(load, ['--checkpoint', join(GOLDEN, 'olmoe-f32', 'original'), '--out', out])).code).toBe(0);
    const file = await SafetensorsFile.open(out);
    expect(file.info('layers.1.experts.w13').shape).toEqual([8, 40, 48]);
    await file.close();
  });
  it('exits 1 with the reason on stderr and writes nothing for a request it refuses', async () => {
    const out = join(scratch, 'refused.safetensors');
    const r = await capture(load, ['--checkpoint', gptOss, '--out', out, '--tp-size', '3']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/InvalidParallelRequest: .*I % T == 0/);
    expect(existsSync(out)).toBe(false);
  });
  it('treats missing or malformed options as usage errors', async () => {
    await expect(load(['--checkpoint', gptOss])).rejects.toThrow(UsageError);
    await expect(load(['--checkpoint', gptOss, '--out', 'x', '--tp-size', 'two'])).rejects.toThrow(UsageError);
    await expect(load(['--checkpoint', gptOss, '--out', 'x', '--ep-placement', 'random'])).rejects.toThrow(UsageError);
  });
});

describe('--help', () => {
  it.each([
    ['load', load],
    ['generate', generate],
    ['inspect', inspect],
  ] as const)('%s prints its usage and exits 0', async (name, command) => {
    const r = await capture(command, ['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`usage: moe-conformance ${name}`));
  });
});
