//! Pieces several views show: sizes, durations and times as people read them, an app's state
//! badge and kind, a list of events, and query values percent-encoded.

use maud::{Markup, html};

use super::Ctx;
use crate::dashboard::text::{T, state as state_name};
use crate::state::{AppKind, State};
use crate::{AppView, Event};

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A duration as `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn ago(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

pub(super) fn time_of(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(super) fn state_badge(ctx: &Ctx, app: &AppView) -> Markup {
    let class = match app.state {
        State::Running => "ok",
        State::Created | State::Restarting => "warn",
        State::Exited | State::Stopped => "idle",
        State::Failed => "bad",
    };
    html! {
        span.badge.(class) data-state=(app.state.as_str()) {
            (state_name(app.state, ctx.lang))
            @if app.crash_looping { " · " (ctx.t(T::CrashLoop)) }
            @if let Some(h) = &app.health {
                " · " span.health data-health=(h) title=[app.health_error.as_deref()] {
                    (match h.as_str() {
                        "healthy" => ctx.t(T::Healthy),
                        "unhealthy" => ctx.t(T::Unhealthy),
                        _ => ctx.t(T::HealthStarting),
                    })
                }
            }
            @if app.state == State::Exited {
                @if let Some(code) = app.exit_code { " (" (code) ")" }
            }
        }
    }
}

pub(super) fn uptime(app: &AppView, now: u64) -> String {
    match (app.state, app.started) {
        (State::Running, Some(s)) => ago(now.saturating_sub(s)),
        _ => "—".into(),
    }
}

pub(super) fn kind(ctx: &Ctx, k: AppKind) -> &'static str {
    match k {
        AppKind::Command => ctx.t(T::Command),
        AppKind::Http => ctx.t(T::Http),
    }
}

pub(super) fn state_label(ctx: &Ctx, s: &str) -> &'static str {
    let state = match s {
        "created" => State::Created,
        "running" => State::Running,
        "restarting" => State::Restarting,
        "exited" => State::Exited,
        "stopped" => State::Stopped,
        _ => State::Failed,
    };
    state_name(state, ctx.lang)
}

pub(super) fn event_list(ctx: &Ctx, events: &[Event], with_app: bool) -> Markup {
    html! {
        @if events.is_empty() {
            p { (ctx.t(T::NoEvents)) }
        } @else {
            ol.events {
                @for e in events.iter().rev().take(20) {
                    li {
                        time datetime=(e.time) { (e.time.get(11..19).unwrap_or(&e.time)) }
                        " "
                        @if with_app { a href={ (ctx.base) "/apps/" (e.app) } { (e.app) } " " }
                        strong { (e.action) }
                        @if let Some(d) = &e.detail { " " span.detail { (qyvol_common::escape_controls(d)) } }
                    }
                }
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b&c=<"), "a%20b%26c%3D%3C");
    }
}
