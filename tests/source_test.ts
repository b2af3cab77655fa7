// Hostile servers for model and image URLs (issue 20): an endless body is cut at
// a size limit, a dripping one at a time limit, redirects stay within the URL's
// origin, and image URLs are retried after 5xx but not 4xx. Every server here
// listens on 127.0.0.1 and stops at the end of its test.
import assert from "node:assert/strict";
import { loadModel, type LoadOptions } from "../src/model/mod.ts";
import { decodePng, readImage } from "../src/io/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TINY = `${ROOT}tests/fixtures/tiny_vit`;
const CHELSEA = `${ROOT}assets/chelsea.png`;
const X = new Float32Array(3 * 32 * 32).map((_, i) => (i % 17) / 17);
const NATIVE: LoadOptions = { backend: "native", weights: "fixture" };

type Hook = (path: string, url: string) => Response | undefined;

/** Serves `dir` on 127.0.0.1, counting hits per path; `hook` may answer first. */
function serve(dir: string, hook: Hook = () => undefined) {
  const ac = new AbortController();
  const hits = new Map<string, number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const hooked = hook(path, req.url);
      if (hooked) return hooked;
      try {
        return new Response(await Deno.readFile(`${dir}${path}`));
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

/** A body of zeros that never ends (no Content-Length). */
function endless(): Response {
  const chunk = new Uint8Array(1 << 16);
  return new Response(new ReadableStream({ pull: (c) => c.enqueue(chunk) }));
}

/** A body that sends one byte every `ms` milliseconds, for ever. */
function drip(ms: number): Response {
  return new Response(
    new ReadableStream({
      async pull(c) {
        await new Promise((r) => setTimeout(r, ms));
        try {
          c.enqueue(new Uint8Array([32]));
        } catch {
          // cancelled by the client meanwhile
        }
      },
    }),
  );
}

async function logits(source: string, options: LoadOptions = NATIVE) {
  const m = await loadModel(source, options);
  try {
    return (await m.forward(X)).data;
  } finally {
    await m.release();
  }
}

/** Fails when `p` takes longer than `ms` (the limits under test must end it first). */
async function within<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still running after ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("model URLs: an endless body stops at the file's size limit, naming the URL and the limit", async () => {
  let endlessPath = "/manifest.json";
  const server = serve(
    TINY,
    (path) => path === endlessPath ? endless() : undefined,
  );
  try {
    // manifest.json: the stated cap of 64 MiB
    await assert.rejects(() => within(loadModel(server.url, NATIVE)), {
      name: "TypeError",
      message:
        `Cannot load model "${server.url}/manifest.json": Cannot fetch "${server.url}/manifest.json": more than 67108864 bytes sent, over the limit of 67108864 bytes (the cap of 64 MiB for manifest.json, which are far smaller): expected a folder or URL holding manifest.json from tools/convert.py`,
    });
    // a weight set: what the manifest's tensors take (41000 bytes) and header room
    endlessPath = "/fixture.safetensors";
    const limit = 8 + 41000 + 2 ** 20 + 44 * 1024;
    await assert.rejects(() => within(loadModel(server.url, NATIVE)), {
      name: "TypeError",
      message:
        `Cannot fetch "${server.url}/fixture.safetensors": more than ${limit} bytes sent, over the limit of ${limit} bytes (what the 44 tensors of the manifest take, 41000 bytes, with a header: the file is not weight set "fixture")`,
    });
    // a graph file: the stated cap, or maxBytes where smaller
    endlessPath = "/graphs/stem.fwd.onnx";
    const m = await loadModel(server.url, { ...NATIVE, maxBytes: 1 << 20 });
    await assert.rejects(() => within(m.forward(X)), {
      name: "TypeError",
      message:
        `Cannot fetch "${server.url}/graphs/stem.fwd.onnx" (graphs["stem.fwd"].file): more than 1048576 bytes sent, over the limit of 1048576 bytes (maxBytes: raise it if the file is right)`,
    });
    await m.release();
    // a caller's .safetensors URL: maxBytes (default 4 GiB) bounds it
    endlessPath = "/mine.safetensors";
    await assert.rejects(
      () =>
        within(
          loadModel(TINY, {
            weights: `${server.url}/mine.safetensors`,
            maxBytes: 100_000,
          }),
        ),
      /mine\.safetensors": more than 100000 bytes sent, over the limit of 100000 bytes \(maxBytes/,
    );
    // the same limits hold for a folder
    await assert.rejects(
      () => loadModel(TINY, { ...NATIVE, maxBytes: 20_000 }),
      new RegExp(
        `Cannot read "${TINY}/manifest\\.json": 23810 bytes, over the limit of 20000 bytes \\(maxBytes`,
      ),
    );
    // the same files within their limits load
    endlessPath = "";
    assert.deepEqual(await logits(server.url), await logits(TINY));
    await assert.rejects(() => loadModel(TINY, { maxBytes: 0 }), {
      name: "RangeError",
      message: 'Invalid maxBytes "0": expected a positive integer (bytes)',
    });
  } finally {
    await server.close();
  }
});

Deno.test("model URLs: a server that drips a byte at a time is cut at downloadTimeoutMs", async () => {
  let dripPath = "/manifest.json";
  const server = serve(
    TINY,
    (path) => path === dripPath ? drip(200) : undefined,
  );
  try {
    // never idle for timeoutMs, so only the limit on the whole download ends it
    const t0 = performance.now();
    await assert.rejects(
      () =>
        within(
          loadModel(server.url, { timeoutMs: 5000, downloadTimeoutMs: 1000 }),
        ),
      {
        name: "TypeError",
        message:
          `Cannot load model "${server.url}/manifest.json": Cannot fetch "${server.url}/manifest.json": not done within 1000 ms (downloadTimeoutMs): check the server, or raise downloadTimeoutMs: expected a folder or URL holding manifest.json from tools/convert.py`,
      },
    );
    const ms = performance.now() - t0;
    assert(ms >= 900 && ms < 3000, `took ${ms} ms`);
    dripPath = "/fixture.safetensors";
    await assert.rejects(
      () =>
        within(
          loadModel(server.url, {
            ...NATIVE,
            timeoutMs: 5000,
            downloadTimeoutMs: 1000,
          }),
        ),
      new RegExp(
        `Cannot fetch "${server.url}/fixture\\.safetensors": not done within 1000 ms \\(downloadTimeoutMs\\)`,
      ),
    );
    await assert.rejects(() => loadModel(TINY, { downloadTimeoutMs: -1 }), {
      name: "RangeError",
      message:
        'Invalid downloadTimeoutMs "-1": expected milliseconds in 1..2147483647',
    });
  } finally {
    await server.close();
  }
});

Deno.test("model URLs: retries of a failing server stop at downloadTimeoutMs", async () => {
  const server = serve(
    TINY,
    (path) =>
      path === "/manifest.json"
        ? new Response("busy", { status: 503 })
        : undefined,
  );
  try {
    // retries wait 200, 400, 800 … ms: the third wait would end past the limit
    await assert.rejects(
      () =>
        within(loadModel(server.url, { retries: 10, downloadTimeoutMs: 500 })),
      /manifest\.json": not done within 500 ms \(downloadTimeoutMs\)/,
    );
    assert.equal(server.hits.get("/manifest.json"), 2);
  } finally {
    await server.close();
  }
});

Deno.test("model URLs: redirects are followed within the origin only", async () => {
  const other = serve(TINY);
  const server = serve(TINY, (path) => {
    const to = (location: string, status = 302) =>
      new Response(null, { status, headers: { location } });
    if (path === "/moved/manifest.json") return to("/manifest.json", 301);
    if (path.startsWith("/moved/graphs/")) return to(path.slice(6), 307);
    if (path === "/moved/fixture.safetensors") {
      return to(`${other.url}/fixture.safetensors`);
    }
    if (path === "/loop/manifest.json") return to("/loop/manifest.json");
    return undefined;
  });
  try {
    // same origin: followed (the manifest, then every graph)
    const m = await loadModel(`${server.url}/moved`, { backend: "native" });
    assert.equal((await m.forward(X)).dims.join(), "1,10");
    await m.release();
    assert.equal(server.hits.get("/graphs/stem.fwd.onnx"), 1);
    // another origin (another port): refused without asking it
    await assert.rejects(() => loadModel(`${server.url}/moved`, NATIVE), {
      name: "TypeError",
      message:
        `Cannot fetch "${server.url}/moved/fixture.safetensors": redirected to "${other.url}/fixture.safetensors", outside the origin ${server.url}: expected the model's files from its own server`,
    });
    assert.equal(other.hits.size, 0);
    assert.equal(server.hits.get("/moved/fixture.safetensors"), 1);
    // a loop: bounded
    await assert.rejects(
      () => within(loadModel(`${server.url}/loop`)),
      /manifest\.json": more than 5 redirects/,
    );
    assert.equal(server.hits.get("/loop/manifest.json"), 6);
  } finally {
    await server.close();
    await other.close();
  }
});

Deno.test("image URLs: 5xx and connection errors are retried with backoff, 4xx is not; size and time stay capped", async () => {
  const cat = await Deno.readFile(CHELSEA);
  let failures = 2;
  const server = serve(ROOT, (path) => {
    if (path === "/flaky.png" && failures > 0) {
      failures--;
      return new Response("busy", { status: 503 });
    }
    if (path === "/flaky.png") return new Response(cat);
    if (path === "/down.png") return new Response("down", { status: 502 });
    if (path === "/gone.png") return new Response("gone", { status: 410 });
    if (path === "/drip.png") return drip(100);
    return undefined;
  });
  try {
    const t0 = performance.now();
    const img = await readImage(`${server.url}/flaky.png`);
    const ms = performance.now() - t0;
    assert.deepEqual(img, decodePng(cat));
    assert.equal(server.hits.get("/flaky.png"), 3);
    assert(ms >= 550, `waited ${ms} ms: expected backoff of 200 + 400 ms`);
    await assert.rejects(() => readImage(`${server.url}/down.png`), {
      name: "TypeError",
      message:
        `Cannot fetch image "${server.url}/down.png": HTTP 502 Bad Gateway (after 3 attempts)`,
    });
    assert.equal(server.hits.get("/down.png"), 3);
    await assert.rejects(() => readImage(`${server.url}/gone.png`), {
      name: "TypeError",
      message: `Cannot fetch image "${server.url}/gone.png": HTTP 410 Gone`,
    });
    assert.equal(server.hits.get("/gone.png"), 1);
    await assert.rejects(
      () => within(readImage(`${server.url}/drip.png`, { timeoutMs: 700 })),
      {
        name: "TypeError",
        message:
          `Cannot fetch image "${server.url}/drip.png": not done within 700 ms (timeoutMs): check the server, or raise timeoutMs`,
      },
    );
  } finally {
    await server.close();
  }
  // a port nobody listens on: a connection error each time, three in all
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  await assert.rejects(() => readImage(`http://127.0.0.1:${port}/x.png`), {
    name: "TypeError",
    message: new RegExp(
      `Cannot fetch image "http://127.0.0.1:${port}/x\\.png": .*\\(after 3 attempts\\)`,
    ),
  });
});
