//! A `wasi-http` app served in its pod, as `qyvol serve` serves it.

use anyhow::Context;

use crate::annotations::ANN_LISTEN;

/// Serves a `wasi-http` app at its route until SIGTERM or SIGINT, which let in-flight requests
/// finish (as `qyvol serve` does): the container then exits 0. One line per request on stderr.
pub(crate) fn serve(launch: qyvol_launch::Launch, listen: &str) -> anyhow::Result<i32> {
    use qyvol_runtime::serve::{AccessEntry, App, Events, ServeOptions, Server};
    struct Log;
    impl Events for Log {
        fn request(&self, e: &AccessEntry<'_>) {
            eprintln!(
                "{} {} {} {:.1}ms",
                e.method,
                qyvol_common::escape_controls(e.path),
                e.status,
                e.duration.as_secs_f64() * 1000.0
            );
        }
        fn draining(&self, in_flight: usize) {
            eprintln!("qyvol: stopping ({in_flight} requests to finish)");
        }
    }
    let route = launch.manifest.http.route.clone();
    let app = App {
        name: launch.manifest.name.to_string(),
        route: route.clone(),
        max_body: qyvol_launch::grants::max_body(
            &launch.manifest,
            qyvol_launch::grants::DEFAULT_MAX_BODY,
        )
        .0,
        concurrency: None,
        // The image's manifest may only ask for less than a fresh instance per request.
        reuse: qyvol_launch::grants::reuse(
            &launch.manifest,
            launch.wasm.info.wasi,
            qyvol_runtime::serve::Reuse::FRESH,
        )?,
        wasm: launch.wasm,
        request: launch.request,
        engine: launch.engine,
    };
    let how = qyvol_runtime::Compilation {
        cache: None,
        progress: None,
        compiler: qyvol_runtime::Compiler::Cranelift,
    };
    let server = Server::new(vec![app], how, ServeOptions::default())?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} ({ANN_LISTEN})"))?;
    eprintln!(
        "qyvol: serving {route} on http://{}/",
        listener.local_addr()?
    );
    server.run(listener, std::sync::Arc::new(Log))?;
    Ok(0)
}
