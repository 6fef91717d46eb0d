// Kernels benchmark: the MoE forward at the issue's CPU size (T 256, H 1024, I 2816, E 8,
// top-2, f32, mixtral routing) on every backend we have and on torch (the peer, same input
// file, `torch.set_num_threads(2)`), all in one run. Each side's median over runs and its
// ratio to torch are printed and stored; every output is also checked against the float64
// reference (on the first tokens, where it is cheap) so a fast wrong answer cannot pass.
import { join } from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { MoeBackend } from '../kernels/backend.js';
import { referenceBackend, referenceForward } from '../kernels/moe.js';
import { FastCpuBackend } from '../kernels/fast/backend.js';
import { WgslWebGpuBackend } from '../kernels/wgsl/backend.js';
import { createGpujsBackend } from '../kernels/gpujs/backend.js';
import { decodeFloats } from '../harness/safetensors/codecs.js';
import { SafetensorsFile } from '../harness/safetensors/read.js';
import { fmt, hostInfo, lastJsonLine, python, REPO_DIR, runProcess, timeRuns, timing, writeResult, type Timing } from './common.js';
import { firstTokens, moeProblem, writePeerInput, type ProblemSize } from './moe-problem.js';

export interface KernelsOptions {
  size: ProblemSize;
  runs: number;
  /** Backends to time, by name; default all that this machine has. */
  only?: string[];
  /** Tokens checked against the float64 reference. */
  checkTokens: number;
  /** Torch device and CPU threads of the peer. */
  peerDevice: string;
  peerThreads: number;
}

export interface Accuracy {
  /** Elements of the checked rows over the reference's strict float32 bound. */
  overBound: number;
  checked: number;
  maxAbsError: number;
  /** max |error| / bound over the checked rows (≤ 1 passes). */
  maxErrorOverBound: number;
}

export interface BackendRow {
  backend: string;
  detail?: string;
  timing?: Timing;
  gflops?: number;
  /** torch's median / ours: ≥ 1 means we are faster. */
  speedVsTorch?: number;
  accuracy?: Accuracy;
  error?: string;
}

/** Our output rows against the reference's (first `checkTokens` tokens), within its strict bound. */
export function accuracy(ref: ReturnType<typeof referenceForward>, out: ArrayLike<number>): Accuracy {
  const strict = ref.bounds!.strict;
  let overBound = 0;
  let maxAbsError = 0;
  let maxErrorOverBound = 0;
  for (let i = 0; i < ref.output.length; i++) {
    const err = Math.abs(out[i]! - ref.output[i]!);
    if (!(err <= strict[i]!)) overBound++;
    maxAbsError = Math.max(maxAbsError, err);
    maxErrorOverBound = Math.max(maxErrorOverBound, err / strict[i]!);
  }
  return { overBound, checked: ref.output.length, maxAbsError, maxErrorOverBound };
}

interface Candidate {
  name: string;
  detail?: string;
  make: () => Promise<MoeBackend>;
  runs?: number;
}

function candidates(o: KernelsOptions): Candidate[] {
  return [
    { name: 'reference-f64', make: async () => referenceBackend, runs: 1 },
    { name: 'gpujs-webasm', make: () => createGpujsBackend('webasm') },
    { name: 'gpujs-webgpu', make: () => createGpujsBackend('webgpu') },
    { name: 'fast-cpu-wasm', detail: 'resident weights', make: async () => new FastCpuBackend({ residentWeights: true }) },
    { name: 'fast-cpu-wasm-streaming', detail: 'weights copied every forward', make: async () => new FastCpuBackend() },
    { name: 'wgsl-webgpu', detail: 'resident weights', make: () => WgslWebGpuBackend.create({ residentWeights: true }) },
  ].filter((c) => !o.only || o.only.includes(c.name));
}

export interface PeerOptions {
  device: string;
  threads: number;
  runs: number;
  /** Only the first `tokens` rows of the file's x. */
  tokens?: number;
}

/** Runs the torch peer on an input file written by writePeerInput; its output comes back for checking. */
export async function runTorchPeer(input: string, o: PeerOptions): Promise<{ row: BackendRow; output?: Float32Array }> {
  const out = `${input}.torch-y.safetensors`;
  try {
    const r = await runProcess(python(), [
      join(REPO_DIR, 'bench', 'peers', 'torch_moe_file.py'), input, '--device', o.device, '--threads', String(o.threads),
      '--runs', String(o.runs), '--out', out, ...(o.tokens === undefined ? [] : ['--tokens', String(o.tokens)]),
    ], 30 * 60_000);
    const j = lastJsonLine<{ runs_ms: number[]; torch: string; gpu: string | null }>(r, 'torch peer');
    const file = await SafetensorsFile.open(out);
    const y = await file.readTensor('y').finally(() => file.close());
    return {
      row: {
        backend: `torch-${o.device}`, detail: `torch ${j.torch}${j.gpu ? ` on ${j.gpu}` : `, ${o.threads} threads`}`,
        timing: timing(j.runs_ms),
      },
      output: decodeFloats(y.dtype, y.bytes),
    };
  } catch (e) {
    return { row: { backend: `torch-${o.device}`, error: (e as Error).message } };
  } finally {
    await rm(out, { force: true });
  }
}

export async function benchKernels(o: KernelsOptions): Promise<{ rows: BackendRow[]; file: string }> {
  const p = moeProblem(o.size);
  const checked = firstTokens(p, o.checkTokens);
  const ref = referenceForward(p.sem, 0, p.ranks, checked.x, checked.tokens, { bound: true });
  const dir = join(tmpdir(), `moe-bench-kernels-${process.pid}`);
  const rows: BackendRow[] = [];
  const outRows = checked.tokens * p.sem.hidden;
  const input = join(dir, 'input.safetensors');
  await mkdir(dir, { recursive: true });
  let peer: Awaited<ReturnType<typeof runTorchPeer>>;
  try {
    await writePeerInput(p, input);
    peer = await runTorchPeer(input, { device: o.peerDevice, threads: o.peerThreads, runs: o.runs });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (peer.output) peer.row.accuracy = accuracy(ref, peer.output.subarray(0, outRows));
  rows.push(peer.row);
  console.error(kernelsTable([peer.row]).split('\n').pop());
  for (const c of candidates(o)) {
    let backend: MoeBackend | undefined;
    try {
      backend = await c.make();
      let output: ArrayLike<number> = new Float32Array(0);
      const runs = c.runs ?? o.runs;
      const t = await timeRuns(runs, runs > 1 ? 1 : 0, async () => {
        output = (await backend!.forward(p.sem, 0, p.ranks, p.x, p.tokens)).output;
      });
      const adapter = (backend as { adapter?: { device?: string } }).adapter?.device;
      rows.push({
        backend: c.name, detail: [c.detail, adapter && `adapter ${adapter}`].filter(Boolean).join(', ') || undefined,
        timing: t, accuracy: accuracy(ref, Array.from({ length: outRows }, (_, i) => output[i]!)),
      });
    } catch (e) {
      rows.push({ backend: c.name, error: (e as Error).message.split('\n')[0] });
    } finally {
      await backend?.dispose?.();
    }
    console.error(kernelsTable([rows[rows.length - 1]!]).split('\n').pop());
  }
  const torchMs = peer.row.timing?.medianMs;
  for (const r of rows) {
    if (!r.timing) continue;
    r.gflops = p.flops / r.timing.medianMs / 1e6;
    if (torchMs !== undefined) r.speedVsTorch = torchMs / r.timing.medianMs;
  }
  const file = await writeResult('kernels', { benchmark: 'kernels', size: o.size, flops: p.flops, runs: o.runs, checkTokens: checked.tokens, host: await hostInfo(), rows });
  return { rows, file };
}

/** A markdown table of the rows, for the terminal and the README. */
export function kernelsTable(rows: BackendRow[]): string {
  const lines = ['| backend | median ms | min ms | GFLOP/s (median) | × torch speed (median) | max err / f32 bound | notes |', '| --- | ---: | ---: | ---: | ---: | ---: | --- |'];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.backend} | – | – | – | – | – | failed: ${r.error} |`);
      continue;
    }
    const acc = r.accuracy ? `${r.accuracy.maxErrorOverBound.toExponential(1)}${r.accuracy.overBound ? ` (${r.accuracy.overBound} over)` : ''}` : '–';
    lines.push(`| ${r.backend} | ${fmt(r.timing!.medianMs)} | ${fmt(r.timing!.minMs)} | ${r.gflops === undefined ? '–' : fmt(r.gflops)} | ${r.speedVsTorch === undefined ? '–' : fmt(r.speedVsTorch, 3)} | ${acc} | ${r.detail ?? ''} |`);
  }
  return lines.join('\n');
}
