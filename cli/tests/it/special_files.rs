//! A FIFO, a device or a folder where a file is expected (HOSTILE row 37): as FILE to `run`,
//! `inspect`, `serve` and `build`, named like a manifest, a module or a bundle, and as a
//! manifest's entrypoint. Each is refused at once (exit 66) saying what it is; a FIFO used to
//! block `qyvol run` forever, so every command here runs under a deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::{Scratch, qyvol, stderr};

/// Far longer than a refusal takes; a command still running then is hung on the file.
const DEADLINE: Duration = Duration::from_secs(10);

fn mkfifo(path: &Path) -> PathBuf {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
    path.to_path_buf()
}

/// `qyvol <args>` in English, bounded by [`DEADLINE`].
fn refused(args: &[&str], file: &Path) -> std::process::Output {
    qyvol()
        .env("QYVOL_LANG", "en")
        .args(args)
        .arg(file)
        .timeout(DEADLINE)
        .output()
        .expect("run qyvol")
}

#[test]
fn a_fifo_device_or_folder_given_as_file_is_refused_at_once() {
    let s = Scratch::new();
    let folder = s.path("app.qyv");
    std::fs::create_dir(&folder).expect("mkdir");
    let cases = [
        (mkfifo(&s.path("fifo.qyv")), "a FIFO"),
        (mkfifo(&s.path("fifo.wasm")), "a FIFO"),
        (mkfifo(&s.path("fifo.qyvc")), "a FIFO"),
        (PathBuf::from("/dev/zero"), "a character device"),
        (PathBuf::from("/dev/null"), "a character device"),
        (folder, "a folder"),
    ];
    let commands: [&[&str]; 4] = [
        &["run", "-q"],
        &["inspect"],
        &["serve", "-q", "--listen", "127.0.0.1:0"],
        &["build", "-q"],
    ];
    for (file, what) in &cases {
        for args in commands {
            let out = refused(args, file);
            assert_eq!(
                out.status.code(),
                Some(66),
                "{args:?} {}: {}",
                file.display(),
                stderr(&out)
            );
            assert_eq!(
                stderr(&out),
                format!(
                    "error: not a file: `{}`: {what}, not a file: give a .qyv, .wasm or .qyvc file\n",
                    file.display()
                ),
                "{args:?}"
            );
        }
    }
    let es = qyvol()
        .args(["run", "-q", "/dev/zero"])
        .timeout(DEADLINE)
        .output()
        .expect("run");
    assert_eq!(es.status.code(), Some(66));
    assert!(
        stderr(&es).starts_with("error: no es un archivo: `/dev/zero`"),
        "{}",
        stderr(&es)
    );
}

#[test]
fn a_fifo_device_or_folder_as_entrypoint_is_refused_at_once() {
    let s = Scratch::new();
    mkfifo(&s.path("fifo.wasm"));
    std::fs::create_dir(s.path("dir.wasm")).expect("mkdir");
    for (entry, what, shown) in [
        ("fifo.wasm", "a FIFO", s.path("fifo.wasm")),
        ("dir.wasm", "a folder", s.path("dir.wasm")),
        ("/dev/zero", "a character device", s.path("/dev/zero")),
    ] {
        let manifest = s.write(
            "app.qyv",
            format!("name: app\nentrypoint: {entry}\nruntime: wasi\n"),
        );
        for args in [
            &["run", "-q"][..],
            &["inspect"],
            &["serve", "-q", "--listen", "127.0.0.1:0"],
        ] {
            let out = refused(args, &manifest);
            assert_eq!(
                out.status.code(),
                Some(66),
                "{args:?} {entry}: {}",
                stderr(&out)
            );
            assert_eq!(
                stderr(&out),
                format!(
                    "error: not a file: `{}`:2:13: `{}` is {what}, not a file: point `entrypoint` at a .wasm file\n",
                    manifest.display(),
                    shown.display()
                ),
                "{args:?}"
            );
        }
        // `build` loads the manifest before the module exists, then reads what it names.
        let out = refused(&["build", "-q"], &manifest);
        assert_eq!(
            out.status.code(),
            Some(66),
            "build {entry}: {}",
            stderr(&out)
        );
        assert_eq!(
            stderr(&out),
            format!(
                "error: not a file: `{}` is {what}, not a file: give a .wasm file\n",
                shown.display()
            )
        );
    }
}
