// The header parser's memory is bounded by a small multiple of the header's size whatever
// the JSON's shape (issue 17: a header of `[{},{},...]` cost 69× its size and a 99.9 MB one
// aborted the process). Each hostile file is parsed in a child process whose peak resident
// size is measured (memory-probe.ts); its old-generation heap is capped so that a parser
// that builds a tree of attacker-chosen size dies there instead of eating the machine.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE, manyMetadata, manyTensors } from './test/hostile.js';

/** The bound spec §5 states: peak growth while parsing, in multiples of the header's size. */
const BOUND = 16;
const SIZE = 20_000_000;
const PROBE = new URL('./test/memory-probe.ts', import.meta.url).pathname;

interface Probe {
  outcome: string;
  bytes: number;
  growth: number;
}

function probe(file: string): Promise<Probe> {
  const heapMb = Math.ceil((BOUND * SIZE) / 2 ** 20) + 64;
  const args = ['--expose-gc', '--max-semi-space-size=1', `--max-old-space-size=${heapMb}`, '--import', 'tsx', PROBE, file];
  return new Promise((resolve, reject) => {
    // No V8 coverage in the child (npm test sets NODE_V8_COVERAGE for child processes): its
    // counters would be measured as the parser's memory.
    const env = { ...process.env };
    delete env.NODE_V8_COVERAGE;
    execFile(process.execPath, args, { maxBuffer: 1 << 20, env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`probe of ${file} failed (${error.code ?? error.signal}): ${stderr.slice(-400)}`));
      else resolve(JSON.parse(stdout) as Probe);
    });
  });
}

const CASES: Array<{ name: string; valid: boolean; make: (size: number) => Uint8Array }> = [
  ...HOSTILE,
  { name: 'many tensors', valid: true, make: manyTensors },
  { name: 'many __metadata__ entries', valid: true, make: manyMetadata },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'header-memory-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(`a ${SIZE / 1e6} MB header of any shape is parsed within ${BOUND}× its size`, () => {
  // A child takes 1 to 6 s on a quiet machine; the timeout allows for a heavily shared one.
  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', { timeout: 600_000 }, async (_name, i) => {
    const c = CASES[i]!;
    const file = join(dir, `${i}.safetensors`);
    await writeFile(file, c.make(SIZE));
    const p = await probe(file);
    await rm(file);
    if (c.valid) expect(p.outcome).toBe('accepted');
    else expect(p.outcome).toMatch(/^Invalid/);
    expect(p.growth / p.bytes, `peak growth ${(p.growth / 2 ** 20).toFixed(0)} MiB`).toBeLessThanOrEqual(BOUND);
  });
});
