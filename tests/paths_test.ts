// The one rule for what vitrep writes and removes (issue 20, src/io/paths.ts): the path
// check on its own (root, system folders, a fake home and its ancestors, symlinks), the
// marker rule of claimFolder/removeOutputs, and the commands end to end with a fake HOME
// in child processes and temporary folders, never the real home or a system folder.
import { assert, assertEquals } from "./_assert.ts";
import { exists, json, ROOT, run, runWithHome, TINY, tmp } from "./_cli.ts";
import {
  checkWritePath,
  claimFolder,
  inspectFolder,
  MARKER_FILE,
  readMarker,
  recordFiles,
  removeOutputs,
} from "../src/io/paths.ts";
import { publishReport } from "../src/essay/mod.ts";

const PHOTO = `${ROOT}assets/chelsea.png`;

/** A temporary folder (real path) with a fake home `home/` inside it. */
async function fakeHome(): Promise<{ base: string; home: string }> {
  const base = Deno.realPathSync(await tmp());
  const home = `${base}/home`;
  await Deno.mkdir(`${home}/sub`, { recursive: true });
  return { base, home };
}

/** Names in `dir`, sorted. */
const names = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** The RangeError `p` rejects with (fails when it resolves or rejects otherwise). */
async function rejection(p: Promise<unknown>): Promise<RangeError> {
  try {
    await p;
  } catch (err) {
    assert(err instanceof RangeError, `not a RangeError: ${err}`);
    return err;
  }
  throw new Error("not refused");
}

/** Throws RangeError whose message holds every text of `texts`. */
function refused(fn: () => unknown, texts: string[]): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert(caught instanceof RangeError, `not refused: ${caught}`);
  for (const t of texts) {
    assert(caught.message.includes(t), `"${caught.message}" lacks ${t}`);
  }
}

Deno.test("checkWritePath: empty, root, the home folder and its ancestors, system folders and symlinks to them are refused", async () => {
  const { base, home } = await fakeHome();
  const o = { home };
  const check = (p: string) => checkWritePath(p, "--out", o);
  refused(() => check(""), ['--out ""', "expected"]);
  refused(() => check("  "), ['--out "  "']);
  refused(() => check("/"), ['"/"', "(/)", "root", "expected a folder"]);
  refused(() => check("//"), ["root"]);
  refused(() => check(home), [`"${home}"`, "home folder"]);
  refused(() => check(`${home}/`), ["home folder"]);
  refused(() => check(`${home}/sub/..`), ["home folder"]);
  refused(() => check(base), [`(${base})`, "holding the home folder"]);
  refused(() => check(`${base}/..`), ["holding the home folder"]);
  for (const sys of ["/etc", "/usr", "/bin", "/var", "/proc", "/dev", "/tmp"]) {
    refused(() => checkWritePath(sys, "--out", { home: null }), [
      `"${sys}"`,
      "system folder",
    ]);
  }
  refused(() => check("/tmp"), ["/tmp"]);
  refused(() => check("/usr/local/vitrep-out"), ["system folder"]);
  refused(() => check("/etc/vitrep"), ["system folder"]);
  // symlinks are followed: to the home folder, above it, and ".." after a link
  await Deno.symlink(home, `${base}/to_home`);
  refused(() => check(`${base}/to_home`), [`"${base}/to_home"`, `(${home})`]);
  await Deno.symlink(base, `${home}/sub/to_base`);
  refused(() => check(`${home}/sub/to_base`), ["holding the home folder"]);
  await Deno.mkdir(`${base}/a/b`, { recursive: true });
  await Deno.symlink(`${home}/sub`, `${base}/a/b/link`);
  // lexically base/a, but the system goes through the link: home/sub/.. = home
  refused(() => check(`${base}/a/b/link/..`), ["home folder"]);
  // a dangling link is followed to where a folder would be made
  await Deno.symlink("/etc/vitrep-nowhere", `${base}/dangling`);
  refused(() => check(`${base}/dangling`), ["system folder"]);
  // accepted: inside the home folder, a temporary folder, a link to a subfolder of home
  assertEquals(check(`${home}/out/run1`), `${home}/out/run1`);
  assertEquals(check(`${home}/sub`), `${home}/sub`);
  assertEquals(check(`${base}/x`), `${base}/x`);
  assertEquals(check(`${base}/to_home/out`), `${home}/out`);
  assertEquals(check(`${base}/a/b/link/new`), `${home}/sub/new`);
  // no home known: root and system folders are still refused
  refused(() => checkWritePath("/", "--out", { home: null }), ["root"]);
  assertEquals(
    checkWritePath(`${base}/y`, "--out", { home: null }),
    `${base}/y`,
  );
});

Deno.test("claimFolder: new (marker first), empty, vitrep's own of the kind; a folder of the user's is refused naming its files", async () => {
  const { base } = await fakeHome();
  const fresh = `${base}/new/run`;
  const c = await claimFolder(fresh, "run", { command: "invert" });
  assertEquals([c.created, c.was], [true, "new"]);
  assertEquals(names(fresh), [MARKER_FILE]);
  const m = await json(`${fresh}/${MARKER_FILE}`);
  assertEquals([m.vitrep, m.kind, m.command, m.files], [
    1,
    "run",
    "invert",
    [],
  ]);
  assert(/^[0-9a-f-]{36}$/.test(m.id) && !isNaN(Date.parse(m.created)));
  // the same kind again: kept as it is
  assertEquals((await claimFolder(fresh, "run")).marker.id, m.id);
  // empty: marked
  await Deno.mkdir(`${base}/empty`);
  assertEquals((await claimFolder(`${base}/empty`, "grid")).was, "empty");
  // a user's folder: refused, naming its files, nothing written
  const mine = `${base}/mine`;
  await Deno.mkdir(mine);
  await Deno.writeTextFile(`${mine}/keep.txt`, "mine");
  await Deno.writeTextFile(`${mine}/index.html`, "<p>");
  await Deno.writeTextFile(`${mine}/claims.json`, "{}");
  for (const kind of ["run", "grid", "essay", "publish"] as const) {
    for (const overwrite of [false, true]) {
      const err = await rejection(claimFolder(mine, kind, { overwrite }));
      assert(err.message.includes("keep.txt"), err.message);
      assert(err.message.includes(`(${mine})`), err.message);
    }
  }
  assertEquals(names(mine), ["claims.json", "index.html", "keep.txt"]);
  // a file named like the marker that vitrep did not write
  await Deno.writeTextFile(`${mine}/${MARKER_FILE}`, '{"kind": "publish"}');
  const bad = await rejection(removeOutputs(mine, "publish"));
  assert(/Invalid marker/.test(bad.message), bad.message);
  assertEquals(names(mine).length, 4);
  // a file, not a folder
  await Deno.writeTextFile(`${base}/file`, "x");
  const file = await rejection(inspectFolder(`${base}/file`, "run"));
  assert(/not a folder/.test(file.message), file.message);
});

Deno.test("removeOutputs: only the files vitrep lists or writes for the kind; anything else refuses and stays; links are removed, not followed", async () => {
  const { base } = await fakeHome();
  const dir = `${base}/run`;
  const since = Date.now();
  await claimFolder(dir, "run", { command: "invert" });
  await Deno.mkdir(`${dir}/snapshot`);
  for (const f of ["metrics.json", "traces.csv", "snapshot/state.json"]) {
    await Deno.writeTextFile(`${dir}/${f}`, "{}");
  }
  await Deno.writeTextFile(`${dir}/notes-of-run.txt`, "listed");
  assertEquals(await recordFiles(dir, since), [
    "metrics.json",
    "notes-of-run.txt",
    "snapshot/state.json",
    "traces.csv",
  ]);
  // a file the user puts there later is not listed (old mtime), and refuses removal
  const keep = `${dir}/keep.txt`;
  await Deno.writeTextFile(keep, "mine");
  await Deno.utime(keep, 1, 1);
  assertEquals(
    (await recordFiles(dir, Date.now())).includes("keep.txt"),
    false,
  );
  const err = await rejection(removeOutputs(dir, "run"));
  assert(err.message.includes("keep.txt"), err.message);
  assertEquals(names(dir), [
    MARKER_FILE,
    "keep.txt",
    "metrics.json",
    "notes-of-run.txt",
    "snapshot",
    "traces.csv",
  ]);
  // another kind's marker: refused
  await Deno.remove(keep);
  const kind = await rejection(removeOutputs(dir, "grid"));
  assert(/of a run's output/.test(kind.message), kind.message);
  // a link named like vitrep's file: the link goes, its target stays
  const target = `${base}/precious.json`;
  await Deno.writeTextFile(target, "precious");
  await Deno.remove(`${dir}/metrics.json`);
  await Deno.symlink(target, `${dir}/metrics.json`);
  const removed = await removeOutputs(dir, "run");
  assertEquals(removed.sort(), [
    "metrics.json",
    "notes-of-run.txt",
    "snapshot/state.json",
    "traces.csv",
  ]);
  assertEquals(names(dir), [MARKER_FILE]);
  assertEquals(await Deno.readTextFile(target), "precious");
});

Deno.test("older vitrep folders without marker: accepted for their kind only when every file is vitrep's", async () => {
  const { base } = await fakeHome();
  const old = `${base}/old`;
  await Deno.mkdir(`${old}/snapshot`, { recursive: true });
  await Deno.writeTextFile(`${old}/metrics.json`, '{"command": "invert"}');
  await Deno.writeTextFile(`${old}/snapshot/state.json`, "{}");
  assertEquals((await inspectFolder(old, "run")).status, "legacy");
  // not a grid's
  const grid = await rejection(inspectFolder(old, "grid"));
  assert(/metrics\.json/.test(grid.message), grid.message);
  // with a file of the user's: refused, naming it
  await Deno.writeTextFile(`${old}/keep.txt`, "mine");
  const keep = await rejection(inspectFolder(old, "run"));
  assert(/keep\.txt/.test(keep.message), keep.message);
  await Deno.remove(`${old}/keep.txt`);
  // claimed: a marker listing its files
  const c = await claimFolder(old, "run", { command: "invert" });
  assertEquals(c.was, "legacy");
  assertEquals(c.marker.files, ["metrics.json", "snapshot/state.json"]);
  // an older published copy has no record: refused, with how to replace it
  const pub = `${base}/pub`;
  await Deno.mkdir(pub);
  await Deno.writeTextFile(`${pub}/index.html`, "<p>");
  const hint = await rejection(
    inspectFolder(pub, "publish", { hint: "remove it yourself" }),
  );
  assert(/remove it yourself/.test(hint.message), hint.message);
});

// ---------------------------------------------------------------------------
// The commands

/** `essay --report-only` with no models: a finished (all "not run") report, computing nothing. */
function essayArgs(base: string, ...more: string[]): string[] {
  return [
    "essay",
    "--report-only",
    "--models",
    `${base}/models`,
    "--image",
    PHOTO,
    ...more,
  ];
}

Deno.test("essay --publish and --out with a fake HOME: a user's folder, the home folder and links to it are refused and kept; a marked copy is replaced", async () => {
  const { base, home } = await fakeHome();
  await Deno.mkdir(`${base}/models`);
  const report = `${base}/report`;
  // the case: keep.txt beside an index.html and claims.json
  const victim = `${base}/victim`;
  await Deno.mkdir(victim);
  await Deno.writeTextFile(`${victim}/keep.txt`, "mine");
  await Deno.writeTextFile(`${victim}/index.html`, "<p>mine</p>");
  await Deno.writeTextFile(`${victim}/claims.json`, "{}");
  const r = await runWithHome(
    home,
    essayArgs(base, "--out", report, "--publish", victim),
  );
  assert(r.code !== 0, r.err);
  assert(r.err.includes("keep.txt"), r.err);
  assertEquals(names(victim), ["claims.json", "index.html", "keep.txt"]);
  assertEquals(await Deno.readTextFile(`${victim}/keep.txt`), "mine");
  assertEquals(await Deno.readTextFile(`${victim}/index.html`), "<p>mine</p>");
  assertEquals(await exists(report), false);
  // --out: a user's folder, the home folder, a link to it, "" for --publish
  const cases: [string[], string][] = [
    [["--out", victim], "keep.txt"],
    [["--out", home], "home folder"],
    [["--out", `${home}/sub/..`], "home folder"],
    [["--out", report, "--publish", home], "home folder"],
    [["--out", report, "--publish", ""], '--publish ""'],
  ];
  await Deno.symlink(home, `${base}/to_home`);
  cases.push([["--out", `${base}/to_home`], `(${home})`]);
  cases.push([["--out", report, "--publish", `${base}/to_home`], "home"]);
  for (const [args, text] of cases) {
    const c = await runWithHome(home, essayArgs(base, ...args));
    assertEquals(c.code, 2, `${args.join(" ")}: ${c.err}`);
    assert(c.err.includes(text), `${args.join(" ")}: ${c.err}`);
  }
  assertEquals(names(home), ["sub"]);
  assertEquals(names(`${home}/sub`), []);
  assertEquals(names(victim), ["claims.json", "index.html", "keep.txt"]);
  assertEquals(await exists(report), false);
  // a new folder, then the same again: the marked copy is replaced, only its files
  const pub = `${home}/sub/pub`;
  for (let i = 0; i < 2; i++) {
    const p = await runWithHome(
      home,
      essayArgs(base, "--out", report, "--publish", pub),
    );
    assertEquals(p.code, 0, p.err);
    assert(/published .*: 3 files/.test(p.out), p.out);
  }
  const marker = await readMarker(pub);
  assertEquals([marker?.kind, marker?.files], ["publish", [
    "claims.json",
    "index.html",
    "summary.md",
  ]]);
  assertEquals(names(pub), [
    MARKER_FILE,
    "claims.json",
    "index.html",
    "summary.md",
  ]);
  assertEquals((await readMarker(report))?.kind, "essay");
  // no temporary sibling left
  assertEquals(names(`${home}/sub`), ["pub"]);
  // a file of the user's put in the published copy: refused, nothing removed
  await Deno.writeTextFile(`${pub}/keep.txt`, "mine");
  const again = await runWithHome(
    home,
    essayArgs(base, "--out", report, "--publish", pub),
  );
  assertEquals(again.code, 2, again.err);
  assert(again.err.includes("keep.txt"), again.err);
  assertEquals(names(pub), [
    MARKER_FILE,
    "claims.json",
    "index.html",
    "keep.txt",
    "summary.md",
  ]);
  // the report folder holds a publish copy's marker: not an essay folder
  const c = await runWithHome(home, essayArgs(base, "--out", pub));
  assertEquals(c.code, 2, c.err);
  assert(c.err.includes("published essay report"), c.err);
});

const INV = (out: string, ...more: string[]) => [
  "invert",
  ...TINY,
  ...["--image", PHOTO, "--layer", "2", "--steps", "2", "--out", out],
  ...more,
];

Deno.test("--overwrite removes only what the other run wrote: a user's keep.txt is named, kept, and the run refused", async () => {
  const { base } = await fakeHome();
  // a user's folder with an index.html and claims.json beside keep.txt
  const mine = `${base}/mine`;
  await Deno.mkdir(mine);
  for (const f of ["keep.txt", "index.html", "claims.json"]) {
    await Deno.writeTextFile(`${mine}/${f}`, "mine");
  }
  const r = await run(INV(mine, "--overwrite"));
  assertEquals(r.code, 2, r.err);
  assert(r.err.includes("keep.txt"), r.err);
  assertEquals(names(mine), ["claims.json", "index.html", "keep.txt"]);
  // a run's folder where the user put keep.txt afterwards
  const out = `${base}/run`;
  assertEquals((await run(INV(out))).code, 0);
  await Deno.writeTextFile(`${out}/keep.txt`, "mine");
  await Deno.utime(`${out}/keep.txt`, 1, 1);
  const other = await run(INV(out, "--steps", "3", "--overwrite"));
  assertEquals(other.code, 2, other.err);
  assert(other.err.includes("keep.txt"), other.err);
  assertEquals(await Deno.readTextFile(`${out}/keep.txt`), "mine");
  assertEquals((await json(`${out}/metrics.json`)).final.steps, 2);
  // the same run again keeps it, and does not list it
  assertEquals((await run(INV(out))).code, 0);
  assertEquals(await Deno.readTextFile(`${out}/keep.txt`), "mine");
  assert(!(await readMarker(out))!.files.includes("keep.txt"));
  // moved away: --overwrite replaces the run
  await Deno.remove(`${out}/keep.txt`);
  const replaced = await run(INV(out, "--steps", "3", "--overwrite"));
  assertEquals(replaced.code, 0, replaced.err);
  assertEquals((await json(`${out}/metrics.json`)).final.steps, 3);
});

Deno.test("grid and forward into an invert run's folder are refused; --overwrite replaces that run", async () => {
  const { base } = await fakeHome();
  const out = `${base}/inv`;
  assertEquals((await run(INV(out))).code, 0);
  const invert = await Deno.readTextFile(`${out}/metrics.json`);
  const grid = [
    "grid",
    ...TINY,
    ...["--image", PHOTO, "--layers", "1", "--steps", "2", "--out", out],
  ];
  const forward = [
    "forward",
    ...TINY.filter((a) => a !== "--quiet"),
    ...["--image", PHOTO, "--layer", "1", "--out", out],
  ];
  for (
    const args of [grid, forward, [
      "filters",
      ...forward.slice(1, 5),
      "--out",
      out,
    ]]
  ) {
    const r = await run(args);
    assertEquals(r.code, 2, `${args[0]}: ${r.err}`);
    assert(r.err.includes("--overwrite"), r.err);
    assertEquals(await Deno.readTextFile(`${out}/metrics.json`), invert);
    assert(await exists(`${out}/representation.png`));
  }
  const f = await run([...forward, "--overwrite"]);
  assertEquals(f.code, 0, f.err);
  assertEquals((await json(`${out}/metrics.json`)).command, "forward");
  assertEquals(await exists(`${out}/representation.png`), false);
  assertEquals((await readMarker(out))?.command, "forward");
  const g = await run([...grid, "--overwrite"]);
  assertEquals(g.code, 0, g.err);
  assertEquals((await json(`${out}/metrics.json`)).command, "grid");
  assertEquals(await exists(`${out}/output.npy`), false);
  assertEquals((await readMarker(out))?.kind, "grid");
  // and back: invert into the grid's folder is refused
  const i = await run(INV(out));
  assertEquals(i.code, 2, i.err);
  assert(i.err.includes("grid"), i.err);
});

Deno.test("a run's snapshot folder: only vitrep's files in it are removed; a file of the user's there stops the run and stays", async () => {
  const { base } = await fakeHome();
  const out = `${base}/snap`;
  const first = await run(INV(out, "--steps", "6", "--stop-at", "3"));
  assertEquals(first.code, 0, first.err);
  await Deno.writeTextFile(`${out}/snapshot/keep.txt`, "mine");
  await Deno.utime(`${out}/snapshot/keep.txt`, 1, 1);
  // starting over (the same options) removes the snapshot: not this one
  const again = await run(INV(out, "--steps", "6"));
  assertEquals(again.code, 1, again.err);
  assert(again.err.includes("keep.txt"), again.err);
  // --overwrite with other options: refused before anything is removed
  const other = await run(INV(out, "--steps", "4", "--overwrite"));
  assertEquals(other.code, 2, other.err);
  assert(other.err.includes("snapshot/keep.txt"), other.err);
  assertEquals(await Deno.readTextFile(`${out}/snapshot/keep.txt`), "mine");
  assert(await exists(`${out}/metrics.json`));
});

Deno.test("publishReport: a page reference leaving the report folder is refused; nothing is written outside", async () => {
  const { base } = await fakeHome();
  const out = `${base}/report`;
  await Deno.mkdir(out);
  await Deno.writeTextFile(`${base}/secret.txt`, "secret");
  await Deno.writeTextFile(
    `${out}/index.html`,
    `<p><a href="../secret.txt">s</a></p>`,
  );
  await Deno.writeTextFile(`${out}/claims.json`, "{}");
  await Deno.writeTextFile(`${out}/summary.md`, "|a|");
  let err: unknown = null;
  await publishReport(out, `${base}/pub/copy`).catch((e) => (err = e));
  assert(
    err instanceof TypeError && /outside the report folder/.test(err.message),
  );
  assertEquals(names(base), ["home", "pub", "report", "secret.txt"]);
  assertEquals(names(`${base}/pub`), []);
});
