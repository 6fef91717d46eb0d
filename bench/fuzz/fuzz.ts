// `npm run fuzz -- [--seconds N] [--seed S] [--workers W] [--max-amplified BYTES]
//                  [--hang-ms MS] [--replay W:I --out FILE]`
//
// Fuzzes the safetensors reader: inputs made from valid seeds (every dtype, the golden
// fixtures, the tricky-header corpus, small hostile shapes) by byte and JSON-token
// mutators, 0.3% of them amplified (one token repeated up to --max-amplified bytes) to
// measure memory per input byte. Every accepted file has each tensor read and its header
// written back and re-read. Reports counts per outcome (accepted, each error class),
// untyped errors, hangs (an input running past --hang-ms; the worker is restarted after
// it), workers dying of memory, the worst heap growth per input byte (inputs of 1 MiB
// or more, after a full collection) and the slowest input. Results go to bench/results/fuzz-<time>.json. Every
// input is a function of (seed, worker, index): `--replay W:I --out FILE` writes one.
// SIGINT or SIGTERM stops the run early and still writes its results.
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BENCH_DIR, REPO_DIR } from '../common.js';
import { makeInput, seeds } from './mutate.js';
import type { WorkerInit, WorkerReport } from './worker.js';

interface Options {
  seconds: number;
  seed: number;
  workers: number;
  maxAmplified: number;
  hangMs: number;
  heapMb: number;
}

function parse(argv: string[]): Options & { replay?: string; out?: string } {
  const o: Options & { replay?: string; out?: string } = { seconds: 60, seed: Date.now() % 1_000_000, workers: 1, maxAmplified: 4 << 20, hangMs: 20_000, heapMb: 2048 };
  for (let i = 0; i < argv.length; i++) {
    const [a, v] = [argv[i]!, argv[i + 1]];
    if (a === '--seconds') o.seconds = Number(v);
    else if (a === '--seed') o.seed = Number(v);
    else if (a === '--workers') o.workers = Number(v);
    else if (a === '--max-amplified') o.maxAmplified = Number(v);
    else if (a === '--hang-ms') o.hangMs = Number(v);
    else if (a === '--heap-mb') o.heapMb = Number(v);
    else if (a === '--replay') o.replay = v;
    else if (a === '--out') o.out = v;
    else throw new Error(`unknown option ${a} (see the comment at the top of bench/fuzz/fuzz.ts)`);
    i++;
  }
  return o;
}

const GOLDEN = join(REPO_DIR, 'golden/hf');
/** How long a worker may take to load its seeds before its first input (a shared machine can be slow). */
const STARTUP_MS = 300_000;

interface Finding {
  kind: 'hang' | 'out of memory' | 'worker error';
  worker: number;
  index: number;
  detail: string;
}

/** Stop flags of the running workers: SIGINT or SIGTERM ends the run early, with its results written. */
const stops: Int32Array[] = [];
let stopped = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopped = true;
    for (const s of stops) Atomics.store(s, 1, 1);
  });
}

/** Runs one worker from input `start` until the deadline; restarts it after a hang or a death. */
async function runWorker(o: Options, worker: number, deadline: number, findings: Finding[], onProgress: (r: WorkerReport) => void): Promise<WorkerReport[]> {
  const reports: WorkerReport[] = [];
  let start = 0;
  while (Date.now() < deadline && !stopped) {
    const beat = new SharedArrayBuffer(8);
    stops.push(new Int32Array(beat));
    const init: WorkerInit = { seed: o.seed, worker, start, deadline, goldenDir: GOLDEN, maxAmplified: o.maxAmplified, beat };
    const w = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: init, resourceLimits: { maxOldGenerationSizeMb: o.heapMb } });
    const beats = new Int32Array(beat);
    Atomics.store(beats, 0, -1); // starting: loading its seeds is not a hang
    let last = report0(worker);
    const result = await new Promise<{ report: WorkerReport; next?: number }>((resolve, reject) => {
      let seen = -1;
      let since = Date.now();
      const watch = setInterval(() => {
        const now = Atomics.load(beats, 0);
        if (now !== seen) [seen, since] = [now, Date.now()];
        else if (now === -1 && Date.now() - since > STARTUP_MS) {
          clearInterval(watch);
          void w.terminate();
          reject(new Error(`fuzz worker ${worker} did not start within ${STARTUP_MS} ms`));
        } else if (now !== -1 && Date.now() - since > o.hangMs) {
          findings.push({ kind: 'hang', worker, index: now, detail: `no progress for ${o.hangMs} ms` });
          clearInterval(watch);
          void w.terminate();
          resolve({ report: last, next: now + 1 });
        }
      }, 250);
      w.on('message', (m: { progress?: WorkerReport; done?: WorkerReport }) => {
        if (m.progress) {
          last = m.progress;
          onProgress(last);
        }
        if (m.done) {
          clearInterval(watch);
          resolve({ report: m.done });
        }
      });
      w.on('error', (e: Error & { code?: string }) => {
        clearInterval(watch);
        const index = Atomics.load(beats, 0);
        findings.push({ kind: e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out of memory' : 'worker error', worker, index, detail: `${e.name}: ${e.message}`.slice(0, 300) });
        // A worker that fails before its first input (seeds, set-up) would fail again.
        if (last.inputs === 0 && index === start) throw new Error(`fuzz worker ${worker} failed to start: ${e.message}`);
        resolve({ report: last, next: index + 1 });
      });
    });
    reports.push(result.report);
    if (result.next === undefined) break;
    start = result.next;
  }
  return reports;
}

function report0(worker: number): WorkerReport {
  return { worker, inputs: 0, bytes: 0, outcomes: {}, untyped: [], inconsistent: [], worstMemory: undefined, slowest: undefined, largest: 0 };
}

function merge(reports: WorkerReport[]) {
  const outcomes: Record<string, number> = {};
  let inputs = 0;
  let bytes = 0;
  let largest = 0;
  let worstMemory: WorkerReport['worstMemory'];
  let slowest: WorkerReport['slowest'];
  const untyped: Array<WorkerReport['untyped'][number] & { worker: number }> = [];
  const inconsistent: Array<WorkerReport['inconsistent'][number] & { worker: number }> = [];
  for (const r of reports) {
    inputs += r.inputs;
    bytes += r.bytes;
    largest = Math.max(largest, r.largest);
    for (const [k, n] of Object.entries(r.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
    if (r.worstMemory && (!worstMemory || r.worstMemory.ratio > worstMemory.ratio)) worstMemory = { ...r.worstMemory, worker: r.worker } as typeof worstMemory;
    if (r.slowest && (!slowest || r.slowest.ms > slowest.ms)) slowest = { ...r.slowest, worker: r.worker } as typeof slowest;
    untyped.push(...r.untyped.map((u) => ({ ...u, worker: r.worker })));
    inconsistent.push(...r.inconsistent.map((u) => ({ ...u, worker: r.worker })));
  }
  return { inputs, bytes, largest, outcomes, untyped, inconsistent, worstMemory, slowest };
}

async function main(argv: string[]): Promise<number> {
  const o = parse(argv);
  if (o.replay) {
    const [worker, index] = o.replay.split(':').map(Number) as [number, number];
    const input = makeInput(seeds(GOLDEN), o.seed, worker, index, o.maxAmplified);
    writeFileSync(o.out ?? 'fuzz-input.safetensors', input.bytes);
    console.log(`seed ${o.seed} worker ${worker} input ${index}: ${input.bytes.length} bytes, ${input.recipe.join(' + ')} -> ${o.out ?? 'fuzz-input.safetensors'}`);
    return 0;
  }
  const started = Date.now();
  const deadline = started + o.seconds * 1000;
  const findings: Finding[] = [];
  const live = new Map<number, WorkerReport>();
  const ticker = setInterval(() => {
    const m = merge([...live.values()]);
    process.stderr.write(`\r${((Date.now() - started) / 1000).toFixed(0)} s: ${m.inputs} inputs, ${m.untyped.length} untyped, ${findings.length} hangs/deaths   `);
  }, 5000);
  const all = (await Promise.all(Array.from({ length: o.workers }, (_, w) => runWorker(o, w, deadline, findings, (r) => live.set(w, r))))).flat();
  clearInterval(ticker);
  const m = merge(all);
  const seconds = (Date.now() - started) / 1000;
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    options: o,
    seconds,
    inputs: m.inputs,
    inputsPerSecond: Math.round(m.inputs / seconds),
    inputBytes: m.bytes,
    largestInput: m.largest,
    outcomes: Object.fromEntries(Object.entries(m.outcomes).sort((a, b) => b[1] - a[1])),
    untyped: m.untyped,
    inconsistent: m.inconsistent,
    hangs: findings.filter((f) => f.kind === 'hang'),
    deaths: findings.filter((f) => f.kind !== 'hang'),
    worstHeapGrowthPerInputByte: m.worstMemory,
    slowest: m.slowest,
  };
  await mkdir(join(BENCH_DIR, 'results'), { recursive: true });
  const file = join(BENCH_DIR, 'results', `fuzz-${result.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
  process.stderr.write('\n');
  console.log(JSON.stringify({ ...result, untyped: result.untyped.slice(0, 5), inconsistent: result.inconsistent.slice(0, 5) }, null, 1));
  console.log(`results: ${file}`);
  return m.untyped.length + m.inconsistent.length + findings.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
