//! `qyvol serve`'s fixed set of apps on one router, and the one-request entry points the
//! benchmarks and tests use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Response};

use super::RequestFailure;
use super::failure::error_response;
use super::options::{App, Events, ServeOptions};
use super::router::Router;
use crate::RuntimeError;
use crate::compile::Compilation;
use crate::engine;

/// A fixed set of apps on one engine, for `qyvol serve`.
pub struct Server {
    router: Arc<Router>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("pooling", &self.pooling())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Compiles (or maps from the cache) and links every app. Routes must differ.
    pub fn new(
        apps: Vec<App>,
        how: Compilation<'_>,
        options: ServeOptions,
    ) -> Result<Self, RuntimeError> {
        for (i, a) in apps.iter().enumerate() {
            if let Some(b) = apps[..i].iter().find(|b| b.route == a.route) {
                return Err(RuntimeError::Serve(format!(
                    "`{}` and `{}` both ask for the route `{}`; give one of them another `http.route`",
                    b.name, a.name, a.route
                )));
            }
        }
        let largest_memory = apps
            .iter()
            .map(|a| a.request.limits.memory)
            .try_fold(0u64, |m, l| l.map(|l| m.max(l)));
        let router = Router::with_slots(options, largest_memory);
        // The engine is made even with no apps, so `pooling` tells the truth.
        router.runtime(engine::EngineConfig::decide(
            engine::Purpose::Serving,
            &crate::Limits::default(),
            crate::WasiGeneration::P2,
        ))?;
        for app in apps {
            let loaded = router.load(app, how)?;
            router.insert(loaded)?;
        }
        Ok(Self {
            router: Arc::new(router),
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.router.pooling()
    }

    /// Instantiates the app routed for `path` once, in a fresh store with its grants, and drops
    /// the instance without calling it: a check that it instantiates, and what instantiation
    /// alone costs a request (`benches/instantiate.rs`). `false` when no app has the route.
    pub async fn instantiate(&self, path: &str) -> Result<bool, RuntimeError> {
        let Some(app) = self.router.route(path) else {
            return Ok(false);
        };
        app.instantiate().await.map_err(RuntimeError::engine)?;
        Ok(true)
    }

    /// Answers one request in this process, as a connection would once it has read it: the
    /// app routed for its path, a fresh instance, the whole response. For embedders, and for
    /// `benches/instantiate.rs`, which measures what one request costs without sockets.
    pub async fn respond(&self, req: Request<Bytes>) -> Response<Bytes> {
        let path = req.uri().path().to_string();
        let app = self.router.route(&path);
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        let response = match &app {
            None => Err(RequestFailure::NoRoute),
            Some(app) => app.handle(req, peer, Vec::new()).await,
        }
        .unwrap_or_else(|f| error_response(&f));
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Response::from_parts(parts, body)
    }

    /// Serves on `listener` until SIGINT or SIGTERM, then stops accepting, lets in-flight
    /// requests finish (up to `drain`, or until a second signal) and returns.
    pub fn run(
        self,
        listener: std::net::TcpListener,
        events: Arc<dyn Events>,
    ) -> Result<(), RuntimeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("qyvol-serve")
            .build()
            .map_err(RuntimeError::engine)?;
        let result = rt.block_on(async {
            listener
                .set_nonblocking(true)
                .map_err(RuntimeError::engine)?;
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(RuntimeError::engine)?;
            let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::engine)?;
            let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::engine)?;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = sigint.recv() => {}
                        _ = sigterm.recv() => {}
                    }
                    if tx.send(()).await.is_err() {
                        break;
                    }
                }
            });
            self.router.serve(listener, events, rx).await
        });
        rt.shutdown_timeout(Duration::from_millis(100));
        result
    }
}
