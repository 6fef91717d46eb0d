// The backend registry: names and aliases resolve, unknown names are refused before any
// backend is created.
import { describe, expect, it } from 'vitest';
import { backendNames, createBackends, findBackend, MissingOptionalPackage, UnknownBackend, withOptional } from './backends.js';
import { referenceBackend } from './moe.js';

describe('backend registry', () => {
  it('lists the reference first and resolves it by name and alias', async () => {
    expect(backendNames()[0]).toBe('reference-f64');
    expect(findBackend('reference').name).toBe('reference-f64');
    expect(await createBackends(['reference-f64', 'reference'])).toEqual([referenceBackend, referenceBackend]);
  });
  it('refuses an unknown name, listing the known ones, before creating anything', async () => {
    await expect(createBackends(['reference', 'cuda-magic'])).rejects.toThrow(UnknownBackend);
    expect(() => findBackend('cuda-magic')).toThrow(/reference-f64/);
  });

  it('a GPU backend whose optional package is not installed says what to install', async () => {
    const missing = () => import('gpu.js-that-is-not-installed' as string);
    // An unrelated missing module is not dressed up as the optional package.
    await expect(withOptional('gpujs-cpu', missing)).rejects.toThrow(/gpu.js-that-is-not-installed/);
    const gpujsMissing = () => Promise.reject(Object.assign(new Error("Cannot find package 'gpu.js' imported from /x/kernels.js"), { code: 'ERR_MODULE_NOT_FOUND' }));
    const e = await withOptional('gpujs-cpu', gpujsMissing).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingOptionalPackage);
    expect((e as Error).message).toContain('npm install gpu.js@2.24.1 webgpu@0.6.2');
  });
});
