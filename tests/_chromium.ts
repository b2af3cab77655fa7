// A headless Chromium driven over the DevTools protocol with Deno's WebSocket,
// for the tests that open pages (the essay report, the browser page). The
// browser is started and stopped here by its pid, with a temporary profile.
import assert from "node:assert/strict";

/** Debian's chromium (or another Chromium-based browser), or null when absent. */
export function chromiumPath(): string | null {
  for (
    const p of [
      "/usr/bin/chromium",
      "/usr/bin/chromium-browser",
      "/usr/bin/google-chrome",
    ]
  ) {
    try {
      Deno.statSync(p);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/** One page of the browser. */
export interface Page {
  /** Console errors, uncaught exceptions, error log entries and failed loads, as they came. */
  errors: string[];
  /** Sends a DevTools command and resolves with its result. */
  send(
    method: string,
    params?: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
  /** Opens a URL and waits for its load event. */
  navigate(url: string): Promise<void>;
  /** Evaluates an expression in the page (promises awaited) and returns its value. */
  evaluate(expression: string): Promise<unknown>;
  /** Polls `expression` until it is truthy; fails after `timeoutMs`. */
  waitFor(expression: string, timeoutMs: number): Promise<unknown>;
  /** Clicks the centre of the first element matching `selector` with the mouse (scrolled into view first). */
  click(selector: string): Promise<void>;
  /** Sets a form field's value (a select, a number input) and fires its input and change events. */
  setValue(selector: string, value: string): Promise<void>;
  /** Lets the page download files into `dir` (a temporary folder). */
  allowDownloads(dir: string): Promise<void>;
  /** A PNG screenshot of the viewport. */
  screenshot(): Promise<Uint8Array>;
}

async function devtoolsTarget(port: number): Promise<string> {
  for (let i = 0; i < 150; i++) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`))
        .json();
      const page = list.find((t: { type: string }) => t.type === "page");
      if (page) return page.webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail("Chromium's DevTools endpoint did not come up");
}

/** Records what the page reports as an error. */
// deno-lint-ignore no-explicit-any
function errorOf(m: { method?: string; params?: Record<string, any> }) {
  const p = m.params ?? {};
  if (m.method === "Runtime.consoleAPICalled" && p.type === "error") {
    return `console: ${JSON.stringify(p.args)}`;
  }
  if (m.method === "Runtime.exceptionThrown") {
    const d = p.exceptionDetails;
    return `exception: ${d.text} ${d.exception?.description ?? ""}`;
  }
  if (m.method === "Log.entryAdded" && p.entry.level === "error") {
    return `log: ${p.entry.text} ${p.entry.url ?? ""}`;
  }
  if (m.method === "Network.loadingFailed" && !p.canceled) {
    return `network: ${p.errorText}`;
  }
  return undefined;
}

async function connect(url: string, ws: WebSocket): Promise<Page> {
  await new Promise((res, rej) => {
    ws.onopen = res;
    ws.onerror = rej;
  });
  const errors: string[] = [];
  const pending = new Map<number, (v: Record<string, unknown>) => void>();
  let loaded = () => {};
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.id && pending.has(m.id)) pending.get(m.id)!(m.result ?? m);
    else if (m.method === "Page.loadEventFired") loaded();
    else {
      const e = errorOf(m);
      if (e) errors.push(e);
    }
  };
  let next = 0;
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((res) => {
      const id = ++next;
      pending.set(id, res);
      ws.send(JSON.stringify({ id, method, params }));
    });
  for (const d of ["Page", "Runtime", "Log", "Network"]) {
    await send(`${d}.enable`);
  }
  const evaluate = async (expression: string) => {
    const r = await send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    return (r.result as { value: unknown }).value;
  };
  const waitFor = async (expression: string, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await evaluate(expression);
      if (v) return v;
      if (Date.now() > end) {
        assert.fail(
          `timed out after ${timeoutMs} ms waiting for ${expression} (${url})`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  return {
    errors,
    send,
    evaluate,
    waitFor,
    click: async (selector) => {
      const q = JSON.stringify(selector);
      const box = await evaluate(`(() => {
        const el = document.querySelector(${q});
        if (!el) return null;
        el.scrollIntoView({ block: "center" });
        const r = el.getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
      })()`) as { x: number; y: number } | null;
      assert.ok(box, `no element ${selector} to click`);
      for (const type of ["mousePressed", "mouseReleased"]) {
        await send("Input.dispatchMouseEvent", {
          type,
          ...box,
          button: "left",
          clickCount: 1,
        });
      }
    },
    setValue: async (selector, value) => {
      const ok = await evaluate(`(() => {
        const el = document.querySelector(${JSON.stringify(selector)});
        if (!el) return false;
        el.value = ${JSON.stringify(value)};
        el.dispatchEvent(new Event("input", { bubbles: true }));
        el.dispatchEvent(new Event("change", { bubbles: true }));
        return el.value === ${JSON.stringify(value)};
      })()`);
      assert.ok(ok, `cannot set ${selector} to "${value}"`);
    },
    allowDownloads: async (dir) => {
      const r = await send("Browser.setDownloadBehavior", {
        behavior: "allow",
        downloadPath: dir,
      });
      assert.equal(r.error, undefined, JSON.stringify(r.error));
    },
    screenshot: async () => {
      const shot = await send("Page.captureScreenshot", { format: "png" });
      return Uint8Array.from(atob(shot.data as string), (c) => c.charCodeAt(0));
    },
    navigate: async (target) => {
      const load = new Promise<void>((r) => (loaded = r));
      await send("Page.navigate", { url: target });
      await load;
    },
  };
}

/**
 * Starts headless Chromium (with `--disable-gpu`, or `extraArgs` instead),
 * runs `fn` with its first page, and stops the browser (by pid) and removes
 * its profile whatever happens.
 */
export async function withChromium<T>(
  bin: string,
  fn: (page: Page) => Promise<T>,
  extraArgs: readonly string[] = [],
): Promise<T> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const profile = await Deno.makeTempDir({ prefix: "vitrep_chromium_" });
  const proc = new Deno.Command(bin, {
    args: [
      "--headless",
      "--no-sandbox",
      ...(extraArgs.length > 0 ? extraArgs : ["--disable-gpu"]),
      `--remote-debugging-port=${port}`,
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let ws: WebSocket | null = null;
  try {
    const url = await devtoolsTarget(port);
    ws = new WebSocket(url);
    return await fn(await connect(url, ws));
  } finally {
    ws?.close();
    proc.kill("SIGTERM");
    await proc.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** What a report page did in Chromium: console errors, its images (loaded or not), its claims table. */
export interface PageReport {
  errors: string[];
  images: { src: string; ok: boolean }[];
  claims: { id: string; verdict: string }[];
}

/** Opens an essay report page (`file`, a path) in headless Chromium and reports what it did. */
export function openReport(bin: string, file: string): Promise<PageReport> {
  return withChromium(bin, async (page) => {
    await page.navigate(`file://${file}`);
    const images = await page.evaluate(
      `Promise.all([...document.images].map((i) => i.decode().then(() => true, () => false)
        .then((ok) => ({ src: i.getAttribute("src"), ok: ok && i.naturalWidth > 0 }))))`,
    ) as PageReport["images"];
    const claims = await page.evaluate(
      `[...document.querySelectorAll("#claims tbody tr")].map((tr) => ({ id: tr.dataset.claim, verdict: tr.querySelector(".verdict").textContent }))`,
    ) as PageReport["claims"];
    return { errors: page.errors, images, claims };
  });
}

/**
 * Checks an essay report page (`file`, a path) in headless Chromium: no
 * console error, every image loads (at least `minImages`), and the claims
 * table lists `claims` with their verdicts. Returns false, having printed
 * why, where no Chromium is installed.
 */
export async function checkReportPage(
  file: string,
  claims: readonly { id: string; verdict: string }[],
  minImages = 1,
): Promise<boolean> {
  const bin = chromiumPath();
  if (!bin) {
    console.log("skipped: no chromium (apt-get install chromium)");
    return false;
  }
  const page = await openReport(bin, file);
  assert.deepEqual(page.errors, []);
  assert.ok(page.images.length >= minImages, `${page.images.length} images`);
  assert.deepEqual(page.images.filter((i) => !i.ok), []);
  assert.deepEqual(
    page.claims,
    claims.map((c) => ({ id: c.id, verdict: c.verdict })),
  );
  return true;
}
