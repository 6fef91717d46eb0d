// Child process of the memory test: parse one safetensors file and print how much the
// process grew while doing it. Run as `node --expose-gc --import tsx memory-probe.ts FILE`.
// The file is read before measuring, so its bytes are part of the baseline; the peak is the
// process's maximum resident set size, which counts everything the parse allocated, freed
// or not, at its highest point.
import { readFileSync } from 'node:fs';
import { MoeConformanceError } from '../../errors.js';
import { parseSafetensors } from '../read.js';

const bytes = readFileSync(process.argv[2]!);
(globalThis as { gc?: () => void }).gc?.();
const before = process.memoryUsage.rss();
let outcome: string;
let kept: unknown;
try {
  kept = parseSafetensors(bytes, process.argv[2]);
  outcome = 'accepted';
} catch (e) {
  outcome = e instanceof MoeConformanceError ? e.name : `untyped ${(e as Error).name}: ${(e as Error).message}`;
}
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(JSON.stringify({ outcome, bytes: bytes.length, before, peak, growth: peak - before, kept: kept !== undefined }) + '\n');
