#!/usr/bin/env bash
# The node (`qyvol node`, `qyvol deploy`) in one run: deploy → first response with a warm module
# (through `qyvol deploy` and through the API), the node's memory per idle HTTP app (10,000
# deployed), how fast its API and dashboard answer with them all, and requests/s through the node
# against `qyvol serve` on the same app; writes bench/node-results.md. See bench/README.md.
#   bench/node.sh               20 deploys, 10,000 apps, 3 alternating rounds of 15 s
#   QUICK=1 bench/node.sh       the same deploys and apps, 1 round of 5 s
#   Q=/path/to/qyvol bench/node.sh   measures that binary instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
D=$WORK/node
mkdir -p "$D"
DEPLOYS=${DEPLOYS:-20}; APPS=${APPS:-10000}; PAR=${PAR:-4}
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

# node_start: `qyvol node -d` on a free app port ($NPORT) and API port ($APORT); sets NODE_PID.
node_start() {
  NPORT=$(free_port); APORT=$(free_port)
  qv node -d --http "127.0.0.1:$NPORT" --api "127.0.0.1:$APORT"
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
# Timed in Python, two ways a deploy arrives, each followed by GETs on one keep-alive-less
# connection each, back to back, until the first 200: `qyvol deploy` (a process, as an operator
# runs it), and a POST to the API on the node's socket from a running client (as a controller or
# CI system sends it). The app is removed (untimed) before the next deploy: they share the route.
python3 - "$DEPLOYS" "$NPORT" "$HELLO/http-hello.qyv" "$QYVOL_HOME/node/qyvol.sock" \
  > "$D/deploys.tsv" <<'PY'
import http.client, json, os, socket, subprocess, sys, time
n, port, manifest, sock = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
q = os.environ["Q"]
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
def call(method, path, body=None):
    api = Unix("localhost")
    api.request(method, path, json.dumps(body or {}), {"Content-Type": "application/json"})
    r = api.getresponse()
    out = r.status, r.read()
    api.close()
    return out
def qv(*args):
    r = subprocess.run([q, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"qyvol {' '.join(args)}: {r.stderr}")
def first_200(t0, name):
    polls = 0
    while True:
        polls += 1
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/hello/x")
            r = c.getresponse(); r.read()
            if r.status == 200:
                return time.perf_counter(), polls
        except OSError:
            pass
        finally:
            c.close()
        if time.perf_counter() - t0 > 10:
            sys.exit(f"{name}: no 200 within 10 s")
for i in range(1, n + 1):
    name = f"h{i}"
    t0 = time.perf_counter()
    qv("deploy", "--name", name, manifest)
    t1 = time.perf_counter()
    t2, polls = first_200(t0, name)
    qv("rm", "-f", name)
    name = f"a{i}"
    t3 = time.perf_counter()
    status, body = call("POST", "/api/v1/apps", {"source": manifest, "name": name})
    if status != 201:
        sys.exit(f"POST /api/v1/apps: {status} {body!r}")
    t4 = time.perf_counter()
    t5, api_polls = first_200(t3, name)
    if call("DELETE", f"/api/v1/apps/{name}?force=true")[0] != 204:
        sys.exit(f"DELETE {name} failed")
    ms = lambda a, b: f"{(b - a) * 1000:.2f}"
    print(f"{i}\t{ms(t0, t1)}\t{ms(t0, t2)}\t{polls}\t{ms(t3, t4)}\t{ms(t3, t5)}\t{api_polls}",
          flush=True)
PY
echo "deploys (qyvol deploy): $(awk -F'\t' '{printf "%s ", $3}' "$D/deploys.tsv")ms"
echo "deploys (API): $(awk -F'\t' '{printf "%s ", $6}' "$D/deploys.tsv")ms"

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
# The API and the dashboard with every app deployed: each call 5 times, its median; the dashboard
# through a session opened with a link from `qyvol dashboard`, as a browser opens one.
LINK=$("$Q" dashboard | tail -1)
python3 - "$QYVOL_HOME/node/qyvol.sock" "$LINK" > "$D/api.tsv" <<'PY'
import http.client, socket, statistics, sys, time, urllib.parse
sock, link = sys.argv[1], urllib.parse.urlsplit(sys.argv[2])
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
def timed(connect, path, headers={}):
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        conn = connect()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse(); body = r.read(); conn.close()
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
    return statistics.median(times), len(body)
api = lambda: Unix("localhost")
dash = lambda: http.client.HTTPConnection("127.0.0.1", link.port)
login = dash()
login.request("GET", f"{link.path}?{link.query}", headers={"Host": f"localhost:{link.port}"})
r = login.getresponse(); r.read()
session = r.getheader("Location", "").rstrip("/")
if r.status not in (302, 303) or not session:
    sys.exit(f"the login link answered {r.status}, not a redirect to a session")
host = {"Host": f"localhost:{link.port}"}
for label, conn, path, h in [
    ("API: `GET /api/v1/apps?all=true&limit=100` (a page)", api, "/api/v1/apps?all=true&limit=100", {}),
    ("API: `GET /api/v1/apps?all=true` (the whole list)", api, "/api/v1/apps?all=true", {}),
    ("API: `GET /api/v1/node`", api, "/api/v1/node", {}),
    ("API: `GET /metrics`", api, "/metrics", {}),
    ("dashboard: overview", dash, f"{session}/", host),
    ("dashboard: apps table (first page)", dash, f"{session}/apps", host),
    ("dashboard: apps table refresh (`/ui/apps`)", dash, f"{session}/ui/apps", host),
]:
    ms, size = timed(conn, path, h)
    print(f"{label}\t{ms:.2f}\t{size}", flush=True)
PY
echo "api:"; cat "$D/api.tsv"
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
col = lambda i: sorted(float(r[i]) for r in rows)
cli, first, api, api_first = col(1), col(2), col(4), col(5)
polls = [int(r[3]) for r in rows] + [int(r[6]) for r in rows]
def pct(xs, p):
    k = (len(xs) - 1) * p
    lo = int(k); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
ok = lambda b: "**met**" if b else "**missed**"
print("## Deploy → first response (warm module)\n")
print(f"`qyvol node -d` with a fresh `QYVOL_HOME`; `examples/http-hello/http-hello.qyv` deployed "
      f"once (compiling it into the cache) and removed; then {len(rows)} times each way: the time "
      "from starting the deploy to the first 200 on `GET /hello/x` (polled back to back, a new "
      "connection each), then the app removed, untimed (the apps share the route). Two ways: "
      "`qyvol deploy --name hN http-hello.qyv` (a process, as an operator runs it), and a "
      "`POST /api/v1/apps` on the node's socket from a client already running (as a controller "
      "or CI system sends it; Python's `http.client`).\n")
print("| | median | p90 | min | max |")
print("|---|---|---|---|---|")
for label, xs in (("`qyvol deploy` returns", cli), ("first 200 after `qyvol deploy`", first),
                  ("`POST /api/v1/apps` returns", api), ("first 200 after the POST", api_first)):
    print(f"| {label} | {statistics.median(xs):.2f} ms | {pct(xs, .9):.2f} ms | {xs[0]:.2f} ms | "
          f"{xs[-1]:.2f} ms |")
med = statistics.median(api_first)
print(f"\nTarget: ≤ 2 ms median from the API call to the first response: {med:.2f} ms, "
      f"{ok(med <= 2)}. Through `qyvol deploy` a process starts first (see the warm `run` in "
      f"results.md for what a start of the binary costs). The first GET after a deploy answered "
      f"200 in {sum(p == 1 for p in polls)} of {len(polls)} deploys (the route is live when the "
      "deploy answers).\n")

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
print(f"\n(RSS_{apps} − RSS_0) / {apps:,} = **{pa:.1f} KiB per app**; target ≤ 40 KiB: "
      f"{ok(pa <= 40)}. The first app also maps the module's code and sets up the engine; the "
      f"last row leaves it out. With {apps:,} apps the node's peak RSS was {mib(int(hwm))}; it "
      f"held {int(fds):,} file descriptors, {thr} threads and {int(maps):,} memory mappings "
      f"({int(cwasm):,} of them of a `.cwasm` file).\n")

# 2b. the API and the dashboard with every app
calls = [l.rstrip("\n").split("\t") for l in open(f"{d}/api.tsv")]
print(f"## The API and the dashboard with {apps:,} apps\n")
print("Each call 5 times, one after another, a connection each (the API on the node's socket, the "
      "dashboard on its TCP port in a session opened with a link from `qyvol dashboard`); the "
      "median, and the size of the answer.\n")
print("| call | median | answer |")
print("|---|---|---|")
for label, ms, size in calls:
    print(f"| {label} | {float(ms):.1f} ms | {int(size) / 1024:,.0f} KiB |")
paged = [float(ms) for label, ms, _ in calls if "whole list" not in label]
print(f"\nTarget: every paged call and dashboard view ≤ 100 ms: slowest {max(paged):.1f} ms, "
      f"{ok(max(paged) <= 100)}. The whole list in one answer is there for clients written before "
      "`limit`; it grows with the apps.\n")

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
