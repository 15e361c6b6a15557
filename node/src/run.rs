//! Running an app whose record is committed: an HTTP app routed on the app port, a command
//! started under its supervisor; and ending whatever runs for an app.

use qyvol_runtime::serve::App;
use qyvol_runtime::{MemoryGauge, RunRequest, Wasm};

use crate::deploy::Durable;
use crate::spec::request_of;
use crate::state::{self, AppKind, AppRecord, State};
use crate::{Instance, Node, NodeError, supervise};

impl Node {
    /// Starts an app from its record (after a restart, or `start`).
    pub(crate) async fn start_record(
        &self,
        record: AppRecord,
        reset: bool,
    ) -> Result<(), NodeError> {
        let path = self.module_path(&record.module)?;
        let spec = record.spec.clone();
        let expected = record.module.clone();
        let cache = self.0.cache.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Wasm, NodeError> {
            let mut wasm = qyvol_runtime::load(&path, u64::MAX, Some(&cache))
                .map_err(|e| NodeError::Launch(e.into()))?;
            if format!("sha256:{}", wasm.info.sha256) != expected {
                return Err(NodeError::State(format!(
                    "the stored module `{}` does not match its digest",
                    path.display()
                )));
            }
            wasm.precompiled = spec.precompiled.filter(|p| p.is_file());
            Ok(wasm)
        })
        .await
        .map_err(NodeError::internal)?;
        let wasm = match loaded {
            Ok(w) => w,
            Err(e) => {
                self.failed(&record.name, &e.to_string());
                return Err(e);
            }
        };
        let mut request = request_of(&record.spec)?;
        if let Err(e) = self.attach_state(&record, &mut request) {
            self.failed(&record.name, &e.to_string());
            return Err(e);
        }
        self.launch(record, wasm, request, reset, &mut Durable::default())
            .await
    }

    fn failed(&self, name: &str, why: &str) {
        self.0.logs.note(name, why);
        let _ = self.0.db.update(name, |r| {
            r.status.state = State::Failed;
            r.status.error = Some(why.to_string());
        });
        self.event(name, "fail", Some(why.to_string()));
    }

    /// Starts an app whose record is committed: routes an HTTP app, or starts a command's
    /// supervisor. `reset` clears the restart count (a deploy or an operator's start).
    pub(crate) async fn launch(
        &self,
        record: AppRecord,
        wasm: Wasm,
        mut request: RunRequest,
        reset: bool,
        durable: &mut Durable,
    ) -> Result<(), NodeError> {
        let name = record.name.clone();
        let output = match self.0.logs.output(&name) {
            Ok(o) => o,
            Err(e) => {
                let why = format!("cannot open the app's log: {e}");
                self.failed(&name, &why);
                return Err(NodeError::Internal(why));
            }
        };
        let gauge = MemoryGauge::default();
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), gauge.clone());
        let engine = self.wire(
            &record,
            &mut request,
            Some(output.clone()),
            Some(gauge),
            wasm.info.wasi,
        );
        let result = match record.kind {
            AppKind::Http => {
                self.route(&record, wasm, request, engine, output, durable)
                    .await
            }
            AppKind::Command => {
                supervise::start(self, &record, wasm, request, engine, reset, durable).await
            }
        };
        if let Err(e) = &result {
            self.failed(&name, &e.to_string());
        }
        result
    }

    /// What the node gives every instance of `record`'s app, however it starts (deployed,
    /// restarted, updated): where its output goes (`output`, when given), the apps it may call,
    /// where its memory is counted; and the engine it runs on — the one `launch` judged the
    /// deploy's precompiled code for, decided again from the record when the node restarts.
    pub(crate) fn wire(
        &self,
        record: &AppRecord,
        request: &mut RunRequest,
        output: Option<qyvol_runtime::Output>,
        gauge: Option<MemoryGauge>,
        wasi: qyvol_runtime::WasiGeneration,
    ) -> qyvol_runtime::EngineConfig {
        if let Some(output) = output {
            request.output = output;
        }
        // Apps it may call by name, answered by the node's router in process.
        request.calls = qyvol_runtime::calls::Calls {
            targets: record.spec.calls.clone().into(),
            dialer: Some(self.0.router.dialer(Some(self.app_events()))),
        };
        request.memory_gauge = gauge;
        request.node_memory = Some(self.0.memory.clone());
        qyvol_runtime::EngineConfig::decide(
            qyvol_launch::Runner::Supervised.purpose(record.kind.runtime()),
            &request.limits,
            wasi,
        )
    }

    async fn route(
        &self,
        record: &AppRecord,
        wasm: Wasm,
        request: RunRequest,
        engine: qyvol_runtime::EngineConfig,
        output: qyvol_runtime::Output,
        durable: &mut Durable,
    ) -> Result<(), NodeError> {
        let loaded = self.load_http(record, wasm, request, engine).await?;
        // Accepted only once its module outlives a crash (before the route answers).
        durable.wait().await?;
        self.0
            .router
            .insert(loaded)
            .map_err(|e| NodeError::Conflict(e.to_string()))?;
        self.0
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.name.clone(), output);
        // Started: a deploy's record is accepted in the same commit (one write, not two).
        self.0.db.update(&record.name, |r| {
            r.accepted = true;
            r.status.state = State::Running;
            r.status.started = Some(state::now_ms());
            r.status.error = None;
        })?;
        self.event(&record.name, "start", None);
        Ok(())
    }

    /// Compiles and links an HTTP app on the node's router, not yet routed.
    pub(crate) async fn load_http(
        &self,
        record: &AppRecord,
        wasm: Wasm,
        request: RunRequest,
        engine: qyvol_runtime::EngineConfig,
    ) -> Result<qyvol_runtime::serve::LoadedApp, NodeError> {
        let route = record
            .route
            .as_deref()
            .unwrap_or("/")
            .parse()
            .map_err(|e: String| NodeError::State(e))?;
        let app = App {
            name: record.name.clone(),
            route,
            max_body: record.spec.max_body,
            concurrency: record.spec.concurrency,
            reuse: record
                .spec
                .reuse
                .map_or(qyvol_runtime::serve::Reuse::FRESH, |(r, c)| {
                    qyvol_runtime::serve::Reuse {
                        requests: r,
                        concurrent: c,
                    }
                }),
            wasm,
            request,
            engine,
        };
        let router = self.0.router.clone();
        let cache = self.0.cache.clone();
        tokio::task::spawn_blocking(move || {
            router.load(
                app,
                qyvol_runtime::Compilation {
                    cache: Some(&cache),
                    progress: None,
                    compiler: qyvol_runtime::Compiler::Cranelift,
                },
            )
        })
        .await
        .map_err(NodeError::internal)?
        .map_err(|e| NodeError::Launch(e.into()))
    }

    /// Ends whatever runs for `name` (its supervisor, or its route); the record is unchanged.
    pub(crate) async fn halt(&self, name: &str) {
        let instance = self
            .0
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some(task) = instance.map(Instance::end) {
            let _ = task.await;
        }
        if self.0.router.remove(name) {
            // Requests in flight still hold the app's log; their lines finish on their own.
            self.0
                .outputs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name);
        }
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    pub(crate) fn is_live(&self, name: &str) -> bool {
        self.0
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
            || self
                .0
                .outputs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(name)
    }
}
