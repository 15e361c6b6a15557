//! The web dashboard of a real `qyvol node`: its guards over plain HTTP, and its views in
//! Debian's chromium, driven by playwright-core through the scenarios in `cli/tests/browser/`
//! (`.ci/run` installs chromium and runs `npm ci` there).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::node::{Node, exchange, probe, wait_for};
use crate::registry::Registry;
use crate::{Scratch, qyvol_in, qyvol_std, repo_root, stderr, stdout};

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
        .env("QYVOL_TOKEN", token(node))
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
    wait_for(
        || node.app("shouty").is_some_and(|a| a["state"] == "exited"),
        "the guest to print and exit",
    );
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

/// Logs in; returns the session cookie (`qyvol_session=...`) and the page's CSRF token.
fn log_in(node: &Node) -> (String, String) {
    let form = format!("token={}", token(node));
    let (status, head, _) = call(
        node,
        "POST",
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &form,
    );
    assert_eq!(status, 303, "{head}");
    let cookie = header(&head, "set-cookie")[0];
    let session = cookie.split(';').next().expect("pair").to_string();
    let (_, _, page) = call(node, "GET", "/", &format!("Cookie: {session}\r\n"), "");
    let csrf = page
        .split("X-Csrf-Token&quot;:&quot;")
        .nth(1)
        .and_then(|r| r.split("&quot;").next())
        .expect("the page carries its CSRF token")
        .to_string();
    (session, csrf)
}

#[test]
fn login_sets_an_httponly_samesite_strict_cookie_and_pages_have_a_strict_csp() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    let (status, head, _) = call(&node, "GET", "/", "", "");
    assert_eq!(status, 303, "no session: to the login page");
    assert_eq!(header(&head, "location"), ["/login"]);

    let (status, head, _) = call(
        &node,
        "POST",
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("token={}", "0".repeat(64)),
    );
    assert_eq!(status, 401);
    assert!(header(&head, "set-cookie").is_empty(), "{head}");

    let form = format!("token={}", token(&node));
    let (_, head, _) = call(
        &node,
        "POST",
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &form,
    );
    let cookie = header(&head, "set-cookie")[0];
    assert!(cookie.starts_with("qyvol_session="), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains(&token(&node)),
        "the cookie is not the token"
    );

    let session = cookie.split(';').next().expect("pair");
    let (status, head, body) = call(&node, "GET", "/", &format!("Cookie: {session}\r\n"), "");
    assert_eq!(status, 200);
    assert!(body.contains("<h1>Resumen</h1>"), "{body}");
    let csp = header(&head, "content-security-policy");
    assert_eq!(csp.len(), 1, "{head}");
    assert!(csp[0].contains("script-src 'self'"), "{}", csp[0]);
    assert!(!csp[0].contains("unsafe-inline"), "{}", csp[0]);
    assert!(csp[0].contains("frame-ancestors 'none'"), "{}", csp[0]);
    assert!(!body.contains("<script>"), "no inline script");
    assert!(!body.contains(" style="), "no inline style");
    assert_eq!(header(&head, "x-content-type-options"), ["nosniff"]);

    // The API still wants the token itself, not the dashboard's cookie.
    let (status, _, _) = call(
        &node,
        "GET",
        "/api/v1/apps",
        &format!("Cookie: {session}\r\n"),
        "",
    );
    assert_eq!(status, 401);
}

#[test]
fn dashboard_actions_need_the_sessions_csrf_token_and_a_same_site_origin() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&["deploy", "--name", "busy", &probe(), "--", "spin"]);
    let (session, csrf) = log_in(&node);
    let cookie = format!("Cookie: {session}\r\n");
    let stop = "/ui/apps/busy/stop";

    let (status, _, body) = call(&node, "POST", stop, &cookie, "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let wrong = format!("{cookie}X-Csrf-Token: {}\r\n", "f".repeat(64));
    assert_eq!(call(&node, "POST", stop, &wrong, "").0, 403);
    let other_site = format!("{cookie}X-Csrf-Token: {csrf}\r\nOrigin: http://evil.example\r\n");
    assert_eq!(call(&node, "POST", stop, &other_site, "").0, 403);
    // Another port of this host is another origin (an app's page, say).
    let other_port = format!("{cookie}X-Csrf-Token: {csrf}\r\nOrigin: http://127.0.0.1:9\r\n");
    assert_eq!(call(&node, "POST", stop, &other_port, "").0, 403);
    let login_from_other_port =
        "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://127.0.0.1:9\r\n";
    let form = format!("token={}", token(&node));
    assert_eq!(
        call(&node, "POST", "/login", login_from_other_port, &form).0,
        403
    );
    let no_session = format!("X-Csrf-Token: {csrf}\r\n");
    assert_eq!(call(&node, "POST", stop, &no_session, "").0, 401);
    assert_eq!(node.app("busy").expect("busy")["state"], "running");

    let right = format!("{cookie}X-Csrf-Token: {csrf}\r\n");
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
    assert_eq!(call(&node, "POST", "/ui/images/pull", &form, &big).0, 413);
    // Logging out ends the session.
    assert_eq!(call(&node, "POST", "/logout", &right, "").0, 204);
    assert_eq!(call(&node, "GET", "/ui/apps", &cookie, "").0, 401);
}

#[test]
fn qyvol_node_prints_its_dashboard_url_and_takes_another_port_when_the_default_is_taken() {
    let s = Scratch::new();
    // Hold the default port, as another program might.
    let taken = std::net::TcpListener::bind("127.0.0.1:7373");
    let http = crate::node::free_port().to_string();
    let mut child = qyvol_std()
        .env("QYVOL_HOME", s.path("home"))
        .env("QYVOL_LANG", "en")
        .args(["node", "--http", &http])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the node prints its dashboard")
            .expect("line");
        if let Some(rest) = line.strip_prefix("🖥  Web dashboard: ") {
            break rest.split(' ').next().expect("url").to_string();
        }
    };
    // `localhost`: another host than the apps' 127.0.0.1 for the browser's cookies.
    let port: u16 = url
        .strip_prefix("http://localhost:")
        .and_then(|p| p.strip_suffix('/'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a localhost URL: {url}"));
    if taken.is_ok() {
        assert_ne!(port, 7373, "the default port was taken");
    }
    // The printed URL is this node's login page.
    let (status, _, body) = exchange(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        &format!("GET /login HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert!(
        body.contains("<form class=\"card login\" method=\"post\" action=\"/login\">"),
        "{body}"
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
    let (session, _) = log_in(&node);
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

#[test]
fn a_log_stream_ends_when_its_app_is_removed() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    node.ok(&[
        "deploy",
        "--name",
        "ghost",
        &probe(),
        "--",
        "args",
        "first-life",
    ]);
    wait_for(
        || node.app("ghost").is_some_and(|a| a["state"] == "exited"),
        "the guest to print",
    );
    let (session, _) = log_in(&node);
    let api = node.api.expect("api");
    let mut stream = std::net::TcpStream::connect(api).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .expect("timeout");
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET /ui/apps/ghost/logs HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nCookie: {session}\r\n\r\n",
            api.port()
        )
        .as_bytes(),
    )
    .expect("send");
    // The app's line first (the stream is open and following), then the removal.
    let mut reader = BufReader::new(stream);
    let mut seen = String::new();
    while !seen.contains(r#""text":"first-life""#) {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .expect("the stream sends the app's line");
        assert!(n > 0, "the stream ended before the app's line: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    node.ok(&["rm", "ghost"]);
    // Then it ends (a read timeout here would fail the test).
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest)
        .expect("the stream ended after the removal");
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
    let (session, csrf) = log_in(&node);
    let auth = format!("Cookie: {session}\r\nX-Csrf-Token: {csrf}\r\n");
    // A path on the node's machine is not an image: its manifest's grants would count.
    let manifest = repo_root().join("examples/hello.qyv").display().to_string();
    for source in [manifest.as_str(), "/etc/passwd", "localhost:9/not-pulled:1"] {
        let (kind, body) = multipart(&[("image", source), ("name", "sneaky")]);
        let (status, _, answer) =
            call(&node, "POST", "/ui/deploy", &format!("{auth}{kind}"), &body);
        assert_eq!(status, 422, "{answer}");
        assert!(
            answer.contains(&format!("`{source}` is not an image in the node's store")),
            "{answer}"
        );
    }
    let long = "a".repeat(64 * 1024);
    let (kind, body) = multipart(&[("name", &long)]);
    let (status, _, answer) = call(&node, "POST", "/ui/deploy", &format!("{auth}{kind}"), &body);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("at most 4096 bytes"), "{answer}");
    assert!(node.app("sneaky").is_none());
    assert_eq!(node.ps().len(), 0);
}

#[test]
fn an_app_cannot_set_or_clear_the_dashboards_cookies() {
    let s = Scratch::new();
    let node = Node::with_api(&s.path("home"));
    // A CGI guest whose response is its request's body: it answers whatever it is sent.
    s.guest("probe-p1.wasm");
    let manifest = s.write(
        "echo.qyv",
        "version: 1\nname: echo\nentrypoint: probe-p1.wasm\nruntime: wasi-http\nargs: [cat]\nhttp:\n  route: /echo/...\n",
    );
    node.ok(&["deploy", &manifest.display().to_string()]);
    let answer = "Set-Cookie: qyvol_session=; Path=/; Max-Age=0\r\nSet-Cookie: QYVOL_LANG=en\r\nSet-Cookie: theirs=1; Path=/\r\nContent-Type: text/plain\r\n\r\nhi";
    let (status, head, body) = exchange(
        node.http,
        &format!(
            "POST /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ),
    );
    assert_eq!(status, 200, "{head}\n{body}");
    assert_eq!(body, "hi");
    let set: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim())
        .collect();
    assert_eq!(set, ["theirs=1; Path=/"], "{head}");
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
        &crate::guest("probe-p2.wasm").display().to_string(),
        "--",
        "args",
    ]);
    let (session, _) = log_in(&node);
    let (status, _, page) = call(
        &node,
        "GET",
        "/apps/wide",
        &format!("Cookie: {session}\r\nAccept-Language: en\r\n"),
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
