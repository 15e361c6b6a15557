//! A `wasi:http/proxy` component that counts its visitors: the count lives in the `counts`
//! bucket (`wasi:keyvalue`, an atomic increment, so concurrent requests never lose one), the
//! greeting in the `greeting` and `name` variables and the operator's token in the
//! `admin_token` secret (`wasi:config`). `GET /` counts a visit; `GET /admin` with
//! `Authorization: Bearer TOKEN` shows the count without counting. Built for wasm32-wasip2
//! by `scripts/build-examples.sh`.

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "wit",
    world: "counter",
    generate_all,
});

use wasi::config::store as config;
use wasi::keyvalue::{atomics, store};

struct Counter;

wasip2::http::proxy::export!(Counter);

fn setting(name: &str, default: &str) -> String {
    config::get(name)
        .ok()
        .flatten()
        .unwrap_or_else(|| default.to_string())
}

/// The visit count after adding `delta` (0 reads it).
fn count(delta: u64) -> Result<u64, String> {
    let bucket =
        store::open("counts").map_err(|e| format!("cannot open bucket `counts`: {e:?}"))?;
    atomics::increment(&bucket, "visits", delta).map_err(|e| format!("cannot count: {e:?}"))
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

impl wasip2::exports::http::incoming_handler::Guest for Counter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if path == "/admin" {
            let expected = config::get("admin_token").ok().flatten();
            let given = request
                .headers()
                .get("authorization")
                .into_iter()
                .next()
                .and_then(|v| String::from_utf8(v).ok());
            let allowed =
                matches!((&expected, &given), (Some(t), Some(g)) if *g == format!("Bearer {t}"));
            if !allowed {
                return answer(out, 401, "a valid admin token is needed\n");
            }
            return match count(0) {
                Ok(n) => answer(out, 200, &format!("visits: {n}\n")),
                Err(e) => answer(out, 500, &format!("{e}\n")),
            };
        }
        match count(1) {
            Ok(n) => {
                let text = format!(
                    "{}, {}! You are visitor {n}.\n",
                    setting("greeting", "Hola"),
                    setting("name", "mundo")
                );
                answer(out, 200, &text);
            }
            Err(e) => answer(out, 500, &format!("{e}\n")),
        }
    }
}
