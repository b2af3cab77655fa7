/**
 * src/figures/: figures for experiment reports — line plots, image montages
 * and patch-filter grids as images, and the plots and montages also as SVG
 * (`linePlotSvg`, `montageSvg`). Drawing primitives, the bitmap font and the
 * pens that draw either output are internal (`_canvas.ts`, `_font.ts`,
 * `_ticks.ts`, `_pen.ts`).
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
  linePlotSvg,
  type PlotHLine,
  type PlotSeries,
} from "./plot.ts";
export {
  montage,
  type MontageOptions,
  montageSvg,
  sideBySide,
} from "./montage.ts";
export { missingGlyphs } from "./_font.ts";
