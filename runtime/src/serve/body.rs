//! Reading a request's body before it is handed to a handler: whole (handlers get it buffered),
//! no larger than the app's cap, and at a pace, so that a client trickling its body holds a
//! connection for a bounded time and never a handler slot (HOSTILE row 29).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::RequestFailure;

/// How fast a request body must arrive: all of it within `timeout`, and never more than a grace
/// period behind `min_rate` (by time `t`, at least `min_rate × (t − grace)` bytes). The grace is
/// 5 s, or half the timeout when that is shorter. 408 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    pub timeout: Duration,
    /// Bytes per second; 0 judges only the timeout.
    pub min_rate: u64,
}

impl Default for BodyPace {
    /// A minute for the whole body; Kestrel's minimum rate (240 bytes/s after 5 s).
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            min_rate: 240,
        }
    }
}

/// How long a body may lag behind the minimum rate (Kestrel's grace period).
const RATE_GRACE: Duration = Duration::from_secs(5);

impl BodyPace {
    fn grace(&self) -> Duration {
        RATE_GRACE.min(self.timeout / 2)
    }

    /// When the body is late if no more than `received` bytes have arrived by then: the
    /// earlier of the timeout and the moment the minimum rate is no longer met, with the
    /// failure each one means.
    fn deadline(&self, start: Instant, received: u64) -> (Instant, Late) {
        // A timeout past what the clock can count: a year is as good as forever here.
        let timeout = start
            .checked_add(self.timeout)
            .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365));
        let hard = (timeout, Late::Timeout);
        if self.min_rate == 0 {
            return hard;
        }
        // `received / min_rate` seconds, in integers: no float rounding past `Duration::MAX`.
        let nanos = u128::from(received) * 1_000_000_000 / u128::from(self.min_rate);
        let behind = u64::try_from(nanos).map(Duration::from_nanos).ok();
        match behind.and_then(|b| start.checked_add(self.grace() + b)) {
            Some(by_rate) if by_rate < hard.0 => (by_rate, Late::BelowRate),
            _ => hard,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Late {
    Timeout,
    BelowRate,
}

/// Reads the whole body under `pace`, failing past `limit` bytes (413), when it is late (408)
/// or when the client breaks off (400).
pub(super) async fn read(
    mut body: Incoming,
    limit: u64,
    pace: BodyPace,
) -> Result<Bytes, RequestFailure> {
    let start = Instant::now();
    let mut data = BytesMut::new();
    let mut received: u64 = 0;
    loop {
        let (deadline, late) = pace.deadline(start, received);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                return Err(RequestFailure::BadRequest(format!("reading the body: {e}")));
            }
            Err(_) => {
                return Err(match late {
                    Late::Timeout => RequestFailure::BodyTimeout {
                        limit: pace.timeout,
                        received,
                    },
                    Late::BelowRate => RequestFailure::BodyTooSlow {
                        rate: pace.min_rate,
                        received,
                        elapsed: start.elapsed(),
                    },
                });
            }
        };
        // Trailers carry nothing a handler is given.
        if let Ok(chunk) = frame.into_data() {
            received = received.saturating_add(chunk.len() as u64);
            if received > limit {
                return Err(RequestFailure::BodyTooLarge { limit });
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_judged_by_its_rate_after_the_grace_and_by_the_timeout_always() {
        // (timeout s, min rate, bytes received, late at s, why)
        let cases = [
            // Nothing yet: late when the grace ends.
            (60, 240, 0, 5, Late::BelowRate),
            // 2400 bytes buy ten more seconds.
            (60, 240, 2400, 15, Late::BelowRate),
            // Enough bytes, and the timeout comes first.
            (60, 240, 240 * 60, 60, Late::Timeout),
            // So many that the rate's deadline overflows: the timeout still holds.
            (60, 240, u64::MAX, 60, Late::Timeout),
            // A short timeout shortens the grace to half of it.
            (2, 240, 0, 1, Late::BelowRate),
            // No minimum rate: only the timeout.
            (2, 0, 0, 2, Late::Timeout),
        ];
        let t0 = Instant::now();
        for (timeout, min_rate, received, late_at, why) in cases {
            let pace = BodyPace {
                timeout: Duration::from_secs(timeout),
                min_rate,
            };
            assert_eq!(
                pace.deadline(t0, received),
                (t0 + Duration::from_secs(late_at), why),
                "{pace:?} after {received} bytes"
            );
        }
    }
}
