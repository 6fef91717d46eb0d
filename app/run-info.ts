// The facts about this run that every report names (harness/conformance/run-info.ts): the
// harness's version (version.ts), the date, and the machine.
import { cpus, hostname, totalmem, type, arch, release } from 'node:os';
import { harnessVersion } from './version.js';
import type { DeclaredLoader } from '../harness/protocol/command-loader.js';
import type { RunInfo } from '../harness/conformance/run-info.js';

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
