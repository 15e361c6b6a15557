//! The node's durable state: one record per app (what the operator asked for and what was last
//! seen of it) in a redb database under `QYVOL_HOME/node/`. Every change is one write
//! transaction, committed (fsynced) before the API answers, so after a crash or `kill -9` the
//! database holds exactly the acknowledged changes: an app is there whole or not at all.
//!
//! Here: `record` is what the node keeps of an app, `db` the database that keeps it.

mod db;
mod record;

pub use db::Db;
pub use record::{
    AppKind, AppRecord, Desired, HealthSpec, MountSpec, RestartPolicy, Spec, State, Status,
};

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
