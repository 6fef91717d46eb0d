// The golden command in-process: a real fixture passes with exit 0 and a table; the same
// fixture with one recorded output value changed fails with exit 1 and says where; bad
// options are usage errors.
import { BACKENDS } from '../../../kernels/backends.js';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { SafetensorsFile } from '../../../harness/safetensors/read.js';
import { writeSafetensors } from '../../../harness/safetensors/write.js';
import { decodeFloats, encodeFloats } from '../../../harness/safetensors/codecs.js';
import type { Tensor } from '../../../harness/tensor.js';
import { defaultGoldenRoot } from '../../../golden/golden.js';
import { run } from './golden.js';
import { capture } from '../test/capture.js';

const FIXTURE = join(defaultGoldenRoot(), 'mixtral-bf16');
let tmp: string;
let tampered: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'golden-cli-'));
  tampered = join(tmp, 'mixtral-bf16');
  await cp(FIXTURE, tampered, { recursive: true });
  // Token 5, column 7 of layer 1's recorded output moves by 0.05.
  const file = join(tampered, 'golden.safetensors');
  const st = await SafetensorsFile.open(file);
  const tensors = new Map<string, Tensor>();
  for (const name of st.tensors.keys()) tensors.set(name, await st.readTensor(name));
  await st.close();
  const out = tensors.get('moe.1.output')!;
  const values = decodeFloats('F32', out.bytes);
  values[5 * out.shape[1]! + 7]! += 0.05;
  tensors.set('moe.1.output', { ...out, bytes: encodeFloats('F32', values) });
  // And layer 0's router logit of token 2, expert 1 moves by 1.
  const logits = tensors.get('moe.0.router_logits')!;
  const l = decodeFloats('F32', logits.bytes);
  l[2 * logits.shape[1]! + 1]! += 1;
  tensors.set('moe.0.router_logits', { ...logits, bytes: encodeFloats('F32', l) });
  await writeSafetensors(file, tensors, { format: 'pt' });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('moe-conformance golden', () => {
  it('passes a fixture made by transformers and prints one row per layout and split', async () => {
    const r = await capture(run, [FIXTURE, '--layouts', 'original', '--backends', 'reference']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/mixtral-bf16\s+original\s+TP1\s+reference-f64\s+\S+\s+\S+\s+pass/);
    expect(r.out).toMatch(/TP2×EP3 round_robin/);
    expect(r.out).toMatch(/5 comparisons: 5 pass, 0 warn, 0 fail/);
  });
  it('fails a fixture whose recorded output was changed with every backend, naming layer, token and column', async () => {
    const r = await capture(run, [tampered, '--layouts', 'fused']);
    expect(r.code).toBe(1);
    // Each backend says what actually ran (a silent fallback would show here).
    for (const b of BACKENDS) expect(r.out).toMatch(new RegExp(`^backend ${b.name}: \\S`, 'm'));
    expect(r.out).toMatch(/gpujs-webgpu: gpu\.js webgpu mode.*WebGPU adapter via Dawn/);
    expect(r.out).toMatch(/layer 1 output: fail, 1\/\d+ beyond the strict bound.*max abs 5\.00e-2 at token 5 column 7/);
    expect(r.out).toMatch(/mismatching tokens per expert/);
    expect(r.out).toMatch(/layer 0 router logits: fail, 1\/\d+ beyond the strict bound.*at token 2 column 1/);
    expect(r.out).toMatch(new RegExp(`0 pass, 0 warn, ${5 * BACKENDS.length} fail`));
  });
  it('refuses a folder without fixtures with exit 1 and a typed error', async () => {
    const r = await capture(run, [join(FIXTURE, 'original')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/GoldenFixtureError/);
  });
  it('turns unknown backends and layouts into usage errors', async () => {
    await expect(capture(run, ['--backends', 'nope'])).rejects.toThrow(UsageError);
    await expect(capture(run, ['--layouts', 'sideways'])).rejects.toThrow(UsageError);
    await expect(capture(run, ['--frobnicate'])).rejects.toThrow(UsageError);
    expect((await capture(run, ['--help'])).out).toMatch(/usage: moe-conformance golden/);
  });
});
