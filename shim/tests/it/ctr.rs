//! `containerd-shim-qyvol-v1` under a real containerd (Debian's package, installed by
//! `.ci/run`; it needs root), started by each test on a private root, state folder and socket
//! with this build's shim on its PATH, and driven with `ctr`: images as Qyvol writes them,
//! the guest's output and exit code, the grants (only the container's mounts; no network),
//! `ctr task kill`, and images the shim cannot run.

#![expect(
    clippy::expect_used,
    reason = "a broken fixture should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use qyvol_store::bundle::{Bundle, BundleParts};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A containerd of the test's own, killed when dropped.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    /// Its own namespace too: the shim keeps its containers' state under
    /// `/run/containerd/qyvol/<namespace>`, shared by every containerd of the machine.
    namespace: String,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{0}/sock\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_apparmor = true\n",
                dir.path().display()
            ),
        )
        .expect("config");
        // containerd finds `containerd-shim-qyvol-v1` for `io.containerd.qyvol.v1` on its PATH.
        let shim_dir = Path::new(env!("CARGO_BIN_EXE_containerd-shim-qyvol-v1"))
            .parent()
            .expect("the shim's folder")
            .to_path_buf();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .env("PATH", path)
            // The shims containerd starts speak the language of its environment (Spanish
            // unless it says English); these tests read them in English.
            .env("QYVOL_LANG", "en")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
            .spawn()
            .expect("containerd is installed (.ci/run installs it)");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let namespace = format!("qyvol-test-{}-{nanos}", std::process::id());
        let ctd = Self {
            child,
            dir,
            namespace,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ctd.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ctd
    }

    /// `ctr` against this containerd, in its namespace.
    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("sock"))
            .args(["--namespace", &self.namespace])
            .args(args)
            .output()
            .expect("ctr is installed with containerd")
    }

    fn import(&self, archive: &Path, unpack: bool) {
        let archive = archive.display().to_string();
        let mut args = vec!["image", "import", "--all-platforms"];
        if !unpack {
            args.push("--no-unpack");
        }
        args.push(&archive);
        let out = self.ctr(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// `ctr run` of `image` with Qyvol's runtime (`extra` goes before the image), then the
    /// task and container removed. Not `--rm`: ctr deletes the task as soon as it saw the exit,
    /// and after a very early exit the delete can find the task still "running" and make ctr
    /// exit 1 instead of with the task's status (seen once in a CI run).
    fn run(&self, extra: &[&str], image: &str, id: &str, args: &[&str]) -> Output {
        let mut all = vec!["run", "--runtime", "io.containerd.qyvol.v1"];
        all.extend_from_slice(extra);
        all.extend_from_slice(&[image, id, "/app.wasm"]);
        all.extend_from_slice(args);
        let out = self.ctr(&all);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let deleted = self.ctr(&["task", "delete", id]);
            if deleted.status.success()
                || text(&deleted.stderr).contains("not found")
                || Instant::now() > deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.ctr(&["container", "delete", id]);
        out
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks a failed test left running: their shims outlive containerd.
        for task in text(&self.ctr(&["task", "ls", "-q"]).stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", task]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/qyvol").join(&self.namespace));
    }
}

/// A test guest as a Qyvol image archive named `localhost:5000/<name>:1`: with the module in
/// its filesystem (`rootfs`, what this containerd unpacks) or as the Wasm OCI artifact.
fn image(dir: &Path, guest: &str, name: &str, rootfs: bool) -> PathBuf {
    let qyv = format!("version: 1\nname: {name}\nentrypoint: app.wasm\nruntime: wasi\n");
    image_of(
        dir,
        &repo().join("cli/tests/guests").join(guest),
        &qyv,
        name,
        rootfs,
    )
}

/// The module at `wasm` with the manifest `qyv`, as [`image`] packs it.
fn image_of(dir: &Path, wasm: &Path, qyv: &str, name: &str, rootfs: bool) -> PathBuf {
    let wasm = std::fs::read(wasm).expect("module");
    let bundle = dir.join(format!("{name}.qyvc"));
    qyvol_store::bundle::write(
        &bundle,
        &BundleParts {
            name,
            qyv: qyv.as_bytes(),
            wasm: &wasm,
            os: if wasmparser::Parser::is_component(&wasm) {
                "wasip2"
            } else {
                "wasip1"
            },
            precompiled: None,
        },
    )
    .expect("bundle");
    let bundle = Bundle::open(&bundle).expect("open");
    let archive = dir.join(format!("{name}.tar"));
    let reference = format!("localhost:5000/{name}:1");
    if rootfs {
        qyvol_store::bundle::save_rootfs(&bundle, &reference, "1", &archive)
    } else {
        qyvol_store::bundle::save(&bundle, &reference, "1", &archive)
    }
    .expect("archive");
    archive
}

fn probe(ctd: &Containerd, dir: &Path) -> &'static str {
    ctd.import(&image(dir, "probe-p1.wasm", "probe", true), true);
    "localhost:5000/probe:1"
}

#[test]
fn a_qyvol_image_prints_and_exits_through_the_shim() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    let out = ctd.run(&[], probe, "args", &["args", "uno", "dos"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "probe\nargs\nuno\ndos\n");
    let out = ctd.run(&[], probe, "exit", &["exit", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!ctd.log().contains("panicked"), "{}", ctd.log());
}

#[test]
fn only_the_containers_mounts_are_visible_and_read_only_ones_stay_read_only() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data");
    std::fs::write(data.join("note.txt"), "from the host").expect("note");

    // The image's own files and the system's are not there.
    for path in ["/", "/app.wasm", "/proc/self/status", "/etc", "/run"] {
        let out = ctd.run(&[], probe, "peek", &["read", path]);
        assert_eq!(
            text(&out.stdout),
            "error: No such file or directory (os error 44)\n",
            "{path}: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{path}");
    }
    let ro = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        data.display()
    );
    let out = ctd.run(
        &["--mount", &ro],
        probe,
        "ro-read",
        &["read", "/data/note.txt"],
    );
    assert_eq!(text(&out.stdout), "from the host", "{}", text(&out.stderr));
    let out = ctd.run(
        &["--mount", &ro],
        probe,
        "ro-write",
        &["write", "/data/new.txt", "x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !data.join("new.txt").exists(),
        "a read-only mount was written"
    );

    // A volume inside another is reached through the outer one, as the kernel mounted it.
    let inner = dir.path().join("inner");
    std::fs::create_dir(&inner).expect("inner");
    std::fs::write(inner.join("deep.txt"), "nested").expect("deep");
    std::fs::create_dir(data.join("sub")).expect("sub");
    let nested = format!(
        "type=bind,src={},dst=/data/sub,options=rbind:ro",
        inner.display()
    );
    let out = ctd.run(
        &["--mount", &ro, "--mount", &nested],
        probe,
        "nested",
        &["read", "/data/sub/deep.txt"],
    );
    assert_eq!(text(&out.stdout), "nested", "{}", text(&out.stderr));

    let rw = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        data.display()
    );
    let out = ctd.run(
        &["--mount", &rw],
        probe,
        "rw-write",
        &["write", "/data/new.txt", "x"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(data.join("new.txt")).expect("new"),
        "x"
    );
}

#[test]
fn a_connection_no_grant_names_is_refused_inside_the_container() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    ctd.import(&image(dir.path(), "probe-p2.wasm", "probe2", true), true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let target = listener.local_addr().expect("addr").to_string();
    // The host's network, so only Qyvol's grants stand between the guest and the listener.
    let out = ctd.run(
        &["--net-host"],
        "localhost:5000/probe2:1",
        "connect",
        &["connect", &target, "hello"],
    );
    assert_eq!(
        text(&out.stdout),
        "error: Permission denied (os error 2)\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        listener.accept().is_err(),
        "the guest reached the listener without a grant"
    );
}

#[test]
fn the_allow_net_annotation_grants_the_connection_it_names() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    ctd.import(&image(dir.path(), "probe-p2.wasm", "probe2", true), true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let target = listener.local_addr().expect("addr").to_string();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut said = String::new();
        s.read_to_string(&mut said).expect("read");
        s.write_all(format!("pong to {said}").as_bytes())
            .expect("write");
    });
    let grant = format!("qyvol.dev/allow-net={target}");
    let out = ctd.run(
        &["--net-host", "--annotation", &grant],
        "localhost:5000/probe2:1",
        "granted",
        &["connect", &target, "hello"],
    );
    assert_eq!(
        text(&out.stdout),
        "connected: pong to hello\n",
        "{}",
        text(&out.stderr)
    );
    server.join().expect("server");
}

#[test]
fn time_and_fuel_annotations_stop_a_spinning_guest_and_bad_ones_are_refused() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    // 124: ended by a limit, as `qyvol run` exits (docs/exit-codes.md).
    for (id, limit) in [
        ("timeout", "qyvol.dev/timeout=300ms"),
        ("fuel", "qyvol.dev/fuel=1000000"),
    ] {
        let out = ctd.run(&["--annotation", limit], probe, id, &["spin"]);
        assert_eq!(
            out.status.code(),
            Some(124),
            "{limit}: {}",
            text(&out.stderr)
        );
    }
    // A typo in a value or a key must not run the guest without the limit it meant.
    for (id, annotation, said) in [
        (
            "typo",
            "qyvol.dev/timeout=soon",
            "qyvol: the annotation qyvol.dev/timeout=`soon` is wrong",
        ),
        (
            "misspelt",
            "qyvol.dev/timeouts=1s",
            "qyvol: unknown annotation `qyvol.dev/timeouts`",
        ),
    ] {
        let out = ctd.run(&["--annotation", annotation], probe, id, &["args", "ran"]);
        assert_eq!(out.status.code(), Some(125));
        assert_eq!(text(&out.stdout), "");
        assert!(text(&out.stderr).starts_with(said), "{}", text(&out.stderr));
    }
}

#[test]
fn the_pods_memory_limit_bounds_the_guest_and_going_past_it_is_explained() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    // 128 MiB for the container, runtime included; the guest asks for 200.
    let out = ctd.run(
        &["--memory-limit", "134217728"],
        probe,
        "greedy",
        &["alloc", "200"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert!(
        // The words `qyvol run` uses for the same end (one text per way a run ends).
        text(&out.stderr).starts_with("qyvol: 🧠 The memory limit of "),
        "killed without Qyvol's word: {}",
        text(&out.stderr)
    );
}

#[test]
fn a_memory_limit_too_small_for_the_runtime_is_refused_with_what_to_give() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    let out = ctd.run(
        &["--memory-limit", "16777216"],
        probe,
        "tiny",
        &["args", "ran"],
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).starts_with(
            "qyvol: the container's memory limit (16MiB) leaves the guest nothing once the runtime has its share"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_granted_host_name_is_not_resolved_through_the_images_own_hosts_file() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let files = [
        (
            "app.wasm".to_string(),
            std::fs::read(repo().join("cli/tests/guests/probe-p2.wasm")).expect("probe"),
        ),
        (
            "etc/hosts".to_string(),
            b"127.0.0.1 granted.example.com\n".to_vec(),
        ),
    ];
    ctd.import(&linux_image(dir.path(), "hosts", &files), true);
    let grant = format!("qyvol.dev/allow-net=granted.example.com:{port}");
    let target = format!("granted.example.com:{port}");
    // The host's network: only the check stands between the guest and the listener.
    let out = ctd.run(
        &["--annotation", &grant],
        "localhost:5000/hosts:1",
        "hosts",
        &["connect", &target, "x"],
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "qyvol: the grant `{target}` names a host, but the container's /etc/hosts is its image's"
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(listener.accept().is_err(), "the guest reached the address");
}

#[test]
fn a_container_without_an_entrypoint_is_told_what_to_give() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [("data.txt".to_string(), b"no module here".to_vec())];
    ctd.import(&linux_image(dir.path(), "empty", &files), true);
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.qyvol.v1",
        "localhost:5000/empty:1",
        "empty",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).starts_with(
            "qyvol: the container has no entrypoint: give the module's path (e.g. /app.wasm)\n"
        ),
        "{}",
        text(&out.stderr)
    );
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// An OCI archive of one image named `localhost:5000/<name>:1`, written by hand: its config and
/// its layers (media type, bytes) as given.
fn oci_archive(
    dir: &Path,
    name: &str,
    config: &serde_json::Value,
    layers: &[(&str, Vec<u8>)],
) -> PathBuf {
    let config = serde_json::to_vec(config).expect("config");
    let descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(media, bytes)| {
            serde_json::json!({ "mediaType": media, "digest": sha256(bytes), "size": bytes.len() })
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(&config), "size": config.len() },
        "layers": descriptors,
    }))
    .expect("manifest");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": sha256(&manifest), "size": manifest.len(),
                        "annotations": { "io.containerd.image.name": format!("localhost:5000/{name}:1"),
                                         "org.opencontainers.image.ref.name": "1" } }],
    }))
    .expect("index");
    let mut archive = tar::Builder::new(Vec::new());
    let mut put = |name: String, bytes: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        archive.append_data(&mut h, name, bytes).expect("entry");
    };
    put("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
    put("index.json".into(), &index);
    let blobs = layers.iter().map(|(_, b)| b.as_slice());
    for blob in blobs.chain([config.as_slice(), manifest.as_slice()]) {
        put(format!("blobs/{}", sha256(blob).replace(':', "/")), blob);
    }
    let out = dir.join(format!("{name}.tar"));
    std::fs::write(&out, archive.into_inner().expect("archive")).expect("write");
    out
}

/// An ordinary Linux image `localhost:5000/<name>:1` of one layer holding `files` (path, bytes;
/// all executable), whose entrypoint is `/app.wasm` when it has one.
fn linux_image(dir: &Path, name: &str, files: &[(String, Vec<u8>)]) -> PathBuf {
    let mut layer = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, bytes) in files {
        for parent in Path::new(path).ancestors().skip(1) {
            let parent = parent.display().to_string();
            if !parent.is_empty() && dirs.insert(parent.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                layer
                    .append_data(&mut h, format!("{parent}/"), std::io::empty())
                    .expect("dir");
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_size(bytes.len() as u64);
        layer
            .append_data(&mut h, path, bytes.as_slice())
            .expect("file");
    }
    let layer = layer.into_inner().expect("layer");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let entrypoint: Vec<&str> = if files.iter().any(|(p, _)| p == "app.wasm") {
        vec!["/app.wasm"]
    } else {
        vec![]
    };
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": { "Entrypoint": entrypoint },
        "rootfs": { "type": "layers", "diff_ids": [sha256(&layer)] },
    });
    oci_archive(
        dir,
        name,
        &config,
        &[("application/vnd.oci.image.layer.v1.tar", layer)],
    )
}

/// An image whose `/app.wasm` is the host's `echo` (with the libraries it loads): what a
/// hostile image under the `qyvol` runtime class would ship.
fn native_image(dir: &Path) -> PathBuf {
    let echo = Path::new("/bin/echo");
    let mut files: Vec<(String, Vec<u8>)> =
        vec![("app.wasm".into(), std::fs::read(echo).expect("echo"))];
    let ldd = Command::new("ldd").arg(echo).output().expect("ldd");
    for lib in text(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let bytes = std::fs::read(lib).expect("library");
        files.push((lib.trim_start_matches('/').to_string(), bytes));
    }
    linux_image(dir, "native", &files)
}

#[test]
fn an_images_name_service_libraries_are_never_loaded() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A library whose loading leaves a mark in the volume; glibc would load it for any user or
    // host lookup if it read the image's nsswitch.conf.
    let src = dir.path().join("evil.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n__attribute__((constructor)) static void mark(void) {\n  \
         FILE *f = fopen(\"/scratch/PWNED\", \"w\");\n  if (f) { fputs(\"native\", f); fclose(f); }\n}\n",
    )
    .expect("source");
    let lib = dir.path().join("libnss_evil.so.2");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .output()
        .expect("cc (gcc is on the machine)");
    assert!(cc.status.success(), "{}", text(&cc.stderr));
    let lib = std::fs::read(&lib).expect("library");
    let multiarch = text(
        &Command::new("cc")
            .arg("-print-multiarch")
            .output()
            .expect("cc")
            .stdout,
    )
    .trim()
    .to_string();
    let mut files = vec![
        (
            "app.wasm".to_string(),
            std::fs::read(repo().join("cli/tests/guests/probe-p2.wasm")).expect("probe"),
        ),
        (
            "etc/nsswitch.conf".to_string(),
            b"passwd: evil\ngroup: evil\nhosts: evil\n".to_vec(),
        ),
    ];
    for libdir in ["lib", "lib64", "usr/lib"] {
        files.push((format!("{libdir}/libnss_evil.so.2"), lib.clone()));
        files.push((
            format!("{libdir}/{multiarch}/libnss_evil.so.2"),
            lib.clone(),
        ));
    }
    ctd.import(&linux_image(dir.path(), "nss", &files), true);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).expect("scratch");
    let mount = format!(
        "type=bind,src={},dst=/scratch,options=rbind:rw",
        scratch.display()
    );
    // youki looks the user's home up (no HOME in the image), and a granted host name is
    // resolved when the guest connects to it.
    let out = ctd.run(
        &[
            "--mount",
            &mount,
            "--annotation",
            "qyvol.dev/allow-net=localhost:9",
        ],
        "localhost:5000/nss:1",
        "nss",
        &["connect", "localhost:9", "x"],
    );
    assert!(
        text(&out.stdout).starts_with("error: "),
        "the guest ran: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        !scratch.join("PWNED").exists(),
        "the image's library ran natively"
    );
}

#[test]
fn a_native_executable_in_an_image_never_runs() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    ctd.import(&native_image(dir.path()), true);
    // The entrypoint is an executable ELF file: refused as a module, not executed.
    let out = ctd.run(&[], "localhost:5000/native:1", "elf", &["pwned"]);
    assert_eq!(text(&out.stdout), "", "native code ran");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .starts_with("qyvol: `/app.wasm` is not WebAssembly (it does not start with `\\0asm`)"),
        "{}",
        text(&out.stderr)
    );
    // Nor by a name looked up on the PATH.
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.qyvol.v1",
        "localhost:5000/native:1",
        "path",
        "echo",
        "pwned",
    ]);
    assert_eq!(text(&out.stdout), "", "native code ran");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("qyvol: cannot open `echo`"),
        "{}",
        text(&out.stderr)
    );
    // The same image as a pod's sandbox (pause) container, which Kubernetes runs through the
    // pod's runtime: a Linux process, as it must be (its image is the node's `sandbox_image`).
    let out = ctd.run(
        &["--annotation", "io.kubernetes.cri.container-type=sandbox"],
        "localhost:5000/native:1",
        "sandbox",
        &["pause"],
    );
    assert_eq!(text(&out.stdout), "pause\n", "{}", text(&out.stderr));
    assert!(!ctd.log().contains("panicked"), "{}", ctd.log());
}

#[test]
fn ctr_task_kill_stops_a_spinning_guest() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    // In the foreground, as an operator runs it: `ctr run` exits with the task's code.
    let mut run = Command::new("ctr")
        .arg("--address")
        .arg(ctd.dir.path().join("sock"))
        .args(["--namespace", &ctd.namespace])
        .args(["run", "--rm", "--runtime", "io.containerd.qyvol.v1", probe])
        .args(["spinner", "/app.wasm", "spin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr run");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text(&ctd.ctr(&["task", "ls"]).stdout)
        .lines()
        .any(|l| l.starts_with("spinner") && l.ends_with("RUNNING"))
    {
        assert!(Instant::now() < deadline, "the guest never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM until it ends: one sent before the shim listens is lost, as for any container's
    // first process without a handler yet. (Once it has exited, a kill is refused.)
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the guest");
        let _ = ctd.ctr(&["task", "kill", "spinner"]);
        std::thread::sleep(Duration::from_millis(200));
    };
    // 143: ended by SIGTERM through Qyvol's stop (a SIGKILL would be 137).
    assert_eq!(status.code(), Some(143));
}

#[test]
fn an_image_whose_module_is_not_wasm_fails_with_a_message_not_a_panic() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A module that is not WebAssembly, packed as Qyvol packs a module.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).expect("junk");
    let wasm = b"\0asm\x01\0\0\0garbage that is not a module";
    let qyv = b"version: 1\nname: junk\nentrypoint: app.wasm\nruntime: wasi\n";
    let bundle = junk.join("junk.qyvc");
    qyvol_store::bundle::write(
        &bundle,
        &BundleParts {
            name: "junk",
            qyv,
            wasm,
            os: "wasip1",
            precompiled: None,
        },
    )
    .expect("bundle");
    let archive = junk.join("junk.tar");
    qyvol_store::bundle::save_rootfs(
        &Bundle::open(&bundle).expect("open"),
        "localhost:5000/junk:1",
        "1",
        &archive,
    )
    .expect("archive");
    ctd.import(&archive, true);
    let out = ctd.run(&[], "localhost:5000/junk:1", "junk", &[]);
    // Qyvol's own failure (125) with its reason in the container's output.
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).starts_with("qyvol: ")
            && text(&out.stderr).contains("not a valid WebAssembly module"),
        "{}",
        text(&out.stderr)
    );
    assert!(!ctd.log().contains("panicked"), "{}", ctd.log());
}

/// `ctr task start` of a new container `id` running `image` with `args`, on an empty root (the
/// module can only come from the image's layers). The image is given to the container through
/// containerd's API: what a containerd that unpacks Wasm artifacts (>= 1.6.25 / 1.7.7) does at
/// `ctr run`, which this one cannot.
fn start_artifact(ctd: &Containerd, dir: &Path, id: &str, image: &str, args: &[&str]) -> Output {
    let root = dir.join(format!("{id}-root"));
    std::fs::create_dir(&root).expect("root");
    let root = root.display().to_string();
    let mut create = vec![
        "container",
        "create",
        "--rootfs",
        "--runtime",
        "io.containerd.qyvol.v1",
    ];
    create.extend_from_slice(&[&root, id, "/app.wasm"]);
    create.extend_from_slice(args);
    let out = ctd.ctr(&create);
    assert!(out.status.success(), "{}", text(&out.stderr));
    attach_image(ctd, id, image);
    ctd.ctr(&["task", "start", id])
}

fn attach_image(ctd: &Containerd, id: &str, image: &str) {
    use containerd_client::services::v1::containers_client::ContainersClient;
    use containerd_client::services::v1::{GetContainerRequest, UpdateContainerRequest};
    use containerd_client::tonic::Request;
    fn ns<T>(namespace: &str, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert(
            "containerd-namespace",
            namespace.parse().expect("namespace"),
        );
        r
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let channel = containerd_client::connect(ctd.dir.path().join("sock"))
            .await
            .expect("connect");
        let mut containers = ContainersClient::new(channel);
        let mut container = containers
            .get(ns(&ctd.namespace, GetContainerRequest { id: id.into() }))
            .await
            .expect("get")
            .into_inner()
            .container
            .expect("container");
        container.image = image.into();
        containers
            .update(ns(
                &ctd.namespace,
                UpdateContainerRequest {
                    container: Some(container),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["image".into()],
                    }),
                },
            ))
            .await
            .expect("update");
    });
}

#[test]
fn the_wasm_oci_artifact_runs_from_containerds_content_store() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Stored as `qyvol push` and `qyvol save` write it; this containerd cannot unpack it.
    ctd.import(
        &image(dir.path(), "probe-p1.wasm", "artifact", false),
        false,
    );
    let out = start_artifact(
        &ctd,
        dir.path(),
        "art",
        "localhost:5000/artifact:1",
        &["args", "from", "layers"],
    );
    assert_eq!(
        text(&out.stdout),
        // argv[0] is the name in the image's own manifest layer: both layers were read.
        "artifact\nargs\nfrom\nlayers\n",
        "{}\n{}",
        text(&out.stderr),
        ctd.log()
    );
    assert!(out.status.success());
}

#[test]
fn artifacts_without_a_module_or_with_repeated_layers_are_refused_to_containerd_with_the_reason() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = serde_json::json!({ "architecture": "wasm", "os": "wasip1" });
    let qyv = b"version: 1\nname: hollow\nentrypoint: app.wasm\nruntime: wasi\n".to_vec();
    let archive = oci_archive(
        dir.path(),
        "hollow",
        &config,
        &[("application/vnd.qyvol.manifest.v1+yaml", qyv)],
    );
    ctd.import(&archive, false);
    let out = start_artifact(&ctd, dir.path(), "hollow", "localhost:5000/hollow:1", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the Wasm image has no module layer (application/wasm)"),
        "{}",
        text(&out.stderr)
    );
    // One manifest blob listed again and again would be read again and again by the shim.
    let qyv = b"version: 1\nname: echo\nentrypoint: app.wasm\nruntime: wasi\n".to_vec();
    let wasm = std::fs::read(repo().join("cli/tests/guests/probe-p1.wasm")).expect("probe");
    let archive = oci_archive(
        dir.path(),
        "echoes",
        &config,
        &[
            ("application/wasm", wasm),
            ("application/vnd.qyvol.manifest.v1+yaml", qyv.clone()),
            ("application/vnd.qyvol.manifest.v1+yaml", qyv),
        ],
    );
    ctd.import(&archive, false);
    let out = start_artifact(&ctd, dir.path(), "echoes", "localhost:5000/echoes:1", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the image has more than one manifest layer"),
        "{}",
        text(&out.stderr)
    );
    assert!(!ctd.log().contains("panicked"), "{}", ctd.log());
}

#[test]
fn an_http_app_answers_on_its_port_and_sigterm_ends_it_cleanly() {
    serves_in_its_pod_until_sigterm(
        "examples/http-hello/http-hello.wasm",
        "¡Hola desde Qyvol! GET /hello/pod\n",
    );
}

#[test]
fn a_wasi_0_3_http_app_answers_on_its_port_and_sigterm_ends_it_cleanly() {
    serves_in_its_pod_until_sigterm(
        "examples/http-hello-p3/http-hello-p3.wasm",
        "¡Hola desde Qyvol, WASI 0.3! GET /hello/pod\n",
    );
}

/// Runs the handler `wasm` (a path in the repository) as a pod's container serving
/// `/hello/...`, checks `GET /hello/pod` answers `greeting`, then that SIGTERM ends it with 0.
fn serves_in_its_pod_until_sigterm(wasm: &str, greeting: &str) {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let qyv = "version: 1\nname: web\nentrypoint: app.wasm\nruntime: wasi-http\nhttp:\n  route: /hello/...\n";
    let archive = image_of(dir.path(), &repo().join(wasm), qyv, "web", true);
    ctd.import(&archive, true);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let listen = format!("qyvol.dev/listen=127.0.0.1:{port}");
    let mut run = Command::new("ctr")
        .arg("--address")
        .arg(ctd.dir.path().join("sock"))
        .args(["--namespace", &ctd.namespace])
        .args(["run", "--rm", "--net-host", "--annotation", &listen])
        .args([
            "--runtime",
            "io.containerd.qyvol.v1",
            "localhost:5000/web:1",
            "web",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr run");
    let get = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(a) = get("/hello/pod") {
            break a;
        }
        assert!(Instant::now() < deadline, "the app never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with(&format!("\r\n\r\n{greeting}")), "{answer}");
    assert!(
        get("/elsewhere")
            .expect("answer")
            .starts_with("HTTP/1.0 404")
    );
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not end the server");
        let _ = ctd.ctr(&["task", "kill", "web"]);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(0), "a drained server exits 0");
}

/// What each descriptor of process `pid` above the standard streams names (`socket:[123]`,
/// `pipe:[456]`, a path), leaving out `/dev/null` and anonymous inodes (one inode is shared by
/// every eventfd and epoll of the machine, so their names tell nothing apart).
fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .flatten()
        .filter(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) > Some(2))
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t != "/dev/null" && !t.starts_with("anon_inode:"))
        .collect()
}

/// HOSTILE row 50: the container's process holds none of the shim's descriptors (its log,
/// its sockets, a procfs handle were seen before): a fork that is never exec'd keeps them all.
#[test]
fn a_containers_process_inherits_no_descriptor_of_the_shim() {
    let ctd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe(&ctd, dir.path());
    let out = ctd.ctr(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.qyvol.v1",
        probe,
        "holder",
        "/app.wasm",
        "sleep",
        "600000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: u32 = loop {
        let tasks = text(&ctd.ctr(&["task", "ls"]).stdout);
        if let Some(pid) = tasks
            .lines()
            .find(|l| l.starts_with("holder") && l.ends_with("RUNNING"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the guest never ran: {tasks}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let shim: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("the container's parent");
    let comm = std::fs::read_to_string(format!("/proc/{shim}/comm")).unwrap_or_default();
    assert!(
        comm.starts_with("containerd-shim"),
        "the parent is the shim: {comm}"
    );
    let shims = open_files(shim);
    assert!(!shims.is_empty(), "the shim holds descriptors of its own");
    let shared: Vec<String> = open_files(pid)
        .into_iter()
        .filter(|f| shims.contains(f))
        .collect();
    assert_eq!(
        shared,
        Vec::<String>::new(),
        "descriptors the container shares with the shim"
    );
    let _ = ctd.ctr(&["task", "kill", "-s", "SIGKILL", "holder"]);
}
