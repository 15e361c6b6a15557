//! The deploy view: an image of the node's store, or an uploaded bundle or wasm file, deployed
//! with the form's name and restart policy.

use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{Page, failed, form_error};
use super::pulls::images;
use super::text::T;
use super::views::{self, Nav};
use super::{Dash, Dashboard};
use crate::DeployRequest;

/// A text field of the deploy form (an image reference, a name, a policy).
const MAX_FIELD: usize = 4096;
/// The largest upload: the largest module Qyvol runs, plus room for a bundle's other layers.
pub(super) const MAX_UPLOAD: usize = qyvol_runtime::DEFAULT_MAX_MODULE_SIZE as usize * 2;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DeployQuery {
    image: String,
}

pub(super) async fn deploy_page(
    State(dash): State<Dash>,
    page: Page,
    Query(q): Query<DeployQuery>,
) -> Response {
    let body = images(&dash).map(|list| views::deploy_page(&page.ctx, &list, &q.image));
    page.full(page.t(T::Deploy), Nav::Deploy, body)
}

/// Deploys an image from the store or an uploaded bundle or wasm, with the form's name and
/// restart policy. The upload is written to a private temporary file beside the node's state
/// and deleted once its module is stored; like any bundle, its own manifest grants nothing.
pub(super) async fn deploy(State(dash): State<Dash>, page: Page, mut form: Multipart) -> Response {
    let mut req = DeployRequest::default();
    let mut upload: Option<(tempfile::NamedTempFile, String)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return form_error(&format!("the form could not be read: {}", e.body_text())),
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_string();
                if file_name.is_empty() {
                    continue;
                }
                let ext = if file_name.ends_with(".qyvc") {
                    ".qyvc"
                } else if file_name.ends_with(".wasm") {
                    ".wasm"
                } else {
                    return form_error("upload a `.qyvc` bundle or a `.wasm` file");
                };
                match save_upload(&dash, field, ext).await {
                    Ok(tmp) => upload = Some((tmp, file_name)),
                    Err(e) => return form_error(&e),
                }
            }
            "image" | "name" | "restart" => {
                let value = match small_text(field).await {
                    Ok(v) => v.trim().to_string(),
                    Err(e) => return form_error(&e),
                };
                if value.is_empty() {
                    continue;
                }
                match name.as_str() {
                    "image" => req.source = value,
                    "name" => req.name = Some(value),
                    _ => req.restart = Some(value),
                }
            }
            _ => {}
        }
    }
    let label = match &upload {
        Some((tmp, file_name)) => {
            req.source = tmp.path().display().to_string();
            let shown: String = file_name.chars().take(100).collect();
            Some(format!("upload:{}", qyvol_common::escape_controls(&shown)))
        }
        None if req.source.is_empty() => return form_error(page.t(T::NoSource)),
        // The form deploys images of the local store, nothing else: not a path on the node's
        // machine (its manifest's grants would count), not a pull.
        None => match images(&dash) {
            Ok(list) if list.iter().any(|i| i.reference == req.source) => None,
            Ok(_) => {
                return form_error(&format!(
                    "`{}` is not an image in the node's store: pull it first",
                    req.source
                ));
            }
            Err(e) => return failed(e),
        },
    };
    let result = dash.node.deploy_labelled(req, label).await;
    drop(upload);
    match result {
        Ok(view) => {
            let mut r = StatusCode::CREATED.into_response();
            let to = page.ctx.to(&format!("/apps/{}", views::encode(&view.name)));
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert("hx-redirect", v);
            }
            r
        }
        Err(e) => form_error(&e.to_string()),
    }
}

/// A text field of at most [`MAX_FIELD`] bytes, read as it arrives.
async fn small_text(mut field: axum::extract::multipart::Field<'_>) -> Result<String, String> {
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_FIELD {
                    return Err(format!("a form field may be at most {MAX_FIELD} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(e.body_text()),
        }
    }
    String::from_utf8(bytes).map_err(|_| "a form field is not UTF-8 text".to_string())
}

async fn save_upload(
    dash: &Dashboard,
    mut field: axum::extract::multipart::Field<'_>,
    ext: &str,
) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    let dir = dash.node.paths().uploads();
    qyvol_common::create_private_dir(&dir).map_err(|e| e.to_string())?;
    let mut tmp = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(ext)
        .tempfile_in(&dir)
        .map_err(|e| e.to_string())?;
    let mut size = 0usize;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len();
                if size > MAX_UPLOAD {
                    return Err(format!("an upload may be at most {MAX_UPLOAD} bytes"));
                }
                tmp.write_all(&chunk).map_err(|e| e.to_string())?;
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the upload was cut short: {}", e.body_text())),
        }
    }
    tmp.flush().map_err(|e| e.to_string())?;
    Ok(tmp)
}
