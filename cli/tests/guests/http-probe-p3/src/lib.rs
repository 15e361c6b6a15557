//! A WASI 0.3 `wasi:http/service` test handler (`wasi:http/handler@0.3.0`, through the `wasip3`
//! crate) with one behaviour per path (its last segment, whatever route it is served under),
//! for `qyvol serve`'s tests:
//!
//! - `/count`: `request N of this instance` (1 in a fresh instance)
//! - `/echo`: the request's body, read through 0.3's streams
//! - `/fetch?to=HOST:PORT`: an outgoing GET to `http://HOST:PORT/` through `wasi:http/client`;
//!   answers its status and body, or 502 with the error code
//! - `/spin`: loops forever; `/trap`: traps
//! - `/sleep?ms=N`: waits N ms in 0.3's `wait-for`, then answers `slept`
//! - `/alloc?mib=N`: allocates N MiB, then answers `allocated`
//! - `/linger`: answers `lingering`, then a task it spawned waits an hour
//! - `/status?c=N`: answers with status N
//! - anything else: a greeting naming the method and path
//!
//! Rebuilt by scripts/build-examples.sh (`wasm32-wasip2`, whose linker makes the component).

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod guest {
    use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
    use wasip3::{wit_bindgen, wit_future, wit_stream};

    struct Probe;
    wasip3::http::service::export!(Probe);

    /// How many requests this instance has handled, this one included.
    fn nth_request() -> u32 {
        static SEEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    fn reply(status: u16, body: Vec<u8>) -> Result<Response, ErrorCode> {
        let (mut tx, rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .unwrap_or_else(|_| Fields::new());
        let (response, _sent) = Response::new(headers, Some(rx), trailers_rx);
        drop(trailers_tx);
        let _ = response.set_status_code(status);
        wit_bindgen::spawn_local(async move {
            let _ = tx.write_all(body).await;
        });
        Ok(response)
    }

    async fn fetch(to: &str) -> Result<String, ErrorCode> {
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        drop(trailers_tx);
        let (request, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
        let _ = request.set_scheme(Some(&Scheme::Http));
        let _ = request.set_authority(Some(to));
        let _ = request.set_path_with_query(Some("/"));
        let response = wasip3::http::client::send(request).await?;
        let status = response.get_status_code();
        let (done_tx, done_rx) = wit_future::new(|| Ok(()));
        drop(done_tx);
        let (body, _trailers) = Response::consume_body(response, done_rx);
        let body = body.collect().await;
        Ok(format!("{status} {}", String::from_utf8_lossy(&body)))
    }

    impl wasip3::exports::http::handler::Guest for Probe {
        async fn handle(request: Request) -> Result<Response, ErrorCode> {
            let method = match request.get_method() {
                Method::Get => "GET".to_string(),
                Method::Post => "POST".to_string(),
                Method::Other(m) => m,
                other => format!("{other:?}").to_uppercase(),
            };
            let path = request.get_path_with_query().unwrap_or_default();
            let (route, query) = path.split_once('?').unwrap_or((&path, ""));
            match &route[route.rfind('/').unwrap_or(0)..] {
                "/count" => reply(
                    200,
                    format!("request {} of this instance\n", nth_request()).into(),
                ),
                "/echo" => {
                    let (done_tx, done_rx) = wit_future::new(|| Ok(()));
                    drop(done_tx);
                    let (body, _trailers) = Request::consume_body(request, done_rx);
                    reply(200, body.collect().await)
                }
                "/fetch" => {
                    let to = query.strip_prefix("to=").unwrap_or_default();
                    match fetch(to).await {
                        Ok(text) => reply(200, text.into()),
                        Err(e) => reply(502, format!("error: {e:?}").into()),
                    }
                }
                "/sleep" => {
                    let ms: u64 = query
                        .strip_prefix("ms=")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
                    reply(200, b"slept".to_vec())
                }
                "/alloc" => {
                    let mib: usize = query
                        .strip_prefix("mib=")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    std::hint::black_box(vec![1u8; mib << 20]);
                    reply(200, b"allocated".to_vec())
                }
                "/linger" => {
                    wit_bindgen::spawn_local(async {
                        wasip3::clocks::monotonic_clock::wait_for(3_600_000_000_000).await;
                    });
                    reply(200, b"lingering".to_vec())
                }
                "/status" => {
                    let code = query.strip_prefix("c=").and_then(|n| n.parse().ok());
                    reply(code.unwrap_or(200), b"status".to_vec())
                }
                #[expect(
                    clippy::empty_loop,
                    reason = "the test of a handler that never answers"
                )]
                "/spin" => loop {},
                "/trap" => unreachable!("the test of a handler that traps"),
                _ => reply(
                    200,
                    format!("¡Hola desde Qyvol 0.3! {method} {path}\n").into(),
                ),
            }
        }
    }
}
