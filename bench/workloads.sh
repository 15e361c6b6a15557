#!/usr/bin/env bash
# Real workloads from others' toolchains: an HTTP handler in Python (componentize-py: CPython
# inside the component) and one in JavaScript (componentize-js: SpiderMonkey in StarlingMonkey),
# built here from bench/guests/{py-http,js-http} with the pinned tools from PyPI and npm, each
# served by `qyvol serve -q` and by `wasmtime serve -Scli` (the release Qyvol embeds) in one run:
# the first response after start with an empty cache and with a warm one, requests/s and p99
# under wrk, and the server's peak memory. Writes bench/workloads-results.md.
#   bench/workloads.sh              3 rounds, 10 s of wrk each
#   QUICK=1 bench/workloads.sh      1 round of 3 s
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10s}; CONNS=${CONNS:-16}; THREADS=${THREADS:-2}
if [ -n "${QUICK:-}" ]; then ROUNDS=1; DURATION=3s; fi
COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0

need wrk || apt_install wrk
ensure_wasmtime
cargo build --quiet --release -p cli
Q=${CARGO_TARGET_DIR:-$ROOT/target}/release/qyvol
D=$WORK/workloads
mkdir -p "$D"

# The toolchains, pinned, in bench/work only.
if ! [ -x "$D/venv/bin/componentize-py" ] || ! "$D/venv/bin/componentize-py" --version | grep -qF "$COMPONENTIZE_PY"; then
  python3 -m venv "$D/venv"
  "$D/venv/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY"
fi
if ! [ -x "$D/js/node_modules/.bin/componentize-js" ] || ! grep -qF "\"version\": \"$COMPONENTIZE_JS\"" "$D/js/node_modules/@bytecodealliance/componentize-js/package.json"; then
  mkdir -p "$D/js"
  npm install --prefix "$D/js" --no-audit --no-fund --loglevel=error "@bytecodealliance/componentize-js@$COMPONENTIZE_JS"
fi

# wasi:http's WIT from the wasmtime-wasi-http crate this build uses.
http_crate=$(cargo metadata --format-version 1 --locked | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == "wasmtime-wasi-http"))')
rm -rf "$D/wit" && mkdir -p "$D/wit" && cp -r "$http_crate/wit/deps" "$D/wit/" && cp bench/guests/wit-app.wit "$D/wit/world.wit"
"$D/venv/bin/componentize-py" -d "$D/wit" -w app componentize -p bench/guests/py-http app -o "$D/py-http.wasm" >/dev/null
# StarlingMonkey (componentize-js 0.23) exports wasi:http 0.2.10: the same interfaces under that
# number. componentize-js reads the WIT relative to where it runs.
rm -rf "$D/js/wit" && cp -r "$D/wit" "$D/js/wit"
sed -i 's/@0\.2\.12/@0.2.10/g; s/version = 0\.2\.12/version = 0.2.10/g' "$D/js/wit/world.wit" "$D/js/wit/deps/"*.wit
(cd "$D/js" && node_modules/.bin/componentize-js "$ROOT/bench/guests/js-http/app.js" --wit wit --world-name app -o ../js-http.wasm >/dev/null)
for w in py-http js-http; do
  printf 'version: 1\nname: %s\nentrypoint: %s.wasm\nruntime: wasi-http\nhttp:\n  route: /...\n' "$w" "$w" > "$D/$w.qyv"
done

# first LABEL ROUND CMD...: starts CMD (with $PORT in it), GETs / every 2 ms until a 200, and
# records the time from the start; then stops it.
first() {
  local label=$1 round=$2; shift 2
  python3 - "$label" "$round" "$PORT" "$@" >>"$D/first.tsv" <<'PY'
import socket, subprocess, sys, time
label, rnd, port, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if s.recv(12).startswith(b"HTTP/1.1 200"):
            break
    except OSError:
        pass
    if p.poll() is not None or time.monotonic() - t0 > 120:
        sys.exit(f"{label}: no 200 (exit {p.poll()})")
    time.sleep(0.002)
ms = (time.monotonic() - t0) * 1000
p.send_signal(2); p.wait()
print(f"{label}\t{rnd}\t{ms:.1f}")
PY
}

export QYVOL_LANG=en
: >"$D/first.tsv"; : >"$D/runs.tsv"; : >"$D/memory.tsv"
for round in $(seq "$ROUNDS"); do
  for w in py-http js-http; do
    PORT=$(free_port)
    # Empty caches: a fresh QYVOL_HOME; wasmtime without its cache.
    rm -rf "$D/home"
    QYVOL_HOME=$D/home first "$w|qyvol serve, empty cache" "$round" "$Q" serve -q --listen "127.0.0.1:$PORT" "$D/$w.qyv"
    first "$w|wasmtime serve, no cache" "$round" "$W" serve -Scli -C cache=n --addr "127.0.0.1:$PORT" "$D/$w.wasm"
    # With a request time limit, wasmtime compiles epoch checks into the code, as Qyvol always
    # does for a server (any request can be stopped, a busy handler yields its thread).
    first "$w|wasmtime serve -Wtimeout, no cache" "$round" "$W" serve -Scli -Wtimeout=30s -C cache=n --addr "127.0.0.1:$PORT" "$D/$w.wasm"
    # Warm: the cache the run above filled (qyvol's, once its background compile is done), and
    # wasmtime's own cache, filled by a first start.
    until QYVOL_HOME=$D/home "$Q" cache ls --json | python3 -c 'import json,sys; sys.exit(0 if any(e["tier"]=="cranelift" for e in json.load(sys.stdin)) else 1)'; do sleep 1; done
    QYVOL_HOME=$D/home first "$w|qyvol serve, warm cache" "$round" "$Q" serve -q --listen "127.0.0.1:$PORT" "$D/$w.qyv"
    XDG_CACHE_HOME=$D/wcache first "$w|wasmtime serve, warm cache" "$round" "$W" serve -Scli -C cache=y --addr "127.0.0.1:$PORT" "$D/$w.wasm" >/dev/null
    sed -i '$d' "$D/first.tsv"   # that start filled the cache; the next one is measured
    XDG_CACHE_HOME=$D/wcache first "$w|wasmtime serve, warm cache" "$round" "$W" serve -Scli -C cache=y --addr "127.0.0.1:$PORT" "$D/$w.wasm"
    # Throughput and peak memory, each server warm.
    for server in qyvol wasmtime; do
      if [ $server = qyvol ]; then
        QYVOL_HOME=$D/home "$Q" serve -q --listen "127.0.0.1:$PORT" "$D/$w.qyv" >/dev/null 2>&1 & PID=$!
        label="$w|qyvol serve -q"
      else
        XDG_CACHE_HOME=$D/wcache "$W" serve -Scli -C cache=y --addr "127.0.0.1:$PORT" "$D/$w.wasm" >/dev/null 2>&1 & PID=$!
        label="$w|wasmtime serve -Scli"
      fi
      until curl -sf -o /dev/null "http://127.0.0.1:$PORT/warm"; do sleep 0.05; done
      wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:$PORT/bench" >/dev/null
      wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/bench" >"$D/wrk.out"
      printf '%s\t%s\t%s\n' "$label" "$round" "$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")" >>"$D/memory.tsv"
      kill -INT "$PID"; wait "$PID" 2>/dev/null || true
      wrk_line "$label" "$round" "$D/wrk.out" >>"$D/runs.tsv"
      echo "round $round: $(tail -1 "$D/runs.tsv")"
    done
  done
done

python3 - "$D" "$DURATION" "$CONNS" "$THREADS" "$ROUNDS" "$COMPONENTIZE_PY" "$COMPONENTIZE_JS" "$("$W" --version)" >bench/workloads-results.md <<'PY'
import os, platform, statistics, subprocess, sys
from collections import defaultdict
d, duration, conns, threads, rounds, cpy, cjs, wasmtime = sys.argv[1:]
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
def table(path, cols):
    rows = defaultdict(list)
    for line in open(path):
        label, _, *vals = line.rstrip("\n").split("\t")
        rows[label].append([float(v) for v in vals])
    return {k: [statistics.median(r[i] for r in v) for i in range(cols)] for k, v in rows.items()}
first = table(f"{d}/first.tsv", 1)
runs = table(f"{d}/runs.tsv", 4)
mem = table(f"{d}/memory.tsv", 1)
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
dirty = sh("git status --porcelain --untracked-files=no -- . ':!bench/*results.md'")
size = lambda w: os.path.getsize(f"{d}/{w}.wasm") / 2**20
print("# Real workloads: Python and JavaScript HTTP handlers\n")
print(f"Machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}; "
      f"{sh(os.environ.get('CARGO_TARGET_DIR', 'target') + '/release/qyvol --version')}; {wasmtime}; "
      f"generated by `bench/workloads.sh` on {sh('date -u +%F')}; commit measured: "
      f"`{sh('git rev-parse --short=12 HEAD')}{' (with uncommitted changes)' if dirty else ''}`.\n")
print(f"Two components built here by others' toolchains from the handlers in `bench/guests/`: "
      f"**py-http** (componentize-py {cpy}: CPython in the component, {size('py-http'):.1f} MiB) and "
      f"**js-http** (componentize-js {cjs}: SpiderMonkey in StarlingMonkey, {size('js-http'):.1f} MiB), "
      "each a `wasi:http` handler answering a small JSON document. Each is served by "
      "`qyvol serve -q` (a fresh instance per request, its default) and `wasmtime serve -Scli` "
      f"(also a fresh instance per request). {rounds} round(s), medians. wrk and the server share the "
      "machine's cores.\n")
for w in ("py-http", "js-http"):
    print(f"## {w}\n")
    print("| first 200 after start | qyvol | wasmtime | ratio |\n|---|---|---|---|")
    for kind, qk, wk in (("empty cache", "qyvol serve, empty cache", "wasmtime serve, no cache"),
                         ("empty cache, both compiling epoch checks (wasmtime `-Wtimeout=30s`)",
                          "qyvol serve, empty cache", "wasmtime serve -Wtimeout, no cache"),
                         ("warm cache", "qyvol serve, warm cache", "wasmtime serve, warm cache")):
        q, x = first[f"{w}|{qk}"][0], first[f"{w}|{wk}"][0]
        print(f"| {kind} | {q:,.0f} ms | {x:,.0f} ms | **{q / x:.2f}×** |")
    print(f"\n`wrk -t{threads} -c{conns} -d{duration} --latency` on `GET /bench`, after 2 s of warm-up:\n")
    print("| server | requests/s | ratio | p50 | p99 | non-2xx | peak RSS |\n|---|---|---|---|---|---|---|")
    base = runs[f"{w}|wasmtime serve -Scli"][0]
    for s in ("qyvol serve -q", "wasmtime serve -Scli"):
        rps, p50, p99, errs = runs[f"{w}|{s}"]
        print(f"| {s} | {rps:,.0f} | {rps / base:.2f}× | {p50:.2f} ms | {p99:.2f} ms | {errs:.0f} | "
              f"{mem[f'{w}|{s}'][0] / 1024:.0f} MiB |")
    print()
PY
echo "wrote bench/workloads-results.md"
