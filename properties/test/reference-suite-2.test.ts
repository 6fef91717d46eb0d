// Shard 2 of the generated conformance suite against the reference (reference-suite.ts).
import { referenceSuiteShard, SUITE_SHARDS } from './reference-suite.js';

referenceSuiteShard({ index: 2, count: SUITE_SHARDS });
