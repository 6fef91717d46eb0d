// The Dawn session: a real adapter where one exists (this must FAIL, not skip, on a
// machine without one unless MOE_SKIP_WEBGPU=1), a typed error where none can exist, and
// the navigator global removed once the last user is done so that Node can exit.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openWebGpu, withTimeout } from './device.js';
import { WebGpuUnavailableError } from './errors.js';

const hasNavigator = () => (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu !== undefined;

describe('openWebGpu', () => {
  it('throws WebGpuUnavailableError for a backend Dawn does not know, and leaves no navigator', async () => {
    await expect(openWebGpu({ backend: 'no-such-backend' })).rejects.toBeInstanceOf(WebGpuUnavailableError);
    expect(hasNavigator()).toBe(false);
  });

  it('says what to install under Node, never the browser advice to run headed', async () => {
    const e = (await openWebGpu({ backend: 'no-such-backend' }).catch((x: unknown) => x)) as Error;
    expect(e.message).toContain('libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri');
    expect(e.message).toContain('MOE_WEBGPU_BACKEND');
    expect(e.message).not.toMatch(/headless Chromium|run headed/);
  });

  it('refuses the null backend, whose adapter computes nothing', async () => {
    await expect(openWebGpu({ backend: 'null' })).rejects.toThrow(/null Dawn backend/);
  });

  it('gives up with WebGpuUnavailableError instead of hanging on an adapter that never answers', async () => {
    const never = new Promise<never>(() => undefined);
    await expect(withTimeout(never, 20, 'opengles')).rejects.toThrow(/did not answer within 20 ms/);
    await expect(withTimeout(Promise.resolve(7), 20, 'opengles')).resolves.toBe(7);
  });

  it.skipIf(process.env.MOE_SKIP_WEBGPU === '1')('opens a real adapter, shared by reference until the last dispose', async () => {
    const madeRuntimeDir = process.env.XDG_RUNTIME_DIR === undefined;
    const first = await openWebGpu();
    const second = await openWebGpu();
    const runtimeDir = process.env.XDG_RUNTIME_DIR!;
    console.log('WebGPU adapter:', first.adapter);
    expect(first.adapter.device).not.toBe('');
    expect(first.adapter.device).not.toBe('null-backend');
    expect(second.adapter).toBe(first.adapter);
    expect(hasNavigator()).toBe(true);
    await first.dispose();
    await first.dispose();
    expect(hasNavigator()).toBe(true);
    await second.dispose();
    expect(hasNavigator()).toBe(false);
    // The folder made for Mesa goes with the last session: nothing is left in the temp folder.
    if (madeRuntimeDir) expect(existsSync(runtimeDir)).toBe(false);
  });
});
