# Shared by bench/run.sh, bench/serve.sh and bench/node.sh (sourced from the repository's root): the folders,
# installing what a machine lacks, and the wasmtime CLI to compare with.
ROOT=$PWD
WORK=$ROOT/bench/work
WASMTIME_VERSION=49.0.5

need() { command -v "$1" >/dev/null 2>&1; }
# A free TCP port on the loopback (the kernel's pick).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}

# The newest wasmtime release that builds here, the peer every table compares with: in
# bench/work/tools-newest, built with the toolchain it needs (installed by rustup when missing);
# sets W_NEWEST. (Qyvol embeds WASMTIME_VERSION; the peer is the newest, as users install it.)
WASMTIME_NEWEST=50.0.1
WASMTIME_NEWEST_RUST=1.97.0
ensure_wasmtime_newest() {
  W_NEWEST=$WORK/tools-newest/bin/wasmtime
  if ! [ -x "$W_NEWEST" ] || ! "$W_NEWEST" --version | grep -q "$WASMTIME_NEWEST"; then
    echo "installing wasmtime-cli $WASMTIME_NEWEST with Rust $WASMTIME_NEWEST_RUST (once; takes a while)"
    rustup toolchain install "$WASMTIME_NEWEST_RUST" --profile minimal
    cargo "+$WASMTIME_NEWEST_RUST" install --quiet wasmtime-cli@"$WASMTIME_NEWEST" --locked \
      --root "$WORK/tools-newest"
  fi
}

# The wasmtime CLI the benchmarks compare with: the newest release; sets W to its path.
ensure_wasmtime() {
  ensure_wasmtime_newest
  W=$W_NEWEST
}

# wrk_line LABEL ROUND FILE: one TSV line (label, round, requests/s, p50 ms, p99 ms, non-2xx)
# from the output of `wrk --latency` in FILE.
wrk_line() {
  python3 - "$@" <<'PY'
import re, sys
label, rnd, path = sys.argv[1:]
text = open(path).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
# Anchored: a "+/- Stdev" column such as "72.50%" must not pass for the 50th percentile.
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{label}\t{rnd}\t{rps}\t{p50}\t{p99}\t{errors.group(1) if errors else 0}")
PY
}

# wasmer-cli 7.5.0 (the newest release) with its Cranelift backend (without that feature it has no compiler), in
# bench/work/tools; sets WASMER to its path. Its cache lives in $WASMER_DIR (set by the caller).
WASMER_VERSION=7.5.0
ensure_wasmer() {
  WASMER=$WORK/tools/bin/wasmer
  if ! [ -x "$WASMER" ] || ! "$WASMER" --version | grep -q "$WASMER_VERSION"; then
    echo "installing wasmer-cli $WASMER_VERSION (once; takes a while)"
    cargo install --quiet wasmer-cli --version "$WASMER_VERSION" --locked --features cranelift --root "$WORK/tools"
  fi
}
