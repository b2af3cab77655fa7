/**
 * `deno task profile`: where one gradient step's time goes (the step
 * `deno task bench` times: forward to block L, an L2 feature loss, the VJP
 * chain back to the image).
 *
 * - Per graph, on each backend: the wall milliseconds per step of each graph
 *   kind (the stem, the blocks' forward and VJP graphs, summed over the
 *   positions that share a graph), and the ratio between the first two
 *   backends — the table that says which graphs make a backend slower.
 * - Per node type, on `native` only (onnxruntime-web does not hand its
 *   profiles out): onnxruntime's own profile — time per step, share of the
 *   step, nodes per step, and for the GEMMs (MatMul, FusedMatMul, Gemm) the
 *   GFLOP/s they reach. Profiling adds a few microseconds per node, so read
 *   the shares, not the absolute times.
 *
 *     deno task profile [--model weights/vit_b_32] [--weights untrained]
 *                       [--layer 12] [--batch 1] [--backends native,wasm]
 *                       [--repeats 5] [--threads 2] [--out FILE.md]
 *
 * Progress goes to stderr, the markdown report to stdout (and to --out).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type GraphTiming, loadModel } from "../mod.ts";
import { BACKEND_NAMES, type BackendName } from "../src/model/mod.ts";
import { median, positiveInt as positive, timeStep } from "./_bench.ts";
import { listDir } from "../src/io/mod.ts";

/** One backend's timings: the step's median and the graph timings of the timed steps. */
export interface BackendProfile {
  /** Backend name. */
  backend: string;
  /** Median step, milliseconds. */
  stepMs: number;
  /** Mean step, milliseconds (the graph times are means too). */
  meanMs: number;
  /** Graph timings over the timed steps only (warm-up subtracted). */
  graphs: GraphTiming[];
  /** Node types, for `native`; null elsewhere. */
  nodes: NodeRow[] | null;
}

/** A node type's share of a step, from onnxruntime's profile. */
export interface NodeRow {
  /** ONNX op type. */
  op: string;
  /** Milliseconds per step. */
  ms: number;
  /** Nodes run per step. */
  nodes: number;
  /** Floating-point operations per step (GEMMs only; 0 elsewhere). */
  flops: number;
}

/**
 * The graph timings accumulated between two snapshots of `Model.timings()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timingsBetween } from "./profile.ts";
 * const before = [{ position: 0, graph: "stem.fwd", runs: 2, ms: 5 }];
 * const after = [
 *   { position: 0, graph: "stem.fwd", runs: 5, ms: 11 },
 *   { position: 0, graph: "stem.vjp", runs: 3, ms: 6 },
 * ];
 * assert.deepEqual(timingsBetween(before, after), [
 *   { position: 0, graph: "stem.fwd", runs: 3, ms: 6 },
 *   { position: 0, graph: "stem.vjp", runs: 3, ms: 6 },
 * ]);
 * ```
 */
export function timingsBetween(
  before: readonly GraphTiming[],
  after: readonly GraphTiming[],
): GraphTiming[] {
  const key = (t: GraphTiming) => `${t.position}:${t.graph}`;
  const old = new Map(before.map((t) => [key(t), t]));
  return after.map((t) => {
    const o = old.get(key(t));
    return { ...t, runs: t.runs - (o?.runs ?? 0), ms: t.ms - (o?.ms ?? 0) };
  }).filter((t) => t.runs > 0);
}

/**
 * Milliseconds per step of each graph kind: every position's time per run,
 * summed over the positions that share a graph file, in chain order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { perGraph } from "./profile.ts";
 * const rows = perGraph([
 *   { position: 0, graph: "stem.fwd", runs: 2, ms: 4 },
 *   { position: 1, graph: "block.fwd", runs: 2, ms: 10 },
 *   { position: 2, graph: "block.fwd", runs: 2, ms: 12 },
 * ]);
 * assert.deepEqual(rows, [
 *   { graph: "stem.fwd", positions: 1, ms: 2 },
 *   { graph: "block.fwd", positions: 2, ms: 11 },
 * ]);
 * ```
 */
export function perGraph(
  timings: readonly GraphTiming[],
): { graph: string; positions: number; ms: number }[] {
  const rows = new Map<
    string,
    { graph: string; positions: number; ms: number }
  >();
  for (const t of timings) {
    const row = rows.get(t.graph) ?? { graph: t.graph, positions: 0, ms: 0 };
    row.positions++;
    row.ms += t.ms / t.runs;
    rows.set(t.graph, row);
  }
  return [...rows.values()];
}

interface TraceEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}

/** 2·M·N·K of a GEMM node from its profiled shapes (K: the first input's last axis). */
function gemmFlops(e: TraceEvent): number {
  const a = Object.values(e.args?.input_type_shape?.[0] ?? {})[0];
  const y = Object.values(e.args?.output_type_shape?.[0] ?? {})[0];
  if (!a?.length || !y) return 0;
  return 2 * y.reduce((p, d) => p * d, 1) * a[a.length - 1];
}

const GEMMS = new Set(["MatMul", "FusedMatMul", "Gemm"]);

/**
 * Node types per step from onnxruntime profiles (one file per session, as
 * `BackendOptions.profile` writes them): each session's node times are divided
 * by its own number of runs, so sessions run a different number of times (the
 * forward graphs also compute the target) still add up to one step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nodeRows } from "./profile.ts";
 * const session = [
 *   { cat: "Session", name: "model_run", dur: 30 },
 *   { cat: "Session", name: "model_run", dur: 30 },
 *   { cat: "Node", name: "mm_kernel_time", dur: 40, args: { op_name: "MatMul",
 *     input_type_shape: [{ float: [1, 50, 64] }], output_type_shape: [{ float: [1, 50, 32] }] } },
 *   { cat: "Node", name: "mm_kernel_time", dur: 40, args: { op_name: "MatMul",
 *     input_type_shape: [{ float: [1, 50, 64] }], output_type_shape: [{ float: [1, 50, 32] }] } },
 * ];
 * const [row] = nodeRows([session]);
 * assert.deepEqual(row, { op: "MatMul", ms: 0.04, nodes: 1, flops: 2 * 50 * 32 * 64 });
 * ```
 */
export function nodeRows(sessions: readonly TraceEvent[][]): NodeRow[] {
  const rows = new Map<string, NodeRow>();
  for (const events of sessions) {
    const runs = events.filter((e) =>
      e.cat === "Session" && e.name === "model_run"
    ).length;
    if (runs === 0) continue;
    for (const e of events) {
      const op = e.args?.op_name;
      if (e.cat !== "Node" || !op || !e.name?.endsWith("_kernel_time")) {
        continue;
      }
      const row = rows.get(op) ?? { op, ms: 0, nodes: 0, flops: 0 };
      row.ms += (e.dur ?? 0) / 1000 / runs;
      row.nodes += 1 / runs;
      if (GEMMS.has(op)) row.flops += gemmFlops(e) / runs;
      rows.set(op, row);
    }
  }
  return [...rows.values()].sort((a, b) => b.ms - a.ms);
}

/** Options of {@linkcode profileStep}. */
export interface ProfileOptions {
  /** Model folder or URL. */
  model: string;
  /** Weight set (default "untrained"). */
  weights?: string;
  /** Block whose output the loss compares. */
  layer: number;
  /** Images per step. */
  batch: number;
  /** Timed steps. */
  repeats: number;
  /** Intra-op threads (default: all cores). */
  threads?: number;
}

/**
 * Profiles the step on one backend: its median, the graph timings of the timed
 * steps, and on `native` onnxruntime's node profile (written to a temporary
 * folder, read and removed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { profileStep } from "./profile.ts";
 * const p = await profileStep("native", {
 *   model: "tests/fixtures/tiny_vit", weights: "fixture", layer: 2, batch: 1, repeats: 2,
 * });
 * assert.ok(p.nodes!.some((n) => n.op === "MatMul" && n.flops > 0));
 * assert.deepEqual(p.graphs.map((g) => g.runs), [3, 2, 3, 2, 3, 2]); // fwd, vjp per position
 * ```
 */
export async function profileStep(
  backend: BackendName,
  options: ProfileOptions,
): Promise<BackendProfile> {
  const dir = backend === "native" ? await Deno.makeTempDir() : null;
  try {
    const model = await loadModel(options.model, {
      backend,
      weights: options.weights ?? "untrained",
      threads: options.threads,
      timing: true,
      profile: dir ? `${dir}/session` : undefined,
    });
    const step = { layer: options.layer, batch: options.batch };
    let ms: number[], graphs: GraphTiming[];
    try {
      await timeStep(model, { ...step, repeats: 0, warmup: 2 });
      const before = model.timings();
      ms = await timeStep(model, {
        ...step,
        repeats: options.repeats,
        warmup: 0,
      });
      graphs = timingsBetween(before, model.timings());
    } finally {
      await model.release(); // writes the profiles
    }
    return {
      backend: model.backend,
      stepMs: median(ms),
      meanMs: ms.reduce((a, b) => a + b, 0) / ms.length,
      graphs,
      nodes: dir ? nodeRows(await readProfiles(dir)) : null,
    };
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true });
  }
}

async function readProfiles(dir: string): Promise<TraceEvent[][]> {
  const out: TraceEvent[][] = [];
  for (const e of await listDir(dir)) {
    if (e.isFile && e.name.endsWith(".json")) {
      out.push(JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`)));
    }
  }
  return out;
}

const f1 = (x: number) => x.toFixed(1);

/**
 * The markdown report: the graph table across backends (ratio of the second
 * to the first), then the node table of each backend that has one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { report } from "./profile.ts";
 * const md = report("tiny", 1, 1, [
 *   { backend: "native", stepMs: 3, meanMs: 3, nodes: null, graphs: [{ position: 0, graph: "stem.fwd", runs: 1, ms: 1 }] },
 *   { backend: "wasm", stepMs: 9, meanMs: 9, nodes: null, graphs: [{ position: 0, graph: "stem.fwd", runs: 1, ms: 4 }] },
 * ]);
 * assert.match(md, /\| stem\.fwd \| 1 \| 1\.0 \| 4\.0 \| 4\.00x \|/);
 * ```
 */
export function report(
  model: string,
  layer: number,
  batch: number,
  profiles: readonly BackendProfile[],
): string {
  const names = profiles.map((p) => p.backend);
  const ratio = profiles.length > 1 ? [`${names[1]}/${names[0]}`] : [];
  const lines = [
    `## ${model}, layer ${layer}, batch ${batch}: ${
      profiles.map((p) => `${p.backend} ${f1(p.stepMs)} ms`).join(", ")
    } per step (median)`,
    "",
    `| graph | positions | ${
      [...names.map((n) => `${n} ms/step`), ...ratio].join(" | ")
    } |`,
    `| --- | --- | ${names.map(() => "---").join(" | ")} |${
      ratio.length ? " --- |" : ""
    }`,
  ];
  const tables = profiles.map((p) => perGraph(p.graphs));
  const rows = (ms: number[]) =>
    ms.map(f1).join(" | ") +
    (ms.length > 1 ? ` | ${(ms[1] / ms[0]).toFixed(2)}x |` : " |");
  for (const [i, row] of tables[0].entries()) {
    const ms = tables.map((t) =>
      t.find((r) => r.graph === row.graph)?.ms ?? NaN
    );
    lines.push(`| ${row.graph} | ${tables[0][i].positions} | ${rows(ms)}`);
  }
  const inGraphs = tables.map((t) => t.reduce((s, r) => s + r.ms, 0));
  lines.push(`| all graphs | | ${rows(inGraphs)}`);
  lines.push(
    `| outside the graphs (mean step − all graphs) | | ${
      profiles.map((p, i) => f1(p.meanMs - inGraphs[i])).join(" | ")
    } |${profiles.length > 1 ? " |" : ""}`,
  );
  for (const p of profiles) {
    if (!p.nodes) continue;
    const total = p.nodes.reduce((s, r) => s + r.ms, 0);
    lines.push(
      "",
      `### ${p.backend}: node types (onnxruntime profile; ${
        f1(total)
      } ms of kernels per step with profiling on)`,
      "",
      "| node type | ms/step | share | nodes/step | GFLOP/s |",
      "| --- | --- | --- | --- | --- |",
    );
    for (const r of p.nodes.filter((r) => r.ms >= total / 1000)) {
      const rate = r.flops > 0 ? f1(r.flops / r.ms / 1e6) : "";
      lines.push(
        `| ${r.op} | ${r.ms.toFixed(2)} | ${
          (100 * r.ms / total).toFixed(1)
        }% | ${Math.round(r.nodes)} | ${rate} |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

async function main(args: string[]): Promise<number> {
  const { values: opts } = parseArgs({
    args,
    options: {
      model: { type: "string", default: "weights/vit_b_32" },
      weights: { type: "string", default: "untrained" },
      layer: { type: "string", default: "12" },
      batch: { type: "string", default: "1" },
      backends: { type: "string", default: "native,wasm" },
      repeats: { type: "string", default: "5" },
      threads: { type: "string" },
      out: { type: "string" },
    },
  });
  const backends = opts.backends.split(",");
  for (const b of backends) {
    if (!BACKEND_NAMES.includes(b as BackendName) || b === "auto") {
      throw new RangeError(
        `Invalid --backends "${b}": expected names from native, wasm, webgpu`,
      );
    }
  }
  const options: ProfileOptions = {
    model: opts.model,
    weights: opts.weights,
    layer: positive("layer", opts.layer),
    batch: positive("batch", opts.batch),
    repeats: positive("repeats", opts.repeats),
    // default: loadModel's (all cores; one for a ResNet on wasm, see src/model/model.ts)
    threads: opts.threads === undefined
      ? undefined
      : positive("threads", opts.threads),
  };
  const profiles: BackendProfile[] = [];
  for (const b of backends as BackendName[]) {
    console.error(`profiling ${opts.model} layer ${options.layer} on ${b}…`);
    profiles.push(await profileStep(b, options));
  }
  const name = opts.model.replace(/\/+$/, "").split("/").pop()!;
  const md = report(name, options.layer, options.batch, profiles);
  if (opts.out) await Deno.writeTextFile(opts.out, md);
  console.log(md);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    const usage = err instanceof RangeError || err instanceof TypeError;
    console.error(`profile: ${err instanceof Error ? err.message : err}`);
    Deno.exit(usage ? 2 : 1);
  }
}
