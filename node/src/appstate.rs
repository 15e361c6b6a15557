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

    /// Removes the secrets of every app not in `apps`.
    pub(crate) fn forget_secrets_all_but(&self, apps: &std::collections::HashSet<&str>) {
        crate::paths::remove_files_where(&self.0.paths.secrets(), |file| {
            file.strip_suffix(".json")
                .is_some_and(|app| !apps.contains(app))
        });
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

    /// `app`'s key-value store, opened once and kept while the app is deployed (shared with
    /// its instances; its operation counters live as long).
    pub(crate) fn kv_store(&self, app: &str) -> Result<std::sync::Arc<AppStore>, NodeError> {
        let mut open = self.0.kv_stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = open.get(app) {
            return Ok(store.clone());
        }
        let name = AppName::try_from(app.to_string()).map_err(NodeError::BadRequest)?;
        let store = qyvol_launch::state::open_store(&self.0.paths.keyvalue(), &name)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        open.insert(app.to_string(), store.clone());
        Ok(store)
    }

    /// Deletes `app`'s buckets (its removal): an app deployed later under its name starts
    /// with none.
    pub(crate) fn forget_kv(&self, app: &str) -> Result<(), NodeError> {
        self.0
            .kv_stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app);
        let name = AppName::try_from(app.to_string()).map_err(NodeError::BadRequest)?;
        AppStore::delete(&qyvol_launch::state::store_path(
            &self.0.paths.keyvalue(),
            &name,
        ))
        .map_err(NodeError::internal)
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

/// A key's value as the API shows it: its size, the text when it is UTF-8, and the bytes in
/// hex.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KvValue {
    pub key: String,
    pub bytes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub hex: String,
}

/// One page of a bucket's keys, and the key the next page starts after.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KvKeys {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

/// The operator's look at and changes to a deployed app's buckets (`qyvol kv`).
impl Node {
    /// The app's record, and `bucket` checked as one it was granted.
    fn kv_target(&self, app: &str, bucket: Option<&str>) -> Result<AppRecord, NodeError> {
        let record = self
            .0
            .db
            .get(app)?
            .filter(|r| r.accepted)
            .ok_or_else(|| NodeError::NotFound(app.into()))?;
        if let Some(b) = bucket
            && !record.spec.keyvalue.iter().any(|g| g == b)
        {
            return Err(NodeError::BadRequest(format!(
                "`{app}` has no bucket `{}`; its buckets: {}",
                qyvol_common::escape_controls(b),
                if record.spec.keyvalue.is_empty() {
                    "none".into()
                } else {
                    record.spec.keyvalue.join(", ")
                }
            )));
        }
        Ok(record)
    }

    pub fn kv_buckets(&self, app: &str) -> Result<Vec<BucketUsage>, NodeError> {
        let record = self.kv_target(app, None)?;
        self.buckets(&record)
    }

    pub fn kv_keys(
        &self,
        app: &str,
        bucket: &str,
        after: Option<&str>,
    ) -> Result<KvKeys, NodeError> {
        self.kv_target(app, Some(bucket))?;
        let (keys, more) = self
            .kv_store(app)?
            .keys_after(bucket, after, 1000)
            .map_err(kv_error)?;
        let next = if more { keys.last().cloned() } else { None };
        Ok(KvKeys { keys, next })
    }

    pub fn kv_get(&self, app: &str, bucket: &str, key: &str) -> Result<KvValue, NodeError> {
        self.kv_target(app, Some(bucket))?;
        let value = self
            .kv_store(app)?
            .get(bucket, key)
            .map_err(kv_error)?
            .ok_or_else(|| {
                NodeError::Missing(format!(
                    "bucket `{bucket}` of `{app}` has no key `{}`",
                    qyvol_common::escape_controls(key)
                ))
            })?;
        Ok(KvValue {
            key: key.to_string(),
            bytes: value.len(),
            hex: hex::encode(&value),
            // Text is shown as text; bytes with control characters (a counter's eight bytes,
            // say) only as hex.
            text: String::from_utf8(value).ok().filter(|t| {
                !t.chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            }),
        })
    }

    /// Writes `value` under the app's own quotas.
    pub fn kv_put(
        &self,
        app: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), NodeError> {
        let record = self.kv_target(app, Some(bucket))?;
        let quotas = record.spec.kv_quotas.unwrap_or_default();
        self.kv_store(app)?
            .set_many(bucket, &[(key.to_string(), value)], &quotas)
            .map_err(kv_error)
    }

    pub fn kv_delete(&self, app: &str, bucket: &str, key: &str) -> Result<(), NodeError> {
        self.kv_target(app, Some(bucket))?;
        self.kv_store(app)?
            .delete_many(bucket, &[key.to_string()])
            .map_err(kv_error)
    }
}

fn kv_error(e: qyvol_runtime::keyvalue::KvError) -> NodeError {
    match e {
        qyvol_runtime::keyvalue::KvError::Quota(why) => NodeError::Conflict(why),
        other => NodeError::State(other.to_string()),
    }
}

impl Node {
    /// The key-value sections of `/metrics`: operations served since each store opened, and
    /// what each bucket holds.
    pub(crate) fn kv_metrics(&self, records: &[AppRecord]) -> String {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let (mut ops, mut keys, mut bytes) = (String::new(), String::new(), String::new());
        for r in records.iter().filter(|r| !r.spec.keyvalue.is_empty()) {
            let Ok(store) = self.kv_store(&r.name) else {
                continue;
            };
            let s = &store.stats;
            for (op, n) in [
                ("read", &s.reads),
                ("write", &s.writes),
                ("delete", &s.deletes),
                ("refused", &s.refused),
            ] {
                let _ = writeln!(
                    ops,
                    "qyvol_kv_operations_total{{app=\"{}\",op=\"{op}\"}} {}",
                    r.name,
                    n.load(Relaxed)
                );
            }
            for b in self.buckets(r).unwrap_or_default() {
                let _ = writeln!(
                    keys,
                    "qyvol_kv_keys{{app=\"{}\",bucket=\"{}\"}} {}",
                    r.name, b.name, b.keys
                );
                let _ = writeln!(
                    bytes,
                    "qyvol_kv_bytes{{app=\"{}\",bucket=\"{}\"}} {}",
                    r.name, b.name, b.bytes
                );
            }
        }
        format!(
            "# HELP qyvol_kv_operations_total Key-value operations by app and kind (read, write, delete, refused by a quota), since its store was opened.\n# TYPE qyvol_kv_operations_total counter\n{ops}\
             # HELP qyvol_kv_keys Keys held, by app and bucket.\n# TYPE qyvol_kv_keys gauge\n{keys}\
             # HELP qyvol_kv_bytes Bytes held (keys and values), by app and bucket.\n# TYPE qyvol_kv_bytes gauge\n{bytes}"
        )
    }
}
