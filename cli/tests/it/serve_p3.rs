//! WASI 0.3 HTTP handlers (`wasi:http/handler@0.3.0`, the `wasi:http/service` world) under
//! `qyvol serve` and the node, with the project's own 0.3 guests: the README's example and
//! `cli/tests/guests/http-probe-p3`. They are served beside 0.2 handlers, a fresh instance per
//! request, under the same limits and network grants.

use crate::fixture::{
    Node, Scratch, Served, hand_made_bundle, handler, repo_root, upstream, wait_until,
};

fn hello_p3() -> String {
    repo_root()
        .join("examples/http-hello-p3/http-hello-p3.qyv")
        .display()
        .to_string()
}

#[test]
fn a_wasi_0_3_handler_answers_beside_a_0_2_one_and_streams_a_posted_body_back() {
    let scratch = Scratch::new();
    let probe = handler(
        &scratch,
        "probe3",
        "http-probe-p3.wasm",
        "http:\n  route: /p3/...\n",
    );
    let hello_p2 = repo_root().join("examples/http-hello/http-hello.qyv");
    let s = Served::start(&[&hello_p3(), &probe, hello_p2.to_str().expect("utf-8")]);
    let r = s.get("/hello-p3/x?y=1");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "¡Hola desde Qyvol, WASI 0.3! GET /hello-p3/x?y=1\n")
    );
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(s.get("/hello/x").body, "¡Hola desde Qyvol! GET /hello/x\n");
    // A body larger than one stream write, there and back through 0.3's streams.
    let body: String = (0..200_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let echoed = s.post("/p3/echo", body.as_bytes());
    assert_eq!(echoed.status, 200);
    assert!(echoed.body == body, "{} bytes came back", echoed.body.len());
    s.assert_log_ends("GET /hello-p3/x 200", " http-hello-p3");
}

#[test]
fn each_request_to_a_wasi_0_3_handler_gets_a_fresh_instance() {
    let scratch = Scratch::new();
    let probe = handler(&scratch, "probe3", "http-probe-p3.wasm", "");
    let s = Served::start(&[&probe]);
    for _ in 0..3 {
        assert_eq!(s.get("/count").body, "request 1 of this instance\n");
    }
}

#[test]
fn a_wasi_0_3_handler_that_fails_fails_its_request_only() {
    let scratch = Scratch::new();
    let probe = handler(
        &scratch,
        "probe3",
        "http-probe-p3.wasm",
        "limits: { memory: 32MiB, timeout: 700ms }\n",
    );
    let s = Served::start(&[&probe]);
    let trap = s.get("/trap");
    assert_eq!(trap.status, 500, "{trap:?}");
    assert!(s.wait_log("GET /trap 500").contains("trap"));
    let spin = s.get("/spin");
    assert_eq!(spin.status, 504, "a busy loop is stopped: {spin:?}");
    assert!(s.wait_log("GET /spin 504").contains("700ms"));
    let sleep = s.get("/sleep?ms=60000");
    assert_eq!(
        sleep.status, 504,
        "a wait in an async host call is stopped: {sleep:?}"
    );
    assert_eq!(s.get("/sleep?ms=1").body, "slept");
    let alloc = s.get("/alloc?mib=64");
    assert_eq!(alloc.status, 500, "{alloc:?}");
    assert!(s.wait_log("GET /alloc 500").contains("32MiB"));
    assert_eq!(s.get("/alloc?mib=4").body, "allocated");
    assert_eq!(s.get("/count").body, "request 1 of this instance\n");
}

#[test]
fn a_wasi_0_3_handler_reaches_only_granted_hosts() {
    let up = upstream();
    let scratch = Scratch::new();
    let denied = handler(&scratch, "denied", "http-probe-p3.wasm", "");
    let granted = handler(
        &scratch,
        "granted",
        "http-probe-p3.wasm",
        &format!(
            "environment: edge\nnetwork:\n  allow: [\"{}\"]\nhttp:\n  route: /granted/...\n",
            up.addr
        ),
    );
    let s = Served::start(&[&denied, &granted]);
    let r = s.get(&format!("/fetch?to={}", up.addr));
    assert_eq!(
        (r.status, r.body.as_str()),
        (502, "error: ErrorCode::HttpRequestDenied")
    );
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    let r = s.get(&format!("/granted/fetch?to={}", up.addr));
    assert_eq!((r.status, r.body.as_str()), (200, "200 upstream"));
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn the_node_serves_a_deployed_wasi_0_3_handler() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_p3()]);
    assert_eq!(
        node.get("/hello-p3/x"),
        (200, "¡Hola desde Qyvol, WASI 0.3! GET /hello-p3/x\n".into())
    );
    assert_eq!(node.app("http-hello-p3").expect("listed")["kind"], "http");
}

/// What `/count` answers for `n` requests in a row.
fn counts(s: &Served, path: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| s.get(path).body.trim().to_string())
        .collect()
}

fn nth(ns: &[u32]) -> Vec<String> {
    ns.iter()
        .map(|n| format!("request {n} of this instance"))
        .collect()
}

#[test]
fn the_operator_lets_a_wasi_0_3_handler_reuse_instances_and_a_bundle_may_only_ask_for_less() {
    let scratch = Scratch::new();
    let probe = handler(&scratch, "probe3", "http-probe-p3.wasm", "");
    let s = Served::start(&["--reuse", "3", &probe]);
    assert_eq!(counts(&s, "/count", 4), nth(&[1, 2, 3, 1]));

    // The operator's own manifest sets it for its app.
    let own = handler(&scratch, "own", "http-probe-p3.wasm", "http:\n  reuse: 2\n");
    let s = Served::start(&[&own]);
    assert_eq!(counts(&s, "/count", 3), nth(&[1, 2, 1]));

    // A bundle's manifest asking for more than the operator allows gets the operator's.
    let wasm = std::fs::read(crate::fixture::guest("http-probe-p3.wasm")).expect("wasm");
    let qyv = b"name: greedy\nentrypoint: x.wasm\nruntime: wasi-http\nhttp:\n  reuse: 50\n";
    let bundle = hand_made_bundle(&scratch.path("greedy.qyvc"), &wasm, qyv, &[], |_| {});
    let s = Served::start(&[bundle.to_str().expect("utf-8")]);
    assert_eq!(counts(&s, "/count", 2), nth(&[1, 1]));
    let s = Served::start(&["--reuse", "2", bundle.to_str().expect("utf-8")]);
    assert_eq!(counts(&s, "/count", 3), nth(&[1, 2, 1]));
}

#[test]
fn reuse_is_refused_for_a_handler_that_is_not_wasi_0_3() {
    let scratch = Scratch::new();
    let p2 = handler(&scratch, "p2", "http-probe.wasm", "http:\n  reuse: 2\n");
    let out = crate::fixture::qyvol()
        .env("QYVOL_LANG", "en")
        .args(["serve", "--listen", "127.0.0.1:0", &p2])
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        crate::fixture::stderr(&out).contains("only WASI 0.3 handlers take"),
        "{}",
        crate::fixture::stderr(&out)
    );
}

#[test]
fn a_wasi_0_3_instance_keeps_its_slot_until_its_tasks_end_so_requests_wait_rather_than_fail() {
    let scratch = Scratch::new();
    let probe = handler(&scratch, "probe3", "http-probe-p3.wasm", "");
    // One slot: the instance whose task lingers after its response keeps it until the time
    // limit ends that task; the next request waits for it instead of finding the pool full.
    let s = Served::start(&["--max-concurrency", "1", "--timeout", "2s", &probe]);
    assert_eq!(s.get("/linger").body, "lingering");
    let next = s.get("/count");
    assert_eq!(
        (next.status, next.body.as_str()),
        (200, "request 1 of this instance\n")
    );

    // Many clients on two slots: every request waits its turn, none fails.
    let s = std::sync::Arc::new(Served::start(&["--max-concurrency", "2", &probe]));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || (0..10).map(|_| s.get("/count").status).collect::<Vec<_>>())
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().expect("client"), vec![200; 10]);
    }
}

#[test]
fn a_wasi_0_3_handler_may_not_answer_with_an_interim_status_or_take_a_doubtful_host() {
    let scratch = Scratch::new();
    let probe = handler(&scratch, "probe3", "http-probe-p3.wasm", "");
    let s = Served::start(&[&probe]);
    for code in [101, 103, 199] {
        let r = s.get(&format!("/status?c={code}"));
        assert_eq!(r.status, 500, "{code}: {r:?}");
    }
    assert_eq!(s.get("/status?c=299").status, 299);
    let user_info = crate::fixture::send(
        s.addr,
        b"GET /count HTTP/1.1\r\nHost: user:pass@evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(user_info.status, 400, "{user_info:?}");
    let two_hosts = crate::fixture::send(
        s.addr,
        b"GET /count HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(two_hosts.status, 400, "{two_hosts:?}");
}

#[test]
fn the_node_reuses_a_wasi_0_3_apps_instances_as_its_operators_manifest_says_and_counts_them() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let reused = handler(
        &s,
        "reused",
        "http-probe-p3.wasm",
        "http:\n  route: /reused/...\n  reuse: 5\n",
    );
    let fresh = handler(
        &s,
        "fresh",
        "http-probe-p3.wasm",
        "http:\n  route: /fresh/...\n",
    );
    node.ok(&["deploy", &reused]);
    node.ok(&["deploy", &fresh]);
    for n in 1..=3 {
        let expected = format!("request {n} of this instance\n");
        assert_eq!(node.get("/reused/count"), (200, expected));
        assert_eq!(
            node.get("/fresh/count"),
            (200, "request 1 of this instance\n".into())
        );
    }
    wait_until("the requests counted", || {
        node.app("reused").is_some_and(|a| a["requests"] == 3)
            && node.app("fresh").is_some_and(|a| a["requests"] == 3)
    });
    assert_eq!(node.app("reused").expect("listed")["instances"], 1);
    assert_eq!(node.app("fresh").expect("listed")["instances"], 3);
}

#[test]
fn removing_an_app_ends_its_instances_still_running_after_their_response() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &["--max-concurrency", "1"]);
    // `native`: no time limit, so only the removal can end the task it leaves running.
    let lingering = handler(
        &s,
        "lingering",
        "http-probe-p3.wasm",
        "http:\n  route: /lingering/...\n",
    );
    let other = handler(
        &s,
        "other",
        "http-probe-p3.wasm",
        "http:\n  route: /other/...\n",
    );
    node.ok(&["deploy", &lingering]);
    node.ok(&["deploy", &other]);
    assert_eq!(node.get("/lingering/linger"), (200, "lingering".into()));
    // That instance holds the node's one slot while it lives; removing its app ends it.
    node.ok(&["rm", "-f", "lingering"]);
    assert_eq!(
        node.get("/other/count"),
        (200, "request 1 of this instance\n".into())
    );
}

#[test]
fn a_wasi_0_3_handler_built_into_a_bundle_is_served_from_its_precompiled_code() {
    let s = Scratch::new();
    let home = s.path("home");
    let bundle = s.path("hello-p3.qyvc");
    crate::fixture::build(&home, std::path::Path::new(&hello_p3()), &bundle);
    // The home that built it trusts its code as its own: served without compiling.
    let mut cmd = crate::fixture::qyvol_std();
    cmd.env("QYVOL_HOME", &home)
        .env("QYVOL_LOG", "qyvol_runtime=debug")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&bundle);
    let served = Served::spawn(cmd);
    let r = served.get("/hello-p3/b");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "¡Hola desde Qyvol, WASI 0.3! GET /hello-p3/b\n")
    );
    assert!(
        !served.log().contains(crate::fixture::COMPILING),
        "{}",
        served.log()
    );
    // The control: the same handler from its manifest, in a home that has nothing, compiles.
    let mut cmd = crate::fixture::qyvol_std();
    cmd.env("QYVOL_HOME", s.path("empty"))
        .env("QYVOL_LOG", "qyvol_runtime=debug")
        .args(["serve", "--listen", "127.0.0.1:0", &hello_p3()]);
    let fresh = Served::spawn(cmd);
    assert!(
        fresh.log().contains(crate::fixture::COMPILING),
        "{}",
        fresh.log()
    );
}
