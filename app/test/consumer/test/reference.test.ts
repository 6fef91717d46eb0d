import { referenceLoader } from 'moe-conformance';
import { defineMoeConformanceSuite } from 'moe-conformance/vitest';

defineMoeConformanceSuite({ name: 'reference', load: referenceLoader, cases: 1, capabilities: { modelTypes: ['qwen3_moe', 'gpt_oss'] } });
