//! Updates with zero downtime, and rollback. An HTTP app's new version is compiled and linked
//! beside the old one, must answer its health check (when it has one) in process, and only
//! then takes the route in one swap: requests in flight finish on the old version, new ones
//! reach the new. A version that fails is dropped and the old one keeps serving, with the
//! reason. The version replaced is kept in the record for `qyvol rollback`, until the next
//! update. A command's new version starts after its old one ends (it serves no requests).

use std::time::{Duration, Instant};

use qyvol_runtime::{RunRequest, Wasm};

use crate::deploy::Deployable;
use crate::deploy::Durable;
use crate::spec::request_of;
use crate::state::{AppKind, AppRecord, State};
use crate::{AppView, Node, NodeError};

/// How long a new version may take to answer its health check with a 2xx.
const READY_TIME: Duration = Duration::from_secs(30);

impl Node {
    /// Replaces `old` (committed, its name locked by the caller) with the deploy `new`.
    /// One project's app is updated only from that project (and a hand-deployed one only by
    /// hand): a project cannot take over an app it did not deploy.
    pub(crate) async fn update_to(
        &self,
        old: AppRecord,
        new: Deployable,
    ) -> Result<AppView, NodeError> {
        if old.project != new.record.project {
            let whose = |p: &Option<String>| match p {
                Some(p) => format!("project `{p}`"),
                None => "no project".to_string(),
            };
            return Err(NodeError::Conflict(format!(
                "`{}` belongs to {}, and this update comes from {}: update it from its own project, or remove it first",
                old.name,
                whose(&old.project),
                whose(&new.record.project)
            )));
        }
        {
            let _modules = self.0.modules.lock().await;
            self.store_module(&new)?;
        }
        let mut record = new.record;
        record.previous = Some(Box::new(AppRecord {
            previous: None,
            ..old.clone()
        }));
        let result = self.swap(&old, record, new.wasm, new.request).await;
        if result.is_ok() {
            self.keep_secrets(&old.name, &new.secrets)?;
        }
        self.settle_modules(&old).await;
        result?;
        self.event(&old.name, "update", Some(old.source.clone()));
        self.view(&old.name)
    }

    /// Returns app `name` to the version its last update replaced.
    pub async fn rollback(&self, name: &str) -> Result<AppView, NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        let old = self
            .0
            .db
            .get(name)?
            .filter(|r| r.accepted)
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        let Some(previous) = old.previous.clone() else {
            return Err(NodeError::Conflict(format!(
                "`{name}` has no earlier version to return to: it was not updated since it was deployed (or it was rolled back already)"
            )));
        };
        let record = *previous;
        let path = self.module_path(&record.module)?;
        let cache = self.0.cache.clone();
        let wasm =
            tokio::task::spawn_blocking(move || qyvol_runtime::load(&path, u64::MAX, Some(&cache)))
                .await
                .map_err(NodeError::internal)?
                .map_err(|e| NodeError::Launch(e.into()))?;
        let mut request = request_of(&record.spec)?;
        self.attach_state(&record, &mut request)?;
        let result = self.swap(&old, record, wasm, request).await;
        self.settle_modules(&old).await;
        result?;
        self.event(name, "rollback", None);
        self.view(name)
    }

    /// Runs `record`'s version in place of `old`'s and commits it; on failure `old` runs on.
    async fn swap(
        &self,
        old: &AppRecord,
        mut record: AppRecord,
        wasm: Wasm,
        mut request: RunRequest,
    ) -> Result<(), NodeError> {
        if record.kind != old.kind {
            return Err(NodeError::Conflict(format!(
                "`{}` is {} app and the new version {}: remove it and deploy again",
                old.name,
                if old.kind == AppKind::Http {
                    "an HTTP"
                } else {
                    "a command"
                },
                if record.kind == AppKind::Http {
                    "is an HTTP app"
                } else {
                    "is a command"
                }
            )));
        }
        record.name = old.name.clone();
        record.created = old.created;
        record.accepted = true;
        record.desired = crate::state::Desired::Running;
        match record.kind {
            AppKind::Http if self.0.router.instances(&old.name).is_some() => {
                // The running version's log and memory gauge carry over to the new one.
                let output = self
                    .0
                    .outputs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&old.name)
                    .cloned();
                let gauge = self
                    .0
                    .gauges
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&old.name)
                    .cloned();
                let engine = self.wire(&record, &mut request, output, gauge, wasm.info.wasi);
                let loaded = self.load_http(&record, wasm, request, engine).await?;
                if let Some(health) = &record.spec.health {
                    ready(&loaded, &health.path).await.map_err(|why| {
                        NodeError::Conflict(format!(
                            "the new version of `{}` is not ready ({why}); the old version keeps serving",
                            old.name
                        ))
                    })?;
                }
                self.0
                    .router
                    .replace(loaded)
                    .map_err(|e| NodeError::Conflict(e.to_string()))?;
                record.status = old.status.clone();
                record.status.state = State::Running;
                record.status.started = Some(crate::state::now_ms());
                record.status.error = None;
                self.0.db.update(&old.name, |r| *r = record.clone())?;
            }
            _ => {
                // Not running (or a command): the old one ends, the new one starts; if it
                // cannot, the old one starts again.
                self.halt(&old.name).await;
                record.status = crate::state::Status::created();
                self.0.db.update(&old.name, |r| *r = record.clone())?;
                if let Err(e) = self
                    .launch(record, wasm, request, true, &mut Durable::default())
                    .await
                {
                    self.0.db.update(&old.name, |r| *r = old.clone())?;
                    let _ = self.start_record(old.clone(), true).await;
                    return Err(NodeError::Conflict(format!(
                        "the new version of `{}` could not start ({e}); the old version runs again",
                        old.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// After an update or rollback: the modules no record (nor kept version) names go.
    async fn settle_modules(&self, old: &AppRecord) {
        let _modules = self.0.modules.lock().await;
        for m in std::iter::once(&old.module).chain(old.previous.as_ref().map(|p| &p.module)) {
            let _ = self.forget_module(m);
        }
    }
}

/// Waits until `app` answers `GET path` with a 2xx, for at most [`READY_TIME`].
async fn ready(app: &qyvol_runtime::serve::LoadedApp, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIME;
    loop {
        // One check may not outlast the window: a handler that never answers fails it.
        let left = deadline.saturating_duration_since(Instant::now());
        let why = match tokio::time::timeout(left.min(crate::health::PROBE_TIME), app.probe(path))
            .await
        {
            Ok(Ok(status)) if (200..300).contains(&status) => return Ok(()),
            Ok(Ok(status)) => format!("`GET {path}` answered {status}"),
            Ok(Err(e)) => format!("`GET {path}` failed: {e}"),
            Err(_) => format!(
                "`GET {path}` gave no answer within {} s",
                crate::health::PROBE_TIME.as_secs()
            ),
        };
        if Instant::now() >= deadline {
            return Err(why);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
