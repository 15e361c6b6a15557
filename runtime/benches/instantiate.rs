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

/// What `qyvol serve` and the node pay per request: the examples' `wasi:http` component on the
/// server's pooled engine, a fresh instance and WASI context per request, the handler's call
/// and its whole response, in process (no sockets, no HTTP parsing).
fn http_component(c: &mut Criterion) {
    use qyvol_runtime::serve::{App, ServeOptions, Server};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/http-hello/http-hello.wasm");
    let bytes = std::fs::read(&path).expect("examples/http-hello/http-hello.wasm");
    let app = App {
        name: "http-hello".into(),
        route: "/hello/...".parse().expect("route"),
        wasm: Wasm::from_bytes(path, bytes).expect("valid component"),
        request: RunRequest::default(),
        max_body: 1 << 20,
    };
    let server =
        Server::new(vec![app], Compilation::default(), ServeOptions::default()).expect("loads");
    assert!(
        server.pooling(),
        "the benchmark measures the pooling allocator"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let request = || {
        http::Request::builder()
            .uri("http://localhost/hello/bench")
            .body(bytes::Bytes::new())
            .expect("request")
    };
    let first = rt.block_on(server.respond(request()));
    assert_eq!(first.status(), 200, "{:?}", first.body());
    c.bench_function("instantiate+handle wasi:http component (pooled)", |b| {
        b.iter(|| rt.block_on(server.respond(request())))
    });
    assert!(
        rt.block_on(server.instantiate("/hello/bench"))
            .expect("instantiates")
    );
    c.bench_function("instantiate wasi:http component (pooled)", |b| {
        b.iter(|| rt.block_on(server.instantiate("/hello/bench")))
    });
}

/// The same for a WASI preview 1 core module served CGI-style (examples/cgi-hello): one
/// instance per request on the pooled engine.
fn cgi_module(c: &mut Criterion) {
    use qyvol_runtime::serve::{App, ServeOptions, Server};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/cgi-hello/cgi-hello.wasm");
    let bytes = std::fs::read(&path).expect("examples/cgi-hello/cgi-hello.wasm");
    let app = App {
        name: "cgi-hello".into(),
        route: "/cgi/...".parse().expect("route"),
        wasm: Wasm::from_bytes(path, bytes).expect("valid module"),
        request: RunRequest::default(),
        max_body: 1 << 20,
    };
    let server =
        Server::new(vec![app], Compilation::default(), ServeOptions::default()).expect("loads");
    assert!(
        server.pooling(),
        "the benchmark measures the pooling allocator"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    assert!(
        rt.block_on(server.instantiate("/cgi/bench"))
            .expect("instantiates")
    );
    c.bench_function("instantiate CGI core module (pooled)", |b| {
        b.iter(|| rt.block_on(server.instantiate("/cgi/bench")))
    });
}

criterion_group!(benches, trivial, http_component, cgi_module);
criterion_main!(benches);
