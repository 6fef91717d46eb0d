// Every MoE forward implementation the harness can run, by name. Each entry creates its
// backend on demand, so that asking for the reference never starts a GPU device; a new
// backend is one line here.
import type { MoeBackend } from './backend.js';
import { MoeConformanceError } from '../harness/errors.js';
import { referenceBackend } from './moe.js';
import { dequantizeRanks } from '../harness/quant/dequantize.js';

export interface BackendEntry {
  name: string;
  /** Shorter names accepted on the command line. */
  aliases?: string[];
  create(): Promise<MoeBackend>;
}

export class UnknownBackend extends MoeConformanceError {}

/** A backend needs a package that the harness declares as an optional peer (gpu.js, webgpu), and it is not installed. */
export class MissingOptionalPackage extends MoeConformanceError {}

/** The GPU backends' packages: optional peers, so that installing the suite does not cost their 200 MB of binaries. */
export const GPU_PACKAGES = ['gpu.js@2.24.1', 'webgpu@0.6.2'] as const;

/** Loads a backend module whose imports include optional packages; their absence is a typed error saying what to install. */
export async function withOptional<T>(backend: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const pkg = /Cannot find (?:package|module) '([^']+)'/.exec(err.message ?? '')?.[1];
    if (err.code !== 'ERR_MODULE_NOT_FOUND' && err.code !== 'MODULE_NOT_FOUND') throw e;
    if (pkg === undefined || !GPU_PACKAGES.some((p) => p.startsWith(`${pkg}@`))) throw e;
    throw new MissingOptionalPackage(`the ${backend} backend needs the optional package ${pkg}: npm install ${GPU_PACKAGES.join(' ')}`, { expected: pkg, found: 'not installed' });
  }
}

export const BACKENDS: readonly BackendEntry[] = [
  { name: 'reference-f64', aliases: ['reference'], create: async () => referenceBackend },
  { name: 'gpujs-cpu', create: () => withOptional('gpujs-cpu', async () => (await import('./gpujs/backend.js')).createGpujsBackend('cpu')) },
  { name: 'gpujs-webasm', create: () => withOptional('gpujs-webasm', async () => (await import('./gpujs/backend.js')).createGpujsBackend('webasm')) },
  { name: 'gpujs-webgpu', create: () => withOptional('gpujs-webgpu', async () => (await import('./gpujs/backend.js')).createGpujsBackend('webgpu')) },
  { name: 'fast-cpu-wasm', aliases: ['fast'], create: async () => new (await import('./fast/backend.js')).FastCpuBackend() },
  { name: 'wgsl-webgpu', aliases: ['wgsl'], create: () => withOptional('wgsl-webgpu', async () => (await import('./wgsl/backend.js')).WgslWebGpuBackend.create()) },
];

export function backendNames(): string[] {
  return BACKENDS.map((b) => b.name);
}

export function findBackend(name: string): BackendEntry {
  const entry = BACKENDS.find((b) => b.name === name || b.aliases?.includes(name));
  if (!entry) throw new UnknownBackend('no such kernel backend', { expected: backendNames().join('|'), found: name });
  return entry;
}

/** Creates the named backends, in order; an unknown name is refused before any is created. */
export async function createBackends(names: string[]): Promise<MoeBackend[]> {
  const entries = names.map(findBackend);
  const created: MoeBackend[] = [];
  for (const e of entries) {
    const b = await e.create();
    // The reference dequantizes in referenceForward itself, and callers know it by identity.
    created.push(b === referenceBackend ? b : dequantizing(b));
  }
  return created;
}

/** A backend that runs quantized ranks (spec §4) on their dequantized tensors; float ranks pass unchanged. */
function dequantizing(b: MoeBackend): MoeBackend {
  return {
    name: b.name,
    forward: (sem, layer, ranks, x, tokens, inputs) => b.forward(sem, layer, dequantizeRanks(sem.quant, ranks), x, tokens, inputs),
    ...(b.describe ? { describe: () => b.describe!() } : {}),
    ...(b.dispose ? { dispose: () => b.dispose!() } : {}),
  };
}
