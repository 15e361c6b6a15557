//! The shim driven with `ctr`, which sets a container's annotations and mounts directly:
//! images as Qyvol writes them, the guest's output and exit code, the grants (only the
//! container's mounts; no network), `ctr task kill`, and images the shim cannot run.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qyvol_store::bundle::{Bundle, BundleParts};

use crate::fixture::{
    Containerd, image, image_of, linux_image, native_image, oci_archive, pong_server, probe, repo,
    text,
};

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
    let server = pong_server(listener);
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
    assert_eq!(server.join().expect("server"), ("hello".to_string(), 0));
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
    // In the foreground, as an operator runs it: `ctr run` exits with the task's code. Not
    // `--rm`: its delete right after the exit can find the task still "running" on a loaded
    // machine and make ctr exit 1 instead (as `Containerd::run` explains); the fixture's drop
    // deletes the task.
    let mut run = Command::new("ctr")
        .arg("--address")
        .arg(ctd.dir.path().join("sock"))
        .args(["--namespace", &ctd.namespace])
        .args(["run", "--runtime", "io.containerd.qyvol.v1", probe])
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
        // Not `--rm`, as in `ctr_task_kill_stops_a_spinning_guest`.
        .args(["run", "--net-host", "--annotation", &listen])
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
