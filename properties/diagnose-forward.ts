// Diagnosis of a wrong forward: the weights are bit-exact, yet a backend's output is beyond
// the tolerance of the float64 reference. The known routing mistakes are hypotheses: the
// reference forward is computed once per mistake (the correction bias ignored, the top-k
// weights not renormalised, the routed scaling applied twice, softmax where the model's
// router uses sigmoid), and a mistake is named only where the backend's output is within
// that forward's own float32 bound. Only the mistakes the model's routing can make are
// tried; nothing within bound is `unknown`.
import type { Diagnosis, DiagnosisKind } from '../harness/compare/diagnose.js';
import { compareToBounds } from '../harness/compare/tolerance.js';
import type { MoeSemantics, Routing } from '../harness/layouts/semantics.js';
import type { ForwardInputs, RankTensors } from '../kernels/backend.js';
import { referenceForward } from '../kernels/moe.js';
import { route, softmax } from '../kernels/routing.js';

interface Hypothesis {
  kind: DiagnosisKind;
  detail: string;
  sem?: MoeSemantics;
  ranks?: RankTensors[];
  route?: typeof route;
}

const withRouting = (sem: MoeSemantics, r: Routing): MoeSemantics => ({ ...sem, routing: r });

/** logit(p): the logit whose sigmoid is p, so that a sigmoid router fed these scores sees softmax probabilities. */
const logit = (p: number) => Math.log(p) - Math.log1p(-p);

function hypotheses(sem: MoeSemantics, layer: number, ranks: RankTensors[]): Hypothesis[] {
  const out: Hypothesis[] = [];
  const r = sem.routing;
  const bias = `layers.${layer}.router.correction_bias`;
  if (ranks.some((x) => x.tensors.has(bias))) {
    out.push({ kind: 'forward-ignores-correction-bias', detail: 'experts selected without the selection-only correction bias (e_score_correction_bias / expert_bias)', ranks: ranks.map((x) => ({ ...x, tensors: new Map([...x.tensors].filter(([k]) => k !== bias)) })) });
  }
  if ('renormalize' in r && r.renormalize) out.push({ kind: 'forward-skips-renormalisation', detail: 'top-k weights not renormalised to sum 1 (norm_topk_prob ignored)', sem: withRouting(sem, { ...r, renormalize: false }) });
  if ('scaling' in r && r.scaling !== undefined && r.scaling !== 1) out.push({ kind: 'forward-routed-scaling-twice', detail: `routed_scaling_factor ${r.scaling} applied twice (× ${r.scaling * r.scaling})`, sem: withRouting(sem, { ...r, scaling: r.scaling * r.scaling }) });
  if (r.kind === 'sigmoid_bias' || r.kind === 'sigmoid_group_limited_bias') {
    const E = sem.experts;
    out.push({
      kind: 'forward-softmax-for-sigmoid',
      detail: `router scores computed with softmax where ${sem.modelType} uses sigmoid`,
      route: (s, logits, tokens, correction, hash) => {
        const z = new Float64Array(logits.length);
        for (let t = 0; t < tokens; t++) softmax(logits.subarray(t * E, (t + 1) * E)).forEach((p, e) => (z[t * E + e] = logit(p)));
        return route(s, z, tokens, correction, hash);
      },
    });
  }
  return out;
}

/**
 * What a backend's forward did, given its output `got` on ranks whose weights are right:
 * the routing mistakes whose forward matches it within bound, or `unknown`.
 */
export function diagnoseForward(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array, tokens: number, got: ArrayLike<number>, backend: string, inputs?: ForwardInputs): Diagnosis[] {
  const found: Diagnosis[] = [];
  for (const h of hypotheses(sem, layer, ranks)) {
    const want = referenceForward(h.sem ?? sem, layer, h.ranks ?? ranks, x, tokens, { bound: true, ...(inputs && { inputs }), ...(h.route && { route: h.route }) });
    const cols = want.output.length / Math.max(1, tokens);
    const v = compareToBounds(got, want.output, want.bounds!, cols, { selected: want.selected, k: want.selected.length / Math.max(1, tokens) });
    if (v.tier !== 'fail') found.push({ tensor: '', kind: h.kind, detail: `layer ${layer}, ${backend}: ${h.detail}; its output matches that forward (max error ${v.maxAbs.value.toPrecision(3)})` });
  }
  return found.length ? found : [{ tensor: '', kind: 'unknown', detail: `layer ${layer}, ${backend}: the weights are right but the forward matches none of the known routing mistakes` }];
}
