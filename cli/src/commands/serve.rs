//! `qyvol serve FILE... [--listen ADDR]`: serves HTTP handlers (`runtime: wasi-http`) on one
//! port, each at its `http.route`, with an access log line per request on stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use qyvol_common::{ByteSize, DurationSpec, RuntimeKind};
use qyvol_runtime::serve::{
    AccessEntry, App, BodyPace, Events, RequestFailure, ServeOptions, Server,
};
use qyvol_runtime::{Outcome, WasmKind};

use super::run::{GrantArgs, code_trust, requests_not_granted};
use crate::exit::{Code, Failure};
use crate::i18n::{Lang, Msg, lang};
use crate::ui::{Ui, sanitize};

/// Serve HTTP handlers (runtime: wasi-http) from .qyv manifests
#[derive(Debug, Args)]
pub struct ServeCommand {
    #[command(flatten)]
    grants: GrantArgs,

    /// Address to listen on (port 0 picks a free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Access log as JSON lines (one object per request) instead of text
    #[arg(long)]
    json: bool,

    /// Largest request body a handler accepts unless its manifest sets `http.max_body`
    #[arg(long, value_name = "SIZE", default_value = "10MiB")]
    max_body: ByteSize,

    /// Requests one instance of a WASI 0.3 handler takes before a fresh one is made, unless
    /// its manifest sets `http.reuse` (1: a fresh instance per request)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    reuse: u32,

    /// Requests one instance of a WASI 0.3 handler takes at once (at most --reuse), unless
    /// its manifest sets `http.concurrent_reuse`
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    concurrent_reuse: u32,

    /// Requests handled at once (more wait for a slot)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_concurrency: u32,

    /// Connections open at once; one more is answered 503 and closed
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: u32,

    /// How long a request's body may take to arrive (408 after), before it waits for a slot
    #[arg(long, value_name = "DUR", default_value = "60s")]
    body_timeout: DurationSpec,

    /// How long in-flight requests may take to finish after SIGINT/SIGTERM
    #[arg(long, value_name = "DUR", default_value = "30s")]
    drain: DurationSpec,

    /// No status lines and no access log (failures are still reported)
    #[arg(short, long)]
    quiet: bool,

    /// Don't use the compile cache
    #[arg(long)]
    no_cache: bool,

    /// Allow plain HTTP to a registry that is not on loopback (when FILE is pulled)
    #[arg(long)]
    insecure: bool,

    /// The .qyv manifests to serve (or .qyvc bundles, image references, .wasm components)
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

impl ServeCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: self.quiet };
        let cache = (!self.no_cache).then(super::cache::open).transpose()?;
        let op = self.grants.operator()?;
        let log = Arc::new(AccessLog::start(self.json, self.quiet));
        let mut apps = Vec::with_capacity(self.files.len());
        for file in &self.files {
            let opened = qyvol_launch::open(file, &op, cache.as_ref(), &mut |r| {
                super::registry::pull(r, self.insecure, &ui).map(drop)
            })?;
            // A bare `.wasm` is what it exports, as `wasmtime serve app.wasm` reads it.
            let bare = opened.manifest.source.is_none() && opened.image.is_none();
            let not_a_handler = || {
                let fix = if bare {
                    "a bare module is served only when it is a component exporting `wasi:http/incoming-handler` (WASI 0.2) or `wasi:http/handler` (0.3); for a WASI program served CGI-style, write a manifest with `runtime: wasi-http`"
                } else {
                    "run it with `qyvol run`, or set `runtime: wasi-http` for a handler"
                };
                Failure::new(
                    Code::BadManifest,
                    Msg::NotAHandler,
                    format!("`{}` is a command: {fix}", file.display()),
                )
            };
            if !bare && opened.manifest.runtime != RuntimeKind::WasiHttp {
                return Err(not_a_handler());
            }
            requests_not_granted(&ui, &opened.manifest.requested, &op);
            // Refusals go to the access log, in its format and order.
            let sink = log.clone();
            let denials = qyvol_runtime::DenialSink::new(move |d| sink.denied(d));
            let launch = qyvol_launch::prepare(
                opened,
                &op,
                cache.as_ref(),
                Vec::new(),
                denials,
                qyvol_launch::Runner::Foreground,
            )?;
            if launch.manifest.runtime != RuntimeKind::WasiHttp {
                return Err(not_a_handler());
            }
            code_trust(&ui, launch.code);
            super::run::key_value_store(&ui, &launch.request);
            apps.push(App {
                name: launch.manifest.name.to_string(),
                route: launch.manifest.http.route.clone(),
                max_body: qyvol_launch::grants::max_body(&launch.manifest, self.max_body).0,
                concurrency: None,
                reuse: qyvol_launch::grants::reuse(
                    &launch.manifest,
                    launch.wasm.info.wasi,
                    qyvol_runtime::serve::Reuse {
                        requests: self.reuse,
                        concurrent: self.concurrent_reuse,
                    },
                )?,
                wasm: launch.wasm,
                request: launch.request,
                engine: launch.engine,
            });
        }
        let routes: Vec<_> = apps
            .iter()
            .map(|a| {
                let kind = match a.wasm.info.kind {
                    WasmKind::Component => Msg::KindComponent,
                    WasmKind::CoreModule => Msg::KindCgi,
                };
                (a.route.to_string(), a.name.clone(), kind.text(lang()))
            })
            .collect();

        let spinner = crate::ui::CompileSpinner::new(self.quiet);
        let how = qyvol_runtime::Compilation {
            cache: cache.as_ref(),
            progress: spinner
                .as_ref()
                .map(|s| s as &dyn qyvol_runtime::CompileProgress),
            // Servers run Cranelift's code: a handler lives for many requests.
            compiler: qyvol_runtime::Compiler::Cranelift,
        };
        let server = Server::new(
            apps,
            how,
            ServeOptions {
                max_concurrency: self.max_concurrency.max(1),
                max_connections: self.max_connections.max(1),
                body: BodyPace {
                    timeout: self.body_timeout.0,
                    ..BodyPace::default()
                },
                drain: self.drain.0,
                ..ServeOptions::default()
            },
        )?;
        drop(spinner);
        if !server.pooling() {
            ui.status(Msg::PoolingOff);
        }
        let listener = std::net::TcpListener::bind(self.listen).map_err(|e| {
            Failure::new(
                Code::Usage,
                Msg::CannotListen,
                format!(
                    "{}: {e}; choose another address with `--listen`",
                    self.listen
                ),
            )
        })?;
        let bound = listener.local_addr().map_err(Failure::internal)?;
        for (route, name, kind) in &routes {
            ui.status(Msg::Route(&sanitize(route), &sanitize(name), kind));
        }
        // Always printed: scripts (and tests) read the address from it when the port was 0.
        Ui { quiet: false }.status(Msg::Serving(&format!("http://{bound}/")));
        let served = server.run(listener, log.clone());
        log.finish();
        served?;
        ui.status(Msg::Stopped);
        Ok(ExitCode::SUCCESS)
    }
}

/// One line per request on stderr: text (`GET /hello 200 1.2ms http-hello`) or JSON. Lines go
/// through a channel to a writer thread, which writes whatever has queued up in one go: a busy
/// server makes one `write` per batch rather than per request.
struct AccessLog {
    json: bool,
    quiet: bool,
    lines: std::sync::Mutex<Option<std::sync::mpsc::Sender<String>>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AccessLog {
    fn start(json: bool, quiet: bool) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let writer = std::thread::Builder::new()
            .name("qyvol-access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(std::io::stderr());
                while let Ok(line) = rx.recv() {
                    let _ = writeln!(out, "{line}");
                    while let Ok(more) = rx.try_recv() {
                        let _ = writeln!(out, "{more}");
                    }
                    let _ = out.flush();
                }
            })
            .ok();
        Self {
            json,
            quiet,
            lines: std::sync::Mutex::new(writer.is_some().then_some(tx)),
            writer: std::sync::Mutex::new(writer),
        }
    }

    /// A connection or bind the grants refused: always logged (it is how users learn what to
    /// grant), as text or as a JSON object.
    fn denied(&self, d: &qyvol_runtime::Denial) {
        let line = if self.json {
            serde_json::json!({
                "event": "network-denied",
                "kind": d.kind.as_str(),
                "target": d.target,
                "reason": d.reason.as_str(),
            })
            .to_string()
        } else {
            crate::ui::denial_text(d)
        };
        self.write(line);
    }

    /// Writes what is queued and stops the writer.
    fn finish(&self) {
        drop(self.lines.lock().ok().and_then(|mut l| l.take()));
        if let Some(w) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = w.join();
        }
    }

    fn write(&self, line: String) {
        let sent = match self.lines.lock() {
            Ok(l) => match l.as_ref() {
                Some(tx) => tx.send(line).map_err(|e| e.0),
                None => Err(line),
            },
            Err(_) => Err(line),
        };
        // No writer (it could not start, or it stopped): write directly.
        if let Err(line) = sent {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

impl Events for AccessLog {
    fn request(&self, e: &AccessEntry<'_>) {
        if self.quiet && e.failure.is_none() {
            return;
        }
        let error = e.failure.map(|f| failure_text(f, lang()));
        let ms = e.duration.as_secs_f64() * 1000.0;
        let line = if self.json {
            serde_json::json!({
                "event": "request",
                "method": e.method,
                "path": e.path,
                "status": e.status,
                "duration_ms": (ms * 1000.0).round() / 1000.0,
                "app": e.app,
                "error": error,
            })
            .to_string()
        } else {
            let mut line = format!(
                "{} {} {} {ms:.1}ms {}",
                e.method,
                sanitize(e.path),
                e.status,
                e.app.unwrap_or("-")
            );
            if let Some(err) = &error {
                line.push_str(" — ");
                line.push_str(&sanitize(err));
            }
            line
        };
        self.write(line);
    }

    fn draining(&self, in_flight: usize) {
        // Through the writer, so it comes after the requests already logged.
        if !self.quiet {
            self.write(Msg::Draining(in_flight).text(lang()));
        }
    }
}

/// Why a request failed, in the user's language, for the access log.
fn failure_text(f: &RequestFailure, lang: Lang) -> String {
    match f {
        RequestFailure::NoRoute => Msg::NoRoute.text(lang),
        RequestFailure::BodyTooLarge { limit } => {
            Msg::BodyTooLarge(&ByteSize(*limit).to_string()).text(lang)
        }
        RequestFailure::BodyTimeout { limit, received } => {
            Msg::BodyTimeout(&DurationSpec(*limit).to_string(), *received).text(lang)
        }
        RequestFailure::BodyTooSlow {
            rate,
            received,
            elapsed,
        } => {
            Msg::BodyTooSlow(*rate, *received, &format!("{:.1}s", elapsed.as_secs_f64())).text(lang)
        }
        RequestFailure::TooManyConnections { limit } => Msg::TooManyConnections(*limit).text(lang),
        RequestFailure::AppBusy { limit } => Msg::AppBusy(*limit).text(lang),
        RequestFailure::BadRequest(why) => why.clone(),
        RequestFailure::Protocol(why) => why.clone(),
        RequestFailure::ShuttingDown => Msg::ShuttingDown.text(lang),
        RequestFailure::Handler(outcome) => match outcome {
            Outcome::Trapped { trap, backtrace } => {
                let at = backtrace
                    .first()
                    .map(|f| format!(" @ {f}"))
                    .unwrap_or_default();
                format!("trap: {trap}{at}")
            }
            Outcome::Exited(code) => Msg::ExitedWith(*code).text(lang),
            other => other.explain(lang).unwrap_or_default(),
        },
    }
}
