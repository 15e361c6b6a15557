//! The images view (the store's table and the pull form), a pull's progress, and the deploy
//! form.

use maud::{Markup, html};

use super::Ctx;
use super::parts::{bytes, encode, time_of};
use crate::dashboard::text::T;

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
