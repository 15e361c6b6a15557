//! What the operator does to deployed apps (start, stop, restart, remove), and what the node
//! does to all of them when it starts (reconcile) and stops.

use std::time::Duration;

use crate::state::{Desired, RestartPolicy, State};
use crate::{AppView, Node, NodeError};

impl Node {
    /// Starts every app that should run, as the state says: after a restart or a crash, what
    /// was running runs again. Modules no record names (a deploy cut short) are removed, and
    /// so are uploads a killed node left half-read (none is in flight before the node serves).
    pub async fn reconcile(&self) -> Result<(), NodeError> {
        if let Ok(left) = std::fs::read_dir(self.0.paths.uploads()) {
            for entry in left.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let mut records = self.0.db.list()?;
        // Deploys cut short between their commit and their answer (or rollback): gone.
        for r in records.iter().filter(|r| !r.accepted) {
            tracing::info!(app = %r.name, "removing a deploy that was never accepted");
            self.0.db.remove(&r.name)?;
        }
        records.retain(|r| r.accepted);
        // A damaged record's module is unknown: then nothing is swept.
        if !self.0.db.has_damage() {
            self.remove_orphan_modules(&records);
            // The log and secrets of a deploy cut short (its record removed above, or never
            // synced to disk) go with it, as `rm` takes them.
            let names: std::collections::HashSet<&str> =
                records.iter().map(|r| r.name.as_str()).collect();
            self.0.logs.remove_all_but(&names);
            self.forget_secrets_all_but(&names);
        }
        // Oldest first: if two apps ever claim one route, the one deployed first keeps it.
        records.sort_by_key(|r| r.created);
        for record in records {
            let start = match (record.desired, record.restart) {
                (Desired::Running, _) => {
                    !matches!(record.status.state, State::Exited | State::Failed)
                }
                // Docker's `always` brings a stopped container back when the daemon restarts.
                (Desired::Stopped, RestartPolicy::Always) => true,
                (Desired::Stopped, _) => false,
            };
            if !start {
                continue;
            }
            let name = record.name.clone();
            if let Err(e) = self.start_record(record, false).await {
                tracing::warn!(app = %name, error = %e, "could not start an app");
            }
        }
        Ok(())
    }

    pub async fn stop(&self, name: &str) -> Result<AppView, NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        self.0
            .db
            .update(name, |r| r.desired = Desired::Stopped)?
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        self.halt(name).await;
        self.0.db.update(name, |r| {
            if r.status.state != State::Exited {
                r.status.state = State::Stopped;
            }
        })?;
        self.event(name, "stop", None);
        self.view(name)
    }

    pub async fn start(&self, name: &str) -> Result<AppView, NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        if self.is_live(name) {
            return self.view(name);
        }
        let record = self
            .0
            .db
            .update(name, |r| {
                r.desired = Desired::Running;
                r.status.restarts = 0;
                r.status.quick_failures = 0;
            })?
            .ok_or_else(|| NodeError::NotFound(name.into()))?;
        if let Err(e) = self.start_record(record, true).await {
            // A start that failed (a route another app took meanwhile) leaves the app stopped,
            // so the next node does not start it in that app's place.
            let _ = self.0.db.update(name, |r| r.desired = Desired::Stopped);
            return Err(e);
        }
        self.view(name)
    }

    pub async fn restart(&self, name: &str) -> Result<AppView, NodeError> {
        {
            let lock = self.name_lock(name);
            let _held = lock.lock().await;
            if self.0.db.get(name)?.is_none() {
                return Err(NodeError::NotFound(name.into()));
            }
            self.halt(name).await;
        }
        self.start(name).await
    }

    /// Removes an app with its secrets and its key-value buckets.
    pub async fn remove(&self, name: &str, force: bool) -> Result<(), NodeError> {
        self.remove_keeping(name, force, false).await
    }

    /// Removes an app; `keep_data` keeps its buckets for an app deployed again under its name.
    pub async fn remove_keeping(
        &self,
        name: &str,
        force: bool,
        keep_data: bool,
    ) -> Result<(), NodeError> {
        let lock = self.name_lock(name);
        let _held = lock.lock().await;
        // A damaged record can still be removed (its module is then left in place).
        let record = match self.0.db.get(name) {
            Ok(Some(r)) => Some(r),
            Ok(None) => return Err(NodeError::NotFound(name.into())),
            Err(NodeError::State(_)) if force => None,
            Err(e) => return Err(e),
        };
        if self.is_live(name) && !force {
            return Err(NodeError::Conflict(format!(
                "`{name}` is running: stop it first (`qyvol stop {name}`) or remove it with `-f`"
            )));
        }
        self.halt(name).await;
        {
            let _modules = self.0.modules.lock().await;
            self.0.db.remove(name)?;
            if let Some(record) = &record {
                self.forget_module(&record.module)?;
            }
        }
        self.0.logs.remove(name);
        self.forget_secrets(name);
        self.forget_health(name);
        if !keep_data {
            self.forget_kv(name)?;
        }
        self.0.metrics.forget(name);
        self.event(name, "remove", None);
        Ok(())
    }

    /// Stops every instance without changing what the state wants (they start again with the
    /// node); waits for their supervisors.
    pub async fn halt_all(&self) {
        let tasks: Vec<_> = self
            .0
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, i)| i.end())
            .collect();
        // Every instance was asked to stop at once; wait for them together.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use qyvol_common::Home;

    use super::*;
    use crate::{AppRecord, NodeOptions};

    /// HOSTILE row 47: a deploy cut by `kill -9` after its record was committed but before it
    /// was answered (or rolled back) leaves a record never accepted; the next node shows it to
    /// no one, removes it and sweeps its module.
    #[test]
    fn a_deploy_cut_before_its_answer_is_gone_when_the_node_starts_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = Home {
            root: tmp.path().to_path_buf(),
        };
        let module = "ab".repeat(32);
        let record: AppRecord = serde_json::from_value(serde_json::json!({
            "name": "cut", "source": "/x.wasm", "module": format!("sha256:{module}"),
            "kind": "command", "route": null,
            "spec": {"argv0": "x", "args": [], "env": [], "mounts": [], "network": [],
                     "block_private": true, "max_body": 1, "timeout_ms": null, "fuel": null,
                     "compile_timeout_ms": null, "precompiled": null, "memory": null},
            "restart": {"policy": "no"}, "desired": "running",
            "status": {"state": "failed", "restarts": 0, "quick_failures": 0},
            "created": 1, "accepted": false
        }))
        .expect("a record");
        {
            let node = Node::open(home.clone(), NodeOptions::default()).expect("open");
            node.db().insert_new(&record).expect("committed");
            std::fs::write(node.paths().modules().join(&module), b"\0asm").expect("module");
            assert!(matches!(node.view("cut"), Err(NodeError::NotFound(_))));
            assert!(node.list(true).expect("list").is_empty());
        }
        let node = Node::open(home, NodeOptions::default()).expect("open again");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(node.reconcile()).expect("reconcile");
        assert!(node.db().get("cut").expect("get").is_none());
        assert!(!node.paths().modules().join(&module).exists());
    }
}
