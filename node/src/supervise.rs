//! Command apps: each runs under a supervisor task that starts an instance, records how it
//! ended, and starts it again as its restart policy says, with Docker's back-off: 100 ms,
//! doubling after each run shorter than ten seconds, at most a minute; a run of ten seconds or
//! more starts the count again. Stopping the app ends the instance and cancels any pending
//! restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qyvol_runtime::{Compilation, Outcome, Prepared, RunRequest, Stop, Wasm};

use crate::state::{AppRecord, RestartPolicy, State, now_ms};
use crate::{Instance, Node, NodeError};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long is stable: the back-off starts again from the first delay.
const STABLE: Duration = Duration::from_secs(10);

/// Compiles the app (so a deploy that returns has a module that links) and starts its
/// supervisor.
pub(crate) async fn start(
    node: &Node,
    record: &AppRecord,
    wasm: Wasm,
    mut request: RunRequest,
    engine: qyvol_runtime::EngineConfig,
    reset: bool,
    durable: &mut crate::deploy::Durable,
) -> Result<(), NodeError> {
    let stop = Stop::new();
    request.stop = Some(stop.clone());
    let cache = node.cache().clone();
    let template = request.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        Prepared::new(
            &wasm,
            &template,
            engine,
            Compilation {
                cache: Some(&cache),
                progress: None,
                compiler: qyvol_runtime::Compiler::Auto,
            },
        )
    })
    .await
    .map_err(NodeError::internal)?
    .map_err(|e| NodeError::Launch(e.into()))?;
    // Running from here on (the supervisor's first start follows at once), so a deploy's
    // answer says so; a deploy's record is accepted in the same commit (one write, not two),
    // once its module outlives a crash.
    durable.wait().await?;
    node.db().update(&record.name, |r| {
        r.accepted = true;
        if reset {
            r.status.restarts = 0;
            r.status.quick_failures = 0;
        }
        r.status.state = State::Running;
        r.status.started = Some(now_ms());
    })?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Registered before the task runs, so its last step always finds (and removes) itself.
    let mut instances = node.instances().lock().unwrap_or_else(|p| p.into_inner());
    let task = tokio::spawn(supervise(
        node.clone(),
        record.name.clone(),
        record.restart,
        Arc::new(prepared),
        request,
        (stop.clone(), id),
    ));
    instances.insert(record.name.clone(), Instance { stop, task, id });
    Ok(())
}

/// How an instance ended, as a short word for `ps`, events and metrics.
fn cause(outcome: &Result<Outcome, String>) -> (&'static str, Option<i32>, Option<String>) {
    match outcome {
        // The exit code is the runtime's, as `qyvol run` and the shim give it.
        Ok(o @ Outcome::Exited(_)) => ("exited", Some(o.exit_code()), None),
        Ok(o @ Outcome::Trapped { trap, .. }) => {
            ("trapped", Some(o.exit_code()), Some(trap.clone()))
        }
        Ok(o @ Outcome::TimedOut(_)) => ("timeout", Some(o.exit_code()), None),
        Ok(o @ Outcome::LimitExceeded { .. }) => ("memory", Some(o.exit_code()), None),
        Ok(o @ Outcome::FuelExhausted(_)) => ("fuel", Some(o.exit_code()), None),
        Ok(o @ Outcome::Stopped) => ("stopped", Some(o.exit_code()), None),
        Err(e) => ("error", None, Some(e.clone())),
    }
}

fn failed(outcome: &Result<Outcome, String>) -> bool {
    !matches!(outcome, Ok(Outcome::Exited(0)) | Ok(Outcome::Stopped))
}

/// Whether the policy restarts after this run, given the restarts made so far.
fn restarts(policy: RestartPolicy, outcome: &Result<Outcome, String>, made: u32) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::OnFailure { max } => failed(outcome) && max.is_none_or(|m| made < m),
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
    }
}

/// The delay before the next start after `quick` short runs in a row.
fn delay(quick: u32) -> Duration {
    let factor = 2u32.saturating_pow(quick.saturating_sub(1).min(20));
    FIRST_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

async fn supervise(
    node: Node,
    name: String,
    policy: RestartPolicy,
    prepared: Arc<Prepared>,
    request: RunRequest,
    (stop, id): (Stop, u64),
) {
    let record = |f: &dyn Fn(&mut AppRecord)| {
        if let Err(e) = node.db().update(&name, |r| f(r)) {
            tracing::error!(app = %name, error = %e, "cannot record an app's state");
        }
    };
    loop {
        if stop.is_stopped() {
            break;
        }
        record(&|r| {
            r.status.state = State::Running;
            r.status.started = Some(now_ms());
            r.status.error = None;
        });
        node.metrics().started(&name);
        node.event(&name, "start", None);
        let began = Instant::now();
        let p = prepared.clone();
        let req = request.clone();
        let outcome = tokio::task::spawn_blocking(move || p.run(&req).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let ran = began.elapsed();
        let (word, code, error) = cause(&outcome);
        node.metrics().exited(&name, word);
        if stop.is_stopped() {
            // `stop` records the state; only the way the instance ended is kept here.
            record(&|r| {
                r.status.finished = Some(now_ms());
                r.status.exit_cause = Some("stopped".into());
                r.status.exit_code = None;
            });
            break;
        }
        let detail = match code {
            Some(c) => format!("{word} {c}"),
            None => word.to_string(),
        };
        node.event(&name, "exit", Some(detail));
        let (made, quick_failures) = node
            .db()
            .get(&name)
            .ok()
            .flatten()
            .map_or((0, 0), |r| (r.status.restarts, r.status.quick_failures));
        let again = restarts(policy, &outcome, made);
        let quick = if ran >= STABLE { 1 } else { quick_failures + 1 };
        record(&|r| {
            r.status.finished = Some(now_ms());
            r.status.exit_cause = Some(word.into());
            r.status.exit_code = code;
            r.status.error = error.clone();
            if again {
                r.status.state = State::Restarting;
                r.status.restarts += 1;
                r.status.quick_failures = quick;
            } else {
                r.status.state = State::Exited;
            }
        });
        if !again {
            break;
        }
        node.metrics().restarted(&name);
        let wait = delay(quick);
        node.event(
            &name,
            "restart",
            Some(format!("in {} ms", wait.as_millis())),
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.stopped() => break,
        }
    }
    // The instance is over (its last lines are in its log): release the code.
    drop(request);
    tokio::task::spawn_blocking(move || {
        if let Ok(p) = Arc::try_unwrap(prepared) {
            p.shutdown();
        }
    })
    .await
    .ok();
    node.instances()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|n, i| n != &name || i.id != id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_100_ms_to_a_minute() {
        assert_eq!(delay(1), Duration::from_millis(100));
        assert_eq!(delay(2), Duration::from_millis(200));
        assert_eq!(delay(4), Duration::from_millis(800));
        assert_eq!(delay(40), MAX_DELAY);
    }

    #[test]
    fn on_failure_stops_after_its_maximum_and_never_restarts_a_clean_exit() {
        let policy = RestartPolicy::OnFailure { max: Some(3) };
        let crash = Ok(Outcome::Exited(1));
        assert!(restarts(policy, &crash, 2));
        assert!(!restarts(policy, &crash, 3));
        assert!(!restarts(policy, &Ok(Outcome::Exited(0)), 0));
        assert!(restarts(RestartPolicy::Always, &Ok(Outcome::Exited(0)), 99));
        assert!(!restarts(RestartPolicy::No, &crash, 0));
    }
}
