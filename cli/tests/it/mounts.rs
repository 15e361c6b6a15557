//! Filesystem capabilities: nothing is visible unless mounted, read-only mounts refuse every
//! kind of write, and neither `..` nor symlinks lead out of a mount; a mount is the folder that
//! was checked, and nested mounts keep their modes (HOSTILE rows 12, 15-17, 35).

use crate::fixture::{PROBES, Scratch, qyvol, stderr, stdout};

fn probe(s: &Scratch, probe: &str, mount: &str, args: &[&str]) -> std::process::Output {
    qyvol()
        .args(["run", "-q", "--mount"])
        .arg(mount.replace("$DIR", &s.dir.path().display().to_string()))
        .arg(crate::fixture::guest(probe))
        .args(args)
        .output()
        .expect("run qyvol")
}

#[test]
fn nothing_of_the_host_is_visible_without_a_mount() {
    for p in PROBES {
        let out = qyvol()
            .args(["run", "-q"])
            .arg(crate::fixture::guest(p))
            .args(["read", "/etc/passwd"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{p}");
        assert!(stdout(&out).starts_with("error:"), "{p}: {}", stdout(&out));
    }
}

#[test]
fn a_writable_mount_reads_and_writes_the_host_folder() {
    for p in PROBES {
        let s = Scratch::new();
        s.write("data/in.txt", "from host");
        let out = probe(&s, p, "$DIR/data:/data", &["read", "/data/in.txt"]);
        assert_eq!(stdout(&out), "from host", "{p}: {}", stderr(&out));
        let out = probe(
            &s,
            p,
            "$DIR/data:/data",
            &["write", "/data/out.txt", "from guest"],
        );
        assert_eq!(out.status.code(), Some(0), "{p}: {}", stdout(&out));
        assert_eq!(s.read("data/out.txt"), "from guest");
    }
}

#[test]
fn a_read_only_mount_refuses_every_write() {
    for p in PROBES {
        let s = Scratch::new();
        s.write("ro/f.txt", "keep me");
        s.write("rw/.keep", "");
        let both = |args: &[&str]| {
            qyvol()
                .args(["run", "-q", "--mount"])
                .arg(format!("{}:/ro:ro", s.path("ro").display()))
                .arg("--mount")
                .arg(format!("{}:/rw", s.path("rw").display()))
                .arg(crate::fixture::guest(p))
                .args(args)
                .output()
                .expect("run")
        };
        let attempts: &[&[&str]] = &[
            &["write", "/ro/f.txt", "pwned"],
            &["write", "/ro/new.txt", "pwned"],
            &["append", "/ro/f.txt", "pwned"],
            &["truncate", "/ro/f.txt"],
            &["set-len", "/ro/f.txt"],
            &["rename", "/ro/f.txt", "/ro/g.txt"],
            &["rename", "/ro/f.txt", "/rw/g.txt"],
            &["link", "/ro/f.txt", "/rw/hard"],
            &["link", "/rw/.keep", "/ro/hard"],
            &["remove", "/ro/f.txt"],
            &["mkdir", "/ro/sub"],
        ];
        for args in attempts {
            let out = both(args);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{p} {args:?} was allowed: {}",
                stdout(&out)
            );
        }
        assert_eq!(s.read("ro/f.txt"), "keep me", "{p}");
        let mut names: Vec<_> = std::fs::read_dir(s.path("ro"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["f.txt"], "{p}");
        assert!(!s.path("rw/hard").exists() && !s.path("rw/g.txt").exists());
        let out = both(&["read", "/ro/f.txt"]);
        assert_eq!(stdout(&out), "keep me", "reading still works");
    }
}

#[test]
fn dotdot_cannot_leave_a_mount() {
    for p in PROBES {
        let s = Scratch::new();
        s.write("secret.txt", "secret");
        s.write("data/ok.txt", "ok");
        for path in [
            "/data/../secret.txt",
            "/data/../../etc/passwd",
            "/data/./../data/../secret.txt",
        ] {
            let out = probe(&s, p, "$DIR/data:/data", &["read", path]);
            assert_ne!(stdout(&out), "secret", "{p} {path}");
            assert_eq!(out.status.code(), Some(1), "{p} {path}: {}", stdout(&out));
        }
    }
}

#[cfg(unix)]
#[test]
fn symlinks_in_a_mount_cannot_lead_outside() {
    for p in PROBES {
        let s = Scratch::new();
        s.write("secret.txt", "secret");
        s.write("data/ok.txt", "ok");
        std::os::unix::fs::symlink("/etc", s.path("data/etc")).expect("symlink");
        std::os::unix::fs::symlink("/etc/", s.path("data/etc-slash")).expect("symlink");
        std::os::unix::fs::symlink(s.path("secret.txt"), s.path("data/abs")).expect("symlink");
        std::os::unix::fs::symlink("../secret.txt", s.path("data/rel")).expect("symlink");
        std::os::unix::fs::symlink("ok.txt", s.path("data/inside")).expect("symlink");
        for path in [
            "/data/etc/passwd",
            "/data/etc-slash/passwd",
            "/data/abs",
            "/data/rel",
        ] {
            let out = probe(&s, p, "$DIR/data:/data:ro", &["read", path]);
            assert_eq!(out.status.code(), Some(1), "{p} {path}: {}", stdout(&out));
            assert!(
                !stdout(&out).contains("root:") && !stdout(&out).contains("secret"),
                "{p} {path}"
            );
        }
        let out = probe(&s, p, "$DIR/data:/data:ro", &["read", "/data/inside"]);
        assert_eq!(stdout(&out), "ok", "a symlink that stays inside works");
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_the_guest_creates_cannot_lead_outside() {
    let s = Scratch::new();
    s.write("data/.keep", "");
    for (i, target) in ["/etc", "../../../../../../etc", "../"].iter().enumerate() {
        let link = format!("/data/escape{i}");
        let made = probe(
            &s,
            "probe-p1.wasm",
            "$DIR/data:/data",
            &["symlink", target, &link],
        );
        // Either the link is refused outright, or it exists and cannot be followed out.
        if made.status.code() == Some(0) {
            assert!(s.path(&format!("data/escape{i}")).is_symlink());
        }
        let out = probe(
            &s,
            "probe-p1.wasm",
            "$DIR/data:/data",
            &["read", &format!("{link}/passwd")],
        );
        assert_eq!(out.status.code(), Some(1), "{target}");
        assert!(!stdout(&out).contains("root:"), "{target}");
    }
}

#[test]
fn mount_host_folder_that_does_not_exist_exits_66() {
    let s = Scratch::new();
    let out = probe(&s, "probe-p1.wasm", "$DIR/missing:/data", &["ls", "/data"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

/// HOSTILE row 17, as it happened: `./data` is checked when the manifest loads and opened when
/// the guest starts; a thread keeps exchanging it with a symlink to a folder outside while a
/// sandboxed manifest starts, again and again. The guest must never read what lies outside.
#[cfg(target_os = "linux")]
#[test]
fn a_mount_swapped_for_a_symlink_while_qyvol_starts_is_never_followed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const TRIES: usize = 200;
    let s = Scratch::new();
    s.write("outside/secret.txt", "the secret");
    s.write("app/data/public.txt", "public");
    std::os::unix::fs::symlink("../outside", s.path("app/link")).expect("symlink");
    s.guest("probe-p1.wasm");
    std::fs::rename(s.path("probe-p1.wasm"), s.path("app/probe-p1.wasm")).expect("move guest");
    let manifest = s.write(
        "app/app.qyv",
        "name: race\nentrypoint: probe-p1.wasm\nruntime: wasi\nenvironment: sandbox\nargs: [read, /data/secret.txt]\nmounts: [{ host: data, guest: /data }]\n",
    );
    let stop = AtomicBool::new(false);
    let (mut read_secret, mut guest_ran, mut refused) = (0, 0, 0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // `data` and `link` trade places atomically: `data` is always there, as a folder
            // or as a symlink leading out.
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    s.path("app/data"),
                    rustix::fs::CWD,
                    s.path("app/link"),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .expect("exchange data and link");
                std::thread::yield_now();
            }
        });
        for _ in 0..TRIES {
            let out = qyvol()
                .args(["run", "-q"])
                .arg(&manifest)
                .output()
                .expect("run qyvol");
            if stdout(&out).contains("the secret") {
                read_secret += 1;
            } else if out.status.code() == Some(1) {
                guest_ran += 1;
            } else {
                refused += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        read_secret, 0,
        "the guest read outside its mount in {read_secret} of {TRIES} runs ({guest_ran} saw the folder, {refused} were refused)"
    );
    // Both states were met, so the swap really raced the start-up.
    assert!(
        guest_ran > 0 && refused > 0,
        "ran {guest_ran}, refused {refused}"
    );
}

/// `qyvol run -q` with these `--mount`s (`$DIR` is the scratch folder) running `probe ARGS`.
fn with_mounts(s: &Scratch, mounts: &[&str], args: &[&str]) -> std::process::Output {
    let mut cmd = qyvol();
    cmd.args(["run", "-q"]);
    for m in mounts {
        cmd.arg("--mount")
            .arg(m.replace("$DIR", &s.dir.path().display().to_string()));
    }
    cmd.arg(crate::fixture::guest("probe-p1.wasm"))
        .args(args)
        .output()
        .expect("run qyvol")
}

/// Writes `app.qyv` for the probe guest (copied in) with `rest` (args, mounts) and runs it
/// with `flags`, in English.
fn run_manifest(s: &Scratch, rest: &str, flags: &[&str]) -> std::process::Output {
    if !s.path("probe-p1.wasm").exists() {
        s.guest("probe-p1.wasm");
    }
    let manifest = format!("name: app\nentrypoint: probe-p1.wasm\nruntime: wasi\n{rest}");
    let m = s.write("app.qyv", manifest);
    qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "-q"])
        .args(flags)
        .arg(&m)
        .output()
        .expect("run qyvol")
}

/// HOSTILE row 35: a read-only folder inside a writable mount's folder would be writable
/// through the writable mount (`/data/config/x`, `/data/./config/x`, ...), so the pair is
/// refused before the guest runs, however the read-only folder's host path is spelled.
#[cfg(unix)]
#[test]
fn a_read_only_mount_inside_a_writable_one_is_refused() {
    let s = Scratch::new();
    s.write("data/config/app.toml", "keep me");
    std::os::unix::fs::symlink("data/config", s.path("config-link")).expect("symlink");
    for ro in [
        "$DIR/data/config:/config:ro",
        "$DIR/data/./config:/config:ro",
        "$DIR/data/config/../config/:/config:ro",
        "$DIR/config-link:/config:ro",
        "$DIR/data:/config:ro",
    ] {
        for write in [
            "/data/config/app.toml",
            "/data/./config/app.toml",
            "/data/config/../config/app.toml",
        ] {
            let out = with_mounts(&s, &["$DIR/data:/data", ro], &["write", write, "pwned"]);
            assert_eq!(
                out.status.code(),
                Some(78),
                "{ro} {write}: {}",
                stderr(&out)
            );
            assert!(
                stderr(&out).contains("the read-only mount `/config`")
                    && stderr(&out).contains("is inside the writable mount `/data`"),
                "{ro}: {}",
                stderr(&out)
            );
            assert_eq!(s.read("data/config/app.toml"), "keep me", "{ro} {write}");
        }
    }
}

/// The same pair written in a manifest is refused the same way (the runtime decides, whatever
/// the mounts come from).
#[test]
fn a_manifest_with_a_read_only_mount_inside_a_writable_one_is_refused() {
    let s = Scratch::new();
    s.write("data/config/app.toml", "keep me");
    let out = run_manifest(
        &s,
        "args: [write, /data/config/app.toml, pwned]\nmounts:\n  - { host: data, guest: /data }\n  - { host: data/config, guest: /config, readonly: true }\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: invalid mount: the read-only mount `/config`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.read("data/config/app.toml"), "keep me");
}

/// A writable folder inside a read-only one changes nothing the guest may not change: the
/// writable guest path writes, the read-only one still refuses.
#[test]
fn a_writable_mount_inside_a_read_only_one_keeps_both_modes() {
    let s = Scratch::new();
    s.write("app/out/.keep", "");
    let mounts = ["$DIR/app:/app:ro", "$DIR/app/out:/out"];
    let out = with_mounts(&s, &mounts, &["write", "/out/result", "done"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(s.read("app/out/result"), "done");
    let out = with_mounts(&s, &mounts, &["write", "/app/out/result", "pwned"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(s.read("app/out/result"), "done");
}

/// One guest path inside another would make which folder a path reaches depend on its
/// spelling (`/data/sub/x` or `/data/./sub/x`), so nested guest paths are refused.
#[test]
fn nested_guest_paths_are_refused() {
    let s = Scratch::new();
    s.write("a/sub/f", "a's");
    s.write("b/f", "b's");
    for (first, second) in [
        ("$DIR/a:/data", "$DIR/b:/data/sub"),
        ("$DIR/a:/data/sub", "$DIR/b:/data"),
        ("$DIR/a:/", "$DIR/b:/data"),
        ("$DIR/a:/data", "$DIR/b:/data/."),
    ] {
        let out = with_mounts(&s, &[first, second], &["read", "/data/./sub/f"]);
        assert_eq!(
            out.status.code(),
            Some(78),
            "{first} {second}: {}",
            stdout(&out)
        );
        assert!(stderr(&out).contains("guest path"), "{}", stderr(&out));
        assert_eq!(stdout(&out), "", "{first} {second}");
    }
}

/// `/proc/self`, `/proc/thread-self` and `/proc/<pid>` are Qyvol's own process: its
/// environment (`environ`), its memory (`mem`), its open files (`fd/`). None is ever mounted,
/// read-only or not, from a flag or from a manifest.
#[cfg(target_os = "linux")]
#[test]
fn qyvols_own_process_is_never_mountable() {
    let s = Scratch::new();
    s.guest("probe-p1.wasm");
    let refused = |out: &std::process::Output, what: &str| {
        // Not the guest's output: it would be Qyvol's environment.
        assert_eq!(out.status.code(), Some(77), "{what}: {}", stderr(out));
        assert!(stderr(out).contains("procfs"), "{what}: {}", stderr(out));
        assert_eq!(stdout(out), "", "{what}");
    };
    for proc in [
        "/proc/self",
        "/proc/thread-self",
        "/proc/./self/",
        "/proc/self/task/..",
    ] {
        let out = with_mounts(&s, &[&format!("{proc}:/p:ro")], &["read", "/p/environ"]);
        refused(&out, proc);
        let out = run_manifest(
            &s,
            &format!(
                "args: [read, /p/environ]\nmounts: [{{ host: \"{proc}\", guest: /p, readonly: true }}]\n"
            ),
            &["--allow-outside"],
        );
        refused(&out, &format!("manifest {proc}"));
    }
    // `/proc/<pid>` by qyvol's own pid: the shell's, which `exec` hands to qyvol.
    let qyvol_cmd = crate::fixture::qyvol_std();
    let in_shell = |script: &str| {
        let mut sh = std::process::Command::new("sh");
        for (k, v) in qyvol_cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.current_dir(s.dir.path())
            .args(["-c", script, "sh"])
            .arg(qyvol_cmd.get_program())
            .output()
            .expect("run sh")
    };
    let out = in_shell("exec \"$1\" run -q --mount /proc/$$:/p:ro probe-p1.wasm read /p/environ");
    refused(&out, "--mount /proc/<pid>");
    let out = in_shell(
        "printf 'name: app\\nentrypoint: probe-p1.wasm\\nruntime: wasi\\nargs: [read, /p/environ]\\nmounts: [{ host: /proc/%s, guest: /p }]\\n' $$ > pid.qyv && exec \"$1\" run -q --allow-outside pid.qyv",
    );
    refused(&out, "manifest /proc/<pid>");
}

/// A manifest's mount is opened beneath the manifest's folder without following any symlink,
/// so a symlinked folder (or a symlink on the way to one) is refused even when it points
/// inside: the folder checked and the folder mounted are then one and the same.
#[cfg(unix)]
#[test]
fn a_manifest_mount_through_a_symlink_is_refused() {
    let s = Scratch::new();
    s.write("real/data/f.txt", "inside");
    std::os::unix::fs::symlink("real", s.path("link")).expect("symlink");
    std::os::unix::fs::symlink("real/data", s.path("data-link")).expect("symlink");
    for host in [
        "link/data",
        "data-link",
        "./link/data/",
        "real/../link/data",
    ] {
        let out = run_manifest(
            &s,
            &format!("args: [read, /data/f.txt]\nmounts: [{{ host: \"{host}\", guest: /data }}]\n"),
            &[],
        );
        assert_eq!(out.status.code(), Some(78), "{host}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(&format!(
                "mount host `{host}`: the path goes through a symlink"
            )),
            "{host}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{host}");
    }
    let out = run_manifest(
        &s,
        "args: [read, /data/f.txt]\nmounts: [{ host: real/data, guest: /data }]\n",
        &[],
    );
    assert_eq!(
        stdout(&out),
        "inside",
        "the real folder mounts: {}",
        stderr(&out)
    );
}
