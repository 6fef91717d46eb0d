// Why a checkpoint's MoE tensors cannot be read as one of the registry's layouts. Each
// names the layer and the tensors involved, with what was expected against what was found.
import { MoeConformanceError } from '../errors.js';

export class LayoutError extends MoeConformanceError {}

/** config.json names a model_type the registry does not describe. */
export class UnknownModelType extends LayoutError {}

/** config.json names a known MoE model_type whose blocks the canonical form cannot hold (types/refused.ts): refused with the reason. */
export class RefusedModelType extends UnknownModelType {}

/** A config field the layout needs is absent or not of the right kind. */
export class LayoutConfigError extends LayoutError {}

/** A tensor the layout requires (an expert's projection, the router, ...) is absent. */
export class MissingTensor extends LayoutError {}

/** A layer stores some tensors in one layout and some in another (e.g. per-expert and fused forms of one expert). */
export class MixedLayout extends LayoutError {}

/** A tensor names an expert id that config.json does not have (id >= E). */
export class ExpertOutOfRange extends LayoutError {}

/** A tensor under an MoE module that no layout recognises: refused rather than ignored. */
export class UnrecognisedTensor extends LayoutError {}

/** A tensor's shape does not fit the dimensions of config.json. */
export class ShapeMismatch extends LayoutError {}

/** Tensors that form one canonical tensor disagree on dtype, or the dtype cannot be cut by bytes. */
export class DtypeMismatch extends LayoutError {}
