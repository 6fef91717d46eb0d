// Reading a plan's pieces as row runs or in windows of any size (strips) gives the same bytes
// as gathering them from the whole stored tensor: the bounded-memory paths are checked against the simple one on the
// transposed, interleaved and flattened golden layouts, for whole and cut ranks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { CheckpointDir } from '../checkpoint/directory.js';
import { writeCheckpointDir } from '../checkpoint/write.js';
import { expandLayout } from './detect.js';
import { entryFor, type LayoutName } from '../layouts/registry.js';
import type { LazyTensor } from '../safetensors/write.js';
import type { ParallelRequest } from '../tensor.js';
import { buildConfig } from '../writer/config.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { materialize, pieceChunks, planLoad, SmallTensorCache, tensorChunks, type PlanPiece, type ReadOptions } from './load.js';

async function readPiece(dir: CheckpointDir, piece: PlanPiece, options: ReadOptions = {}): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of pieceChunks(dir, piece, options)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const GOLDEN = join(import.meta.dirname, '../../golden/hf');

describe('windowed piece reads', () => {
  it.each(['llama4_text-f32', 'gpt_oss-bf16', 'dbrx-bf16'])('%s: strips of a few elements equal one window', async (fixture) => {
    const dir = await CheckpointDir.open(join(GOLDEN, fixture, 'fused'));
    try {
      // A cut rank has both dense pieces (gate and up rows) and sparse ones (w2 columns).
      for (const req of [{ tpSize: 4, tpRank: 2, epSize: 3, epRank: 1, epPlacement: 'round_robin' as const }]) {
        const plan = await planLoad(dir, req);
        for (const t of plan.tensors) {
          for (const piece of t.pieces) {
            // The reference: the piece gathered from its whole stored tensor, read in one go.
            const whole = await readPiece(dir, piece, { small: new SmallTensorCache() });
            expect(await readPiece(dir, piece), `${t.name} defaults`).toEqual(whole);
            // Row runs for any sparse piece, and strips of at most 4000 bytes.
            expect(await readPiece(dir, piece, { maxWindow: 4000, smallWindow: 0 }), `${t.name} strips`).toEqual(whole);
          }
        }
      }
    } finally {
      await dir.close();
    }
  });
});

describe('a planned tensor streamed in chunks', () => {
  it.each(['gpt_oss-bf16', 'mixtral-f32', 'llama4_text-bf16'])('%s: small chunks of whole elements concatenate to its pieces read whole', async (fixture) => {
    const dir = await CheckpointDir.open(join(GOLDEN, fixture, 'fused'));
    try {
      const plan = await planLoad(dir, { tpSize: 2, tpRank: 1, epSize: 3, epRank: 2, epPlacement: 'linear' });
      for (const t of plan.tensors) {
        const whole = Buffer.concat(await Promise.all(t.pieces.map((p) => readPiece(dir, p, { small: new SmallTensorCache() }))));
        const elemBytes = dtypeBits(t.dtype) / 8;
        const rowBytes = (t.shape.at(-1) ?? 1) * elemBytes;
        const chunks: Uint8Array[] = [];
        for await (const chunk of tensorChunks(dir, t, { maxWindow: 64, smallWindow: 0 })) chunks.push(chunk);
        expect(Buffer.concat(chunks), t.name).toEqual(whole);
        expect(whole.length).toBe(t.byteLength);
        for (const c of chunks) {
          expect(c.length % elemBytes, `${t.name} whole elements`).toBe(0);
          expect(c.length, `${t.name} bounded`).toBeLessThanOrEqual(Math.max(64, rowBytes));
        }
        if (t.byteLength > 4 * Math.max(64, rowBytes)) expect(chunks.length, `${t.name} streamed`).toBeGreaterThan(1);
      }
    } finally {
      await dir.close();
    }
  });
});

describe('a rank reads only what it holds', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'moe-reads-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** A checkpoint of stored tensors above the whole-read size, with patterned bytes. */
  async function bigCheckpoint(modelType: string, layout: LayoutName): Promise<{ dir: string; expertBytes: number }> {
    const raw = buildConfig({ modelType, experts: 2, hidden: 512, intermediate: 520, sharedIntermediate: modelType === 'llama4_text' ? 520 : 0, topK: 1, layers: 1 }, 'float32');
    const dims = entryFor(modelType).dims(new ModelConfig(raw));
    const stored = expandLayout(entryFor(modelType).layouts[layout], 0, dims);
    const chunk = Uint8Array.from({ length: 1 << 16 }, (_, i) => (i * 2654435761) >>> 24);
    const tensors = stored.map((s): [string, LazyTensor] => {
      const byteLength = s.shape.reduce((a, b) => a * b, 1) * 4;
      return [s.key, { dtype: 'F32', shape: s.shape, byteLength, async *chunks() { for (let at = 0; at < byteLength; at += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, byteLength - at)); } }];
    });
    const dir = join(scratch, `${modelType}-${layout}`);
    await writeCheckpointDir(dir, raw, tensors);
    return { dir, expertBytes: 3 * 2 * 512 * 520 * 4 };
  }

  // Small stored tensors (gpt_oss's expert biases here) are read whole by design.
  const SMALL_SLACK = 64 << 10;

  /** Bytes read from stored expert tensors while loading one rank. */
  async function bytesRead(dirPath: string, req: ParallelRequest): Promise<number> {
    const dir = await CheckpointDir.open(dirPath);
    let total = 0;
    const count = (name: string, n: number) => (total += /experts/.test(name) ? n : 0);
    const readBytes = dir.readBytes.bind(dir);
    const readRanges = dir.readRanges.bind(dir);
    const read = dir.read.bind(dir);
    dir.readBytes = async (name, b, e) => (count(name, e - b), readBytes(name, b, e));
    dir.readRanges = async (name, ranges) => (count(name, ranges.reduce((a, [b, e]) => a + e - b, 0)), readRanges(name, ranges));
    dir.read = async (name) => (count(name, dir.info(name).dataOffsets[1] - dir.info(name).dataOffsets[0]), read(name));
    try {
      await materialize(await planLoad(dir, req));
    } finally {
      await dir.close();
    }
    return total;
  }

  it.each([
    ['mixtral', 'original', 1],
    ['mixtral', 'fused', 1],
    ['llama4_text', 'fused', 1],
    ['gpt_oss', 'fused', 2], // interleaved gate/up: each gate or up span also holds the other: w13 reads x2, w2 x1
  ] as const)('%s %s: TP 8 reads 1/8 of the expert bytes, EP 2 reads 1/2', async (modelType, layout, interleaved) => {
    const { dir, expertBytes } = await bigCheckpoint(modelType, layout);
    const tp8 = await bytesRead(dir, { tpSize: 8, tpRank: 5, epSize: 1, epRank: 0, epPlacement: 'linear' });
    expect(tp8).toBeLessThanOrEqual((expertBytes / 8) * (interleaved === 2 ? 5 / 3 : 1) + SMALL_SLACK);
    expect(tp8).toBeGreaterThanOrEqual(expertBytes / 8);
    const ep2 = await bytesRead(dir, { tpSize: 1, tpRank: 0, epSize: 2, epRank: 1, epPlacement: 'round_robin' });
    expect(ep2).toBeLessThanOrEqual((expertBytes / 2) * (interleaved === 2 ? 5 / 3 : 1) + SMALL_SLACK);
    expect(ep2).toBeGreaterThanOrEqual(expertBytes / 2);
  });
});
