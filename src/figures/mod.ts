/**
 * src/figures/: raster figures for experiment reports — line plots, image
 * montages and patch-filter grids. Drawing primitives and the bitmap font are
 * internal (`_canvas.ts`, `_font.ts`, `_ticks.ts`).
 *
 * @module
 */
export {
  filterGrid,
  type FilterGridOptions,
  normalizeFilters,
} from "./filters.ts";
export {
  type Color,
  linePlot,
  type LinePlotOptions,
  type PlotHLine,
  type PlotSeries,
} from "./plot.ts";
export { montage, type MontageOptions, sideBySide } from "./montage.ts";
export { missingGlyphs } from "./_font.ts";
