//! Hostile modules and output (HOSTILE rows 1-3, 9, 10): a clear error or a safe run, never a
//! panic.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::fixture::{
    Guarded, Scratch, guest, leb, qyvol, qyvol_std, repo_root, run_sampled, stderr, stdout,
};

fn assert_no_panic(out: &std::process::Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn truncated_random_or_bad_magic_wasm_is_refused_clearly() {
    let s = Scratch::new();
    let hello = std::fs::read(repo_root().join("examples/hello.wasm")).expect("hello.wasm");
    let mut random = b"\0asm\x01\0\0\0".to_vec();
    let mut x: u32 = 12345;
    random.extend((0..4096).map(|_| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (x >> 16) as u8
    }));
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("truncated.wasm", hello[..hello.len() / 2].to_vec(), 65),
        ("header-only.wasm", b"\0asm".to_vec(), 65),
        ("random.wasm", random, 65),
        ("bad-magic.wasm", b"\0asn\x01\0\0\0".to_vec(), 65),
        ("empty.wasm", Vec::new(), 65),
    ];
    for (name, bytes, code) in cases {
        let path = s.write(name, bytes);
        let file_as_manifest = !std::fs::read(&path).expect("read").starts_with(b"\0asm");
        let out = qyvol().arg("run").arg(&path).output().expect("run");
        assert_no_panic(&out);
        // A file that isn't wasm is read as a manifest, which it isn't either.
        let want = if file_as_manifest { 78 } else { code };
        assert_eq!(out.status.code(), Some(want), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("error: "), "{name}");
        let out = qyvol().arg("inspect").arg(&path).output().expect("inspect");
        assert_no_panic(&out);
        assert_ne!(out.status.code(), Some(0), "{name}");
    }
}

#[test]
fn a_module_over_the_size_cap_is_refused_before_reading() {
    let s = Scratch::new();
    let path = s.write("huge.wasm", b"\0asm\x01\0\0\0");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(300 << 20)
        .expect("sparse 300 MiB");
    let (out, peak) = run_sampled(qyvol_std().arg("run").arg(&path), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("module size cap"), "{}", stderr(&out));
    // Reading the 300 MiB first would show in the host's memory before the refusal.
    let peak = peak.expect("VmHWM of qyvol from /proc");
    assert!(peak < 100 * 1024, "peak memory {peak} KiB");
    let out = qyvol()
        .args(["run", "--max-module-size", "1KiB"])
        .arg(repo_root().join("examples/hello.wasm"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
}

#[test]
fn compilation_is_bounded_in_time() {
    let out = qyvol()
        .args(["run", "--no-cache", "--compile-timeout", "1ms"])
        .arg(guest("probe-p1.wasm"))
        .arg("args")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--compile-timeout"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_module_with_a_million_functions_is_refused_by_validation() {
    // 1,000,001 function declarations: over the WebAssembly implementation limit.
    let count: u32 = 1_000_001;
    let mut body = b"\0asm\x01\0\0\0".to_vec();
    body.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type section: one `() -> ()`
    let mut funcs = leb(count);
    funcs.extend(std::iter::repeat_n(0u8, count as usize));
    body.push(0x03);
    body.extend(leb(funcs.len() as u32));
    body.extend(funcs);
    let s = Scratch::new();
    let path = s.write("million.wasm", body);
    let out = qyvol().arg("run").arg(&path).output().expect("run");
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
}

#[test]
fn unknown_imports_are_named_with_what_would_provide_them() {
    let s = Scratch::new();
    for (wat, import, hint) in [
        (
            r#"(module (import "env" "foo" (func)) (func (export "_start")))"#,
            "env::foo",
            "wasm32-wasip1",
        ),
        (
            r#"(module (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (func (export "_start")))"#,
            "wasi_unstable::fd_write",
            "wasi_unstable",
        ),
        (
            r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))"#,
            "wasi_snapshot_preview1::no_such_call",
            "no such WASI",
        ),
    ] {
        let m = s.wat("imports.wasm", wat);
        let out = qyvol().arg("run").arg(&m).output().expect("run");
        assert_eq!(out.status.code(), Some(65), "{import}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("import `{import}` is not provided by Qyvol")),
            "{err}"
        );
        assert!(err.contains(hint), "{err}");
    }
}

#[test]
fn a_component_that_is_not_a_command_is_refused_clearly() {
    let s = Scratch::new();
    let m = s.wat("lib.wasm", "(component)");
    let out = qyvol().arg("run").arg(&m).output().expect("run");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not export `wasi:cli/run`"),
        "{}",
        stderr(&out)
    );
    let m = s.wat(
        "http.wasm",
        r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#,
    );
    let out = qyvol().arg("run").arg(&m).output().expect("run");
    assert_no_panic(&out);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_module_without_start_is_refused_as_a_library() {
    let s = Scratch::new();
    let m = s.wat("lib.wasm", r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#);
    let out = qyvol().arg("run").arg(&m).output().expect("run");
    assert_eq!(out.status.code(), Some(65));
    assert!(stderr(&out).contains("no `_start`"), "{}", stderr(&out));
}

#[test]
fn escape_sequences_in_export_names_are_shown_escaped() {
    let s = Scratch::new();
    let m = s.wat(
        "ansi.wasm",
        r#"(module (func (export "\1b]0;pwned\07\1b[2J") ) (func (export "_start")))"#,
    );
    let out = qyvol().arg("run").arg(&m).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains('\u{1b}'),
        "a raw escape reached the terminal: {err:?}"
    );
    assert!(err.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{err}");
}

#[test]
fn guest_output_is_passed_through_byte_for_byte() {
    // Docker's and wasmtime's contract: the guest's bytes, escapes included, are its own.
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let out = qyvol()
        .args(["run", "-q"])
        .arg(s.path("probe-p1.wasm"))
        .args(["stderr", "\u{1b}[31mred"])
        .output()
        .expect("run");
    assert_eq!(stderr(&out), "\u{1b}[31mred\n");
}

#[cfg(target_os = "linux")]
#[test]
fn a_gibibyte_of_output_streams_with_bounded_memory() {
    let mut child = Guarded::spawn(
        qyvol_std()
            .args(["run", "-q"])
            .arg(guest("probe-p1.wasm"))
            .args(["flood", "1024"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        Duration::from_secs(300),
    );
    let pid = child.id();
    let mut out = child.child().stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    let mut peak_kib: u64 = 0;
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > 1000 << 20 && peak_kib == 0 {
            // Still running (blocked on the pipe): read its peak resident size so far.
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .expect("read the peak memory from /proc");
            peak_kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("a VmHWM line in /proc/PID/status");
        }
    }
    assert!(child.wait().success());
    assert_eq!(total, 1024 << 20);
    assert!(
        peak_kib > 0 && peak_kib < 300 * 1024,
        "peak RSS {peak_kib} KiB while streaming 1 GiB"
    );
    let _ = stdout;
}
