//! In-process cost of one run of an already compiled command (a fresh store and WASI context,
//! instantiation and the call of `_start`), and of a served request and its instantiation on
//! the pooled engine `qyvol serve` and the node use. Target (issue 10): an instantiation of a
//! small module or component at 5 µs or less. Run with `cargo bench -p qyvol-runtime`.

#![expect(
    clippy::expect_used,
    reason = "a benchmark setup that fails should stop loudly"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use qyvol_runtime::serve::{App, ServeOptions, Server};
use qyvol_runtime::{
    Compilation, EngineConfig, Limits, Outcome, Prepared, Purpose, RunRequest, WasiGeneration, Wasm,
};

fn trivial(c: &mut Criterion) {
    let bytes = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#,
    )
    .expect("valid wat");
    let wasm = Wasm::from_bytes("trivial.wasm".into(), bytes).expect("valid module");
    let prepared = Prepared::new(
        &wasm,
        &RunRequest::default(),
        EngineConfig::default(),
        Compilation::default(),
    )
    .expect("compiles");
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

/// A server (the pooled engine `qyvol serve` and the node use) for the example at `file`,
/// routed at `route`, and a runtime to drive it.
fn example_server(file: &str, route: &str) -> (Server, tokio::runtime::Runtime) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    let bytes = std::fs::read(&path).expect("the example's wasm");
    let app = App {
        name: "bench".into(),
        route: route.parse().expect("route"),
        wasm: Wasm::from_bytes(path, bytes).expect("valid wasm"),
        request: RunRequest::default(),
        engine: EngineConfig::decide(Purpose::Serving, &Limits::default(), WasiGeneration::P2),
        max_body: 1 << 20,
        reuse: qyvol_runtime::serve::Reuse::FRESH,
        concurrency: None,
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
    (server, rt)
}

/// What `qyvol serve` and the node pay per request of a `wasi:http` component: a fresh
/// instance and WASI context, the handler's call and its whole response, in process (no
/// sockets, no HTTP parsing); and the instantiation alone.
fn http_component(c: &mut Criterion) {
    let (server, rt) = example_server("http-hello/http-hello.wasm", "/hello/...");
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
    instantiation(
        c,
        &server,
        &rt,
        "/hello/bench",
        "instantiate wasi:http component (pooled)",
    );
}

/// The instantiation alone of a WASI preview 1 core module served CGI-style.
fn cgi_module(c: &mut Criterion) {
    let (server, rt) = example_server("cgi-hello/cgi-hello.wasm", "/cgi/...");
    instantiation(
        c,
        &server,
        &rt,
        "/cgi/bench",
        "instantiate CGI core module (pooled)",
    );
}

fn instantiation(
    c: &mut Criterion,
    server: &Server,
    rt: &tokio::runtime::Runtime,
    path: &str,
    name: &str,
) {
    assert!(rt.block_on(server.instantiate(path)).expect("instantiates"));
    // Inside one `block_on`, as a server instantiates from its own runtime: the runtime's
    // entry and exit are not part of an instantiation.
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let _ = std::hint::black_box(server.instantiate(path).await);
                }
                start.elapsed()
            })
        })
    });
}

criterion_group!(benches, trivial, http_component, cgi_module);
criterion_main!(benches);
