//! The seed's first example is a contract: `cargo run -p cli -- run examples/hello.qyv`.

use crate::fixture::{qyvol, repo_root, stderr, stdout};

#[test]
fn hello_prints_the_seeds_expected_output_in_order() {
    let out = qyvol()
        .current_dir(repo_root())
        .args(["run", "examples/hello.qyv"])
        .output()
        .expect("run qyvol");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    insta::assert_snapshot!("hello_es_stderr", stderr(&out));
}

#[test]
fn hello_in_english_when_the_locale_is_english() {
    let out = qyvol()
        .current_dir(repo_root())
        .env_remove("QYVOL_LANG")
        .env("LANG", "en_US.UTF-8")
        .args(["run", "examples/hello.qyv"])
        .output()
        .expect("run qyvol");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "👋 ¡Hola desde Qyvol WASI!\n",
        "the guest's own text is not translated"
    );
    insta::assert_snapshot!("hello_en_stderr", stderr(&out));
}

#[test]
fn c_locale_gets_spanish() {
    let out = qyvol()
        .current_dir(repo_root())
        .env_remove("QYVOL_LANG")
        .env("LC_ALL", "C")
        .args(["run", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert!(
        stderr(&out).starts_with("▶ Ejecutando Qyvol Runtime...\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn quiet_leaves_only_the_guests_output() {
    let out = qyvol()
        .current_dir(repo_root())
        .args(["run", "-q", "examples/hello.qyv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_bare_wasm_file_runs_without_a_manifest() {
    let out = qyvol()
        .current_dir(repo_root())
        .args(["run", "examples/hello.wasm"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    assert!(
        stderr(&out).contains("🔧 Cargando módulo: hello\n"),
        "{}",
        stderr(&out)
    );
}
