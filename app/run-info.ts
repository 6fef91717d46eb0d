// The facts about this run that every report names (harness/conformance/run-info.ts): the
// harness's version (version.ts), the date, and the machine.
import { cpus, hostname, totalmem, type, arch, release } from 'node:os';
import { harnessVersion } from './version.js';
import type { OutputMetadata } from '../harness/protocol/command-loader.js';
import type { DeclaredLoader } from '../harness/conformance/capabilities.js';
import type { RunInfo } from '../harness/conformance/run-info.js';

export function machineDescription(): string {
  const cores = cpus();
  const gb = (totalmem() / 1024 ** 3).toFixed(0);
  return `${hostname()}: ${cores[0]?.model.trim() ?? 'unknown CPU'} × ${cores.length}, ${gb} GB, ${type()} ${release()} ${arch()}, Node ${process.versions.node}`;
}

/** The run's facts; the loader's name and version come from its declaration (a worker's handshake) or its output's metadata. */
export function runInfo(loader: string, o: { seed?: number; metadata?: OutputMetadata; declared?: DeclaredLoader; date?: Date } = {}): RunInfo {
  // A command's declaration names it by its command line: its own name is in its outputs' metadata.
  const worker = o.declared?.mode === 'worker' ? o.declared : undefined;
  const name = worker?.name ?? o.metadata?.name;
  const version = worker?.version ?? o.metadata?.version;
  return {
    loader,
    ...(name !== undefined && { loaderName: name }),
    ...(version !== undefined && { loaderVersion: version }),
    ...(o.declared && { declared: o.declared }),
    ...(o.seed !== undefined && { seed: o.seed }),
    harnessVersion: harnessVersion(),
    date: (o.date ?? new Date()).toISOString(),
    machine: machineDescription(),
  };
}
