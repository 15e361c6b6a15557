//! Many apps as one: a compose file brought up on the node (`up -d`) or on its own node in the
//! foreground (`up`), calls between apps by name, updates without a dropped request,
//! rollback, health checks, the `--watch` dev loop, and `down`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::fixture::{
    Node, Scratch, Talking, free_port, guest, qyvol_std, raw, repo_root, stderr, wait_until,
};

fn example(rel: &str) -> String {
    repo_root()
        .join("examples/compose")
        .join(rel)
        .display()
        .to_string()
}

/// A compose file in `s` for the example's two apps, with `front_extra` added to front.
fn compose(s: &Scratch, name: &str, front_extra: &str) -> String {
    s.write(
        &format!("{name}.yaml"),
        format!(
            "version: 1\nname: {name}\napps:\n  api:\n    source: {}\n    health: /health\n    health_interval: 200ms\n  front:\n    source: {}\n    depends_on: [api]\n{front_extra}",
            example("api/api.qyv"),
            example("front/front.qyv"),
        ),
    )
    .display()
    .to_string()
}

fn post(node: &Node, path: &str) -> (u16, String) {
    raw(
        node.http,
        &format!("POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"),
    )
}

#[test]
fn up_d_starts_the_project_whose_front_calls_the_api_by_name_and_down_removes_it() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let file = example("qyvol-compose.yaml");
    node.ok(&["up", "-d", "-f", &file]);
    let apps = node.ps();
    let names: Vec<_> = apps
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or(""),
                a["project"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(names, [("shop-api", "shop"), ("shop-front", "shop")]);
    assert_eq!(node.app("shop-api").expect("api")["health"], "healthy");
    assert_eq!(
        node.get("/").1,
        "Hola desde el frente! The API says: 0 items (api v1)\n"
    );
    assert_eq!(post(&node, "/api/items").1, "added: 1 items (api v1)\n");
    assert_eq!(
        node.get("/").1,
        "Hola desde el frente! The API says: 1 items (api v1)\n"
    );
    // The API counts the front's two calls and the POST: calls are requests to it too.
    let metrics = node.metrics();
    assert!(
        metrics.contains("qyvol_requests_total{app=\"shop-api\",status=\"200\"} 3"),
        "{metrics}"
    );
    let ps = node.ok(&["ps"]);
    assert!(
        ps.lines().any(|l| l.starts_with("shop-api")
            && l.contains("healthy")
            && l.trim_end().ends_with("shop")),
        "{ps}"
    );
    node.ok(&["down", "-f", &file]);
    assert!(node.ps().is_empty(), "down leaves no app");
    assert_eq!(node.get("/").0, 404);
    // Its buckets stay (as volumes do) unless `down --volumes`: the count is still there.
    node.ok(&["up", "-d", "-f", &file]);
    assert_eq!(
        node.get("/").1,
        "Hola desde el frente! The API says: 1 items (api v1)\n"
    );
    node.ok(&["down", "--volumes", "-f", &file]);
    node.ok(&["up", "-d", "-f", &file]);
    assert_eq!(
        node.get("/").1,
        "Hola desde el frente! The API says: 0 items (api v1)\n"
    );
}

#[test]
fn an_app_reaches_another_by_name_only_if_it_lists_it() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let listed = compose(&s, "listed", "    calls: [api]\n");
    node.ok(&["up", "-d", "-f", &listed]);
    assert_eq!(node.get("/").0, 200);
    node.ok(&["down", "-f", &listed]);
    let unlisted = compose(&s, "unlisted", "");
    node.ok(&["up", "-d", "-f", &unlisted]);
    let (status, body) = node.get("/");
    assert_eq!(
        (status, body.as_str()),
        (
            502,
            "the API could not be called: ErrorCode::HttpRequestDenied\n"
        )
    );
}

#[test]
fn an_update_under_a_client_loop_drops_no_request_and_rollback_returns_to_the_old_version() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let api = example("api/api.qyv");
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "--update",
            "--name",
            "api",
            "--health",
            "/health",
            "--health-interval",
            "200ms",
        ];
        args.extend_from_slice(extra);
        args.push(&api);
        node.cli(&args)
    };
    assert!(deploy(&[]).status.success());
    let stop = AtomicBool::new(false);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        seen.push(node.get("/api/items"));
                    }
                    seen
                })
            })
            .collect();
        let updated = deploy(&["--config", "version=2"]);
        assert!(updated.status.success(), "{}", stderr(&updated));
        wait_until("the new version to answer", || {
            node.get("/api/items").1.contains("api v2")
        });
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    assert!(
        answers.len() > 20,
        "the clients kept asking during the update: {}",
        answers.len()
    );
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "requests failed during the update: {failed:?}"
    );
    assert!(
        answers.iter().any(|(_, b)| b.contains("api v1"))
            && answers.iter().any(|(_, b)| b.contains("api v2"))
    );

    // A version that fails its health check never takes the route.
    let broken = deploy(&["--config", "version=3", "--config", "broken=1"]);
    assert!(!broken.status.success());
    assert!(stderr(&broken).contains("the new version of `api` is not ready (`GET /health` answered 500); the old version keeps serving"), "{}", stderr(&broken));
    assert_eq!(node.get("/api/items").1, "0 items (api v2)\n");

    node.ok(&["rollback", "api"]);
    assert_eq!(node.get("/api/items").1, "0 items (api v1)\n");
    let again = node.cli(&["rollback", "api"]);
    assert!(
        stderr(&again).contains("has no earlier version to return to"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_failing_health_check_shows_the_app_unhealthy_with_the_reason() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&[
        "deploy",
        "--name",
        "sick",
        "--health",
        "/health",
        "--health-interval",
        "100ms",
        "--config",
        "broken=1",
        &example("api/api.qyv"),
    ]);
    wait_until("the app to be unhealthy", || {
        node.app("sick").is_some_and(|a| a["health"] == "unhealthy")
    });
    let app = node.app("sick").expect("sick");
    assert_eq!(app["health_error"], "`GET /health` answered 500");
    assert!(
        node.ok(&["logs", "sick"])
            .contains("unhealthy: `GET /health` answered 500")
    );
}

#[test]
fn up_in_the_foreground_serves_prefixes_each_apps_log_and_stops_everything_on_ctrl_c() {
    let s = Scratch::new();
    let http = free_port();
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", s.path("home"))
        .env("QYVOL_LANG", "en")
        .args([
            "up",
            "--http",
            &http.to_string(),
            "-f",
            &compose(&s, "fg", "    calls: [api]\n"),
        ]);
    let mut up = Talking::spawn(&mut cmd, Duration::from_secs(120));
    up.wait_for("Project fg is up");
    assert_eq!(
        raw(http, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").1,
        "Hola! The API says: 0 items (api v1)\n"
    );
    up.wait_for("front | Method::Get /");
    up.wait_for("api   | Method::Get /items");
    up.interrupt();
    assert!(up.child.wait().success(), "{}", up.text());
    assert!(
        std::net::TcpStream::connect(http).is_err(),
        "nothing serves after Ctrl-C"
    );
}

#[test]
fn watch_rebuilds_the_changed_app_and_keeps_the_last_good_version_when_its_build_breaks() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    s.write(
        "w/hello.wasm",
        std::fs::read(repo_root().join("examples/http-hello/http-hello.wasm")).expect("hello"),
    );
    s.write(
        "w/probe.wasm",
        std::fs::read(guest("http-probe.wasm")).expect("probe"),
    );
    s.write("w/which", "hello.wasm");
    s.write(
        "w/app.wasm",
        std::fs::read(s.path("w/hello.wasm")).expect("hello"),
    );
    s.write(
        "w/w.qyv",
        "name: w\nentrypoint: app.wasm\nruntime: wasi-http\nbuild:\n  command: cp \"$(cat which)\" app.wasm\n",
    );
    let file = s.write(
        "dev.yaml",
        "version: 1\nname: dev\napps:\n  w:\n    source: w/w.qyv\n",
    );
    let mut cmd = qyvol_std();
    cmd.env("QYVOL_HOME", s.path("home"))
        .env("QYVOL_LANG", "en")
        .args(["up", "-d", "--watch", "-f", &file.display().to_string()]);
    let up = Talking::spawn(&mut cmd, Duration::from_secs(120));
    up.wait_for("Deployed dev-w");
    assert!(node.get("/x").1.starts_with("¡Hola desde Qyvol!"));
    s.write("w/which", "probe.wasm");
    wait_until("the rebuilt version to answer", || {
        node.get("/x").1 == "probe /x\n"
    });
    s.write("w/which", "missing.wasm");
    up.wait_for("Building w failed; the last good version keeps serving");
    assert!(
        up.text().contains("cp: cannot stat 'missing.wasm'"),
        "{}",
        up.text()
    );
    assert_eq!(node.get("/x").1, "probe /x\n");
}

#[test]
fn a_compose_file_with_a_mistake_is_refused_at_its_line_and_column() {
    let s = Scratch::new();
    let home = s.path("home");
    for (text, says) in [
        (
            "version: 1\nname: p\napps:\n  a:\n    source: x.wasm\n    colls: [b]\n",
            "6:5: unknown field `colls`",
        ),
        (
            "version: 1\nname: p\napps:\n  a:\n    source: x.wasm\n    depends_on: [nope]\n",
            "`a` names `nope`, which is not an app of this file (its apps: a)",
        ),
        (
            "version: 1\nname: p\napps:\n  a:\n    source: x.wasm\n    depends_on: [b]\n  b:\n    source: y.wasm\n    depends_on: [a]\n",
            "`depends_on` goes round in a circle: a → b",
        ),
        ("version: 1\nname: P!\napps: {}\n", "the name contains 'P'"),
        (
            "version: 1\nname: my-shop\napps:\n  a:\n    source: x.wasm\n",
            "2:7: the project name `my-shop` has a `-`",
        ),
    ] {
        let file = s.write("bad.yaml", text);
        let out = qyvol_std()
            .env("QYVOL_HOME", &home)
            .env("QYVOL_LANG", "en")
            .args(["up", "-d", "-f"])
            .arg(&file)
            .output()
            .expect("up");
        assert_eq!(out.status.code(), Some(78), "{text}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{text}: {}", stderr(&out));
    }
}

#[test]
fn an_unhealthy_app_whose_policy_restarts_is_restarted() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&[
        "deploy",
        "--name",
        "flaky",
        "--restart",
        "always",
        "--health",
        "/health",
        "--health-interval",
        "100ms",
        "--config",
        "broken=1",
        &example("api/api.qyv"),
    ]);
    // Unhealthy, restarted (its checks start over), unhealthy again: two such lines.
    wait_until("a second unhealthy spell", || {
        node.ok(&["logs", "flaky"])
            .matches("unhealthy: `GET /health` answered 500")
            .count()
            >= 2
    });
    let app = node.app("flaky").expect("flaky");
    assert_eq!(app["state"], "running");
    assert!(
        app["restarts"].as_u64().is_some_and(|n| n >= 1),
        "ps counts the restart: {app}"
    );
}

#[test]
fn a_health_check_that_never_answers_fails_and_an_update_waiting_on_it_gives_up() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let probe = guest("http-probe.wasm").display().to_string();
    node.ok(&[
        "deploy",
        "--name",
        "slow",
        "--health",
        "/sleep?ms=600000",
        "--health-interval",
        "200ms",
        &probe,
    ]);
    wait_until("the hung app to be unhealthy", || {
        node.app("slow").is_some_and(|a| a["health"] == "unhealthy")
    });
    assert_eq!(
        node.app("slow").expect("slow")["health_error"],
        "`GET /sleep?ms=600000` took over 5 s"
    );
    node.ok(&["rm", "-f", "slow"]);
    node.ok(&["deploy", "--name", "web", &probe]);
    let update = node.cli(&[
        "deploy",
        "--update",
        "--name",
        "web",
        "--health",
        "/sleep?ms=600000",
        &probe,
    ]);
    assert!(!update.status.success());
    assert!(
        stderr(&update).contains(
            "(`GET /sleep?ms=600000` gave no answer within 5 s); the old version keeps serving"
        ),
        "{}",
        stderr(&update)
    );
    // The app's controls answer at once afterwards.
    node.ok(&["stop", "web"]);
}

#[test]
fn a_project_cannot_take_over_an_app_it_did_not_deploy_and_its_volumes_are_its_own() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["deploy", "--name", "own-api", &example("api/api.qyv")]);
    let file = s.write(
        "own.yaml",
        format!(
            "version: 1\nname: own\napps:\n  api:\n    source: {}\n    mounts: [\"data:/data\"]\n",
            example("api/api.qyv")
        ),
    );
    let took = node.cli(&["up", "-d", "-f", &file.display().to_string()]);
    assert!(!took.status.success());
    assert!(
        stderr(&took)
            .contains("`own-api` belongs to no project, and this update comes from project `own`"),
        "{}",
        stderr(&took)
    );
    node.ok(&["rm", "-f", "own-api"]);
    node.ok(&["volume", "create", "data"]);
    node.ok(&["up", "-d", "-f", &file.display().to_string()]);
    let volumes = node.ok(&["volume", "ls"]);
    assert!(
        volumes
            .lines()
            .any(|l| l.starts_with("own-data") && l.trim_end().ends_with("own-api")),
        "{volumes}"
    );
    node.ok(&["down", "--volumes", "-f", &file.display().to_string()]);
    let left = node.ok(&["volume", "ls"]);
    assert!(
        left.lines().any(|l| l.starts_with("data ")),
        "a volume the project did not make stays: {left}"
    );
    assert!(!left.contains("own-data"), "{left}");
}

#[test]
fn an_app_the_file_no_longer_lists_is_named_and_removed_on_request() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    node.ok(&["up", "-d", "-f", &compose(&s, "orph", "    calls: [api]\n")]);
    let api_only = s.write(
        "orph-api.yaml",
        format!(
            "version: 1\nname: orph\napps:\n  api:\n    source: {}\n",
            example("api/api.qyv")
        ),
    );
    let file = api_only.display().to_string();
    let again = node.cli(&["up", "-d", "-f", &file]);
    assert!(
        stderr(&again)
            .contains("orph-front belongs to project orph but the file no longer lists it"),
        "{}",
        stderr(&again)
    );
    assert!(node.app("orph-front").is_some(), "named, not removed");
    node.ok(&["up", "-d", "--remove-orphans", "-f", &file]);
    assert!(node.app("orph-front").is_none());
    assert!(node.app("orph-api").is_some());
}
