// The GPU benchmark (`npm run bench -- gpu`, run on the GPU machine by bench/gpu/run-h200.sh):
// the hand-written WGSL forward through Dawn's Vulkan backend against torch CUDA float32
// (TF32 off) at the MoE layers of Qwen3-30B-A3B, DeepSeek-V3, gpt-oss-120b and Mixtral, for
// T = 16, 256 and 2048 tokens, in one run. Weights: bf16 as the models publish them (ours
// read as bf16 on the GPU; torch's widened to f32 once, on the GPU), made from one hash on
// both sides (bench/gpu/shapes.ts), so nothing large goes through a file.
//
// Per shape and T: torch's per-expert loop (what transformers does) and its grouped GEMM
// where it has one, timed on the device (x and y stay on the GPU); ours with the tiling
// autotuned on the first (warm-up) forward and the weights resident, timed the same way
// (`forwardOnDevice`: x already in a GPU buffer, the output left in one, until the GPU is
// done), and separately as the host round trip (`forward`: x up, output, logits and ids
// read back through Dawn), which is reported beside it, never instead; and the GPU's work per
// forward with ten forwards in one submission (the host's encoding and waiting between
// forwards left out), which says how much of a forward's time is the host's. Checked: ours
// against torch's loop output (max |diff| / max |torch|, and tokens off by more than 1e-3
// of that scale, which only a routing flip would give), and each shape's routing and
// activation at a small size against the float64 reference's strict float32 bound, as the
// tests do on llvmpipe.
//   node --import tsx bench/run.ts gpu      (options through BENCH_GPU_*; see gpuOptionsFromEnv)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { referenceForward } from '../../kernels/moe.js';
import { tilingKey, WgslWebGpuBackend, type DeviceForward } from '../../kernels/wgsl/backend.js';
import { fmt, hostInfo, lastJsonLine, python, REPO_DIR, runProcess, timeRuns, timing, writeResult, type Timing } from '../common.js';
import { accuracy, type Accuracy } from '../kernels.js';
import { flopsOf, MODEL_SHAPES, scales, shapeProblem, smallShape, type ModelShape } from './shapes.js';

/** Forwards per submission for the GPU-work column. */
const QUEUED = 10;

export interface GpuOptions {
  shapes: ModelShape[];
  tokens: number[];
  runs: number;
  peerDevice: string;
}

export function gpuOptionsFromEnv(runs: number): GpuOptions {
  const names = process.env.BENCH_GPU_SHAPES?.split(',');
  const small = process.env.BENCH_GPU_SMALL === '1';
  // In the order BENCH_GPU_SHAPES names them (the shape most at stake first, on a machine that may not last).
  const shapes = (names ? names.map((n) => MODEL_SHAPES.find((s) => s.name === n) ?? unknownShape(n)) : MODEL_SHAPES).map((s) => (small ? smallShape(s) : s));
  return {
    shapes,
    tokens: (process.env.BENCH_GPU_TOKENS ?? '16,256,2048').split(',').map(Number),
    runs,
    peerDevice: process.env.BENCH_GPU_PEER_DEVICE ?? 'cuda',
  };
}

function unknownShape(name: string): never {
  throw new Error(`BENCH_GPU_SHAPES: unknown shape ${JSON.stringify(name)} (known: ${MODEL_SHAPES.map((s) => s.name).join(', ')})`);
}

interface PeerSize {
  tokens: number;
  loop_ms: number;
  loop_runs_ms: number[];
  grouped_ms?: number;
  grouped_runs_ms?: number[];
  grouped_vs_loop_rel?: number;
  grouped_error?: string;
}

interface PeerResult {
  torch: string;
  gpu: string;
  grouped_fn: string | null;
  grouped_dtype: string | null;
  sizes: PeerSize[];
  [more: string]: unknown;
}

export interface GpuRow {
  shape: string;
  tokens: number;
  flops: number;
  torchLoop?: Timing;
  torchGrouped?: Timing;
  /** Ours on the device (x in and the output left in GPU buffers), as torch is timed. */
  wgsl?: Timing;
  /** Ours per forward with QUEUED forwards in one submission: the GPU's work without the host's encoding and waiting between forwards. */
  wgslQueued?: Timing;
  /** Ours as a host round trip (x uploaded, output, logits and ids read back). */
  wgslHost?: Timing;
  /** torch loop's median / ours on the device (≥ 1: we are faster). */
  vsLoop?: number;
  vsGrouped?: number;
  /** torch loop's median / our host round trip. */
  hostVsLoop?: number;
  tiling?: string;
  agreement?: { maxAbsDiff: number; maxAbsTorch: number; relative: number; tokensOff: number };
  error?: string;
}

function agreement(ours: Float32Array, torch: Float32Array, H: number): NonNullable<GpuRow['agreement']> {
  let maxAbsDiff = 0;
  let maxAbsTorch = 0;
  for (let i = 0; i < torch.length; i++) maxAbsTorch = Math.max(maxAbsTorch, Math.abs(torch[i]!));
  let tokensOff = 0;
  for (let t = 0; t < torch.length / H; t++) {
    let worst = 0;
    for (let c = 0; c < H; c++) worst = Math.max(worst, Math.abs(ours[t * H + c]! - torch[t * H + c]!));
    maxAbsDiff = Math.max(maxAbsDiff, worst);
    if (worst > 1e-3 * maxAbsTorch) tokensOff++;
  }
  return { maxAbsDiff, maxAbsTorch, relative: maxAbsDiff / maxAbsTorch, tokensOff };
}

/** The shape's routing and activation at a small size: ours against the float64 reference's strict bound. */
async function referenceCheck(s: ModelShape): Promise<Accuracy & { shape: string }> {
  const small = smallShape(s);
  const p = await shapeProblem(small, 24);
  const backend = await WgslWebGpuBackend.create();
  try {
    const ref = referenceForward(p.sem, 0, p.ranks, p.x, 24, { bound: true });
    const got = await backend.forward(p.sem, 0, p.ranks, p.x, 24);
    return { shape: small.name, ...accuracy(ref, got.output) };
  } finally {
    await backend.dispose();
  }
}

async function runPeer(s: ModelShape, o: GpuOptions, dir: string): Promise<PeerResult> {
  const r = await runProcess(python(), [
    join(REPO_DIR, 'bench', 'peers', 'torch_moe_gpu.py'), '--shape', JSON.stringify({ ...s, scales: scales(s) }),
    '--tokens', o.tokens.join(','), '--runs', String(o.runs), '--out-dir', dir, '--device', o.peerDevice,
  ], 20 * 60_000);
  process.stderr.write(r.stderr);
  return lastJsonLine<PeerResult>(r, `torch peer (${s.name})`);
}

export async function benchGpu(o: GpuOptions): Promise<{ rows: GpuRow[]; file: string }> {
  const rows: GpuRow[] = [];
  const report: Record<string, unknown> = { benchmark: 'gpu', host: await hostInfo(), runs: o.runs, dawnFeatures: process.env.MOE_DAWN_FEATURES ?? null };
  const checks = [];
  for (const s of o.shapes) {
    const c = await referenceCheck(s);
    console.error(`reference check ${c.shape}: ${c.overBound} of ${c.checked} over the f32 bound, max error/bound ${c.maxErrorOverBound.toExponential(2)}`);
    checks.push(c);
  }
  report.referenceChecks = checks;
  const peers: Record<string, unknown> = {};
  const tunings: Record<string, unknown> = {};
  report.peers = peers;
  report.tunings = tunings;
  report.rows = rows;
  // Written after every shape (`complete: false` until the last), so that a run cut short by
  // the GPU machine's limits still leaves the shapes it measured.
  let file: string | undefined;
  for (const s of o.shapes) {
    const dir = await mkdtemp(join(tmpdir(), 'moe-bench-gpu-'));
    try {
      let peer: PeerResult | undefined;
      try {
        peer = await runPeer(s, o, dir);
        peers[s.name] = { ...peer, sizes: undefined };
      } catch (e) {
        peers[s.name] = { error: (e as Error).message };
        console.error((e as Error).message);
      }
      const start = performance.now();
      const p = await shapeProblem(s, Math.max(...o.tokens));
      console.error(`${s.name}: weights made in ${fmt((performance.now() - start) / 1000)} s`);
      const backend = await WgslWebGpuBackend.create({ autotune: true, residentWeights: true });
      report.adapter = backend.adapter;
      try {
        for (const T of o.tokens) {
          const row: GpuRow = { shape: s.name, tokens: T, flops: flopsOf(s, T) };
          const ps = peer?.sizes.find((z) => z.tokens === T);
          if (ps) {
            row.torchLoop = timing(ps.loop_runs_ms);
            if (ps.grouped_runs_ms) row.torchGrouped = timing(ps.grouped_runs_ms);
          }
          try {
            const x = p.x.subarray(0, T * s.hidden);
            const xBuf = backend.inputBuffer(x);
            try {
              let last: DeviceForward | undefined;
              row.wgsl = await timeRuns(o.runs, 2, async () => {
                last = await backend.forwardOnDevice(p.sem, 0, p.ranks, xBuf, T);
              });
              const out = await backend.readOutput(p.sem, last!);
              // The GPU's time per forward: QUEUED forwards in one submission, so the host's encoding and waiting between forwards drop out.
              const queued = await timeRuns(3, 1, () => backend.forwardOnDevice(p.sem, 0, p.ranks, xBuf, T, QUEUED));
              row.wgslQueued = timing(queued.runsMs.map((ms) => ms / QUEUED));
              row.wgslHost = await timeRuns(o.runs, 1, () => backend.forward(p.sem, 0, p.ranks, x, T));
              const tuned = [...backend.tunings.entries()].pop();
              row.tiling = tuned ? tilingKey(tuned[1].tiling) : undefined;
              if (tuned) tunings[`${s.name} T=${T}`] = tuned[1];
              if (ps) {
                const torchY = new Float32Array((await readFile(join(dir, `y-${T}.f32`))).buffer.slice(0));
                row.agreement = agreement(out, torchY, s.hidden);
              }
            } finally {
              xBuf.destroy();
            }
            if (row.torchLoop) {
              row.vsLoop = row.torchLoop.medianMs / row.wgsl.medianMs;
              row.hostVsLoop = row.torchLoop.medianMs / row.wgslHost.medianMs;
            }
            if (row.torchGrouped) row.vsGrouped = row.torchGrouped.medianMs / row.wgsl.medianMs;
          } catch (e) {
            row.error = (e as Error).message;
          }
          rows.push(row);
          console.error(gpuTable([row]).split('\n').pop());
        }
      } finally {
        await backend.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    file = await writeResult('gpu', { ...report, complete: s === o.shapes[o.shapes.length - 1] }, file);
  }
  return { rows, file: file ?? await writeResult('gpu', { ...report, complete: true }) };
}

const tflops = (flops: number, t?: Timing) => (t ? fmt(flops / t.medianMs / 1e9, 1) : '–');

export function gpuTable(rows: GpuRow[]): string {
  const lines = [
    `| shape | T | torch loop ms | torch grouped ms | WGSL on device ms | WGSL GPU work ms (${QUEUED} queued) | WGSL TFLOP/s | × torch loop | × torch grouped | WGSL host round trip ms (× loop) | WGSL vs torch (max rel diff, tokens off) | tiling |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of rows) {
    const ms = (t?: Timing) => (t ? fmt(t.medianMs, 2) : '–');
    const x = (v?: number) => (v === undefined ? '–' : fmt(v, 2));
    const a = r.agreement ? `${r.agreement.relative.toExponential(1)}, ${r.agreement.tokensOff}` : '–';
    const host = r.wgslHost ? `${ms(r.wgslHost)} (${x(r.hostVsLoop)})` : '–';
    lines.push(`| ${r.shape} | ${r.tokens} | ${ms(r.torchLoop)} | ${ms(r.torchGrouped)} | ${r.error ? `failed: ${r.error}` : ms(r.wgsl)} | ${ms(r.wgslQueued)} | ${tflops(r.flops, r.wgsl)} | ${x(r.vsLoop)} | ${x(r.vsGrouped)} | ${host} | ${a} | ${r.tiling ?? ''} |`);
  }
  return lines.join('\n');
}
