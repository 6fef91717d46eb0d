// `moe-conformance load` on a quantized checkpoint, in-process: the quantized form by
// default, and with --dequantize F32 weights declared in the file's __metadata__.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as generate } from '../../app/cli/commands/generate.js';
import { run as load } from '../../app/cli/commands/load.js';
import { assertBitIdentical } from '../compare/bits.js';
import { loadCanonical } from '../loader/load.js';
import { SafetensorsFile } from '../safetensors/read.js';
import type { ParallelRequest } from '../tensor.js';
import { dequantizeCanonical } from './dequantize.js';
import { declaresDequantized, fp8Scheme } from './scheme.js';

const FP8 = join(import.meta.dirname, '../../golden/hf-quant/qwen3_moe-fp8/fused');
const scratch = mkdtempSync(join(tmpdir(), 'moe-quant-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function quiet(argv: string[]): Promise<number> {
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await load(argv);
  } finally {
    e.mockRestore();
  }
}

describe('load of a quantized checkpoint', () => {
  const req: ParallelRequest = { tpSize: 2, tpRank: 1, epSize: 2, epRank: 0, epPlacement: 'linear' };
  const split = ['--tp-size', '2', '--tp-rank', '1', '--ep-size', '2', '--ep-rank', '0'];

  it('writes the quantized tensors with their scales by default, and F32 weights declared dequantized with --dequantize', async () => {
    const quantized = await loadCanonical(FP8, req);
    for (const dequantize of [false, true]) {
      const out = join(scratch, `rank-${dequantize}.safetensors`);
      expect(await quiet(['--checkpoint', FP8, '--out', out, ...split, ...(dequantize ? ['--dequantize'] : [])])).toBe(0);
      const file = await SafetensorsFile.open(out);
      try {
        const metadata = file.metadata ? Object.fromEntries(file.metadata) : undefined;
        expect(declaresDequantized(metadata)).toBe(dequantize);
        const expected = dequantize ? dequantizeCanonical(quantized, fp8Scheme({ rows: 128, cols: 128 }), req) : quantized;
        expect([...file.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
        const written = new Map(await Promise.all([...file.tensors.keys()].map(async (n) => [n, await file.readTensor(n)] as const)));
        assertBitIdentical(expected, written);
        expect((await file.readTensor('layers.0.experts.w13')).dtype).toBe(dequantize ? 'F32' : 'F8_E4M3');
      } finally {
        await file.close();
      }
    }
  });

  it('generate --dtype fp8|mxfp4|mxfp4-shared writes a quantized checkpoint that loads with scales (MXFP4 beyond gpt_oss too)', async () => {
    const cases = [['fp8', 'qwen3_moe', ['160', '96']], ['mxfp4', 'gpt_oss', ['64', '64']], ['mxfp4', 'mixtral', ['64', '96']], ['mxfp4-shared', 'deepseek_v3', ['64', '32', '--shared-intermediate', '64']]] as const;
    for (const [dtype, type, dims] of cases) {
      const out = join(scratch, `gen-${dtype}-${type}`);
      const o = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      try {
        expect(await generate(['--model-type', type, '--layout', 'fused', '--dtype', dtype, '--experts', '3', '--hidden', dims[0], '--intermediate', dims[1], ...dims.slice(2), '--layers', '1', '--seed', '5', '--out', out])).toBe(0);
      } finally {
        o.mockRestore();
      }
      const c = await loadCanonical(out, { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' });
      expect(c.get('layers.0.experts.w13')!.dtype).toBe(dtype === 'fp8' ? 'F8_E4M3' : 'U8');
      expect(c.has('layers.0.experts.w13_scale')).toBe(true);
      if (dtype === 'mxfp4-shared') expect(c.get('layers.0.shared.w13_scale')?.dtype).toBe('U8');
    }
  });
});
