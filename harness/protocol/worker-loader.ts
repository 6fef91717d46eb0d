// A loader under test run as long-lived workers (spec/loader-protocol.md §7): `CMD --worker`
// is started once and kept alive; requests and answers are JSON lines on its stdin and
// stdout, its stderr is its log (a bounded tail is kept). Up to `workers` processes serve
// requests at once. A worker that crashes, hangs past its time, breaks the protocol or
// answers another request fails that request with a typed error and is killed with its
// whole process group; the next request starts a fresh one. Outputs are safetensors files
// read by the strict reader, exactly as in command mode.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plural, type ProgramLog } from '../errors.js';
import { rankName, type Canonical, type Loader, type ParallelRequest } from '../tensor.js';
import {
  killGroup, LoaderCrashed, LoaderRefused, LoaderTimedOut, readOutput, resolveSelf, splitCommand, trackGroup, untrackGroup, type CommandLoaderOptions,
} from './command-loader.js';
import { formatRequest, LineSplitter, MAX_LINE_BYTES, parseAnswer, parseHandshake, WorkerAnswerInvalid, WorkerHandshakeError, WorkerLineTooLong, type Handshake, type RankJob } from './worker-messages.js';

/** The worker exited or died (before its handshake, or while a request was pending). */
export class WorkerCrashed extends LoaderCrashed {}
/** The worker did not answer (or handshake) within its time; its process group was killed. */
export class WorkerTimedOut extends LoaderTimedOut {}
/** The worker answered `refused`: it declines this checkpoint or request, with a reason. */
export class WorkerRefused extends LoaderRefused {}

export interface WorkerLoaderOptions extends CommandLoaderOptions {
  /** Processes at most (default 1): `check --jobs N` runs N. */
  workers?: number;
  /** Longest protocol line accepted (default 1 MiB). */
  maxLineBytes?: number;
  /** How long a closing worker may take to exit after its stdin ends, before it is killed (default 2 s). */
  closeGraceMs?: number;
}

export interface WorkerLoader extends Loader {
  loadRanks(dir: string, reqs: readonly ParallelRequest[]): Promise<Canonical[]>;
  /** Starts a worker if none is alive and returns its handshake (what the first worker declared). */
  handshake(): Promise<Handshake>;
  /** The first handshake received, once a worker has started. */
  readonly declared: Handshake | undefined;
  /** Ends every worker (stdin closed, then the process group killed); the loader may start new ones afterwards. */
  close(): Promise<void>;
  /** Process ids of the live workers (for tests that check nothing is left behind). */
  readonly pids: readonly number[];
}

type Waiter = { resolve: (line: string) => void; reject: (e: Error) => void };

/** One worker process: its line stream, its stderr tail, its end. */
class WorkerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiter: Waiter | undefined;
  private failure: Error | undefined;
  private stderr = Buffer.alloc(0);
  private truncated = false;
  readonly exited: Promise<void>;
  handshake: Handshake | undefined;
  /** The checkpoint of the request being served: what a crash or a timeout is about. */
  checkpoint: string | undefined;

  constructor(private readonly argv: string[], private readonly opts: WorkerLoaderOptions) {
    this.child = spawn(argv[0]!, [...argv.slice(1), '--worker'], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group: killing it ends its children too
    });
    if (this.child.pid !== undefined) trackGroup(this.child.pid);
    const splitter = new LineSplitter(opts.maxLineBytes ?? MAX_LINE_BYTES, (c) => new WorkerLineTooLong('worker wrote a line longer than the protocol allows', { ...c, ...this.where(), ...this.logged() }));
    this.child.stdout.on('data', (chunk: Buffer) => {
      if (this.failure) return;
      try {
        for (const line of splitter.push(chunk)) this.lines.push(line);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      this.wake();
    });
    const maxStderr = opts.maxStderrBytes ?? 64 * 1024;
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = Buffer.concat([this.stderr, chunk]);
      if (this.stderr.length > maxStderr) {
        this.stderr = this.stderr.subarray(this.stderr.length - maxStderr);
        this.truncated = true;
      }
    });
    this.child.stdin.on('error', () => {}); // EPIPE when it died: its exit is what gets reported
    this.exited = new Promise((resolveExit) => {
      this.child.on('error', (e) => {
        this.fail(new WorkerCrashed(`could not start worker: ${e.message}`, { file: argv[0] }));
        resolveExit();
      });
      this.child.on('close', (code, signal) => {
        if (this.child.pid !== undefined) untrackGroup(this.child.pid);
        const how = signal !== null ? `killed by ${signal}` : `exited ${code}`;
        const when = this.handshake ? 'while a request was pending' : `before its handshake (started as ${[...argv, '--worker'].join(' ')})`;
        this.fail(new WorkerCrashed(`worker ${how} ${when}`, { ...this.where(), ...this.logged() }));
        resolveExit();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** It exited, or broke the protocol, while idle: not to be given another request. */
  get dead(): boolean {
    return this.failure !== undefined;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const line = this.lines.shift();
    if (line !== undefined) {
      this.waiter = undefined;
      w.resolve(line);
    } else if (this.failure) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  /** The worker's stderr since the last request began, for error messages (absent: it wrote nothing). */
  log(): ProgramLog | undefined {
    const text = this.stderr.toString('utf8').trimEnd();
    return text ? { from: 'worker stderr', text: `${this.truncated ? '[... stderr truncated ...]\n' : ''}${text}` } : undefined;
  }

  /** The error context of its log: `{ log }`, or nothing. */
  logged(): { log?: ProgramLog } {
    const log = this.log();
    return log ? { log } : {};
  }

  /** The file a failure is about: the checkpoint of the pending request (none before the handshake). */
  where(): { file?: string } {
    return this.checkpoint !== undefined ? { file: this.checkpoint } : {};
  }

  clearTail(): void {
    this.stderr = Buffer.alloc(0);
    this.truncated = false;
  }

  /** The next line, or the worker's failure; past `timeoutMs` the worker is killed and a WorkerTimedOut thrown. */
  nextLine(timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.kill();
        reject(new WorkerTimedOut(`worker gave no ${what} within ${timeoutMs} ms and was killed`, { ...this.where(), ...this.logged() }));
      }, timeoutMs);
      this.waiter = {
        resolve: (l) => {
          clearTimeout(timer);
          resolveLine(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.wake();
    });
  }

  send(text: string): void {
    this.child.stdin.write(text);
  }

  kill(): void {
    if (this.child.pid !== undefined) killGroup(this.child.pid);
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }

  /** Ends it politely (stdin closed), then kills its group whatever happened, and waits for it. */
  async close(graceMs: number): Promise<void> {
    this.child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.kill(); // grandchildren too, even after a clean exit
    await this.exited;
  }
}

export function workerLoader(cmd: string, opts: WorkerLoaderOptions): WorkerLoader {
  const argv = resolveSelf(splitCommand(cmd));
  const maxOutput = opts.maxOutputBytes ?? 1024 ** 3;
  const capacity = Math.max(1, opts.workers ?? 1);
  const idle: WorkerProcess[] = [];
  const live = new Set<WorkerProcess>();
  const queue: Array<() => void> = [];
  let declared: Handshake | undefined;
  /**
   * A handshake the harness refused (spec §7.5): the worker's own declaration, so every worker
   * would send it again. No worker is started after it; every request fails with it.
   */
  let refused: WorkerHandshakeError | undefined;
  const refusedAgain = (e: WorkerHandshakeError) => new WorkerHandshakeError(e.reason, { expected: e.expected, found: e.found, ...(e.log && { log: e.log }) });
  let nextId = 1;

  const start = async (): Promise<WorkerProcess> => {
    const w = new WorkerProcess(argv, opts);
    live.add(w);
    try {
      const line = await w.nextLine(opts.timeoutMs, 'handshake');
      w.handshake = parseHandshake(line);
    } catch (e) {
      await discard(w);
      if (!(e instanceof WorkerHandshakeError)) throw e; // crashed, timed out, a line too long: each carries its log
      refused ??= new WorkerHandshakeError(e.reason, { expected: e.expected, found: e.found, ...w.logged() });
      throw refusedAgain(refused);
    }
    declared ??= w.handshake;
    return w;
  };

  const discard = async (w: WorkerProcess): Promise<void> => {
    w.kill();
    await w.exited;
    live.delete(w);
    queue.shift()?.();
  };

  const acquire = async (): Promise<WorkerProcess> => {
    for (;;) {
      if (refused) throw refusedAgain(refused);
      const w = idle.pop();
      if (w?.dead) {
        await discard(w);
        continue;
      }
      if (w) return w;
      if (live.size < capacity) return start();
      await new Promise<void>((r) => queue.push(r));
    }
  };

  const release = (w: WorkerProcess): void => {
    idle.push(w);
    queue.shift()?.();
  };

  const request = async (dir: string, reqs: readonly ParallelRequest[]): Promise<Canonical[]> => {
    const w = await acquire();
    const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'moe-worker-'));
    let healthy = false;
    try {
      const id = nextId++;
      const ranks: RankJob[] = reqs.map((r) => ({ out: join(work, `tp${r.tpRank}-of-${r.tpSize}-ep${r.epRank}-of-${r.epSize}.safetensors`), ...r }));
      w.clearTail();
      w.checkpoint = dir;
      w.send(formatRequest({ id, checkpoint: dir, ranks }));
      const line = await w.nextLine(opts.timeoutMs * reqs.length, `answer to request ${id}`);
      let answer;
      try {
        answer = parseAnswer(line, id);
      } catch (e) {
        if (!(e instanceof WorkerAnswerInvalid)) throw e;
        throw new WorkerAnswerInvalid(e.reason, { expected: e.expected, found: e.found, file: dir, ...w.logged() });
      }
      healthy = true;
      if (answer.status === 'refused') throw new WorkerRefused(`worker refused: ${answer.reason}`, { file: dir, ...w.logged() }, answer.reason, 1);
      const out: Canonical[] = [];
      for (const r of ranks) {
        out.push(await readOutput(r.out, maxOutput, {
          missing: `worker answered "ok" to request ${id} (${plural(ranks.length, 'rank')} of ${dir}) without writing the output file of ${rankName(r)}`,
          expected: 'a safetensors file at the path the request named for that rank',
          ...w.logged(),
        }));
      }
      return out;
    } finally {
      w.checkpoint = undefined;
      if (healthy) release(w);
      else await discard(w);
      await rm(work, { recursive: true, force: true });
    }
  };

  return {
    name: cmd,
    load: async (dir, req) => (await request(dir, [req]))[0]!,
    loadRanks: (dir, reqs) => request(dir, reqs),
    async handshake() {
      if (declared) return declared;
      release(await acquire());
      return declared!;
    },
    get declared() {
      return declared;
    },
    get pids() {
      return [...live].map((w) => w.pid).filter((p): p is number => p !== undefined);
    },
    async close() {
      const all = [...live];
      idle.length = 0;
      await Promise.all(all.map((w) => w.close(opts.closeGraceMs ?? 2000)));
      for (const w of all) live.delete(w);
    },
  };
}
