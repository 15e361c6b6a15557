//! When a transfer from a registry is cut: a request that is not a blob has a deadline; a blob
//! has none (a large module on a slow link may take long) but must move at least 1 KiB in
//! every window of the timeout, like curl's and git's "low speed limit".

use std::future::Future;
use std::time::Duration;

use qyvol_common::DurationSpec;
use tokio::time::{Instant, timeout_at};

use super::failure::FetchError;

/// A blob transfer moving less than this within the timeout has stalled.
const MIN_PROGRESS: u64 = 1024;

/// When a transfer is cut: at a deadline, or at the end of a window that moved too little.
pub(super) enum Pace {
    Deadline {
        at: Instant,
        timeout: Duration,
        what: &'static str,
    },
    Rate {
        window: Duration,
        end: Instant,
        /// Bytes still to come when the window began, and bytes moved in it since.
        remaining: u64,
        moved: u64,
    },
}

impl Pace {
    pub(super) fn deadline(timeout: Duration, what: &'static str) -> Self {
        Self::Deadline {
            at: Instant::now() + timeout,
            timeout,
            what,
        }
    }

    pub(super) fn rate(window: Duration, size: u64) -> Self {
        Self::Rate {
            window,
            end: Instant::now() + window,
            remaining: size,
            moved: 0,
        }
    }

    fn wake(&self) -> Instant {
        match self {
            Self::Deadline { at, .. } => *at,
            Self::Rate { end, .. } => *end,
        }
    }

    fn record(&mut self, bytes: u64) {
        if let Self::Rate { moved, .. } = self {
            *moved += bytes;
        }
    }

    /// Checks the clock: past the deadline, or past a window that moved less than it needed
    /// (1 KiB, or what was left), is an error; a window that moved enough starts the next one.
    fn check(&mut self, now: Instant) -> Result<(), FetchError> {
        if now < self.wake() {
            return Ok(());
        }
        let slow = match self {
            Self::Deadline { .. } => true,
            Self::Rate {
                remaining, moved, ..
            } => *moved < MIN_PROGRESS.min(*remaining),
        };
        if slow {
            return Err(self.stalled());
        }
        if let Self::Rate {
            window,
            end,
            remaining,
            moved,
        } = self
        {
            *remaining = remaining.saturating_sub(*moved);
            *moved = 0;
            *end = now + *window;
        }
        Ok(())
    }

    /// A future the registry must answer (the head of a response) in time.
    pub(super) async fn wait<T>(
        &mut self,
        future: impl Future<Output = T>,
    ) -> Result<T, FetchError> {
        timeout_at(self.wake(), future)
            .await
            .map_err(|_| self.stalled())
    }

    /// The error for a registry that sent nothing by the time it had to.
    fn stalled(&self) -> FetchError {
        match self {
            Self::Deadline { timeout, what, .. } => FetchError::Deadline {
                what,
                timeout: DurationSpec(*timeout),
            },
            Self::Rate {
                window, remaining, ..
            } => FetchError::Stalled {
                need: MIN_PROGRESS.min(*remaining).max(1),
                window: DurationSpec(*window),
            },
        }
    }

    /// The next piece of `response`'s body, or `None` at its end.
    pub(super) async fn next(
        &mut self,
        response: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>, FetchError> {
        loop {
            match timeout_at(self.wake(), response.chunk()).await {
                Ok(chunk) => {
                    let chunk = chunk?;
                    if let Some(c) = &chunk {
                        self.record(c.len() as u64);
                        self.check(Instant::now())?;
                    }
                    return Ok(chunk);
                }
                Err(_) => self.check(Instant::now())?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn stalled(result: Result<(), FetchError>) -> bool {
        matches!(result, Err(FetchError::Stalled { .. }))
    }

    #[test]
    fn a_blob_must_move_1_kib_in_every_window_but_has_no_deadline() {
        let start = Instant::now();
        let mut pace = Pace::rate(SECOND, 1 << 20);
        for window in 1..=5 {
            pace.record(1024);
            assert!(
                pace.check(start + SECOND * window).is_ok(),
                "window {window}"
            );
        }
        pace.record(1023);
        assert!(stalled(pace.check(start + SECOND * 6)));
    }

    #[test]
    fn the_last_window_of_a_blob_needs_only_what_was_left() {
        let start = Instant::now();
        let mut pace = Pace::rate(SECOND, 1500);
        pace.record(1024);
        assert!(pace.check(start + SECOND).is_ok());
        pace.record(476);
        assert!(pace.check(start + SECOND * 2).is_ok());
        let mut small = Pace::rate(SECOND, 40);
        small.record(40);
        assert!(small.check(start + SECOND).is_ok());
    }

    #[test]
    fn a_request_that_is_not_a_blob_ends_at_its_deadline_however_much_moved() {
        let start = Instant::now();
        let mut pace = Pace::deadline(SECOND, "manifest");
        pace.record(1 << 20);
        assert!(pace.check(start).is_ok());
        let err = pace.check(start + SECOND * 2);
        assert!(
            matches!(
                err,
                Err(FetchError::Deadline {
                    what: "manifest",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
