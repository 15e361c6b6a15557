//! `qyvol node` and its verbs, against the real node process: deploys of each kind, restart
//! policies, `kill -9` of the node, logs, concurrency, and the API's guards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use crate::fixture::{
    Node, Scratch, guest, handler, hello_http, probe, promtool_passes, qyvol_std, raw, repo_root,
    stderr, stdout, wait_until,
};

#[test]
fn an_http_app_answers_and_answers_again_after_kill_9_of_the_node_without_a_redeploy() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_http()]);
    assert_eq!(
        node.get("/hello/x"),
        (200, "¡Hola desde Qyvol! GET /hello/x\n".into())
    );
    let app = node.app("http-hello").expect("listed");
    assert_eq!(app["state"], "running");
    assert_eq!(app["kind"], "http");

    node.kill();
    assert!(raw_refused(node.http), "the app port is gone with the node");
    node.spawn();
    assert_eq!(
        node.get("/hello/again"),
        (200, "¡Hola desde Qyvol! GET /hello/again\n".into())
    );
    assert_eq!(
        node.app("http-hello").expect("still listed")["state"],
        "running"
    );
}

fn raw_refused(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).is_err()
}

#[test]
fn deleting_the_deployed_file_changes_nothing() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let copy = s.path("hello.wasm");
    std::fs::copy(
        repo_root().join("examples/http-hello/http-hello.wasm"),
        &copy,
    )
    .expect("copy");
    node.ok(&["deploy", "--name", "copied", copy.to_str().expect("utf-8")]);
    std::fs::remove_file(&copy).expect("delete the source");
    node.ok(&["restart", "copied"]);
    assert_eq!(
        node.get("/anything").0,
        200,
        "a bare component is served at /"
    );
}

#[test]
fn on_failure_3_restarts_a_crashing_command_three_times_then_leaves_it_exited() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&[
        "deploy",
        "--name",
        "crash",
        "--restart",
        "on-failure:3",
        &probe(),
        "--",
        "exit",
        "3",
    ]);
    wait_until("the crashing app to give up", || {
        node.app("crash").is_some_and(|a| a["state"] == "exited")
    });
    let app = node.app("crash").expect("listed");
    assert_eq!(app["restarts"], 3);
    assert_eq!(app["exit_code"], 3);
    let table = node.ok(&["ps", "-a"]);
    assert!(table.contains("exited (3)"), "{table}");
    // Not listed among the running ones.
    assert!(!node.ok(&["ps"]).contains("crash"));
}

#[test]
fn a_clean_exit_is_not_restarted_by_on_failure_but_is_by_always_until_stopped() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&[
        "deploy",
        "--name",
        "job",
        "--restart",
        "on-failure",
        &probe(),
        "--",
        "exit",
        "0",
    ]);
    node.ok(&[
        "deploy",
        "--name",
        "loop",
        "--restart",
        "always",
        &probe(),
        "--",
        "exit",
        "0",
    ]);
    wait_until("the job to end", || {
        node.app("job").is_some_and(|a| a["state"] == "exited")
    });
    wait_until("`always` to restart", || {
        node.app("loop")
            .is_some_and(|a| a["restarts"].as_u64() >= Some(2))
    });
    assert_eq!(node.app("job").expect("job")["restarts"], 0);
    node.ok(&["stop", "loop"]);
    let stopped = node.app("loop").expect("loop");
    assert_eq!(stopped["state"], "stopped");
    let restarts = stopped["restarts"].clone();
    // A witness on the same supervisor: restart delays double from the same first one, so by
    // the time it has restarted once more than `loop` had, a restart `loop` had pending when
    // it was stopped would have come due.
    node.ok(&[
        "deploy",
        "--name",
        "witness",
        "--restart",
        "always",
        &probe(),
        "--",
        "exit",
        "0",
    ]);
    let due = restarts.as_u64().expect("a count") + 1;
    wait_until(
        "the witness to restart as often as `loop` had, plus one",
        || {
            node.app("witness")
                .is_some_and(|a| a["restarts"].as_u64() >= Some(due))
        },
    );
    let after = node.app("loop").expect("loop");
    assert_eq!(after["restarts"], restarts, "stop cancels pending restarts");
    assert_eq!(after["state"], "stopped");
}

#[test]
fn stop_ends_a_busy_guest_and_rm_needs_force_while_it_runs() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", "--name", "busy", &probe(), "--", "spin"]);
    wait_until("the app to run", || {
        node.app("busy").is_some_and(|a| a["state"] == "running")
    });
    let refused = node.cli(&["rm", "busy"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("-f"), "{}", stderr(&refused));
    node.ok(&["stop", "busy"]);
    assert_eq!(node.app("busy").expect("busy")["state"], "stopped");
    node.ok(&["start", "busy"]);
    node.ok(&["rm", "-f", "busy"]);
    assert!(node.app("busy").is_none());
    let modules = std::fs::read_dir(s.path("home/node/modules"))
        .expect("modules")
        .count();
    assert_eq!(modules, 0, "the removed app's module is gone");
}

#[test]
fn logs_follow_streams_lines_written_after_it_started_and_ends_when_the_app_is_removed() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&[
        "deploy",
        "--name",
        "talk",
        &probe(),
        "--",
        "args",
        "said-it",
    ]);
    wait_until("the first run", || {
        node.app("talk").is_some_and(|a| a["state"] == "exited")
    });
    let mut follow = qyvol_std()
        .env("QYVOL_HOME", s.path("home"))
        .args(["logs", "-f", "talk"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().expect("a line").expect("text");
    assert_eq!([next(), next(), next()], ["probe-p1", "args", "said-it"]);
    // A second run, after `logs -f` printed what there was: its lines arrive on the stream.
    node.ok(&["restart", "talk"]);
    assert_eq!([next(), next(), next()], ["probe-p1", "args", "said-it"]);
    wait_until("the second run", || {
        node.app("talk").is_some_and(|a| a["state"] == "exited")
    });
    let stamped = node.ok(&["logs", "-t", "--tail", "1", "talk"]);
    let (time, text) = stamped.trim().split_once(' ').expect("time and text");
    assert!(time.ends_with('Z') && time.contains('T'), "{stamped}");
    assert_eq!(text, "said-it");

    // As `docker logs -f` ends with its container.
    node.ok(&["rm", "talk"]);
    wait_until("`logs -f` to end after the removal", || {
        follow.try_wait().expect("wait").is_some()
    });
    assert!(follow.wait().expect("status").success());
}

#[test]
fn a_guest_printing_megabytes_keeps_its_logs_under_the_cap() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &["--log-max", "64KiB"]);
    node.ok(&["deploy", "--name", "noisy", &probe(), "--", "flood", "16"]);
    wait_until("the flood to end", || {
        node.app("noisy").is_some_and(|a| a["state"] == "exited")
    });
    assert_eq!(node.app("noisy").expect("noisy")["exit_code"], 0);
    let on_disk: u64 = std::fs::read_dir(s.path("home/node/logs"))
        .expect("logs")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    assert!(
        on_disk <= 2 * 64 * 1024 + 17 * 1024,
        "{on_disk} bytes of logs for a 64 KiB cap"
    );
    assert!(
        on_disk >= 64 * 1024,
        "the latest output is kept ({on_disk} bytes)"
    );
}

/// The node's open descriptors and threads, from /proc.
fn descriptors_and_threads(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the node's descriptors")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a thread count");
    (fds, threads)
}

/// Each app used to hold its log and two pipes open, and two threads to read them: a node ran
/// out of descriptors at a few thousand apps.
#[test]
fn http_apps_that_printed_hold_no_descriptor_or_thread_and_their_lines_are_in_their_logs() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let deploy_and_say = |i: usize| {
        let name = format!("talk{i}");
        let manifest = handler(
            &s,
            &name,
            "http-probe.wasm",
            &format!("http:\n  route: /{name}/...\n"),
        );
        node.ok(&["deploy", &manifest]);
        let said = format!("hi-{i}");
        assert_eq!(node.get(&format!("/{name}/say?text={said}")), (200, said));
    };
    deploy_and_say(0);
    let before = descriptors_and_threads(node.pid());
    for i in 1..=20 {
        deploy_and_say(i);
    }
    let after = descriptors_and_threads(node.pid());
    assert!(
        after.0 < before.0 + 20 && after.1 < before.1 + 20,
        "20 more apps that printed: (descriptors, threads) went from {before:?} to {after:?}"
    );
    for i in [1, 20] {
        let out = node.cli(&["logs", &format!("talk{i}")]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            (stdout(&out), stderr(&out)),
            (format!("hi-{i} (stdout)\n"), format!("hi-{i} (stderr)\n"))
        );
    }
}

#[test]
fn a_guest_cannot_reach_the_nodes_app_port_unless_a_grant_names_it() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let target = node.http.to_string();
    // The component: wasip1 sockets cannot shut down a write half.
    let p2 = guest("probe-p2.wasm").display().to_string();
    node.ok(&[
        "deploy",
        "--name",
        "wide",
        "--allow-net",
        "0.0.0.0/0:*",
        &p2,
        "--",
        "connect",
        &target,
    ]);
    node.ok(&[
        "deploy",
        "--name",
        "named",
        "--allow-net",
        &target,
        &p2,
        "--",
        "connect",
        &target,
    ]);
    for name in ["wide", "named"] {
        wait_until("the probe to end", || {
            node.app(name).is_some_and(|a| a["state"] == "exited")
        });
    }
    assert_ne!(
        node.app("wide").expect("wide")["exit_code"],
        0,
        "a wildcard does not reach loopback"
    );
    assert_eq!(
        node.app("named").expect("named")["exit_code"],
        0,
        "a grant naming the address does: {}",
        node.ok(&["logs", "named"])
    );
}

#[test]
fn concurrent_deploys_and_a_racing_deploy_and_rm_leave_a_consistent_state() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let probe = probe();
    std::thread::scope(|scope| {
        for i in 0..100 {
            let (node, probe) = (&node, &probe);
            scope.spawn(move || {
                node.ok(&[
                    "deploy",
                    "--name",
                    &format!("app-{i}"),
                    probe,
                    "--",
                    "exit",
                    "0",
                ]);
            });
        }
        for _ in 0..10 {
            let (node, probe) = (&node, &probe);
            scope.spawn(move || node.cli(&["deploy", "--name", "contested", probe, "--", "spin"]));
            scope.spawn(move || node.cli(&["rm", "-f", "contested"]));
        }
    });
    let apps = node.ps();
    for i in 0..100 {
        assert!(
            apps.iter().any(|a| a["name"] == format!("app-{i}")),
            "app-{i} is missing"
        );
    }
    node.cli(&["rm", "-f", "contested"]);
    assert_eq!(node.ps().len(), 100);
    assert_eq!(
        std::fs::read_dir(s.path("home/node/modules"))
            .expect("modules")
            .count(),
        1,
        "one module, stored once by digest"
    );
}

#[test]
fn kill_9_during_deploys_leaves_only_whole_apps() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    for (round, delay) in [0u64, 5, 20, 60].into_iter().enumerate() {
        let name = format!("cut-{round}");
        let mut deploy = qyvol_std()
            .env("QYVOL_HOME", s.path("home"))
            .args(["deploy", "--name", &name, &hello_http()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("deploy");
        std::thread::sleep(Duration::from_millis(delay));
        node.kill();
        let acknowledged = deploy.wait().expect("deploy ends").success();
        node.spawn();
        let app = node.app(&name);
        if acknowledged {
            assert!(app.is_some(), "an acknowledged deploy ({name}) was lost");
        }
        if let Some(app) = app {
            assert_eq!(app["state"], "running", "{name} is whole: {app}");
            assert_eq!(node.get("/hello/x").0, 200);
            node.ok(&["rm", "-f", &name]);
        }
        let modules = std::fs::read_dir(s.path("home/node/modules"))
            .expect("modules")
            .count();
        assert_eq!(
            modules, 0,
            "no module is left without an app (round {round})"
        );
        let logs: Vec<_> = std::fs::read_dir(s.path("home/node/logs"))
            .expect("logs")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            logs.is_empty(),
            "no log is left without an app (round {round}): {logs:?}"
        );
    }
}

/// An app's log is opened again whenever it starts printing: a symlink planted in its place
/// is not followed.
#[test]
fn a_symlink_planted_as_an_apps_log_is_not_written_through() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let manifest = handler(&s, "talk", "http-probe.wasm", "http:\n  route: /talk/...\n");
    node.ok(&["deploy", &manifest]);
    assert_eq!(node.get("/talk/say?text=first"), (200, "first".into()));
    let log = s.path("home/node/logs/talk.log");
    let target = s.write("elsewhere", "untouched\n");
    std::fs::remove_file(&log).expect("remove the log");
    std::os::unix::fs::symlink(&target, &log).expect("plant a symlink");
    assert_eq!(node.get("/talk/say?text=second"), (200, "second".into()));
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "untouched\n"
    );
}

/// What a deploy cut short may leave (its record is not synced until the app starts): a log and
/// secrets of an app the node does not have. The node removes them at start, as `rm` would.
#[test]
fn at_start_the_node_removes_logs_and_secrets_of_apps_it_does_not_have() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    let manifest = handler(&s, "talk", "http-probe.wasm", "http:\n  route: /talk/...\n");
    node.ok(&["deploy", &manifest]);
    assert_eq!(node.get("/talk/say?text=kept"), (200, "kept".into()));
    let ghosts = ["logs/ghost.log", "logs/ghost.log.1", "secrets/ghost.json"];
    std::fs::create_dir_all(s.path("home/node/secrets")).expect("secrets folder");
    for g in ghosts {
        std::fs::write(s.path(&format!("home/node/{g}")), "left behind").expect("plant");
    }
    node.kill();
    node.spawn();
    for g in ghosts {
        assert!(!s.path(&format!("home/node/{g}")).exists(), "{g} was kept");
    }
    assert_eq!(stdout(&node.cli(&["logs", "talk"])), "kept (stdout)\n");
}

#[test]
fn the_tcp_api_wants_the_token_the_hosts_it_knows_and_json_from_its_own_origin() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let api = node.api.expect("api");
    let token = std::fs::read_to_string(s.path("home/node/token")).expect("token");
    let call = |method: &str, path: &str, headers: &str| {
        raw(
            api,
            &format!(
                "{method} {path} HTTP/1.1\r\n{headers}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            ),
        )
    };
    let auth = format!("Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n");
    assert_eq!(call("GET", "/healthz", "Host: 127.0.0.1\r\n").0, 200);
    assert_eq!(call("GET", "/api/v1/apps", "Host: 127.0.0.1\r\n").0, 401);
    assert_eq!(call("GET", "/metrics", "Host: 127.0.0.1\r\n").0, 401);
    let wrong = format!(
        "Host: 127.0.0.1\r\nAuthorization: Bearer {}x\r\n",
        &token[..63]
    );
    assert_eq!(call("GET", "/api/v1/apps", &wrong).0, 401);
    assert_eq!(call("GET", "/api/v1/apps", &auth).0, 200);
    // DNS rebinding: a page of evil.example resolved to 127.0.0.1.
    let rebound = format!("Host: evil.example\r\nAuthorization: Bearer {token}\r\n");
    assert_eq!(call("GET", "/api/v1/apps", &rebound).0, 403);
    // Cross-site and non-JSON state changes.
    let evil = format!("{auth}Origin: http://evil.example\r\nContent-Type: application/json\r\n");
    assert_eq!(call("POST", "/api/v1/node/stop", &evil).0, 403);
    let fetch = format!("{auth}Sec-Fetch-Site: cross-site\r\nContent-Type: application/json\r\n");
    assert_eq!(call("POST", "/api/v1/node/stop", &fetch).0, 403);
    let form = format!("{auth}Content-Type: text/plain\r\n");
    assert_eq!(call("POST", "/api/v1/node/stop", &form).0, 415);
    assert_eq!(
        call("GET", "/healthz", "Host: 127.0.0.1\r\n").0,
        200,
        "still running"
    );

    // The CLI against it: without the token it is told how to pass one; with it, it works.
    let url = format!("http://{api}");
    let refused = node.cli(&["ps", "--node", &url]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("--token"), "{}", stderr(&refused));
    node.ok(&[
        "deploy",
        "--node",
        &url,
        "--token",
        token.trim(),
        &hello_http(),
    ]);
    assert_eq!(node.get("/hello/tcp").0, 200);
}

#[test]
fn metrics_pass_promtool_and_count_requests_restarts_and_exits() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_http()]);
    node.ok(&[
        "deploy",
        "--name",
        "crash",
        "--restart",
        "on-failure:1",
        &probe(),
        "--",
        "exit",
        "2",
    ]);
    assert_eq!(node.get("/hello/m").0, 200);
    wait_until("the crash", || {
        node.app("crash").is_some_and(|a| a["state"] == "exited")
    });
    let text = node.metrics();
    for line in [
        "qyvol_requests_total{app=\"http-hello\",status=\"200\"} 1",
        "qyvol_http_instances_total{app=\"http-hello\"} 1",
        "qyvol_restarts_total{app=\"crash\"} 1",
        "qyvol_exits_total{app=\"crash\",cause=\"exited\"} 2",
        "qyvol_instance_starts_total{app=\"crash\"} 2",
        "qyvol_apps{state=\"running\"} 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    promtool_passes(&text);
}

#[test]
fn with_no_node_the_verbs_say_how_to_start_one_in_spanish_and_english() {
    let s = Scratch::new();
    let es = qyvol_std()
        .env("QYVOL_HOME", s.path("home"))
        .args(["ps"])
        .output()
        .expect("ps");
    assert_eq!(es.status.code(), Some(69));
    assert!(
        stderr(&es).contains("No hay ningún nodo"),
        "{}",
        stderr(&es)
    );
    assert!(stderr(&es).contains("qyvol node -d"), "{}", stderr(&es));
    let en = qyvol_std()
        .env("QYVOL_HOME", s.path("home"))
        .env("QYVOL_LANG", "en")
        .args(["deploy", "x.qyv"])
        .output()
        .expect("deploy");
    assert_eq!(en.status.code(), Some(69));
    assert!(stderr(&en).contains("No node"), "{}", stderr(&en));
}

#[test]
fn a_bundles_own_mount_is_not_granted_by_a_deploy() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let author = Scratch::new();
    author.guest("probe-p1.wasm");
    let manifest = author.write(
        "app.qyv",
        "name: grabby\nentrypoint: probe-p1.wasm\nruntime: wasi\nmounts:\n  - { host: ., guest: /data, readonly: false }\n",
    );
    let bundle = s.path("grabby.qyvc");
    let built = qyvol_std()
        .env("QYVOL_HOME", s.path("author-home"))
        .args(["build", "-q"])
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle)
        .output()
        .expect("build");
    assert!(built.status.success(), "{}", stderr(&built));
    let bundle = bundle.display().to_string();
    node.ok(&["deploy", &bundle, "--", "write", "/data/owned", "x"]);
    wait_until("the bundle to run", || {
        node.app("grabby").is_some_and(|a| a["state"] == "exited")
    });
    assert!(
        !author.path("owned").exists(),
        "the bundle's manifest granted itself a host folder"
    );
    assert_ne!(node.app("grabby").expect("grabby")["exit_code"], 0);
}

#[test]
fn events_stream_an_apps_life_as_it_happens() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let mut events = qyvol_std()
        .env("QYVOL_HOME", s.path("home"))
        .args(["events", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("events");
    let mut lines = BufReader::new(events.stdout.take().expect("stdout")).lines();
    node.ok(&[
        "deploy",
        "--name",
        "brief",
        "--restart",
        "on-failure:1",
        &probe(),
        "--",
        "exit",
        "4",
    ]);
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let line = lines.next().expect("an event").expect("text");
        let e: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(e["app"], "brief");
        seen.push(format!(
            "{} {}",
            e["action"].as_str().expect("action"),
            e["detail"].as_str().unwrap_or("")
        ));
    }
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(seen[0], format!("deploy {}", probe()));
    assert_eq!(
        seen[1..]
            .iter()
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["start", "exit", "restart", "start", "exit"]
    );
    assert_eq!(seen[2], "exit exited 4");
}

#[test]
fn the_api_refuses_huge_bodies_and_heads_and_stays_up() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let api = node.api.expect("api");
    let token = std::fs::read_to_string(s.path("home/node/token")).expect("token");
    let body = format!("{{\"source\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let (status, _) = raw(
        api,
        &format!(
            "POST /api/v1/apps HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            token.trim(),
            body.len()
        ),
    );
    assert_eq!(status, 413, "a 2 MiB deploy request");
    let (status, _) = raw(
        api,
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(2 * 1024 * 1024)
        ),
    );
    assert_eq!(status, 431, "a 2 MiB header");
    assert_eq!(
        raw(api, "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"),
        (200, "ok\n".into())
    );
}

#[test]
fn deploy_takes_runs_policy_and_compile_flags_and_the_node_enforces_them() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let app = hello_http();
    let sandboxed = node.cli(&[
        "deploy",
        "--environment",
        "sandbox",
        "--allow-net",
        "127.0.0.1:80",
        &app,
    ]);
    assert_eq!(sandboxed.status.code(), Some(1), "{}", stderr(&sandboxed));
    assert!(
        stderr(&sandboxed).contains("environment `sandbox` does not allow the network grant"),
        "{}",
        stderr(&sandboxed)
    );
    let capped = node.cli(&["deploy", "--max-module-size", "1KiB", &app]);
    assert_eq!(capped.status.code(), Some(1), "{}", stderr(&capped));
    assert!(
        stderr(&capped).contains("over the 1024-byte module size cap"),
        "{}",
        stderr(&capped)
    );
    assert!(
        node.ps().is_empty(),
        "a refused deploy left an app: {:?}",
        node.ps()
    );
    node.ok(&[
        "deploy",
        "--no-precompiled",
        "--compile-timeout",
        "1m",
        &app,
    ]);
    assert_eq!(node.get("/hello/flags").0, 200);
}

#[test]
fn a_deploy_that_cannot_start_leaves_nothing_behind() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_http()]);
    // Another app on the same route: refused, and not listed afterwards.
    let clash = node.cli(&["deploy", "--name", "clash", &hello_http()]);
    assert_eq!(clash.status.code(), Some(1));
    assert!(stderr(&clash).contains("route"), "{}", stderr(&clash));
    assert!(node.app("clash").is_none());
    // A name already taken is refused the same way, and the first app is untouched.
    let again = node.cli(&["deploy", &hello_http()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(node.get("/hello/still").0, 200);
    assert_eq!(node.ps().len(), 1);
}

#[test]
fn a_damaged_state_file_stops_the_node_with_a_clear_error_and_keeps_the_modules() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_http()]);
    node.kill();
    let state = s.path("home/node/state.redb");
    for (what, len) in [("cut short", 50_000), ("emptied", 0)] {
        let file = std::fs::File::options()
            .write(true)
            .open(&state)
            .expect("state");
        file.set_len(len).expect("truncate");
        let out = qyvol_std()
            .env("QYVOL_HOME", s.path("home"))
            .env("QYVOL_LANG", "en")
            .args(["node", "--http", "127.0.0.1:0"])
            .output()
            .expect("node");
        assert_eq!(out.status.code(), Some(125), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is damaged"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("move it away"),
            "{what}: {}",
            stderr(&out)
        );
        let modules = std::fs::read_dir(s.path("home/node/modules"))
            .expect("modules")
            .count();
        assert_eq!(modules, 1, "{what}: the deployed module is kept");
    }
}

#[test]
fn a_start_refused_for_a_taken_route_does_not_take_it_after_a_restart() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_http()]);
    node.ok(&["stop", "http-hello"]);
    node.ok(&["deploy", "--name", "newer", &hello_http()]);
    let refused = node.cli(&["start", "http-hello"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("route"), "{}", stderr(&refused));
    node.kill();
    node.spawn();
    let newer = node.app("newer").expect("newer");
    let older = node.app("http-hello").expect("http-hello");
    assert_eq!(newer["state"], "running", "{newer}");
    assert_eq!(older["desired"], "stopped", "{older}");
    assert_ne!(older["state"], "running", "{older}");
}

#[test]
fn the_node_reports_its_version_apps_by_state_and_requests() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", &hello_http()]);
    node.ok(&["deploy", "--name", "job", &probe(), "--", "exit", "0"]);
    wait_until("the job to end", || {
        node.app("job").is_some_and(|a| a["state"] == "exited")
    });
    assert_eq!(node.get("/hello/1").0, 200);
    assert_eq!(node.get("/hello/2").0, 200);
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(s.path("home/node/qyvol.sock"))
        .arg("http://localhost/api/v1/node")
        .output()
        .expect("curl");
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info["apps"],
        serde_json::json!({ "running": 1, "exited": 1 })
    );
    assert_eq!(info["requests"], 2);
    assert!(
        info["started"]
            .as_u64()
            .is_some_and(|t| t > 1_700_000_000_000),
        "{info}"
    );
}

/// Issue 12 item 9: a secret given as `-e K` (from the caller's environment) or in an
/// `--env-file` reaches the app without being on any command line, where other local users
/// read it (`/proc/PID/cmdline`).
#[test]
fn deploy_takes_variables_from_the_callers_environment_and_an_env_file_not_the_command_line() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let file = s.write(
        "app.env",
        "# the app's settings\nFROM_FILE=file value\nALSO_FROM_SHELL\n",
    );
    let out = qyvol_std()
        .env("QYVOL_HOME", &node.home)
        .env("QYVOL_LANG", "en")
        .env("API_KEY", "s3cr3t-from-the-shell")
        .env("ALSO_FROM_SHELL", "shell value")
        .args(["deploy", "--name", "vars", "-e", "API_KEY", "--env-file"])
        .arg(&file)
        .args([&probe(), "--", "env"])
        .output()
        .expect("deploy");
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("the app to print its environment", || {
        node.app("vars").is_some_and(|a| a["state"] == "exited")
    });
    let printed = node.ok(&["logs", "vars"]);
    for line in [
        "API_KEY=s3cr3t-from-the-shell",
        "FROM_FILE=file value",
        "ALSO_FROM_SHELL=shell value",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line}: {printed}");
    }

    // A name not set anywhere is an error that names it; nothing is deployed.
    let out = qyvol_std()
        .env("QYVOL_HOME", &node.home)
        .env("QYVOL_LANG", "en")
        .env_remove("NOT_SET_ANYWHERE")
        .args([
            "deploy",
            "--name",
            "unset",
            "-e",
            "NOT_SET_ANYWHERE",
            &probe(),
        ])
        .output()
        .expect("deploy");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`NOT_SET_ANYWHERE`"),
        "{}",
        stderr(&out)
    );
    let bad = s.write("bad.env", "OK=1\n=no name\n");
    let out = node.cli(&["deploy", "--env-file", &bad.display().to_string(), &probe()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert_eq!(node.ps().len(), 1, "only the first app is deployed");
}

/// Issue 12 item 9: an upload the dashboard was reading when the node was killed is swept when
/// the node starts again, instead of staying in `node/uploads/` forever.
#[test]
fn uploads_a_killed_node_left_behind_are_swept_at_start() {
    let s = Scratch::new();
    let mut node = Node::start(&s.path("home"), &[]);
    node.kill();
    let uploads = node.home.join("node/uploads");
    std::fs::create_dir_all(&uploads).expect("uploads");
    let left = uploads.join("upload-half.qyvc");
    std::fs::write(&left, vec![0u8; 4096]).expect("a half-read upload");
    node.spawn();
    assert!(!left.exists(), "the half-read upload is still there");
    assert_eq!(
        std::fs::read_dir(&uploads).expect("uploads").count(),
        0,
        "nothing is left in node/uploads/"
    );
}

/// HOSTILE row 43: a node started at the usual soft limit of 1,024 descriptors runs a guest
/// that opens one granted file 5,000 times and keeps every handle. The guest is told "too many
/// open files" at its own cap, and the node, its API and another app go on answering.
#[test]
fn a_guest_opening_one_file_thousands_of_times_hits_its_own_cap_and_the_node_answers() {
    let s = Scratch::new();
    s.write("data/one.txt", "x");
    let node = Node::start_limited(&s.path("home"), &[], Some(1024));
    let mount = format!("{}:/data:ro", s.path("data").display());
    node.ok(&[
        "deploy",
        "--name",
        "hog",
        "--mount",
        &mount,
        &probe(),
        "--",
        "hold",
        "/data/one.txt",
        "5000",
    ]);
    wait_until("the guest to say how many files it holds", || {
        node.ok(&["logs", "hog"]).contains("held ")
    });
    let said = node.ok(&["logs", "hog"]);
    let held = said
        .lines()
        .find(|l| l.starts_with("held "))
        .expect("held line");
    let cap = qyvol_runtime::GUEST_HANDLES;
    let (count, why) = held["held ".len()..]
        .split_once(": ")
        .expect("count: reason");
    let count: usize = count.parse().expect("a count");
    assert!(
        count < cap - 16 && count > cap - 64,
        "the guest stops some way short of its cap of {cap} handles (it keeps a few for its \
         streams, clocks and folders): {held}"
    );
    // EMFILE, in wasi-libc's words.
    assert_eq!(why, "No file descriptors available (os error 33)", "{held}");
    // It holds them still: the node answers its API and runs and answers another app.
    assert_eq!(node.app("hog").expect("hog")["state"], "running");
    node.ok(&[
        "deploy",
        "--name",
        "other",
        &probe(),
        "--",
        "args",
        "still-here",
    ]);
    wait_until("the other app to run", || {
        node.ok(&["logs", "other"]).contains("still-here")
    });
    node.ok(&["rm", "-f", "hog"]);
}

/// HOSTILE row 45: `--memory` bounds one instance, and `--memory-total` the app's instances
/// together: four requests hold 240 MiB of the 256, the fifth is answered 503 and so the other
/// four never see all five at their barrier.
#[test]
fn an_apps_concurrent_requests_together_stay_within_its_memory_total() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("sync")).expect("sync folder");
    let node = Node::start(&s.path("home"), &[]);
    let http_probe = guest("http-probe.wasm").display().to_string();
    let mount = format!("{}:/sync", s.path("sync").display());
    node.ok(&[
        "deploy",
        "--name",
        "hungry",
        "--mount",
        &mount,
        "--memory",
        "64MiB",
        "--memory-total",
        "256MiB",
        &http_probe,
    ]);
    let answers = five_at_a_barrier(&node, "/barrier?n=5&mib=60&ms=4000");
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [503, 504, 504, 504, 504], "{answers:?}");
    assert_eq!(
        answers[0].1,
        "Service Unavailable: the requests in progress use all the memory allowed, try again later\n"
    );
    assert_eq!(answers[1].1, "only 4 of 5 reached the barrier\n");
    let out = node.cli(&[
        "deploy",
        "--name",
        "hungry2",
        "--mount",
        &mount,
        "--memory",
        "64MiB",
        "--memory-total",
        "60MiB",
        &http_probe,
    ]);
    assert!(
        !out.status.success(),
        "a total below one instance's memory is refused"
    );
    assert!(
        stderr(&out).contains("`--memory-total 60MiB` is less than `--memory 64MiB`"),
        "{}",
        stderr(&out)
    );
}

/// Five requests of `path` to the app at once (a barrier that opens only when all five are
/// there, each waiting as the path says), their answers sorted.
fn five_at_a_barrier(node: &Node, path: &str) -> Vec<(u16, String)> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| raw(node.http, &request)))
            .collect();
        asks.into_iter()
            .map(|a| a.join().expect("a request"))
            .collect()
    });
    answers.sort();
    answers
}

/// HOSTILE row 44, the app port: one app's requests may hold at most half of the port's
/// connections (here 4 of `--max-connections 8`): the fifth of five is answered 503 at once,
/// so the other four never see all five at their barrier.
#[test]
fn one_apps_requests_hold_at_most_half_of_the_app_ports_connections() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("sync")).expect("sync folder");
    let node = Node::start(&s.path("home"), &["--max-connections", "8"]);
    let http_probe = guest("http-probe.wasm").display().to_string();
    let mount = format!("{}:/sync", s.path("sync").display());
    node.ok(&["deploy", "--name", "slow", "--mount", &mount, &http_probe]);
    let answers = five_at_a_barrier(&node, "/barrier?n=5&ms=3000");
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [503, 504, 504, 504, 504], "{answers:?}");
    assert_eq!(
        answers[0].1,
        "Service Unavailable: this app is answering all the requests it may at once, try again later\n"
    );
    assert_eq!(answers[1].1, "only 4 of 5 reached the barrier\n");

    for (flags, why) in [
        (
            ["--concurrency", "0"],
            "`--concurrency 0` would refuse every request",
        ),
        (
            ["--concurrency", "2"],
            "`--concurrency` bounds an HTTP app's requests",
        ),
    ] {
        let source = if flags[1] == "0" {
            http_probe.clone()
        } else {
            probe()
        };
        let out =
            node.cli(&[&["deploy", "--name", "bad"][..], &flags, &[source.as_str()]].concat());
        assert!(!out.status.success(), "{flags:?}");
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }
}

/// HOSTILE row 44, the API: 300 connections that never show the token take the TCP API's
/// slots as fast as they can; the owner's 20 calls over TCP are all answered.
#[test]
fn connections_without_the_token_cannot_crowd_the_owner_out_of_the_tcp_api() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let api = node.api.expect("api");
    let token = std::fs::read_to_string(s.path("home/node/token")).expect("token");
    // Each asks for /healthz (no token needed) and keeps its connection open.
    let held: Vec<TcpStream> = (0..300)
        .filter_map(|_| {
            let mut c = TcpStream::connect(api).ok()?;
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .ok()?;
            c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf);
            Some(c)
        })
        .collect();
    assert_eq!(held.len(), 300);
    let url = format!("http://{api}");
    for i in 0..20 {
        let out = node.cli(&["ps", "--node", &url, "--token", token.trim()]);
        assert!(out.status.success(), "call {i}: {}", stderr(&out));
    }
    drop(held);
}

/// HOSTILE row 46: the disk under the node's state fills up. The call that meets it fails and
/// says why; once space is back the next calls work, without a restart (redb refuses every
/// transaction after an I/O error until it is opened again). And a node started on a full
/// disk after `kill -9` comes up instead of panicking.
#[test]
fn a_full_disk_fails_the_call_that_met_it_and_the_node_recovers_when_space_is_back() {
    let s = Scratch::new();
    let Some(disk) = crate::fixture::SmallDisk::mount(&s.path("disk"), 32) else {
        return;
    };
    let mut node = Node::start(&s.path("disk/home"), &[]);
    let sleeper = |name: &str| {
        ["deploy", "--name", name, &probe(), "--", "sleep", "600000"].map(String::from)
    };
    let run = |node: &Node, args: &[String]| {
        node.cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert!(run(&node, &sleeper("first")).status.success());
    disk.fill("filler");
    // The database has room inside its file for a few records: deploys (of the module already
    // stored) go on until one needs the disk.
    let (refused, name) = (0..300)
        .map(|i| format!("more{i:03}"))
        .find_map(|name| {
            let out = run(&node, &sleeper(&name));
            (!out.status.success()).then_some((out, name))
        })
        .expect("a deploy meets the full disk");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("No space left on device"),
        "{}",
        stderr(&refused)
    );
    disk.free("filler");
    let after = run(&node, &sleeper("after"));
    assert!(after.status.success(), "{}", stderr(&after));
    let names: Vec<String> = node
        .ps()
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(names.contains(&"first".to_string()) && names.contains(&"after".to_string()));
    assert!(
        !names.contains(&name),
        "the refused deploy left nothing: {names:?}"
    );

    node.kill();
    disk.fill("filler");
    node.spawn();
    assert!(
        node.app("first").is_some(),
        "the restarted node lists its apps"
    );
}
