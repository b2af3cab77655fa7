/**
 * Where a model's files come from: a folder or an http(s) URL. Paths a manifest
 * names stay inside the model (the folder, or the URL's origin and path
 * prefix); reads refuse non-regular files and files over a size limit;
 * fetches have an idle timeout and a limit on the whole download, follow
 * redirects only within the URL's origin, retry transient failures a bounded
 * number of times, and fail with errors that name the URL.
 *
 * @module
 */

/** A local file or a URL. */
export type Location =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "url"; readonly url: string };

/** How to fetch over http(s), and how much to read. */
export interface NetOptions {
  /** Limit in milliseconds on the wait for an answer and for each next piece of a body. */
  timeoutMs: number;
  /** Extra attempts after a connection error or an HTTP 5xx, 408 or 429. */
  retries: number;
  /** Limit in milliseconds on the whole download of one file, retries included. */
  downloadTimeoutMs: number;
  /** Bytes of a file whose size the manifest does not bound. */
  maxBytes: number;
}

/** The most bytes one file may hold, and where that limit comes from (for errors). */
export interface SizeLimit {
  /** Bytes. */
  bytes: number;
  /** Where the limit comes from, and what to do, e.g. `maxBytes: raise it …`. */
  why: string;
}

/** Default idle timeout: 30 s. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default extra attempts for transient failures: 2 (three in all). */
export const DEFAULT_RETRIES = 2;
/** Default limit on the whole download of one file: 10 minutes. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 600_000;
/** Default size limit of a file the manifest does not bound: 4 GiB. */
export const DEFAULT_MAX_BYTES = 4 * 2 ** 30;
/** Size limit of `manifest.json` and of each graph file: 64 MiB. */
export const MAX_SMALL_FILE_BYTES = 64 * 2 ** 20;
/** Redirects followed per request (each within the URL's origin). */
export const MAX_REDIRECTS = 5;

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

/** A failure that another attempt would not mend (a redirect away, a body over the limit). */
class Final extends TypeError {}

/** The limit of a file the manifest does not bound: `maxBytes`. */
function defaultLimit(net: NetOptions): SizeLimit {
  return {
    bytes: net.maxBytes,
    why: "maxBytes: raise it if the file is right",
  };
}

/** `bytes` (for the reason `why`), or `maxBytes` where that is smaller. */
export function sizeLimit(
  bytes: number,
  why: string,
  net: NetOptions,
): SizeLimit {
  return net.maxBytes < bytes ? defaultLimit(net) : { bytes, why };
}

/** The limit of `manifest.json` and of a graph file: {@linkcode MAX_SMALL_FILE_BYTES} (or `maxBytes`). */
export function smallFileLimit(what: string, net: NetOptions): SizeLimit {
  return sizeLimit(
    MAX_SMALL_FILE_BYTES,
    `the cap of 64 MiB for ${what}, which are far smaller`,
    net,
  );
}

function overLimit(name: string, got: string, limit: SizeLimit): Final {
  return new Final(
    `${name}: ${got}, over the limit of ${limit.bytes} bytes (${limit.why})`,
  );
}

async function readFile(
  path: string,
  field: string,
  limit: SizeLimit,
): Promise<Uint8Array> {
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
  if (info.size > limit.bytes) {
    throw overLimit(
      `Cannot read "${path}"${field}`,
      `${info.size} bytes`,
      limit,
    );
  }
  return await Deno.readFile(path);
}

function transient(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** An abort by a timer: `total` for the download limit, else the idle timeout. */
class Timeout extends Error {
  total: boolean;
  constructor(total: boolean, options?: ErrorOptions) {
    super("timeout", options);
    this.total = total;
  }
}

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

/** What one request is for: its URL (named in errors), limits and deadline. */
interface Request {
  url: string;
  field: string;
  net: NetOptions;
  limit: SizeLimit;
  /** `Date.now()` by which the whole download must be done. */
  deadline: number;
}

const IN_BROWSER = typeof Deno === "undefined";

/**
 * The response to `req.url`, following up to {@linkcode MAX_REDIRECTS}
 * redirects within its origin (a browser follows them itself; the final URL
 * is checked there).
 */
async function fetchFollowing(
  req: Request,
  signal: AbortSignal,
): Promise<Response> {
  const origin = new URL(req.url).origin;
  const away = (to: string) =>
    new Final(
      `Cannot fetch "${req.url}"${req.field}: redirected to "${to}", outside the origin ${origin}: expected the model's files from its own server`,
    );
  let target = req.url;
  for (let hop = 0;; hop++) {
    const res = await fetch(target, {
      signal,
      redirect: IN_BROWSER ? "follow" : "manual",
    });
    if (IN_BROWSER && res.redirected && new URL(res.url).origin !== origin) {
      await res.body?.cancel();
      throw away(res.url);
    }
    const to = res.headers.get("location");
    if (res.status < 300 || res.status > 399 || to === null) return res;
    await res.body?.cancel();
    const next = new URL(to, target);
    if (next.origin !== origin) throw away(next.href);
    if (hop >= MAX_REDIRECTS) {
      throw new Final(
        `Cannot fetch "${req.url}"${req.field}: more than ${MAX_REDIRECTS} redirects: expected the file at most ${MAX_REDIRECTS} redirects away`,
      );
    }
    target = next.href;
  }
}

/** The body of a response, at most `req.limit.bytes` of it. */
async function readBody(req: Request, res: Response, arm: () => void) {
  const name = `Cannot fetch "${req.url}"${req.field}`;
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > req.limit.bytes) {
    await res.body!.cancel();
    throw overLimit(name, `${declared} bytes declared`, req.limit);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body!.getReader();
  for (;;) {
    arm();
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > req.limit.bytes) {
      await reader.cancel();
      throw overLimit(
        name,
        `more than ${req.limit.bytes} bytes sent`,
        req.limit,
      );
    }
    chunks.push(value);
  }
  return concat(chunks, size);
}

/**
 * One request. The idle timeout bounds the wait for the response and every
 * wait for the next piece of its body (a stalled server); the deadline bounds
 * the whole download (a server that drips a byte now and then).
 */
async function fetchOnce(req: Request) {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    const left = Math.max(0, req.deadline - Date.now());
    const total = left <= req.net.timeoutMs;
    timer = setTimeout(
      () => ac.abort(new Timeout(total)),
      total ? left : req.net.timeoutMs,
    );
  };
  arm();
  try {
    const res = await fetchFollowing(req, ac.signal);
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return { status: res.status, text: res.statusText };
    }
    return { bytes: await readBody(req, res, arm) };
  } catch (err) {
    if (!ac.signal.aborted || err instanceof Final) throw err;
    const reason = ac.signal.reason;
    throw new Timeout(reason instanceof Timeout && reason.total, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}

function timeoutError(req: Request, err: Timeout): TypeError {
  const name = `Cannot fetch "${req.url}"${req.field}`;
  return new TypeError(
    err.total
      ? `${name}: not done within ${req.net.downloadTimeoutMs} ms (downloadTimeoutMs): check the server, or raise downloadTimeoutMs`
      : `${name}: no answer within ${req.net.timeoutMs} ms: check the server, or raise timeoutMs`,
    { cause: err },
  );
}

type Attempt = Uint8Array | { failure: TypeError; retry: boolean };

/** One attempt: the bytes, or the error and whether another attempt may mend it. */
async function attempt(req: Request, tries: string): Promise<Attempt> {
  const name = `Cannot fetch "${req.url}"${req.field}`;
  try {
    const r = await fetchOnce(req);
    if (r.bytes) return r.bytes;
    return {
      failure: new TypeError(`${name}: HTTP ${r.status} ${r.text}${tries}`),
      retry: transient(r.status),
    };
  } catch (err) {
    if (err instanceof Final) return { failure: err, retry: false };
    if (err instanceof Timeout) {
      return { failure: timeoutError(req, err), retry: false };
    }
    const text = err instanceof Error ? err.message : String(err);
    return {
      failure: new TypeError(`${name}: ${text}${tries}`, { cause: err }),
      retry: true,
    };
  }
}

async function readUrl(req: Request): Promise<Uint8Array> {
  for (let i = 1;; i++) {
    const r = await attempt(req, i > 1 ? ` (after ${i} attempts)` : "");
    if (r instanceof Uint8Array) return r;
    if (!r.retry || i > req.net.retries) throw r.failure;
    const delay = RETRY_DELAY_MS * 2 ** (i - 1);
    if (Date.now() + delay >= req.deadline) {
      throw timeoutError(req, new Timeout(true, { cause: r.failure }));
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * The bytes of a location, at most `limit` (default: `maxBytes`). `field`
 * (e.g. `graphs["stem.fwd"].file`) is named in errors.
 */
export function readLocation(
  loc: Location,
  net: NetOptions,
  field = "",
  limit: SizeLimit = defaultLimit(net),
): Promise<Uint8Array> {
  const what = field ? ` (${field})` : "";
  if (loc.kind === "file") return readFile(loc.path, what, limit);
  return readUrl({
    url: loc.url,
    field: what,
    net,
    limit,
    deadline: Date.now() + net.downloadTimeoutMs,
  });
}
