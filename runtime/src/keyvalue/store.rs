//! An app's durable key-value buckets: one redb file per app, one table per bucket, and a
//! usage table (keys, bytes per bucket) kept in the same transactions, so quotas are exact.
//! Each change is one write transaction, committed durably before the guest hears "done";
//! redb serialises writers, so concurrent increments never lose one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use qyvol_common::KvQuotas;

/// Where each bucket's count of keys and bytes (keys plus values) is kept.
const USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("usage");

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// How many keys one `list-keys` call returns at most.
pub(crate) const PAGE: usize = 1000;

/// Why an operation on a bucket failed; the guest sees it as `wasi:keyvalue/store.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The bucket was not granted to this app.
    #[error(
        "bucket `{0}` is not granted to this app: the operator grants it with `--keyvalue {0}` or `keyvalue: [{0}]` in their own manifest"
    )]
    NotGranted(String),
    /// A quota or size limit refused the change; nothing was written.
    #[error("{0}")]
    Quota(String),
    #[error("{0}")]
    Other(String),
}

fn failed(e: impl std::fmt::Display) -> KvError {
    KvError::Other(format!("the key-value store failed: {e}"))
}

/// What a bucket holds, for operators (`qyvol kv ls`, the dashboard, metrics).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketUsage {
    pub name: String,
    pub keys: u64,
    pub bytes: u64,
}

/// Operations served, for metrics.
#[derive(Debug, Default)]
pub struct KvStats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub deletes: AtomicU64,
    pub refused: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
}

/// One app's key-value file, open once per process however many runs and requests use it.
pub struct AppStore {
    path: PathBuf,
    db: Database,
    pub stats: KvStats,
}

impl std::fmt::Debug for AppStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Stores open in this process, by path: a second opener gets the same one (redb lets one
/// process hold a file once).
static OPEN: Mutex<Option<HashMap<PathBuf, Weak<AppStore>>>> = Mutex::new(None);

fn table(bucket: &str) -> String {
    format!("bucket:{bucket}")
}

impl AppStore {
    /// Opens (creating it, 0600, and its folder) the store at `path`, or returns the one this
    /// process already has open there.
    pub fn open(path: &Path) -> Result<Arc<Self>, KvError> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        let open = open.get_or_insert_with(HashMap::new);
        open.retain(|_, w| w.strong_count() > 0);
        if let Some(store) = open.get(path).and_then(Weak::upgrade) {
            return Ok(store);
        }
        if let Some(dir) = path.parent() {
            qyvol_common::create_private_dir(dir)
                .map_err(|e| KvError::Other(format!("cannot create `{}`: {e}", dir.display())))?;
        }
        let damaged = |why: String| {
            KvError::Other(format!(
                "the key-value store `{}` cannot be opened ({why})",
                path.display()
            ))
        };
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(damaged(
                "it is empty: its contents were lost; move it away to start again".into(),
            ));
        }
        // redb asserts on some damaged files: an error, never a panic (nor its message).
        let db = quietly(|| Database::create(path))
            .map_err(|_| damaged("it is damaged; move it away to start again".into()))?
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => damaged(
                    "another Qyvol process has it open: stop that one, or deploy the app to a node and let its runs share it".into(),
                ),
                e => damaged(e.to_string()),
            })?;
        set_private(path);
        let store = Arc::new(Self {
            path: path.to_path_buf(),
            db,
            stats: KvStats::default(),
        });
        open.insert(path.to_path_buf(), Arc::downgrade(&store));
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the store at `path` (its app was removed): the next [`AppStore::open`] there
    /// makes a new, empty one, even while a handle to the old one is still being dropped.
    pub fn delete(path: &Path) -> std::io::Result<()> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = open.as_mut() {
            open.remove(path);
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let value = self.read_bucket(bucket, None, |t| {
            Ok(t.get(key).map_err(failed)?.map(|v| v.value().to_vec()))
        })?;
        let read = value.as_ref().map_or(0, Vec::len);
        self.stats.bytes_read.fetch_add(read as u64, Relaxed);
        Ok(value)
    }

    /// Keys in order after `after` (from the first when `None`), at most `limit`; and whether
    /// more follow. A page costs its own keys, however deep it is (the API's pages).
    pub fn keys_after(
        &self,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), KvError> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.read_bucket(bucket, (Vec::new(), false), |t| {
            page(
                t.range::<&str>((start, Bound::Unbounded)).map_err(failed)?,
                limit,
            )
        })
    }

    /// Keys in order from the `skip`-th, at most `limit`; and whether more follow. What
    /// `list-keys` offers, whose cursor is a number: a deep page walks the keys before it.
    pub fn keys(
        &self,
        bucket: &str,
        skip: u64,
        limit: usize,
    ) -> Result<(Vec<String>, bool), KvError> {
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        self.read_bucket(bucket, (Vec::new(), false), |t| {
            page(t.iter().map_err(failed)?.skip(skip), limit)
        })
    }

    /// `f` over the bucket's table in one read transaction; `empty` when it has none yet.
    fn read_bucket<R>(
        &self,
        bucket: &str,
        empty: R,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let tx = self.db.begin_read().map_err(failed)?;
        let name = table(bucket);
        let result = match tx.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
            Ok(t) => f(&t)?,
            Err(TableError::TableDoesNotExist(_)) => empty,
            Err(e) => return Err(failed(e)),
        };
        self.stats.reads.fetch_add(1, Relaxed);
        Ok(result)
    }

    /// Writes every pair in one transaction, or none of them if a quota refuses one.
    pub fn set_many(
        &self,
        bucket: &str,
        pairs: &[(String, Vec<u8>)],
        quotas: &KvQuotas,
    ) -> Result<(), KvError> {
        for (key, value) in pairs {
            check_sizes(bucket, key, value.len(), quotas).inspect_err(|_| self.refused())?;
        }
        self.write(bucket, |t, usage| {
            for (key, value) in pairs {
                let old = t.insert(key.as_str(), value.as_slice()).map_err(failed)?;
                match old {
                    Some(old) => {
                        usage.1 =
                            usage.1.saturating_sub(old.value().len() as u64) + value.len() as u64;
                    }
                    None => {
                        usage.0 += 1;
                        usage.1 += (key.len() + value.len()) as u64;
                    }
                }
            }
            within(bucket, *usage, quotas)
        })
        .inspect_err(|_| self.refused())?;
        self.stats.writes.fetch_add(1, Relaxed);
        let written: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.stats.bytes_written.fetch_add(written as u64, Relaxed);
        Ok(())
    }

    pub fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<(), KvError> {
        self.write(bucket, |t, usage| {
            for key in keys {
                if let Some(old) = t.remove(key.as_str()).map_err(failed)? {
                    usage.0 = usage.0.saturating_sub(1);
                    usage.1 = usage
                        .1
                        .saturating_sub((key.len() + old.value().len()) as u64);
                }
            }
            Ok(())
        })?;
        self.stats.deletes.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Adds `delta` to the number at `key` (8 bytes, little-endian, as wasmtime-wasi-keyvalue
    /// keeps it; a missing key counts from 0) and returns the new value.
    pub fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: u64,
        quotas: &KvQuotas,
    ) -> Result<u64, KvError> {
        check_sizes(bucket, key, 8, quotas).inspect_err(|_| self.refused())?;
        let mut new = 0;
        self.write(bucket, |t, usage| {
            let current = match t.get(key).map_err(failed)? {
                None => None,
                Some(v) => Some(u64::from_le_bytes(v.value().try_into().map_err(|_| {
                    KvError::Other(format!(
                        "`{key}` in bucket `{bucket}` does not hold a number (8 bytes, little-endian) that `increment` can add to"
                    ))
                })?)),
            };
            new = current.unwrap_or(0).checked_add(delta).ok_or_else(|| {
                KvError::Other(format!("adding {delta} to `{key}` would overflow a u64"))
            })?;
            t.insert(key, new.to_le_bytes().as_slice()).map_err(failed)?;
            if current.is_none() {
                usage.0 += 1;
                usage.1 += (key.len() + 8) as u64;
            }
            within(bucket, *usage, quotas)
        })
        .inspect_err(|e| {
            if matches!(e, KvError::Quota(_)) {
                self.refused();
            }
        })?;
        self.stats.writes.fetch_add(1, Relaxed);
        Ok(new)
    }

    /// Every bucket that holds or held keys, with its usage.
    pub fn buckets(&self) -> Result<Vec<BucketUsage>, KvError> {
        let tx = self.db.begin_read().map_err(failed)?;
        let usage = match tx.open_table(USAGE) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(failed(e)),
        };
        let mut out = Vec::new();
        for entry in usage.iter().map_err(failed)? {
            let (name, usage) = entry.map_err(failed)?;
            let (keys, bytes) = usage.value();
            out.push(BucketUsage {
                name: name.value().to_string(),
                keys,
                bytes,
            });
        }
        Ok(out)
    }

    /// Bytes the file takes on disk.
    pub fn file_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn refused(&self) {
        self.stats.refused.fetch_add(1, Relaxed);
    }

    /// One durable write transaction on `bucket` with its usage, committed only if `f` is.
    fn write(
        &self,
        bucket: &str,
        f: impl FnOnce(&mut redb::Table<'_, &str, &[u8]>, &mut (u64, u64)) -> Result<(), KvError>,
    ) -> Result<(), KvError> {
        let tx = self.db.begin_write().map_err(failed)?;
        {
            let name = table(bucket);
            let mut t = tx
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(failed)?;
            let mut usage_table = tx.open_table(USAGE).map_err(failed)?;
            let mut usage = usage_table
                .get(bucket)
                .map_err(failed)?
                .map_or((0, 0), |u| u.value());
            if let Err(e) = f(&mut t, &mut usage) {
                drop((t, usage_table));
                tx.abort().map_err(failed)?;
                return Err(e);
            }
            usage_table.insert(bucket, usage).map_err(failed)?;
        }
        tx.commit().map_err(failed)
    }
}

type Entry<'a> = Result<
    (
        redb::AccessGuard<'a, &'static str>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// The first `limit` keys of `entries`, and whether more follow.
fn page<'a>(
    entries: impl Iterator<Item = Entry<'a>>,
    limit: usize,
) -> Result<(Vec<String>, bool), KvError> {
    let mut keys = Vec::new();
    for entry in entries {
        if keys.len() == limit {
            return Ok((keys, true));
        }
        keys.push(entry.map_err(failed)?.0.value().to_string());
    }
    Ok((keys, false))
}

fn check_sizes(bucket: &str, key: &str, value: usize, quotas: &KvQuotas) -> Result<(), KvError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::Quota(format!(
            "a key of {} bytes is refused in bucket `{bucket}`: keys are at most {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    if value as u64 > quotas.max_value.0 {
        return Err(KvError::Quota(format!(
            "a value of {} bytes is refused in bucket `{bucket}`: values are at most {} (limits.keyvalue.max_value)",
            value, quotas.max_value
        )));
    }
    Ok(())
}

fn within(bucket: &str, (keys, bytes): (u64, u64), quotas: &KvQuotas) -> Result<(), KvError> {
    if keys > quotas.max_keys {
        return Err(KvError::Quota(format!(
            "bucket `{bucket}` is full: it holds its limit of {} keys (limits.keyvalue.max_keys); delete keys or ask the operator for more",
            quotas.max_keys
        )));
    }
    if bytes > quotas.max_bytes.0 {
        return Err(KvError::Quota(format!(
            "bucket `{bucket}` is full: this write would take it past its limit of {} (limits.keyvalue.max_bytes); delete keys or ask the operator for more",
            quotas.max_bytes
        )));
    }
    Ok(())
}

thread_local! {
    /// Set while a store is opened: a panic then is an error we report, not a crash to print.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err` without printing it (the caller says what failed).
fn quietly<R>(f: impl FnOnce() -> R + std::panic::UnwindSafe) -> std::thread::Result<R> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(f);
    QUIET.with(|q| q.set(false));
    result
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}
