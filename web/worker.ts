/// <reference lib="deno.worker" />
/**
 * The page's worker (bundled by `deno task web` into web/dist/worker.js): runs
 * each job of the page with web/engine.ts off the main thread, so the page
 * stays responsive while a model steps; `stop` ends the run after its current
 * step. One job at a time: a job that comes while one runs waits for it.
 *
 * @module
 */

import { ModelCache, runJob } from "./engine.ts";
import type { FromWorker, Job, ToWorker } from "./protocol.ts";

const cache = new ModelCache();
let stop = false;
let queue: Promise<void> = Promise.resolve();

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

async function run(job: Job): Promise<void> {
  stop = false;
  try {
    const result = await runJob(job, { post, stopped: () => stop }, cache);
    post({ type: "done", result });
  } catch (err) {
    post({
      type: "error",
      message: err instanceof Error ? err.message : String(err),
    });
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === "stop") stop = true;
  else if (m.type === "run") queue = queue.then(() => run(m.job));
};
