//! One app's page: its actions, its status (refreshed in place), its grants and limits in
//! words, and the places of its charts and live log.

use maud::{Markup, html};

use super::Ctx;
use super::parts::{bytes, event_list, kind, state_badge, time_of, uptime};
use crate::dashboard::text::T;
use crate::state::Spec;
use crate::{AppView, Event};

pub fn app_page(ctx: &Ctx, app: &AppView, status: Markup) -> Markup {
    let name = &app.name;
    let spec = app.spec.as_ref();
    html! {
        p { a href=(ctx.to("/apps")) { "← " (ctx.t(T::Back)) } }
        div.actions role="group" aria-label=(name) {
            button type="button" hx-post={ (ctx.base) "/ui/apps/" (name) "/start" } hx-swap="none" { (ctx.t(T::Start)) }
            button type="button" hx-post={ (ctx.base) "/ui/apps/" (name) "/stop" } hx-swap="none" { (ctx.t(T::Stop)) }
            button type="button" hx-post={ (ctx.base) "/ui/apps/" (name) "/restart" } hx-swap="none" { (ctx.t(T::Restart)) }
            button.danger type="button" hx-post={ (ctx.base) "/ui/apps/" (name) "/remove" } hx-swap="none"
                hx-confirm=(ctx.t(T::ConfirmRemove)) { (ctx.t(T::Remove)) }
        }
        (status)
        section aria-labelledby="policy" {
            h2 #policy { (ctx.t(T::Policy)) }
            @if let Some(spec) = spec { (policy(ctx, spec, app.buckets.as_deref().unwrap_or_default())) }
        }
        section aria-labelledby="charts-h" {
            h2 #charts-h { (ctx.t(T::Charts)) }
            div #charts hx-get={ (ctx.base) "/ui/apps/" (name) "/charts" } hx-trigger="load, every 2s" {}
        }
        section aria-labelledby="logs-h" {
            h2 #logs-h { (ctx.t(T::Logs)) }
            div.logbar {
                label { input #log-follow type="checkbox" checked; " " (ctx.t(T::Follow)) }
                button #log-pause type="button" aria-pressed="false"
                    data-pause=(ctx.t(T::Pause)) data-resume=(ctx.t(T::Resume)) { (ctx.t(T::Pause)) }
                label.visually-hidden for="log-search" { (ctx.t(T::Search)) }
                input #log-search type="search" placeholder=(ctx.t(T::Search));
                label.visually-hidden for="log-stream" { (ctx.t(T::Streams)) }
                select #log-stream {
                    option value="" { (ctx.t(T::Both)) }
                    option value="stdout" { "stdout" }
                    option value="stderr" { "stderr" }
                }
                span #log-held .hint aria-live="polite" data-text=(ctx.t(T::NewLines)) {}
            }
            div #log .log role="log" tabindex="0" aria-label=(ctx.t(T::GuestOutput))
                data-src={ (ctx.base) "/ui/apps/" (name) "/logs" } {}
        }
    }
}

/// The part of an app's page that changes: its state, numbers and events.
pub fn app_status(ctx: &Ctx, app: &AppView, events: &[Event], now: u64) -> Markup {
    let dash = || "—".to_string();
    html! {
        div #status hx-get={ (ctx.base) "/ui/apps/" (app.name) "/status" } hx-trigger="every 2s, qyvol-changed from:body" hx-swap="outerHTML" {
            section aria-labelledby="status-h" {
                h2 #status-h { (ctx.t(T::Status)) " " (state_badge(ctx, app)) }
                dl.facts {
                    dt { (ctx.t(T::Kind)) } dd { (kind(ctx, app.kind)) }
                    dt { (ctx.t(T::Uptime)) } dd { (uptime(app, now)) }
                    dt { (ctx.t(T::Restarts)) } dd { (app.restarts) }
                    dt { (ctx.t(T::Route)) } dd { code { (app.route.clone().unwrap_or_else(dash)) } }
                    dt { (ctx.t(T::Memory)) } dd { (bytes(app.memory)) }
                    dt { (ctx.t(T::Requests)) } dd { (app.requests) }
                    dt { (ctx.t(T::RestartPolicy)) } dd { code { (app.restart) } }
                    dt { (ctx.t(T::Source)) } dd { code { (qyvol_common::escape_controls(&app.source)) } }
                    dt { (ctx.t(T::Module)) } dd { code.digest { (app.module) } }
                    dt { (ctx.t(T::Created)) } dd { time datetime=(time_of(app.created)) { (time_of(app.created)) } }
                    @if let Some(code) = app.exit_code { dt { (ctx.t(T::ExitCode)) } dd { (code) } }
                    @if let Some(e) = &app.error { dt { (ctx.t(T::LastError)) } dd.error { (qyvol_common::escape_controls(e)) } }
                }
            }
            section aria-labelledby="events-h" {
                h2 #events-h { (ctx.t(T::Events)) }
                (event_list(ctx, events, false))
            }
        }
    }
}

/// The grants and limits as sentences: what the app may read, write, connect to, and how much
/// it may use.
fn policy(ctx: &Ctx, spec: &Spec, buckets: &[qyvol_runtime::keyvalue::BucketUsage]) -> Markup {
    let reads: Vec<_> = spec.mounts.iter().filter(|m| m.readonly).collect();
    let writes: Vec<_> = spec.mounts.iter().filter(|m| !m.readonly).collect();
    let limit = |v: Option<String>| v.unwrap_or_else(|| ctx.t(T::NoLimit).to_string());
    html! {
        dl.facts.policy {
            dt { (ctx.t(T::MayRead)) }
            dd {
                @if reads.is_empty() && writes.is_empty() { (ctx.t(T::NoFiles)) }
                @for m in &reads { div { code { (m.guest) } " ← " code { (m.host.display().to_string()) } } }
            }
            dt { (ctx.t(T::MayWrite)) }
            dd {
                @if writes.is_empty() { "—" }
                @for m in &writes { div { code { (m.guest) } " ← " code { (m.host.display().to_string()) } } }
            }
            dt { (ctx.t(T::MayConnect)) }
            dd {
                @if spec.network.is_empty() { div { (ctx.t(T::NoNetwork)) } }
                @for n in &spec.network { div { code { (n) } } }
                div.hint { @if spec.block_private { (ctx.t(T::PrivateBlocked)) } @else { (ctx.t(T::PrivateAllowed)) } }
            }
            dt { (ctx.t(T::EnvVars)) }
            dd {
                @if spec.env.is_empty() { (ctx.t(T::NoEnv)) }
                @for (k, _) in &spec.env { code { (k) } " " }
            }
            dt { (ctx.t(T::ConfigVars)) }
            dd #config-vars {
                @if spec.config.is_empty() { (ctx.t(T::NoEnv)) }
                @for (k, _) in &spec.config { code { (qyvol_common::escape_controls(k)) } " " }
            }
            dt { (ctx.t(T::Secrets)) }
            dd #secrets {
                @if spec.secrets.is_empty() { (ctx.t(T::NoEnv)) }
                @for k in &spec.secrets { code { (qyvol_common::escape_controls(k)) } " " }
            }
            dt { (ctx.t(T::Buckets)) }
            dd #buckets {
                @if buckets.is_empty() { (ctx.t(T::NoEnv)) }
                @for b in buckets {
                    div { code { (b.name) } " — " (b.keys) " " (ctx.t(T::BucketLine)) ", " (bytes(b.bytes)) }
                }
            }
            @if !spec.args.is_empty() {
                dt { (ctx.t(T::Arguments)) }
                dd { @for a in &spec.args { code { (qyvol_common::escape_controls(a)) } " " } }
            }
            dt { (ctx.t(T::Limits)) }
            dd {
                ul.plain {
                    li { (ctx.t(T::MemoryLimit)) ": " (limit(spec.memory.map(bytes))) }
                    li { (ctx.t(T::TimeLimit)) ": " (limit(spec.timeout_ms.map(|t| format!("{} s", t as f64 / 1000.0)))) }
                    li { (ctx.t(T::Fuel)) ": " (limit(spec.fuel.map(|f| f.to_string()))) }
                    li { (ctx.t(T::MaxBody)) ": " (bytes(spec.max_body)) }
                }
            }
            dt { (ctx.t(T::Precompiled)) }
            dd { @if spec.precompiled.is_some() { (ctx.t(T::PrecompiledAllowed)) } @else { (ctx.t(T::PrecompiledNo)) } }
            @if let Some(uses) = spec.uses {
                dt { (ctx.t(T::Imports)) }
                dd #imports {
                    @let reached = [
                        (uses.filesystem, T::UsesFiles),
                        (uses.sockets, T::UsesSockets),
                        (uses.http_outgoing, T::UsesHttp),
                        (uses.environment, T::UsesEnv),
                    ];
                    @if !reached.iter().any(|(on, _)| *on) { (ctx.t(T::UsesNothing)) }
                    @for (on, what) in reached { @if on { span.tag { (ctx.t(what)) } " " } }
                    @for note in qyvol_launch::describe::notes(uses, !spec.network.is_empty(), !spec.mounts.is_empty(), !spec.env.is_empty()) {
                        div.warning { "⚠ " (ctx.t(T::from(note))) }
                    }
                }
            }
        }
    }
}
