/**
 * vitrep: what vision transformers keep of their input. Models run as chains of
 * per-block ONNX graphs with exported vector-Jacobian products, so gradient
 * descent on the image works without autograd.
 *
 * This entry point exports the core: loading a model, the objectives and
 * their weighted sums ({@linkcode sum}, {@linkcode scaled}, e.g. a feature
 * match plus a {@linkcode totalVariation} penalty), the two procedures (layer
 * representation by {@linkcode invert}, input generation by
 * {@linkcode generate}) and their step, image metrics, image files in and
 * out, and the figures a report needs. Everything else is in the subpath
 * exports `./model`, `./optimize`, `./io` and `./figures`. Run as a program,
 * it is the command line (`deno run -A mod.ts --help`).
 *
 * @example Match a layer's output from a perturbed image
 * ```ts
 * import assert from "node:assert/strict";
 * import { featureMatch, loadModel } from "./mod.ts";
 *
 * // Untrained ViT-B/32: weights drawn in TypeScript from torchvision's init.
 * const model = await loadModel("weights/vit_b_32", { weights: "untrained", seed: 0 });
 * const x = new Float32Array(3 * 224 * 224).fill(0.5); // [1, 3, H, W]
 * const target = await model.forward(x, { layer: 1 });
 * const { value, grad } = await model.inputGradient(x.map((v) => v * 0.9), featureMatch(1, target));
 * assert.ok(value > 0 && grad.length === x.length);
 * ```
 *
 * @module
 */

// Models: loading, the forward/VJP chain, manifests and layer names.
export {
  type Ablation,
  type Architecture,
  ARCHITECTURES,
  type BackendName,
  type BlockPart,
  type FamilyManifests,
  type ForwardOptions,
  type Gradient,
  type GraphEntry,
  type GraphParam,
  type GraphTiming,
  type ImageInput,
  isFamily,
  type Layer,
  type LayerEntry,
  layerIndex,
  loadModel,
  type LoadOptions,
  type Manifest,
  type ManifestCommon,
  type ManifestInput,
  type MixerManifest,
  Model,
  type Objective,
  parseManifest,
  type ResnetManifest,
  resolveClass,
  type Swap,
  type Tensor,
  type TensorEntry,
  VerifyCache,
  type VitManifest,
  type WeightSet,
} from "./src/model/mod.ts";

// Objectives and the procedures built on the optimization loop.
export {
  type AnyObjective,
  classLogit,
  type ClassLogitOptions,
  type Differentiable,
  DivergedError,
  type DivergenceKind,
  featureMatch,
  type FeatureMatchOptions,
  generate,
  GENERATE_DEFAULTS,
  type GenerateOptions,
  type GenerateResult,
  type GenerateRow,
  type GenerateStepInfo,
  gradientStep,
  type GradientStepOptions,
  type GradientStepResult,
  type ImageObjective,
  invert,
  INVERT_DEFAULTS,
  invertBatch,
  type InvertBatchOptions,
  type InvertOptions,
  type InvertResult,
  named,
  type ObjectiveSum,
  type Part,
  type PartValue,
  psnr,
  scaled,
  type Schedule,
  ssim,
  type StepInfo,
  sum,
  type Term,
  totalVariation,
  type TotalVariationOptions,
  type TraceRow,
  type Transform,
} from "./src/optimize/mod.ts";

// Images in and out.
export {
  fitToSize,
  type ImageTensor,
  MAX_IMAGE_ASPECT,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_PIXELS,
  readImage,
  type ReadImageOptions,
  writePng,
} from "./src/io/mod.ts";

// Figures.
export {
  type Color,
  filterGrid,
  type FilterGridOptions,
  linePlot,
  type LinePlotOptions,
  linePlotSvg,
  montage,
  type MontageOptions,
  montageSvg,
  type PlotHLine,
  type PlotSeries,
} from "./src/figures/mod.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
