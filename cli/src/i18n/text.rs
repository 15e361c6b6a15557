//! The text of each [`Msg`] in Spanish and English: one exhaustive `match` on the message and
//! the language, so the compiler refuses a message that lacks either text.

use super::Lang;
use super::messages::Msg;

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
            (M::ExitedWith(c), Es) => format!("⚠ El módulo terminó con el código {c}"),
            (M::ExitedWith(c), En) => format!("⚠ The module exited with code {c}"),
            (M::Said(t), _) => (*t).into(),
            (M::Backtrace, Es) => "  traza de funciones wasm:".into(),
            (M::Backtrace, En) => "  wasm function backtrace:".into(),
            (M::Frame(i, f), _) => format!("    #{i} {f}"),
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
            (M::BucketRequested(b), Es) => format!("🔒 El paquete pide el cubo clave-valor `{b}`: no se concede; concédelo con `--keyvalue {b}`"),
            (M::BucketRequested(b), En) => format!("🔒 The package asks for the key-value bucket `{b}`: not granted; grant it with `--keyvalue {b}`"),
            (M::KvStore(app, b, path), Es) => format!("🗄  Cubos de «{app}»: {b} ({path})"),
            (M::KvStore(app, b, path), En) => format!("🗄  Buckets of `{app}`: {b} ({path})"),
            (M::KvUnavailable, Es) => "no se puede usar el almacén clave-valor de la app".into(),
            (M::KvUnavailable, En) => "cannot use the app's key-value store".into(),
            (M::KvRefused(app, why), Es) => format!("⚠️ {app}: escritura clave-valor rechazada: {why}"),
            (M::KvRefused(app, why), En) => format!("⚠️ {app}: key-value write refused: {why}"),
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
            (M::ProjectUp(p, url), Es) => format!("🟢 Proyecto {p} en marcha: {url} (Ctrl-C lo detiene)"),
            (M::ProjectUp(p, url), En) => format!("🟢 Project {p} is up: {url} (Ctrl-C stops it)"),
            (M::ProjectStopping(p), Es) => format!("⏹ Deteniendo el proyecto {p}..."),
            (M::ProjectStopping(p), En) => format!("⏹ Stopping project {p}..."),
            (M::VolumeRemoved(v), Es) => format!("🗑 volumen {v} eliminado"),
            (M::VolumeRemoved(v), En) => format!("🗑 volume {v} removed"),
            (M::Rebuilding(a), Es) => format!("🔨 {a} cambió: reconstruyendo y actualizando"),
            (M::Rebuilding(a), En) => format!("🔨 {a} changed: rebuilding and updating"),
            (M::BuildKept(a, why), Es) => format!("❌ La construcción de {a} falló; sigue la última versión buena:\n{why}"),
            (M::BuildKept(a, why), En) => format!("❌ Building {a} failed; the last good version keeps serving:\n{why}"),
            (M::WatchTooBig(a, n), Es) => format!("⚠️ {a}: se vigilan solo {n} archivos y hay más; los cambios del resto no se ven: di qué vigilar con `watch:`"),
            (M::WatchTooBig(a, n), En) => format!("⚠️ {a}: only {n} files are watched and there are more; changes to the rest go unseen: list what to watch with `watch:`"),
            (M::Orphan(a, p), Es) => format!("⚠️ {a} es del proyecto {p} pero el archivo ya no la lista: quítala con `--remove-orphans` o `qyvol rm -f {a}`"),
            (M::Orphan(a, p), En) => format!("⚠️ {a} belongs to project {p} but the file no longer lists it: remove it with `--remove-orphans` or `qyvol rm -f {a}`"),
            (M::ProjectAlreadyUp, Es) => "el proyecto ya está en marcha".into(),
            (M::ProjectAlreadyUp, En) => "the project is already up".into(),
            (M::UpdateKept(a, why), Es) => format!("❌ La actualización de {a} falló; sigue la versión anterior: {why}"),
            (M::UpdateKept(a, why), En) => format!("❌ Updating {a} failed; the previous version keeps serving: {why}"),
            (M::AppRolledBack(n), Es) => format!("↩ {n} vuelve a su versión anterior"),
            (M::AppRolledBack(n), En) => format!("↩ {n} is back on its previous version"),
            (M::AppStarted(n), Es) => format!("▶ {n} en marcha"),
            (M::AppStarted(n), En) => format!("▶ {n} started"),
            (M::AppRemoved(n), Es) => format!("🗑 {n} eliminado"),
            (M::AppRemoved(n), En) => format!("🗑 {n} removed"),
            (M::PsHeader, Es) => {
                "NOMBRE               TIPO     ESTADO         REINICIOS  ACTIVO   MEMORIA    PETICIONES  MÓDULO        SALUD      PROYECTO".into()
            }
            (M::PsHeader, En) => {
                "NAME                 KIND     STATE          RESTARTS   UP       MEMORY     REQUESTS    MODULE        HEALTH     PROJECT".into()
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
        "keyvalue" => "cubos",
        "config" => "variables",
        "secrets" => "secretos",
        "declares" => "declara",
        other => other,
    }
}
