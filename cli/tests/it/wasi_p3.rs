//! WASI 0.3 commands (`wasi:cli/run@0.3.0`) under `qyvol run`, with the project's own 0.3
//! guest (`cli/tests/guests/probe-p3`, built with the `wasip3` crate): its arguments,
//! environment and exit code come through 0.3's interfaces, and its sockets get exactly what
//! the grants allow.

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use crate::fixture::{UdpReceiver, guest, qyvol, qyvol_std, stderr, stdout};

/// `qyvol run -q probe-p3.wasm` with `flags` before the file and `args` after it.
fn probe(flags: &[&str], args: &[&str]) -> std::process::Output {
    qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "-q"])
        .args(flags)
        .arg(guest("probe-p3.wasm"))
        .args(args)
        .output()
        .expect("qyvol run")
}

#[test]
fn a_wasi_0_3_command_gets_its_arguments_environment_and_exit_code() {
    let args = probe(&[], &["args", "one", "two words"]);
    assert_eq!(args.status.code(), Some(0), "{}", stderr(&args));
    assert_eq!(stdout(&args), "probe-p3\nargs\none\ntwo words\n");
    let env = probe(&["-e", "GREETING=hola"], &["env", "GREETING"]);
    assert_eq!(stdout(&env), "probe-p3\nhola\n", "{}", stderr(&env));
    let exit = probe(&[], &["exit", "7"]);
    assert_eq!(exit.status.code(), Some(7), "{}", stderr(&exit));
}

#[test]
fn inspect_says_a_wasi_0_3_component_speaks_0_3() {
    let out = qyvol()
        .args(["inspect", "--json"])
        .arg(guest("probe-p3.wasm"))
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(doc["wasi"], "0.3");
    let exports: Vec<&str> = doc["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(exports.contains(&"wasi:cli/run@0.3.0"), "{exports:?}");
    // Its std also exports 0.2's `run` (wasm32-wasip2's entry), which a 0.3 host never calls.
    assert_eq!(
        doc["worlds"],
        serde_json::json!(["wasi:cli/command@0.2.0", "wasi:cli/command@0.3.0"])
    );
}

#[test]
fn inspect_names_the_world_a_wasi_0_3_handler_makes() {
    let out = qyvol()
        .env("QYVOL_LANG", "en")
        .arg("inspect")
        .arg(crate::fixture::repo_root().join("examples/http-hello-p3/http-hello-p3.wasm"))
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l == "wasi:         0.3 (wasi:http/service@0.3.0)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_wasi_0_3_connection_reaches_only_a_granted_address() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address").to_string();
    let denied = probe(&[], &["connect", &addr]);
    assert_eq!(
        stdout(&denied),
        "probe-p3\nerror: ErrorCode::AccessDenied\n"
    );
    assert!(
        stderr(&denied).contains(&format!("Network access denied (connect): {addr}")),
        "{}",
        stderr(&denied)
    );
    let granted = probe(&["--allow-net", &addr], &["connect", &addr]);
    assert_eq!(
        stdout(&granted),
        "probe-p3\nconnected\n",
        "{}",
        stderr(&granted)
    );
}

#[test]
fn a_wasi_0_3_name_lookup_needs_a_grant_naming_that_name() {
    let denied = probe(&["--allow-net", "a.example:80"], &["lookup", "localhost"]);
    assert_eq!(
        stdout(&denied),
        "probe-p3\nerror: ErrorCode::AccessDenied\n"
    );
    assert!(
        stderr(&denied).contains("Name lookup denied: localhost;"),
        "{}",
        stderr(&denied)
    );
    let granted = probe(&["--allow-net", "localhost:80"], &["lookup", "localhost"]);
    assert!(
        stdout(&granted).contains("Ipv4((127, 0, 0, 1))"),
        "{}{}",
        stdout(&granted),
        stderr(&granted)
    );
}

#[test]
fn a_wasi_0_3_datagram_reaches_only_a_granted_address() {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = receiver.local_addr().expect("address").to_string();
    let denied = probe(&[], &["udp", &addr]);
    assert_eq!(
        stdout(&denied),
        "probe-p3\nerror: ErrorCode::AccessDenied\n"
    );
    let granted = probe(&["--allow-net", &addr], &["udp", &addr]);
    assert_eq!(stdout(&granted), "probe-p3\nsent\n", "{}", stderr(&granted));
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0; 16];
    let (n, _) = receiver.recv_from(&mut buf).expect("the datagram");
    assert_eq!(&buf[..n], b"ping");
}

/// The probe's `udp-recv BIND` with `flags`.
fn udp_receiver(flags: &[&str], bind: &str) -> UdpReceiver {
    let mut cmd = qyvol_std();
    cmd.args(["run", "-q", "--timeout", "10s"])
        .args(flags)
        .arg(guest("probe-p3.wasm"))
        .args(["udp-recv", bind]);
    UdpReceiver::start(cmd)
}

#[test]
fn wasi_0_3_datagrams_from_any_peer_reach_only_a_socket_bound_to_a_listen_grant() {
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind the granted peer");
    let intruder = UdpSocket::bind("127.0.0.1:0").expect("bind a peer nobody granted");
    let listen_port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let peer_grant = peer.local_addr().expect("addr").to_string();
    let listen_grant = format!("listen 127.0.0.1:{listen_port}");
    let flags = ["--allow-net", &peer_grant, "--allow-net", &listen_grant];

    // A socket on an ephemeral port hears the granted peer only, though a `listen` grant exists.
    let receiver = udp_receiver(&flags, "0.0.0.0:0");
    let to = ("127.0.0.1", receiver.port);
    intruder.send_to(b"intruder", to).expect("send");
    peer.send_to(b"granted", to).expect("send");
    assert_eq!(receiver.rest(), format!("got granted from {peer_grant}\n"));

    // The socket bound to the `listen` grant's address hears anyone.
    let receiver = udp_receiver(&flags, &format!("127.0.0.1:{listen_port}"));
    assert_eq!(receiver.port, listen_port);
    intruder
        .send_to(b"anyone", ("127.0.0.1", listen_port))
        .expect("send");
    assert_eq!(
        receiver.rest(),
        format!("got anyone from {}\n", intruder.local_addr().expect("addr"))
    );
}

#[test]
fn a_wasi_0_3_command_writes_through_a_writable_mount_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "orig").expect("write");
    let folder = dir.path().display().to_string();
    let ro = probe(
        &["--mount", &format!("{folder}:/data:ro")],
        &["write", "/data/f.txt", "changed"],
    );
    assert_eq!(
        stdout(&ro),
        "probe-p3\nerror: ErrorCode::NotPermitted\n",
        "{}",
        stderr(&ro)
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "orig");
    let rw = probe(
        &["--mount", &format!("{folder}:/data")],
        &["write", "/data/f.txt", "changed"],
    );
    assert_eq!(stdout(&rw), "probe-p3\nwritten\n", "{}", stderr(&rw));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "changed");
}

#[test]
fn a_wasi_0_3_command_waiting_in_an_async_host_call_is_stopped_at_its_time_limit() {
    let out = probe(&["--timeout", "1s"], &["sleep", "600000"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert_eq!(stdout(&out), "probe-p3\n");
    assert!(
        stderr(&out).contains("The time limit of 1s passed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_wasi_0_3_command_listens_only_where_a_listen_grant_says() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let denied = probe(&["--allow-net", &addr], &["listen", &addr]);
    assert_eq!(
        stdout(&denied),
        "probe-p3\nerror: ErrorCode::AccessDenied\n",
        "a connect grant is not a listen grant: {}",
        stderr(&denied)
    );
    let grant = format!("listen {addr}");
    let granted = probe(&["--allow-net", &grant], &["listen", &addr]);
    assert_eq!(
        stdout(&granted),
        "probe-p3\nlistening\n",
        "{}",
        stderr(&granted)
    );
}

#[test]
fn a_wasi_0_3_command_stops_at_its_memory_and_fuel_limits() {
    let big = probe(&["--memory", "32MiB"], &["alloc", "64"]);
    assert_eq!(big.status.code(), Some(137), "{}", stderr(&big));
    assert!(
        stderr(&big).contains("memory limit of 32MiB"),
        "{}",
        stderr(&big)
    );
    let small = probe(&["--memory", "32MiB"], &["alloc", "4"]);
    assert_eq!(
        stdout(&small),
        "probe-p3\nallocated\n",
        "{}",
        stderr(&small)
    );
    let spin = probe(&["--fuel", "10000000"], &["spin"]);
    assert_eq!(spin.status.code(), Some(124), "{}", stderr(&spin));
    assert!(stderr(&spin).contains("⛽"), "{}", stderr(&spin));
}

#[test]
fn a_wasi_0_3_command_keeps_state_in_a_granted_bucket_and_reads_config() {
    let s = crate::fixture::Scratch::new();
    let run = |flags: &[&str], args: &[&str]| {
        let out = crate::fixture::qyvol_in(&s.path("home"))
            .args(["run", "-q"])
            .args(flags)
            .arg(guest("probe-p3.wasm"))
            .args(args)
            .output()
            .expect("qyvol run");
        stdout(&out)
    };
    assert_eq!(
        run(&["--keyvalue", "b"], &["kv-incr", "b", "k"]),
        "probe-p3\nOk(1)\n"
    );
    assert_eq!(
        run(&["--keyvalue", "b"], &["kv-incr", "b", "k"]),
        "probe-p3\nOk(2)\n"
    );
    assert_eq!(
        run(&[], &["kv-incr", "b", "k"]),
        "probe-p3\nopen b: Error::AccessDenied\n"
    );
    assert_eq!(
        run(&["--config", "x=1"], &["config", "x"]),
        "probe-p3\nOk(Some(\"1\"))\n"
    );
}
