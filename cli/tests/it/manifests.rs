//! Manifests through the CLI: each kind of mistake gets its own exit code and a message with
//! the file, line and column; policies refuse grants before anything runs.

use crate::fixture::{Scratch, qyvol, stderr, stdout};

fn run(manifest: &std::path::Path, extra: &[&str]) -> std::process::Output {
    qyvol()
        .arg("run")
        .args(extra)
        .arg(manifest)
        .output()
        .expect("run qyvol")
}

#[test]
fn unknown_field_names_line_column_and_a_suggestion() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let m = s.write(
        "app.qyv",
        "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nenvironmnet: sandbox\n",
    );
    let out = run(&m, &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(err.contains("error: manifiesto inválido: `"), "{err}");
    assert!(
        err.contains("app.qyv`:4:1: unknown field `environmnet`"),
        "{err}"
    );
    assert!(err.contains("did you mean `environment`?"), "{err}");
    assert_eq!(stdout(&out), "");
}

#[test]
fn missing_manifest_and_missing_entrypoint_exit_66() {
    let s = Scratch::new();
    let out = run(&s.path("nothing.qyv"), &[]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    let m = s.write(
        "app.qyv",
        "name: app\nentrypoint: gone.wasm\nruntime: wasi\n",
    );
    let out = run(&m, &[]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        stderr(&out).contains("app.qyv`:2:13: cannot open"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn entrypoint_that_is_not_wasm_exits_65() {
    let s = Scratch::new();
    s.write("app.wasm", "#!/bin/sh\necho hi\n");
    let m = s.write(
        "app.qyv",
        "name: app\nentrypoint: app.wasm\nruntime: wasi\n",
    );
    let out = run(&m, &[]);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains("is not a WebAssembly binary"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn english_headline_when_asked() {
    let s = Scratch::new();
    let m = s.write("app.qyv", "name: App\nentrypoint: x.wasm\nruntime: wasi\n");
    let out = qyvol()
        .env("QYVOL_LANG", "en")
        .arg("run")
        .arg(&m)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("error: invalid manifest: `"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sandbox_refuses_a_writable_mount_before_running() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    std::fs::create_dir(s.path("data")).expect("mkdir");
    let m = s.write(
        "app.qyv",
        "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nenvironment: sandbox\nargs: [write, /data/x, pwned]\nmounts: [{ host: data, guest: /data, readonly: false }]\n",
    );
    let out = run(&m, &[]);
    assert_eq!(out.status.code(), Some(77));
    assert!(
        stderr(&out)
            .contains("permiso denegado: environment `sandbox` does not allow a writable mount"),
        "{}",
        stderr(&out)
    );
    assert!(!s.path("data/x").exists(), "nothing ran");
    assert!(
        !stderr(&out).contains("📋"),
        "refused before loading the module"
    );
}

#[test]
fn sandbox_makes_unmarked_mounts_read_only() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    s.write("data/f", "original");
    let m = s.write("app.qyv", "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nenvironment: sandbox\nmounts: [{ host: data, guest: /data }]\n");
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&m)
        .args(["write", "/data/f", "pwned"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(s.read("data/f"), "original");
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&m)
        .args(["read", "/data/f"])
        .output()
        .expect("run");
    assert_eq!(stdout(&out), "original");
}

#[test]
fn the_environment_flag_applies_a_policy_to_a_native_manifest() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    std::fs::create_dir(s.path("data")).expect("mkdir");
    let m = s.write("app.qyv", "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nmounts: [{ host: data, guest: /data, readonly: false }]\n");
    let out = run(&m, &["--environment", "sandbox"]);
    assert_eq!(out.status.code(), Some(77));
    let out = qyvol()
        .args(["run", "--environment", "sandbox", "--mount"])
        .arg(format!("{}:/d:rw", s.path("data").display()))
        .arg(&m)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
}

#[test]
fn sandbox_refuses_limits_above_its_caps() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let m = s.write("app.qyv", "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nenvironment: sandbox\nlimits: { memory: 1GiB }\n");
    let out = run(&m, &[]);
    assert_eq!(out.status.code(), Some(77));
    assert!(
        stderr(&out).contains("a memory limit of 1GiB: ask for at most 256MiB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sandbox_has_a_default_memory_limit() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let m = s.write("app.qyv", "name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\nenvironment: sandbox\nargs: [alloc, \"300\"]\n");
    let out = run(&m, &["-q"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(stderr(&out).contains("256MiB"), "{}", stderr(&out));
}

#[test]
fn http_handlers_are_not_run_as_commands() {
    let s = Scratch::new();
    s.guest("probe-p2.wasm");
    let m = s.write(
        "app.qyv",
        "name: app\nentrypoint: probe-p2.wasm\nruntime: wasi-http\n",
    );
    let out = run(&m, &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("qyvol serve"), "{}", stderr(&out));
}

#[test]
fn entrypoint_outside_the_manifests_folder_needs_a_flag() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let m = s.write(
        "sub/app.qyv",
        "name: app\nentrypoint: ../probe-p1.wasm\nruntime: wasi\nargs: [exit, \"0\"]\n",
    );
    let out = run(&m, &["-q"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("--allow-outside"), "{}", stderr(&out));
    let out = run(&m, &["-q", "--allow-outside"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
