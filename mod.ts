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
export * from "./src/model/mod.ts";
export * from "./src/optimize/mod.ts";
export * from "./src/io/mod.ts";
export * from "./src/figures/mod.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
