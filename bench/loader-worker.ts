// Our side of the load-and-cut benchmark, as its own process so that its peak RSS is its
// own: every TP rank of one checkpoint planned and streamed into rank-<r>.safetensors
// with the reference loader (harness/loader/load.ts). Prints one JSON line like the
// Python peer's: {seconds, bytes_written, peak_rss_bytes, ranks}.
//   node --import tsx bench/loader-worker.ts CHECKPOINT_DIR TP_SIZE OUT_DIR
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { planLoad, writePlan } from '../harness/loader/load.js';
import { peakRssBytes } from './common.js';

async function main([dir, tp, out]: string[]): Promise<void> {
  const tpSize = Number(tp);
  if (!dir || !out || !Number.isInteger(tpSize) || tpSize < 1) throw new Error('usage: loader-worker.ts CHECKPOINT_DIR TP_SIZE OUT_DIR');
  await mkdir(out, { recursive: true });
  const start = performance.now();
  let written = 0;
  for (let r = 0; r < tpSize; r++) {
    const plan = await planLoad(dir, { tpSize, tpRank: r, epSize: 1, epRank: 0, epPlacement: 'linear' });
    const file = join(out, `rank-${r}.safetensors`);
    try {
      await writePlan(plan, file);
    } finally {
      await plan.dir.close();
    }
    written += (await stat(file)).size;
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ seconds, bytes_written: written, peak_rss_bytes: peakRssBytes(), ranks: tpSize }));
}

await main(process.argv.slice(2));
