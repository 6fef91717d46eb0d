// Diagnosis benchmark: how long harness/compare/diagnose.ts takes to name what a loader did
// to one Mixtral-size MoE layer (H 4096, I 14336, E 8, bf16: w13 [8, 28672, 4096] and w2
// [8, 4096, 14336], 2.82 GB), held in memory as the reference (TP 1, EP 1: also the whole)
// and a wrong loader's output. Scenarios: every expert's gate and up swapped; the experts in
// reversed slots; one expert's w2 rows scrambled, which no hypothesis explains (`unknown`, the
// worst case: every hypothesis is tried and the value checks decode the whole expert).
// Reported: seconds per scenario (median of runs) and GB/s over the layer's bytes.
import { randomFillSync } from 'node:crypto';
import { diagnoseCanonical, type Diagnosis } from '../harness/compare/diagnose.js';
import type { Canonical, Tensor } from '../harness/tensor.js';
import { WHOLE } from '../harness/tensor.js';
import { fmt, hostInfo, median, writeResult } from './common.js';

export interface DiagnoseBenchOptions {
  hidden: number;
  intermediate: number;
  experts: number;
}

export const DIAGNOSE_DEFAULTS: DiagnoseBenchOptions = { hidden: 4096, intermediate: 14336, experts: 8 };

interface Row {
  scenario: string;
  layerBytes: number;
  runsSeconds: number[];
  medianSeconds: number;
  gbPerSecond: number;
  diagnosis: Diagnosis[];
}

/** Random bf16 values of moderate size (exponent bits kept in range, so no NaN or Inf). */
function bf16Tensor(shape: number[]): Tensor {
  const bytes = new Uint8Array(shape.reduce((a, b) => a * b, 2));
  for (let at = 0; at < bytes.length; at += 1 << 28) randomFillSync(bytes, at, Math.min(1 << 28, bytes.length - at));
  for (let i = 1; i < bytes.length; i += 2) bytes[i] = (bytes[i]! & 0x80) | 0x3c | (bytes[i]! & 0x01); // |v| in [2^-7, 2^-5]
  return { dtype: 'BF16', shape, bytes };
}

function i32(values: number[]): Tensor {
  return { dtype: 'I32', shape: [values.length], bytes: new Uint8Array(new Int32Array(values).buffer) };
}

function withTensor(c: Canonical, name: string, t: Tensor): Canonical {
  return new Map(c).set(name, t);
}

/** Each slot's rows [0, R/2) and [R/2, R) exchanged. */
function swapHalves(t: Tensor): Tensor {
  const [E, R] = [t.shape[0]!, t.shape[1]!];
  const slot = t.bytes.length / E;
  const out = new Uint8Array(t.bytes.length);
  for (let e = 0; e < E; e++) {
    out.set(t.bytes.subarray(e * slot + slot / 2, (e + 1) * slot), e * slot);
    out.set(t.bytes.subarray(e * slot, e * slot + slot / 2), e * slot + slot / 2);
  }
  void R;
  return { ...t, bytes: out };
}

function reversedSlots(t: Tensor): Tensor {
  const E = t.shape[0]!;
  const slot = t.bytes.length / E;
  const out = new Uint8Array(t.bytes.length);
  for (let e = 0; e < E; e++) out.set(t.bytes.subarray(e * slot, (e + 1) * slot), (E - 1 - e) * slot);
  return { ...t, bytes: out };
}

/** Expert 3's rows rotated by one within the slot, and a few bytes flipped: no known relation. */
function scrambled(t: Tensor): Tensor {
  const E = t.shape[0]!;
  const slot = t.bytes.length / E;
  const rowBytes = slot / t.shape[1]!;
  const out = t.bytes.slice();
  const at = 3 * slot;
  out.set(t.bytes.subarray(at + rowBytes, at + slot), at);
  out.set(t.bytes.subarray(at, at + rowBytes), at + slot - rowBytes);
  out[at + 1] = (out[at + 1]! ^ 0x40) & 0xff;
  return { ...t, bytes: out };
}

export async function benchDiagnose(o: DiagnoseBenchOptions, runs: number): Promise<{ rows: Row[]; file: string }> {
  const { hidden: H, intermediate: I, experts: E } = o;
  const w13 = bf16Tensor([E, 2 * I, H]);
  const w2 = bf16Tensor([E, H, I]);
  const expected: Canonical = new Map<string, Tensor>([
    ['layers.0.experts.ids', i32(Array.from({ length: E }, (_, i) => i))],
    ['layers.0.experts.w13', w13],
    ['layers.0.experts.w2', w2],
    ['layers.0.router.weight', bf16Tensor([E, H])],
  ]);
  const layerBytes = [...expected.values()].reduce((s, t) => s + t.bytes.length, 0);
  const scenarios: Array<[string, () => Canonical]> = [
    ['gate-up-swapped (every expert of w13)', () => withTensor(expected, 'layers.0.experts.w13', swapHalves(w13))],
    ['expert-permutation (experts in reversed slots, w13 and w2)', () => withTensor(withTensor(expected, 'layers.0.experts.w13', reversedSlots(w13)), 'layers.0.experts.w2', reversedSlots(w2))],
    ['unknown (expert 3 of w2 scrambled: every hypothesis tried)', () => withTensor(expected, 'layers.0.experts.w2', scrambled(w2))],
  ];
  const rows: Row[] = [];
  for (const [scenario, make] of scenarios) {
    const found = make();
    const times: number[] = [];
    let diagnosis: Diagnosis[] = [];
    for (let r = 0; r < runs; r++) {
      const start = performance.now();
      diagnosis = diagnoseCanonical(expected, found, { req: WHOLE, whole: expected });
      times.push((performance.now() - start) / 1000);
    }
    const m = median(times);
    rows.push({ scenario, layerBytes, runsSeconds: times, medianSeconds: m, gbPerSecond: layerBytes / 1e9 / m, diagnosis });
    console.error(`${scenario}: ${fmt(m, 2)} s → ${diagnosis.map((d) => `${d.kind} (${d.tensor}: ${d.detail})`).join('; ')}`);
  }
  const file = await writeResult('diagnose', { options: o, host: await hostInfo(), rows });
  return { rows, file };
}

export function diagnoseTable(rows: Row[]): string {
  const lines = ['| scenario | layer GB | median s | GB/s | diagnosis |', '| --- | ---: | ---: | ---: | --- |'];
  for (const r of rows) lines.push(`| ${r.scenario} | ${fmt(r.layerBytes / 1e9, 2)} | ${fmt(r.medianSeconds, 2)} | ${fmt(r.gbPerSecond, 2)} | ${r.diagnosis.map((d) => d.kind).join(', ')} |`);
  return lines.join('\n');
}
