// One fuzzing thread: makes inputs (mutate.ts), parses each with the safetensors reader,
// reads every tensor, and tallies the outcomes. The main thread watches `beat`
// (shared memory) to catch a hang, and restarts the worker after one.
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { MoeConformanceError } from '../../harness/errors.js';
import { parseSafetensors } from '../../harness/safetensors/read.js';
import { serializeHeader } from '../../harness/safetensors/write.js';
import { makeInput, seeds } from './mutate.js';

export interface WorkerInit {
  seed: number;
  worker: number;
  start: number;
  deadline: number;
  goldenDir: string;
  maxAmplified: number;
  /** Int32Array over a SharedArrayBuffer: [index of the input being parsed, stop flag set by the main thread]. */
  beat: SharedArrayBuffer;
}

export interface WorkerReport {
  worker: number;
  inputs: number;
  bytes: number;
  outcomes: Record<string, number>;
  untyped: Array<{ index: number; error: string; recipe: string[] }>;
  inconsistent: Array<{ index: number; error: string; recipe: string[] }>;
  worstMemory: { ratio: number; heapGrowth: number; inputBytes: number; index: number; recipe: string[] } | undefined;
  slowest: { ms: number; inputBytes: number; index: number; recipe: string[] } | undefined;
  largest: number;
}

/**
 * Inputs this large have their heap growth measured (a full collection first). Smaller ones
 * would measure the heap's growth steps (a megabyte or more) rather than the parse.
 */
const MEASURE_FROM = 1 << 20;
const gc = (globalThis as { gc?: () => void }).gc;

function run(init: WorkerInit): WorkerReport {
  const all = seeds(init.goldenDir);
  const beat = new Int32Array(init.beat);
  const report: WorkerReport = { worker: init.worker, inputs: 0, bytes: 0, outcomes: {}, untyped: [], inconsistent: [], worstMemory: undefined, slowest: undefined, largest: 0 };
  for (let index = init.start; Date.now() < init.deadline && Atomics.load(beat, 1) === 0; index++) {
    Atomics.store(beat, 0, index);
    const { bytes, recipe } = makeInput(all, init.seed, init.worker, index, init.maxAmplified);
    const big = bytes.length >= MEASURE_FROM;
    if (big && gc) gc();
    const heap0 = big ? getHeapStatistics() : undefined;
    const t0 = performance.now();
    let outcome: string;
    let kept: ReturnType<typeof parseSafetensors> | undefined;
    try {
      kept = parseSafetensors(bytes, 'fuzz.safetensors');
      let total = 0;
      for (const name of kept.tensors.keys()) total += kept.tensor(name).bytes.length;
      if (total !== kept.tensors.size && total < 0) throw new Error('unreachable');
      outcome = 'accepted';
    } catch (e) {
      if (e instanceof MoeConformanceError) outcome = e.name;
      else {
        outcome = 'untyped';
        if (report.untyped.length < 50) report.untyped.push({ index, error: `${(e as Error)?.name}: ${(e as Error)?.message}`.slice(0, 300), recipe });
      }
    }
    const ms = performance.now() - t0;
    if (heap0) {
      const heap1 = getHeapStatistics();
      const growth = Math.max(heap1.used_heap_size - heap0.used_heap_size, heap1.total_heap_size - heap0.total_heap_size) + heap1.external_memory - heap0.external_memory;
      const ratio = growth / bytes.length;
      if (!report.worstMemory || ratio > report.worstMemory.ratio) report.worstMemory = { ratio, heapGrowth: growth, inputBytes: bytes.length, index, recipe };
    }
    // An accepted file's header, written back by our writer, must be accepted again.
    if (kept && bytes.length < MEASURE_FROM) {
      try {
        const again = serializeHeader([...kept.tensors].map(([n, t]) => [n, t]), kept.metadata);
        const data = again.order.length ? again.offsets.get(again.order[again.order.length - 1]!)![1] : 0;
        const whole = new Uint8Array(again.header.length + data);
        whole.set(again.header);
        parseSafetensors(whole);
      } catch (e) {
        if (report.inconsistent.length < 50) report.inconsistent.push({ index, error: `${(e as Error).name}: ${(e as Error).message}`.slice(0, 300), recipe });
        outcome = 'inconsistent';
      }
    }
    kept = undefined;
    report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1;
    report.inputs++;
    report.bytes += bytes.length;
    report.largest = Math.max(report.largest, bytes.length);
    if (!report.slowest || ms > report.slowest.ms) report.slowest = { ms, inputBytes: bytes.length, index, recipe };
    if (report.inputs % 2000 === 0) parentPort!.postMessage({ progress: report });
  }
  return report;
}

parentPort!.postMessage({ done: run(workerData as WorkerInit) });
