// Time per MoE forward of each gpu.js mode at T=256, H=1024, I=2816, E=8, top-2 (mixtral
// routing), float32 weights. Not a test: prints one JSON line per mode.
//   node --import tsx kernels/gpujs/bench.ts [cpu] [webasm] [webgpu]
// Env: BENCH_RUNS (timed runs after one warm-up, default 3), BENCH_TOKENS/HIDDEN/INTERMEDIATE
// to change the size (e.g. H=4096, I=14336 on the GPU machine).
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import { decodeRank } from '../experts.js';
import { createGpujsBackend, type GpujsMode } from './backend.js';
import { randomFloats, randomRanks, seededRandom } from './random-ranks.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const T = env('BENCH_TOKENS', 256);
const H = env('BENCH_HIDDEN', 1024);
const I = env('BENCH_INTERMEDIATE', 2816);
const E = 8;
const K = 2;
const RUNS = env('BENCH_RUNS', 3);

const sem: MoeSemantics = {
  modelType: 'mixtral', experts: E, topK: K, hidden: H, intermediate: I, sharedIntermediate: 0,
  routing: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
  activation: { kind: 'silu_gated' }, sharedGate: false, moeLayers: [0],
};
// Router, then per (token, expert) row: gate and up (2·2I·H) and down (2·I·H).
const flops = 2 * T * E * H + T * K * (4 * I * H + 2 * I * H);

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function main(): Promise<void> {
  const modes = (process.argv.slice(2).length ? process.argv.slice(2) : ['cpu', 'webasm', 'webgpu']) as GpujsMode[];
  const ranks = randomRanks(sem, 0, { tpSize: 1, epSize: 1, placement: 'linear' }, 1);
  const x = randomFloats(seededRandom(2), T * H, 1);
  // Every forward decodes the canonical tensors again; this is that share of its time.
  const decodeStart = performance.now();
  decodeRank(sem, 0, ranks[0]!);
  const decodeMs = performance.now() - decodeStart;

  for (const mode of modes) {
    const backend = await createGpujsBackend(mode);
    try {
      const warmStart = performance.now();
      await backend.forward(sem, 0, ranks, x, T);
      const firstMs = performance.now() - warmStart;
      const times: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const start = performance.now();
        const result = await backend.forward(sem, 0, ranks, x, T);
        times.push(performance.now() - start);
        if (result.ranOn !== mode) throw new Error(`ran on ${result.ranOn}`);
      }
      const ms = median(times);
      console.log(JSON.stringify({
        backend: backend.name, adapter: backend.adapter?.device, T, H, I, E, topK: K,
        firstCallMs: Math.round(firstMs), ms: Math.round(ms), gflops: +(flops / ms / 1e6).toFixed(2),
        decodeMs: Math.round(decodeMs), runs: times.map(Math.round),
      }));
    } finally {
      await backend.dispose();
    }
  }
}

await main();
