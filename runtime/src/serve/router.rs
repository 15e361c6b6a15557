//! The route table: apps linked on shared pooled engines, added and removed while serving,
//! and the accept loop that hands each request to the app its path routes to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::body::{self, BodyPace};
use super::cookies::{filter_set_cookies, hide_cookies};
use super::failure::error_response;
use super::options::{AccessEntry, App, Events, ServeOptions};
use super::{Body, Handler, Loaded, LoadedApp, RequestFailure, Runtime, cgi, component, service};
use crate::compile::Compilation;
use crate::engine::{self, EpochTicker};
use crate::inspect::{WasiGeneration, WasmKind};
use crate::net::NetworkAccess;
use crate::{RuntimeError, wasi};

/// How long a client may take to send the request that gets its 503 when it is one connection
/// too many, and how many such clients are answered at once (past that they are just closed).
const REFUSAL_TIME: Duration = Duration::from_secs(2);

const REFUSALS_AT_ONCE: usize = 64;

/// Apps, compiled and linked, and the route table that picks one per request. `qyvol serve`
/// builds a fixed set through [`Server`]; the node keeps one for its life and adds and removes
/// apps as they are deployed and removed. Every engine is made by `engine::pooled`.
pub struct Router {
    /// The engines apps are linked on, one per setting.
    engines: std::sync::Mutex<Vec<Arc<Runtime>>>,
    largest_memory: Option<u64>,
    pub(super) apps: std::sync::RwLock<super::table::Table>,
    options: ServeOptions,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// A router whose engines always time-slice (epoch interruption on, so any request can be
    /// stopped and a busy handler yields), with fuel metering only for apps that set fuel.
    pub fn new(options: ServeOptions) -> Self {
        Self::with_slots(options, None)
    }

    /// A router whose pooled memory slots hold at most `largest_memory` bytes (`None`:
    /// wasmtime's default, any app fits): for a fixed set of apps, the largest of their limits.
    pub(super) fn with_slots(options: ServeOptions, largest_memory: Option<u64>) -> Self {
        Self {
            engines: Default::default(),
            largest_memory,
            apps: std::sync::RwLock::default(),
            options,
        }
    }

    pub(super) fn runtime(
        &self,
        config: engine::EngineConfig,
    ) -> Result<Arc<Runtime>, RuntimeError> {
        if !config.epoch {
            return Err(RuntimeError::Engine(
                "a served app needs an engine with epoch interruption (Purpose::Serving)".into(),
            ));
        }
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = engines.iter().find(|rt| rt.config == config) {
            return Ok(rt.clone());
        }
        let pool = engine::PoolSize {
            instances: self.options.max_concurrency,
            largest_memory: self.largest_memory,
        };
        let (engine, pooling) = engine::pooled(config, pool)?;
        let rt = Arc::new(Runtime {
            ticker: config.epoch.then(|| EpochTicker::start(&engine)),
            engine,
            config,
            pooling,
            components: std::sync::OnceLock::new(),
        });
        engines.push(rt.clone());
        Ok(rt)
    }

    /// Compiles (or maps from the cache) and links `app`, and opens its mounts.
    pub fn load(&self, app: App, how: Compilation<'_>) -> Result<LoadedApp, RuntimeError> {
        let rt = self.runtime(app.engine)?;
        let mounts = wasi::Mounts::open(&app.request.mounts)?;
        let handler = match app.wasm.info.kind {
            WasmKind::Component if app.wasm.info.wasi == WasiGeneration::P3 => Handler::Service(
                service::Template::new(&rt, &app.wasm, &app.request.limits, how, app.reuse)?,
            ),
            WasmKind::Component => Handler::Component(component::Template::new(
                &rt,
                &app.wasm,
                &app.request.limits,
                how,
            )?),
            WasmKind::CoreModule => Handler::Cgi(cgi::Template::new(
                &rt.engine,
                &app.wasm,
                &app.request.limits,
                how,
            )?),
        };
        crate::background::finish_cache_writes();
        let turns = app.concurrency.or(self.options.app_share).map(|n| {
            let n = n.max(1);
            (Arc::new(tokio::sync::Semaphore::new(n as usize)), n)
        });
        Ok(LoadedApp(Arc::new(Loaded {
            turns,
            mounts,
            network: NetworkAccess::of(&app.request),
            name: app.name,
            route: app.route,
            request: app.request,
            max_body: app.max_body,
            handler,
            rt,
            instances: Default::default(),
            gone: tokio::sync::watch::Sender::new(false),
        })))
    }

    /// The app whose route matches `path` most specifically.
    pub(super) fn route(&self, path: &str) -> Option<Arc<Loaded>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.route(path).cloned()
    }

    /// Starts routing requests to `app`; refused when another app has its name or route.
    pub fn insert(&self, app: LoadedApp) -> Result<(), RuntimeError> {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        apps.insert(app.0, false)
    }

    /// The instances of the app named `name`: made since it was loaded, and alive now.
    pub fn instances(&self, name: &str) -> Option<crate::instances::Instances> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.by_name(name).map(|a| a.instances.read())
    }

    /// Stops routing to the app named `name` (requests in flight finish); whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let removed = apps.remove(name);
        if let Some(app) = &removed {
            app.gone.send_replace(true);
        }
        removed.is_some()
    }

    /// Whether instances come from the pooling allocator (false: the address space could not
    /// be reserved and instances are allocated on demand).
    pub fn pooling(&self) -> bool {
        let engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        engines.iter().all(|rt| rt.pooling)
    }

    /// Serves on `listener` until `shutdown` first yields, then stops accepting and lets
    /// in-flight requests finish, up to `drain` or until `shutdown` yields again.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        events: Arc<dyn Events>,
        mut shutdown: tokio::sync::mpsc::Receiver<()>,
    ) -> Result<(), RuntimeError> {
        let shared = Arc::new(Shared {
            router: self.clone(),
            events: events.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                self.options.max_concurrency as usize,
            )),
            body: self.options.body,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
        });
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        // A client that never finishes its request headers does not hold a connection forever.
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        let mut refusing = http.clone();
        refusing.keep_alive(false).header_read_timeout(REFUSAL_TIME);
        let max_connections =
            crate::handles::connections_within_budget(self.options.max_connections);
        let mut accept_failures = crate::handles::Throttle::default();
        let connections = Arc::new(tokio::sync::Semaphore::new(max_connections as usize));
        let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_AT_ONCE));
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.recv() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving,
                        // and say so once in a while rather than at every retry.
                        if let Some(times) = accept_failures.due() {
                            tracing::warn!(error = %e, times, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let io = hyper_util::rt::TokioIo::new(stream);
            let shared = shared.clone();
            let Ok(open) = connections.clone().try_acquire_owned() else {
                // One too many: read its request, answer 503, close; if even the refusals are
                // all taken, close it at once.
                let Ok(refusal) = refusals.clone().try_acquire_owned() else {
                    continue;
                };
                let service = hyper::service::service_fn(move |req| {
                    let answer = shared.refuse(&req, max_connections);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let conn = refusing.serve_connection(io, service);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIME, conn).await;
                    drop(refusal);
                });
                continue;
            };
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(shared.handle(req, peer).await) }
            });
            let conn = graceful.watch(http.serve_connection(io, service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(open);
            });
        }
        drop(listener);
        shared.slots.close();
        events.draining(shared.in_flight.load(std::sync::atomic::Ordering::Relaxed));
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(self.options.drain) => {
                tracing::warn!("in-flight requests did not finish within the drain time");
            }
            _ = shutdown.recv() => {}
        }
        Ok(())
    }
}

struct Shared {
    router: Arc<Router>,
    events: Arc<dyn Events>,
    slots: Arc<tokio::sync::Semaphore>,
    body: BodyPace,
    in_flight: std::sync::atomic::AtomicUsize,
}

impl Shared {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        use std::sync::atomic::Ordering;
        let start = Instant::now();
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let app = self.router.route(&path);
        /// Counts the request while it is handled, also if the client goes away mid-way.
        struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let counted = InFlight(&self.in_flight);
        let result = match &app {
            None => Err(RequestFailure::NoRoute),
            Some(app) => self.dispatch(app, req, peer).await,
        };
        drop(counted);
        let (response, failure) = match result {
            Ok(mut r) => {
                filter_set_cookies(r.headers_mut(), &self.router.options.hidden_cookies);
                (r, None)
            }
            Err(f) => (error_response(&f), Some(f)),
        };
        self.events.request(&AccessEntry {
            method: &method,
            path: &path,
            status: response.status().as_u16(),
            duration: start.elapsed(),
            app: app.as_deref().map(|a| a.name.as_str()),
            failure: failure.as_ref(),
        });
        response
    }

    /// The answer to a request on a connection over `limit`: 503, logged like any request.
    fn refuse<B>(&self, req: &Request<B>, limit: u32) -> Response<Body> {
        let failure = RequestFailure::TooManyConnections { limit };
        let response = error_response(&failure);
        self.events.request(&AccessEntry {
            method: req.method().as_str(),
            path: req.uri().path(),
            status: response.status().as_u16(),
            duration: Duration::ZERO,
            app: None,
            failure: Some(&failure),
        });
        response
    }

    async fn dispatch(
        &self,
        app: &Arc<Loaded>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, RequestFailure> {
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Taken before the body is read: a slow body holds one of the app's turns, not more.
        let mut held = app.admit(declared)?;
        let (mut parts, body) = req.into_parts();
        hide_cookies(&mut parts.headers, &self.router.options.hidden_cookies);
        // The whole body first, so a slot is only ever taken by a complete request.
        let body = body::read(body, app.max_body, self.body).await?;
        let slot = self.slots.clone().acquire_owned().await;
        held.push(slot.map_err(|_| RequestFailure::ShuttingDown)?);
        let req = Request::from_parts(parts, body);
        app.handle(req, peer, held).await
    }
}
