// Typed errors of checkpoint directories: config.json, the shard index, and how shards and
// index agree. Each names the file (and the tensor or field) at fault.
import { MoeConformanceError } from '../errors.js';

export class CheckpointError extends MoeConformanceError {}

/** config.json is missing, not strict JSON, or a field has the wrong type. */
export class ConfigError extends CheckpointError {}
/** model.safetensors.index.json is not strict JSON or not {metadata?, weight_map}. */
export class InvalidIndex extends CheckpointError {}
/** A key appears twice in one object of the index (a tensor listed twice, say). */
export class DuplicateIndexKey extends InvalidIndex {}
/** A shard path that could leave the folder: a separator, `..`, an absolute path or drive. */
export class UnsafeShardPath extends CheckpointError {}
/** A shard file name that does not end in `.safetensors`. */
export class BadShardName extends CheckpointError {}
/** The index names a shard that is not in the folder. */
export class MissingShard extends CheckpointError {}
/** An index beside a model.safetensors it does not name: transformers reads the one, other loaders the other. */
export class AmbiguousCheckpoint extends CheckpointError {}
/** One tensor name stored in two files. */
export class DuplicateTensor extends CheckpointError {}
/** The index maps a tensor to a shard whose header does not hold it. */
export class TensorMissingFromShard extends CheckpointError {}
/** A shard holds a tensor the index does not map to it. */
export class TensorNotIndexed extends CheckpointError {}
/** metadata.total_size differs from the sum of the tensors' byte lengths. */
export class TotalSizeMismatch extends CheckpointError {}
/** A folder with neither an index nor any `*.safetensors` file. */
export class NoWeights extends CheckpointError {}
/** A shard plan that cannot be written (unassigned tensor, empty or out-of-range shard). */
export class ShardPlanError extends CheckpointError {}
