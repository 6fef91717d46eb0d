// Reading a plan's pieces in small windows (strips) gives the same bytes as reading each
// piece in one window: the bounded-memory path is checked against the simple one on the
// transposed, interleaved and flattened golden layouts, for whole and cut ranks.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointDir } from '../checkpoint/directory.js';
import { planLoad, readPiece } from './load.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf');

describe('windowed piece reads', () => {
  it.each(['llama4_text-f32', 'gpt_oss-bf16', 'dbrx-bf16', 'mixtral-f32'])('%s: strips of a few elements equal one window', async (fixture) => {
    const dir = await CheckpointDir.open(join(GOLDEN, fixture, 'fused'));
    try {
      for (const req of [
        { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' as const },
        { tpSize: 4, tpRank: 2, epSize: 3, epRank: 1, epPlacement: 'round_robin' as const },
      ]) {
        const plan = await planLoad(dir, req);
        for (const t of plan.tensors) {
          for (const piece of t.pieces) {
            const whole = await readPiece(dir, piece, Number.MAX_SAFE_INTEGER);
            for (const maxWindow of [1, 64, 1000]) expect(await readPiece(dir, piece, maxWindow), `${t.name} window ${maxWindow}`).toEqual(whole);
          }
        }
      }
    } finally {
      await dir.close();
    }
  });
});
