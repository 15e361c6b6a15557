//! WebAssembly's standard features run under `qyvol run`: each small module below computes its
//! exit code with one feature, so the code proves the feature executed, not only that the
//! module was accepted. The engine that runs a module is the one judge of its validity.

use crate::fixture::{Scratch, guest, qyvol, stderr, stdout};

/// A WASI command whose `_start` exits with what `body` leaves on the stack (an `i32`).
fn command(extra: &str, body: &str) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            {extra}
            (func (export "_start") {body} call $exit))"#
    )
}

/// `qyvol run` of the module: its exit code and what it said on stderr.
fn run(name: &str, module: &str) -> (i32, String) {
    let s = Scratch::new();
    let file = s.wat(&format!("{name}.wasm"), module);
    let out = qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "-q"])
        .arg(&file)
        .output()
        .expect("qyvol run");
    (out.status.code().unwrap_or(-1), stderr(&out))
}

#[test]
fn each_standard_feature_runs_and_computes_its_result() {
    let cases: [(&str, String, i32); 11] = [
        (
            "simd",
            command(
                "",
                "(i32x4.extract_lane 2 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 10 20 30 40)))",
            ),
            33,
        ),
        (
            "relaxed-simd",
            command(
                "",
                "(i32x4.extract_lane 0 (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 7.5 0 0 0)))",
            ),
            7,
        ),
        (
            "exceptions",
            command(
                "(tag $oops (param i32)) (func $throws (throw $oops (i32.const 42)))",
                "(block $caught (result i32) (try_table (catch $oops $caught) (call $throws)) (i32.const 0))",
            ),
            42,
        ),
        (
            // A million calls deep: only tail calls keep the stack from overflowing.
            "tail-calls",
            command(
                "(func $down (param i32) (result i32)
                   (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 21))
                     (else (return_call $down (i32.sub (local.get 0) (i32.const 1))))))",
                "(call $down (i32.const 1000000))",
            ),
            21,
        ),
        (
            "gc",
            command(
                "(type $point (struct (field i32) (field i32)))",
                "(struct.get $point 1 (struct.new $point (i32.const 4) (i32.const 5)))",
            ),
            5,
        ),
        (
            "multi-memory",
            command(
                "(memory $second 1)",
                "(i32.store $second (i32.const 8) (i32.const 9)) (i32.load $second (i32.const 8))",
            ),
            9,
        ),
        (
            "memory64",
            command(
                "(memory $wide i64 1)",
                "(i32.store $wide (i64.const 16) (i32.const 11)) (i32.load $wide (i64.const 16))",
            ),
            11,
        ),
        (
            "extended-const",
            command(
                "(global $g i32 (i32.add (i32.const 6) (i32.mul (i32.const 2) (i32.const 3))))",
                "(global.get $g)",
            ),
            12,
        ),
        (
            "function-references",
            command(
                "(type $f (func (result i32))) (func $thirteen (type $f) (i32.const 13)) (elem declare func $thirteen)",
                "(call_ref $f (ref.func $thirteen))",
            ),
            13,
        ),
        (
            "bulk-memory",
            command(
                "",
                "(memory.fill (i32.const 100) (i32.const 14) (i32.const 4)) (i32.load8_u (i32.const 103))",
            ),
            14,
        ),
        (
            "threads-atomics",
            command(
                "",
                "(drop (i32.atomic.rmw.add (i32.const 0) (i32.const 15))) (i32.atomic.load (i32.const 0))",
            ),
            15,
        ),
    ];
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|(name, module, expected)| {
            let (got, said) = run(name, module);
            (got != *expected).then(|| format!("{name}: exit {got}, expected {expected}: {said}"))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn a_rust_program_built_with_simd128_runs() {
    // `examples/hello` built with `-C target-feature=+simd128` (scripts/build-examples.sh):
    // std's own code uses SIMD opcodes.
    let out = qyvol()
        .args(["run", "-q"])
        .arg(guest("hello-simd128.wasm"))
        .output()
        .expect("qyvol run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
}

#[test]
fn inspect_accepts_a_simd_module_and_names_the_fault_of_an_invalid_one() {
    let s = Scratch::new();
    let ok = qyvol()
        .args(["inspect", "--json"])
        .arg(guest("hello-simd128.wasm"))
        .output()
        .expect("inspect");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    // Well formed, but `i32.add` of an i64: wasmtime's validator, not the reader, refuses it.
    let bad = s.wat(
        "mistyped.wasm",
        "(module (func (export \"_start\") (drop (i32.add (i64.const 1) (i32.const 2)))))",
    );
    for verb in [&["inspect"][..], &["run", "-q"][..]] {
        let out = qyvol()
            .env("QYVOL_LANG", "en")
            .args(verb)
            .arg(&bad)
            .output()
            .expect("qyvol");
        assert_eq!(out.status.code(), Some(65), "{verb:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is not a valid WebAssembly module or component")
                && stderr(&out).contains("type mismatch"),
            "{verb:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_valid_module_with_an_import_no_one_provides_is_named_not_called_invalid() {
    let s = Scratch::new();
    let module = s.wat(
        "wants.wasm",
        r#"(module (import "wasi:keyvalue/store" "get" (func)) (func (export "_start")))"#,
    );
    let out = qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "-q"])
        .arg(&module)
        .output()
        .expect("qyvol run");
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("wasi:keyvalue/store::get") && !err.contains("not a valid"),
        "{err}"
    );
}

#[test]
fn a_shared_memory_is_refused_because_its_growth_escapes_the_memory_limit() {
    // wasmtime grows a shared memory without asking the store's limiter: were it allowed, this
    // module would take 64 MiB under `--memory 1MiB`.
    let s = Scratch::new();
    let file = s.wat(
        "grows.wasm",
        &command(
            "(memory $shared 1 2000 shared)",
            "(i32.add (memory.grow $shared (i32.const 1024)) (i32.const 2))",
        ),
    );
    let out = qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "-q", "--memory", "1MiB"])
        .arg(&file)
        .output()
        .expect("qyvol run");
    assert_ne!(
        out.status.code(),
        Some(3),
        "the shared memory grew past the limit"
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("shared memory"), "{}", stderr(&out));
}
