import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelConfig } from './config.js';
import { ConfigError } from './errors.js';

const cfg = new ModelConfig({
  model_type: 'dbrx',
  hidden_size: 48,
  ratio: 1.0,
  eps: 1e-6,
  gate: true,
  act: 'silu',
  unset: null,
  ffn_config: { moe_num_experts: 8, moe_top_k: 2, nested: { deep: 3 } },
  list: [1, 2],
});

describe('ModelConfig', () => {
  it('reads typed fields by dotted path', () => {
    expect(cfg.modelType).toBe('dbrx');
    expect(cfg.int('hidden_size')).toBe(48);
    expect(cfg.int('ratio')).toBe(1);
    expect(cfg.num('eps')).toBe(1e-6);
    expect(cfg.bool('gate')).toBe(true);
    expect(cfg.str('act')).toBe('silu');
    expect(cfg.int('ffn_config.moe_num_experts')).toBe(8);
    expect(cfg.int('ffn_config.nested.deep')).toBe(3);
  });

  it('takes the first present alias; null counts as absent; fallbacks apply only when absent', () => {
    expect(cfg.int(['num_local_experts', 'ffn_config.moe_num_experts'])).toBe(8);
    expect(cfg.int(['unset', 'hidden_size'])).toBe(48);
    expect(cfg.int('unset', 5)).toBe(5);
    expect(cfg.int('absent', 0)).toBe(0);
    expect(cfg.bool('absent', false)).toBe(false);
    expect(cfg.has('unset')).toBe(false);
    expect(cfg.has('ffn_config.moe_top_k')).toBe(true);
    expect(cfg.has('hidden_size.x')).toBe(false);
    expect(cfg.has('list.0')).toBe(false);
    expect(cfg.has('toString')).toBe(false);
  });

  it('a missing field without fallback or a field of the wrong type is a ConfigError naming file and field', () => {
    expect(() => cfg.int('absent')).toThrow(ConfigError);
    expect(() => cfg.int(['a', 'b'])).toThrow(/a or b/);
    const wrong = [() => cfg.int('eps'), () => cfg.int('act', 1), () => cfg.num('act'), () => cfg.bool('hidden_size'), () => cfg.str('gate')];
    for (const f of wrong) {
      let e: unknown;
      try {
        f();
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).file).toBe('config.json');
      expect((e as ConfigError).expected).toBeDefined();
    }
    expect(() => new ModelConfig({ hidden_size: 1 })).toThrow(ConfigError);
    // A string is shown as a string: "silu" with its quotes, so that a "4" never reads as the number 4.
    expect(() => cfg.int('act', 1)).toThrow(/found "silu"\)/);
  });

  describe('read', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cfg-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    it('parses strictly: a __proto__ key is data, duplicates and non-objects are refused', async () => {
      await writeFile(join(dir, 'config.json'), '{"model_type": "x", "__proto__": {"polluted": 1}, "big": 12345678901234567890}');
      const c = await ModelConfig.read(dir);
      expect(c.int('__proto__.polluted')).toBe(1);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(() => c.int('big')).toThrow(ConfigError);
      await writeFile(join(dir, 'config.json'), '{"model_type": "x", "a": 1, "a": 2}');
      await expect(ModelConfig.read(dir)).rejects.toThrow(ConfigError);
      await writeFile(join(dir, 'config.json'), '[]');
      await expect(ModelConfig.read(dir)).rejects.toThrow(ConfigError);
      await expect(ModelConfig.read(join(dir, 'nope'))).rejects.toThrow(ConfigError);
    });
  });
});
