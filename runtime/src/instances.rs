//! How many instances of a served app exist: made since it was loaded, and alive now. A store
//! is an instance's life (made per request, or per several when a WASI 0.3 handler's are
//! reused); `serve` gives each store an [`Alive`] token, which `Host` holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct Counts {
    made: AtomicU64,
    alive: AtomicU64,
}

/// What `serve::Router::instances` reports of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Instances {
    pub made: u64,
    pub alive: u64,
}

impl Counts {
    pub(crate) fn read(&self) -> Instances {
        Instances {
            made: self.made.load(Relaxed),
            alive: self.alive.load(Relaxed),
        }
    }
}

/// Held by an instance's store: counted alive from its making to its drop.
pub(crate) struct Alive(Arc<Counts>);

impl Alive {
    pub(crate) fn new(counts: &Arc<Counts>) -> Self {
        counts.made.fetch_add(1, Relaxed);
        counts.alive.fetch_add(1, Relaxed);
        Self(counts.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Relaxed);
    }
}
