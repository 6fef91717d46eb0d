// Load-and-cut benchmark: a generated mixtral-type checkpoint of 4+ GB (H 4096, I 14336,
// E 8, 2 layers, bf16) in the original and the fused layout; for TP 2 and TP 8, every rank
// cut into its own safetensors file by our reference loader (bench/loader-worker.ts, a
// process of its own) and by the Python peer (bench/python/load_cut.py: safe_open +
// get_slice). Reported: GB/s over the checkpoint's MoE bytes, the ratio, each side's peak
// RSS; every rank file of ours is compared byte for byte with the peer's.
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { LayoutName } from '../harness/layouts/registry.js';
import { writeBigCheckpoint, type BigCheckpoint } from './big-checkpoint.js';
import { BENCH_DIR, fmt, generateOnce, hostInfo, lastJsonLine, python, REPO_DIR, runProcess, warmPageCache, writeResult } from './common.js';

export interface LoaderOptions {
  hidden: number;
  intermediate: number;
  experts: number;
  layers: number;
  tpSizes: number[];
  layouts: LayoutName[];
  /** Where checkpoints are generated (kept between runs when their parameters match). */
  workDir: string;
}

export const LOADER_DEFAULTS: LoaderOptions = {
  hidden: 4096, intermediate: 14336, experts: 8, layers: 2, tpSizes: [2, 8], layouts: ['original', 'fused'],
  workDir: join(tmpdir(), 'moe-bench-loader'),
};

interface SideResult {
  seconds: number;
  gbPerSecond: number;
  peakRssBytes: number;
}

interface LoaderRow {
  layout: LayoutName;
  tpSize: number;
  checkpointBytes: number;
  ours?: SideResult;
  peer?: SideResult;
  /** peer seconds / our seconds: ≥ 1 means we are faster. */
  speedVsPeer?: number;
  identicalRanks?: number;
  error?: string;
}

/** Whether two files have the same bytes, read in 16 MiB blocks. */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    if (sa.size !== sb.size) return false;
    const ba = Buffer.alloc(16 << 20);
    const bb = Buffer.alloc(16 << 20);
    for (let at = 0; at < sa.size; at += ba.length) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, at), fb.read(bb, 0, bb.length, at)]);
      if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** The checkpoint for a layout, generated unless an identical one is already there. */
async function checkpoint(o: LoaderOptions, layout: LayoutName): Promise<{ dir: string; bytes: number }> {
  const spec: BigCheckpoint = {
    sizes: { modelType: 'mixtral', experts: o.experts, hidden: o.hidden, intermediate: o.intermediate, topK: 2, layers: o.layers },
    layout, dtype: 'BF16', maxShardBytes: 2_000_000_000, seed: 1,
  };
  const dir = join(o.workDir, `${layout}-${o.hidden}-${o.intermediate}-${o.experts}-${o.layers}`);
  const need = 3 * o.layers * o.experts * o.hidden * o.intermediate * 2;
  const bytes = await generateOnce(join(dir, '.bench-complete'), `the ${layout} checkpoint`, 2.5 * need, 'checkpoint + outputs', () => writeBigCheckpoint(dir, spec));
  return { dir, bytes };
}

export async function benchLoader(o: LoaderOptions): Promise<{ rows: LoaderRow[]; file: string }> {
  const rows: LoaderRow[] = [];
  for (const layout of o.layouts) {
    const ck = await checkpoint(o, layout);
    for (const tpSize of o.tpSizes) {
      const row: LoaderRow = { layout, tpSize, checkpointBytes: ck.bytes };
      const oursDir = join(o.workDir, 'out-ours');
      const peerDir = join(o.workDir, 'out-peer');
      try {
        // Both sides read the checkpoint from the page cache: warm it first.
        await warmPageCache([ck.dir]);
        const side = (j: { seconds: number; peak_rss_bytes: number }): SideResult => ({ seconds: j.seconds, gbPerSecond: ck.bytes / j.seconds / 1e9, peakRssBytes: j.peak_rss_bytes });
        const ours = await runProcess(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'loader-worker.ts'), ck.dir, String(tpSize), oursDir], 20 * 60_000, { ...process.env });
        row.ours = side(lastJsonLine(ours, 'our loader'));
        const peer = await runProcess(python(), [join(REPO_DIR, 'bench', 'python', 'load_cut.py'), '--checkpoint', ck.dir, '--tp-size', String(tpSize), '--out', peerDir], 20 * 60_000);
        row.peer = side(lastJsonLine(peer, 'python load_cut peer'));
        row.speedVsPeer = row.peer.seconds / row.ours.seconds;
        let identical = 0;
        for (let r = 0; r < tpSize; r++) if (await sameFile(join(oursDir, `rank-${r}.safetensors`), join(peerDir, `rank-${r}.safetensors`))) identical++;
        row.identicalRanks = identical;
      } catch (e) {
        row.error = (e as Error).message;
      } finally {
        await rm(oursDir, { recursive: true, force: true });
        await rm(peerDir, { recursive: true, force: true });
      }
      rows.push(row);
      console.error(loaderTable([row]).split('\n').pop());
    }
  }
  const file = await writeResult('loader', { benchmark: 'loader', options: o, host: await hostInfo(), rows });
  return { rows, file };
}

export function loaderTable(rows: LoaderRow[]): string {
  const lines = [
    '| layout | TP | checkpoint GB | ours GB/s | peer GB/s | × peer speed | our peak RSS MB | peer peak RSS MB | ranks identical |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const mb = (b?: number) => (b === undefined ? '–' : fmt(b / 2 ** 20, 0));
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.layout} | ${r.tpSize} | ${fmt(r.checkpointBytes / 1e9, 2)} | failed: ${r.error} | | | | | |`);
      continue;
    }
    lines.push(`| ${r.layout} | ${r.tpSize} | ${fmt(r.checkpointBytes / 1e9, 2)} | ${fmt(r.ours!.gbPerSecond, 2)} | ${fmt(r.peer!.gbPerSecond, 2)} | ${fmt(r.speedVsPeer!, 2)} | ${mb(r.ours!.peakRssBytes)} | ${mb(r.peer!.peakRssBytes)} | ${r.identicalRanks}/${r.tpSize} |`);
  }
  return lines.join('\n');
}
