//! The page around every view (head, navigation, language toggle, htmx's settings), the
//! login page and an error shown in place.

use maud::{DOCTYPE, Markup, html};

use super::{Ctx, Nav};
use crate::dashboard::text::T;

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

/// An error shown in place: plain text, escaped.
pub fn error(text: &str) -> Markup {
    html! { p.error role="alert" { (qyvol_common::escape_controls(text)) } }
}
