// The GPU-machine benchmark (bench/gpu/run-h200.sh runs it): the hand-written WGSL forward
// through Dawn's Vulkan backend against torch CUDA in float32 (TF32 off) on the same input
// file, at the Mixtral-sized layer (H 4096, I 14336, E 8, top-2) for T = 256 and 2048.
// Correctness there: our output against torch's (both float32); and, at the CPU size,
// against the float64 reference within its strict bound, so the NVIDIA run of the kernels
// is checked exactly like the llvmpipe one.
//   node --import tsx bench/gpu/h200.ts [--runs N] [--tilings default,wide,big] [--tokens 256,2048]
// (`--hidden 256 --intermediate 512 --check-hidden 64 --check-intermediate 96 --peer-device cpu
// --tilings compat` make a smoke test on a CPU machine.)
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { referenceForward } from '../../kernels/moe.js';
import { WgslWebGpuBackend } from '../../kernels/wgsl/backend.js';
import { COMPAT_TILING, DEFAULT_TILING, type GemmTiling } from '../../kernels/wgsl/shaders.js';
import { fmt, hostInfo, timeRuns, writeResult } from '../common.js';
import { accuracy, runTorchPeer, type BackendRow } from '../kernels.js';
import { firstTokens, moeProblem, writePeerInput, type MoeProblem } from '../moe-problem.js';

const TILINGS: Record<string, GemmTiling> = {
  default: DEFAULT_TILING,
  compat: COMPAT_TILING,
  /** 64 × 128 tiles, 4 × 8 per thread. */
  wide: { wx: 16, wy: 16, rm: 8, bk: 16 },
  /** 128 × 128 tiles, 8 × 8 per thread: more reuse per staged value, for large GPUs. */
  big: { wx: 16, wy: 8, rm: 8, bk: 16 },
};

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] ?? fallback : fallback;
}

interface Comparison {
  maxAbsDiff: number;
  maxAbsTorch: number;
  /** max |ours − torch| / max |torch|. */
  relative: number;
}

function compare(ours: Float32Array, torch: Float32Array): Comparison {
  let maxAbsDiff = 0;
  let maxAbsTorch = 0;
  for (let i = 0; i < torch.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ours[i]! - torch[i]!));
    maxAbsTorch = Math.max(maxAbsTorch, Math.abs(torch[i]!));
  }
  return { maxAbsDiff, maxAbsTorch, relative: maxAbsDiff / maxAbsTorch };
}

async function timeWgsl(p: MoeProblem, tiling: GemmTiling, runs: number): Promise<{ row: BackendRow; output: Float32Array }> {
  const backend = await WgslWebGpuBackend.create({ tiling, residentWeights: true });
  try {
    let output: Float32Array = new Float32Array(0);
    const t = await timeRuns(runs, 1, async () => {
      output = (await backend.forward(p.sem, 0, p.ranks, p.x, p.tokens)).output as Float32Array;
    });
    return { row: { backend: 'wgsl-webgpu', detail: `tiling ${JSON.stringify(tiling)}, adapter ${backend.adapter.device}`, timing: t, gflops: p.flops / t.medianMs / 1e6 }, output };
  } finally {
    await backend.dispose();
  }
}

async function main(): Promise<void> {
  const runs = Number(option('runs', '10'));
  const tilings = option('tilings', 'default,wide,big').split(',').map((n) => [n, TILINGS[n]] as [string, GemmTiling]);
  const tokenCounts = option('tokens', '256,2048').split(',').map(Number);
  const hidden = Number(option('hidden', '4096'));
  const intermediate = Number(option('intermediate', '14336'));
  const peerDevice = option('peer-device', 'cuda');
  if (tilings.some(([, t]) => t === undefined)) throw new Error(`--tilings takes names from ${Object.keys(TILINGS).join(', ')}`);
  const report: Record<string, unknown> = { benchmark: 'h200', host: await hostInfo(), runs };

  // 1. The kernels on this device against the float64 reference (CPU size, first 8 tokens).
  const small = moeProblem({ tokens: 256, hidden: Number(option('check-hidden', '1024')), intermediate: Number(option('check-intermediate', '2816')), experts: 8, topK: 2 });
  const check = firstTokens(small, 8);
  const ref = referenceForward(small.sem, 0, small.ranks, check.x, check.tokens, { bound: true });
  const checks: Record<string, unknown> = {};
  for (const [name, tiling] of tilings) {
    const { row, output } = await timeWgsl(small, tiling, Math.min(runs, 5));
    checks[name] = { ...row, accuracy: accuracy(ref, output.subarray(0, ref.output.length)) };
    console.log(`CPU size, tiling ${name}: ${fmt(row.timing!.medianMs, 2)} ms, accuracy ${JSON.stringify((checks[name] as BackendRow).accuracy)}`);
  }
  report.referenceCheck = checks;

  // 2. Mixtral-sized layer, T = 256 and 2048, against torch CUDA on the same file.
  const maxT = Math.max(...tokenCounts);
  const big = moeProblem({ tokens: maxT, hidden, intermediate, experts: 8, topK: 2 });
  const dir = join(tmpdir(), `moe-bench-h200-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const input = join(dir, 'mixtral-layer.safetensors');
  const sizes: Record<string, unknown>[] = [];
  try {
    await writePeerInput(big, input);
    for (const T of tokenCounts) {
      const p = firstTokens(big, T);
      const torch = await runTorchPeer(input, { device: peerDevice, threads: 16, runs, tokens: T });
      if (torch.row.timing) torch.row.gflops = p.flops / torch.row.timing.medianMs / 1e6;
      const rows: BackendRow[] = [torch.row];
      console.log(`T=${T} torch: ${torch.row.error ?? `${fmt(torch.row.timing!.medianMs, 2)} ms, ${fmt(torch.row.gflops!)} GFLOP/s`}`);
      for (const [name, tiling] of tilings) {
        try {
          const { row, output } = await timeWgsl(p, tiling, runs);
          if (torch.row.timing) row.speedVsTorch = torch.row.timing.medianMs / row.timing!.medianMs;
          const agreement = torch.output ? compare(output, torch.output) : undefined;
          rows.push({ ...row, detail: `${row.detail}; vs torch ${JSON.stringify(agreement)}` });
          console.log(`T=${T} wgsl ${name}: ${fmt(row.timing!.medianMs, 2)} ms, ${fmt(row.gflops!)} GFLOP/s, ${fmt(row.speedVsTorch ?? NaN, 3)}× torch, vs torch ${JSON.stringify(agreement)}`);
        } catch (e) {
          rows.push({ backend: 'wgsl-webgpu', detail: `tiling ${name}`, error: (e as Error).message });
          console.log(`T=${T} wgsl ${name} failed: ${(e as Error).message}`);
        }
      }
      sizes.push({ tokens: T, hidden, intermediate, experts: 8, topK: 2, flops: p.flops, rows });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  report.mixtral = sizes;
  console.log(`results: ${await writeResult('h200', report)}`);
}

await main();
