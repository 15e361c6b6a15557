//! A `wasi:http/proxy` test handler with one behaviour per path, so `qyvol serve`'s tests can
//! make it answer, trap, loop, sleep, allocate, echo, call out and wait for other instances.
//! Built for wasm32-wasip2 by `scripts/build-examples.sh`; the wasm is committed beside this
//! source.

#[path = "../../shared/handler.rs"]
mod shared;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

struct Probe;

wasip2::http::proxy::export!(Probe);

fn query<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    shared::query(path.split_once('?')?.1, key)
}

/// How many requests this instance has handled, this one included: 1 in a fresh instance.
fn nth_request() -> u32 {
    static SEEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

fn reply(out: ResponseOutparam, status: u16, text: &str) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        for chunk in text.as_bytes().chunks(4096) {
            let _ = stream.blocking_write_and_flush(chunk);
        }
    }
    let _ = OutgoingBody::finish(body, None);
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut all = Vec::new();
    let Ok(body) = request.consume() else {
        return all;
    };
    let Ok(stream) = body.stream() else {
        return all;
    };
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        all.extend_from_slice(&chunk);
    }
    all
}

/// Makes an outgoing GET to `http://{authority}/` and describes what came back.
fn fetch(authority: &str) -> Result<String, String> {
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "bad authority")?;
    request
        .set_path_with_query(Some("/"))
        .map_err(|()| "bad path")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no response")?
        .map_err(|()| "taken")?
        .map_err(|e| format!("{e:?}"))?;
    Ok(format!("upstream answered {}", response.status()))
}

impl wasip2::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let route = path
            .split('?')
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("");
        match route {
            "trap" => unreachable!("the handler trapped on purpose"),
            // `?text=T`: T on stdout (in two writes) and on stderr, and T as the answer.
            "say" => {
                let text = query(&path, "text").unwrap_or("");
                print!("{text}");
                println!(" (stdout)");
                eprintln!("{text} (stderr)");
                reply(out, 200, text);
            }
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    if x == 0 {
                        break;
                    }
                }
                reply(out, 200, &x.to_string());
            }
            "sleep" => {
                let ms: u64 = query(&path, "ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                reply(out, 200, &format!("slept {ms} ms\n"));
            }
            "alloc" => {
                let mib: usize = query(&path, "mib")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let v = vec![1u8; mib << 20];
                let sum: usize = v.iter().map(|&b| b as usize).sum();
                reply(out, 200, &format!("allocated {} MiB\n", sum >> 20));
            }
            "echo" => {
                let body = read_body(&request);
                reply(
                    out,
                    200,
                    &format!("{} bytes: {}", body.len(), String::from_utf8_lossy(&body)),
                );
            }
            "fetch" => {
                let to = query(&path, "to").unwrap_or("127.0.0.1:9");
                match fetch(to) {
                    Ok(text) => reply(out, 200, &text),
                    Err(e) => reply(out, 502, &format!("fetch failed: {e}")),
                }
            }
            "env" => {
                let key = query(&path, "name").unwrap_or("");
                let value = wasip2::cli::environment::get_environment()
                    .into_iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v);
                reply(out, 200, &format!("{key}={}", value.unwrap_or_default()));
            }
            "count" => {
                let n = nth_request();
                reply(out, 200, &format!("request {n} of this instance\n"));
            }
            "barrier" => {
                // Waits in `/sync` until `n` instances are there at once (see `shared::barrier`).
                let n = nth_request();
                // `mib`: memory to hold while waiting (the sum of instances is then known).
                let mib: usize = query(&path, "mib")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let held = vec![1u8; mib << 20];
                let of = query(&path, "n").and_then(|v| v.parse().ok()).unwrap_or(2);
                let ms = query(&path, "ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(5000);
                match shared::barrier("/sync", of, std::time::Duration::from_millis(ms)) {
                    Ok(slot) => reply(
                        out,
                        200,
                        &format!(
                            "slot {slot}, request {n} of this instance{}\n",
                            if mib > 0 {
                                format!(
                                    ", holding {} MiB",
                                    held.iter().map(|&b| b as usize).sum::<usize>() >> 20
                                )
                            } else {
                                String::new()
                            }
                        ),
                    ),
                    Err(e) => reply(out, 504, &format!("{e}\n")),
                }
            }
            "big" => {
                let kib: usize = query(&path, "kib")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                reply(out, 200, &"x".repeat(kib * 1024));
            }
            _ => reply(out, 200, &format!("probe {path}\n")),
        }
    }
}
