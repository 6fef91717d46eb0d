// Reading a plan's pieces as row runs or in windows of any size (strips) gives the same bytes
// as gathering them from the whole stored tensor: the bounded-memory paths are checked against the simple one on the
// transposed, interleaved and flattened golden layouts, for whole and cut ranks.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointDir } from '../checkpoint/directory.js';
import { planLoad, readPiece, SmallTensorCache } from './load.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf');

describe('windowed piece reads', () => {
  it.each(['llama4_text-f32', 'gpt_oss-bf16', 'dbrx-bf16'])('%s: strips of a few elements equal one window', async (fixture) => {
    const dir = await CheckpointDir.open(join(GOLDEN, fixture, 'fused'));
    try {
      for (const req of [
        { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' as const },
        { tpSize: 4, tpRank: 2, epSize: 3, epRank: 1, epPlacement: 'round_robin' as const },
      ]) {
        const plan = await planLoad(dir, req);
        for (const t of plan.tensors) {
          for (const piece of t.pieces) {
            // The reference: the piece gathered from its whole stored tensor, read in one go.
            const whole = await readPiece(dir, piece, { small: new SmallTensorCache() });
            expect(await readPiece(dir, piece), `${t.name} defaults`).toEqual(whole);
            // Row runs for any sparse piece, and strips of at most 2000 bytes.
            expect(await readPiece(dir, piece, { maxWindow: 2000, smallWindow: 0 }), `${t.name} strips`).toEqual(whole);
          }
        }
      }
    } finally {
      await dir.close();
    }
  });
});
