// A command loader (spec §2) declaring the dequantized form of a quantized checkpoint:
// read as such when it is, refused when the declaration and the tensors disagree.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fp8Scheme } from './scheme.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBitIdentical } from '../compare/bits.js';
import { commandLoader, LoaderOutputInvalid } from '../protocol/command-loader.js';
import { loadCanonical } from '../loader/load.js';
import type { ParallelRequest } from '../tensor.js';
import { dequantizeCanonical } from './dequantize.js';

const FP8 = join(import.meta.dirname, '../../golden/hf-quant/qwen3_moe-fp8/fused');
const scratch = mkdtempSync(join(tmpdir(), 'moe-quant-cmd-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a command loader of a quantized checkpoint', () => {
  const req: ParallelRequest = { tpSize: 2, tpRank: 1, epSize: 2, epRank: 0, epPlacement: 'linear' };
  it('the declared dequantized form is read as such; a declaration with scales is refused', async () => {
    const quantized = await loadCanonical(FP8, req);
    const got = await commandLoader('moe-conformance load --dequantize', { timeoutMs: 60_000 }).load(FP8, req);
    assertBitIdentical(dequantizeCanonical(quantized, fp8Scheme({ rows: 128, cols: 128 }), req), got);
    // A loader that says "dequantized" but still writes a scale tensor.
    const script = join(scratch, 'liar.mjs');
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';
const out = process.argv[process.argv.indexOf('--out') + 1];
const header = Buffer.from(JSON.stringify({ __metadata__: { 'moe_conformance.dequantized': 'true' }, 'layers.0.experts.w13_scale': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(header.length));
writeFileSync(out, Buffer.concat([len, header, Buffer.alloc(4)]));
`,
    );
    await expect(commandLoader(`${process.execPath} ${script}`, { timeoutMs: 20_000 }).load(FP8, req)).rejects.toThrow(LoaderOutputInvalid);
  });

});
