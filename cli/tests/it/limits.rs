//! Limits and traps (HOSTILE rows 4-8, 11): each ends the run with its own exit code and a
//! message naming what happened; the host is never taken down.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fixture::{Guarded, Scratch, guest, qyvol, qyvol_std, run_sampled, stderr};

const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#;

#[test]
fn a_trap_names_the_trap_and_the_wasm_backtrace() {
    let s = Scratch::new();
    let m = s.wat(
        "trap.wasm",
        r#"(module
            (memory (export "memory") 1)
            (func $inner unreachable)
            (func $outer call $inner)
            (func (export "_start") call $outer))"#,
    );
    let out = qyvol().arg("run").arg(&m).output().expect("run");
    assert_eq!(out.status.code(), Some(134));
    let err = stderr(&out);
    assert!(
        err.contains("💥 El módulo se detuvo por un trap: wasm `unreachable` instruction executed"),
        "{err}"
    );
    let inner = err.find("#0 inner").expect("innermost frame first");
    let outer = err.find("#1 outer").expect("then its caller");
    assert!(inner < outer, "{err}");
    assert!(!err.contains("✅"), "{err}");
}

#[test]
fn unbounded_recursion_is_a_clean_stack_exhausted_trap() {
    let s = Scratch::new();
    let m = s.wat(
        "rec.wasm",
        r#"(module (func $f call $f) (func (export "_start") call $f))"#,
    );
    let out = qyvol().args(["run", "-q"]).arg(&m).output().expect("run");
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("call stack exhausted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_endless_loop_is_stopped_at_the_time_limit() {
    let s = Scratch::new();
    let m = s.wat("spin.wasm", SPIN);
    let start = Instant::now();
    let out = qyvol()
        .args(["run", "-q", "--timeout", "300ms"])
        .arg(&m)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("⏱ Se superó el límite de tiempo de 300ms"),
        "{}",
        stderr(&out)
    );
    // Not a benchmark: only that it was stopped rather than left to spin.
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn the_time_limit_stops_a_component_spinning_too() {
    let out = qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "-q", "--timeout", "200ms"])
        .arg(guest("probe-p2.wasm"))
        .arg("spin")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("The time limit of 200ms passed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_guest_sleeping_in_a_host_call_is_stopped_at_the_time_limit() {
    for probe in crate::fixture::PROBES {
        let start = Instant::now();
        let out = qyvol()
            .args(["run", "-q", "--timeout", "300ms"])
            .arg(guest(probe))
            .args(["sleep", "60000"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(124), "{probe}: {}", stderr(&out));
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{probe}: it waited for the sleep"
        );
    }
}

#[test]
fn a_guest_blocked_reading_stdin_is_stopped_at_the_time_limit() {
    for probe in crate::fixture::PROBES {
        let mut child = Guarded::spawn(
            qyvol_std()
                .args(["run", "-q", "--timeout", "300ms"])
                .arg(guest(probe))
                .arg("read-stdin")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            Duration::from_secs(60),
        );
        // stdin stays open (the handle lives), so the guest would block forever.
        let _stdin = child.child().stdin.take();
        let status = child.wait();
        assert_eq!(status.code(), Some(124), "{probe}");
    }
}

#[test]
fn memory_grow_past_the_limit_stops_the_guest() {
    let s = Scratch::new();
    let m = s.wat(
        "grow.wasm",
        r#"(module (memory (export "memory") 1)
            (func (export "_start")
              (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))"#,
    );
    let out = qyvol()
        .args(["run", "-q", "--memory", "32MiB"])
        .arg(&m)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("🧠 Se superó el límite de memoria de 32MiB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn memory_limit_from_the_manifest_applies_to_a_rust_guest() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let m = s.write(
        "app.qyv",
        "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nlimits: { memory: 16MiB }\n",
    );
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&m)
        .args(["alloc", "64"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let ok = qyvol()
        .args(["run", "-q"])
        .arg(&m)
        .args(["alloc", "4"])
        .output()
        .expect("run");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn table_grow_to_four_billion_elements_is_bounded() {
    let s = Scratch::new();
    let m = s.wat(
        "table.wasm",
        r#"(module (table 0 funcref)
            (func (export "_start") (drop (table.grow (ref.null func) (i32.const -1)))))"#,
    );
    let out = qyvol().args(["run", "-q"]).arg(&m).output().expect("run");
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(stderr(&out).contains("10000000"), "{}", stderr(&out));
}

#[test]
fn fuel_runs_out() {
    let s = Scratch::new();
    let m = s.wat("spin.wasm", SPIN);
    let out = qyvol()
        .args(["run", "-q", "--fuel", "100000"])
        .arg(&m)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).contains("⛽"), "{}", stderr(&out));
}

#[test]
fn random_get_of_four_gibibytes_traps_without_allocating() {
    let s = Scratch::new();
    let m = s.wat(
        "random.wasm",
        r#"(module
            (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") (drop (call $r (i32.const 0) (i32.const -1)))))"#,
    );
    let (out, peak) = run_sampled(
        qyvol_std().args(["run", "-q", "--memory", "64MiB"]).arg(&m),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
    // Filling 4 GiB first would show in the host's memory before the trap.
    let peak = peak.expect("VmHWM of qyvol from /proc");
    assert!(peak < 256 * 1024, "peak memory {peak} KiB");
}

/// Real C++ programs (yosys, built by wasi-sdk) use the exception-handling proposal.
#[test]
fn modules_using_wasm_exceptions_run_and_uncaught_ones_trap() {
    let s = Scratch::new();
    let caught = s.wat(
        "caught.wasm",
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (tag $e (param i32))
            (memory (export "memory") 1)
            (func (export "_start")
              (block $h (result i32)
                (try_table (catch $e $h) (throw $e (i32.const 7)))
                (i32.const 0))
              call $exit))"#,
    );
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&caught)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let uncaught = s.wat(
        "uncaught.wasm",
        r#"(module (tag $e) (memory (export "memory") 1) (func (export "_start") (throw $e)))"#,
    );
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&uncaught)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
}
