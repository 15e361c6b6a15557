#!/usr/bin/env bash
# Rebuilds the committed wasm of examples/ and of the test guests from their Rust sources.
# Needs: rustup target add wasm32-wasip1 wasm32-wasip2
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-wasip1 -p hello -p probe -p cpu-bench -p cgi-hello -p cgi-probe
cargo build --release --target wasm32-wasip2 -p probe -p probe-p3 -p http-hello -p http-hello-p3 -p http-probe \
  -p http-probe-p3 -p tcp-hello -p counter -p kv-probe -p compose-api -p compose-front
p1=target/wasm32-wasip1/release
p2=target/wasm32-wasip2/release
cp $p1/hello.wasm examples/hello.wasm
cp $p1/cgi-hello.wasm examples/cgi-hello/cgi-hello.wasm
cp $p2/http_hello.wasm examples/http-hello/http-hello.wasm
cp $p2/http_hello_p3.wasm examples/http-hello-p3/http-hello-p3.wasm
cp $p2/tcp-hello.wasm examples/tcp-hello/tcp-hello.wasm
cp $p2/counter.wasm examples/counter/counter.wasm
cp $p2/compose_api.wasm examples/compose/api/api.wasm
cp $p2/compose_front.wasm examples/compose/front/front.wasm
cp $p2/kv-probe.wasm cli/tests/guests/kv-probe.wasm
cp $p1/probe.wasm cli/tests/guests/probe-p1.wasm
cp $p2/probe.wasm cli/tests/guests/probe-p2.wasm
cp $p2/probe-p3.wasm cli/tests/guests/probe-p3.wasm
cp $p2/http_probe.wasm cli/tests/guests/http-probe.wasm
cp $p2/http_probe_p3.wasm cli/tests/guests/http-probe-p3.wasm
cp $p1/cgi-probe.wasm cli/tests/guests/cgi-probe.wasm
cp $p1/cpu-bench.wasm bench/guests/cpu.wasm
# The hello again with SIMD opcodes in std's code (a test that wasm's standard features run).
RUSTFLAGS="-C target-feature=+simd128" cargo build --release --target wasm32-wasip1 -p hello --target-dir target/simd128
cp target/simd128/wasm32-wasip1/release/hello.wasm cli/tests/guests/hello-simd128.wasm
ls -l examples/*.wasm examples/*/*.wasm cli/tests/guests/*.wasm bench/guests/*.wasm
