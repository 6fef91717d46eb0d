// What a report says about the run it comes from, so that a report read later, elsewhere,
// still names what was checked: the loader command and what the loader declared about
// itself, the seed, the harness's version, the date and the machine.
import type { DeclaredLoader } from './capabilities.js';

export interface RunInfo {
  /** The loader command (check), or the in-process loader's name (run). */
  loader: string;
  /** The loader's own name and version, where it declared them (spec §2: output metadata `moe_conformance.loader_name` / `moe_conformance.loader_version`). */
  loaderName?: string;
  loaderVersion?: string;
  /** The loader's self-declaration (mode, capabilities, forms), from a worker's handshake or `--capabilities FILE` (spec §7). */
  declared?: DeclaredLoader;
  /** The case sampler's seed. */
  seed?: number;
  /** The moe-conformance package version. */
  harnessVersion: string;
  /** ISO 8601, when the run ended. */
  date: string;
  /** Host name, CPU, cores, memory, OS, Node. */
  machine: string;
}

/** One "label: value" line per fact, for the terminal and the HTML report. */
export function runFacts(r: RunInfo): Array<[string, string]> {
  const declared = [r.loaderName, r.loaderVersion].filter((x) => x !== undefined).join(' ');
  return [
    ['loader', r.loader],
    ['declared', declared || 'not declared'],
    ...(r.seed !== undefined ? [['seed', String(r.seed)] as [string, string]] : []),
    ['harness', `moe-conformance ${r.harnessVersion}`],
    ['date', r.date],
    ['machine', r.machine],
  ];
}
