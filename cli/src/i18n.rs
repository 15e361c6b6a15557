//! The one catalogue of Qyvol's user-facing text, in Spanish (the default, the seed's language)
//! and English. Every message the CLI prints is a [`Msg`] rendered here; clap's help for flags
//! is written in English in the doc comments and overridden from [`help_es`] in Spanish.

use std::fmt::Write as _;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
}

static LANG: OnceLock<Lang> = OnceLock::new();

/// The language for this process: `QYVOL_LANG` (`en`/`es`) first, then the first non-empty of
/// `LC_ALL`, `LC_MESSAGES`, `LANG`; an English locale gives English, anything else (including
/// `C`, `POSIX` or nothing) Spanish.
pub fn lang() -> Lang {
    *LANG.get_or_init(|| detect(|k| std::env::var(k).ok()))
}

pub fn detect(var: impl Fn(&str) -> Option<String>) -> Lang {
    let english = |v: &str| v.to_ascii_lowercase().starts_with("en");
    if let Some(v) = var("QYVOL_LANG").filter(|v| !v.is_empty()) {
        return if english(&v) { Lang::En } else { Lang::Es };
    }
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()));
    match locale {
        Some(v) if english(&v) => Lang::En,
        _ => Lang::Es,
    }
}

/// A message of Qyvol's own, with its arguments.
#[derive(Debug, Clone)]
pub enum Msg<'a> {
    Running,
    LoadingModule(&'a str),
    ExpectedPath(&'a str),
    Imports,
    Exports,
    ListItem(&'a str),
    Completed,
    ExitedWith(i32),
    Trapped(&'a str),
    Backtrace,
    Frame(usize, &'a str),
    TimedOut(&'a str),
    MemoryExceeded(&'a str),
    TableExceeded(u64),
    FuelExhausted(u64),
    GuestStopped,
    Error(&'a str),
    // headlines of error kinds
    BadManifest,
    MissingFile,
    NotAFile,
    UnsafeHome,
    UnusableHome,
    NotWasm,
    InvalidModule,
    DeniedGrant,
    BadFlag,
    BadEnvVar,
    BadMount,
    BadBundle,
    NotServed,
    NotAHandler,
    NetworkDenied(&'a str, &'a str),
    /// A name grant's target resolved to a private address: (what was asked, the address).
    NetworkPrivate(&'a str, &'a str),
    NetworkBadAuthority(&'a str),
    LookupDenied(&'a str),
    NoRootCertificates(&'a str, &'a str),
    Serving(&'a str),
    // the node and its verbs
    NoNode,
    NodeRefused,
    NotTheNode,
    NodeUp(&'a str, &'a str),
    NodeDetached(&'a str, &'a str),
    Dashboard(&'a str),
    LoginLink(u64),
    NodeStopping,
    NodeGone,
    Deployed(&'a str, &'a str),
    AppStopped(&'a str),
    AppStarted(&'a str),
    AppRemoved(&'a str),
    PsHeader,
    Route(&'a str, &'a str, &'a str),
    Draining(usize),
    Stopped,
    CannotListen,
    PoolingOff,
    BodyTimeout(&'a str, u64),
    BodyTooSlow(u64, u64, &'a str),
    TooManyConnections(u32),
    /// An app's requests in progress reached its `--concurrency`.
    AppBusy(u32),
    /// The memory of the app's (`true`) or every app's instances together reached its bound.
    SharedMemoryExceeded(&'a str, bool),
    Compiling(&'a str),
    CacheHeader,
    /// A Winch entry whose Cranelift code is being compiled in the background.
    TierUpgrading,
    ImagesHeader,
    Untagged(&'a str, &'a str),
    Saved(&'a str, &'a str),
    Loaded(&'a str, &'a str),
    Pruned(&'a str),
    Stored(&'a str),
    Pulling(&'a str),
    RegistryFailed,
    Digest(&'a str),
    Pushed(&'a str, &'a str),
    KeyWritten(&'a str, &'a str),
    Signed(&'a str, &'a str),
    Verified(&'a str, &'a str, &'a str),
    BadKey,
    PolicyOf(&'a str, &'a str),
    PolicyNone,
    PolicyFolders,
    PolicyWritable,
    PolicyReadOnly,
    PolicyConnect,
    PolicyListen,
    PolicyVariables,
    PolicyLimits,
    PolicyRequested,
    PolicyImports,
    NoteNetworkImported,
    NoteNetworkGranted,
    NoteFilesystemImported,
    NoteFoldersGranted,
    NoteVariablesSet,
    Untrusted,
    BadPolicy,
    LoggedIn(&'a str),
    BuildRunning(&'a str),
    BuildFailed,
    BundleWritten(&'a str, &'a str),
    CacheCleared(&'a str),
    // serve's access log
    NoRoute,
    BodyTooLarge(&'a str),
    ShuttingDown,
    // the trust boundary
    MountRequested(&'a str, &'a str, &'a str),
    NetworkRequested(&'a str, &'a str),
    PrecompiledUntrusted,
    NotRunnable,
    Trust(qyvol_launch::CodeTrust),
    // inspect labels
    Field(&'static str),
    KindCore,
    KindComponent,
    KindCgi,
}

impl Msg<'_> {
    pub fn text(&self, lang: Lang) -> String {
        use Lang::{En, Es};
        use Msg as M;
        match (self, lang) {
            (M::Running, Es) => "▶ Ejecutando Qyvol Runtime...".into(),
            (M::Running, En) => "▶ Running Qyvol Runtime...".into(),
            (M::LoadingModule(n), Es) => format!("🔧 Cargando módulo: {n}"),
            (M::LoadingModule(n), En) => format!("🔧 Loading module: {n}"),
            (M::ExpectedPath(p), Es) => format!("📂 Ruta esperada de WASM: {p}"),
            (M::ExpectedPath(p), En) => format!("📂 Expected WASM path: {p}"),
            (M::Imports, Es) => "📋 Importaciones del módulo:".into(),
            (M::Imports, En) => "📋 Module imports:".into(),
            (M::Exports, Es) => "📋 Exportaciones del módulo:".into(),
            (M::Exports, En) => "📋 Module exports:".into(),
            (M::ListItem(s), _) => format!("  - {s}"),
            (M::Completed, Es) => "✅ Ejecución completada".into(),
            (M::Completed, En) => "✅ Execution completed".into(),
            (M::GuestStopped, Es) => "⏹ El módulo fue detenido".into(),
            (M::GuestStopped, En) => "⏹ The module was stopped".into(),
            (M::ExitedWith(c), Es) => format!("⚠ El módulo terminó con el código {c}"),
            (M::ExitedWith(c), En) => format!("⚠ The module exited with code {c}"),
            (M::Trapped(t), Es) => format!("💥 El módulo se detuvo por un trap: {t}"),
            (M::Trapped(t), En) => format!("💥 The module trapped: {t}"),
            (M::Backtrace, Es) => "  traza de funciones wasm:".into(),
            (M::Backtrace, En) => "  wasm function backtrace:".into(),
            (M::Frame(i, f), _) => format!("    #{i} {f}"),
            (M::TimedOut(d), Es) => format!("⏱ Se superó el límite de tiempo de {d}: el módulo fue detenido (sube `limits.timeout` o usa `--timeout`)"),
            (M::TimedOut(d), En) => format!("⏱ The time limit of {d} passed: the module was stopped (raise `limits.timeout` or pass `--timeout`)"),
            (M::MemoryExceeded(l), Es) => format!("🧠 Se superó el límite de memoria de {l}: el módulo fue detenido (sube `limits.memory` o usa `--memory`)"),
            (M::MemoryExceeded(l), En) => format!("🧠 The memory limit of {l} was exceeded: the module was stopped (raise `limits.memory` or pass `--memory`)"),
            (M::TableExceeded(n), Es) => format!("🧠 Una tabla del módulo superó el límite de {n} elementos: el módulo fue detenido"),
            (M::TableExceeded(n), En) => format!("🧠 A table of the module grew past the limit of {n} elements: the module was stopped"),
            (M::FuelExhausted(n), Es) => format!("⛽ El módulo agotó su combustible ({n}): sube `limits.fuel` o usa `--fuel`"),
            (M::FuelExhausted(n), En) => format!("⛽ The module ran out of fuel ({n}): raise `limits.fuel` or pass `--fuel`"),
            (M::Error(e), _) => format!("error: {e}"),
            (M::Compiling(size), Es) => format!("⚙ Compilando {size} de wasm a código nativo (solo la primera vez)"),
            (M::Compiling(size), En) => format!("⚙ Compiling {size} of wasm to native code (first run only)"),
            (M::CacheHeader, Es) => format!("{:<14}{:<11}{:<22}{:>10}  {:<26}{}", "SHA256", "TIPO", "COMPILADOR", "TAMAÑO", "MOTOR", "ÚLTIMO USO"),
            (M::CacheHeader, En) => format!("{:<14}{:<11}{:<22}{:>10}  {:<26}{}", "SHA256", "KIND", "COMPILER", "SIZE", "ENGINE", "LAST USED"),
            (M::TierUpgrading, Es) => "winch → cranelift…".into(),
            (M::TierUpgrading, En) => "winch → cranelift…".into(),
            (M::MountRequested(h, g, flag), Es) => format!("🔒 El paquete pide montar `{h}` en `{g}`: no se concede (un paquete no concede nada al host); concédelo con `{flag}`"),
            (M::MountRequested(h, g, flag), En) => format!("🔒 The package asks to mount `{h}` on `{g}`: not granted (a package grants itself nothing on the host); grant it with `{flag}`"),
            (M::NetworkRequested(n, flag), Es) => format!("🔒 El paquete pide la red `{n}`: no se concede; concédela con `{flag}`"),
            (M::NetworkRequested(n, flag), En) => format!("🔒 The package asks for the network `{n}`: not granted; grant it with `{flag}`"),
            (M::PrecompiledUntrusted, Es) => "🔒 El código nativo del paquete no se construyó en esta máquina: se compila su wasm (usa `--allow-precompiled` si confías en quien lo construyó)".into(),
            (M::PrecompiledUntrusted, En) => "🔒 The package's native code was not built on this machine: compiling its wasm instead (pass `--allow-precompiled` if you trust whoever built it)".into(),
            (M::NoRoute, Es) => "ninguna ruta coincide".into(),
            (M::NoRoute, En) => "no route matches".into(),
            (M::BodyTooLarge(l), Es) => format!("el cuerpo supera {l} (sube `http.max_body` o `--max-body`)"),
            (M::BodyTooLarge(l), En) => format!("the body is over {l} (raise `http.max_body` or `--max-body`)"),
            (M::ShuttingDown, Es) => "el servidor se está deteniendo".into(),
            (M::ShuttingDown, En) => "the server is stopping".into(),
            (M::Trust(t), Es) => match t {
                qyvol_launch::CodeTrust::NoLayer => "ninguno para este anfitrión: se compila el wasm".into(),
                qyvol_launch::CodeTrust::Ignored => "ignorado: se compila el wasm".into(),
                qyvol_launch::CodeTrust::BuiltHere => "de confianza: construido en esta máquina".into(),
                qyvol_launch::CodeTrust::Allowed => "permitido por el operador".into(),
                qyvol_launch::CodeTrust::Signed => "firmado por una clave cuya regla de la política de confianza lo permite".into(),
                qyvol_launch::CodeTrust::Untrusted => "no es de confianza (no se construyó aquí): se compila el wasm salvo con `--allow-precompiled`".into(),
            },
            (M::Trust(t), En) => match t {
                qyvol_launch::CodeTrust::NoLayer => "none for this host: the wasm is compiled".into(),
                qyvol_launch::CodeTrust::Ignored => "ignored: the wasm is compiled".into(),
                qyvol_launch::CodeTrust::BuiltHere => "trusted: built on this machine".into(),
                qyvol_launch::CodeTrust::Allowed => "allowed by the operator".into(),
                qyvol_launch::CodeTrust::Signed => "signed by a key whose trust policy rule allows it".into(),
                qyvol_launch::CodeTrust::Untrusted => "not trusted (not built here): the wasm is compiled unless `--allow-precompiled`".into(),
            },
            (M::NotRunnable, Es) => "no es algo que Qyvol ejecute".into(),
            (M::NotRunnable, En) => "not something Qyvol runs".into(),
            (M::BuildRunning(c), Es) => format!("🔨 Construyendo: {c}"),
            (M::BuildRunning(c), En) => format!("🔨 Building: {c}"),
            (M::BuildFailed, Es) => "la construcción falló".into(),
            (M::BuildFailed, En) => "the build failed".into(),
            (M::BundleWritten(p, s), Es) => format!("📦 Paquete escrito: {p} ({s})"),
            (M::BundleWritten(p, s), En) => format!("📦 Bundle written: {p} ({s})"),
            (M::ImagesHeader, Es) => format!("{:<44}{:<15}{:>10}  {}", "REFERENCIA", "DIGEST", "TAMAÑO", "CREADA"),
            (M::ImagesHeader, En) => format!("{:<44}{:<15}{:>10}  {}", "REFERENCE", "DIGEST", "SIZE", "CREATED"),
            (M::Untagged(r, d), Es) => format!("Referencia eliminada: {r} ({d})"),
            (M::Untagged(r, d), En) => format!("Untagged: {r} ({d})"),
            (M::Saved(r, f), Es) => format!("Imagen guardada: {r} → {f}"),
            (M::Saved(r, f), En) => format!("Saved: {r} → {f}"),
            (M::Loaded(r, d), Es) => format!("Imagen cargada: {r} ({d})"),
            (M::Loaded(r, d), En) => format!("Loaded image: {r} ({d})"),
            (M::Pruned(s), Es) => format!("Espacio liberado: {s}"),
            (M::Pruned(s), En) => format!("Reclaimed space: {s}"),
            (M::Stored(r), Es) => format!("🏷 Guardado en el almacén local como {r}"),
            (M::Stored(r), En) => format!("🏷 Stored in the local store as {r}"),
            (M::NoNode, Es) => "No hay ningún nodo".into(),
            (M::NoNode, En) => "No node".into(),
            (M::NodeRefused, Es) => "El nodo lo rechazó".into(),
            (M::NodeRefused, En) => "The node refused it".into(),
            (M::NotTheNode, Es) => "Ese servidor no es tu nodo".into(),
            (M::NotTheNode, En) => "That server is not your node".into(),
            (M::NodeUp(sock, http), Es) => {
                format!("🟢 Nodo en marcha: API en {sock}, apps en http://{http}")
            }
            (M::NodeUp(sock, http), En) => {
                format!("🟢 Node running: API on {sock}, apps on http://{http}")
            }
            (M::NodeDetached(pid, log), Es) => {
                format!("🟢 Nodo en segundo plano (pid {pid}); su registro: {log}")
            }
            (M::NodeDetached(pid, log), En) => {
                format!("🟢 Node running in the background (pid {pid}); its log: {log}")
            }
            (M::Dashboard(url), Es) => {
                format!("🖥  Panel web: {url} (para entrar: qyvol dashboard)")
            }
            (M::Dashboard(url), En) => {
                format!("🖥  Web dashboard: {url} (to log in: qyvol dashboard)")
            }
            (M::LoginLink(minutes), Es) => format!(
                "🔑 Abre este enlace en tu navegador para entrar al panel (vale una vez, durante {minutes} min):"
            ),
            (M::LoginLink(minutes), En) => format!(
                "🔑 Open this link in your browser to log in to the dashboard (once, within {minutes} min):"
            ),
            (M::NodeStopping, Es) => "⏹ Deteniendo el nodo...".into(),
            (M::NodeStopping, En) => "⏹ Stopping the node...".into(),
            (M::NodeGone, Es) => "✅ Nodo detenido".into(),
            (M::NodeGone, En) => "✅ Node stopped".into(),
            (M::Deployed(n, st), Es) => format!("🚀 Desplegado {n} ({st})"),
            (M::Deployed(n, st), En) => format!("🚀 Deployed {n} ({st})"),
            (M::AppStopped(n), Es) => format!("⏹ {n} detenido"),
            (M::AppStopped(n), En) => format!("⏹ {n} stopped"),
            (M::AppStarted(n), Es) => format!("▶ {n} en marcha"),
            (M::AppStarted(n), En) => format!("▶ {n} started"),
            (M::AppRemoved(n), Es) => format!("🗑 {n} eliminado"),
            (M::AppRemoved(n), En) => format!("🗑 {n} removed"),
            (M::PsHeader, Es) => {
                "NOMBRE               TIPO     ESTADO         REINICIOS  ACTIVO   MEMORIA    PETICIONES  MÓDULO".into()
            }
            (M::PsHeader, En) => {
                "NAME                 KIND     STATE          RESTARTS   UP       MEMORY     REQUESTS    MODULE".into()
            }
            (M::Pulling(r), Es) => format!("⬇ Descargando {r}"),
            (M::Pulling(r), En) => format!("⬇ Pulling {r}"),
            (M::RegistryFailed, Es) => "falló el registro".into(),
            (M::RegistryFailed, En) => "registry failure".into(),
            (M::Digest(d), _) => format!("Digest: {d}"),
            (M::Pushed(r, d), Es) => format!("⬆ Publicado {r}\nDigest: {d}"),
            (M::Pushed(r, d), En) => format!("⬆ Pushed {r}\nDigest: {d}"),
            (M::KeyWritten(k, p), Es) => format!(
                "🔑 Clave privada: {k} (cifrada; guárdala en secreto)\n🔑 Clave pública: {p} (la que comparten los que verifican)"
            ),
            (M::KeyWritten(k, p), En) => format!(
                "🔑 Private key: {k} (encrypted; keep it secret)\n🔑 Public key: {p} (the one verifiers share)"
            ),
            (M::Signed(r, d), Es) => format!("✍ Firmada {r}\nDigest: {d}"),
            (M::Signed(r, d), En) => format!("✍ Signed {r}\nDigest: {d}"),
            (M::Verified(r, d, k), Es) => {
                format!("✔ {r} está firmada con {k}\nDigest: {d}")
            }
            (M::Verified(r, d, k), En) => format!("✔ {r} is signed with {k}\nDigest: {d}"),
            (M::PolicyOf(n, e), Es) => format!("Lo que puede hacer {n} (entorno {e}):"),
            (M::PolicyOf(n, e), En) => format!("What {n} may do (environment {e}):"),
            (M::PolicyNone, Es) => "nada".into(),
            (M::PolicyNone, En) => "nothing".into(),
            (M::PolicyFolders, Es) => "Carpetas".into(),
            (M::PolicyFolders, En) => "Folders".into(),
            (M::PolicyWritable, Es) => "lectura y escritura".into(),
            (M::PolicyWritable, En) => "read and write".into(),
            (M::PolicyReadOnly, Es) => "solo lectura".into(),
            (M::PolicyReadOnly, En) => "read only".into(),
            (M::PolicyConnect, Es) => "Puede conectarse a".into(),
            (M::PolicyConnect, En) => "May connect to".into(),
            (M::PolicyListen, Es) => "Puede escuchar en".into(),
            (M::PolicyListen, En) => "May listen on".into(),
            (M::PolicyVariables, Es) => "Variables".into(),
            (M::PolicyVariables, En) => "Variables".into(),
            (M::PolicyLimits, Es) => "Límites".into(),
            (M::PolicyLimits, En) => "Limits".into(),
            (M::PolicyRequested, Es) => "Pide y no tiene".into(),
            (M::PolicyRequested, En) => "Asks for, not granted".into(),
            (M::PolicyImports, Es) => "El módulo importa".into(),
            (M::PolicyImports, En) => "The module imports".into(),
            (M::NoteNetworkImported, Es) => "importa red (sockets o HTTP) pero no tiene permiso de red: esas llamadas se rechazarán".into(),
            (M::NoteNetworkImported, En) => "it imports network (sockets or HTTP) but is granted none: those calls will be refused".into(),
            (M::NoteNetworkGranted, Es) => "tiene permiso de red pero no importa nada que lo use".into(),
            (M::NoteNetworkGranted, En) => "it is granted network but imports nothing that can use it".into(),
            (M::NoteFilesystemImported, Es) => "importa el sistema de archivos pero no tiene carpetas: no verá ningún archivo".into(),
            (M::NoteFilesystemImported, En) => "it imports the filesystem but is granted no folder: it will see no file".into(),
            (M::NoteFoldersGranted, Es) => "tiene carpetas pero no importa el sistema de archivos".into(),
            (M::NoteFoldersGranted, En) => "it is granted folders but does not import the filesystem".into(),
            (M::NoteVariablesSet, Es) => "recibe variables pero no puede leer su entorno".into(),
            (M::NoteVariablesSet, En) => "it gets variables but cannot read its environment".into(),
            (M::BadKey, Es) => "clave inválida".into(),
            (M::BadKey, En) => "invalid key".into(),
            (M::Untrusted, Es) => "imagen no confiable".into(),
            (M::Untrusted, En) => "untrusted image".into(),
            (M::BadPolicy, Es) => "política de confianza inválida".into(),
            (M::BadPolicy, En) => "invalid trust policy".into(),
            (M::LoggedIn(r), Es) => format!("Sesión iniciada en {r}"),
            (M::LoggedIn(r), En) => format!("Logged in to {r}"),
            (M::CacheCleared(size), Es) => format!("Caché vaciada: {size} liberados"),
            (M::CacheCleared(size), En) => format!("Cache cleared: {size} freed"),
            (M::BadManifest, Es) => "manifiesto inválido".into(),
            (M::BadManifest, En) => "invalid manifest".into(),
            (M::MissingFile, Es) => "archivo no encontrado".into(),
            (M::MissingFile, En) => "file not found".into(),
            (M::NotAFile, Es) => "no es un archivo".into(),
            (M::NotAFile, En) => "not a file".into(),
            (M::UnsafeHome, Es) => "QYVOL_HOME inseguro".into(),
            (M::UnsafeHome, En) => "unsafe QYVOL_HOME".into(),
            (M::UnusableHome, Es) => "no se puede usar QYVOL_HOME".into(),
            (M::UnusableHome, En) => "cannot use QYVOL_HOME".into(),
            (M::NotWasm, Es) => "no es WebAssembly".into(),
            (M::NotWasm, En) => "not WebAssembly".into(),
            (M::InvalidModule, Es) => "módulo inválido".into(),
            (M::InvalidModule, En) => "invalid module".into(),
            (M::DeniedGrant, Es) => "permiso denegado".into(),
            (M::DeniedGrant, En) => "grant denied".into(),
            (M::BadBundle, Es) => "paquete .qyvc inválido".into(),
            (M::BadBundle, En) => "invalid .qyvc bundle".into(),
            (M::BadFlag, Es) => "opción inválida".into(),
            (M::BadFlag, En) => "invalid option".into(),
            (M::BadEnvVar, Es) => "variable de entorno inválida".into(),
            (M::BadEnvVar, En) => "invalid environment variable".into(),
            (M::BadMount, Es) => "montaje inválido".into(),
            (M::BadMount, En) => "invalid mount".into(),
            (M::NotServed, Es) => "`runtime: wasi-http` es un manejador HTTP: sírvelo con `qyvol serve` (o usa `runtime: wasi` para un comando)".into(),
            (M::NotServed, En) => "`runtime: wasi-http` is an HTTP handler: serve it with `qyvol serve` (or use `runtime: wasi` for a command)".into(),
            (M::NotAHandler, Es) => "no es un manejador HTTP".into(),
            (M::NotAHandler, En) => "not an HTTP handler".into(),
            (M::NetworkDenied(kind, grant), Es) => format!("🚫 Red denegada ({kind}): {grant}; concédelo en el manifiesto con `network: {{ allow: [\"{grant}\"] }}`"),
            (M::NetworkDenied(kind, grant), En) => format!("🚫 Network access denied ({kind}): {grant}; grant it in the manifest with `network: {{ allow: [\"{grant}\"] }}`"),
            (M::NetworkPrivate(target, addr), Es) => {
                let what = if target == addr { format!("{addr} es") } else { format!("{target} es {addr},") };
                format!("🚫 Red denegada (connect): {what} una dirección de loopback, de enlace local o privada, y este entorno solo deja alcanzarlas con un permiso que nombre la dirección: `network: {{ allow: [\"{addr}\"] }}`")
            }
            (M::NetworkPrivate(target, addr), En) => {
                let what = if target == addr { format!("{addr} is") } else { format!("{target} is {addr},") };
                format!("🚫 Network access denied (connect): {what} a loopback, link-local or private address, which this environment lets a guest reach only through a grant naming the address: `network: {{ allow: [\"{addr}\"] }}`")
            }
            (M::NetworkBadAuthority(authority), Es) => format!("🚫 Petición HTTP denegada: `{authority}` no es `host[:puerto]` (lleva usuario `@` o un puerto que no es un número hasta 65535)"),
            (M::NetworkBadAuthority(authority), En) => format!("🚫 HTTP request denied: `{authority}` is not `host[:port]` (it has user info `@` or a port that is not a number up to 65535)"),
            (M::LookupDenied(name), Es) => format!("🚫 Búsqueda DNS denegada: {name}; ningún permiso de `network.allow` nombra ese host"),
            (M::LookupDenied(name), En) => format!("🚫 Name lookup denied: {name}; no `network.allow` grant names that host"),
            (M::NoRootCertificates(host, why), Es) => format!("🚫 HTTPS a {host} imposible: {why}; instala los certificados raíz del sistema (ca-certificates) o apunta SSL_CERT_FILE a un PEM"),
            (M::NoRootCertificates(host, why), En) => format!("🚫 HTTPS to {host} impossible: {why}; install the system's root certificates (ca-certificates) or point SSL_CERT_FILE at a PEM file"),
            (M::Serving(url), Es) => format!("🌐 Sirviendo en {url}"),
            (M::Serving(url), En) => format!("🌐 Serving on {url}"),
            (M::Route(route, name, kind), _) => format!("  {route} → {name} ({kind})"),
            (M::Draining(0), Es) => "⏹ Deteniendo el servidor".into(),
            (M::Draining(0), En) => "⏹ Stopping the server".into(),
            (M::Draining(n), Es) => format!("⏹ Deteniendo el servidor: esperando {n} peticiones en curso"),
            (M::Draining(n), En) => format!("⏹ Stopping the server: waiting for {n} requests in flight"),
            (M::Stopped, Es) => "✅ Servidor detenido".into(),
            (M::Stopped, En) => "✅ Server stopped".into(),
            (M::CannotListen, Es) => "no se puede escuchar".into(),
            (M::CannotListen, En) => "cannot listen".into(),
            (M::PoolingOff, Es) => "ℹ El asignador por pools no está disponible aquí: las instancias se crean bajo demanda".into(),
            (M::PoolingOff, En) => "ℹ The pooling allocator is unavailable here: instances are allocated on demand".into(),
            (M::BodyTimeout(limit, got), Es) => format!("el cuerpo no llegó entero en {limit} ({got} bytes recibidos; sube `--body-timeout`)"),
            (M::BodyTimeout(limit, got), En) => format!("the body did not arrive within {limit} ({got} bytes received; raise `--body-timeout`)"),
            (M::BodyTooSlow(rate, got, after), Es) => format!("el cuerpo llega a menos de {rate} bytes/s ({got} bytes en {after})"),
            (M::BodyTooSlow(rate, got, after), En) => format!("the body arrives slower than {rate} bytes/s ({got} bytes in {after})"),
            (M::TooManyConnections(n), Es) => format!("demasiadas conexiones abiertas (más de {n}; sube `--max-connections`)"),
            (M::TooManyConnections(n), En) => format!("too many open connections (over {n}; raise `--max-connections`)"),
            (M::AppBusy(n), Es) => format!("la app ya atiende {n} peticiones a la vez (sube `--concurrency` al desplegarla)"),
            (M::AppBusy(n), En) => format!("the app is already answering {n} requests at once (raise `--concurrency` when deploying it)"),
            (M::SharedMemoryExceeded(l, true), Es) => format!("las instancias de la app juntas llegaron a su memoria máxima de {l} (sube `--memory-total` al desplegarla)"),
            (M::SharedMemoryExceeded(l, true), En) => format!("the app's instances together reached their memory total of {l} (raise `--memory-total` when deploying it)"),
            (M::SharedMemoryExceeded(l, false), Es) => format!("las instancias de todas las apps juntas llegaron a la memoria máxima del nodo, {l} (sube `qyvol node --memory-total`)"),
            (M::SharedMemoryExceeded(l, false), En) => format!("the instances of all apps together reached the node's memory total of {l} (raise `qyvol node --memory-total`)"),
            (M::Field(f), Es) => field_es(f).into(),
            (M::Field("precompiled"), En) => "precompiled code".into(),
            (M::Field(f), En) => (*f).into(),
            (M::KindCore, Es) => "módulo core".into(),
            (M::KindCore, En) => "core module".into(),
            (M::KindComponent, Es) => "componente".into(),
            (M::KindComponent, En) => "component".into(),
            (M::KindCgi, Es) => "módulo CGI".into(),
            (M::KindCgi, En) => "CGI module".into(),
        }
    }
}

fn field_es(f: &str) -> &str {
    match f {
        "file" => "archivo",
        "name" => "nombre",
        "kind" => "tipo",
        "size" => "tamaño",
        "imports" => "importaciones",
        "exports" => "exportaciones",
        "layers" => "capas",
        "precompiled" => "código precompilado",
        "route" => "ruta",
        "network" => "red",
        "code" => "código",
        "requests" => "pide",
        other => other,
    }
}

/// Spanish help for commands and flags, keyed `command.arg` (or `command` for its about line).
/// English help is the doc comments clap already has.
pub fn help_es(key: &str) -> Option<&'static str> {
    Some(match key {
        "qyvol" => "Ejecuta funciones y microservicios WebAssembly desde manifiestos .qyv",
        "run" => "Ejecuta un manifiesto .qyv o un archivo .wasm",
        "run.file" => "El manifiesto .qyv o el módulo .wasm a ejecutar",
        "run.args" => "Argumentos para el módulo (todo lo que sigue a FILE)",
        "run.env" => "Define una variable de entorno para el módulo (K=V), o copia K del anfitrión",
        "run.mount" => {
            "Monta una carpeta del anfitrión en el módulo; `:ro` la deja de solo lectura"
        }
        "run.memory" => "Límite de memoria del módulo, p. ej. 64MiB",
        "run.timeout" => "Límite de tiempo de la ejecución, p. ej. 30s",
        "run.fuel" => "Límite de combustible (instrucciones wasm aproximadas)",
        "run.environment" => "Política de confianza: native, sandbox o edge",
        "run.quiet" => "No mostrar las líneas de estado de Qyvol",
        "run.allow_outside" => "Permite que el manifiesto apunte fuera de su carpeta",
        "run.max_module_size" => "Tamaño máximo de módulo que se acepta compilar",
        "run.compile_timeout" => "Tiempo máximo de compilación antes de rechazar el módulo",
        "inspect" => "Describe un manifiesto .qyv o un archivo .wasm sin ejecutarlo",
        "inspect.file" => "El manifiesto .qyv o el módulo .wasm",
        "inspect.json" => "Salida en JSON para scripts",
        "inspect.policy" => {
            "Lo que puede hacer al ejecutarlo tal cual: sus permisos bajo su entorno junto a lo que importa su módulo (FILE también puede ser un paquete o una referencia de imagen)"
        }
        "completions" => "Genera el script de autocompletado para una shell",
        "cache" => "Muestra o vacía la caché de compilación",
        "images" => "Lista las imágenes del almacén local",
        "images.json" => "Salida en JSON para scripts",
        "tag" => "Da otra referencia a una imagen del almacén local",
        "tag.src" => "La imagen a etiquetar",
        "tag.dst" => "La nueva referencia",
        "rmi" => "Elimina referencias del almacén local (sus blobs se van con `qyvol prune`)",
        "rmi.refs" => "Las referencias a eliminar",
        "node" => {
            "Arranca el nodo: mantiene las apps desplegadas en marcha (`-d` en segundo plano)"
        }
        "node.detach" => "Pasa a segundo plano (pid y registro en QYVOL_HOME/node/)",
        "node.http" => "Dirección donde se sirven las apps HTTP desplegadas",
        "node.api" => {
            "Sirve la API y el panel web por TCP en esta dirección (exige el token), u `off`; en loopback, también el mismo puerto de [::1] [por defecto: 127.0.0.1:7373]"
        }
        "dashboard" => {
            "Imprime un enlace de un solo uso que abre una sesión del panel web del nodo en el navegador"
        }
        "node.api_host" => "Otro nombre de host al que responde la API por TCP",
        "node.log_max" => "Tamaño de registro por app antes de rotarlo",
        "node.max_concurrency" => {
            "Peticiones que atiende a la vez el puerto de las apps (las demás esperan turno)"
        }
        "node.max_connections" => {
            "Conexiones abiertas a la vez en el puerto de las apps (503 a una más); menos si el límite de archivos abiertos es bajo. Las peticiones de una app pueden ocupar como mucho la mitad, salvo que se despliegue con `--concurrency`"
        }
        "node.memory_total" => {
            "La memoria máxima de todas las instancias de las apps juntas [por defecto: la mitad de la de la máquina]"
        }
        "node.log_format" => "Formato del registro del propio nodo: text o json",
        "deploy" => "Despliega un manifiesto, paquete, módulo o imagen en el nodo",
        "ps" => "Lista las apps del nodo",
        "logs" => "Muestra la salida de una app del nodo",
        "stop" => "Detiene apps del nodo",
        "start" => "Arranca apps detenidas del nodo",
        "restart" => "Reinicia apps del nodo",
        "rm" => "Elimina apps del nodo",
        "events" => "Muestra los eventos del nodo en directo",
        "prune" => "Elimina los blobs que ninguna referencia alcanza",
        "save" => {
            "Escribe una imagen del almacén en un archivo OCI (para `qyvol load` o `ctr image import`)"
        }
        "save.reference" => "La imagen a guardar",
        "save.output" => "El archivo a escribir",
        "save.rootfs" => {
            "Una imagen OCI corriente con el módulo en su sistema de archivos (`/app.wasm`), para containerd anterior a 1.6.25 / 1.7.7"
        }
        "load" => "Carga una imagen de un archivo OCI (`qyvol save`, `.qyvc`) en el almacén",
        "kube" => {
            "Imprime los objetos de Kubernetes (RuntimeClass, Deployment, Service) que ejecutan una app"
        }
        "kube.file" => "Un manifiesto, paquete o wasm (con --image), o una referencia de imagen",
        "kube.image" => "La imagen que ejecutan los pods (por defecto: la referencia dada)",
        "kube.replicas" => "Cuántos pods",
        "kube.insecure" => {
            "HTTP sin cifrar hacia un registro fuera de loopback, si hay que descargar la referencia"
        }
        "load.input" => "El archivo a leer",
        "load.tag" => {
            "La referencia con la que guardarla (por defecto: el nombre que trae el archivo)"
        }
        "push" => "Envía una imagen del almacén local a su registro",
        "key" => "Crea y gestiona claves de firma",
        "key.generate" => {
            "Escribe un par de claves nuevo: PREFIJO.key (cifrada, como la escribe cosign) y PREFIJO.pub"
        }
        "key.generate.output" => "Dónde escribir el par (PREFIJO.key y PREFIJO.pub)",
        "sign" => {
            "Firma una imagen en su registro, como cosign (la contraseña por stdin o en QYVOL_KEY_PASSWORD)"
        }
        "sign.key" => "La clave privada (de `qyvol key generate` o de cosign)",
        "push.sign" => {
            "Firma la imagen publicada con esta clave privada, como `qyvol sign` (la contraseña por stdin o en QYVOL_KEY_PASSWORD)"
        }
        "verify" => "Comprueba que una imagen de su registro está firmada con una de las claves",
        "verify.key" => "Una clave pública (repetible: basta cualquiera)",
        "sign.reference" | "verify.reference" => {
            "La imagen en su registro, p. ej. localhost:5000/hello:1"
        }
        "sign.insecure" | "verify.insecure" => {
            "Permite HTTP sin cifrar con un registro que no está en loopback"
        }
        "pull" => "Descarga una imagen de su registro al almacén local",
        "login" => "Guarda credenciales de un registro (la contraseña se lee de stdin)",
        "push.reference" | "pull.reference" => "La imagen, p. ej. localhost:5000/hello:1",
        "push.insecure" | "pull.insecure" | "login.insecure" | "run.insecure"
        | "serve.insecure" => "Permite HTTP sin cifrar con un registro que no está en loopback",
        "login.registry" => "El registro, p. ej. localhost:5000 o ghcr.io",
        "login.username" => "El nombre de usuario",
        "build.tag" => "Guarda el paquete en el almacén local con esta referencia (repetible)",
        "build" => "Construye un paquete compilado (.qyvc) desde un manifiesto",
        "build.manifest" => "El manifiesto .qyv",
        "build.output" => {
            "Dónde escribir el paquete (por defecto: <nombre>.qyvc junto al manifiesto)"
        }
        "build.no_precompile" => {
            "No incluir código nativo precompilado (paquete más pequeño y portable)"
        }
        "build.quiet" => "No mostrar las líneas de estado de Qyvol",
        "build.sign" => {
            "Firma el manifiesto del paquete con esta clave privada, guardada en el paquete (la contraseña por stdin o en QYVOL_KEY_PASSWORD)"
        }
        "run.no_cache" => "No usar la caché de compilación (para medir)",
        "run.compiler" => {
            "Compilador: auto usa el código de Cranelift de la caché, o arranca un módulo grande con Winch mientras Cranelift lo compila en segundo plano; cranelift o winch compilan solo con ese"
        }
        "run.no_precompiled" | "serve.no_precompiled" => {
            "Nunca ejecuta el código nativo de un paquete, aunque se construyera aquí: compila su wasm"
        }
        "run.allow_precompiled" | "serve.allow_precompiled" => {
            "Ejecuta el código nativo precompilado de un paquete o imagen aunque no se construyera en esta máquina"
        }
        "run.allow_net" | "serve.allow_net" => {
            "Deja que el módulo se conecte a HOST:PUERTO (o escuche, con `listen HOST:PUERTO`)"
        }
        "serve" => "Sirve manejadores HTTP (runtime: wasi-http) desde manifiestos .qyv",
        "serve.files" => {
            "Los manifiestos .qyv a servir (o paquetes .qyvc, referencias de imagen, componentes .wasm)"
        }
        "serve.listen" => "Dirección donde escuchar (el puerto 0 elige uno libre)",
        "serve.json" => "Registro de accesos en líneas JSON en lugar de texto",
        "serve.max_body" => {
            "Cuerpo de petición más grande que acepta un manejador si su manifiesto no fija `http.max_body`"
        }
        "serve.max_concurrency" => "Peticiones atendidas a la vez (las demás esperan turno)",
        "serve.max_connections" => {
            "Conexiones abiertas a la vez; a una más se le responde 503 y se cierra"
        }
        "serve.body_timeout" => {
            "Cuánto puede tardar en llegar el cuerpo de una petición (408 después), antes de que espere turno"
        }
        "serve.drain" => "Cuánto pueden tardar las peticiones en curso tras SIGINT/SIGTERM",
        "serve.quiet" => "Sin líneas de estado ni registro de accesos (los fallos sí se informan)",
        "serve.no_cache" => "No usar la caché de compilación",
        "serve.env" => {
            "Define una variable de entorno para los manejadores (K=V), o copia K del anfitrión"
        }
        "serve.mount" => "Monta una carpeta del anfitrión; `:ro` la deja de solo lectura",
        "serve.memory" => "Límite de memoria por petición, p. ej. 64MiB",
        "serve.timeout" => "Límite de tiempo por petición, p. ej. 5s",
        "serve.fuel" => "Límite de combustible por petición",
        "serve.environment" => "Política de confianza: native, sandbox o edge",
        "serve.allow_outside" => "Permite que los manifiestos apunten fuera de su carpeta",
        "serve.max_module_size" => "Tamaño máximo de módulo que se acepta compilar",
        "serve.compile_timeout" => "Tiempo máximo de compilación antes de rechazar el módulo",
        "completions.shell" => "La shell: bash, zsh, fish, elvish o powershell",
        "help" => "Muestra la ayuda de un comando",
        "deploy.name" => "Nombre de la app (por defecto, el del manifiesto)",
        "deploy.restart" => "Política de reinicio: no, on-failure[:MAX], always, unless-stopped",
        "deploy.env" => {
            "Define una variable de entorno para la app (K=V), o copia K del entorno de esta shell (así un secreto no va en la línea de órdenes)"
        }
        "deploy.env_file" => {
            "Lee variables de un archivo: K=V o K por línea, comentarios con # (como `docker run --env-file`)"
        }
        "deploy.mount" => "Monta una carpeta del anfitrión: HOST:GUEST[:ro|:rw]",
        "deploy.allow_net" => "Deja que la app conecte con (o escuche en) HOST:PUERTO",
        "deploy.allow_precompiled" => {
            "Ejecuta el código precompilado de un paquete en vez de compilar su wasm"
        }
        "deploy.source" => "Qué desplegar: manifiesto .qyv, paquete .qyvc, .wasm o referencia",
        "deploy.args" => "Argumentos para la app",
        "deploy.memory_total" => {
            "La memoria máxima de todas las instancias de la app juntas (sus peticiones simultáneas), p. ej. 512MiB; a una petición más allá se le responde 503"
        }
        "deploy.concurrency" => {
            "Peticiones en curso a la vez de una app HTTP (503 después) [por defecto: la mitad de las conexiones del nodo]"
        }
        "ps.all" => "También las apps que no están en marcha",
        "ps.json" | "deploy.json" | "events.json" => "Salida en JSON para scripts",
        "logs.follow" => "Sigue mostrando las líneas nuevas",
        "logs.tail" => "Solo las últimas N líneas",
        "logs.since" => "Solo desde una hora (RFC 3339) o hace un tiempo (p. ej. 10m)",
        "logs.timestamps" => "Muestra la hora de cada línea",
        "logs.name" | "stop.names" | "start.names" | "restart.names" | "rm.names" => "Las apps",
        "rm.force" => "Las detiene antes si están en marcha",
        "qyvol.help" | "run.help" | "serve.help" | "inspect.help" | "completions.help" => {
            "Muestra la ayuda"
        }
        "qyvol.version" => "Muestra la versión",
        _ => return None,
    })
}

/// Examples shown under each command's `--help`, in both languages.
pub fn examples(cmd: &str, lang: Lang) -> Option<String> {
    let lines: &[&str] = match cmd {
        "run" => &[
            "qyvol run examples/hello.qyv",
            "qyvol run --env NAME=Ana --mount ./data:/data:ro app.qyv --verbose",
            "qyvol run --environment sandbox --memory 64MiB --timeout 5s untrusted.wasm",
        ],
        "serve" => &[
            "qyvol serve examples/http-hello/http-hello.qyv",
            "qyvol serve --listen 0.0.0.0:8080 api.qyv web.qyv",
            "qyvol serve --json --timeout 2s examples/cgi-hello/cgi-hello.qyv",
        ],
        "inspect" => &[
            "qyvol inspect examples/hello.qyv",
            "qyvol inspect --json examples/hello.wasm",
            "qyvol inspect --policy examples/hello.qyv",
        ],
        "build" => &[
            "qyvol build examples/hello.qyv",
            "qyvol build --no-precompile -o hello.qyvc examples/hello.qyv",
            "qyvol build -t localhost:5000/hello:1 examples/hello.qyv",
        ],
        "images" => &["qyvol images", "qyvol images --json"],
        "push" => &[
            "qyvol push localhost:5000/hello:1",
            "qyvol push --sign qyvol.key localhost:5000/hello:1 < password.txt",
        ],
        "key" => &[
            "qyvol key generate",
            "QYVOL_KEY_PASSWORD=... qyvol key generate -o ~/keys/team",
        ],
        "sign" => &["qyvol sign --key qyvol.key localhost:5000/hello:1 < password.txt"],
        "verify" => &["qyvol verify --key qyvol.pub localhost:5000/hello:1"],
        "pull" => &[
            "qyvol pull localhost:5000/hello:1",
            "qyvol pull --insecure registry.lan:5000/hello:1",
        ],
        "login" => &[
            "qyvol login localhost:5000 -u ana < password.txt",
            "echo \"$TOKEN\" | qyvol login ghcr.io -u ana",
        ],
        "tag" => &["qyvol tag localhost:5000/hello:1 localhost:5000/hello:latest"],
        "rmi" => &["qyvol rmi localhost:5000/hello:1 localhost:5000/hello:latest"],
        "prune" => &["qyvol prune"],
        "save" => &[
            "qyvol save localhost:5000/hello:1 -o hello.tar",
            "qyvol save localhost:5000/hello:1 -o hello.tar && ctr image import hello.tar",
        ],
        "kube" => &[
            "qyvol kube registry.lan/hello:1 | kubectl apply -f -",
            "qyvol kube examples/http-hello/http-hello.qyv --image registry.lan/http-hello:1 --replicas 3",
        ],
        "load" => &[
            "qyvol load -i hello.tar",
            "qyvol load -i app.qyvc -t localhost:5000/app:1",
        ],
        "cache" => &[
            "qyvol cache ls",
            "qyvol cache ls --json",
            "qyvol cache clear",
        ],
        "completions" => &["qyvol completions bash > /etc/bash_completion.d/qyvol"],
        "node" => &[
            "qyvol node -d",
            "qyvol node --http 0.0.0.0:8080 --api 127.0.0.1:7373",
            "qyvol node --api off",
            "qyvol node stop",
        ],
        "deploy" => &[
            "qyvol deploy examples/http-hello/http-hello.qyv",
            "qyvol deploy --name worker --restart on-failure:3 -e QUEUE=jobs app.wasm",
            "API_KEY=... qyvol deploy -e API_KEY --env-file app.env app.wasm",
            "qyvol deploy --mount /srv/data:/data:ro localhost:5000/app:1",
        ],
        "dashboard" => &[
            "qyvol dashboard",
            "QYVOL_TOKEN=... qyvol dashboard --node http://10.0.0.5:7373",
        ],
        "ps" => &["qyvol ps", "qyvol ps -a --json"],
        "logs" => &[
            "qyvol logs -f worker",
            "qyvol logs -t --since 10m --tail 100 worker",
        ],
        "stop" => &["qyvol stop worker"],
        "start" => &["qyvol start worker"],
        "restart" => &["qyvol restart worker"],
        "rm" => &["qyvol rm worker", "qyvol rm -f worker"],
        "events" => &["qyvol events", "qyvol events --json"],
        _ => return None,
    };
    let mut out = String::from(match lang {
        Lang::Es => "Ejemplos:\n",
        Lang::En => "Examples:\n",
    });
    for l in lines {
        let _ = writeln!(out, "  {l}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn spanish_unless_english_is_asked_for() {
        assert_eq!(detect(env(&[])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "C")])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "POSIX")])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "es_ES.UTF-8")])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(
            detect(env(&[("LC_MESSAGES", "en_GB"), ("LANG", "es_ES")])),
            Lang::En
        );
        assert_eq!(
            detect(env(&[("LC_ALL", "es_MX"), ("LC_MESSAGES", "en_GB")])),
            Lang::Es
        );
        assert_eq!(
            detect(env(&[("QYVOL_LANG", "en"), ("LC_ALL", "es_MX")])),
            Lang::En
        );
        assert_eq!(
            detect(env(&[("QYVOL_LANG", "es"), ("LANG", "en_US")])),
            Lang::Es
        );
    }
}
