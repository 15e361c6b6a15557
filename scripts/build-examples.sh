#!/usr/bin/env bash
# Rebuilds the committed wasm of examples/ and of the test guests from their Rust sources.
# Needs: rustup target add wasm32-wasip1 wasm32-wasip2
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-wasip1 -p hello -p probe -p cpu-bench
cargo build --release --target wasm32-wasip2 -p probe
cp target/wasm32-wasip1/release/hello.wasm examples/hello.wasm
cp target/wasm32-wasip1/release/probe.wasm cli/tests/guests/probe-p1.wasm
cp target/wasm32-wasip2/release/probe.wasm cli/tests/guests/probe-p2.wasm
cp target/wasm32-wasip1/release/cpu-bench.wasm bench/guests/cpu.wasm
ls -l examples/*.wasm cli/tests/guests/*.wasm bench/guests/*.wasm
