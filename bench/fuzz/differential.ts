// `node --import tsx bench/fuzz/differential.ts [--python PATH] [--fuzz N] [--seed S]`:
// the tricky-header corpus (and optionally N fuzz inputs) through this reader and through
// the reference (Python's safetensors, i.e. the Rust reader), verdict against verdict.
// The corpus' reference verdicts are written to harness/safetensors/test/corpus-rust.json,
// which corpus.test.ts checks without Python; the summary (every disagreement counted by
// the stricter rule of spec §5 that explains it, or NOT EXPLAINED) to bench/results/.
// Not a test: it needs Python with safetensors.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MoeConformanceError } from '../../harness/errors.js';
import { parseSafetensors } from '../../harness/safetensors/read.js';
import { CORPUS, corpusFile } from '../../harness/safetensors/test/corpus.js';
import { REPO_DIR } from '../common.js';
import { makeInput, seeds } from './mutate.js';

interface Verdict {
  verdict: 'accept' | 'refuse';
  error?: string;
}

function ours(bytes: Uint8Array): { verdict: 'accept' | 'refuse'; error?: string; rule?: string } {
  try {
    parseSafetensors(bytes);
    return { verdict: 'accept' };
  } catch (e) {
    if (!(e instanceof MoeConformanceError)) throw e;
    return { verdict: 'refuse', error: e.name, rule: ruleOf(e) };
  }
}

/** Which stricter rule of spec §5 a refusal applies, from its error; undefined when none does. */
function ruleOf(e: MoeConformanceError): string | undefined {
  if (/array form/.test(e.message)) return '5.1 entry as an array';
  if (/one-key object form/.test(e.message)) return '5.2 dtype as an object';
  if (e.name === 'DuplicateKey') return '5.3 duplicate key';
  if (/shape entry is not a safe integer/.test(e.message)) return '5.4 shape entry above 2^53';
  if (/key of \d+ characters/.test(e.message)) return '5.5 key longer than 16,383 characters';
  return undefined;
}

/** The reference's verdicts on the given files, in order, and its version. */
async function reference(python: string, paths: string[]): Promise<{ version: string; verdicts: Verdict[] }> {
  const child = spawn(python, [join(REPO_DIR, 'bench/python/safetensors_verdicts.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const out: string[] = [];
  lines.on('line', (l) => out.push(l));
  child.stdin.end(paths.join('\n') + '\n');
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${python} exited with ${code}`);
  const [head, ...rest] = out.map((l) => JSON.parse(l) as Verdict & { safetensors?: string });
  return { version: head!.safetensors!, verdicts: rest };
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1]! : fallback;
  };
  const python = opt('--python', process.env.PYTHON ?? '/work/venv/bin/python');
  const fuzz = Number(opt('--fuzz', '0'));
  const seed = Number(opt('--seed', '1'));
  const dir = await mkdtemp(join(tmpdir(), 'safetensors-differential-'));
  try {
    const files: Array<{ name: string; bytes: Uint8Array; recipe?: string[] }> = CORPUS.map((c) => ({ name: c.name, bytes: corpusFile(c) }));
    if (fuzz > 0) {
      const all = seeds(join(REPO_DIR, 'golden/hf'));
      for (let i = 0; i < fuzz; i++) {
        const input = makeInput(all, seed, 0, i, 4096);
        files.push({ name: `fuzz ${seed}:0:${i}`, bytes: input.bytes, recipe: input.recipe });
      }
    }
    const paths: string[] = [];
    for (const [i, f] of files.entries()) {
      paths.push(join(dir, `${i}.safetensors`));
      await writeFile(paths[i]!, f.bytes);
    }
    const { version, verdicts } = await reference(python, paths);
    const corpus: Record<string, Verdict> = {};
    const disagreements: Record<string, number> = {};
    const samples: Array<{ name: string; ours: string; reference: string; recipe?: string[] }> = [];
    files.forEach((f, i) => {
      const ref = verdicts[i]!;
      if (i < CORPUS.length) corpus[f.name] = ref;
      const mine = ours(f.bytes);
      if (mine.verdict !== ref.verdict) {
        const key = `ours ${mine.verdict}${mine.error ? ` (${mine.error})` : ''}, reference ${ref.verdict}: ${mine.rule ?? 'NOT EXPLAINED by spec §5'}`;
        disagreements[key] = (disagreements[key] ?? 0) + 1;
        if (samples.length < 40) samples.push({ name: f.name, ours: mine.error ?? mine.verdict, reference: ref.error ?? ref.verdict, ...(f.recipe ? { recipe: f.recipe } : {}) });
      }
    });
    const recorded = { reference: `safetensors ${version} (Python binding of the Rust reader)`, recordedOn: new Date().toISOString().slice(0, 10), verdicts: corpus };
    await writeFile(join(REPO_DIR, 'harness/safetensors/test/corpus-rust.json'), JSON.stringify(recorded, null, 1) + '\n');
    const summary = { reference: recorded.reference, date: new Date().toISOString(), corpus: CORPUS.length, fuzzInputs: fuzz, fuzzSeed: seed, disagreements, samples };
    const out = join(REPO_DIR, 'bench/results', `safetensors-differential-${summary.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(out, JSON.stringify(summary, null, 1) + '\n');
    console.log(JSON.stringify(summary, null, 1));
    console.log(`results: ${out}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
