#!/usr/bin/env bash
# The GPU benchmark: vitrep's webgpu backend against PyTorch CUDA on one lent GPU
# machine that has PyTorch but no Deno, no Node and no network (issue 15).
#
#   bash tools/gpu_bench.sh pack [--deno PATH]
#       Run HERE (needs network to npm and Debian, or a warm Deno cache and apt).
#       Fills .gpu/ (git-ignored: the script adds "/.gpu/" to .git/info/exclude):
#         deno.xz            the Deno binary (xz -9)
#         deno_dir.tar.xz    a minimal DENO_DIR: only the npm packages the webgpu
#                            path loads (onnxruntime-web with just its webgpu
#                            entry and the asyncify .mjs/.wasm that loads,
#                            onnxruntime-common, fast-png, fflate, jpeg-js and
#                            their dependencies, from deno.lock; onnxruntime-node
#                            without its binaries and pngjs, which Deno resolves
#                            at start but the webgpu path never loads)
#         debs/*.deb         the Vulkan/GL loaders for amd64 (libvulkan1 etc.)
#       Prints each part's size and the total with what travels besides (tracked
#       and untracked-not-ignored files) and fails if that is over 64 MiB.
#
#   bash tools/gpu_bench.sh run [--small] [gpu_bench.ts options...]
#       Run THERE, from the repository root, with .gpu carried. Unpacks Deno and
#       the DENO_DIR into $GPU_BENCH_TMP (default /tmp/vitrep_gpu), installs the
#       Vulkan loaders if none is found (dpkg -x into /, ldconfig; the NVIDIA
#       driver's ICD through VK_DRIVER_FILES where no ICD file names it), then runs
#       tools/gpu_bench.ts with --cached-only (nothing is fetched): the ViT-B/32
#       L12 step at batch 1 and 8 on webgpu, then PyTorch (CUDA where it sees a
#       GPU, else CPU) fp32 and bf16. The table goes to stdout and, when $OUT is
#       set, to $OUT/gpu_bench.md (+ .json and the log).
#       --small: vit_b_32 L1, batches 1,2, 2 repeats, 1 warm-up (a check, not a
#       timing). Other options go to tools/gpu_bench.ts (--layer, --batches,
#       --repeats, --model, --torch-device, --dtypes); from the pack only the
#       webgpu backend runs (wasm's files and native's binaries are left out).
#
# Exit codes: 2 usage, 1 failure (a pack over 64 MiB, a missing part).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GPU=$ROOT/.gpu
LIMIT=$((64 * 1024 * 1024))
# the Vulkan loader and the GL/EGL dispatch libraries NVIDIA's ICD may link to
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
# the npm packages the webgpu path imports (src/model/backend.ts, src/io/image.ts);
# onnxruntime-node only as a stub without its native binaries (bin/): Deno
# resolves every npm import in the module graph at start, the dynamic one of the
# native backend too, so --cached-only needs the package, but webgpu never loads it;
# pngjs and @types/pngjs because deno.json's import map names them (Deno caches those at start)
ROOTS=(onnxruntime-web fast-png fflate jpeg-js onnxruntime-node pngjs @types/pngjs)
# onnxruntime-web's dist files its webgpu entry loads ("./webgpu" in its exports:
# in 1.30 the bundle loads the asyncify build, with the native WebGPU EP, not jsep)
ORT_KEEP=(ort.webgpu.bundle.min.mjs ort-wasm-simd-threaded.asyncify.mjs ort-wasm-simd-threaded.asyncify.wasm)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

size_of() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# name@version of every npm package reachable from ROOTS in deno.lock
npm_closure() {
  "$1" eval --no-config '
    const lock = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
    const keys = Object.keys(lock.npm);
    const find = (dep) => {
      if (lock.npm[dep]) return dep;
      const hits = keys.filter((k) => k.slice(0, k.lastIndexOf("@")) === dep);
      if (hits.length !== 1) throw new Error(`deno.lock: "${dep}" has ${hits.length} versions`);
      return hits[0];
    };
    const seen = new Set();
    const walk = (k) => {
      if (seen.has(k)) return;
      seen.add(k);
      for (const d of lock.npm[k].dependencies ?? []) walk(find(d));
    };
    for (const r of Deno.args.slice(1)) walk(find(r));
    console.log([...seen].sort().join("\n"));
  ' "$ROOT/deno.lock" "${ROOTS[@]}"
}

pack_deno_dir() {
  local deno=$1 out=$2 src
  # make sure the global npm cache holds the packages (no node_modules: DENO_DIR/npm)
  (cd "$ROOT" && "$deno" cache --node-modules-dir=none tools/gpu_bench.ts >/dev/null 2>&1) ||
    { echo "error: 'deno cache --node-modules-dir=none tools/gpu_bench.ts' failed: is npm reachable?" >&2; exit 1; }
  src=$(cd "$ROOT" && "$deno" info --json | "$deno" eval --no-config \
    'console.log(JSON.parse(await new Response(Deno.stdin.readable).text()).npmCache)')
  src=$src/registry.npmjs.org
  local dd=$out/deno_dir reg
  reg=$dd/npm/registry.npmjs.org
  mkdir -p "$reg"
  local pkg name ver list
  list=$(npm_closure "$deno")
  for pkg in $list; do
    name=${pkg%@*} ver=${pkg##*@}
    [ -d "$src/$name/$ver" ] || { echo "error: $src/$name/$ver is missing: run deno cache online first" >&2; exit 1; }
    mkdir -p "$reg/$name"
    cp "$src/$name/registry.json" "$reg/$name/"
    cp -r "$src/$name/$ver" "$reg/$name/$ver"
  done
  # only the webgpu entry of onnxruntime-web; no docs, maps or typings anywhere
  local ort=$reg/onnxruntime-web/$(ls "$reg/onnxruntime-web" | grep -v registry.json)
  rm -rf "$ort/lib" "$ort/docs"
  find "$ort/dist" -type f $(printf -- '-not -name %s ' "${ORT_KEEP[@]}") -delete
  for f in "${ORT_KEEP[@]}"; do
    [ -f "$ort/dist/$f" ] || { echo "error: onnxruntime-web dist/$f is missing" >&2; exit 1; }
  done
  rm -rf "$reg"/onnxruntime-node/*/bin
  find "$reg" -type f \( -name '*.map' -o -name '*.md' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
  tar -C "$out" -cf - deno_dir | xz -9 -T1 >"$out/deno_dir.tar.xz"
  rm -rf "$dd"
}

pack_debs() {
  local out=$1/debs lists=/tmp/vitrep_gpu_apt
  mkdir -p "$out" "$lists/partial"
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists"
    -oAPT::Sandbox::User=root)
  apt-get "${o[@]}" update >/dev/null
  (cd "$out" && apt-get "${o[@]}" download "${DEBS[@]}" >/dev/null)
  for f in "$out"/*.deb; do dpkg-deb --info "$f" >/dev/null; done
}

pack() {
  local deno=/opt/denonpm/node_modules/deno/deno
  while [ $# -gt 0 ]; do
    case $1 in
    --deno) deno=${2:?--deno needs a path}; shift 2 ;;
    *) echo "error: unknown pack option \"$1\": expected --deno PATH" >&2; exit 2 ;;
    esac
  done
  [ -x "$deno" ] || deno=$(command -v deno) || { echo "error: no deno binary: give --deno PATH" >&2; exit 1; }
  local exclude=$ROOT/.git/info/exclude
  mkdir -p "$(dirname "$exclude")"
  for line in /.gpu/ /.gpu.partial/; do
    grep -qx "$line" "$exclude" 2>/dev/null || echo "$line" >>"$exclude"
  done
  local tmp=$ROOT/.gpu.partial
  rm -rf "$tmp" && mkdir -p "$tmp"
  trap 'rm -rf "$ROOT/.gpu.partial"' EXIT
  echo "deno $("$deno" --version | head -1 | cut -d' ' -f2) from $deno" >&2
  # the binary's xz is reused from an earlier pack of the same binary (it takes minutes)
  local sum
  sum=$(sha256sum "$deno" | cut -d' ' -f1)
  if [ -f "$GPU/deno.xz" ] && [ "$(cat "$GPU/deno.sha256" 2>/dev/null)" = "$sum" ]; then
    cp "$GPU/deno.xz" "$tmp/deno.xz"
  else
    xz -9 -T1 -c "$deno" >"$tmp/deno.xz"
  fi
  echo "$sum" >"$tmp/deno.sha256"
  pack_deno_dir "$deno" "$tmp"
  pack_debs "$tmp"
  rm -rf "$GPU" && mv "$tmp" "$GPU"
  report_sizes
}

report_sizes() {
  local tracked others part total
  tracked=$(cd "$ROOT" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  others=$(cd "$ROOT" && git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
  others=${others:-0}
  total=$((tracked + others))
  for part in deno.xz deno_dir.tar.xz debs; do
    printf '%-28s %s\n' ".gpu/$part" "$(mib "$(size_of "$GPU/$part")")"
    total=$((total + $(size_of "$GPU/$part")))
  done
  printf '%-28s %s\n' "tracked files" "$(mib "$tracked")" "untracked, not ignored" "$(mib "$others")"
  printf '%-28s %s (limit %s)\n' "total that travels" "$(mib "$total")" "$(mib "$LIMIT")"
  if [ "$total" -gt "$LIMIT" ]; then
    echo "error: $(mib "$total") travels, over the limit of $(mib "$LIMIT"): shrink .gpu or the tree" >&2
    exit 1
  fi
}

# decompress an .xz file to stdout, with xz or with Python's lzma where xz is absent
unxz() {
  if command -v xz >/dev/null; then xz -dc "$1"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

vulkan_setup() {
  if ! ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null; then
    echo "installing the Vulkan loaders from .gpu/debs" >&2
    for f in "$GPU"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nv" ] &&
    ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nv
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(loader default)}; ICD files:" \
    $(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null) >&2
}

run() {
  [ -n "${OUT:-}" ] && exec > >(tee -a "$OUT/gpu_bench.log") 2>&1
  local args=()
  if [ "${1:-}" = --small ]; then
    shift
    args=(--model vit_b_32 --layer 1 --batches 1,2 --repeats 2 --warmup 1)
  fi
  for part in deno.xz deno_dir.tar.xz; do
    [ -f "$GPU/$part" ] || { echo "error: .gpu/$part is missing: run 'bash tools/gpu_bench.sh pack' and carry .gpu" >&2; exit 1; }
  done
  local tmp=${GPU_BENCH_TMP:-/tmp/vitrep_gpu}
  rm -rf "$tmp" && mkdir -p "$tmp"
  unxz "$GPU/deno.xz" >"$tmp/deno" && chmod +x "$tmp/deno"
  unxz "$GPU/deno_dir.tar.xz" | tar -C "$tmp" -xf -
  vulkan_setup
  command -v nvidia-smi >/dev/null && nvidia-smi -L >&2 || true
  "$tmp/deno" --version | head -1 >&2
  # wgpu's Vulkan instance complains on every adapter request without one
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { export XDG_RUNTIME_DIR=$tmp/xdg && mkdir -m 700 "$XDG_RUNTIME_DIR"; }
  cd "$ROOT"
  DENO_DIR=$tmp/deno_dir DENO_NO_UPDATE_CHECK=1 "$tmp/deno" run -A --cached-only \
    --node-modules-dir=none tools/gpu_bench.ts --python "${PYTHON:-python3}" "${args[@]}" "$@"
}

case ${1:-} in
pack) shift && pack "$@" ;;
run) shift && run "$@" ;;
*) usage ;;
esac
