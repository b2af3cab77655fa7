/**
 * What the runtime must know about an architecture family, as manifest data:
 * the manifest's `runtime` object, written by the converter's family module
 * (`tools/vitrep_convert/<family>.py`, its `runtime_fields`). No code of the
 * runtime branches on `architecture`; it reads these fields.
 *
 * Manifests of older converters lack `runtime`: {@linkcode legacyRuntime}
 * derives it once, in `parseManifest`, with the behaviour the runtime had
 * before the field existed. That is the one place where family names appear.
 *
 * @module
 */

import type { Checker, Json } from "./_check.ts";

/** How the blocks of a chain may be picked (`forward`'s `blocks`). */
export type BlockChain = "any" | "stage";

/** The manifest's `runtime` object: family facts the runtime acts on. */
export interface ManifestRuntime {
  /**
   * `any`: any increasing list of blocks chains (every block keeps the
   * token shape). `stage`: a block takes the output of the stem or of a
   * block of the stage it follows in the model (layer names `stage.i`, as a
   * ResNet's `layer2.3`), since stages change the shape.
   */
  block_chain: BlockChain;
  /**
   * Threads for the wasm backend when none is asked for (null: the backend's
   * default). ResNets: 1 (onnxruntime-web 1.30 with threads can hang in
   * full-size ResNet graphs with external data; one thread never hung).
   */
  wasm_threads: number | null;
  /**
   * How a grid names a layer column: `number` (`layer 7`) or `name` (the
   * layer's own name and its number, `layer2.3 (7)`).
   */
  layer_labels: "number" | "name";
  /**
   * The converter's arguments that rebuild this architecture, before
   * `--weights` (e.g. `["vit_b_32"]`, or a custom model with its `--arch`,
   * `--image-size`, `--mean` and `--std`): error messages print the command
   * that converts more weights into the folder.
   */
  convert_args: string[];
  /** Whether torchvision names its weight sets (`IMAGENET1K_V1`, …) and downloads them. */
  torchvision_weights: boolean;
  /** What labels call a block: `encoder` (`encoder 7`) or `block`. */
  block_word: string;
  /**
   * What each removable part of a block is (the part's switch name without
   * `use_`), for labels: e.g. `{"attn": "token mixing", "res1": "residual 1"}`.
   */
  part_names: Record<string, string>;
}

/** What the parts of a pre-norm transformer-style block are called (older manifests). */
const TOKEN_PARTS: Readonly<Record<string, string>> = {
  ln1: "layer norm 1",
  attn: "attention",
  res1: "residual 1",
  ln2: "layer norm 2",
  mlp: "MLP",
  res2: "residual 2",
};

/** `block_word` and `part_names` of an older manifest, by its architecture. */
function legacyLabels(
  o: Json,
): Pick<ManifestRuntime, "block_word" | "part_names"> {
  const a = o.architecture;
  return {
    block_word: a === "vit" || a === "ffvit" ? "encoder" : "block",
    part_names: a === "resnet"
      ? { bn: "batch norms", res1: "shortcut", res2: "shortcut" }
      : a === "vit"
      ? { ...TOKEN_PARTS }
      : {
        ...TOKEN_PARTS,
        attn: a === "ffvit" ? "token feed-forward" : "token mixing",
        mlp: "channel MLP",
      },
  };
}

/** Model names the converter builds from `--arch` (older manifests only). */
const LEGACY_CUSTOM = ["custom", "mixer", "ffvit", "resnet_custom"];

/** The converter's `--arch` text of a custom model of an older manifest. */
function legacyArch(o: Json): string {
  const t = o.tensors as Record<string, { shape: number[] }>;
  if (o.architecture === "vit") {
    return `patch=${o.patch_size},layers=${o.num_layers},heads=${o.num_heads},hidden=${o.hidden_dim},mlp=${o.mlp_dim},classes=${o.num_classes}`;
  }
  if (o.architecture === "resnet") {
    const planes = (o.stages as number[]).map((_, i) =>
      t[`layer${i + 1}.0.conv1.weight`]?.shape[0]
    );
    return `layers=${(o.stages as number[]).join(":")},planes=${
      planes.join(":")
    },stem=${
      t["conv1.weight"]?.shape[0]
    },classes=${o.num_classes},block=${o.block}`;
  }
  return `patch=${o.patch_size},layers=${o.num_layers},hidden=${o.hidden_dim},tokens_mlp=${o.tokens_mlp_dim},channels_mlp=${o.channels_mlp_dim},classes=${o.num_classes},order=${o.block_order}`;
}

/**
 * The `runtime` of a manifest that lacks it (older converters), derived from
 * its architecture and fields: today's behaviour, written down once.
 *
 * @param o The manifest, already checked but for `runtime`.
 * @returns The derived `runtime`.
 *
 * @example
 * ```ts
 * import { legacyRuntime } from "./family.ts";
 * import assert from "node:assert/strict";
 * const r = legacyRuntime({ name: "resnet50", architecture: "resnet" });
 * assert.equal(r.block_chain, "stage");
 * assert.deepEqual(r.convert_args, ["resnet50"]);
 * ```
 */
export function legacyRuntime(o: Json): ManifestRuntime {
  const resnet = o.architecture === "resnet";
  const name = String(o.name);
  const input = o.input as { mean: number[]; std: number[] } | undefined;
  const custom = LEGACY_CUSTOM.includes(name);
  return {
    block_chain: resnet ? "stage" : "any",
    wasm_threads: resnet ? 1 : null,
    layer_labels: resnet ? "name" : "number",
    convert_args: custom
      ? [
        name,
        "--arch",
        legacyArch(o),
        "--image-size",
        String(o.image_size),
        "--mean",
        input?.mean.join(",") ?? "",
        "--std",
        input?.std.join(",") ?? "",
      ]
      : [name],
    torchvision_weights: /^(vit_[bhl]_\d+|resnet\d+)$/.test(name),
    ...legacyLabels(o),
  };
}

/**
 * Checks a manifest's `runtime` object (every field required, but
 * `block_word` and `part_names`, which converters before them did not write:
 * those are derived as for an older manifest).
 *
 * @param c The manifest's checker.
 * @param v The `runtime` value.
 * @returns It, typed.
 * @throws {TypeError} If a field is missing or mistyped.
 *
 * @example
 * ```ts
 * import { checkRuntime, legacyRuntime } from "./family.ts";
 * import { Checker } from "./_check.ts";
 * import assert from "node:assert/strict";
 * const r = legacyRuntime({ name: "vit_b_32", architecture: "vit" });
 * assert.deepEqual(checkRuntime(new Checker("m.json"), r, {}), r);
 * const { block_word: _, ...older } = r;
 * assert.equal(checkRuntime(new Checker("m.json"), older, { architecture: "vit" }).block_word, "encoder");
 * assert.throws(() => checkRuntime(new Checker("m.json"), { ...r, block_chain: "x" }, {}), /runtime\.block_chain must be one of any, stage/);
 * ```
 */
export function checkRuntime(
  c: Checker,
  v: unknown,
  manifest: Json,
): ManifestRuntime {
  const o = { ...c.object(v, "runtime") };
  c.oneOf(o.block_chain, "runtime.block_chain", ["any", "stage"]);
  if (o.wasm_threads !== null) {
    c.integer(o.wasm_threads, "runtime.wasm_threads", 1);
  }
  c.oneOf(o.layer_labels, "runtime.layer_labels", ["number", "name"]);
  const args = c.strings(o.convert_args, "runtime.convert_args");
  if (args.length === 0) {
    c.expect("runtime.convert_args", "at least the model name", args);
  }
  c.boolean(o.torchvision_weights, "runtime.torchvision_weights");
  const older = legacyLabels(manifest);
  if (o.block_word === undefined) o.block_word = older.block_word;
  c.string(o.block_word, "runtime.block_word");
  if (o.part_names === undefined) o.part_names = older.part_names;
  c.record(o.part_names, "runtime.part_names", (n, p) => c.string(n, p));
  return o as unknown as ManifestRuntime;
}
