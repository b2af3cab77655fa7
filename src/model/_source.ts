/**
 * Where a model's files come from: a folder or an http(s) URL. Paths a manifest
 * names stay inside the model (the folder, or the URL's origin and path
 * prefix); reads refuse non-regular files; fetches have a timeout, a bounded
 * retry for transient failures, and errors that name the URL.
 *
 * @module
 */

/** A local file or a URL. */
export type Location =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "url"; readonly url: string };

/** How to fetch over http(s). */
export interface NetOptions {
  /** Per-request limit in milliseconds (the body included). */
  timeoutMs: number;
  /** Extra attempts after a connection error or an HTTP 5xx, 408 or 429. */
  retries: number;
}

/** Default per-request timeout: 30 s. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default extra attempts for transient failures: 2 (three in all). */
export const DEFAULT_RETRIES = 2;

const RETRY_DELAY_MS = 200;

function isHttp(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** The page's URL in a browser (no `Deno`: files are fetched), else undefined. */
function pageUrl(): string | undefined {
  if (typeof Deno !== "undefined") return undefined;
  return (globalThis as { location?: { href: string } }).location?.href;
}

/**
 * A path or URL the caller gave: http(s), file://, or a path (relative to the
 * current directory; in a browser, relative to the page, and fetched).
 */
export function userLocation(s: string): Location {
  if (isHttp(s)) return { kind: "url", url: new URL(s).href };
  const page = pageUrl();
  if (page) return { kind: "url", url: new URL(s, page).href };
  if (/^file:\/\//i.test(s)) {
    return { kind: "file", path: decodeURIComponent(new URL(s).pathname) };
  }
  return { kind: "file", path: s };
}

/** The text of a location for messages. */
export function describe(loc: Location): string {
  return loc.kind === "url" ? loc.url : loc.path;
}

/** The model folder (or its URL, ending in `/`) of a `loadModel` source. */
export function modelFolder(source: string): Location {
  const loc = userLocation(source.replace(/\/manifest\.json$/, ""));
  if (loc.kind === "url") {
    return {
      kind: "url",
      url: loc.url.endsWith("/") ? loc.url : loc.url + "/",
    };
  }
  return { kind: "file", path: loc.path.replace(/\/+$/, "") || "/" };
}

/**
 * A path named by the manifest (already checked to be relative, without `..`),
 * inside the model: for a URL, the result must keep the origin and the path
 * prefix, else a TypeError names `field`.
 */
export function inModel(base: Location, rel: string, field: string): Location {
  if (base.kind === "file") {
    return { kind: "file", path: `${base.path.replace(/\/$/, "")}/${rel}` };
  }
  const url = new URL(rel, base.url);
  const root = new URL(base.url);
  if (url.origin !== root.origin || !url.pathname.startsWith(root.pathname)) {
    throw new TypeError(
      `${field} "${rel}" leaves the model at ${base.url}: expected a path under it`,
    );
  }
  return { kind: "url", url: url.href };
}

/** Path, size and modification time of a local file (for verification caches); null for URLs and missing files. */
export async function fileStamp(loc: Location): Promise<string | null> {
  if (loc.kind === "url") return null;
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(loc.path);
  } catch {
    return null; // the read that follows reports it
  }
  const abs = loc.path.startsWith("/") ? loc.path : `${Deno.cwd()}/${loc.path}`;
  return `${abs}\0${st.size}\0${st.mtime?.getTime() ?? "?"}`;
}

async function readFile(path: string, field: string): Promise<Uint8Array> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new TypeError(`Cannot read "${path}"${field}: no such file`);
    }
    throw err;
  }
  if (!info.isFile) {
    throw new TypeError(
      `Cannot read "${path}"${field}: not a regular file (a ${
        info.isDirectory ? "directory" : "device, fifo or socket"
      }): expected a file`,
    );
  }
  return await Deno.readFile(path);
}

function transient(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

class Timeout extends Error {}

/** Concatenates chunks (into one buffer of `size` bytes when the length is known). */
function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1 && chunks[0].length === size) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * One request. The timeout bounds the wait for the response and every wait
 * for the next piece of its body (a stalled server), not the whole download,
 * so a large file on a slow but live link still arrives.
 */
async function fetchOnce(url: string, timeoutMs: number) {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(new Timeout()), timeoutMs);
  };
  arm();
  try {
    const res = await fetch(url, { signal: ac.signal });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return { status: res.status, text: res.statusText };
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body.getReader();
    for (;;) {
      arm();
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
    return { bytes: concat(chunks, size) };
  } catch (err) {
    throw ac.signal.aborted ? new Timeout("timeout", { cause: err }) : err;
  } finally {
    clearTimeout(timer);
  }
}

async function readUrl(
  url: string,
  net: NetOptions,
  field: string,
): Promise<Uint8Array> {
  const attempts = net.retries + 1;
  for (let i = 1;; i++) {
    const tries = i > 1 ? ` (after ${i} attempts)` : "";
    try {
      const r = await fetchOnce(url, net.timeoutMs);
      if (r.bytes) return r.bytes;
      if (!transient(r.status) || i >= attempts) {
        throw new TypeError(
          `Cannot fetch "${url}"${field}: HTTP ${r.status} ${r.text}${tries}`,
        );
      }
    } catch (err) {
      if (err instanceof TypeError && err.message.startsWith("Cannot fetch")) {
        throw err;
      }
      if (err instanceof Timeout) {
        throw new TypeError(
          `Cannot fetch "${url}"${field}: no answer within ${net.timeoutMs} ms: check the server, or raise timeoutMs`,
          { cause: err },
        );
      }
      if (i >= attempts) {
        throw new TypeError(
          `Cannot fetch "${url}"${field}: ${
            err instanceof Error ? err.message : err
          }${tries}`,
          { cause: err },
        );
      }
    }
    await new Promise((r) => setTimeout(r, RETRY_DELAY_MS * 2 ** (i - 1)));
  }
}

/**
 * The bytes of a location. `field` (e.g. `graphs["stem.fwd"].file`) is named
 * in errors.
 */
export function readLocation(
  loc: Location,
  net: NetOptions,
  field = "",
): Promise<Uint8Array> {
  const what = field ? ` (${field})` : "";
  return loc.kind === "url"
    ? readUrl(loc.url, net, what)
    : readFile(loc.path, what);
}
