/**
 * src/io/: everything this folder exports, for the other folders and mod.ts.
 *
 * @module
 */
export * from "./image.ts";
export * from "./jpeg.ts";
export * from "./png.ts";
export * from "./npy.ts";
export * from "./safetensors.ts";
export * from "./files.ts";
export * from "./lock.ts";
export * from "./regular.ts";
