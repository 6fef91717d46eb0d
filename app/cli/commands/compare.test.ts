// The compare command in-process: exit 0 and the totals for the two layouts of a model,
// exit 1 with the difference (or every one with --all) for a changed copy, exit 1 with the
// reason for a refused checkpoint, usage errors for bad arguments.
import { closeSync, cpSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { SafetensorsFile } from '../../../harness/safetensors/read.js';
import { run as compare } from './compare.js';
import { capture } from '../test/capture.js';

const GOLDEN = join(import.meta.dirname, '../../../golden/hf');
const scratch = mkdtempSync(join(tmpdir(), 'moe-cli-compare-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const original = join(GOLDEN, 'olmoe-bf16', 'original');
const fused = join(GOLDEN, 'olmoe-bf16', 'fused');

/** A copy of olmoe-bf16/original with one byte of each named stored tensor changed (its first element's high byte). */
async function changed(name: string, keys: string[]): Promise<string> {
  const dir = join(scratch, name);
  cpSync(original, dir, { recursive: true });
  const path = join(dir, 'model.safetensors');
  const file = await SafetensorsFile.open(path);
  const offsets = keys.map((k) => file.dataStart + file.info(k).dataOffsets[0] + 1);
  await file.close();
  const fd = openSync(path, 'r+');
  for (const at of offsets) {
    const b = new Uint8Array(1);
    readSync(fd, b, 0, 1, at);
    writeSync(fd, Uint8Array.of(b[0]! ^ 0x01), 0, 1, at);
  }
  closeSync(fd);
  return dir;
}

describe('compare', () => {
  it('exits 0 and says how much it compared when the layouts agree', async () => {
    const r = await capture(compare, [original, fused, '--tp-size', '2', '--ep-size', '4', '--ep-placement', 'round_robin']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // 2 layers x (ids, w13, w2, router) on each of 8 ranks.
    expect(r.out).toMatch(/^same canonical tensors \(64 tensors, \d+ bytes, 8 ranks\)\n$/);
  });
  it('exits 1 naming the first difference, or every one with --all', async () => {
    const mlp = (l: number, e: number, p: string) => `model.layers.${l}.mlp.experts.${e}.${p}.weight`;
    const dir = await changed('two', [mlp(0, 6, 'down_proj'), mlp(1, 2, 'gate_proj')]);
    const first = await capture(compare, [fused, dir, '--ep-size', '2']);
    expect(first.code).toBe(1);
    const lines = first.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`checkpoints differ (A = ${fused}, expected; B = ${dir}, found)`);
    // EP rank 0 of 2 holds experts 0..3 and is compared first: expert 2 is its slot 2.
    expect(lines[1]).toMatch(new RegExp(`^TP rank 0/1, EP rank 0/2: tensor layers\\.1\\.experts\\.w13 differs at slot 2, gate row 0, column 0: found 0x[0-9a-f]{4} \\(.*\\), expected 0x[0-9a-f]{4} \\(.*\\); 1 element\\(s\\) differ$`));
    expect(lines[2]).toBe(`  A: model.layers.1.mlp.experts.gate_up_proj[2, 0, 0] in ${join(fused, 'model.safetensors')}`);
    expect(lines[3]).toBe(`  B: ${mlp(1, 2, 'gate_proj')}[0, 0] in ${join(dir, 'model.safetensors')}`);
    expect(lines).toHaveLength(4);
    const all = await capture(compare, [fused, dir, '--ep-size', '2', '--all']);
    expect(all.code).toBe(1);
    expect(all.out.match(/^TP rank .*$/gm)).toEqual([
      expect.stringMatching(/^TP rank 0\/1, EP rank 0\/2: tensor layers\.1\.experts\.w13 differs at slot 2, gate row 0, column 0:/),
      expect.stringMatching(/^TP rank 0\/1, EP rank 1\/2: tensor layers\.0\.experts\.w2 differs at slot 2, row 0, column 0:/),
    ]);
    const bounded = await capture(compare, [fused, dir, '--ep-size', '2', '--all', '--max-reported', '1']);
    expect(bounded.out).toMatch(/\n\.\.\. and 1 more differing tensor\(s\)\n$/);
  });
  it('exits 1 with the reason when a checkpoint cannot be loaded or the split does not fit', async () => {
    const missing = await capture(compare, [fused, join(scratch, 'absent')]);
    expect(missing).toMatchObject({ code: 1, out: '' });
    expect(missing.err).toMatch(/^moe-conformance compare: CheckpointRefused: checkpoint B \(\S+absent\) cannot be loaded: ConfigError: [^\n]*\[file [^\]]*config.json\]\n$/);
    const tp3 = await capture(compare, [original, fused, '--tp-size', '3']);
    expect(tp3.code).toBe(1);
    expect(tp3.err).toMatch(/InvalidParallelRequest: .*I % T == 0/);
  });
  it('exits 1 for different model types', async () => {
    const r = await capture(compare, [original, join(GOLDEN, 'mixtral-bf16', 'original')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\ndifferent model types: "mixtral" in B, "olmoe" in A\n$/);
  });
  it('treats wrong arguments as usage errors, and prints its usage for --help', async () => {
    await expect(compare([original])).rejects.toThrow(UsageError);
    await expect(compare([original, fused, fused])).rejects.toThrow(UsageError);
    await expect(compare([original, fused, '--tp-size', 'two'])).rejects.toThrow(UsageError);
    await expect(compare([original, fused, '--ep-size', '0'])).rejects.toThrow(UsageError);
    await expect(compare([original, fused, '--ep-placement', 'random'])).rejects.toThrow(UsageError);
    await expect(compare([original, fused, '--everything'])).rejects.toThrow(UsageError);
    const help = await capture(compare, ['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: moe-conformance compare DIR_A DIR_B/);
  });
});
