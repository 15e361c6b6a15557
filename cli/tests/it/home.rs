//! `QYVOL_HOME` protects itself (HOSTILE row 36): Qyvol maps native code from it, so a home or
//! cache folder other users may write is refused (exit 77) with the command that fixes it, by
//! every command that opens it, and a missing one is created with mode 0700. The rule for
//! folders owned by another user is unit-tested in `common/src/home.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fixture::{Scratch, qyvol_in, repo_root, stderr, stdout};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn run_hello(home: &Path) -> std::process::Output {
    qyvol_in(home)
        .env("QYVOL_LANG", "en")
        .args(["run", "-q"])
        .arg(repo_root().join("examples/hello.wasm"))
        .output()
        .expect("run")
}

#[test]
fn a_home_or_cache_others_can_write_is_refused_with_the_chmod_that_fixes_it() {
    for (folder, bits) in [
        ("", 0o777),
        ("", 0o1777), // the sticky bit still lets others plant files
        ("", 0o770),
        ("cache", 0o777),
        ("cache", 0o1777),
    ] {
        let home = Scratch::new();
        let dir = home.dir.path().join(folder);
        // Without the trailing `/` that joining "" leaves, as the error names it.
        let dir = dir.components().collect::<std::path::PathBuf>();
        std::fs::create_dir_all(&dir).expect("mkdir");
        chmod(&dir, bits);
        let out = run_hello(home.dir.path());
        assert_eq!(
            out.status.code(),
            Some(77),
            "{folder} {bits:o}: {}",
            stderr(&out)
        );
        let shown = dir.display();
        assert_eq!(
            stderr(&out),
            format!(
                "error: unsafe QYVOL_HOME: `{shown}` can be written by other users (mode {bits:04o}), who could make Qyvol run their native code: run `chmod go-w {shown}`\n"
            )
        );
        assert!(
            !home.path("cache/compiled").exists(),
            "{folder} {bits:o}: code was compiled into an unsafe cache"
        );
        // The command in the message is the whole fix.
        let fixed = std::process::Command::new("chmod")
            .args(["go-w"])
            .arg(&dir)
            .status()
            .expect("chmod go-w");
        assert!(fixed.success());
        let out = run_hello(home.dir.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "after the fix: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
    }
}

#[test]
fn every_command_that_opens_the_home_refuses_an_unsafe_one() {
    let home = Scratch::new();
    chmod(home.dir.path(), 0o777);
    let s = Scratch::new();
    let manifest = s.write(
        "app.qyv",
        "name: app\nentrypoint: app.wasm\nruntime: wasi\n",
    );
    std::fs::copy(repo_root().join("examples/hello.wasm"), s.path("app.wasm")).expect("copy");
    let hello = repo_root().join("examples/hello.wasm");
    let commands: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec!["run".as_ref(), hello.as_os_str()],
        vec![
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            manifest.as_os_str(),
        ],
        vec!["build".as_ref(), manifest.as_os_str()],
        vec!["cache".as_ref(), "ls".as_ref()],
        vec!["cache".as_ref(), "clear".as_ref()],
        vec!["images".as_ref()],
        vec!["tag".as_ref(), "a:1".as_ref(), "b:1".as_ref()],
        vec!["rmi".as_ref(), "a:1".as_ref()],
        vec!["prune".as_ref()],
        vec!["push".as_ref(), "127.0.0.1:9/a:1".as_ref()],
        vec!["pull".as_ref(), "127.0.0.1:9/a:1".as_ref()],
        vec!["run".as_ref(), "127.0.0.1:9/a:1".as_ref()],
    ];
    for args in &commands {
        let out = qyvol_in(home.dir.path())
            .env("QYVOL_LANG", "en")
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error: unsafe QYVOL_HOME: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A run that does not use the cache never opens the home.
    let out = qyvol_in(home.dir.path())
        .args(["run", "-q", "--no-cache"])
        .arg(&hello)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_missing_home_and_its_folders_are_created_private() {
    let s = Scratch::new();
    let home = s.path("data/qyvol");
    let out = run_hello(&home);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let code = home.join("cache/compiled");
    let fingerprint = std::fs::read_dir(&code)
        .expect("code folder")
        .flatten()
        .next()
        .expect("one fingerprint")
        .path();
    for dir in [
        s.path("data"),
        home.clone(),
        home.join("cache"),
        home.join("store"),
        code,
        fingerprint,
        home.join("cache/paths"),
    ] {
        assert_eq!(format!("{:o}", mode(&dir)), "700", "{}", dir.display());
    }
}
