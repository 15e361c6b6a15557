//! The images view: the node's store listed, images pulled with their progress shown as they
//! come, and removed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{FormFault, Page, form_error, html, part, read_form, text_error, too_large};
use super::text::T;
use super::views::{self, Nav, PullView};
use super::{Dash, Dashboard};
use crate::NodeError;

/// Pulls remembered for their progress.
const MAX_PULLS: usize = 32;
/// Pulls running at once (each holds a blocking thread while it waits on a registry).
pub(super) const PULLS_AT_ONCE: usize = 4;

/// A pull started from the images view.
pub(super) struct Pull {
    reference: String,
    total: AtomicU64,
    done: AtomicU64,
    outcome: Mutex<Option<Result<String, String>>>,
}

impl qyvol_store::Progress for Pull {
    fn begin(&self, _digest: &str, size: u64) -> usize {
        self.total.fetch_add(size, Ordering::Relaxed);
        0
    }
    fn advance(&self, _id: usize, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
    fn end(&self, _id: usize) {}
}

fn store(dash: &Dashboard) -> Result<qyvol_store::Store, NodeError> {
    qyvol_store::Store::open(&dash.node.home().store())
        .map_err(|e| NodeError::Internal(e.to_string()))
}

pub(super) fn images(dash: &Dashboard) -> Result<Vec<qyvol_store::ImageEntry>, NodeError> {
    store(dash)?
        .list()
        .map_err(|e| NodeError::Internal(e.to_string()))
}

pub(super) async fn images_page(State(dash): State<Dash>, page: Page) -> Response {
    let body = images(&dash)
        .map(|list| views::images_page(&page.ctx, views::images_table(&page.ctx, &list)));
    page.full(page.t(T::Images), Nav::Images, body)
}

pub(super) async fn images_part(State(dash): State<Dash>, page: Page) -> Response {
    part(images(&dash).map(|list| views::images_table(&page.ctx, &list)))
}

#[derive(Deserialize)]
pub(super) struct RefForm {
    reference: String,
}

pub(super) async fn pull(
    State(dash): State<Dash>,
    page: Page,
    form: Result<Form<RefForm>, FormRejection>,
) -> Response {
    let f = match read_form(form) {
        Ok(f) => f,
        Err(FormFault::TooLarge) => return too_large(),
        Err(FormFault::Unreadable) => return form_error("give an image reference to pull"),
    };
    let reference = match qyvol_store::parse_reference(f.reference.trim()) {
        Ok(r) => r,
        Err(e) => return form_error(&format!("`{}`: {e}", f.reference.trim())),
    };
    let Ok(slot) = dash.pulling.clone().try_acquire_owned() else {
        return text_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("{PULLS_AT_ONCE} pulls are running: try again when one has ended"),
        );
    };
    let job = Arc::new(Pull {
        reference: qyvol_store::canonical(&reference),
        total: AtomicU64::new(0),
        done: AtomicU64::new(0),
        outcome: Mutex::new(None),
    });
    let id = dash.next_pull.fetch_add(1, Ordering::Relaxed);
    {
        let mut pulls = dash.pulls.lock().unwrap_or_else(|p| p.into_inner());
        while pulls.len() >= MAX_PULLS {
            pulls.pop_first();
        }
        pulls.insert(id, job.clone());
    }
    let home = dash.node.home().clone();
    let progress: Arc<dyn qyvol_store::Progress> = job.clone();
    let worker = job.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = crate::deploy::pull(&home, &reference, false, Some(progress))
            .map_err(|e| e.to_string());
        *worker.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        drop(slot);
    });
    html(views::pull(&page.ctx, id, &job.reference, &view_of(&job)))
}

fn view_of(job: &Pull) -> PullView {
    PullView {
        total: job.total.load(Ordering::Relaxed),
        done: job.done.load(Ordering::Relaxed),
        outcome: job
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    }
}

pub(super) async fn pull_part(
    State(dash): State<Dash>,
    page: Page,
    Path(id): Path<u64>,
) -> Response {
    let job = dash
        .pulls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let Some(job) = job else {
        return text_error(StatusCode::NOT_FOUND, "no such pull");
    };
    let view = view_of(&job);
    let finished = view.outcome.is_some();
    let mut r = html(views::pull(&page.ctx, id, &job.reference, &view));
    if finished {
        r.headers_mut()
            .insert("hx-trigger", HeaderValue::from_static("qyvol-images"));
    }
    r
}

pub(super) async fn remove_image(
    State(dash): State<Dash>,
    form: Result<Form<RefForm>, FormRejection>,
) -> Response {
    let f = match read_form(form) {
        Ok(f) => f,
        Err(FormFault::TooLarge) => return too_large(),
        Err(FormFault::Unreadable) => {
            return text_error(StatusCode::BAD_REQUEST, "name the image to remove");
        }
    };
    let removed = match (qyvol_store::parse_reference(&f.reference), store(&dash)) {
        (Ok(r), Ok(store)) => store.remove(&r).map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e.to_string()),
    };
    match removed {
        Ok(_) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("hx-trigger", HeaderValue::from_static("qyvol-images"));
            r
        }
        Err(e) => text_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &qyvol_common::escape_controls(&e),
        ),
    }
}
