// A loader under test, run as a command (spec §2): the harness appends
// `--checkpoint DIR --out FILE --tp-size T ...`, bounds the call in time, keeps a bounded
// tail of stderr, and reads FILE with the strict safetensors reader. Every way a command
// can go wrong becomes one typed error, so a run reports it and goes on.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MoeConformanceError, type ErrorContext, type ProgramLog } from '../errors.js';
import { SafetensorsFile } from '../safetensors/read.js';
import type { Canonical, Loader, ParallelRequest } from '../tensor.js';
import { declaresDequantized } from '../quant/scheme.js';
import { splitCompanion } from '../quant/format.js';

/** The command could not start, or died from a signal (segfault, abort, OOM kill). */
export class LoaderCrashed extends MoeConformanceError {}
/** The command ran past its time limit; its process group was killed. */
export class LoaderTimedOut extends MoeConformanceError {}
/** The command exited non-zero: it refused the checkpoint or the request. */
export class LoaderRefused extends MoeConformanceError {
  constructor(message: string, context: ErrorContext, readonly stderr: string, readonly exitCode: number) {
    super(message, context);
  }
}
/** The command exited 0 but its output file is missing or not valid safetensors. */
export class LoaderOutputInvalid extends MoeConformanceError {}
export class CommandLineError extends MoeConformanceError {}

/** The stderr of the call that produced an output, kept even when the output is readable (warnings). */
const stderrOfOutput = new WeakMap<Canonical, string>();

/** What the loader wrote on stderr while producing `output` (undefined: not a command loader's output, or nothing). */
export function loaderStderr(output: Canonical): string | undefined {
  return stderrOfOutput.get(output);
}

/**
 * A refusal in the sense of spec §2.1: a non-zero exit (not a signal, not a timeout) with a
 * reason on stderr. An exit without a word is not a refusal the harness can count.
 */
export function isReasonedRefusal(e: unknown): boolean {
  return e instanceof LoaderRefused && e.stderr.trim() !== '';
}

export interface CommandLoaderOptions {
  timeoutMs: number;
  cwd?: string;
  /** The loader's environment (default: this process's). Plain types, so that the published declarations need no @types/node. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Bytes of stderr kept (the tail: that is where the reason usually is). Default 64 KiB. */
  maxStderrBytes?: number;
  /** Where each call's output folder is made (default the system temp folder); a run removes it when interrupted. */
  workDir?: string;
  /** Largest output file accepted (it is read into memory). Default 1 GiB. */
  maxOutputBytes?: number;
}

/** The arguments of spec §2, in its order. */
export function protocolArgs(dir: string, out: string, req: ParallelRequest): string[] {
  return [
    '--checkpoint', dir, '--out', out,
    '--tp-size', String(req.tpSize), '--tp-rank', String(req.tpRank),
    '--ep-size', String(req.epSize), '--ep-rank', String(req.epRank),
    '--ep-placement', req.epPlacement,
  ];
}

/**
 * Splits a command line into words like a POSIX shell does for simple quoting: blanks
 * separate words, '...' is literal, "..." allows \" \\ \$ \`, a backslash outside quotes
 * escapes the next character. Nothing is expanded: the words go to spawn() as an argv
 * array, never through a shell.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new CommandLineError('unterminated single quote', { expected: 'a closing \'', found: line });
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) j++;
        word += line[j];
      }
      if (j >= line.length) throw new CommandLineError('unterminated double quote', { expected: 'a closing "', found: line });
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new CommandLineError('trailing backslash', { expected: 'a character after \\', found: line });
      word += line[++i];
      inWord = true;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new CommandLineError('empty loader command', { expected: 'CMD ARGS', found: line });
  return words;
}

/**
 * `moe-conformance ...` names this package's own CLI, which need not be on PATH: the one
 * this harness runs from, so source and build never mix (the TypeScript source through
 * tsx when running from source, the built main.js when running from dist/).
 */
export function resolveSelf(words: string[]): string[] {
  if (words[0] !== 'moe-conformance') return words;
  const here = fileURLToPath(import.meta.url);
  const main = join(dirname(here), '..', '..', 'app', 'cli', here.endsWith('.ts') ? 'main.ts' : 'main.js');
  return here.endsWith('.ts') ? [process.execPath, '--import', 'tsx', main, ...words.slice(1)] : [process.execPath, main, ...words.slice(1)];
}

export interface CommandResult {
  exitCode: number | null;
  /** The signal that ended the loader (`SIGKILL`, ...), or null. */
  signal: string | null;
  stderr: string;
  timedOut: boolean;
}

/** Process groups of loader commands still running, so an interrupted run can end them. */
const running = new Set<number>();

/** Records a loader's process group (a worker's too), so killRunningLoaders ends it. */
export function trackGroup(pgid: number): void {
  running.add(pgid);
}

export function untrackGroup(pgid: number): void {
  running.delete(pgid);
}

/** SIGKILLs a process group; one already gone is fine. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills every loader command still running (a loader has its own process group, so Ctrl-C does not reach it). */
export function killRunningLoaders(): void {
  for (const pgid of running) killGroup(pgid);
  running.clear();
}

/** Runs argv in its own process group; on timeout the whole group is killed. */
function runBounded(argv: string[], opts: CommandLoaderOptions): Promise<CommandResult> {
  const maxStderr = opts.maxStderrBytes ?? 64 * 1024;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // its own process group, so a timeout kills grandchildren too
    });
    let stderr = Buffer.alloc(0);
    let truncated = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > maxStderr) {
        stderr = stderr.subarray(stderr.length - maxStderr);
        truncated = true;
      }
    });
    let timedOut = false;
    const pgid = child.pid;
    if (pgid !== undefined) running.add(pgid);
    const timer = setTimeout(() => {
      timedOut = true;
      if (pgid !== undefined) killGroup(pgid);
      child.stderr.destroy(); // a process that escaped the group must not keep the pipe, and us, waiting
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new LoaderCrashed(`could not start loader: ${e.message}`, { file: argv[0] }));
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      if (pgid !== undefined) {
        running.delete(pgid);
        if (!timedOut && exitCode === 0) killGroup(pgid); // leave no stray grandchildren behind
      }
      const text = (truncated ? '[... stderr truncated ...]\n' : '') + stderr.toString('utf8');
      resolvePromise({ exitCode, signal, stderr: text, timedOut });
    });
  });
}

/** What a loader says about itself in its output's metadata (spec §2), for the reports. */
export interface OutputMetadata {
  name?: string;
  version?: string;
}

export const LOADER_NAME_KEY = 'moe_conformance.loader_name';
export const LOADER_VERSION_KEY = 'moe_conformance.loader_version';

export function commandLoader(cmd: string, opts: CommandLoaderOptions): Loader & { metadata: OutputMetadata } {
  const argv = resolveSelf(splitCommand(cmd));
  const maxOutput = opts.maxOutputBytes ?? 1024 ** 3;
  const metadata: OutputMetadata = {};
  return {
    name: cmd,
    metadata,
    async load(dir: string, req: ParallelRequest): Promise<Canonical> {
      const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'moe-cmd-'));
      const out = join(work, 'rank.safetensors');
      try {
        const r = await runBounded([...argv, ...protocolArgs(dir, out, req)], opts);
        const log = { from: 'loader stderr', text: r.stderr };
        const context = { file: dir, log };
        if (r.timedOut) throw new LoaderTimedOut(`loader ran past ${opts.timeoutMs} ms and was killed`, context);
        // A shell reports death by signal n as exit 128+n.
        if (r.signal !== null || (r.exitCode !== null && r.exitCode > 128)) {
          throw new LoaderCrashed(`loader crashed (${r.signal ?? `exit ${r.exitCode}`})`, context);
        }
        if (r.exitCode !== 0) {
          throw new LoaderRefused(`loader exited ${r.exitCode}`, context, r.stderr, r.exitCode ?? -1);
        }
        const output = await readOutput(out, maxOutput, { missing: 'loader exited 0 without writing its output file', expected: 'the --out file', log }, metadata);
        if (r.stderr.trim()) stderrOfOutput.set(output, r.stderr);
        return output;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

/** Whose output file is read, to say so when it is missing: the sentence, what was expected at the path, the loader's stderr. */
export interface OutputSource {
  missing: string;
  expected: string;
  log?: ProgramLog;
}

/** Reads a loader's output file with the strict reader (spec §2, §4); every problem is a LoaderOutputInvalid. The loader's self-description in its metadata goes to `metadata`. */
export async function readOutput(out: string, maxOutput: number, source: OutputSource, metadata: OutputMetadata = {}): Promise<Canonical> {
  const size = await stat(out).then((s) => s.size, () => undefined);
  if (size === undefined) throw new LoaderOutputInvalid(source.missing, { file: out, expected: source.expected, found: 'nothing', ...(source.log && { log: source.log }) });
  if (size > maxOutput) throw new LoaderOutputInvalid('loader output is larger than allowed', { file: out, expected: `≤ ${maxOutput} bytes`, found: size });
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(out);
  } catch (e) {
    // The reader's own reason, expected and found, with the output file named once.
    if (!(e instanceof MoeConformanceError)) throw new LoaderOutputInvalid(`loader output cannot be read: ${(e as Error).message}`, { file: out });
    throw new LoaderOutputInvalid(`loader output is not valid safetensors: ${e.name}: ${e.reason}`, { file: out, ...(e.expected !== undefined && { expected: e.expected }), ...(e.found !== undefined && { found: e.found }), ...(e.tensor !== undefined && { tensor: e.tensor }) });
  }
  try {
    // A loader declaring the dequantized form (spec §4) must not also write scales.
    let dequantized: boolean;
    try {
      dequantized = declaresDequantized(file.metadata ? Object.fromEntries(file.metadata) : undefined, out);
    } catch (e) {
      throw new LoaderOutputInvalid(`loader output metadata: ${(e as Error).message}`, { file: out });
    }
    const name = file.metadata?.get(LOADER_NAME_KEY);
    const version = file.metadata?.get(LOADER_VERSION_KEY);
    if (name !== undefined) metadata.name = name;
    if (version !== undefined) metadata.version = version;
    const scale = [...file.tensors.keys()].find((n) => splitCompanion(n) !== undefined);
    if (dequantized && scale !== undefined) {
      throw new LoaderOutputInvalid('loader output declares dequantized weights but holds a scale tensor', { file: out, tensor: scale, expected: 'no *_scale, *_scale_2 or *_input_scale tensor', found: scale });
    }
    const canonical: Canonical = new Map();
    for (const name of file.tensors.keys()) canonical.set(name, await file.readTensor(name));
    return canonical;
  } catch (e) {
    if (e instanceof LoaderOutputInvalid) throw e;
    throw new LoaderOutputInvalid(`cannot read loader output: ${(e as Error).message}`, { file: out });
  } finally {
    await file.close();
  }
}
