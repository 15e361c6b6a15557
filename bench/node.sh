#!/usr/bin/env bash
# The node (`qyvol node`, `qyvol deploy`) in one run: deploy → first response with a warm module,
# the node's memory per idle HTTP app (1,000 deployed), and requests/s through the node against
# `qyvol serve` on the same app; writes bench/node-results.md. See bench/README.md.
#   bench/node.sh               20 deploys, 1,000 apps, 3 alternating rounds of 15 s
#   QUICK=1 bench/node.sh       the same deploys and apps, 1 round of 5 s
#   Q=/path/to/qyvol bench/node.sh   measures that binary instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
D=$WORK/node
mkdir -p "$D"
DEPLOYS=${DEPLOYS:-20}; APPS=${APPS:-1000}; PAR=${PAR:-4}
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-15s}; CONNS=${CONNS:-32}; THREADS=${THREADS:-2}
if [ -n "${QUICK:-}" ]; then ROUNDS=1; DURATION=5s; fi

need wrk || apt_install wrk
need curl || apt_install curl
if [ -z "${Q:-}" ]; then
  cargo build --quiet --release -p cli
  Q=$ROOT/target/release/qyvol
fi
export Q QYVOL_LANG=en
HELLO=$ROOT/examples/http-hello
# qv ARGS...: a `qyvol` verb, quiet unless it fails (then its messages are shown).
qv() { "$Q" "$@" >/dev/null 2>"$D/cli.err" || { cat "$D/cli.err"; return 1; }; }

# A fresh home for the node (its state, module store and compile cache); the node's socket is
# in it, so every `qyvol` verb below talks to this node.
export QYVOL_HOME=$D/home
rm -rf "$QYVOL_HOME"
NODE_PID=""; SERVE_PID=""

# node_start: `qyvol node -d` on a free app port ($NPORT); sets NODE_PID.
node_start() {
  NPORT=$(free_port)
  qv node -d --http "127.0.0.1:$NPORT"
  NODE_PID=$(cat "$QYVOL_HOME/node/node.pid")
}
node_stop() {
  [ -n "$NODE_PID" ] || return 0
  "$Q" node stop >/dev/null 2>&1 || true
  # `node stop` returns when the API is gone; the process may take a moment more.
  for _ in $(seq 100); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.05; done
  kill "$NODE_PID" 2>/dev/null || true
  NODE_PID=""
}
serve_stop() {
  [ -n "$SERVE_PID" ] || return 0
  kill -INT "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true
  SERVE_PID=""
}
trap 'serve_stop; node_stop' EXIT
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$NODE_PID/status"; }
# wait_200 URL: until URL answers 200 (10 s at most).
wait_200() {
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.05
  done
  echo "$1 did not answer 200"; exit 1
}

# wrk_run LABEL ROUND URL: a short warm-up, then the measured run; one line to runs.tsv.
wrk_run() {
  wrk -t"$THREADS" -c"$CONNS" -d2s "$3" >/dev/null
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$3" > "$D/wrk.out"
  wrk_line "$1" "$2" "$D/wrk.out" >> "$D/runs.tsv"
  echo "round $2: $(tail -1 "$D/runs.tsv")"
}

# ---- 1. deploy → first 200, warm module ----
node_start
echo "node up (pid $NODE_PID, apps on 127.0.0.1:$NPORT)"
# One deploy compiles the module into the cache; every measured deploy then maps it.
qv deploy --name warm "$HELLO/http-hello.qyv"
wait_200 "http://127.0.0.1:$NPORT/hello/x"
qv rm -f warm
# Timed in Python: each deploy is `qyvol deploy` (a process, as an operator runs it), then GETs
# on one keep-alive-less connection each, back to back, until the first 200. The previous app is
# removed (untimed) before the next deploy, since they share the route.
python3 - "$DEPLOYS" "$NPORT" "$HELLO/http-hello.qyv" > "$D/deploys.tsv" <<'PY'
import http.client, os, subprocess, sys, time
n, port, manifest = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
q = os.environ["Q"]
def qv(*args):
    r = subprocess.run([q, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"qyvol {' '.join(args)}: {r.stderr}")
for i in range(1, n + 1):
    name = f"h{i}"
    t0 = time.perf_counter()
    qv("deploy", "--name", name, manifest)
    t1 = time.perf_counter()
    polls = 0
    while True:
        polls += 1
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/hello/x")
            r = c.getresponse(); r.read()
            if r.status == 200:
                break
        except OSError:
            pass
        finally:
            c.close()
        if time.perf_counter() - t0 > 10:
            sys.exit(f"{name}: no 200 within 10 s")
    t2 = time.perf_counter()
    print(f"{i}\t{(t1 - t0) * 1000:.2f}\t{(t2 - t0) * 1000:.2f}\t{polls}", flush=True)
    qv("rm", "-f", name)
PY
echo "deploys: $(awk -F'\t' '{printf "%s ", $3}' "$D/deploys.tsv")ms"

# ---- 3. requests/s: the node vs `qyvol serve`, same app, alternating ----
qv deploy "$HELLO/http-hello.qyv"
wait_200 "http://127.0.0.1:$NPORT/hello/warm"
: > "$D/runs.tsv"
for round in $(seq "$ROUNDS"); do
  wrk_run "qyvol node" "$round" "http://127.0.0.1:$NPORT/hello/bench"
  SPORT=$(free_port)
  "$Q" serve --listen "127.0.0.1:$SPORT" "$HELLO/http-hello.qyv" 2>"$D/serve.log" >/dev/null &
  SERVE_PID=$!
  wait_200 "http://127.0.0.1:$SPORT/hello/warm"
  wrk_run "qyvol serve" "$round" "http://127.0.0.1:$SPORT/hello/bench"
  serve_stop
done
qv rm -f http-hello
node_stop

# ---- 2. the node's memory with $APPS idle HTTP apps ----
# $APPS manifests, each the example's with its own name and route, next to one copy of the wasm.
rm -rf "$D/apps"; mkdir -p "$D/apps"
cp "$HELLO/http-hello.wasm" "$D/apps/"
for i in $(seq "$APPS"); do
  sed -e "s|^name: .*|name: app-$i|" -e "s|^  route: .*|  route: /app$i|" \
    "$HELLO/http-hello.qyv" > "$D/apps/app-$i.qyv"
done
# The same home (its compile cache warm, no app left), a node started afresh.
# mem: the node's RSS, its anonymous and file-backed parts, and PSS (a page mapped N times counts
# 1/N each time), in KiB, from smaps_rollup.
mem() {
  awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Anonymous:/ {a=$2} END {printf "%d\t%d\t%d\t%d", r, a, r-a, p}' \
    "/proc/$NODE_PID/smaps_rollup"
}
node_start
sleep 1
M0=$(mem)
qv deploy "$D/apps/app-1.qyv"
wait_200 "http://127.0.0.1:$NPORT/app1"
sleep 1
M1=$(mem)
T0=$(date +%s.%N)
seq 2 "$APPS" | xargs -P"$PAR" -I{} "$Q" deploy "$D/apps/app-{}.qyv" >/dev/null 2>"$D/deploys.err" \
  || { tail "$D/deploys.err"; exit 1; }
T1=$(date +%s.%N)
wait_200 "http://127.0.0.1:$NPORT/app$APPS"
sleep 2
MN=$(mem)
HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$NODE_PID/status")
FDS=$(ls "/proc/$NODE_PID/fd" | wc -l)
THREADS_N=$(awk '/^Threads:/ {print $2}' "/proc/$NODE_PID/status")
MAPS=$(wc -l < "/proc/$NODE_PID/maps")
CWASM=$(grep -c '\.cwasm' "/proc/$NODE_PID/maps" || true)
RUNNING=$("$Q" ps --json | python3 -c 'import json,sys; print(sum(a["state"]=="running" for a in json.load(sys.stdin)))')
# Requests through the node with every app deployed (the route lookup among $APPS).
wrk_run "qyvol node, $APPS apps deployed" 1 "http://127.0.0.1:$NPORT/app$APPS"
node_stop
{ printf '%s\n%s\n%s\n' "$M0" "$M1" "$MN"
  echo "$HWM $FDS $THREADS_N $MAPS $CWASM $RUNNING $(python3 -c "print(f'{($APPS - 1) / ($T1 - $T0):.1f}')")"
} > "$D/memory.txt"
echo "memory:"; cat "$D/memory.txt"

python3 - "$D" "$DURATION" "$CONNS" "$THREADS" "$ROUNDS" "$APPS" "$PAR" > bench/node-results.md <<'PY'
import os, platform, statistics, subprocess, sys
from collections import defaultdict
d, duration, conns, threads, rounds, apps, par = sys.argv[1:]
apps = int(apps)
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
q = os.environ["Q"]
dirty = sh("git status --porcelain --untracked-files=no -- . ':!bench'")
print("# The node: deploy latency, memory per app, throughput\n")
print(f"Machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}; "
      f"{sh(q + ' --version')}; generated by `bench/node.sh` on {sh('date -u +%F')}; commit "
      f"measured: `{sh('git rev-parse --short HEAD')}{' (with uncommitted changes)' if dirty else ''}`.\n")

# 1. deploys
rows = [l.split("\t") for l in open(f"{d}/deploys.tsv")]
cli = sorted(float(r[1]) for r in rows)
first = sorted(float(r[2]) for r in rows)
polls = [int(r[3]) for r in rows]
def pct(xs, p):
    k = (len(xs) - 1) * p
    lo = int(k); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
med, p90 = statistics.median(first), pct(first, 0.9)
ok = lambda b: "**met**" if b else "**missed**"
print("## Deploy → first response (warm module)\n")
print(f"`qyvol node -d` with a fresh `QYVOL_HOME`; `examples/http-hello/http-hello.qyv` deployed "
      f"once (compiling it into the cache) and removed; then {len(rows)} times: the time from "
      "starting `qyvol deploy --name hN http-hello.qyv` (a process, as an operator runs it) to "
      "the first 200 on `GET /hello/x` (polled back to back, a new connection each), then "
      "`qyvol rm -f hN`, untimed (the apps share the route).\n")
print("| | median | p90 | min | max |")
print("|---|---|---|---|---|")
print(f"| `qyvol deploy` returns | {statistics.median(cli):.1f} ms | {pct(cli, .9):.1f} ms | "
      f"{cli[0]:.1f} ms | {cli[-1]:.1f} ms |")
print(f"| first 200 | {med:.1f} ms | {p90:.1f} ms | {first[0]:.1f} ms | {first[-1]:.1f} ms |")
print(f"\nTarget: ≤ 50 ms: median {ok(med <= 50)}, p90 {ok(p90 <= 50)}. "
      f"The first GET after the deploy returned answered 200 in {sum(p == 1 for p in polls)} of "
      f"{len(polls)} deploys (the route is live when `deploy` answers).\n")

# 2. memory
lines = open(f"{d}/memory.txt").read().split("\n")
(rss0, anon0, file0, pss0), (rss1, anon1, file1, pss1), (rssn, anonn, filen, pssn) = (
    map(int, l.split("\t")) for l in lines[:3])
hwm, fds, thr, maps, cwasm, running, rate = lines[3].split()
per = lambda a, b, n: (b - a) / n
mib = lambda k: f"{k / 1024:.1f} MiB"
print(f"## Memory: {apps:,} idle HTTP apps\n")
print(f"A node started afresh on the same home (compile cache warm, no app); {apps:,} manifests, "
      f"each `examples/http-hello/http-hello.qyv` with its own `name: app-N` and `route: /appN`, "
      f"next to one copy of `http-hello.wasm` (so one module digest), deployed with "
      f"`qyvol deploy` {par} at a time ({float(rate):.0f} deploys/s). Figures from the node's "
      "`/proc/PID/smaps_rollup` (RSS = `VmRSS`), read 1–2 s after the deploys; PSS counts a "
      "page mapped N times as 1/N each time, so it is nearer to what the machine pays.\n")
print("| | RSS | anonymous | file-backed | PSS |")
print("|---|---|---|---|---|")
for label, r, a, f, p in (("0 apps", rss0, anon0, file0, pss0), ("1 app", rss1, anon1, file1, pss1),
                          (f"{apps:,} apps ({int(running):,} running)", rssn, anonn, filen, pssn)):
    print(f"| {label} | {mib(r)} | {mib(a)} | {mib(f)} | {mib(p)} |")
print(f"| per app, 0 → {apps:,} | {per(rss0, rssn, apps):.1f} KiB | {per(anon0, anonn, apps):.1f} KiB | "
      f"{per(file0, filen, apps):.1f} KiB | {per(pss0, pssn, apps):.1f} KiB |")
print(f"| per app, 1 → {apps:,} | {per(rss1, rssn, apps - 1):.1f} KiB | "
      f"{per(anon1, anonn, apps - 1):.1f} KiB | {per(file1, filen, apps - 1):.1f} KiB | "
      f"{per(pss1, pssn, apps - 1):.1f} KiB |")
pa = per(rss0, rssn, apps)
print(f"\n(RSS_{apps} − RSS_0) / {apps:,} = **{pa:.1f} KiB per app**; target ≤ 100 KiB: "
      f"{ok(pa <= 100)}. The first app also maps the module's code and sets up the engine; the "
      f"last row leaves it out. With {apps:,} apps the node's peak RSS was {mib(int(hwm))}; it "
      f"held {int(fds):,} file descriptors, {thr} threads and {int(maps):,} memory mappings "
      f"({int(cwasm):,} of them of a `.cwasm` file).\n")

# 3. throughput
runs = defaultdict(list)
for line in open(f"{d}/runs.tsv"):
    label, rnd, rps, p50, p99, errs = line.rstrip("\n").split("\t")
    runs[label].append((float(rps), float(p50), float(p99), int(errs)))
mr = lambda label, i: statistics.median(r[i] for r in runs[label])
base = "qyvol serve"
print("## Requests/s: the node vs `qyvol serve`\n")
print(f"`wrk -t{threads} -c{conns} -d{duration} --latency` (after a 2 s warm-up) on loopback, "
      "`GET /hello/bench` on `examples/http-hello` deployed to the node, and the same manifest "
      f"under `qyvol serve` (access log on, as by default); {rounds} round(s), node and serve "
      "alternating; medians of the rounds. The last row is one run against the node holding all "
      f"{apps:,} apps, on the last app's route. **wrk and the server share the 2 cores.**\n")
print("| server | requests/s | ratio to serve | p50 | p99 | non-2xx |")
print("|---|---|---|---|---|---|")
for label in runs:
    rps = mr(label, 0)
    print(f"| {label} | {rps:,.0f} | {rps / mr(base, 0):.2f}× | {mr(label, 1):.2f} ms | "
          f"{mr(label, 2):.2f} ms | {sum(r[3] for r in runs[label])} |")
ratio = mr("qyvol node", 0) / mr(base, 0)
print(f"\nTarget: node/serve ≥ 0.9×: {ratio:.2f}×, {ok(ratio >= 0.9)}.\n")
print("Every run:\n")
print("| server | round | requests/s | p50 | p99 |")
print("|---|---|---|---|---|")
for label, rs in runs.items():
    for i, r in enumerate(rs, 1):
        print(f"| {label} | {i} | {r[0]:,.0f} | {r[1]:.2f} ms | {r[2]:.2f} ms |")
PY
cat bench/node-results.md
