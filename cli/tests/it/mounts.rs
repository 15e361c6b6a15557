//! Filesystem capabilities: nothing is visible unless mounted, read-only mounts refuse every
//! kind of write, and neither `..` nor symlinks lead out of a mount (HOSTILE rows 12, 15-17).

use crate::{PROBES, Scratch, qyvol, stderr, stdout};

fn probe(s: &Scratch, probe: &str, mount: &str, args: &[&str]) -> std::process::Output {
    qyvol()
        .args(["run", "-q", "--mount"])
        .arg(mount.replace("$DIR", &s.dir.path().display().to_string()))
        .arg(crate::guest(probe))
        .args(args)
        .output()
        .expect("run qyvol")
}

#[test]
fn nothing_of_the_host_is_visible_without_a_mount() {
    for p in PROBES {
        let out = qyvol()
            .args(["run", "-q"])
            .arg(crate::guest(p))
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
                .arg(crate::guest(p))
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
