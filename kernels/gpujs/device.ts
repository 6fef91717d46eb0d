// A WebGPU adapter for gpu.js in Node, through Dawn (the `webgpu` package); recipe in
// spec/gpu.md. gpu.js only looks at `navigator.gpu`, so a session installs
// that global and removes it on dispose (a live Dawn device would otherwise keep Node
// running). One session is shared by every caller in the process, counted by references.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebGpuUnavailableError } from './errors.js';

/** What the adapter says it is, for logs and for tests that must prove a real GPU path ran. */
export interface AdapterDescription {
  /** Dawn backend asked for: `opengles` (Mesa llvmpipe on CPU machines), `vulkan` (NVIDIA), ... */
  backend: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The largest storage buffer one kernel argument may use on this device. */
  maxStorageBufferBytes: number;
}

export interface WebGpuSession {
  readonly adapter: AdapterDescription;
  /** Drops this reference; the last one destroys the device and removes `navigator`. */
  dispose(): Promise<void>;
}

export interface WebGpuOptions {
  /** Dawn backend; default `MOE_WEBGPU_BACKEND` or `opengles`. */
  backend?: string;
  /** Bound on adapter + device creation; default `MOE_WEBGPU_TIMEOUT_MS` or 60 s. */
  timeoutMs?: number;
}

// Only the parts of the WebGPU and gpu.js surfaces this module touches.
interface AdapterInfoLike { vendor?: string; architecture?: string; device?: string; description?: string }
interface AdapterLike { info?: AdapterInfoLike }
interface DeviceLike { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } }
interface DawnGpu {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
  getPreferredCanvasFormat(): string;
}
interface GpujsWebGpuContext {
  acquire(): Promise<{ adapter: AdapterLike; device: DeviceLike }>;
  destroy(): Promise<void>;
}

const require = createRequire(import.meta.url);

interface OpenSession {
  promise: Promise<AdapterDescription>;
  references: number;
  previousNavigator: PropertyDescriptor | undefined;
}
let open: OpenSession | null = null;

function requestedBackend(options: WebGpuOptions = {}): string {
  return options.backend ?? process.env.MOE_WEBGPU_BACKEND ?? 'opengles';
}

/**
 * Opens the process's WebGPU session, or joins the open one (whose backend then holds:
 * gpu.js keeps one device per process). Throws WebGpuUnavailableError; never hangs.
 */
export async function openWebGpu(options: WebGpuOptions = {}): Promise<WebGpuSession> {
  if (open === null) {
    const previousNavigator = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    const session: OpenSession = { promise: acquire(options), references: 0, previousNavigator };
    open = session;
    session.promise.catch(() => undefined);
  }
  const session = open;
  session.references++;
  try {
    const adapter = await session.promise;
    let disposed = false;
    return {
      adapter,
      dispose: async () => {
        if (disposed) return;
        disposed = true;
        await release(session);
      },
    };
  } catch (error) {
    await release(session);
    throw error;
  }
}

async function release(session: OpenSession): Promise<void> {
  session.references--;
  if (session.references > 0 || open !== session) return;
  open = null;
  await gpujsContext().destroy();
  removeRuntimeDir();
  if (session.previousNavigator) Object.defineProperty(globalThis, 'navigator', session.previousNavigator);
  else delete (globalThis as { navigator?: unknown }).navigator;
}

async function acquire(options: WebGpuOptions): Promise<AdapterDescription> {
  const backend = requestedBackend(options);
  // Dawn's null backend answers with an adapter that computes nothing.
  if (backend === 'null') {
    throw new WebGpuUnavailableError('the null Dawn backend cannot run kernels', { expected: 'a real backend', found: backend });
  }
  prepareEnvironment();
  const timeoutMs = options.timeoutMs ?? Number(process.env.MOE_WEBGPU_TIMEOUT_MS ?? 60_000);
  const dawn = await createDawn(backend);
  // Mesa's GLES path only offers a compatibility-level adapter; a plain request answers null.
  const compatibility = backend === 'opengles' || backend === 'opengl';
  const gpu: DawnGpu = {
    requestAdapter: (o = {}) => dawn.requestAdapter(compatibility ? { ...o, featureLevel: 'compatibility' } : o),
    getPreferredCanvasFormat: () => dawn.getPreferredCanvasFormat(),
  };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  try {
    // gpu.js keeps one device per process: creating it here proves it exists before any kernel.
    const { adapter, device } = await withTimeout(gpujsContext().acquire(), timeoutMs, backend);
    const info = adapter.info ?? {};
    return {
      backend,
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      maxStorageBufferBytes: Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
    };
  } catch (error) {
    if (error instanceof WebGpuUnavailableError) throw error;
    throw new WebGpuUnavailableError(`no WebGPU adapter through Dawn's ${backend} backend under Node: ${nodeReason(error as Error)}. ${ADAPTER_HINT}`, {
      expected: `an adapter from backend=${backend}`,
      found: 'none',
    });
  }
}

async function createDawn(backend: string): Promise<DawnGpu> {
  try {
    // Loaded on demand: cpu and webasm modes never touch Dawn's native module.
    const { create } = (await import('webgpu')) as unknown as { create(options: string[]): DawnGpu };
    // MOE_DAWN_FEATURES: Dawn toggles to enable (comma-separated), e.g. for measurements.
    const features = process.env.MOE_DAWN_FEATURES;
    return create([`backend=${backend}`, ...(features ? [`enable-dawn-features=${features}`] : [])]);
  } catch (error) {
    throw new WebGpuUnavailableError(`cannot create Dawn: ${(error as Error).message.split('\n')[0]}`, {
      expected: 'a usable Dawn backend',
      found: backend,
    });
  }
}

/** What to do when Dawn finds no adapter, on the machines this harness runs on (spec/gpu.md). */
export const ADAPTER_HINT =
  'On a Linux machine without a GPU, Dawn needs Mesa\'s EGL and GLES (Debian: apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri); ' +
  'on an NVIDIA machine, use MOE_WEBGPU_BACKEND=vulkan with the driver\'s Vulkan ICD installed; MOE_WEBGPU_BACKEND picks another Dawn backend';

/** The adapter error without gpu.js's browser advice ("run headed"), which does not apply under Node. */
function nodeReason(error: Error): string {
  return error.message.replace(/\s*On headless Chromium[^.]*\.\s*/, ' ').replace(/\s*Use `await GPU\.isWebGPUAvailable\(\)`[^.]*\.\s*/, ' ').trim().replace(/\.$/, '');
}

/** The XDG_RUNTIME_DIR this module made, removed with the last session (test runners may end a process without its exit event). */
let runtimeDir: string | undefined;

/** Mesa needs a headless EGL platform; XDG_RUNTIME_DIR only silences its warnings. */
function prepareEnvironment(): void {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  if (process.env.XDG_RUNTIME_DIR === undefined) {
    runtimeDir = mkdtempSync(join(tmpdir(), 'moe-conformance-xdg-'));
    process.env.XDG_RUNTIME_DIR = runtimeDir;
  }
}

function removeRuntimeDir(): void {
  if (runtimeDir === undefined) return;
  rmSync(runtimeDir, { recursive: true, force: true });
  if (process.env.XDG_RUNTIME_DIR === runtimeDir) delete process.env.XDG_RUNTIME_DIR;
  runtimeDir = undefined;
}

function gpujsContext(): GpujsWebGpuContext {
  return (require('gpu.js') as { WebGPUContext: GpujsWebGpuContext }).WebGPUContext;
}

/** `promise`, or WebGpuUnavailableError after `ms`: an adapter request must never hang a run. */
export function withTimeout<T>(promise: Promise<T>, ms: number, backend: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WebGpuUnavailableError(`WebGPU adapter did not answer within ${ms} ms`, { expected: `an adapter from backend=${backend}`, found: 'timeout' })),
      ms,
    );
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
