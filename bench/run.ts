// `npm run bench [-- NAME...] [--runs N]`: runs the named benchmarks (default: all) and
// prints each one's table; results go to bench/results/<name>-<timestamp>.json.
// Benchmarks are never part of `npm test`: nothing here asserts a time.
import { compareBenchmark } from './compare.js';
import { benchKernels, kernelsTable } from './kernels.js';
import { benchLoader, loaderTable, LOADER_DEFAULTS } from './loader.js';
import { benchSuite, comparisonTable, suiteTable } from './suite.js';
import { benchGpu, gpuOptionsFromEnv, gpuTable } from './gpu/gpu.js';
import { benchDiagnose, diagnoseTable, DIAGNOSE_DEFAULTS } from './diagnose.js';

interface Benchmark {
  describe: string;
  run(runs: number): Promise<string>;
}

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

const BENCHMARKS: Record<string, Benchmark> = {
  kernels: {
    describe: 'MoE forward (T=256 H=1024 I=2816 E=8 top-2 f32 unless BENCH_* say otherwise): every backend vs torch CPU (2 threads) on the same input',
    async run(runs) {
      const { rows, file } = await benchKernels({
        size: { tokens: env('BENCH_TOKENS', 256), hidden: env('BENCH_HIDDEN', 1024), intermediate: env('BENCH_INTERMEDIATE', 2816), experts: env('BENCH_EXPERTS', 8), topK: 2 },
        runs, checkTokens: 8, peerDevice: 'cpu', peerThreads: 2,
        only: process.env.BENCH_BACKENDS?.split(','),
      });
      return `${kernelsTable(rows)}\n\nresults: ${file}`;
    },
  },
  loader: {
    describe: 'load and cut a generated 4+ GB mixtral checkpoint (bf16, original and fused), TP 2 and 8, every rank: ours vs Python safe_open/get_slice',
    async run() {
      const o = { ...LOADER_DEFAULTS };
      if (process.env.BENCH_HIDDEN) o.hidden = env('BENCH_HIDDEN', o.hidden);
      if (process.env.BENCH_INTERMEDIATE) o.intermediate = env('BENCH_INTERMEDIATE', o.intermediate);
      const { rows, file } = await benchLoader(o);
      return `${loaderTable(rows)}\n\nresults: ${file}`;
    },
  },
  suite: {
    describe: 'conformance cases per second: in process, and through the protocol as a command and as a worker, with our loader and the Python transformers example loader (same cases); the default check of the Python example as a worker',
    async run() {
      const { rows, comparisons, file } = await benchSuite({
        runCases: env('BENCH_SUITE_CASES', 100), checkCases: env('BENCH_CHECK_CASES', 30), seed: env('FC_SEED', 42), jobs: 2,
        defaultCheck: env('BENCH_DEFAULT_CHECK', 1) === 1,
      });
      return `${suiteTable(rows)}\n\n${comparisonTable(comparisons)}\n\nresults: ${file}`;
    },
  },
  compare: compareBenchmark,
  gpu: {
    describe: 'on the GPU machine: WGSL forward vs torch CUDA f32 (per-expert loop and grouped GEMM) at the Qwen3-30B-A3B, DeepSeek-V3, gpt-oss-120b and Mixtral layers, T=16,256,2048 (BENCH_GPU_SHAPES, BENCH_GPU_TOKENS, BENCH_GPU_SMALL=1 for a CPU smoke run with BENCH_GPU_PEER_DEVICE=cpu)',
    async run(runs) {
      const { rows, file } = await benchGpu(gpuOptionsFromEnv(runs));
      return `${gpuTable(rows)}\n\nresults: ${file}`;
    },
  },
  diagnose: {
    describe: 'diagnosis of a wrong loader\'s Mixtral-size layer (H 4096, I 14336, E 8, bf16, 2.82 GB in memory): gate/up swapped, experts permuted, and an unknown change (every hypothesis tried)',
    async run(runs) {
      const o = { ...DIAGNOSE_DEFAULTS, hidden: env('BENCH_HIDDEN', DIAGNOSE_DEFAULTS.hidden), intermediate: env('BENCH_INTERMEDIATE', DIAGNOSE_DEFAULTS.intermediate) };
      const { rows, file } = await benchDiagnose(o, Math.min(runs, 3));
      return `${diagnoseTable(rows)}\n\nresults: ${file}`;
    },
  },
};

function usage(): string {
  return `usage: npm run bench -- [${Object.keys(BENCHMARKS).join('|')}]... [--runs N]\n${Object.entries(BENCHMARKS).map(([n, b]) => `  ${n}: ${b.describe}`).join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  let runs = 5;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log(usage());
      return 0;
    } else names.push(a);
  }
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length || !Number.isInteger(runs) || runs < 1) {
    console.error(unknown.length ? `unknown benchmark: ${unknown.join(', ')}` : '--runs needs a positive integer');
    console.error(usage());
    return 2;
  }
  let failed = false;
  for (const name of names.length ? names : Object.keys(BENCHMARKS).filter((n) => n !== 'gpu')) {
    const b = BENCHMARKS[name]!;
    console.log(`\n## ${name}: ${b.describe}\n`);
    try {
      console.log(await b.run(runs));
    } catch (e) {
      failed = true;
      console.error(`${name} failed: ${(e as Error).stack ?? e}`);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
