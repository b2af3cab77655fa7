// A grid as typed values (src/grid/spec.ts) and the commands a driver runs
// (src/grid/invocation.ts): the text they write is what the command line
// reads back into the same values.
import { assert, assertEquals } from "./_assert.ts";
import {
  gridArgs,
  invocationArgs,
  REMOVE_NAME_LIST,
  type RowChanges,
  type RowSpec,
  rowText,
} from "../src/grid/mod.ts";
import { parseVariant } from "../src/cli/grid_args.ts";
import { REMOVE_NAMES } from "../src/run/model_options.ts";
import { isUsage } from "../src/run/settings.ts";

/** Rows covering every change a row may make, with the kind of grid they belong to. */
const ROWS: readonly (readonly [RowSpec, "invert" | "generate"])[] = [
  [{ label: "intact", changes: {} }, "invert"],
  [{
    label: "no LN, seed 2",
    changes: { remove: [{ parts: ["layernorm"] }], seed: 2 },
  }, "invert"],
  [{
    label: "two removals",
    changes: {
      weights: "untrained",
      remove: [
        { parts: ["residual", "attention"], layers: [[1, 4]] },
        { parts: ["mlp"], layers: [[3, 3], [7, 7]] },
      ],
    },
  }, "invert"],
  [{
    label: "shared layers",
    changes: {
      remove: [{ parts: ["ln1"], layers: "all" }, {
        parts: ["bn"],
        layers: "all",
      }],
    },
  }, "invert"],
  [{
    label: "grid's removal, own layers",
    changes: { removeLayers: [[[2, 5]]] },
  }, "invert"],
  [{
    label: "swaps and schedules",
    changes: {
      positionEmbedding: false,
      swaps: [{ part: "conv_proj", weights: "fixture" }, {
        part: "encoder.layers.0.ln_1",
        weights: "untrained:3",
      }],
      steps: 105000,
      lr: { start: 0.001, end: 0.0001 },
      sigma: { start: 0.5, end: 0.5 },
      kernelSize: 5,
      normalize: false,
      onlyLayer: true,
      loss: "cosine",
    },
  }, "invert"],
  [{
    label: "trained, lr ×250",
    changes: { lr: { start: 5, end: 0.5 }, normalize: true },
  }, "generate"],
  [{
    label: "generate settings",
    changes: { constant: 0.25, jitterAfter: 220, canvas: 86, seed: 1 },
  }, "generate"],
];

Deno.test("RowSpec → rowText → the command line's --variant → the same RowSpec", () => {
  for (const [row, mode] of ROWS) {
    const text = rowText(row.changes);
    const back = parseVariant(`${row.label}=${text}`, mode);
    assertEquals(back.row, row, text);
    assertEquals(back.text, text);
    // and the text is stable: written again, it is the same
    assertEquals(rowText(back.row.changes), text);
  }
});

Deno.test("rowText: the essay's forms, in their fixed order", () => {
  const cases: readonly (readonly [RowChanges, string])[] = [
    [
      { weights: "untrained", remove: [{ parts: ["mlp"] }], seed: 1 },
      "--weights untrained --remove mlp --seed 1",
    ],
    [
      { remove: [{ parts: ["residual"], layers: [[1, 4]] }], seed: 2 },
      "--remove residual --remove-layers 1-4 --seed 2",
    ],
    [{
      remove: [{ parts: ["layernorm"] }],
      lr: { start: 0.0025, end: 0.00025 },
    }, "--remove layernorm --lr 0.0025:0.00025"],
    [{
      swaps: [{ part: "conv_proj", weights: "IMAGENET1K_V1" }],
      steps: 105000,
      seed: 1,
    }, "--swap conv_proj=IMAGENET1K_V1 --steps 105000 --seed 1"],
    [{ lr: { start: 0.0015, end: 0.0015 } }, "--lr 0.0015"],
    [{ weights: "my set" }, "--weights 'my set'"],
  ];
  for (const [c, text] of cases) assertEquals(rowText(c), text);
});

Deno.test("the typed names of --remove are the command line's", () => {
  assertEquals([...REMOVE_NAME_LIST].sort(), Object.keys(REMOVE_NAMES).sort());
});

Deno.test("parseVariant: a bad value or a grid-wide option is a usage error naming the row", () => {
  for (
    const [v, re] of [
      ["a=--seed x", /--variant "a": Invalid --seed "x"/],
      ["b=--remove nothing", /--variant "b": Invalid --remove "nothing"/],
      ["c=--swap conv_proj", /--variant "c": Invalid --swap "conv_proj"/],
      ["d=--lr fast", /--variant "d": .*--lr/],
      ["e=--layer 1", /--variant "e": Invalid --layer in a row/],
      ["=--seed 1", /Invalid --variant "=--seed 1": expected LABEL=OPTIONS/],
    ] as const
  ) {
    try {
      parseVariant(v, "invert");
      throw new Error(`no error for ${v}`);
    } catch (err) {
      assert(isUsage(err), `${v}: ${err}`);
      assert(
        re.test((err as Error).message),
        `${v}: ${(err as Error).message}`,
      );
    }
  }
});

Deno.test("gridArgs: the grid's command line; a label with = is refused", () => {
  const grid = {
    model: "weights/fmnist_vit",
    weights: "trained",
    columns: { classes: [1, 7, 9] },
    steps: 720,
    seed: 0,
    rows: [{ label: "trained", changes: {} }, {
      label: "trained, lr ×250",
      changes: { lr: { start: 5, end: 0.5 } },
    }],
    settings: { jitterAfter: 220, canvas: 86 },
    quiet: true,
    out: "/o/generation",
  };
  assertEquals(
    gridArgs(grid).join(" "),
    "--model weights/fmnist_vit --weights trained --classes 1,7,9 --steps 720 --seed 0 --variant trained= --variant trained, lr ×250=--lr 5:0.5 --jitter-after 220 --canvas 86 --quiet --out /o/generation",
  );
  assertEquals(
    invocationArgs({ command: "grid", grid, plan: true }).slice(-3),
    ["--out", "/o/generation", "--plan"],
  );
  let err: unknown;
  try {
    gridArgs({ ...grid, rows: [{ label: "a=b", changes: {} }] });
  } catch (e) {
    err = e;
  }
  assert(
    err instanceof TypeError && /Invalid row label "a=b"/.test(err.message),
  );
});

Deno.test("invocationArgs: every command a driver runs", () => {
  assertEquals(
    invocationArgs({ command: "grid-collect", out: "/g", quiet: true }),
    ["grid", "--out", "/g", "--collect", "--quiet"],
  );
  assertEquals(invocationArgs({ command: "grid-cell", out: "/g", cell: 2 }), [
    "grid",
    "--out",
    "/g",
    "--cell",
    "2",
  ]);
  assertEquals(
    invocationArgs({
      command: "forward",
      model: "m",
      weights: "w",
      image: "i.png",
      layer: "logits",
      top: 10,
      out: "/j",
    }),
    [
      "forward",
      "--model",
      "m",
      "--weights",
      "w",
      "--image",
      "i.png",
      "--layer",
      "logits",
      "--top",
      "10",
      "--out",
      "/j",
    ],
  );
  assertEquals(
    invocationArgs({
      command: "condition",
      model: "m",
      layer: 1,
      remove: [{ parts: ["residual", "mlp", "ln2"], layers: [[1, 1]] }],
      seed: 2,
      image: "c.png",
      iterations: 40,
      out: "/c",
    }).join(" "),
    "condition --model m --layer 1 --remove residual,mlp,ln2 --remove-layers 1 --seed 2 --image c.png --iterations 40 --out /c",
  );
});
