//! The front app of examples/compose: greets, and shows what the API app says, calling it by
//! name (`http://api/items`) — in process under Qyvol, no socket and no network grant. Built
//! for wasm32-wasip2 by `scripts/build-examples.sh`.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

wit_bindgen::generate!({ path: "../wit", world: "app", generate_all });

use wasi::config::store as config;

struct Front;

wasip2::http::proxy::export!(Front);

/// `GET http://{api}{path}`: the API's status and body. `api` is the app's name (a call in
/// process), or `HOST:PORT` from the `api` variable (a call over the network, for comparison).
fn call_api(path: &str) -> Result<(u16, String), String> {
    let api = config::get("api")
        .ok()
        .flatten()
        .unwrap_or_else(|| "api".into());
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(&api))
        .map_err(|()| "bad authority")?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no response")?
        .map_err(|()| "taken")?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "no body")?;
    let stream = body.stream().map_err(|()| "no stream")?;
    let mut text = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        text.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
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

impl wasip2::exports::http::incoming_handler::Guest for Front {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        println!(
            "{:?} {}",
            request.method(),
            request.path_with_query().unwrap_or_default()
        );
        let greeting = config::get("greeting")
            .ok()
            .flatten()
            .unwrap_or_else(|| "Hola".into());
        // By name the API sees `/items`; through the port, its route `/api/...`.
        let path = if config::get("api").ok().flatten().is_some() {
            "/api/items"
        } else {
            "/items"
        };
        match call_api(path) {
            Ok((200, body)) => answer(out, 200, &format!("{greeting}! The API says: {body}")),
            Ok((status, body)) => answer(out, 502, &format!("the API answered {status}: {body}")),
            Err(e) => answer(out, 502, &format!("the API could not be called: {e}\n")),
        }
    }
}
