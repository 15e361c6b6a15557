//! The API app of examples/compose: keeps a count of items in the `items` bucket.
//! `GET /items` reads it, `POST /items` adds one, `GET /health` says whether it is well (a
//! version configured `broken=1` is not). Every answer names the configured `version`, so an
//! update shows which version answered. Built for wasm32-wasip2 by `scripts/build-examples.sh`.

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({ path: "../wit", world: "app", generate_all });

use wasi::config::store as config;
use wasi::keyvalue::{atomics, store};

struct Api;

wasip2::http::proxy::export!(Api);

fn setting(name: &str, default: &str) -> String {
    config::get(name)
        .ok()
        .flatten()
        .unwrap_or_else(|| default.to_string())
}

fn items(delta: u64) -> Result<u64, String> {
    let bucket = store::open("items").map_err(|e| format!("cannot open bucket `items`: {e:?}"))?;
    atomics::increment(&bucket, "count", delta).map_err(|e| format!("cannot count: {e:?}"))
}

fn answer(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = stream.blocking_write_and_flush(text.as_bytes());
    }
    let _ = OutgoingBody::finish(body, None);
}

impl wasip2::exports::http::incoming_handler::Guest for Api {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let version = setting("version", "1");
        let full = request.path_with_query().unwrap_or_default();
        // Reached through the port at `/api/...`, or by name from another app at `/...`.
        let path = full
            .strip_prefix("/api")
            .filter(|p| p.starts_with('/'))
            .unwrap_or(&full);
        println!("{:?} {full}", request.method());
        match (request.method(), path) {
            (_, "/health") if setting("broken", "0") == "1" => answer(out, 500, "broken\n"),
            (_, "/health") => answer(out, 200, "ok\n"),
            (Method::Post, "/items") => match items(1) {
                Ok(n) => answer(out, 200, &format!("added: {n} items (api v{version})\n")),
                Err(e) => answer(out, 500, &format!("{e}\n")),
            },
            (_, "/items") => match items(0) {
                Ok(n) => answer(out, 200, &format!("{n} items (api v{version})\n")),
                Err(e) => answer(out, 500, &format!("{e}\n")),
            },
            _ => answer(out, 404, "not found\n"),
        }
    }
}
