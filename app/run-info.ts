// The facts about this run that every report names (harness/conformance/run-info.ts): the
// harness's version from its package.json, the date, and the machine.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, totalmem, type, arch, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeclaredLoader } from '../harness/protocol/command-loader.js';
import type { RunInfo } from '../harness/conformance/run-info.js';

/** The version in the package.json above this module (source or dist/), or 'unknown'. */
export function harnessVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'moe-conformance' && pkg.version) return pkg.version;
      } catch {
        // not ours: keep looking upward
      }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export function machineDescription(): string {
  const cores = cpus();
  const gb = (totalmem() / 1024 ** 3).toFixed(0);
  return `${hostname()}: ${cores[0]?.model.trim() ?? 'unknown CPU'} × ${cores.length}, ${gb} GB, ${type()} ${release()} ${arch()}, Node ${process.versions.node}`;
}

export function runInfo(loader: string, o: { seed?: number; declared?: DeclaredLoader; date?: Date } = {}): RunInfo {
  return {
    loader,
    ...(o.declared?.name !== undefined && { loaderName: o.declared.name }),
    ...(o.declared?.version !== undefined && { loaderVersion: o.declared.version }),
    ...(o.seed !== undefined && { seed: o.seed }),
    harnessVersion: harnessVersion(),
    date: (o.date ?? new Date()).toISOString(),
    machine: machineDescription(),
  };
}
