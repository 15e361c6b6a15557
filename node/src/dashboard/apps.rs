//! The overview, the apps table and each app's page, refreshed in place, and the actions on an
//! app (start, stop, restart, remove).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::page::{Page, failed, now, part, text_error};
use super::text::T;
use super::views::{self, AppsQuery, Ctx, Nav};
use super::{Dash, Dashboard};
use crate::NodeError;

fn overview(dash: &Dashboard, ctx: &Ctx) -> Result<Markup, NodeError> {
    let info = dash.node.info()?;
    let (events, _) = dash.node.events();
    Ok(views::overview(
        ctx,
        &info,
        &dash.node.series().node(),
        &events,
        now(),
    ))
}

pub(super) async fn overview_page(State(dash): State<Dash>, page: Page) -> Response {
    page.full(
        page.t(T::Overview),
        Nav::Overview,
        overview(&dash, &page.ctx),
    )
}

pub(super) async fn overview_part(State(dash): State<Dash>, page: Page) -> Response {
    part(overview(&dash, &page.ctx))
}

fn apps_table(dash: &Dashboard, ctx: &Ctx, q: &AppsQuery) -> Result<Markup, NodeError> {
    let all = dash.node.list(true)?;
    let any = !all.is_empty();
    let shown = q.apply(all, now());
    Ok(views::apps_table(ctx, q, &shown, any, now()))
}

pub(super) async fn apps_page(
    State(dash): State<Dash>,
    page: Page,
    Query(q): Query<AppsQuery>,
) -> Response {
    let body = apps_table(&dash, &page.ctx, &q).map(|t| views::apps_page(&page.ctx, &q, t));
    page.full(page.t(T::Apps), Nav::Apps, body)
}

pub(super) async fn apps_part(
    State(dash): State<Dash>,
    page: Page,
    Query(q): Query<AppsQuery>,
) -> Response {
    part(apps_table(&dash, &page.ctx, &q))
}

fn status(dash: &Dashboard, ctx: &Ctx, name: &str) -> Result<Markup, NodeError> {
    let app = dash.node.view(name)?;
    let (events, _) = dash.node.events();
    let mine: Vec<_> = events.into_iter().filter(|e| e.app == name).collect();
    Ok(views::app_status(ctx, &app, &mine, now()))
}

pub(super) async fn app_page(
    State(dash): State<Dash>,
    page: Page,
    Path(name): Path<String>,
) -> Response {
    let body = dash.node.view(&name).and_then(|app| {
        let status = status(&dash, &page.ctx, &name)?;
        Ok(views::app_page(&page.ctx, &app, status))
    });
    page.full(&name, Nav::Apps, body)
}

pub(super) async fn status_part(
    State(dash): State<Dash>,
    page: Page,
    Path(name): Path<String>,
) -> Response {
    part(status(&dash, &page.ctx, &name))
}

pub(super) async fn charts_part(
    State(dash): State<Dash>,
    page: Page,
    Path(name): Path<String>,
) -> Response {
    part(dash.node.exists(&name).and_then(|exists| {
        if exists {
            Ok(views::charts(
                &page.ctx,
                &dash.node.series().of(&name),
                now(),
            ))
        } else {
            Err(NodeError::NotFound(name))
        }
    }))
}

pub(super) async fn act(
    State(dash): State<Dash>,
    Path((name, action)): Path<(String, String)>,
    page: Page,
) -> Response {
    let node = &dash.node;
    let done = match action.as_str() {
        "start" => node.start(&name).await.map(drop),
        "stop" => node.stop(&name).await.map(drop),
        "restart" => node.restart(&name).await.map(drop),
        "remove" => node.remove(&name, true).await,
        _ => return text_error(StatusCode::NOT_FOUND, "no such action"),
    };
    if let Err(e) = done {
        return failed(e);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let (k, v) = if action == "remove" {
        ("hx-redirect", page.ctx.to("/apps"))
    } else {
        ("hx-trigger", "qyvol-changed".to_string())
    };
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(k, v);
    }
    r
}
