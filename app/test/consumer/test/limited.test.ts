import { referenceLoader } from 'moe-conformance';
import { defineMoeConformanceSuite } from 'moe-conformance/vitest';

// The reference, declared as capable of mixtral / fused / f32 only: the rest shows as skipped, with the reason.
defineMoeConformanceSuite({ name: 'limited', load: referenceLoader, cases: 1, capabilities: { modelTypes: ['mixtral'], layouts: ['fused'], dtypes: ['f32'] } });
