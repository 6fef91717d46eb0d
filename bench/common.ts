// What every benchmark shares: timing with a median over runs, peers run as processes,
// results written as JSON under bench/results/ so that later runs can be compared.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = dirname(BENCH_DIR);

export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  runsMs: number[];
}

export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function timing(runsMs: number[]): Timing {
  return { medianMs: median(runsMs), minMs: Math.min(...runsMs), maxMs: Math.max(...runsMs), runsMs };
}

/** Runs `fn` `warmup` times untimed, then `runs` times timed (wall clock). */
export async function timeRuns(runs: number, warmup: number, fn: () => Promise<unknown>): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    ms.push(performance.now() - start);
  }
  return timing(ms);
}

/** The Python that runs peers: MOE_BENCH_PYTHON, else the project's venv, else python3. */
export function python(): string {
  const venv = join(REPO_DIR, '.venv', 'bin', 'python');
  return process.env.MOE_BENCH_PYTHON ?? (existsSync(venv) ? venv : 'python3');
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (killed after `timeoutMs`), capturing its output. */
export function runProcess(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms: performance.now() - start });
    });
  });
}

/** Reads every safetensors file of `dirs` once, so that the timed runs read from the page cache. */
export async function warmPageCache(dirs: string[]): Promise<void> {
  const files = (await Promise.all(dirs.map(async (d) => (await readdir(d)).filter((f) => f.endsWith('.safetensors')).map((f) => join(d, f))))).flat();
  // The paths go to cat as arguments, not through the shell's parser.
  const r = await runProcess('sh', ['-c', 'cat "$@" > /dev/null', 'sh', ...files], 10 * 60_000);
  if (r.code !== 0) throw new Error(`reading ${dirs.join(', ')} failed: ${r.stderr.trim()}`);
}

/** This process's peak resident set so far, in bytes (getrusage's maxRSS is in KiB). */
export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

/** The last line of a peer's stdout, parsed as JSON; a peer that did not give one fails the benchmark. */
export function lastJsonLine<T>(r: ProcessResult, what: string): T {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) {
    throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  }
  return JSON.parse(line) as T;
}

/** Writes `bench/results/<name>-<timestamp>.json` (or under MOE_BENCH_RESULTS), or over `file` when given (a result written again as it grows), and returns its path. */
export async function writeResult(name: string, result: unknown, file?: string): Promise<string> {
  const dir = process.env.MOE_BENCH_RESULTS ?? join(BENCH_DIR, 'results');
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = file ?? join(dir, `${name}-${stamp}.json`);
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
  return out;
}

function freeBytes(dir: string): number {
  const out = execFileSync('df', ['-B1', '--output=avail', dir], { encoding: 'utf8' });
  return Number(out.trim().split('\n').pop());
}

/**
 * A benchmark's generated input, made once and kept between runs: when `marker` exists the
 * bytes recorded in it are returned; otherwise, if the temporary directory's disk has room
 * for `needBytes` (what `needFor` names), `generate` runs, its byte count goes into the
 * marker, and is returned. The marker is written last, so an interrupted run starts over.
 */
export async function generateOnce(marker: string, what: string, needBytes: number, needFor: string, generate: () => Promise<number>): Promise<number> {
  if (existsSync(marker)) return Number(await readFile(marker, 'utf8'));
  const free = freeBytes(tmpdir());
  if (free < needBytes) throw new Error(`not enough disk under ${tmpdir()}: ${free} bytes free, want ${Math.ceil(needBytes)} (${needFor})`);
  const start = performance.now();
  const bytes = await generate();
  console.error(`generated ${what} (${fmt(bytes / 1e9, 2)} GB) in ${fmt((performance.now() - start) / 1000)} s`);
  await writeFile(marker, String(bytes));
  return bytes;
}

/** Machine facts stored with every result, so that numbers from different hosts are not compared blindly. */
export async function hostInfo(): Promise<Record<string, unknown>> {
  const os = await import('node:os');
  return { node: process.version, cpus: os.cpus()[0]?.model, cores: os.availableParallelism(), loadavg: os.loadavg(), memoryBytes: os.totalmem() };
}

export const fmt = (v: number, digits = 1): string => v.toFixed(digits);
