/**
 * The run lifecycle (src/run): the progress report on stderr, and Ctrl-C
 * and SIGTERM.
 * On a terminal the report is a bar redrawn in place (`\r`); into a file or a
 * CI log it is plain lines, the first step, then one line every few seconds
 * and the last. A step's numbers are measured before its update; the last
 * line, marked `final`, gives the final evaluation after the last update
 * (what the command's table and metrics.json say), when the command has it.
 *
 * @module
 */

import { EXIT_INTERRUPTED } from "./exit.ts";

/** A progress report on stderr. */
export interface Bar {
  /** Step `step` (0-based) of `steps` is done; `extra` is its status. */
  update(step: number, steps: number, extra: string): void;
  /**
   * Ends the report: its last line is the last step's with `final` (the
   * final evaluation, e.g. `final emb 94.459`) in place of its status when
   * given, else the last step's line as it was.
   */
  done(final?: string): void;
}

/** How often a terminal's bar is redrawn and a log gets a line (ms). */
const REDRAW_MS = 200;
const LOG_MS = 5000;

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/**
 * A progress report labelled `label` (silent when `quiet`): a bar redrawn at
 * most every 200 ms on a terminal (`tty`, default: whether stderr is one),
 * else a plain line for the first step, every 5 s and the last.
 */
export function progress(
  label: string,
  quiet: boolean,
  tty: boolean = isTerminal(),
): Bar {
  const start = performance.now();
  const enc = new TextEncoder();
  const write = (s: string) => Deno.stderr.writeSync(enc.encode(s));
  let last = -Infinity;
  let count = 0;
  let pending: string | null = null;
  let open = false;
  const draw = (line: string, end: boolean) => {
    if (tty) write(`\r${line}\x1b[K${end ? "\n" : ""}`);
    else write(`${line}\n`);
    last = performance.now();
    pending = null;
    open = tty && !end;
  };
  // the last step seen: [done, steps]
  let at: [number, number] | null = null;
  const text = (done: number, steps: number, extra: string, end = false) => {
    const secs = (performance.now() - start) / 1000;
    const rate = count / Math.max(secs, 1e-9);
    const eta = (steps - done) / rate;
    const width = 24;
    const filled = Math.round((done / steps) * width);
    const bar = tty
      ? ` [${"#".repeat(filled)}${"-".repeat(width - filled)}]`
      : "";
    const time = end ? `in ${secs.toFixed(1)}s` : `ETA ${eta.toFixed(0)}s`;
    return `${label}${bar} ${done}/${steps} ${
      rate.toFixed(1)
    } steps/s ${time} ${extra}`;
  };
  return {
    update(step, steps, extra) {
      if (quiet) return;
      count++;
      const done = step + 1;
      at = [done, steps];
      const line = text(done, steps, extra);
      const every = tty ? REDRAW_MS : LOG_MS;
      // the last step's line waits for done(): it may get the final evaluation
      if (done < steps && performance.now() - last >= every) {
        draw(line, false);
      } else pending = line;
    },
    done(final) {
      if (quiet) return;
      if (final !== undefined && at !== null) {
        draw(text(at[0], at[1], final, true), true);
      } else if (pending !== null) draw(pending, true);
      else if (open) {
        write("\n");
        open = false;
      }
    },
  };
}

/**
 * Ctrl-C (SIGINT), SIGTERM (what Slurm and Kubernetes send on cancel and
 * preemption) or an abort signal ask runs to stop after the current step,
 * which then write their snapshot and exit with {@linkcode EXIT_INTERRUPTED}.
 * A second Ctrl-C quits at once; a repeated SIGTERM does not (a batch system
 * may send it to every process of a job, and kills for good after its grace
 * period anyway).
 */
export class Stopper {
  /** Whether a stop was asked for. */
  requested = false;
  /** What asked first: "SIGTERM", or "SIGINT" (Ctrl-C or the abort signal); null before. */
  signal: "SIGINT" | "SIGTERM" | null = null;
  #onInt = () => {
    if (this.requested) Deno.exit(EXIT_INTERRUPTED); // a second Ctrl-C quits at once
    this.#stop("SIGINT");
    console.error("\nvitrep: stopping after this step (Ctrl-C again to quit)");
  };
  #onTerm = () => {
    if (this.requested) return;
    this.#stop("SIGTERM");
    console.error(
      "\nvitrep: SIGTERM: stopping after this step, with a snapshot to --resume from",
    );
  };
  #signal?: AbortSignal;
  #onAbort = () => this.#stop("SIGINT");
  /** @param signal aborting it acts as Ctrl-C */
  constructor(signal?: AbortSignal) {
    this.#signal = signal;
  }
  #stop(signal: "SIGINT" | "SIGTERM"): void {
    this.requested = true;
    this.signal ??= signal;
  }
  /** Starts listening for Ctrl-C, SIGTERM and the signal. */
  install(): void {
    try {
      Deno.addSignalListener("SIGINT", this.#onInt);
      Deno.addSignalListener("SIGTERM", this.#onTerm);
    } catch {
      // no signals on this platform
    }
    if (this.#signal?.aborted) this.#stop("SIGINT");
    this.#signal?.addEventListener("abort", this.#onAbort);
  }
  /** Stops listening. */
  remove(): void {
    for (
      const [name, fn] of [["SIGINT", this.#onInt], [
        "SIGTERM",
        this.#onTerm,
      ]] as const
    ) {
      try {
        Deno.removeSignalListener(name, fn);
      } catch {
        // no signals on this platform
      }
    }
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}
