//! The shim as a Kubernetes node reaches it: through containerd's CRI plugin, driven as the
//! kubelet drives it (`fixture::cri`), against containerd 1.6 (Debian 12) and 1.7 (Debian 13).
//! Each test runs once per release.

use std::time::{Duration, Instant};

use crate::fixture::cri::{GATEWAY, Node, Pod, Release, Spec};
use crate::fixture::{image, linux_image_at, native_image, pong_server, repo, text};

/// `test!(name)`: the body `name(Release)` as one test per containerd release.
macro_rules! per_release {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn containerd_1_6() {
                super::$name(super::Release::V1_6);
            }
            #[test]
            fn containerd_1_7() {
                super::$name(super::Release::V1_7);
            }
        }
    )*};
}

per_release!(
    a_pods_output_reaches_its_cri_log_and_exit_codes_its_status,
    only_a_connection_the_allow_net_annotation_names_leaves_the_pod,
    the_memory_limit_from_resources_bounds_the_guest_with_qyvols_word,
    a_read_only_volume_stays_read_only_and_a_writable_one_is_written,
    an_http_app_answers_on_the_pod_ip_logs_each_request_and_stops_within_its_grace_period,
    stop_container_ends_a_computing_guest_with_sigterm_not_sigkill,
    a_native_image_never_runs_even_when_its_pod_claims_to_be_the_sandbox,
    an_images_manifest_linking_into_a_volume_is_refused_and_nothing_of_the_volume_is_logged,
    a_volume_that_is_a_file_is_left_out_and_the_log_says_so,
);

/// The probe guest as the release's image form, pushed to the node's registry and pulled
/// through CRI; its reference.
fn probe(node: &Node, guest: &str, name: &str) -> String {
    let archive = image(
        node.dir.path(),
        guest,
        name,
        !node.release.unpacks_artifacts(),
    );
    let reference = node.push(&archive, name);
    node.pull(&reference)
        .unwrap_or_else(|e| panic!("PullImage {reference}: {e}"));
    reference
}

/// The (stream, line) pairs of a container's CRI log, for comparing.
fn lines(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(s, l)| ((*s).to_string(), (*l).to_string()))
        .collect()
}

/// Runs `spec` in `pod` to its end; its exit code, with its log for a failing assertion.
fn run_to_end(node: &Node, pod: &Pod, spec: &Spec) -> (i32, Vec<(String, String)>) {
    let id = node.launch(pod, spec);
    let status = node.wait_exit(&id);
    (status.exit_code, pod.log(&spec.name))
}

fn a_pods_output_reaches_its_cri_log_and_exit_codes_its_status(release: Release) {
    let node = Node::start(release);
    let image = probe(&node, "probe-p1.wasm", "probe");
    let pod = node.run_pod("printer", &[]);
    let id = node.launch(&pod, &Spec::new("args", &image, &["args", "uno", "dos"]));
    let status = node.wait_exit(&id);
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (0, "Completed"),
        "{:?}",
        pod.log("args")
    );
    let lines: Vec<(String, String)> = pod.log("args");
    assert_eq!(
        lines,
        [
            ("stdout", "probe"),
            ("stdout", "args"),
            ("stdout", "uno"),
            ("stdout", "dos")
        ]
        .map(|(s, l)| (s.to_string(), l.to_string())),
        "{}",
        text(&std::fs::read(pod.log_file("args")).unwrap_or_default())
    );
    let id = node.launch(&pod, &Spec::new("three", &image, &["exit", "3"]));
    let status = node.wait_exit(&id);
    assert_eq!((status.exit_code, status.reason.as_str()), (3, "Error"));
    node.remove_pod(&pod.id).expect("RemovePodSandbox");
    assert!(node.pods().is_empty());
    assert!(!node.log().contains("panicked"), "{}", node.log());
}

fn only_a_connection_the_allow_net_annotation_names_leaves_the_pod(release: Release) {
    let node = Node::start(release);
    let image = probe(&node, "probe-p2.wasm", "probe2");
    let listener = node.listen();
    let target = format!("{GATEWAY}:{}", listener.local_addr().expect("addr").port());

    // No annotation: the node is one hop away on the pod's network, and Qyvol says no.
    let pod = node.run_pod("closed", &[]);
    let (code, log) = run_to_end(
        &node,
        &pod,
        &Spec::new("c", &image, &["connect", &target, "no"]),
    );
    assert_eq!(
        log,
        lines(&[("stdout", "error: Permission denied (os error 2)")])
    );
    assert_eq!(code, 1);

    // Granted by the pod's author, through CRI's `pod_annotations`: the node's listener
    // answers the one connection it gets, then counts any after it.
    let server = pong_server(listener);
    let pod = node.run_pod("open", &[("qyvol.dev/allow-net", &target)]);
    let (code, log) = run_to_end(
        &node,
        &pod,
        &Spec::new("c", &image, &["connect", &target, "hello"]),
    );
    assert_eq!(
        (code, log),
        (0, lines(&[("stdout", "connected: pong to hello")]))
    );
    let (said, more) = server.join().expect("server");
    assert_eq!(
        (said.as_str(), more),
        ("hello", 0),
        "the refused connection reached the node"
    );
}

fn the_memory_limit_from_resources_bounds_the_guest_with_qyvols_word(release: Release) {
    let node = Node::start(release);
    let image = probe(&node, "probe-p1.wasm", "probe");
    let pod = node.run_pod("greedy", &[]);
    // `resources.limits.memory: 128Mi`, runtime included; the guest asks for 200 MiB.
    let spec = Spec {
        memory: Some(128 << 20),
        ..Spec::new("greedy", &image, &["alloc", "200"])
    };
    let (code, log) = run_to_end(&node, &pod, &spec);
    assert_eq!(code, 137, "{log:?}");
    assert!(
        log.iter()
            .any(|(s, l)| s == "stderr" && l.starts_with("qyvol: 🧠 The memory limit of ")),
        "ended without Qyvol's word: {log:?}"
    );
    // Within the limit, the same guest runs to its end.
    let spec = Spec {
        memory: Some(128 << 20),
        ..Spec::new("modest", &image, &["alloc", "8"])
    };
    let (code, log) = run_to_end(&node, &pod, &spec);
    assert_eq!(code, 0, "{log:?}");
}

fn a_read_only_volume_stays_read_only_and_a_writable_one_is_written(release: Release) {
    let node = Node::start(release);
    let image = probe(&node, "probe-p1.wasm", "probe");
    let data = node.dir.path().join("volume");
    std::fs::create_dir(&data).expect("volume");
    std::fs::write(data.join("note.txt"), "from the host").expect("note");
    let pod = node.run_pod("volumes", &[]);
    let with = |name: &str, readonly: bool, args: &[&str]| Spec {
        mounts: vec![(data.clone(), "/data", readonly)],
        ..Spec::new(name, &image, args)
    };

    let (code, log) = run_to_end(
        &node,
        &pod,
        &with("read", true, &["read", "/data/note.txt"]),
    );
    assert_eq!((code, log), (0, lines(&[("stdout", "from the host")])));
    let (code, log) = run_to_end(
        &node,
        &pod,
        &with("write-ro", true, &["write", "/data/new.txt", "x"]),
    );
    assert_eq!(code, 1, "{log:?}");
    assert!(
        !data.join("new.txt").exists(),
        "a read-only volume was written"
    );
    // The image's own files stay out of sight.
    let (code, log) = run_to_end(&node, &pod, &with("peek", true, &["read", "/app.wasm"]));
    assert_eq!(
        (code, log),
        (
            1,
            lines(&[("stdout", "error: No such file or directory (os error 44)")])
        )
    );

    let (code, log) = run_to_end(
        &node,
        &pod,
        &with("write-rw", false, &["write", "/data/new.txt", "x"]),
    );
    assert_eq!(code, 0, "{log:?}");
    assert_eq!(
        std::fs::read_to_string(data.join("new.txt")).expect("new"),
        "x"
    );
}

/// The app's answer to GET `path` on the pod's IP, once it answers (the kubelet's readiness
/// probe, repeated until it passes).
fn probe_until_ready(node: &Node, pod: &Pod, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match node.get(&pod.ip, 8080, path) {
            Ok(answer) => return answer,
            Err(e) => assert!(Instant::now() < deadline, "{} never answered: {e}", pod.ip),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn an_http_app_answers_on_the_pod_ip_logs_each_request_and_stops_within_its_grace_period(
    release: Release,
) {
    let node = Node::start(release);
    let image = node.http_hello();
    let pod = node.run_pod("web", &[]);
    let id = node.launch(&pod, &Spec::new("web", &image, &[]));

    assert_eq!(
        probe_until_ready(&node, &pod, "/hello/pod"),
        (200, "¡Hola desde Qyvol! GET /hello/pod\n".to_string())
    );
    let (status, _) = node.get(&pod.ip, 8080, "/elsewhere").expect("an answer");
    assert_eq!(status, 404);
    // One line a request, on stderr.
    let logged = |path: &'static str| {
        move |log: &[(String, String)]| {
            log.iter()
                .any(|(s, l)| s == "stderr" && l.contains(&format!("GET {path} ")))
        }
    };
    pod.wait_log("web", |log| {
        logged("/hello/pod")(log) && logged("/elsewhere")(log)
    });

    // The kubelet rotates a log by renaming it, then asks containerd to reopen it.
    let rotated = pod.log_file("web").with_extension("log.1");
    std::fs::rename(pod.log_file("web"), &rotated).expect("rotate");
    node.reopen_log(&id);
    let (status, _) = node.get(&pod.ip, 8080, "/hello/after").expect("an answer");
    assert_eq!(status, 200);
    let after = pod.wait_log("web", logged("/hello/after"));
    assert!(!logged("/hello/pod")(&after), "{after:?}");
    let old = std::fs::read_to_string(&rotated).expect("rotated log");
    assert!(!old.contains("/hello/after"), "{old}");

    // SIGTERM, then SIGKILL after 30 s: a draining server ends on the first, with 0.
    node.stop(&id, 30);
    let status = node.wait_exit(&id);
    assert_eq!((status.exit_code, status.reason.as_str()), (0, "Completed"));
    assert!(
        node.get(&pod.ip, 8080, "/hello/pod").is_err(),
        "still answering"
    );
}

fn stop_container_ends_a_computing_guest_with_sigterm_not_sigkill(release: Release) {
    let node = Node::start(release);
    let image = probe(&node, "probe-p1.wasm", "probe");
    let pod = node.run_pod("spinner", &[]);
    let id = node.launch(&pod, &Spec::new("spin", &image, &["spin"]));
    assert_eq!(
        node.status(&id).state,
        k8s_cri::v1::ContainerState::ContainerRunning as i32
    );
    node.stop(&id, 30);
    let status = node.wait_exit(&id);
    // 143 is SIGTERM's end, within the grace period; SIGKILL after it would be 137.
    assert_eq!(status.exit_code, 143, "{:?}", pod.log("spin"));
}

fn a_native_image_never_runs_even_when_its_pod_claims_to_be_the_sandbox(release: Release) {
    let node = Node::start(release);
    let image = node.push(&native_image(node.dir.path()), "native");
    node.pull(&image).expect("PullImage");
    // CRI passes only `qyvol.dev/*` of a pod's annotations: this one never reaches the shim.
    let pod = node.run_pod(
        "hostile",
        &[("io.kubernetes.cri.container-type", "sandbox")],
    );
    let (code, log) = run_to_end(&node, &pod, &Spec::new("elf", &image, &["pwned"]));
    assert_eq!(code, 125, "{log:?}");
    assert!(
        !log.iter().any(|(_, l)| l.contains("pwned")),
        "native code ran: {log:?}"
    );
    assert!(
        log.iter()
            .any(|(s, l)| s == "stderr" && l.starts_with("qyvol: `/app.wasm` is not WebAssembly")),
        "{log:?}"
    );
}

/// HOSTILE (CRI review): the image's `app.qyv` is a link to a file the pod's author mounted; a
/// manifest that does not parse is quoted in the error, so the file's first line would reach
/// the pod's log.
fn an_images_manifest_linking_into_a_volume_is_refused_and_nothing_of_the_volume_is_logged(
    release: Release,
) {
    let node = Node::start(release);
    let secrets = node.dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("secrets");
    std::fs::write(secrets.join("token"), "sekret-7f3a9c:\n").expect("token");
    let wasm = std::fs::read(repo().join("cli/tests/guests/probe-p1.wasm")).expect("probe");
    let archive = linux_image_at(
        node.dir.path(),
        "linked",
        &[("app.wasm".into(), wasm)],
        &[("app.qyv", "/secrets/token")],
        &["/app.wasm"],
    );
    let image = node.push(&archive, "linked");
    node.pull(&image).expect("PullImage");
    let pod = node.run_pod("linked", &[]);
    let spec = Spec {
        mounts: vec![(secrets, "/secrets", true)],
        ..Spec::new("linked", &image, &["args", "ran"])
    };
    let (code, log) = run_to_end(&node, &pod, &spec);
    assert_eq!(
        (code, log.clone()),
        (
            125,
            lines(&[(
                "stderr",
                "qyvol: `/app.qyv` is a symbolic link: the image's manifest must be a file of the image"
            )])
        )
    );
    assert!(!format!("{log:?}").contains("sekret"), "{log:?}");
}

/// A `subPath` volume (one file) cannot be given to a guest, which is given folders: the
/// guest does not see it, and the log says why rather than leave a missing file unexplained.
fn a_volume_that_is_a_file_is_left_out_and_the_log_says_so(release: Release) {
    let node = Node::start(release);
    let image = probe(&node, "probe-p1.wasm", "probe");
    let file = node.dir.path().join("settings.txt");
    std::fs::write(&file, "colour: blue").expect("settings");
    let pod = node.run_pod("subpath", &[]);
    let spec = Spec {
        mounts: vec![(file, "/settings.txt", true)],
        ..Spec::new("subpath", &image, &["read", "/settings.txt"])
    };
    let (code, log) = run_to_end(&node, &pod, &spec);
    assert_eq!(
        (code, log),
        (
            1,
            lines(&[
                (
                    "stderr",
                    "qyvol: the volume at /settings.txt is a file, not a folder, and is not given to the guest (WebAssembly guests are given folders: mount the folder that holds it)"
                ),
                ("stdout", "error: No such file or directory (os error 44)"),
            ])
        )
    );
}
