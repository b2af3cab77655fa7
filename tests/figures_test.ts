import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { filterGrid, loadModel } from "../mod.ts";
import { normalizeFilters } from "../src/figures/mod.ts";

const TINY = new URL("./fixtures/tiny_vit", import.meta.url).pathname;

Deno.test("normalizeFilters() scales each filter to [0, 1] on its own", async () => {
  const w = new Float32Array([0, 2, 4, 6, 8, 10, 3, 3, 3, 3, 3, 3]);
  const f = normalizeFilters(w, 4, 1); // four filters of 3×1×1
  assertEquals([...f], [0, 0.5, 1, 0, 0.5, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  await assertRejects(
    () => normalizeFilters(w, 3, 1),
    RangeError,
    "3x3x1x1 = 9",
  );
});

Deno.test("filterGrid() lays out every patch filter of the tiny model", async () => {
  const model = await loadModel(TINY, {
    weights: "fixture",
    backend: "native",
  });
  const img = filterGrid(model, { columns: 4, scale: 2, gap: 1 });
  // 16 filters of 3×8×8 at scale 2 in a 4×4 grid with 1-pixel gaps
  assertEquals([img.height, img.width], [4 * 16 + 5, 4 * 16 + 5]);
  const plane = img.width * img.height;
  const w = model.tensor("conv_proj.weight");
  // filter 5 sits at row 1, column 1; its pixels are its weights min-max normalized
  const f = w.subarray(5 * 192, 6 * 192);
  const lo = Math.min(...f), hi = Math.max(...f);
  for (const [c, y, x] of [[0, 0, 0], [1, 3, 7], [2, 7, 2]]) {
    const want = (f[(c * 8 + y) * 8 + x] - lo) / (hi - lo);
    const got =
      img.data[c * plane + (1 + 17 + 2 * y) * img.width + (1 + 17 + 2 * x)];
    assert(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  }
  await assertRejects(
    () => filterGrid(model, { columns: 0 }),
    RangeError,
    'columns "0"',
  );
  // A typo in --scale must not allocate gigabytes: refused before drawing.
  await assertRejects(
    () => filterGrid(model, { columns: 4, scale: 5000 }),
    RangeError,
    'Invalid figure size "160005×160005": 160005×160005 px exceeds the limit of 40 megapixels',
  );
  await model.release();
});
