/**
 * A small static file server for the browser page: serves a folder (the
 * repository root, so the page reaches `weights/`, `assets/` and
 * `tests/fixtures/` by relative URLs) on 127.0.0.1 with JavaScript MIME types
 * for `.js`/`.mjs`/`.ts`, `application/wasm` for `.wasm`, and the
 * cross-origin-isolation headers that onnxruntime-web's wasm threads need.
 *
 * ```sh
 * deno task web && deno run -A web/serve.ts   # then open the printed URL
 * ```
 *
 * @module
 */

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".ts": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".css": "text/css; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

/** A running server: its base URL and how to stop it. */
export interface StaticServer {
  /** `http://127.0.0.1:PORT/`. */
  url: string;
  /** Stops listening and waits for open requests to finish. */
  shutdown(): Promise<void>;
}

/** The MIME type of a path by its extension (octet-stream when unknown). */
function mimeType(path: string): string {
  const dot = path.lastIndexOf(".");
  return TYPES[dot < 0 ? "" : path.slice(dot).toLowerCase()] ??
    "application/octet-stream";
}

async function answer(root: string, req: Request): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed", { status: 405 });
  }
  const path = decodeURIComponent(new URL(req.url).pathname);
  if (path.split("/").includes("..") || path.includes("\0")) {
    return new Response("bad path", { status: 400 });
  }
  const file = `${root}${path.endsWith("/") ? `${path}index.html` : path}`;
  const headers = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cache-control": "no-store",
  };
  try {
    const info = await Deno.stat(file);
    if (info.isDirectory && !path.endsWith("/")) {
      // relative URLs in the folder's index.html need the slash
      return Response.redirect(new URL(`${path}/`, req.url), 301);
    }
    if (!info.isFile) return new Response("not a file", { status: 404 });
    const body = req.method === "HEAD"
      ? null
      : (await Deno.open(file)).readable;
    return new Response(body, {
      headers: {
        ...headers,
        "content-type": mimeType(file),
        "content-length": String(info.size),
      },
    });
  } catch {
    return new Response("not found", { status: 404, headers });
  }
}

/**
 * Serves `root` on 127.0.0.1 (port 0: a free one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveStatic } from "./serve.ts";
 *
 * const server = serveStatic(new URL("..", import.meta.url).pathname);
 * const res = await fetch(`${server.url}deno.json`);
 * assert.equal(res.headers.get("content-type"), "application/json");
 * await res.body?.cancel();
 * await server.shutdown();
 * ```
 */
export function serveStatic(root: string, port = 0): StaticServer {
  const base = root.replace(/\/+$/, "");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    (req) => answer(base, req),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    shutdown: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`Invalid port "${Deno.args[0]}": expected 0..65535`);
    Deno.exit(2);
  }
  const server = serveStatic(new URL("..", import.meta.url).pathname, port);
  console.log(`open ${server.url}web/ (Ctrl-C stops)`);
}
