//! The web dashboard of a real `qyvol node`: its guards over plain HTTP, and its views in
//! Debian's chromium, driven by playwright-core through the scenarios in `cli/tests/browser/`
//! (`.ci/run` installs chromium and runs `npm ci` there).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::fixture::Registry;
use crate::fixture::{Node, exchange, probe, wait_until};
use crate::fixture::{Scratch, Squatter, qyvol_in, qyvol_std, repo_root, stderr, stdout};

fn browser_dir() -> PathBuf {
    repo_root().join("cli/tests/browser")
}

fn token(node: &Node) -> String {
    std::fs::read_to_string(node.home.join("node/token"))
        .expect("the node's token")
        .trim()
        .to_string()
}

/// Runs one scenario against `node`'s dashboard in chromium; fails with what it printed.
fn scenario(script: &str, node: &Node, env: &[(&str, String)]) {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/axe-core").is_dir(),
        "the browser tests need their npm packages and chromium: `npm ci --prefix cli/tests/browser` \
         and `apt-get install chromium` (.ci/run does both)"
    );
    let api = node.api.expect("a node with a TCP listener");
    let out = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("QYVOL_DASHBOARD", format!("http://{api}/"))
        .env("QYVOL_BIN", env!("CARGO_BIN_EXE_qyvol"))
        .env("QYVOL_HOME", &node.home)
        .env("QYVOL_APPS", format!("http://{}", node.http))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("Node.js runs the browser tests (`node` on PATH)");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The http-hello example as a bundle, as a user would upload it.
fn hello_bundle(s: &Scratch) -> String {
    let out = qyvol_in(&s.path("build-home"))
        .args(["build", "-q"])
        .arg(repo_root().join("examples/http-hello/http-hello.qyv"))
        .arg("-o")
        .arg(s.path("http-hello.qyvc"))
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    s.path("http-hello.qyvc").display().to_string()
}

#[test]
fn a_new_user_logs_in_deploys_an_upload_watches_it_and_stops_and_removes_it_in_chromium() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let shots = repo_root().join("docs/screenshots");
    std::fs::create_dir_all(&shots).expect("docs/screenshots");
    scenario(
        "walkthrough.mjs",
        &node,
        &[
            ("QYVOL_BUNDLE", hello_bundle(&s)),
            ("QYVOL_SCREENSHOTS", shots.display().to_string()),
        ],
    );
    // What the browser did is what the node did.
    assert!(node.app("hello-web").is_none(), "removed in the browser");
}

/// 101 apps: more than the apps table's page and than the API page asked for.
#[test]
fn a_node_of_101_apps_pages_its_apps_table_in_chromium_and_its_api_list_by_limit_and_link() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    for i in 0..=100 {
        node.ok(&["deploy", "--name", &format!("app-{i:03}"), &probe()]);
    }
    scenario("pages.mjs", &node, &[]);

    let auth = format!("Authorization: Bearer {}\r\n", token(&node));
    let page = |path: &str| {
        let (status, head, body) = call(&node, "GET", path, &auth, "");
        assert_eq!(status, 200, "{path}: {body}");
        let names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .expect("a JSON list")
            .iter()
            .map(|a| a["name"].as_str().expect("a name").to_string())
            .collect();
        let next = header(&head, "link").first().map(|l| l.to_string());
        (names, next)
    };
    let (first, next) = page("/api/v1/apps?all=true&limit=60");
    assert_eq!((first.len(), first[0].as_str()), (60, "app-000"));
    let next = next.expect("a Link to the next page");
    assert_eq!(
        next,
        "</api/v1/apps?limit=60&after=app-059&all=true>; rel=\"next\""
    );
    let path = next
        .trim_start_matches('<')
        .split_once('>')
        .expect("<url>")
        .0;
    let (rest, after_last) = page(path);
    assert_eq!(
        (rest.len(), rest[0].as_str(), rest[40].as_str()),
        (41, "app-060", "app-100")
    );
    assert_eq!(after_last, None, "the last page links to none");
    // Without a limit, all of them, as before.
    assert_eq!(page("/api/v1/apps?all=true").0.len(), 101);
    let (status, _, body) = call(&node, "GET", "/api/v1/apps?limit=0", &auth, "");
    assert_eq!(status, 400);
    assert!(body.contains("`limit` must be 1 to 1000"), "{body}");
}

/// HOSTILE.md row 10: ANSI/OSC escapes and `<script>` in guest output.
#[test]
fn guest_markup_and_escapes_and_upload_names_cannot_run_script_in_the_page() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&[
        "deploy",
        "--name",
        "shouty",
        &probe(),
        "--",
        "args",
        "<script>window.__pwned=1</script>",
        "<img src=x onerror=\"window.__pwned=2\">",
        "\u{1b}[31mred\u{1b}]0;pwned-title\u{7}",
    ]);
    wait_until("the guest to print and exit", || {
        node.app("shouty").is_some_and(|a| a["state"] == "exited")
    });
    scenario(
        "hostile.mjs",
        &node,
        &[
            ("QYVOL_HOSTILE_APP", "shouty".into()),
            ("QYVOL_BUNDLE", hello_bundle(&s)),
        ],
    );
    // The page's CSRF-less stop was refused: the deployed upload still runs.
    assert_eq!(
        node.app("named-evil").expect("deployed")["state"],
        "running"
    );
}

#[test]
fn the_dashboard_is_spanish_by_default_and_english_by_accept_language_or_toggle() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    scenario("i18n.mjs", &node, &[]);
}

#[test]
fn every_view_passes_axe_in_light_and_dark_fits_a_phone_and_works_by_keyboard() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&["deploy", "--name", "calm", &probe(), "--", "args", "calm"]);
    scenario("a11y.mjs", &node, &[("QYVOL_APP", "calm".into())]);
}

#[test]
fn an_image_is_pulled_with_progress_deployed_and_removed_from_the_browser() {
    let registry = Registry::start(None);
    let reference = registry.reference("hello:1");
    let s = Scratch::new();
    let pusher = s.path("pusher");
    for args in [
        vec![
            "build".to_string(),
            "-q".into(),
            "-t".into(),
            reference.clone(),
            repo_root().join("examples/hello.qyv").display().to_string(),
        ],
        vec!["push".into(), reference.clone()],
    ] {
        let out = qyvol_in(&pusher).args(&args).output().expect("qyvol");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let node = Node::with_api(&s.path("home"));
    scenario("images.mjs", &node, &[("QYVOL_IMAGE_REF", reference)]);
    assert_eq!(node.app("from-store").expect("deployed")["exit_code"], 0);
}

/// A request to the dashboard as written, with the node's allowed Host.
fn call(node: &Node, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let api = node.api.expect("api");
    exchange(
        api,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            api.port(),
            body.len()
        ),
    )
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// A one-time login link from `qyvol dashboard`, as its path (`/login/<code>?v=<verifier>`).
fn login_link(node: &Node) -> String {
    let out = node.ok(&["dashboard"]);
    let link = out.trim().to_string();
    let port = node.api.expect("api").port();
    link.strip_prefix(&format!("http://localhost:{port}"))
        .filter(|p| p.starts_with("/login/"))
        .unwrap_or_else(|| panic!("a link to this node's dashboard: {out}"))
        .to_string()
}

/// Logs in with a link from `qyvol dashboard`; returns where the session's pages are
/// (`/s/<session>`) and the page's CSRF token.
fn log_in(node: &Node) -> (String, String) {
    let (status, head, _) = call(node, "GET", &login_link(node), "", "");
    assert_eq!(status, 303, "{head}");
    let to = header(&head, "location")[0];
    let base = to
        .strip_suffix('/')
        .expect("the session's overview")
        .to_string();
    let (_, _, page) = call(node, "GET", to, "", "");
    let csrf = page
        .split("X-Csrf-Token&quot;:&quot;")
        .nth(1)
        .and_then(|r| r.split("&quot;").next())
        .expect("the page carries its CSRF token")
        .to_string();
    (base, csrf)
}

/// HOSTILE.md rows 40 and 41: the browser is never asked for the token (a page on a port
/// someone else holds could ask for it), and nothing it sends to other local ports — cookies
/// go to every port of a host — opens a session.
#[test]
fn a_one_time_link_opens_a_session_that_rides_in_the_path_not_a_cookie_and_pages_have_a_strict_csp()
{
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let (status, head, _) = call(&node, "GET", "/", "", "");
    assert_eq!(status, 303, "no session: to the login page");
    assert_eq!(header(&head, "location"), ["/login"]);
    let (status, _, body) = call(&node, "GET", "/login", "", "");
    assert_eq!(status, 200);
    assert!(
        !body.contains("<input"),
        "the login page asks for nothing: {body}"
    );
    assert!(body.contains("<code>qyvol dashboard</code>"), "{body}");
    // The token is not a way in any more, even posted as the old form did.
    let form = format!("token={}", token(&node));
    let (status, _, _) = call(
        &node,
        "POST",
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &form,
    );
    assert_eq!(status, 405);

    let link = login_link(&node);
    let (status, head, _) = call(&node, "GET", &link, "", "");
    assert_eq!(status, 303, "{head}");
    assert!(header(&head, "set-cookie").is_empty(), "no cookie: {head}");
    let to = header(&head, "location")[0].to_string();
    let id = to
        .strip_prefix("/s/")
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or_else(|| panic!("the session's overview: {to}"));
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "a 256-bit session: {id}"
    );
    assert!(!id.contains(&token(&node)), "the session is not the token");
    let (status, _, body) = call(&node, "GET", &link, "", "");
    assert_eq!(status, 401, "a link works once: {body}");
    assert!(body.contains("Ese enlace ya se usó o caducó"), "{body}");
    // The code alone (what crosses the wire to the node and back) opens nothing, and whoever
    // tries it uses it up.
    let other = login_link(&node);
    let code_only = other.split('?').next().expect("the code");
    assert_eq!(call(&node, "GET", code_only, "", "").0, 401);
    assert_eq!(call(&node, "GET", &other, "", "").0, 401, "used up");

    let (status, head, body) = call(&node, "GET", &to, "", "");
    assert_eq!(status, 200);
    assert!(body.contains("<h1>Resumen</h1>"), "{body}");
    assert!(
        body.contains(&format!("href=\"/s/{id}/apps\"")),
        "links stay in the session"
    );
    let csp = header(&head, "content-security-policy");
    assert_eq!(csp.len(), 1, "{head}");
    assert!(csp[0].contains("script-src 'self'"), "{}", csp[0]);
    assert!(!csp[0].contains("unsafe-inline"), "{}", csp[0]);
    assert!(csp[0].contains("frame-ancestors 'none'"), "{}", csp[0]);
    assert!(!body.contains("<script>"), "no inline script");
    assert!(!body.contains(" style="), "no inline style");
    assert_eq!(header(&head, "x-content-type-options"), ["nosniff"]);
    // Links to other origins (an app's port) carry no path of the session.
    assert_eq!(header(&head, "referrer-policy"), ["same-origin"]);

    // What another local server could have received from the browser opens nothing: the
    // session's id as a cookie (the way sessions used to ride) is not a session.
    for path in ["/", "/apps"] {
        let (status, head, _) = call(
            &node,
            "GET",
            path,
            &format!("Cookie: qyvol_session={id}\r\n"),
            "",
        );
        assert_eq!(status, 303, "{path}: {head}");
        assert_eq!(header(&head, "location"), ["/login"]);
    }
    let (status, _, _) = call(&node, "GET", "/s/not-a-session/apps", "", "");
    assert_eq!(status, 303);
    // The API still wants the token itself, not the dashboard's session.
    let (status, _, _) = call(&node, "GET", "/api/v1/apps", "", "");
    assert_eq!(status, 401);
    let (status, _, _) = call(&node, "GET", &format!("/s/{id}/api/v1/apps"), "", "");
    assert_ne!(status, 200, "the session is no way into the API");
}

#[test]
fn dashboard_actions_need_the_sessions_csrf_token_and_a_same_site_origin() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&["deploy", "--name", "busy", &probe(), "--", "spin"]);
    let (base, csrf) = log_in(&node);
    let stop = &format!("{base}/ui/apps/busy/stop");

    let (status, _, body) = call(&node, "POST", stop, "", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let wrong = format!("X-Csrf-Token: {}\r\n", "f".repeat(64));
    assert_eq!(call(&node, "POST", stop, &wrong, "").0, 403);
    let other_site = format!("X-Csrf-Token: {csrf}\r\nOrigin: http://evil.example\r\n");
    assert_eq!(call(&node, "POST", stop, &other_site, "").0, 403);
    // Another port of this host is another origin (an app's page, say).
    let other_port = format!("X-Csrf-Token: {csrf}\r\nOrigin: http://127.0.0.1:9\r\n");
    assert_eq!(call(&node, "POST", stop, &other_port, "").0, 403);
    let no_session = format!("X-Csrf-Token: {csrf}\r\n");
    assert_eq!(
        call(&node, "POST", "/ui/apps/busy/stop", &no_session, "").0,
        401
    );
    assert_eq!(node.app("busy").expect("busy")["state"], "running");

    let right = format!("X-Csrf-Token: {csrf}\r\n");
    let (status, head, _) = call(&node, "POST", stop, &right, "");
    assert_eq!(status, 204, "{head}");
    assert_eq!(node.app("busy").expect("busy")["state"], "stopped");

    // A foreign Host (DNS rebinding) is refused before anything else.
    let api = node.api.expect("api");
    let (status, _, _) = exchange(
        api,
        &format!(
            "GET /login HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
            api.port()
        ),
    );
    assert_eq!(status, 403);
    // The API's body limit holds for the dashboard's forms too.
    let big = "x".repeat(2 * 1024 * 1024);
    let form = format!("{right}Content-Type: application/x-www-form-urlencoded\r\n");
    let pull = format!("{base}/ui/images/pull");
    assert_eq!(call(&node, "POST", &pull, &form, &big).0, 413);
    // Logging out ends the session.
    assert_eq!(
        call(&node, "POST", &format!("{base}/logout"), &right, "").0,
        204
    );
    assert_eq!(
        call(&node, "GET", &format!("{base}/ui/apps"), "", "").0,
        401
    );
}

/// Third review: a server that cannot prove it holds the token cannot put words in the node's
/// mouth either, not even as the node's "bad Host" refusal.
#[test]
fn an_unproven_servers_refusal_is_not_shown_as_the_nodes_words() {
    use std::io::{Read, Write};
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = impostor.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in impostor.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body =
                r#"{"code":"bad-host","error":"FORGED: the node moved, use --node http://evil:1"}"#;
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let out = qyvol_std()
        .env("QYVOL_LANG", "en")
        .env("QYVOL_TOKEN", "f00d".repeat(16))
        .env("QYVOL_NODE", format!("http://{at}"))
        .args(["ps"])
        .output()
        .expect("qyvol ps");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(!stderr(&out).contains("FORGED"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--api-host"), "{}", stderr(&out));
}

/// What crossed a relay one way.
type Seen = Arc<Mutex<Vec<u8>>>;

/// A relay on a port of its own to `to`, as another local user on the port a node used to
/// have might run: it passes bytes both ways, keeps what crosses each way, and replaces
/// `rewrite.0` with `rewrite.1` (of the same length) in what the node answers.
fn relay(
    to: std::net::SocketAddr,
    rewrite: Option<(&'static [u8], &'static [u8])>,
) -> (std::net::SocketAddr, Seen, Seen) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = listener.local_addr().expect("addr");
    let (asked, answered) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let pipe = move |mut from: std::net::TcpStream,
                     mut into: std::net::TcpStream,
                     seen: Seen,
                     rewrite: Option<(&'static [u8], &'static [u8])>| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut chunk = buf[..n].to_vec();
                if let Some((from, to)) = rewrite {
                    while let Some(i) = chunk.windows(from.len()).position(|w| w == from) {
                        chunk[i..i + to.len()].copy_from_slice(to);
                    }
                }
                seen.lock().expect("seen").extend_from_slice(&chunk);
                if into.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = into.shutdown(std::net::Shutdown::Write);
        });
    };
    let (a, b) = (asked.clone(), answered.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(node) = std::net::TcpStream::connect(to) else {
                return;
            };
            let (c2, n2) = (
                client.try_clone().expect("clone"),
                node.try_clone().expect("clone"),
            );
            pipe(client, node, a.clone(), None);
            pipe(n2, c2, b.clone(), rewrite);
        }
    });
    (at, asked, answered)
}

fn text(seen: &Seen) -> String {
    String::from_utf8_lossy(&seen.lock().expect("seen")).into_owned()
}

/// HOSTILE.md row 40: a server that relays to the real node (say, on the port the node used to
/// have) passes the proof, so what crosses it must be worth nothing on its own: the CLI signs
/// each request for its connection's challenge instead of sending the token, and a captured
/// request cannot be replayed; the node signs its answers, so a relay cannot change them; a
/// login link opens a session only with a verifier that never crossed.
#[test]
fn a_relay_to_the_real_node_gets_no_token_no_session_and_cannot_replay_or_change_answers() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&["deploy", "--name", "kept", &probe(), "--", "args", "hi"]);
    let api = node.api.expect("api");
    let through = |at: std::net::SocketAddr, args: &[&str]| {
        qyvol_std()
            .env("QYVOL_LANG", "en")
            .env("QYVOL_TOKEN", token(&node))
            .env("QYVOL_NODE", format!("http://{at}"))
            .args(args)
            .output()
            .expect("qyvol")
    };
    let (at, asked, answered) = relay(api, None);
    let out = through(at, &["ps", "-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("kept"),
        "the relayed call worked: {}",
        stdout(&out)
    );
    let link = through(at, &["dashboard"]);
    assert!(link.status.success(), "{}", stderr(&link));
    let (asked, answered) = (text(&asked), text(&answered));
    assert!(asked.contains("Qyvol-Proof challenge="), "{asked}");
    assert!(
        !asked.contains(&token(&node)),
        "the token crossed the relay: {asked}"
    );

    // What the relay saw, sent again (or changed to another call), is refused.
    let signed = asked
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("authorization: qyvol-proof")
        })
        .expect("the signed request's authorization")
        .to_string();
    let replay = format!("{signed}\r\n");
    for path in ["/api/v1/apps?all=true", "/api/v1/apps?all=false"] {
        assert_eq!(call(&node, "GET", path, &replay, "").0, 401, "{path}");
    }
    let stop = format!("{replay}Content-Type: application/json\r\n");
    assert_eq!(call(&node, "POST", "/api/v1/node/stop", &stop, "{}").0, 401);

    // The login code in the node's answer, without the verifier only the CLI had, opens
    // nothing; the link the CLI printed does.
    let code = answered
        .split("/login/")
        .nth(1)
        .map(|r| r.chars().take(64).collect::<String>())
        .expect("the link in the node's answer");
    assert!(!answered.contains("?v="), "the verifier crossed the relay");
    let printed = stdout(&link).trim().to_string();
    assert!(printed.contains(&code), "{printed}");
    let path = &printed[printed.find("/login/").expect("a link")..];
    assert_eq!(call(&node, "GET", &format!("/login/{code}"), "", "").0, 401);
    assert_eq!(
        call(&node, "GET", path, "", "").0,
        401,
        "used up by the relay's try"
    );
    let fresh = login_link(&node);
    assert_eq!(call(&node, "GET", &fresh, "", "").0, 303);

    // A relay that changes an answer (here, where the link leads) is caught.
    let (at, _, _) = relay(api, Some((b"localhost", b"attack.er")));
    let out = through(at, &["dashboard"]);
    assert_eq!(out.status.code(), Some(77), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not signed by the node"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("attack.er"), "{}", stdout(&out));

    // So is one that changes a line of a streamed answer (the app's log).
    let logs = through(api, &["logs", "kept"]);
    assert_eq!(stdout(&logs), "probe-p1\nargs\nhi\n", "{}", stderr(&logs));
    let (at, _, _) = relay(api, Some((b"\"hi\"", b"\"ho\"")));
    let out = through(at, &["logs", "kept"]);
    assert_eq!(out.status.code(), Some(77), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("a line of its stream is not signed by the node"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("ho"), "{}", stdout(&out));
    assert!(node.app("kept").is_some(), "the node still runs");
}

/// The slow-body hold found in review: a request claiming a signature the connection was never
/// given a challenge for is refused from its head, without waiting for its body.
#[test]
fn a_signed_request_without_its_connections_challenge_is_refused_before_its_body() {
    use std::io::{Read, Write};
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let api = node.api.expect("api");
    let mut conn = std::net::TcpStream::connect(api).expect("connect");
    // Shorter than the node's wait for a signed body: only an answer from the head arrives.
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(
        format!(
            "POST /api/v1/apps HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAuthorization: Qyvol-Proof challenge={}, mac={}\r\nContent-Length: 1048576\r\n\r\n",
            api.port(),
            "a".repeat(64),
            "b".repeat(64)
        )
        .as_bytes(),
    )
    .expect("send the head");
    let mut head = [0u8; 12];
    conn.read_exact(&mut head)
        .expect("an answer before the body is sent");
    assert_eq!(&head, b"HTTP/1.1 401");
}

/// Starts `qyvol node` with `args` (English), and returns it with the dashboard URL it
/// printed, or its exit status and what it printed if it stopped first.
fn node_printing_url(home: &std::path::Path, args: &[&str]) -> Result<(Child, String), String> {
    let http = crate::fixture::free_port().to_string();
    let mut child = qyvol_std()
        .env("QYVOL_HOME", home)
        .env("QYVOL_LANG", "en")
        .args(["node", "--http", &http])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let mut said = String::new();
    for line in BufReader::new(child.stderr.take().expect("stderr")).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("🖥  Web dashboard: ") {
            return Ok((child, rest.split(' ').next().expect("url").to_string()));
        }
        said.push_str(&line);
        said.push('\n');
    }
    let status = child.wait().expect("the node's exit");
    Err(format!("{status}: {said}"))
}

/// The port of a printed `http://localhost:PORT/`.
fn localhost_port(url: &str) -> u16 {
    url.strip_prefix("http://localhost:")
        .and_then(|p| p.strip_suffix('/'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a localhost URL: {url}"))
}

/// HOSTILE.md row 40: browsers take `localhost` to `[::1]` as readily as to `127.0.0.1`, so the
/// node holds the printed port on both, and another user can take neither.
#[test]
fn the_printed_dashboard_url_leads_to_this_node_on_both_loopback_addresses_and_no_one_else_can_listen_there()
 {
    let s = Scratch::new();
    let (mut child, url) =
        node_printing_url(&s.path("home"), &["--api", "127.0.0.1:0"]).expect("the node starts");
    let port = localhost_port(&url);
    for ip in [
        std::net::IpAddr::from([127, 0, 0, 1]),
        std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ] {
        let (status, _, body) = exchange(
            std::net::SocketAddr::new(ip, port),
            &format!("GET /login HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{ip}");
        assert!(
            body.contains("<code>qyvol dashboard</code>"),
            "{ip}: {body}"
        );
    }
    let v6 = Squatter::listen(std::net::SocketAddr::from((
        std::net::Ipv6Addr::LOCALHOST,
        port,
    )));
    let v4 = Squatter::listen(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let _ = child.kill();
    let _ = child.wait();
    for (family, tried) in [("[::1]", v6), ("127.0.0.1", v4)] {
        let Err(why) = tried else {
            panic!("another user listens on {family}:{port} beside the node")
        };
        assert!(why.contains("Address already in use"), "{family}: {why}");
    }
}

/// HOSTILE.md row 40: another user who took the port on `[::1]` first would receive what a
/// browser sends to the printed `localhost` URL; the node says so and does not start.
#[test]
fn a_port_another_user_holds_on_the_other_loopback_address_keeps_the_node_from_starting() {
    let s = Scratch::new();
    let (port, squatter) = (0..20)
        .find_map(|_| {
            let port = crate::fixture::free_port().port();
            let at = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            Squatter::listen(at).ok().map(|sq| (port, sq))
        })
        .expect("another user listens on [::1]");
    let api = format!("127.0.0.1:{port}");
    let Err(said) = node_printing_url(&s.path("home"), &["--api", &api]) else {
        panic!("the node started beside another user's listener on [::1]:{port}")
    };
    drop(squatter);
    assert!(!said.starts_with("exit status: 0"), "{said}");
    assert!(said.contains(&format!("[::1]:{port}")), "{said}");
    assert!(said.contains("other loopback address"), "{said}");
    assert!(said.contains("--api"), "{said}");
    // Nothing is left listening on the port the node refused.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

/// HOSTILE.md row 40: the default port taken is an error, not a silent move to a port a
/// bookmark does not name.
#[test]
fn the_default_port_taken_stops_the_node_with_a_clear_error_instead_of_moving() {
    let s = Scratch::new();
    // Hold the default port, as another user's program might. If something else holds it
    // already, the test cannot say who does: it fails rather than pass on a guess.
    let _held = Squatter::listen(std::net::SocketAddr::from(([127, 0, 0, 1], 7373)))
        .expect("127.0.0.1:7373, the node's default port, is free for this test to take");
    let Err(said) = node_printing_url(&s.path("home"), &[]) else {
        panic!("the node started with its default port taken")
    };
    assert!(!said.starts_with("exit status: 0"), "{said}");
    assert!(said.contains("7373"), "{said}");
    assert!(said.contains("--api"), "{said}");
}

/// HOSTILE.md row 40: a client with the token sends it only to a server that first proves,
/// on the same connection, that it holds it — not to whoever listens at the address.
#[test]
fn the_cli_sends_its_token_only_to_a_server_that_proves_it_holds_it() {
    use std::io::{Read, Write};
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = impostor.local_addr().expect("addr");
    // Answers every request as a node would, with a made-up proof; keeps what it was sent.
    let heard = std::thread::spawn(move || {
        let mut heard = String::new();
        impostor.set_nonblocking(false).expect("blocking");
        while let Ok((mut conn, _)) = impostor.accept() {
            conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            let mut buf = [0u8; 65536];
            let n = conn.read(&mut buf).unwrap_or(0);
            if buf[..n].starts_with(b"DONE") {
                break;
            }
            heard.push_str(&String::from_utf8_lossy(&buf[..n]));
            let body = format!("{{\"proof\":\"{}\"}}", "ab".repeat(32));
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            let mut more = [0u8; 65536];
            let n = conn.read(&mut more).unwrap_or(0);
            heard.push_str(&String::from_utf8_lossy(&more[..n]));
        }
        heard
    });
    let secret = "f00d".repeat(16);
    let node = format!("http://{at}");
    for verb in [&["ps"][..], &["dashboard"], &["stop", "web"]] {
        let out = qyvol_std()
            .env("QYVOL_LANG", "en")
            .env("QYVOL_TOKEN", &secret)
            .env("QYVOL_NODE", &node)
            .args(verb)
            .output()
            .expect("qyvol");
        assert_eq!(out.status.code(), Some(77), "{verb:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("That server is not your node"), "{said}");
        assert!(said.contains("the token was not sent"), "{said}");
    }
    std::net::TcpStream::connect(at)
        .and_then(|mut c| c.write_all(b"DONE"))
        .expect("end the impostor");
    let heard = heard.join().expect("the impostor's thread");
    assert!(heard.contains("/api/v1/proof?nonce="), "{heard}");
    assert!(
        !heard.contains(&secret),
        "the token reached the impostor: {heard}"
    );
}

#[test]
fn an_app_on_the_node_never_sees_the_dashboards_cookies() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    s.guest("cgi-probe.wasm");
    let manifest = s.write(
        "cgi.qyv",
        "version: 1\nname: cgi\nentrypoint: cgi-probe.wasm\nruntime: wasi-http\nhttp:\n  route: /cgi/...\n",
    );
    node.ok(&["deploy", &manifest.display().to_string()]);
    let session = "qyvol_session=0123";
    // A browser sends the host's cookies to every port: the app's too.
    let (status, _, body) = exchange(
        node.http,
        &format!(
            "GET /cgi/env HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {session}; theirs=1; qyvol_lang=en\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{body}");
    let cookie: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("HTTP_COOKIE="))
        .collect();
    assert_eq!(cookie, ["HTTP_COOKIE=theirs=1"], "{body}");
}

/// Deploys a probe named `name` that prints `said` and exits, logs in, and opens its live log
/// in the dashboard, read up to that line (so the stream is open and following); returns the
/// session's base, its CSRF token and the stream.
fn following_log(
    node: &Node,
    name: &str,
    said: &str,
) -> (String, String, BufReader<std::net::TcpStream>) {
    node.ok(&["deploy", "--name", name, &probe(), "--", "args", said]);
    wait_until("the guest to print", || {
        node.app(name).is_some_and(|a| a["state"] == "exited")
    });
    let (base, csrf) = log_in(node);
    let api = node.api.expect("api");
    let mut stream = std::net::TcpStream::connect(api).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .expect("timeout");
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET {base}/ui/apps/{name}/logs HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            api.port()
        )
        .as_bytes(),
    )
    .expect("send");
    let mut reader = BufReader::new(stream);
    let mut seen = String::new();
    while !seen.contains(&format!(r#""text":"{said}""#)) {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .expect("the stream sends the app's line");
        assert!(n > 0, "the stream ended before the app's line: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    (base, csrf, reader)
}

#[test]
fn a_log_stream_ends_when_its_app_is_removed() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let (_, _, mut reader) = following_log(&node, "ghost", "first-life");
    node.ok(&["rm", "ghost"]);
    // Then it ends (a read timeout here would fail the test).
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest)
        .expect("the stream ended after the removal");
}

/// Issue 12 item 9: a live log stream ends with its session (here, at logout), so a page left
/// open, or whoever held its address, does not keep reading the app's output.
#[test]
fn a_log_stream_ends_when_its_session_is_logged_out() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let (base, csrf, mut reader) = following_log(&node, "chatty", "said-once");
    let logout = format!("{base}/logout");
    let csrf = format!("X-Csrf-Token: {csrf}\r\n");
    assert_eq!(call(&node, "POST", &logout, &csrf, "").0, 204);
    // The app is still deployed: only the session's end can end the stream (a read timeout
    // here would fail the test).
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest)
        .expect("the stream ended after the logout");
    assert!(node.app("chatty").is_some());
}

/// A multipart form of text fields, as a browser sends it.
fn multipart(fields: &[(&str, &str)]) -> (String, String) {
    let boundary = "qyvoltestboundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("Content-Type: multipart/form-data; boundary={boundary}\r\n"),
        body,
    )
}

#[test]
fn the_deploy_form_takes_only_images_of_the_store_and_short_fields() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let (base, csrf) = log_in(&node);
    let deploy = &format!("{base}/ui/deploy");
    let auth = format!("X-Csrf-Token: {csrf}\r\n");
    // A path on the node's machine is not an image: its manifest's grants would count.
    let manifest = repo_root().join("examples/hello.qyv").display().to_string();
    for source in [manifest.as_str(), "/etc/passwd", "localhost:9/not-pulled:1"] {
        let (kind, body) = multipart(&[("image", source), ("name", "sneaky")]);
        let (status, _, answer) = call(&node, "POST", deploy, &format!("{auth}{kind}"), &body);
        assert_eq!(status, 422, "{answer}");
        assert!(
            answer.contains(&format!("`{source}` is not an image in the node's store")),
            "{answer}"
        );
    }
    let long = "a".repeat(64 * 1024);
    let (kind, body) = multipart(&[("name", &long)]);
    let (status, _, answer) = call(&node, "POST", deploy, &format!("{auth}{kind}"), &body);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("at most 4096 bytes"), "{answer}");
    assert!(node.app("sneaky").is_none());
    assert_eq!(node.ps().len(), 0);
}

#[test]
fn an_app_cannot_set_or_clear_the_dashboards_cookies() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let answer = "Set-Cookie: qyvol_session=; Path=/; Max-Age=0\r\nSet-Cookie: QYVOL_LANG=en\r\nSet-Cookie: theirs=1; Path=/\r\nContent-Type: text/plain\r\n\r\nhi";
    let set = cookies_an_app_sets(&s, &node, answer);
    assert_eq!(set, ["theirs=1; Path=/"]);
}

/// Deploys a CGI guest that answers whatever it is sent (`probe cat` at `/echo/`), sends it
/// `answer` (CGI headers and a body `hi`) and returns the `Set-Cookie` values the app port
/// passed on.
fn cookies_an_app_sets(s: &Scratch, node: &Node, answer: &str) -> Vec<String> {
    s.guest("probe-p1.wasm");
    let manifest = s.write(
        "echo.qyv",
        "version: 1\nname: echo\nentrypoint: probe-p1.wasm\nruntime: wasi-http\nargs: [cat]\nhttp:\n  route: /echo/...\n",
    );
    node.ok(&["deploy", &manifest.display().to_string()]);
    let (status, head, body) = exchange(
        node.http,
        &format!(
            "POST /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ),
    );
    assert_eq!((status, body.as_str()), (200, "hi"), "{head}");
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[test]
fn the_app_view_shows_what_the_module_imports_beside_its_grants() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    // The p2 probe imports files, sockets, HTTP and its environment; it gets no network.
    node.ok(&[
        "deploy",
        "--name",
        "wide",
        &crate::fixture::guest("probe-p2.wasm").display().to_string(),
        "--",
        "args",
    ]);
    let (base, _) = log_in(&node);
    let (status, _, page) = call(
        &node,
        "GET",
        &format!("{base}/apps/wide"),
        "Accept-Language: en\r\n",
        "",
    );
    assert_eq!(status, 200);
    let imports = page
        .split("id=\"imports\"")
        .nth(1)
        .and_then(|r| r.split("</dd>").next())
        .expect("the imports of the module");
    for word in ["filesystem", "sockets", "outgoing HTTP", "environment"] {
        assert!(imports.contains(word), "{word}: {imports}");
    }
    assert!(
        imports.contains("it imports network but is granted none"),
        "{imports}"
    );
}

/// HOSTILE row 42: 240 KB of cookies for `localhost`, set by any local server, do not lock the
/// owner out of the dashboard (it answered 431 to every page before).
#[test]
fn the_dashboard_answers_a_browser_loaded_with_other_servers_cookies() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&["deploy", "--name", "quiet", &probe(), "--", "exit", "0"]);
    scenario("cookies.mjs", &node, &[("QYVOL_APP", "quiet".into())]);
}

/// HOSTILE row 42, the app port's part: a guest's answer passes on no cookie larger than a
/// browser keeps (4 KiB) and at most 16 KiB of them; the rest are dropped.
#[test]
fn the_app_port_passes_on_at_most_16_kib_of_a_guests_cookies() {
    let s = Scratch::new();
    let node = Node::start(&s.path("home"), &[]);
    let cookie = |name: &str, len: usize| format!("{name}={}", "x".repeat(len - name.len() - 1));
    let mut answer = format!("Set-Cookie: {}\r\n", cookie("huge", 5000));
    for i in 0..10 {
        answer += &format!("Set-Cookie: {}\r\n", cookie(&format!("c{i:02}"), 2048));
    }
    answer += "Content-Type: text/plain\r\n\r\nhi";
    let names: Vec<String> = cookies_an_app_sets(&s, &node, &answer)
        .iter()
        .filter_map(|v| Some(v.split_once('=')?.0.to_string()))
        .collect();
    assert_eq!(
        names,
        ["c00", "c01", "c02", "c03", "c04", "c05", "c06", "c07"],
        "the 5,000-byte cookie and those past 16 KiB are dropped"
    );
}

/// The state issue's dashboard promise: buckets with keys and bytes, variable and secret
/// names, and no value of a secret, a `-e` variable or a config variable with escapes.
#[test]
fn an_apps_page_names_its_buckets_variables_and_secrets_and_shows_no_value() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let secret = "tok-dashboard-5e1f-never-shown";
    let env_value = "env-dashboard-0c2a-never-shown";
    node.deploy_counter(
        &s,
        secret,
        env_value,
        &["--config", "note=\u{1b}[31mred\u{1b}]0;pwned\u{7}"],
    );
    assert_eq!(node.get("/").0, 200);
    node.ok(&[
        "deploy",
        "--name",
        "checked",
        "--health",
        "/health",
        "--health-interval",
        "200ms",
        &repo_root()
            .join("examples/compose/api/api.qyv")
            .display()
            .to_string(),
    ]);
    wait_until("the checked app to be healthy", || {
        node.app("checked")
            .is_some_and(|a| a["health"] == "healthy")
    });
    scenario(
        "state.mjs",
        &node,
        &[
            ("QYVOL_SECRET", secret.to_string()),
            ("QYVOL_ENV_VALUE", env_value.to_string()),
        ],
    );
}
