//! In-process cost of one run of an already compiled command: a fresh store and WASI context,
//! instantiation and the call of `_start` (the work a server does per request). Target: under
//! 50 µs for a trivial guest. Run with `cargo bench -p qyvol-runtime`.

#![expect(
    clippy::expect_used,
    reason = "a benchmark setup that fails should stop loudly"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use qyvol_runtime::{Compilation, Limits, Outcome, Prepared, RunRequest, Wasm};

fn trivial(c: &mut Criterion) {
    let bytes = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#,
    )
    .expect("valid wat");
    let wasm = Wasm::from_bytes("trivial.wasm".into(), bytes).expect("valid module");
    let prepared =
        Prepared::new(&wasm, &RunRequest::default(), Compilation::default()).expect("compiles");
    let req = RunRequest {
        argv0: "trivial".into(),
        ..RunRequest::default()
    };
    assert_eq!(prepared.run(&req).expect("runs"), Outcome::Exited(0));
    c.bench_function("instantiate+run trivial core module", |b| {
        b.iter(|| prepared.run(&req).expect("runs"))
    });

    let limited = RunRequest {
        limits: Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        },
        ..req.clone()
    };
    c.bench_function("instantiate+run trivial core module, memory limit", |b| {
        b.iter(|| prepared.run(&limited).expect("runs"))
    });
}

criterion_group!(benches, trivial);
criterion_main!(benches);
