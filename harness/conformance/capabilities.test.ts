import { describe, expect, it } from 'vitest';
import { CapabilitiesError, describeCapabilities, parseCapabilities, parseCapabilitiesJson, undeclaredReason, type CaseNeeds } from './capabilities.js';

const needs: CaseNeeds = { modelType: 'qwen3_moe', layouts: ['fused'], dtype: 'bf16', tp: 4, ep: 2, placement: 'round_robin' };

describe('parseCapabilities', () => {
  it('keeps every declared field and nothing else', () => {
    const all = { modelTypes: ['mixtral'], layouts: ['fused'], dtypes: ['bf16', 'fp8'], quantization: ['dequantized'], maxTp: 8, maxEp: 4, placements: ['linear'], forms: ['w31'] };
    expect(parseCapabilities(all, 'x')).toEqual(all);
    expect(parseCapabilities({}, 'x')).toEqual({});
    expect(parseCapabilitiesJson('{"maxTp": 2}', 'f.json')).toEqual({ maxTp: 2 });
  });

  it('refuses what is not an object, unknown fields and values, and bad sizes, naming the source', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[], /must be a JSON object/],
      [null, /must be a JSON object/],
      [{ modelType: ['mixtral'] }, /unknown capabilities field "modelType"/],
      [{ layouts: ['sideways'] }, /capabilities.layouts: unknown value \(expected original \| fused, found sideways\)/],
      [{ dtypes: ['f8'] }, /capabilities.dtypes: unknown value/],
      [{ quantization: ['int4'] }, /capabilities.quantization: unknown value/],
      [{ placements: ['random'] }, /capabilities.placements: unknown value/],
      [{ modelTypes: [''] }, /must be a list of strings/],
      [{ forms: 'w31' }, /capabilities.forms must be a list of strings/],
      [{ maxTp: 0 }, /capabilities.maxTp must be an integer ≥ 1/],
      [{ maxEp: 1.5 }, /capabilities.maxEp must be an integer ≥ 1/],
      // Every skip note quotes the list: a value repeated 100,000 times made 0.9 MB notes.
      [{ modelTypes: ['mixtral', 'olmoe', 'mixtral'] }, /capabilities.modelTypes: a value given twice \(expected each value once, found mixtral\)/],
      [{ layouts: ['fused', 'fused'] }, /capabilities.layouts: a value given twice/],
    ];
    for (const [value, message] of bad) {
      const err = (() => {
        try {
          parseCapabilities(value, 'caps.json');
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err, JSON.stringify(value)).toBeInstanceOf(CapabilitiesError);
      expect(err!.message).toMatch(message);
      expect(err!.message).toContain('caps.json');
    }
    expect(() => parseCapabilitiesJson('{maxTp: 2}', 'f.json')).toThrow(/capabilities are not JSON/);
  });
});

describe('undeclaredReason', () => {
  it('is undefined without capabilities or within them', () => {
    expect(undeclaredReason(undefined, needs)).toBeUndefined();
    expect(undeclaredReason({}, needs)).toBeUndefined();
    expect(undeclaredReason({ modelTypes: ['qwen3_moe'], layouts: ['fused'], dtypes: ['bf16'], maxTp: 4, maxEp: 2, placements: ['round_robin'] }, needs)).toBeUndefined();
  });

  it('names the first axis outside them, with what is declared', () => {
    expect(undeclaredReason({ modelTypes: ['mixtral', 'olmoe'] }, needs)).toBe('model type qwen3_moe (declared: mixtral, olmoe)');
    expect(undeclaredReason({ modelTypes: [] }, needs)).toBe('model type qwen3_moe (declared: none)');
    expect(undeclaredReason({ layouts: ['original'] }, { ...needs, layouts: ['original', 'fused'] })).toBe('layout fused (declared: original)');
    expect(undeclaredReason({ dtypes: ['f32'] }, needs)).toBe('dtype bf16 (declared: f32)');
    expect(undeclaredReason({ maxTp: 2 }, needs)).toBe('TP size 4 (declared: up to 2)');
    expect(undeclaredReason({ maxEp: 1 }, needs)).toBe('EP size 2 (declared: up to 1)');
    expect(undeclaredReason({ placements: ['linear'] }, needs)).toBe('EP placement round_robin (declared: linear)');
  });

  it('asks no placement of one EP rank, and no sizes of a case that has none', () => {
    expect(undeclaredReason({ placements: ['linear'] }, { ...needs, ep: 1 })).toBeUndefined();
    const refusal: CaseNeeds = { modelType: 'mixtral', layouts: ['original'], dtype: 'f32' };
    expect(undeclaredReason({ maxTp: 1, maxEp: 1, placements: ['linear'] }, refusal)).toBeUndefined();
  });
});

describe('describeCapabilities', () => {
  it('says every declared limit in one line', () => {
    expect(describeCapabilities(undefined)).toBe('not declared (every case is run)');
    expect(describeCapabilities({})).toBe('no limits declared');
    expect(describeCapabilities({ modelTypes: ['mixtral'], layouts: ['fused'], dtypes: ['f32'], quantization: ['quantized'], maxTp: 2, maxEp: 3, placements: ['linear'], forms: ['w31'] })).toBe(
      'model types mixtral; layouts fused; dtypes f32; quantization quantized; max TP 2; max EP 3; placements linear; forms w31',
    );
  });
});

describe('capabilities.forms', () => {
  it('are the engine forms of spec §8: an unknown one, a repeat or two that exclude each other is refused', () => {
    expect(parseCapabilities({ forms: ['eplb', 'pad-ir-128', 'w31'] }, 'h').forms).toEqual(['eplb', 'pad-ir-128', 'w31']);
    expect(() => parseCapabilities({ forms: ['w13'] }, 'worker handshake')).toThrow(/^capabilities\.forms: unknown engine form \(expected transposed \| pad-ir-N \| marlin \| w31 \| shared-expert-slots \| shared-replicated \| eplb, found w13\) \[file worker handshake\]$/);
    expect(() => parseCapabilities({ forms: ['w31', 'w31'] }, 'h')).toThrow(CapabilitiesError);
    expect(() => parseCapabilities({ forms: ['shared-replicated', 'shared-expert-slots'] }, 'h')).toThrow(/exclude each other/);
  });
});

describe('model types in capabilities', () => {
  it('a misspelt model type is refused, listing the valid names (not a late "no traits" error)', async () => {
    const { parseCapabilities, CapabilitiesError } = await import('./capabilities.js');
    const e = (() => {
      try {
        parseCapabilities({ modelTypes: ['mixtrall'] }, 'suite');
      } catch (x) {
        return x as Error;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(CapabilitiesError);
    expect(e!.message).toContain('mixtrall');
    expect(e!.message).toContain('mixtral |');
  });
});
