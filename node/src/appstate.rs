//! What a deployed app keeps besides its record: its key-value buckets (in
//! `node/keyvalue/APP.redb`, which outlive `rm` of the app, as a volume does) and its secrets
//! (in `node/secrets/APP.json`, 0600, never in the record, a view, an event or a log). A
//! record names its buckets, variables and secret names; each start opens the one and reads
//! the other.

use std::path::PathBuf;

use qyvol_common::{AppName, Secret};
use qyvol_runtime::RunRequest;
use qyvol_runtime::keyvalue::{AppStore, BucketUsage, ConfigVars, KeyValue};

use crate::state::AppRecord;
use crate::{Node, NodeError};

impl Node {
    fn secrets_file(&self, app: &str) -> PathBuf {
        self.0.paths.secrets().join(format!("{app}.json"))
    }

    /// Keeps `app`'s secrets (replacing any it had), written whole or not at all.
    pub(crate) fn keep_secrets(
        &self,
        app: &str,
        secrets: &[(String, Secret)],
    ) -> Result<(), NodeError> {
        let file = self.secrets_file(app);
        if secrets.is_empty() {
            self.forget_secrets(app);
            return Ok(());
        }
        let dir = self.0.paths.secrets();
        qyvol_common::create_private_dir(&dir).map_err(NodeError::internal)?;
        let map: std::collections::BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        let text = serde_json::to_vec(&map).map_err(NodeError::internal)?;
        // tempfile creates it 0600 in the 0700 folder; renamed over the old one once synced.
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(NodeError::internal)?;
        std::io::Write::write_all(&mut tmp, &text).map_err(NodeError::internal)?;
        tmp.as_file().sync_all().map_err(NodeError::internal)?;
        tmp.persist(&file).map_err(NodeError::internal)?;
        Ok(())
    }

    pub(crate) fn forget_secrets(&self, app: &str) {
        let _ = std::fs::remove_file(self.secrets_file(app));
    }

    fn read_secrets(&self, record: &AppRecord) -> Result<Vec<(String, Secret)>, NodeError> {
        if record.spec.secrets.is_empty() {
            return Ok(Vec::new());
        }
        let file = self.secrets_file(&record.name);
        let lost = |why: String| {
            NodeError::State(format!(
                "the secrets of `{}` cannot be read from `{}` ({why}): deploy it again with its `--secret` flags",
                record.name,
                file.display()
            ))
        };
        let bytes = std::fs::read(&file).map_err(|e| lost(e.to_string()))?;
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|e| lost(e.to_string()))?;
        record
            .spec
            .secrets
            .iter()
            .map(|name| {
                let value = map
                    .get(name)
                    .ok_or_else(|| lost(format!("`{name}` is missing")))?;
                let key = name.parse().map_err(lost)?;
                Ok((
                    name.clone(),
                    Secret::new(&key, value.clone().into_bytes()).map_err(lost)?,
                ))
            })
            .collect()
    }

    /// Writes each write a quota refused to the app's log.
    pub(crate) fn quota_sink(&self) -> qyvol_runtime::keyvalue::QuotaSink {
        let node = self.clone();
        qyvol_runtime::keyvalue::QuotaSink::new(move |app, why| {
            node.0
                .logs
                .note(app, &format!("key-value write refused: {why}"));
        })
    }

    /// Opens `app`'s key-value store (shared with its running instances).
    pub(crate) fn kv_store(&self, app: &str) -> Result<std::sync::Arc<AppStore>, NodeError> {
        let name = AppName::try_from(app.to_string()).map_err(NodeError::BadRequest)?;
        qyvol_launch::state::open_store(&self.0.paths.keyvalue(), &name)
            .map_err(|e| NodeError::State(e.to_string()))
    }

    /// Gives a run request made from `record` its buckets, variables and secrets.
    pub(crate) fn attach_state(
        &self,
        record: &AppRecord,
        req: &mut RunRequest,
    ) -> Result<(), NodeError> {
        let spec = &record.spec;
        if !spec.keyvalue.is_empty() {
            req.keyvalue = Some(KeyValue {
                store: self.kv_store(&record.name)?,
                buckets: spec.keyvalue.clone(),
                quotas: spec.kv_quotas.unwrap_or_default(),
                app: record.name.clone(),
                refusals: self.quota_sink(),
            });
        }
        req.config = ConfigVars::new(spec.config.clone(), &self.read_secrets(record)?);
        Ok(())
    }

    /// The buckets of an app that was granted any (with those it has not written to yet).
    pub fn buckets(&self, record: &AppRecord) -> Result<Vec<BucketUsage>, NodeError> {
        if record.spec.keyvalue.is_empty() {
            return Ok(Vec::new());
        }
        let mut used = self
            .kv_store(&record.name)?
            .buckets()
            .map_err(|e| NodeError::State(e.to_string()))?;
        for b in &record.spec.keyvalue {
            if !used.iter().any(|u| u.name == *b) {
                used.push(BucketUsage {
                    name: b.clone(),
                    keys: 0,
                    bytes: 0,
                });
            }
        }
        used.retain(|u| record.spec.keyvalue.contains(&u.name));
        used.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(used)
    }
}
