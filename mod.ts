/**
 * vitrep: what vision transformers keep of their input. Models run as chains of
 * per-block ONNX graphs with exported vector-Jacobian products, so gradient
 * descent on the image works without autograd.
 *
 * @example
 * ```ts
 * import { featureMatch, loadModel } from "./mod.ts";
 * const model = await loadModel("weights/vit_b_32", { weights: "untrained", seed: 0 });
 * const x = new Float32Array(3 * 224 * 224).fill(0.5);
 * const target = await model.forward(x, { layer: 4 });
 * const { value, grad } = await model.inputGradient(x.map((v) => v * 0.9), featureMatch(4, target));
 * ```
 *
 * @module
 */
export * from "./src/model.ts";
export * from "./src/objective.ts";
export * from "./src/backend.ts";
export * from "./src/image.ts";
export * from "./src/safetensors.ts";
export * from "./src/rng.ts";
export * from "./src/transform.ts";
export * from "./src/render.ts";
export * from "./src/classes.ts";
export * from "./src/plot.ts";
export * from "./src/npy.ts";
export * from "./src/figures.ts";
export * from "./src/metrics.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli.ts");
  Deno.exit(await main(Deno.args));
}
