//! Apps with state on the node: the counter example counting exactly under concurrent
//! requests and through `kill -9` of the node, its secret shown nowhere, `qyvol kv`, quotas
//! in the app's log, key-value metrics, and named volumes.

use std::collections::BTreeSet;

use crate::fixture::{Node, Scratch, counter_manifest, guest, promtool_passes, stderr, wait_until};

const SECRET: &str = "tok-7f3a9c2e51-never-shown";
const ENV_VALUE: &str = "env-value-4b8d1e-never-shown";

/// The counter deployed with its secret from a file, a configured name and a variable.
fn deploy_counter(node: &Node, s: &Scratch) {
    node.deploy_counter(s, SECRET, ENV_VALUE, &[]);
}

fn admin(node: &Node) -> (u16, String) {
    crate::fixture::raw(
        node.http,
        &format!(
            "GET /admin HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {SECRET}\r\n\r\n"
        ),
    )
}

#[test]
fn the_counter_counts_exactly_under_concurrent_requests_and_through_kill_9_of_the_node() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    deploy_counter(&node, &s);
    // 8 clients, 25 requests each: every visitor number from 1 to 200 is handed out once.
    let seen: Vec<u64> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..25)
                        .map(|_| {
                            let (status, body) = node.get("/");
                            assert_eq!(status, 200, "{body}");
                            let n = body
                                .strip_prefix("Hola, Ana! You are visitor ")
                                .and_then(|r| r.strip_suffix(".\n"))
                                .unwrap_or_else(|| panic!("an unexpected greeting: {body:?}"));
                            n.parse().expect("a number")
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 200);
    assert_eq!(
        unique,
        (1..=200).collect::<BTreeSet<u64>>(),
        "each number once"
    );
    assert_eq!(admin(&node), (200, "visits: 200\n".into()));

    node.kill();
    node.spawn();
    wait_until("the counter to serve again", || node.get("/").0 == 200);
    // The request that found it serving counted visitor 201.
    assert_eq!(admin(&node), (200, "visits: 201\n".into()));
    assert_eq!(
        crate::fixture::raw(node.http, "GET /admin HTTP/1.0\r\nHost: localhost\r\n\r\n").0,
        401,
        "the secret still guards it after the restart"
    );
}

#[test]
fn the_secret_and_variable_values_are_in_no_listing_record_log_or_metric() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    deploy_counter(&node, &s);
    assert_eq!(node.get("/").0, 200);
    let shown = [
        node.ok(&["ps", "-a", "--json"]),
        node.ok(&["ps", "-a"]),
        node.ok(&["inspect", "counter"]),
        node.ok(&["logs", "counter"]),
        node.ok(&["kv", "ls", "counter"]),
        node.metrics(),
    ]
    .join("\n");
    for value in [SECRET, ENV_VALUE] {
        assert!(!shown.contains(value), "`{value}` shown in:\n{shown}");
    }
    // Names are shown: the operator can tell what the app was given.
    let inspect = node.ok(&["inspect", "counter"]);
    assert!(
        inspect.contains("admin_token") && inspect.contains("NOTE"),
        "{inspect}"
    );
    // On disk, the value is only in the secrets file, which only the node's user reads.
    let db = std::fs::read(s.path("home/node/state.redb")).expect("the node's database");
    assert!(!db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    use std::os::unix::fs::PermissionsExt;
    let file = s.path("home/node/secrets/counter.json");
    let mode = std::fs::metadata(&file)
        .expect("the secrets file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    // Removing the app forgets its secret.
    node.ok(&["rm", "-f", "counter"]);
    assert!(!file.exists());
}

#[test]
fn a_deploy_without_a_declared_secret_is_refused_naming_it() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let out = node.cli(&["deploy", &counter_manifest()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("`counter` needs secret `admin_token` (`--secret admin_token=FILE`"),
        "{}",
        stderr(&out)
    );
    assert!(node.ps().is_empty(), "nothing was deployed");
}

#[test]
fn the_operator_reads_and_changes_buckets_with_qyvol_kv() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    deploy_counter(&node, &s);
    for _ in 0..3 {
        assert_eq!(node.get("/").0, 200);
    }
    let ls = node.ok(&["kv", "ls", "counter"]);
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["counts", "1", "14B"]),
        "{ls}"
    );
    assert_eq!(node.ok(&["kv", "ls", "counter", "counts"]), "visits\n");
    // The count is eight bytes, little-endian: shown as hex.
    assert_eq!(
        node.ok(&["kv", "get", "counter", "counts", "visits"]),
        "0300000000000000\n"
    );
    node.ok(&[
        "kv",
        "put",
        "counter",
        "counts",
        "a/key with spaces",
        "hola",
    ]);
    assert_eq!(
        node.ok(&["kv", "get", "counter", "counts", "a/key with spaces"]),
        "hola\n"
    );
    let bin = s.write("bin", [0u8, 159, 146, 150, 255]);
    node.ok(&[
        "kv",
        "put",
        "counter",
        "counts",
        "bin",
        "--file",
        &bin.display().to_string(),
    ]);
    assert_eq!(
        node.ok(&["kv", "get", "counter", "counts", "bin"]),
        "009f9296ff\n"
    );
    // The operator's write counts for the app: it sees the new count.
    node.ok(&[
        "kv",
        "put",
        "counter",
        "counts",
        "visits",
        "--file",
        &s.write("n", 41u64.to_le_bytes()).display().to_string(),
    ]);
    assert_eq!(node.get("/").1, "Hola, Ana! You are visitor 42.\n");
    node.ok(&["kv", "rm", "counter", "counts", "a/key with spaces"]);
    let gone = node.cli(&["kv", "get", "counter", "counts", "a/key with spaces"]);
    assert_ne!(gone.status.code(), Some(0));
    assert!(
        stderr(&gone).contains("has no key `a/key with spaces`"),
        "{}",
        stderr(&gone)
    );
    let other = node.cli(&["kv", "ls", "counter", "sessions"]);
    assert!(
        stderr(&other).contains("`counter` has no bucket `sessions`; its buckets: counts"),
        "{}",
        stderr(&other)
    );
}

#[test]
fn a_quota_refusal_reaches_the_apps_log_and_the_metrics_pass_promtool() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    s.guest("kv-probe.wasm");
    let app = s.write(
        "filler.qyv",
        "name: filler\nentrypoint: kv-probe.wasm\nruntime: wasi\nkeyvalue: [b]\nlimits:\n  keyvalue:\n    max_keys: 5\n",
    );
    node.ok(&["deploy", &app.display().to_string(), "--", "fill", "b", "3"]);
    wait_until("the filler to end", || {
        node.app("filler").is_some_and(|a| a["state"] == "exited")
    });
    let logs = node.ok(&["logs", "filler"]);
    assert!(
        logs.contains("stored 5 then: Error::Other(\"bucket `b` is full"),
        "{logs}"
    );
    assert!(
        logs.contains("key-value write refused: bucket `b` is full"),
        "{logs}"
    );
    let text = node.metrics();
    for line in [
        "qyvol_kv_keys{app=\"filler\",bucket=\"b\"} 5",
        "qyvol_kv_bytes{app=\"filler\",bucket=\"b\"} 60",
        "qyvol_kv_operations_total{app=\"filler\",op=\"refused\"} 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    promtool_passes(&text);
}

#[test]
fn a_named_volume_outlives_its_app_and_cannot_be_removed_while_mounted() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let probe = guest("probe-p1.wasm").display().to_string();
    node.ok(&["volume", "create", "data"]);
    let again = node.cli(&["volume", "create", "data"]);
    assert!(stderr(&again).contains("a volume named `data` already exists"));
    node.ok(&[
        "deploy",
        "--name",
        "writer",
        "--mount",
        "data:/data",
        &probe,
        "--",
        "write",
        "/data/note.txt",
        "kept",
    ]);
    wait_until("the writer to end", || {
        node.app("writer").is_some_and(|a| a["state"] == "exited")
    });
    let ls = node.ok(&["volume", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["data", "4B", "writer"]),
        "{ls}"
    );
    let refused = node.cli(&["volume", "rm", "data"]);
    assert!(
        stderr(&refused).contains("volume `data` is in use by writer"),
        "{}",
        stderr(&refused)
    );
    node.ok(&["rm", "writer"]);
    // A new app finds what the removed one wrote, read-only.
    node.ok(&[
        "deploy",
        "--name",
        "reader",
        "--mount",
        "data:/data:ro",
        &probe,
        "--",
        "read",
        "/data/note.txt",
    ]);
    wait_until("the reader to end", || {
        node.app("reader").is_some_and(|a| a["state"] == "exited")
    });
    assert_eq!(node.ok(&["logs", "reader"]), "kept\n");
    node.ok(&["rm", "reader"]);
    node.ok(&["volume", "rm", "data"]);
    assert!(!s.path("home/node/volumes/data").exists());
    let gone = node.cli(&["volume", "inspect", "data"]);
    assert!(
        stderr(&gone).contains("no volume is named `data`"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn rm_deletes_an_apps_buckets_unless_asked_to_keep_them() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    deploy_counter(&node, &s);
    assert_eq!(node.get("/").1, "Hola, Ana! You are visitor 1.\n");
    node.ok(&["rm", "-f", "--keep-data", "counter"]);
    deploy_counter(&node, &s);
    assert_eq!(
        node.get("/").1,
        "Hola, Ana! You are visitor 2.\n",
        "kept for the same name"
    );
    node.ok(&["rm", "-f", "counter"]);
    assert!(!s.path("home/node/keyvalue/counter.redb").exists());
    // Another app deployed under the name starts with nothing of the removed one's.
    deploy_counter(&node, &s);
    assert_eq!(node.get("/").1, "Hola, Ana! You are visitor 1.\n");
}

#[test]
fn kv_put_takes_a_value_as_large_as_the_quota_allows() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    deploy_counter(&node, &s);
    let big = s.write("big", vec![0xabu8; 1024 * 1024]);
    node.ok(&[
        "kv",
        "put",
        "counter",
        "counts",
        "big",
        "--file",
        &big.display().to_string(),
    ]);
    let hex = node.ok(&["kv", "get", "counter", "counts", "big"]);
    assert_eq!(hex.trim().len(), 2 * 1024 * 1024);
    let over = s.write("over", vec![0u8; 1024 * 1024 + 1]);
    let refused = node.cli(&[
        "kv",
        "put",
        "counter",
        "counts",
        "over",
        "--file",
        &over.display().to_string(),
    ]);
    assert!(
        stderr(&refused).contains("is larger than 1MiB"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn an_app_cannot_be_given_the_nodes_own_folders() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let probe = guest("probe-p1.wasm").display().to_string();
    for host in ["home/node", "home/node/secrets", "home", "home/cache"] {
        std::fs::create_dir_all(s.path(host)).expect("folder");
        let mount = format!("{}:/n:ro", s.path(host).display());
        let out = node.cli(&[
            "deploy", "--name", "peek", "--mount", &mount, &probe, "--", "ls", "/n",
        ]);
        assert_ne!(out.status.code(), Some(0), "{host}");
        assert!(
            stderr(&out).contains("the node's own files"),
            "{host}: {}",
            stderr(&out)
        );
    }
    assert!(node.ps().is_empty());
}
