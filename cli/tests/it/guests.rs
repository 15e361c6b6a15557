//! The guest's view: arguments, environment, standard streams and exit codes, for the WASI
//! preview 1 module and the WASI 0.2 component alike.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::fixture::{Guarded, PROBES, Scratch, guest, qyvol, qyvol_std, stderr, stdout};

#[test]
fn everything_after_file_goes_to_the_guest() {
    for probe in PROBES {
        let out = qyvol()
            .arg("run")
            .arg("-q")
            .arg(guest(probe))
            .args(["args", "--env", "X=1", "-q"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{probe}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "probe-p1\nargs\n--env\nX=1\n-q\n".replace("probe-p1", &probe.replace(".wasm", "")),
            "{probe}"
        );
    }
}

#[test]
fn manifest_args_come_before_command_line_args() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let m = s.write(
        "app.qyv",
        "name: probe\nentrypoint: probe-p1.wasm\nruntime: wasi\nargs: [args, from-manifest]\n",
    );
    let out = qyvol()
        .args(["run", "-q"])
        .arg(&m)
        .arg("from-cli")
        .output()
        .expect("run");
    assert_eq!(stdout(&out), "probe\nargs\nfrom-manifest\nfrom-cli\n");
}

#[test]
fn host_environment_is_not_inherited_unless_asked() {
    let s = Scratch::new();
    s.guest("probe-p2.wasm");
    let m = s.write("app.qyv", "name: probe\nentrypoint: probe-p2.wasm\nruntime: wasi\nenv: { GREETING: hola, KEPT: manifest }\n");
    let out = qyvol()
        .env("HOST_SECRET", "s3cret")
        .env("HOST_SHARED", "shared")
        .args(["run", "-q", "--env", "KEPT=cli", "--env", "HOST_SHARED"])
        .arg(&m)
        .arg("env")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "GREETING=hola\nHOST_SHARED=shared\nKEPT=cli\n"
    );
}

#[test]
fn env_flag_naming_an_unset_host_variable_is_an_error() {
    let out = qyvol()
        .env_remove("NOPE_NOT_SET")
        .args(["run", "--env", "NOPE_NOT_SET"])
        .arg(guest("probe-p1.wasm"))
        .arg("env")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`NOPE_NOT_SET`"), "{}", stderr(&out));
}

#[test]
fn guest_exit_code_is_qyvols_exit_code() {
    for code in [0, 1, 3, 42, 125] {
        let out = qyvol()
            .args(["run", "-q"])
            .arg(guest("probe-p1.wasm"))
            .args(["exit", &code.to_string()])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(code), "exit {code}");
    }
    // WASI preview 1 reserves 126 and up: wasmtime treats `proc_exit(126..)` as a trap.
    // Rust's std on wasip2 reports any failure as `wasi:cli/exit.exit(err)`, which is code 1;
    // `exit-with-code` (WASI 0.2.12) would carry the exact code and is linked too.
    for (code, want) in [(0, 0), (3, 1)] {
        let out = qyvol()
            .args(["run", "-q"])
            .arg(guest("probe-p2.wasm"))
            .args(["exit", &code.to_string()])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(want), "component exit {code}");
    }
}

#[test]
fn non_zero_exit_is_reported_on_stderr_unless_quiet() {
    let out = qyvol()
        .arg("run")
        .arg(guest("probe-p1.wasm"))
        .args(["exit", "3"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).ends_with("⚠ El módulo terminó con el código 3\n"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("✅"));
    let quiet = qyvol()
        .args(["run", "-q"])
        .arg(guest("probe-p1.wasm"))
        .args(["exit", "3"])
        .output()
        .expect("run -q");
    assert_eq!(quiet.status.code(), Some(3));
    assert_eq!(
        stderr(&quiet),
        "",
        "-q says nothing of a guest's own exit code"
    );
}

#[test]
fn stdin_and_stdout_pass_through_untouched() {
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    for probe in PROBES {
        let out = qyvol()
            .args(["run", "-q"])
            .arg(guest(probe))
            .arg("cat")
            .write_stdin(data.clone())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{probe}: {}", stderr(&out));
        assert!(
            out.stdout == data,
            "{probe}: {} bytes came back",
            out.stdout.len()
        );
    }
}

#[test]
fn guest_stderr_goes_to_stderr_and_status_lines_never_reach_stdout() {
    let out = qyvol()
        .arg("run")
        .arg(guest("probe-p2.wasm"))
        .args(["stderr", "oops"])
        .output()
        .expect("run");
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("\noops\n"), "{}", stderr(&out));
}

/// A prompt without a newline must reach the terminal before the guest blocks reading.
#[test]
fn output_is_not_held_back_by_buffering() {
    for probe in PROBES {
        let mut child = Guarded::spawn(
            qyvol_std()
                .args(["run", "-q"])
                .arg(guest(probe))
                .arg("prompt")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
            Duration::from_secs(60),
        );
        let mut out = child.child().stdout.take().expect("stdout");
        let mut prompt = [0u8; 6];
        out.read_exact(&mut prompt)
            .expect("the prompt arrives while the guest waits");
        assert_eq!(&prompt, b"name? ", "{probe}");
        let mut stdin = child.child().stdin.take().expect("stdin");
        stdin.write_all(b"Ana\n").expect("answer");
        drop(stdin);
        let mut rest = String::new();
        out.read_to_string(&mut rest).expect("rest");
        assert_eq!(rest, "hola Ana\n", "{probe}");
        assert!(child.wait().success());
    }
}

#[test]
fn a_component_runs_like_a_module() {
    let out = qyvol()
        .arg("run")
        .arg(guest("probe-p2.wasm"))
        .args(["args", "one", "two words"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "probe-p2\nargs\none\ntwo words\n");
    let err = stderr(&out);
    assert!(err.contains("  - wasi:cli/environment@0.2"), "{err}");
    assert!(err.contains("  - wasi:cli/run@0.2"), "{err}");
    assert!(err.ends_with("✅ Ejecución completada\n"), "{err}");
}
