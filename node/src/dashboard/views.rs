//! The dashboard's HTML, rendered on the server (maud escapes every value it is given) and
//! refreshed in place by htmx. No inline script or style: the page's Content-Security-Policy
//! allows only the node's own files.

use maud::{DOCTYPE, Markup, html};

use super::text::{Lang, T, state as state_name};
use crate::series::Sample;
use crate::state::{AppKind, Spec, State};
use crate::{AppView, Event, NodeInfo};

/// What every page needs to know about the request.
pub struct Ctx {
    pub lang: Lang,
    /// The session's CSRF token: sent by htmx on every request that changes state.
    pub csrf: Option<String>,
    /// The page's path within the session, for the language toggle.
    pub path: String,
    /// Where the session's pages are (`/s/<session>`; empty without a session): the session
    /// rides in the path, never in a cookie, which a browser would send to every local port.
    pub base: String,
}

impl Ctx {
    pub fn t(&self, t: T) -> &'static str {
        t.text(self.lang)
    }

    /// `path` (absolute within the dashboard) under the session's base.
    pub fn to(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Apps,
    Images,
    Deploy,
    None,
}

/// htmx's settings: no `eval`, no scripts from swapped content, no inline indicator style
/// (which the CSP would refuse), requests only to this node.
/// A form's 422 answer (what to fix) is swapped in where the form says; other errors go to
/// the page's notice (`app.js`).
const HTMX_CONFIG: &str = r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"selfRequestsOnly":true,"historyCacheSize":0,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true,"error":false},{"code":"[45]..","swap":false,"error":true}]}"#;

pub fn page(ctx: &Ctx, title: &str, nav: Nav, body: Markup) -> Markup {
    let headers = ctx
        .csrf
        .as_ref()
        .map(|c| serde_json::json!({ "X-Csrf-Token": c }).to_string());
    let link = |to: Nav, href: &str, t: T| {
        html! {
            li { a href=(href) aria-current=[(nav == to).then_some("page")] { (ctx.t(t)) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · Qyvol" }
                link rel="stylesheet" href="/assets/app.css";
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/app.js" defer {}
            }
            body hx-headers=[headers] {
                a.skip href="#main" { (ctx.t(T::SkipToContent)) }
                header.top {
                    a.brand href=(ctx.to("/")) { "Qyvol" }
                    @if ctx.csrf.is_some() {
                        nav aria-label=(ctx.t(T::Main)) {
                            ul {
                                (link(Nav::Overview, &ctx.to("/"), T::Overview))
                                (link(Nav::Apps, &ctx.to("/apps"), T::Apps))
                                (link(Nav::Images, &ctx.to("/images"), T::Images))
                                (link(Nav::Deploy, &ctx.to("/deploy"), T::Deploy))
                            }
                        }
                    }
                    div.tools {
                        a href={ (ctx.to(&ctx.path)) "?lang=" (ctx.lang.other().code()) } lang=(ctx.lang.other().code()) {
                            (ctx.t(T::SwitchTo))
                        }
                        @if ctx.csrf.is_some() {
                            button.link type="button" hx-post=(ctx.to("/logout")) { (ctx.t(T::LogOut)) }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    div #notice role="alert" {}
                    (body)
                }
            }
        }
    }
}

pub fn login(ctx: &Ctx, used_link: bool) -> Markup {
    html! {
        div.card.login {
            @if used_link {
                p.error role="alert" { (ctx.t(T::LinkUsed)) }
            }
            p { (ctx.t(T::LoginHowTo)) }
            pre { code { "qyvol dashboard" } }
            p.hint { (ctx.t(T::NeverTheToken)) }
        }
    }
}

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

fn time_of(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn state_badge(ctx: &Ctx, app: &AppView) -> Markup {
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
            @if app.state == State::Exited {
                @if let Some(code) = app.exit_code { " (" (code) ")" }
            }
        }
    }
}

fn uptime(app: &AppView, now: u64) -> String {
    match (app.state, app.started) {
        (State::Running, Some(s)) => ago(now.saturating_sub(s)),
        _ => "—".into(),
    }
}

fn kind(ctx: &Ctx, k: AppKind) -> &'static str {
    match k {
        AppKind::Command => ctx.t(T::Command),
        AppKind::Http => ctx.t(T::Http),
    }
}

pub fn overview(
    ctx: &Ctx,
    info: &NodeInfo,
    samples: &[Sample],
    events: &[Event],
    now: u64,
) -> Markup {
    let last = samples.last().copied().unwrap_or_default();
    html! {
        div #overview hx-get=(ctx.to("/ui/overview")) hx-trigger="every 2s" hx-swap="outerHTML" {
            dl.cards {
                div.card { dt { (ctx.t(T::Version)) } dd #version { (info.version) } }
                div.card { dt { (ctx.t(T::Uptime)) } dd { (ago(now.saturating_sub(info.started))) } }
                div.card { dt { (ctx.t(T::RequestsPerSec)) } dd #rps { (format!("{:.1}", last.requests_per_sec)) } }
                div.card { dt { (ctx.t(T::MemoryInUse)) } dd { (bytes(info.memory)) } }
                div.card { dt { (ctx.t(T::RequestsServed)) } dd #served { (info.requests) } }
            }
            div.columns {
                section aria-labelledby="by-state" {
                    h2 #by-state { (ctx.t(T::AppsByState)) }
                    @if info.apps.is_empty() {
                        p { (ctx.t(T::NoApps)) }
                    } @else {
                        ul.states {
                            @for (state, n) in &info.apps {
                                li { a #{ "state-" (state) } href={ (ctx.base) "/apps?state=" (state) } { span.count { (n) } " " (state_label(ctx, state)) } }
                            }
                        }
                    }
                    (chart(ctx, ctx.t(T::RequestsPerSec), samples, &[("rps", "s1", |s: &Sample| Some(s.requests_per_sec))], now))
                }
                section aria-labelledby="recent" {
                    h2 #recent { (ctx.t(T::RecentEvents)) }
                    (event_list(ctx, events, true))
                }
            }
        }
    }
}

fn state_label(ctx: &Ctx, s: &str) -> &'static str {
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

fn event_list(ctx: &Ctx, events: &[Event], with_app: bool) -> Markup {
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

/// The apps table's query: filter, state, sort column and direction.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct AppsQuery {
    pub q: String,
    pub state: String,
    pub sort: String,
    pub dir: String,
}

impl AppsQuery {
    fn url(&self, sort: &str, dir: &str) -> String {
        let mut url = String::from("?");
        for (k, v) in [
            ("q", self.q.as_str()),
            ("state", self.state.as_str()),
            ("sort", sort),
            ("dir", dir),
        ] {
            if !v.is_empty() {
                if url.len() > 1 {
                    url.push('&');
                }
                url.push_str(k);
                url.push('=');
                url.push_str(&encode(v));
            }
        }
        url
    }

    /// Filters and sorts `apps` as asked.
    pub fn apply(&self, mut apps: Vec<AppView>, now: u64) -> Vec<AppView> {
        let q = self.q.to_lowercase();
        apps.retain(|a| {
            (q.is_empty() || a.name.to_lowercase().contains(&q))
                && (self.state.is_empty() || a.state.as_str() == self.state)
        });
        let up = |a: &AppView| match (a.state, a.started) {
            (State::Running, Some(s)) => now.saturating_sub(s),
            _ => 0,
        };
        match self.sort.as_str() {
            "kind" => apps.sort_by_key(|a| a.kind.as_str()),
            "state" => apps.sort_by_key(|a| a.state.as_str()),
            "restarts" => apps.sort_by_key(|a| a.restarts),
            "uptime" => apps.sort_by_key(up),
            "route" => apps.sort_by(|a, b| a.route.cmp(&b.route)),
            "memory" => apps.sort_by_key(|a| a.memory),
            "requests" => apps.sort_by_key(|a| a.requests),
            _ => apps.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        if self.dir == "desc" {
            apps.reverse();
        }
        apps
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

pub fn apps_page(ctx: &Ctx, q: &AppsQuery, table: Markup) -> Markup {
    let states = [
        State::Running,
        State::Created,
        State::Restarting,
        State::Exited,
        State::Stopped,
        State::Failed,
    ];
    html! {
        form.filters #apps-filter hx-get=(ctx.to("/ui/apps")) hx-target="#apps" hx-swap="outerHTML"
            hx-trigger="input changed delay:250ms from:#q, change from:#state, submit" role="search" {
            label.visually-hidden for="q" { (ctx.t(T::Filter)) }
            input #q type="search" name="q" value=(q.q) placeholder=(ctx.t(T::Filter));
            label.visually-hidden for="state" { (ctx.t(T::State)) }
            select #state name="state" {
                option value="" { (ctx.t(T::AllStates)) }
                @for s in states {
                    option value=(s.as_str()) selected[q.state == s.as_str()] { (state_name(s, ctx.lang)) }
                }
            }
            input type="hidden" name="sort" value=(q.sort);
            input type="hidden" name="dir" value=(q.dir);
        }
        (table)
    }
}

pub fn apps_table(ctx: &Ctx, q: &AppsQuery, apps: &[AppView], any: bool, now: u64) -> Markup {
    let column = |key: &str, t: T| {
        let current = q.sort == key || (q.sort.is_empty() && key == "name");
        let desc = current && q.dir == "desc";
        let next = if current && !desc { "desc" } else { "asc" };
        let sort = match (current, desc) {
            (false, _) => None,
            (true, false) => Some("ascending"),
            (true, true) => Some("descending"),
        };
        html! {
            th scope="col" aria-sort=[sort] {
                a #{ "sort-" (key) } href={ (ctx.base) "/apps" (q.url(key, next)) } { (ctx.t(t)) @if current { @if desc { " ↓" } @else { " ↑" } } }
            }
        }
    };
    html! {
        div #apps hx-get={ (ctx.base) "/ui/apps" (q.url(&q.sort, &q.dir)) } hx-trigger="every 2s" hx-swap="outerHTML" {
            @if apps.is_empty() {
                p.empty { @if any { (ctx.t(T::NoMatch)) } @else { (ctx.t(T::NoApps)) } }
            } @else {
                div.scroll {
                    table.apps {
                        thead { tr {
                            (column("name", T::Name)) (column("kind", T::Kind)) (column("state", T::State))
                            (column("restarts", T::Restarts)) (column("uptime", T::Uptime)) (column("route", T::Route))
                            (column("memory", T::Memory)) (column("requests", T::Requests))
                        } }
                        tbody {
                            @for a in apps {
                                tr data-app=(a.name) {
                                    // A stable id: htmx gives focus back to it after each refresh.
                                    th scope="row" { a #{ "app-" (a.name) } href={ (ctx.base) "/apps/" (a.name) } { (a.name) } }
                                    td { (kind(ctx, a.kind)) }
                                    td { (state_badge(ctx, a)) }
                                    td.num { (a.restarts) }
                                    td { (uptime(a, now)) }
                                    td { code { (a.route.as_deref().unwrap_or("—")) } }
                                    td.num { (bytes(a.memory)) }
                                    td.num { (a.requests) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

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
            @if let Some(spec) = spec { (policy(ctx, spec)) }
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
fn policy(ctx: &Ctx, spec: &Spec) -> Markup {
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

type Pick = fn(&Sample) -> Option<f64>;

pub fn charts(ctx: &Ctx, samples: &[Sample], now: u64) -> Markup {
    html! {
        div.charts {
            (chart(ctx, ctx.t(T::RequestsPerSec), samples, &[("req/s", "s1", |s: &Sample| Some(s.requests_per_sec))], now))
            (chart(ctx, ctx.t(T::LatencyMs), samples, &[
                ("p50", "s1", (|s: &Sample| s.p50) as Pick),
                ("p95", "s2", |s: &Sample| s.p95),
                ("p99", "s3", |s: &Sample| s.p99),
            ], now))
            (chart(ctx, &format!("{} (KiB)", ctx.t(T::Memory)), samples, &[("KiB", "s1", |s: &Sample| Some(s.memory as f64 / 1024.0))], now))
        }
    }
}

/// A line chart of the last five minutes as inline SVG (colours come from the stylesheet).
fn chart(
    ctx: &Ctx,
    title: &str,
    samples: &[Sample],
    lines: &[(&str, &str, Pick)],
    now: u64,
) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 140.0;
    let span = (crate::series::KEEP as u64) * 1000;
    let start = now.saturating_sub(span);
    let max = samples
        .iter()
        .flat_map(|s| lines.iter().filter_map(|(_, _, pick)| pick(s)))
        .fold(0.0f64, f64::max);
    let top = nice(max);
    let x = |t: u64| (t.saturating_sub(start) as f64 / span as f64 * W).clamp(0.0, W);
    let y = |v: f64| H - (v / top * (H - 8.0));
    let latest: Vec<String> = lines
        .iter()
        .map(|(label, _, pick)| {
            let v = samples.last().and_then(pick);
            format!("{label} {}", v.map_or("—".into(), |v| format!("{v:.1}")))
        })
        .collect();
    let summary = format!("{title}: {}", latest.join(", "));
    html! {
        figure.chart {
            figcaption { (title) span.latest { (latest.join(" · ")) } }
            svg viewBox={ "0 0 " (W) " " (H + 22.0) } role="img" aria-label=(summary) {
                line.axis x1="0" y1=(H) x2=(W) y2=(H) {}
                line.grid x1="0" y1=(y(top / 2.0)) x2=(W) y2=(y(top / 2.0)) {}
                text.label x="4" y="18" { (fmt_num(top)) }
                text.label x="4" y=(H + 18.0) { (ctx.t(T::Last5Min)) }
                text.label x=(W - 4.0) y=(H + 18.0) text-anchor="end" { (ctx.t(T::Now)) }
                @for (_, class, pick) in lines {
                    @for seg in segments(samples, *pick) {
                        polyline.(class) points=(seg.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ")) {}
                    }
                }
            }
            @if lines.len() > 1 {
                ul.legend { @for (label, class, _) in lines { li.(class) { (label) } } }
            }
        }
    }
}

/// Runs of consecutive samples that have a value (a gap breaks the line).
fn segments(samples: &[Sample], pick: Pick) -> Vec<Vec<(u64, f64)>> {
    let mut out: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut run = Vec::new();
    for s in samples {
        match pick(s) {
            Some(v) => run.push((s.time, v)),
            None if !run.is_empty() => out.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    // A single point draws nothing: make it a short flat line.
    for seg in &mut out {
        if seg.len() == 1 {
            let (t, v) = seg[0];
            seg.insert(0, (t.saturating_sub(1000), v));
        }
    }
    out
}

/// A round number at or above `v` for the top of a chart.
fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub fn images_page(ctx: &Ctx, table: Markup) -> Markup {
    html! {
        form.inline hx-post=(ctx.to("/ui/images/pull")) hx-target="#pulls" hx-swap="afterbegin" {
            label for="pull-ref" { (ctx.t(T::PullRef)) }
            div.row {
                input #pull-ref name="reference" required autocomplete="off" spellcheck="false";
                button type="submit" { (ctx.t(T::Pull)) }
            }
        }
        div #pulls aria-live="polite" {}
        (table)
    }
}

pub fn images_table(ctx: &Ctx, images: &[qyvol_store::ImageEntry]) -> Markup {
    html! {
        div #images hx-get=(ctx.to("/ui/images")) hx-trigger="every 5s, qyvol-images from:body" hx-swap="outerHTML" {
            @if images.is_empty() {
                p.empty { (ctx.t(T::NoImages)) }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th scope="col" { (ctx.t(T::Reference)) }
                        th scope="col" { (ctx.t(T::Digest)) }
                        th scope="col" { (ctx.t(T::Size)) }
                        th scope="col" { (ctx.t(T::Created)) }
                        th scope="col" { span.visually-hidden { (ctx.t(T::Deploy)) } }
                    } }
                    tbody {
                        @for i in images {
                            tr data-image=(i.reference) {
                                th scope="row" { code { (i.reference) } }
                                td { code.digest title=(i.digest) { (i.digest.get(..19).unwrap_or(&i.digest)) "…" } }
                                td.num { (bytes(i.size)) }
                                td { (time_of(i.created * 1000)) }
                                td.actions {
                                    a.button #{ "deploy-" (i.reference) } href={ (ctx.base) "/deploy?image=" (encode(&i.reference)) } { (ctx.t(T::DeployThis)) }
                                    " "
                                    button.danger #{ "remove-" (i.reference) } type="button" hx-post=(ctx.to("/ui/images/remove")) hx-swap="none"
                                        hx-vals=(serde_json::json!({ "reference": i.reference }).to_string())
                                        hx-confirm=(ctx.t(T::ConfirmRemoveImage)) { (ctx.t(T::Remove)) }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// A pull's progress as the view shows it.
pub struct PullView {
    pub total: u64,
    pub done: u64,
    pub outcome: Option<Result<String, String>>,
}

/// A pull's progress; polls itself until the pull ends.
pub fn pull(ctx: &Ctx, id: u64, reference: &str, progress: &PullView) -> Markup {
    let (label, done) = match &progress.outcome {
        None => (ctx.t(T::Pulling), false),
        Some(Ok(_)) => (ctx.t(T::Pulled), true),
        Some(Err(_)) => (ctx.t(T::PullFailed), true),
    };
    html! {
        div.pull #{ "pull-" (id) } data-done=(done)
            hx-get=[(!done).then(|| ctx.to(&format!("/ui/pulls/{id}")))] hx-trigger=[(!done).then_some("every 300ms")] hx-swap="outerHTML" {
            strong { (label) } " " code { (reference) } " "
            progress max=(progress.total.max(1)) value=(progress.done.min(progress.total.max(1))) aria-label=(label) {}
            " " (bytes(progress.done)) " / " (bytes(progress.total))
            @if let Some(Err(e)) = &progress.outcome { p.error { (qyvol_common::escape_controls(e)) } }
            @if let Some(Ok(digest)) = &progress.outcome { " " code.digest { (digest) } }
        }
    }
}

pub fn deploy_page(ctx: &Ctx, images: &[qyvol_store::ImageEntry], chosen: &str) -> Markup {
    let policies = ["no", "on-failure", "always", "unless-stopped"];
    html! {
        form.card.deploy hx-post=(ctx.to("/ui/deploy")) hx-encoding="multipart/form-data" hx-target="#deploy-result" {
            fieldset {
                legend { (ctx.t(T::FromImage)) }
                label.visually-hidden for="image" { (ctx.t(T::FromImage)) }
                select #image name="image" {
                    option value="" { "—" }
                    @for i in images {
                        option value=(i.reference) selected[i.reference == chosen] { (i.reference) }
                    }
                }
            }
            fieldset {
                legend { (ctx.t(T::FromUpload)) }
                label for="file" { (ctx.t(T::UploadFile)) }
                input #file type="file" name="file" accept=".qyvc,.wasm";
            }
            label for="name" { (ctx.t(T::NameOptional)) }
            input #name name="name" autocomplete="off" spellcheck="false" pattern="[a-z0-9][a-z0-9._-]*";
            label for="restart" { (ctx.t(T::RestartPolicy)) }
            select #restart name="restart" {
                @for p in policies { option value=(p) { (p) } }
            }
            button type="submit" { (ctx.t(T::DeployButton)) }
            div #deploy-result aria-live="polite" {}
        }
    }
}

/// An error shown in place: plain text, escaped.
pub fn error(text: &str) -> Markup {
    html! { p.error role="alert" { (qyvol_common::escape_controls(text)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_tops_are_round_numbers_at_or_above_the_peak() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.2), 5.0);
        assert_eq!(nice(10.0), 10.0);
        assert_eq!(nice(11.0), 20.0);
        assert_eq!(nice(0.3), 0.5);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b&c=<"), "a%20b%26c%3D%3C");
    }
}
