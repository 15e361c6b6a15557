//! Serving the apps and the API until the node stops: each connection's head bounded in size
//! and time, connections bounded per listener, and on TCP the untrusted ones kept few and short.

use std::net::SocketAddr;
use std::time::Duration;

use super::listen::{Listeners, allowed_hosts};
use super::routes;
use crate::{Node, NodeError};

/// The most a request's head may be: with the cookies a browser sends, which any other local
/// server (an app among them) may have set for the host, up to Chromium's ~720 KiB; so no
/// such server can lock the owner out of the dashboard (HOSTILE row 42).
const MAX_HEAD: usize = 1024 * 1024;
/// Connections open at once on the Unix socket, and on the TCP API (all its addresses together).
const MAX_CONNECTIONS: usize = 256;

/// Serves the apps and the API until SIGINT, SIGTERM or `POST /api/v1/node/stop`, then stops
/// every instance (their records still say they should run, so they start with the next node).
pub async fn serve(node: Node, listeners: Listeners) -> Result<(), NodeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).map_err(NodeError::internal)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(NodeError::internal)?;
    let (stop_apps, apps_stopping) = tokio::sync::mpsc::channel(2);
    let router = node.router();
    let events = std::sync::Arc::new(crate::observe::AppEvents(node.clone()));
    let apps = tokio::spawn(router.serve(listeners.http, events, apps_stopping));
    let unix = routes(node.clone(), None);
    // The socket is the owner's alone (its folder is private): no stranger reaches it.
    let unix_task = tokio::spawn(accept(listeners.unix, unix, connection_cap(), None));
    // One router (and so one set of dashboard sessions) and one connection cap for every
    // address of the TCP API.
    let tcp_cap = connection_cap();
    let strangers = std::sync::Arc::new(Strangers::default());
    let tcp = listeners.api.first().map(|l| {
        let addr = l
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        routes(
            node.clone(),
            Some(allowed_hosts(addr, &node.options().api_hosts)),
        )
    });
    let tcp_tasks: Vec<_> = listeners
        .api
        .into_iter()
        .filter_map(|l| {
            Some(tokio::spawn(accept(
                l,
                tcp.clone()?,
                tcp_cap.clone(),
                Some(strangers.clone()),
            )))
        })
        .collect();
    // One sample a second of every app's load, for the dashboard's charts.
    let sampler = {
        let node = node.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if let Err(e) = node.sample() {
                    tracing::warn!(error = %e, "could not sample the apps' load");
                }
                if let Err(e) = node.check_health().await {
                    tracing::warn!(error = %e, "could not check the apps' health");
                }
            }
        })
    };
    tokio::select! {
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
        () = node.shutdown_requested() => {}
    }
    tracing::info!("the node is stopping");
    sampler.abort();
    unix_task.abort();
    for t in tcp_tasks {
        t.abort();
    }
    let _ = stop_apps.send(()).await;
    node.halt_all().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), apps).await;
    let _ = std::fs::remove_file(node.paths().socket());
    Ok(())
}

/// Something the API is served on.
trait Listen: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl std::future::Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Listen for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Listen for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// The connections one listener (or the TCP API's addresses together) may have open at once.
fn connection_cap() -> std::sync::Arc<tokio::sync::Semaphore> {
    std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS))
}

/// Connections of the TCP API no request has yet shown to be the owner's may hold this many of
/// its slots at once; one more closes the oldest of them.
const STRANGERS: usize = 32;
/// How long a connection may stay a stranger (a login, a challenge and a signed call take
/// milliseconds).
const STRANGER_TIME: Duration = Duration::from_secs(10);

/// The TCP API's connections not yet trusted, oldest first, each with what closes it: so
/// clients without the token, however many, hold at most [`STRANGERS`] slots and only for a
/// while, and the owner's next connection always finds room.
#[derive(Default)]
struct Strangers {
    next: std::sync::atomic::AtomicU64,
    waiting: std::sync::Mutex<std::collections::VecDeque<Stranger>>,
}

/// A connection not yet trusted: what closes it, and its place among the listener's
/// connections, held here so that evicting it frees the place at once (its task may run later).
struct Stranger {
    id: u64,
    close: std::sync::Arc<tokio::sync::Notify>,
    place: tokio::sync::OwnedSemaphorePermit,
}

impl Strangers {
    /// Counts a new connection in, closing the oldest stranger (and freeing its place) if all
    /// places are taken.
    fn admit(
        &self,
        place: tokio::sync::OwnedSemaphorePermit,
    ) -> (u64, std::sync::Arc<tokio::sync::Notify>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let close = std::sync::Arc::new(tokio::sync::Notify::new());
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.len() >= STRANGERS
            && let Some(oldest) = waiting.pop_front()
        {
            oldest.close.notify_one();
        }
        waiting.push_back(Stranger {
            id,
            close: close.clone(),
            place,
        });
        (id, close)
    }

    /// Takes connection `id` out; its place, unless it was evicted meanwhile.
    fn leave(&self, id: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let at = waiting.iter().position(|s| s.id == id)?;
        waiting.remove(at).map(|s| s.place)
    }
}

/// Serves `app` on each connection: heads bounded in size and time, connections bounded by
/// `connections`, and (for TCP) untrusted ones by `strangers`.
async fn accept<L: Listen>(
    listener: L,
    app: axum::Router,
    connections: std::sync::Arc<tokio::sync::Semaphore>,
    strangers: Option<std::sync::Arc<Strangers>>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .max_buf_size(MAX_HEAD);
    let mut failures = qyvol_runtime::Throttle::default();
    loop {
        let io = match listener.accept().await {
            Ok(io) => io,
            Err(e) => {
                if let Some(times) = failures.due() {
                    tracing::warn!(error = %e, times, "the API's accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(open) = connections.clone().try_acquire_owned() else {
            continue;
        };
        // Each connection keeps its own challenge (see `access::Pending`).
        let pending = crate::access::Pending::default();
        let app = tower_layer::Layer::layer(&axum::Extension(pending.clone()), app.clone());
        let service = hyper_util::service::TowerToHyperService::new(app);
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        // Admitted here, not in the task: an eviction frees its place before the next accept.
        let (open, stranger) = match &strangers {
            Some(strangers) => (None, Some((strangers.clone(), strangers.admit(open)))),
            None => (Some(open), None),
        };
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let open = match stranger {
                None => open,
                Some((strangers, (id, close))) => {
                    let trusted = tokio::select! {
                        _ = conn.as_mut() => false,
                        () = pending.trusted() => true,
                        () = close.notified() => false,
                        () = tokio::time::sleep(STRANGER_TIME) => false,
                    };
                    match (trusted, strangers.leave(id)) {
                        (true, Some(place)) => Some(place),
                        _ => return,
                    }
                }
            };
            let _ = conn.await;
            drop(open);
        });
    }
}
