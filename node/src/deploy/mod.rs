//! Deploying an app: the target opened and checked through `qyvol-launch` (the same call as
//! `qyvol run`), its module stored by digest, its record committed, then the app started.

mod flags;
mod modules;

pub(crate) use modules::Durable;

use std::path::PathBuf;
use std::sync::Arc;

use qyvol_common::{Home, RuntimeKind};
use qyvol_launch::LaunchError;
use qyvol_runtime::{RunRequest, Wasm};

use crate::spec::spec_of;
use crate::state::{self, AppKind, AppRecord, Desired, RestartPolicy};
use crate::{AppView, DeployRequest, Node, NodeError};
use flags::{memory_total, operator, project_calls_health};

/// Deploys waiting beyond this many are refused with 429.
const MAX_WAITING_DEPLOYS: usize = 256;

impl Node {
    /// Deploys an app and starts it. Answers once the app is committed to the state: a deploy
    /// that returned is never lost; one cut short leaves nothing visible.
    pub async fn deploy(&self, req: DeployRequest) -> Result<AppView, NodeError> {
        self.deploy_labelled(req, None).await
    }

    /// A deploy whose source is recorded as `label` rather than its path (an upload's file
    /// name: the uploaded file itself is gone once its module is stored).
    pub(crate) async fn deploy_labelled(
        &self,
        req: DeployRequest,
        label: Option<String>,
    ) -> Result<AppView, NodeError> {
        // Run to the end even if the caller goes away: a deploy is committed and started, or
        // rolled back, never left half-way by a dropped connection.
        let node = self.clone();
        tokio::spawn(async move { node.deploy_here(req, label).await })
            .await
            .map_err(NodeError::internal)?
    }

    async fn deploy_here(
        &self,
        req: DeployRequest,
        label: Option<String>,
    ) -> Result<AppView, NodeError> {
        use std::sync::atomic::Ordering;
        let waiting = self.0.waiting.fetch_add(1, Ordering::SeqCst);
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _counted = Waiting(&self.0.waiting);
        if waiting >= MAX_WAITING_DEPLOYS {
            return Err(NodeError::Busy(waiting));
        }
        let _slot = self
            .0
            .deploys
            .acquire()
            .await
            .map_err(NodeError::internal)?;
        let update = req.update;
        let node = self.clone();
        let mut prepared = tokio::task::spawn_blocking(move || node.open_target(req))
            .await
            .map_err(NodeError::internal)??;
        if let Some(label) = label {
            prepared.record.source = label;
        }
        let lock = self.name_lock(&prepared.record.name);
        let _held = lock.lock().await;
        if let Some(old) = self.0.db.get(&prepared.record.name)?.filter(|r| r.accepted) {
            if update {
                return self.update_to(old, prepared).await;
            }
            return Err(NodeError::Exists(prepared.record.name.clone()));
        }
        if self.0.db.get(&prepared.record.name)?.is_some() {
            return Err(NodeError::Exists(prepared.record.name.clone()));
        }
        let unsynced = {
            let _modules = self.0.modules.lock().await;
            let unsynced = self.write_module(&prepared)?;
            self.keep_secrets(&prepared.record.name, &prepared.secrets)?;
            self.0.db.insert_new(&prepared.record)?;
            unsynced
        };
        // The module's syncs (its file, then its folder) run while the app is linked; the
        // commit that accepts the record waits for them.
        let mut durable = Durable::start(unsynced);
        self.event(
            &prepared.record.name,
            "deploy",
            Some(prepared.record.source.clone()),
        );
        let name = prepared.record.name.clone();
        let module = prepared.record.module.clone();
        let launched = self
            .launch(
                prepared.record,
                prepared.wasm,
                prepared.request,
                true,
                &mut durable,
            )
            .await;
        // A launched app's record was accepted as it was marked running.
        if let Err(e) = launched {
            // A deploy that cannot start (a route taken, a module that does not link) leaves
            // nothing behind: the caller is told why and nothing was deployed.
            self.halt(&name).await;
            // The module is in place (or not) before it is forgotten.
            let _ = durable.wait().await;
            let _modules = self.0.modules.lock().await;
            self.0.db.remove(&name)?;
            self.forget_module(&module)?;
            self.forget_secrets(&name);
            self.0.logs.remove(&name);
            self.0.metrics.forget(&name);
            return Err(e);
        }
        self.view(&name)
    }

    /// The blocking half of a deploy: open the target, merge grants, load the module.
    fn open_target(&self, req: DeployRequest) -> Result<Deployable, NodeError> {
        let mut op = operator(&req, &|name| self.create_volume(name, true).map(|v| v.path))?;
        op.state.keyvalue_dir = Some(self.0.paths.keyvalue());
        op.state.refusals = self.quota_sink();
        op.policy = Some(self.0.home.trust_policy());
        // Loopback, link-local and private addresses (the node's own API and app port among
        // them) need a grant naming the address, whatever the environment.
        op.block_private = Some(true);
        let restart = match &req.restart {
            None => RestartPolicy::No,
            Some(text) => text.parse().map_err(NodeError::BadRequest)?,
        };
        let source = PathBuf::from(&req.source);
        if req.source.is_empty() {
            return Err(NodeError::BadRequest(
                "the deploy names no source: give a manifest, bundle, wasm or image reference"
                    .into(),
            ));
        }
        if source.exists() && !source.is_absolute() {
            return Err(NodeError::BadRequest(format!(
                "`{}` is a relative path: the node needs an absolute one",
                req.source
            )));
        }
        let cache = &self.0.cache;
        let home = &self.0.home;
        let opened = qyvol_launch::open(&source, &op, Some(cache), &mut |r| {
            pull(home, r, req.insecure, None).map(drop)
        })?;
        let name = match &req.name {
            Some(n) => qyvol_common::AppName::try_from(n.clone())
                .map_err(|e| NodeError::BadRequest(format!("`--name {n}`: {e}")))?,
            None => opened.manifest.name.clone(),
        };
        op.state.owner = Some(name.clone());
        let name = name.to_string();
        let denials = qyvol_runtime::DenialSink::default();
        let launch = qyvol_launch::prepare(
            opened,
            &op,
            Some(cache),
            req.args.clone(),
            denials,
            qyvol_launch::Runner::Supervised,
        )?;
        let mut request = launch.request;
        // The operator's flags and their manifest's `mounts` alike.
        for m in &request.mounts {
            self.check_mount_host(&m.host)?;
        }
        let kind = match launch.manifest.runtime {
            RuntimeKind::Wasi => AppKind::Command,
            RuntimeKind::WasiHttp => AppKind::Http,
        };
        let max_body = qyvol_launch::grants::max_body(
            &launch.manifest,
            qyvol_launch::grants::DEFAULT_MAX_BODY,
        )
        .0;
        request.limits.memory_total = memory_total(&req)?;
        let flags::Grouping {
            project,
            calls,
            health,
        } = project_calls_health(&req)?;
        if health.is_some() && kind != AppKind::Http {
            return Err(NodeError::BadRequest(
                "`--health` probes an HTTP app's path; this app is a command".into(),
            ));
        }
        if let Some((called, _)) = calls.iter().find(|(_, app)| *app == name) {
            return Err(NodeError::BadRequest(format!(
                "`{name}` cannot call itself (`--calls {called}`): each call would make another"
            )));
        }
        request.calls.targets = calls.into();
        let mut spec = spec_of(
            &request,
            max_body,
            launch.wasm.precompiled.clone(),
            launch.wasm.info.uses(),
        );
        // Mounts of the node's volumes are recorded by name: `volume rm` refuses while used.
        let volumes = self.0.paths.volumes().canonicalize().ok();
        for m in &mut spec.mounts {
            if let Some(dir) = &volumes
                && m.host.parent() == Some(dir.as_path())
            {
                m.volume = m.host.file_name().map(|n| n.to_string_lossy().into_owned());
            }
        }
        if let Some(n) = req.concurrency {
            if kind != AppKind::Http {
                return Err(NodeError::BadRequest(
                    "`--concurrency` bounds an HTTP app's requests; this app is a command".into(),
                ));
            }
            if n == 0 {
                return Err(NodeError::BadRequest(
                    "`--concurrency 0` would refuse every request: give 1 or more".into(),
                ));
            }
            spec.concurrency = Some(n);
        }
        // The deploy's own manifest may reuse instances; a packaged one may only ask for less.
        let reuse = qyvol_launch::grants::reuse(
            &launch.manifest,
            launch.wasm.info.wasi,
            qyvol_runtime::serve::Reuse::FRESH,
        )?;
        if reuse != qyvol_runtime::serve::Reuse::FRESH {
            spec.reuse = Some((reuse.requests, reuse.concurrent));
        }
        spec.health = health;
        let record = AppRecord {
            name,
            source: req.source.clone(),
            module: format!("sha256:{}", launch.wasm.info.sha256),
            kind,
            route: (kind == AppKind::Http).then(|| launch.manifest.http.route.to_string()),
            spec,
            restart,
            desired: Desired::Running,
            status: state::Status::created(),
            created: state::now_ms(),
            accepted: false,
            project,
            previous: None,
        };
        Ok(Deployable {
            record,
            wasm: launch.wasm,
            request,
            secrets: op
                .state
                .secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        })
    }
}

/// A deploy, opened and checked, ready to be committed.
pub(crate) struct Deployable {
    pub(crate) record: AppRecord,
    pub(crate) wasm: Wasm,
    pub(crate) request: RunRequest,
    pub(crate) secrets: Vec<(String, qyvol_common::Secret)>,
}

/// Pulls `reference` into the store (a deploy's, or the dashboard's with its progress).
pub(crate) fn pull(
    home: &Home,
    reference: &qyvol_store::Reference,
    insecure: bool,
    progress: Option<Arc<dyn qyvol_store::Progress>>,
) -> Result<String, LaunchError> {
    let store = qyvol_store::Store::open(&home.store())?;
    // The node's own environment's `QYVOL_REGISTRY_TIMEOUT`, as for any `qyvol pull`.
    let remote = qyvol_store::Remote {
        progress,
        ..qyvol_store::Remote::of(&home.root, reference, insecure).map_err(LaunchError::Usage)?
    };
    Ok(store.pull(reference, &remote)?)
}
