//! The redb database the records live in: one write transaction per change, a damaged record
//! skipped rather than fatal, and the database opened again after an I/O error.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::AppRecord;
use crate::NodeError;

const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");

/// The database. Each method is one transaction.
///
/// After an I/O error (a full disk, say) redb refuses every later transaction until the
/// database is opened again, so the call that met the error fails and the next one reopens it
/// first: once space is back the node works again without a restart.
pub struct Db {
    path: std::path::PathBuf,
    /// `None` while it could not be reopened.
    db: std::sync::RwLock<Option<Database>>,
    /// A transaction met an I/O error: the next call reopens the database.
    io_failed: std::sync::atomic::AtomicBool,
    /// A record could not be read (it was skipped): nothing may be cleaned up on its account.
    damaged: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

fn db_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::State(e.to_string())
}

fn decode(bytes: &[u8]) -> Result<AppRecord, NodeError> {
    serde_json::from_slice(bytes).map_err(|e| NodeError::State(format!("a record is damaged: {e}")))
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        let damaged = |why: String| {
            NodeError::State(format!(
                "the node's database `{}` is damaged ({why}); move it away to start with no apps (the modules in `node/modules/` are kept until then)",
                path.display()
            ))
        };
        // An empty file is not a new database: it is one whose contents were lost.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(damaged("it is empty".into()));
        }
        // redb asserts on some truncated files; a damaged file is an error, never a panic.
        let opened = std::panic::catch_unwind(|| Database::create(path))
            .map_err(|_| damaged("it cannot be read".into()))?;
        let db = opened.map_err(|e| damaged(e.to_string()))?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(APPS).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            db: std::sync::RwLock::new(Some(db)),
            io_failed: std::sync::atomic::AtomicBool::new(false),
            damaged: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs one transaction on the database, reopening it first if an earlier one met an I/O
    /// error; an I/O error now is noted for the next call.
    fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T, Failed>) -> Result<T, NodeError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.io_failed.swap(false, Relaxed) {
            self.reopen()?;
        }
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(db) = db.as_ref() else {
            drop(db);
            self.io_failed.store(true, Relaxed);
            return Err(NodeError::State(
                "the node's database could not be opened again after a disk error; free some space and try again".into(),
            ));
        };
        guarded(|| {
            f(db).map_err(|failed| match failed {
                Failed::Node(e) => e,
                Failed::Db(redb::Error::Io(io)) => {
                    self.io_failed.store(true, Relaxed);
                    NodeError::State(format!(
                        "the node's database could not be written ({io}); nothing was changed, and the next call opens it again"
                    ))
                }
                Failed::Db(e) => {
                    if matches!(e, redb::Error::PreviousIo) {
                        self.io_failed.store(true, Relaxed);
                    }
                    db_err(e)
                }
            })
        })
    }

    fn reopen(&self) -> Result<(), NodeError> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        // redb allows one open handle per file: the broken one goes first.
        *slot = None;
        let opened = std::panic::catch_unwind(|| Database::create(&self.path))
            .map_err(|_| NodeError::State("the node's database is damaged".into()))?;
        match opened {
            Ok(db) => {
                tracing::info!("the node's database was opened again after a disk error");
                *slot = Some(db);
                Ok(())
            }
            Err(e) => {
                self.io_failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err(NodeError::State(format!(
                    "the node's database could not be opened again after a disk error ({e}); free some space and try again"
                )))
            }
        }
    }

    /// Adds `record`; refused if an app of that name exists.
    pub fn insert_new(&self, record: &AppRecord) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec(record).map_err(db_err)?;
        self.with(|db| {
            let mut tx = db.begin_write()?;
            // A record not yet accepted need not outlive a crash (the next start removes it, and
            // the module no record names): no sync here; the commit that accepts it syncs both.
            if !record.accepted {
                tx.set_durability(redb::Durability::None)
                    .map_err(|e| NodeError::State(e.to_string()))?;
            }
            {
                let mut table = tx.open_table(APPS)?;
                if table.get(record.name.as_str())?.is_some() {
                    return Err(NodeError::Exists(record.name.clone()).into());
                }
                table.insert(record.name.as_str(), bytes.as_slice())?;
            }
            Ok(tx.commit()?)
        })
    }

    /// Changes the record of `name` with `f` and returns it as stored; `None` if there is none.
    pub fn update(
        &self,
        name: &str,
        f: impl FnOnce(&mut AppRecord),
    ) -> Result<Option<AppRecord>, NodeError> {
        self.with(|db| {
            let tx = db.begin_write()?;
            let record = {
                let mut table = tx.open_table(APPS)?;
                let Some(mut record) = table.get(name)?.map(|v| decode(v.value())).transpose()?
                else {
                    return Ok(None);
                };
                f(&mut record);
                let bytes = serde_json::to_vec(&record).map_err(db_err)?;
                table.insert(name, bytes.as_slice())?;
                record
            };
            tx.commit()?;
            Ok(Some(record))
        })
    }

    /// Removes `name`; whether it was there.
    pub fn remove(&self, name: &str) -> Result<bool, NodeError> {
        self.with(|db| {
            let tx = db.begin_write()?;
            let was = tx.open_table(APPS)?.remove(name)?.is_some();
            tx.commit()?;
            Ok(was)
        })
    }

    /// Whether a record was found damaged and skipped.
    pub fn has_damage(&self) -> bool {
        self.damaged.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn get(&self, name: &str) -> Result<Option<AppRecord>, NodeError> {
        self.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(APPS)?;
            Ok(table.get(name)?.map(|v| decode(v.value())).transpose()?)
        })
    }

    /// Every app's name, in order, without reading the records.
    pub fn names(&self) -> Result<Vec<String>, NodeError> {
        self.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(APPS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                out.push(entry?.0.value().to_string());
            }
            Ok(out)
        })
    }

    /// Every app, by name.
    pub fn list(&self) -> Result<Vec<AppRecord>, NodeError> {
        self.list_after(None, usize::MAX, |_| true)
    }

    /// Up to `limit` apps that `keep` keeps, by name, from the first after `after`: a page of a
    /// long list reads its own records, not all the ones before it.
    pub fn list_after(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&AppRecord) -> bool,
    ) -> Result<Vec<AppRecord>, NodeError> {
        use std::ops::Bound;
        self.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(APPS)?;
            let mut out = Vec::new();
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            for entry in table.range::<&str>((start, Bound::Unbounded))? {
                if out.len() == limit {
                    break;
                }
                let (k, v) = entry?;
                // One damaged record does not take the others down; it is reported and skipped.
                match decode(v.value()) {
                    Ok(r) if keep(&r) => out.push(r),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(app = k.value(), error = %e, "skipping a damaged record");
                        self.damaged
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Why a transaction failed: redb's error (an I/O error among them), or the node's own.
enum Failed {
    Db(redb::Error),
    Node(NodeError),
}

impl From<NodeError> for Failed {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

impl From<redb::Error> for Failed {
    fn from(e: redb::Error) -> Self {
        Self::Db(e)
    }
}

impl From<redb::TransactionError> for Failed {
    fn from(e: redb::TransactionError) -> Self {
        Self::Db(e.into())
    }
}

impl From<redb::TableError> for Failed {
    fn from(e: redb::TableError) -> Self {
        Self::Db(e.into())
    }
}

impl From<redb::StorageError> for Failed {
    fn from(e: redb::StorageError) -> Self {
        Self::Db(e.into())
    }
}

impl From<redb::CommitError> for Failed {
    fn from(e: redb::CommitError) -> Self {
        Self::Db(e.into())
    }
}

/// Runs a database call; a panic inside redb (it asserts on some damaged pages) becomes an
/// error saying the state is damaged, never a crash of the node.
fn guarded<T>(f: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(NodeError::State(
            "the node's database is damaged (a page cannot be read); stop the node and move `node/state.redb` away to start with no apps".into(),
        ))
    })
}
