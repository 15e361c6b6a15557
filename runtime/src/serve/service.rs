//! `wasi:http/service` components (WASI 0.3's `wasi:http/handler`), served through
//! wasmtime-wasi-http's `ProxyHandler`: it runs an instance's event loop until the bodies of its
//! responses are written and its tasks end, and asks our [`Worker`] how many requests an
//! instance may take. Qyvol's default is one: a fresh instance per request, as for 0.2 handlers.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use tokio::sync::oneshot;
use wasmtime::StoreContextMut;
use wasmtime::component::GuestTaskId;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, Proxy, ProxyHandler, ShouldAccept,
    WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

use super::{Body, Held, Host, Loaded, RequestFailure, failure_of, new_store};
use crate::compile::Compilation;
use crate::limits::Limits;
use crate::prepared::finish;
use crate::request::{Outcome, Wasm};
use crate::{RuntimeError, wasi};

/// How long an instance that may take more requests waits idle for one before it is dropped.
const IDLE: Duration = Duration::from_secs(10);

/// The requests one instance of an app takes: in all, and at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    pub requests: u32,
    pub concurrent: u32,
}

impl Reuse {
    /// A fresh instance for every request: no state survives a request, nothing one client
    /// sent reaches another's.
    pub const FRESH: Self = Self {
        requests: 1,
        concurrent: 1,
    };
}

pub(crate) struct Template {
    pre: ServicePre<Host<WasiCtx>>,
    reuse: Reuse,
    /// Made at the first request, when the app it serves exists.
    handler: OnceLock<ProxyHandler<Service>>,
}

impl Template {
    /// Links `wasm` (already known to speak WASI 0.3) as a `wasi:http/service` component, or
    /// says why it is not one.
    pub(crate) fn new(
        rt: &super::Runtime,
        wasm: &Wasm,
        limits: &Limits,
        how: Compilation<'_>,
        reuse: Reuse,
    ) -> Result<Self, RuntimeError> {
        let pre = rt.link_component(wasm, limits, how)?;
        let pre = ServicePre::new(pre).map_err(|_| RuntimeError::Invalid {
            path: wasm.path.clone(),
            reason: "the component does not export `wasi:http/handler@0.3`: it is not an HTTP handler (a command needs `runtime: wasi` and `qyvol run`)".into(),
        })?;
        Ok(Self {
            pre,
            reuse,
            handler: OnceLock::new(),
        })
    }

    /// Instantiates the template once in a fresh store with the app's WASI context, without
    /// calling it: the part of a request that is instantiation.
    pub(crate) async fn instantiate(&self, app: &Loaded) -> wasmtime::Result<()> {
        let mut b = wasi::builder(&app.request, &app.mounts, &app.network)?;
        let mut store =
            new_store(&app.rt, app, b.build()).map_err(|f| wasmtime::format_err!("{f:?}"))?;
        self.pre.instantiate_async(&mut store).await.map(drop)
    }

    /// Hands the request to an instance (a new one unless the app reuses them) and returns
    /// the response once the handler returns it; its body streams as the guest writes it.
    pub(crate) async fn handle(
        &self,
        app: &Arc<Loaded>,
        req: Request<Bytes>,
        held: Held,
    ) -> Result<Response<Body>, RequestFailure> {
        let req = with_full_uri(req)?;
        let handler = self.handler.get_or_init(|| {
            ProxyHandler::new(Service {
                pre: self.pre.clone(),
                app: Arc::downgrade(app),
                reuse: self.reuse,
            })
        });
        let req = req.map(|body| {
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        });
        let (tx, failed) = oneshot::channel();
        let err = match handler.handle((tx, held), req).await {
            Ok(response) => return Ok(response),
            Err(err) => err,
        };
        if err.is::<ExpirationError>() {
            return Err(failure_of(finish(None, &app.request)));
        }
        if let Some(code) = err.downcast_ref::<ErrorCode>() {
            return Err(RequestFailure::Protocol(format!(
                "the handler answered with an error: {code:?}"
            )));
        }
        let err = match err.downcast::<InstantiationError<(oneshot::Sender<Outcome>, Held)>>() {
            Ok(failed) => match Arc::try_unwrap(failed.error) {
                Ok(err) => err,
                Err(shared) => wasmtime::format_err!("{shared:#}"),
            },
            Err(err) => err,
        };
        // A trap ends the instance's event loop: the request learns only that, and the worker
        // then says how the instance ended.
        if err.is::<wasmtime_wasi_http::handler::TrapOrPanicError>()
            && let Ok(outcome) = failed.await
        {
            return Err(failure_of(outcome));
        }
        Err(failure_of(finish(Some(Err(err)), &app.request)))
    }
}

/// The request with the URI its handler sees: scheme `http` and the authority of its `Host`
/// header (a server's request line carries the path only), as `wasi:http` 0.2 gives them.
fn with_full_uri(req: Request<Bytes>) -> Result<Request<Bytes>, RequestFailure> {
    use hyper::http::uri::{Authority, Scheme, Uri};
    let (mut parts, body) = req.into_parts();
    let authority = match parts.uri.authority() {
        Some(a) => a.clone(),
        None => {
            let mut hosts = parts.headers.get_all(hyper::header::HOST).iter();
            let (Some(host), None) = (hosts.next(), hosts.next()) else {
                return Err(RequestFailure::BadRequest(
                    "the request needs exactly one `Host` header".into(),
                ));
            };
            Authority::try_from(host.as_bytes())
                .ok()
                .filter(|a| !a.as_str().contains('@'))
                .ok_or_else(|| {
                    RequestFailure::BadRequest(
                        "the `Host` header is not a host name or address with a port".into(),
                    )
                })?
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| RequestFailure::BadRequest(format!("the request's URI: {e}")))?;
    Ok(Request::from_parts(parts, body))
}

/// An app's instances, as `ProxyHandler` makes and drives them.
struct Service {
    pre: ServicePre<Host<WasiCtx>>,
    app: Weak<Loaded>,
    reuse: Reuse,
}

impl HandlerState for Service {
    type StoreData = Host<WasiCtx>;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host<WasiCtx>, Expiry, Worker>> {
        let app = self
            .app
            .upgrade()
            .ok_or_else(|| wasmtime::format_err!("the app is no longer served"))?;
        let mut b = wasi::builder(&app.request, &app.mounts, &app.network)?;
        let mut store =
            new_store(&app.rt, &app, b.build()).map_err(|f| wasmtime::format_err!("{f:?}"))?;
        if self.reuse != Reuse::FRESH {
            // The store outlives a request: each request's time is kept by the worker.
            store.data_mut().deadline = None;
        }
        let proxy = Proxy::P3(self.pre.instantiate_async(&mut store).await?);
        let timeout = app.request.limits.timeout;
        Ok(Instance {
            store,
            proxy,
            view: <Host<WasiCtx> as wasmtime_wasi_http::WasiHttpView>::http,
            expiration: Expiry {
                timeout,
                request_start: None,
                timer: None,
                removed: Box::pin(app.removed()),
            },
            state: Worker {
                app,
                reuse: self.reuse,
                waiting: Mutex::new(Vec::new()),
                held: Mutex::new(Vec::new()),
            },
        })
    }
}

/// One instance's state: how many requests it takes, who to tell how it ended, and the turn
/// and slot of the request that made it, kept while it lives (a reused instance counts once).
struct Worker {
    app: Arc<Loaded>,
    reuse: Reuse,
    waiting: Mutex<Vec<oneshot::Sender<Outcome>>>,
    held: Mutex<Held>,
}

impl WorkerState for Worker {
    type StoreData = Host<WasiCtx>;
    /// Told how the instance ended when it ends badly; the request's turn and slot.
    type RequestData = (oneshot::Sender<Outcome>, Held);

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.requests as usize {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.concurrent as usize {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host<WasiCtx>>,
        (failed, held): (oneshot::Sender<Outcome>, Held),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failed);
        let mut kept = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_empty() {
            *kept = held;
        }
        match self.app.request.limits.timeout {
            Some(limit) => Box::pin(tokio::time::sleep(limit)),
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, _store: wasmtime::Store<Host<WasiCtx>>, result: wasmtime::Result<()>) {
        let Err(err) = result else { return };
        tracing::debug!(app = %self.app.name, error = %format!("{err:#}"), "instance ended");
        let outcome = finish(Some(Err(err)), &self.app.request);
        for failed in self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = failed.send(outcome.clone());
        }
    }
}

/// When an instance must end, polled outside its event loop (a guest busy in a loop or a host
/// call holds that loop): a request past its time limit, or an instance idle too long.
struct Expiry {
    timeout: Option<Duration>,
    /// When the latest request started: work after its response counts from there, so the
    /// time limit bounds the instance's life as it bounds a 0.2 handler's.
    request_start: Option<Instant>,
    /// The timer for the state it was set for.
    timer: Option<(WorkerStatus, Instant, Pin<Box<tokio::time::Sleep>>)>,
    /// Resolves when the app is removed: its instances end then.
    removed: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if self.removed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let (limit, start) = match status {
            WorkerStatus::Idle => (Some(IDLE), start),
            WorkerStatus::Requests => {
                self.request_start = Some(start);
                (self.timeout, start)
            }
            WorkerStatus::PostReturn => (self.timeout, self.request_start.unwrap_or(start)),
        };
        let Some(limit) = limit else {
            return Poll::Pending;
        };
        let current = matches!(&self.timer, Some((s, t, _)) if *s == status && *t == start);
        if !current {
            let deadline = tokio::time::Instant::from_std(start + limit);
            self.timer = Some((status, start, Box::pin(tokio::time::sleep_until(deadline))));
        }
        match &mut self.timer {
            Some((_, _, sleep)) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}
