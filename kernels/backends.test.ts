// The backend registry: names and aliases resolve, unknown names are refused before any
// backend is created.
import { describe, expect, it } from 'vitest';
import { backendNames, createBackends, findBackend, UnknownBackend } from './backends.js';
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
});
