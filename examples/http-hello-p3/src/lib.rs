//! A WASI 0.3 `wasi:http/service` component (it exports `wasi:http/handler@0.3.0`): answers
//! every request with a greeting that names the method and path, written to the body's stream
//! after the response is returned. Built for wasm32-wasip2 by `scripts/build-examples.sh`.

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod handler {
    use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response};
    use wasip3::{wit_bindgen, wit_future, wit_stream};

    struct Hello;
    wasip3::http::service::export!(Hello);

    impl wasip3::exports::http::handler::Guest for Hello {
        async fn handle(request: Request) -> Result<Response, ErrorCode> {
            let method = match request.get_method() {
                Method::Other(m) => m,
                known => format!("{known:?}")
                    .trim_start_matches("Method::")
                    .to_uppercase(),
            };
            let path = request.get_path_with_query().unwrap_or_default();
            let text = format!("¡Hola desde Qyvol, WASI 0.3! {method} {path}\n");

            let headers = Fields::from_list(&[(
                "content-type".to_string(),
                b"text/plain; charset=utf-8".to_vec(),
            )])
            .unwrap_or_else(|_| Fields::new());
            let (mut body, contents) = wit_stream::new();
            let (trailers_tx, trailers) = wit_future::new(|| Ok(None));
            drop(trailers_tx);
            let (response, _sent) = Response::new(headers, Some(contents), trailers);
            wit_bindgen::spawn_local(async move {
                body.write_all(text.into_bytes()).await;
            });
            Ok(response)
        }
    }
}
