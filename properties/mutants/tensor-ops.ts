// The mutant loaders' tensor surgery lives on the format floor (harness/tensor-ops.ts), where
// the engine forms use it too; this module keeps the mutants' import path.
export { int32s, int32Tensor, permuteRows, pickSlots, selectAxis, concatAxis, selectRows, transposeLast2, transposeSquare } from '../../harness/tensor-ops.js';
