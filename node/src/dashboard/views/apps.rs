//! The overview (the node's numbers, apps by state, recent events) and the apps table with its
//! filter and sorting.

use maud::{Markup, html};

use super::Ctx;
use super::charts::chart;
use super::parts::{ago, bytes, encode, event_list, kind, state_badge, state_label, uptime};
use crate::dashboard::text::{T, state as state_name};
use crate::series::Sample;
use crate::state::State;
use crate::{AppView, Event, NodeInfo};

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

/// Rows the apps table shows at once: a node of thousands of apps pages through them.
pub const PAGE_ROWS: usize = 100;

/// The apps table's query: filter, state, sort column and direction, page.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct AppsQuery {
    pub q: String,
    pub state: String,
    pub sort: String,
    pub dir: String,
    /// 1-based; anything else is the first page.
    pub page: String,
}

impl AppsQuery {
    /// The page asked for (the first when none or not a number).
    fn page(&self) -> usize {
        self.page.parse().unwrap_or(1).max(1)
    }

    /// This query's URL at `page` (another sort or filter starts again at the first page).
    fn url_at(&self, page: usize) -> String {
        let mut url = self.url(&self.sort, &self.dir);
        if page > 1 {
            if url.len() > 1 {
                url.push('&');
            }
            url.push_str(&format!("page={page}"));
        }
        url
    }

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
            "instances" => apps.sort_by_key(|a| a.instances),
            _ => apps.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        if self.dir == "desc" {
            apps.reverse();
        }
        apps
    }
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

/// The apps `q` matched (all of them, filtered and sorted), one page of them shown.
pub fn apps_table(ctx: &Ctx, q: &AppsQuery, matched: &[AppView], any: bool, now: u64) -> Markup {
    let pages = matched.len().div_ceil(PAGE_ROWS).max(1);
    let page = q.page().min(pages);
    let from = (page - 1) * PAGE_ROWS;
    let apps = &matched[from..matched.len().min(from + PAGE_ROWS)];
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
        div #apps hx-get={ (ctx.base) "/ui/apps" (q.url_at(page)) } hx-trigger="every 2s" hx-swap="outerHTML" {
            @if apps.is_empty() {
                p.empty { @if any { (ctx.t(T::NoMatch)) } @else { (ctx.t(T::NoApps)) } }
            } @else {
                div.scroll {
                    table.apps {
                        thead { tr {
                            (column("name", T::Name)) (column("kind", T::Kind)) (column("state", T::State))
                            (column("restarts", T::Restarts)) (column("uptime", T::Uptime)) (column("route", T::Route))
                            (column("memory", T::Memory)) (column("requests", T::Requests))
                            (column("instances", T::Instances))
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
                                    td.num { (a.instances) }
                                }
                            }
                        }
                    }
                }
                @if pages > 1 {
                    nav.pages aria-label=(ctx.t(T::Pages)) {
                        @if page > 1 {
                            a #page-prev rel="prev" href={ (ctx.base) "/apps" (q.url_at(page - 1)) } { "← " (ctx.t(T::Previous)) }
                        }
                        span #page-range { (from + 1) "–" (from + apps.len()) " " (ctx.t(T::Of)) " " (matched.len()) }
                        @if page < pages {
                            a #page-next rel="next" href={ (ctx.base) "/apps" (q.url_at(page + 1)) } { (ctx.t(T::Next)) " →" }
                        }
                    }
                }
            }
        }
    }
}
