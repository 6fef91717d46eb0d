// Checkpoint-comparison benchmark: `moe-conformance compare` on one 4+ GB mixtral-type bf16
// model (H 4096, I 14336, E 8, 2 layers) saved in two layouts. The original layout is
// generated like the loader benchmark's (bench/big-checkpoint.ts); the fused one is that
// same model re-saved, its tensors streamed from the original's whole-model load plan, so
// the two hold the same canonical tensors and every byte is compared. Each comparison runs
// in a process of its own (this file in worker mode) so that its peak RSS is its own.
// Reported per TP size: GB/s over the canonical bytes of one side, median of runs, and the
// largest peak RSS of any run.
//   worker: node --import tsx bench/compare.ts DIR_A DIR_B TP_SIZE
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCheckpointDir } from '../harness/checkpoint/write.js';
import { compareCheckpoints } from '../harness/compare/checkpoints.js';
import { expandLayout } from '../harness/loader/detect.js';
import { entryFor } from '../harness/layouts/registry.js';
import { canonicalName } from '../harness/canonical/canonical.js';
import { planLoad, tensorChunks, type LoadPlan } from '../harness/loader/load.js';
import type { LazyTensor } from '../harness/safetensors/write.js';
import { WHOLE } from '../harness/tensor.js';
import { writeBigCheckpoint } from './big-checkpoint.js';
import { fmt, generateOnce, hostInfo, lastJsonLine, median, peakRssBytes, runProcess, warmPageCache, writeResult } from './common.js';

export interface CompareBenchOptions {
  hidden: number;
  intermediate: number;
  experts: number;
  layers: number;
  tpSizes: number[];
  /** Where the two checkpoints are generated (kept between runs when their parameters match). */
  workDir: string;
}

export const COMPARE_DEFAULTS: CompareBenchOptions = {
  hidden: 4096, intermediate: 14336, experts: 8, layers: 2, tpSizes: [1, 8],
  workDir: join(tmpdir(), 'moe-bench-compare'),
};

interface CompareRow {
  tpSize: number;
  checkpointBytes: number;
  /** Canonical bytes compared, one side, all ranks. */
  comparedBytes: number;
  same?: boolean;
  runsSeconds?: number[];
  medianSeconds?: number;
  gbPerSecond?: number;
  peakRssBytes?: number;
  error?: string;
}

/** The stored fused tensors of the plan's model, each streamed from the whole-model canonical tensor it equals. */
function fusedFromPlan(plan: LoadPlan): Array<[string, LazyTensor]> {
  const entry = entryFor(plan.modelType);
  const planned = new Map(plan.tensors.map((t) => [t.name, t]));
  // The fused (transformers v5) layout stores gate_up_proj [E, 2I, H] and down_proj [E, H, I]:
  // the whole model's canonical w13 and w2 exactly; the router is stored as it is.
  const canonicalOf: Record<string, string> = { 'gate,up': 'experts.w13', down: 'experts.w2', router: 'router.weight' };
  return plan.dims.moeLayers.flatMap((layer) =>
    expandLayout(entry.layouts.fused, layer, plan.dims).map((stored): [string, LazyTensor] => {
      const parts = [...new Set(stored.views.map((v) => v.part))].join(',');
      const t = planned.get(canonicalName(layer, canonicalOf[parts] ?? '?'));
      if (!t || t.shape.join() !== stored.shape.join()) throw new Error(`bench: no whole canonical tensor is stored as ${stored.key} [${stored.shape.join(', ')}]`);
      return [stored.key, { dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, chunks: () => tensorChunks(plan.dir, t) }];
    }),
  );
}

/** The model in its original layout and re-saved in the fused one, generated unless already there. */
async function checkpointPair(o: CompareBenchOptions): Promise<{ original: string; fused: string; bytes: number }> {
  const tag = `${o.hidden}-${o.intermediate}-${o.experts}-${o.layers}`;
  const original = join(o.workDir, `original-${tag}`);
  const fused = join(o.workDir, `fused-resaved-${tag}`);
  const marker = join(o.workDir, `.pair-complete-${tag}`);
  const need = 2 * 3 * o.layers * o.experts * o.hidden * o.intermediate * 2;
  const bytes = await generateOnce(marker, 'the pair, original side', 1.2 * need, 'two layouts', async () => {
    const written = await writeBigCheckpoint(original, {
      sizes: { modelType: 'mixtral', experts: o.experts, hidden: o.hidden, intermediate: o.intermediate, topK: 2, layers: o.layers },
      layout: 'original', dtype: 'BF16', maxShardBytes: 2_000_000_000, seed: 1,
    });
    const plan = await planLoad(original, WHOLE);
    try {
      const config = JSON.parse(await readFile(join(original, 'config.json'), 'utf8')) as Record<string, unknown>;
      await writeCheckpointDir(fused, config, fusedFromPlan(plan), { maxShardBytes: 2_000_000_000 });
    } finally {
      await plan.dir.close();
    }
    return written;
  });
  return { original, fused, bytes };
}

interface WorkerResult {
  seconds: number;
  same: boolean;
  tensors: number;
  bytes: number;
  ranks: number;
  peak_rss_bytes: number;
}

export async function benchCompare(o: CompareBenchOptions, runs: number): Promise<{ rows: CompareRow[]; file: string }> {
  const pair = await checkpointPair(o);
  const rows: CompareRow[] = [];
  for (const tpSize of o.tpSizes) {
    const row: CompareRow = { tpSize, checkpointBytes: pair.bytes, comparedBytes: 0 };
    try {
      // Read from the page cache, like the loader benchmark: warm both checkpoints first.
      await warmPageCache([pair.original, pair.fused]);
      const results: WorkerResult[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await runProcess(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), pair.original, pair.fused, String(tpSize)], 20 * 60_000);
        results.push(lastJsonLine<WorkerResult>(r, 'compare worker'));
      }
      const seconds = results.map((r) => r.seconds);
      Object.assign(row, {
        comparedBytes: results[0]!.bytes,
        same: results.every((r) => r.same),
        runsSeconds: seconds,
        medianSeconds: median(seconds),
        gbPerSecond: results[0]!.bytes / median(seconds) / 1e9,
        peakRssBytes: Math.max(...results.map((r) => r.peak_rss_bytes)),
      });
    } catch (e) {
      row.error = (e as Error).message;
    }
    rows.push(row);
    console.error(compareTable([row]).split('\n').pop());
  }
  const file = await writeResult('compare', { benchmark: 'compare', options: o, runs, host: await hostInfo(), rows });
  return { rows, file };
}

export function compareTable(rows: CompareRow[]): string {
  const lines = [
    '| TP | checkpoint GB | compared GB (one side) | same | median s | GB/s | peak RSS MB |',
    '| ---: | ---: | ---: | :---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.tpSize} | ${fmt(r.checkpointBytes / 1e9, 2)} | failed: ${r.error} | | | | |`);
      continue;
    }
    lines.push(`| ${r.tpSize} | ${fmt(r.checkpointBytes / 1e9, 2)} | ${fmt(r.comparedBytes / 1e9, 2)} | ${r.same ? 'yes' : 'NO'} | ${fmt(r.medianSeconds!, 2)} | ${fmt(r.gbPerSecond!, 2)} | ${fmt(r.peakRssBytes! / 2 ** 20, 0)} |`);
  }
  return lines.join('\n');
}

/** The entry bench/run.ts lists: the default sizes, `runs` runs per TP size. */
export const compareBenchmark = {
  describe: 'moe-conformance compare on a generated 4+ GB mixtral checkpoint (bf16) and the same model re-saved fused, TP 1 and 8, every rank: GB/s and peak RSS',
  async run(runs: number): Promise<string> {
    const { rows, file } = await benchCompare(COMPARE_DEFAULTS, runs);
    return `${compareTable(rows)}\n\nresults: ${file}`;
  },
};

/** Worker mode: one comparison, every rank of TP_SIZE, as the command runs it; one JSON line. */
async function worker([dirA, dirB, tp]: string[]): Promise<void> {
  const tpSize = Number(tp);
  if (!dirA || !dirB || !Number.isInteger(tpSize) || tpSize < 1) throw new Error('usage: compare.ts DIR_A DIR_B TP_SIZE');
  const start = performance.now();
  const r = await compareCheckpoints(dirA, dirB, { tpSize, epSize: 1, epPlacement: 'linear' });
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ seconds, same: r.same, tensors: r.tensors, bytes: r.bytes, ranks: r.ranks, peak_rss_bytes: peakRssBytes() }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await worker(process.argv.slice(2));
