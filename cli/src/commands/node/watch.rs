//! `qyvol up --watch`: each app's watched files (its source's folder unless the compose file
//! lists others) are looked at twice a second; when they change and then hold still, only
//! that app is rebuilt (its manifest's `build.command`) and updated with zero downtime. A
//! build that fails prints its errors and leaves the last good version serving.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use qyvol_common::{Compose, ComposeApp, LoadOptions, Manifest};
use qyvol_node::client::Client;

use crate::exit::Failure;
use crate::i18n::Msg;
use crate::ui::{Ui, sanitize};

/// How often the files are looked at, and how long they must hold still after a change.
const LOOK: Duration = Duration::from_millis(500);
const SETTLE: Duration = Duration::from_millis(300);
/// Folders never watched: build outputs and tools' own.
const SKIPPED: [&str; 3] = ["target", ".git", "node_modules"];
/// The most files one app's watch looks at.
const MAX_FILES: usize = 20_000;

pub(super) async fn run(client: &Client, compose: &Compose, ui: &Ui) -> Result<(), Failure> {
    // What each app's build writes is not a change to act on (it would rebuild forever).
    let outputs: Vec<Option<PathBuf>> = compose.apps.iter().map(build_output).collect();
    let look_at = |i: usize| look(&compose.apps[i].watch, outputs[i].as_deref());
    let mut seen: Vec<u64> = (0..compose.apps.len()).map(|i| look_at(i).0).collect();
    for (i, app) in compose.apps.iter().enumerate() {
        if look_at(i).1 {
            ui.alert(Msg::WatchTooBig(&app.name, MAX_FILES));
        }
    }
    loop {
        tokio::time::sleep(LOOK).await;
        for (i, app) in compose.apps.iter().enumerate() {
            let mut now = look_at(i).0;
            if now == seen[i] {
                continue;
            }
            // Edits come in bursts (an editor's save, a formatter): wait for the last one.
            loop {
                tokio::time::sleep(SETTLE).await;
                let again = look_at(i).0;
                if again == now {
                    break;
                }
                now = again;
            }
            ui.status(Msg::Rebuilding(&app.name));
            let building = app.clone();
            let built = tokio::task::spawn_blocking(move || build(&building))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match built {
                Err(errors) => {
                    // Escaped line by line: the build's own lines stay lines.
                    let shown: Vec<String> = errors.lines().map(sanitize).collect();
                    ui.alert(Msg::BuildKept(&app.name, &shown.join("\n")));
                }
                Ok(()) => {
                    if let Err(e) =
                        super::project::deploy_app(client, compose.name.as_str(), app, ui).await
                    {
                        ui.alert(Msg::UpdateKept(&app.name, &sanitize(&e.detail)));
                    }
                }
            }
            // What changed while it built is seen at the next look.
            seen[i] = now;
        }
    }
}

/// The file the app's manifest's build writes, when it has one.
fn build_output(app: &ComposeApp) -> Option<PathBuf> {
    let source = Path::new(&app.source);
    if source.extension().is_none_or(|e| e != "qyv") {
        return None;
    }
    let options = LoadOptions {
        unbuilt: true,
        ..LoadOptions::default()
    };
    let build = Manifest::load(source, options).ok()?.build?;
    Some(std::path::absolute(&build.output).unwrap_or(build.output))
}

/// Runs the app's manifest's `build.command` in its folder; its output when it fails.
fn build(app: &ComposeApp) -> Result<(), String> {
    let source = Path::new(&app.source);
    if source.extension().is_none_or(|e| e != "qyv") {
        return Ok(());
    }
    let manifest = Manifest::load(
        source,
        LoadOptions {
            unbuilt: true,
            ..LoadOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let Some(build) = manifest.build else {
        return Ok(());
    };
    let dir = source.parent().unwrap_or(Path::new("."));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", build.command))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(format!(
        "`{}` exited with {}:\n{}",
        build.command,
        out.status,
        text.trim_end()
    ))
}

/// A digest of the files under `paths` but `skip` (names, sizes, modification times), and
/// whether there were more than [`MAX_FILES`] to look at.
fn look(paths: &[PathBuf], skip: Option<&Path>) -> (u64, bool) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    let mut files = 0;
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if p.file_name()
                .is_some_and(|n| SKIPPED.iter().any(|s| n == *s))
            {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&p) {
                let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                names.sort();
                stack.extend(names);
            }
        } else {
            if skip.is_some_and(|s| std::path::absolute(&p).is_ok_and(|a| a == s)) {
                continue;
            }
            files += 1;
            if files > MAX_FILES {
                return (h.finish(), true);
            }
            p.hash(&mut h);
            meta.len().hash(&mut h);
            meta.modified().ok().hash(&mut h);
        }
    }
    (h.finish(), false)
}
