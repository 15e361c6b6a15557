//! The dashboard's words, Spanish first and English on request, in one catalogue as the CLI
//! keeps its own: each text is a variant, each language an arm.

use axum::http::HeaderMap;

pub use qyvol_common::Lang;

/// The page's language: `?lang=`, then the `qyvol_lang` cookie (the toggle), then the
/// browser's `Accept-Language` (the first of Spanish or English by weight), else Spanish.
pub fn choose(query: Option<&str>, headers: &HeaderMap) -> Lang {
    let accept = || {
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|h| h.to_str().ok())
            .and_then(Lang::from_accept_language)
    };
    query
        .and_then(Lang::parse)
        .or_else(|| super::cookie(headers, "qyvol_lang").and_then(|v| Lang::parse(&v)))
        .or_else(accept)
        .unwrap_or(Lang::Es)
}

/// Every fixed text of the dashboard.
#[derive(Debug, Clone, Copy)]
pub enum T {
    Overview,
    Apps,
    Images,
    Deploy,
    LogOut,
    SwitchTo,
    SkipToContent,
    Main,
    LogIn,
    LoginHowTo,
    NeverTheToken,
    LinkUsed,
    Version,
    Uptime,
    RequestsPerSec,
    MemoryInUse,
    RequestsServed,
    Instances,
    AppsByState,
    RecentEvents,
    NoEvents,
    Name,
    Kind,
    State,
    Restarts,
    Route,
    Memory,
    Requests,
    Filter,
    AllStates,
    NoApps,
    NoMatch,
    Pages,
    Previous,
    Next,
    Of,
    Command,
    Http,
    CrashLoop,
    Status,
    Policy,
    MayRead,
    MayWrite,
    MayConnect,
    NoFiles,
    NoNetwork,
    PrivateBlocked,
    PrivateAllowed,
    EnvVars,
    NoEnv,
    Buckets,
    Healthy,
    Unhealthy,
    HealthStarting,
    BucketLine,
    ConfigVars,
    Secrets,
    Limits,
    MemoryLimit,
    TimeLimit,
    Fuel,
    MaxBody,
    NoLimit,
    Precompiled,
    Imports,
    UsesFiles,
    UsesSockets,
    UsesHttp,
    UsesEnv,
    UsesNothing,
    NoteNetworkImported,
    NoteNetworkGranted,
    NoteFilesImported,
    NoteFoldersGranted,
    NoteVariablesSet,
    PrecompiledAllowed,
    PrecompiledNo,
    Module,
    Source,
    RestartPolicy,
    Created,
    ExitCode,
    LastError,
    Arguments,
    Events,
    Logs,
    Follow,
    Pause,
    Resume,
    Search,
    Streams,
    Both,
    Charts,
    LatencyMs,
    Start,
    Stop,
    Restart,
    Remove,
    ConfirmRemove,
    Reference,
    Digest,
    Size,
    Pull,
    PullRef,
    Pulling,
    Pulled,
    PullFailed,
    ConfirmRemoveImage,
    NoImages,
    DeployThis,
    FromImage,
    FromUpload,
    UploadFile,
    NameOptional,
    DeployButton,
    NoSource,
    Back,
    Last5Min,
    Now,
    GuestOutput,
    NewLines,
}

impl T {
    pub fn text(self, lang: Lang) -> &'static str {
        let (es, en) = match self {
            Self::Overview => ("Resumen", "Overview"),
            Self::Apps => ("Aplicaciones", "Apps"),
            Self::Images => ("Imágenes", "Images"),
            Self::Deploy => ("Desplegar", "Deploy"),
            Self::LogOut => ("Cerrar sesión", "Log out"),
            Self::SwitchTo => ("English", "Español"),
            Self::SkipToContent => ("Saltar al contenido", "Skip to content"),
            Self::Main => ("Navegación principal", "Main navigation"),
            Self::LogIn => ("Iniciar sesión", "Log in"),
            Self::LoginHowTo => (
                "Para entrar, ejecuta qyvol dashboard en la máquina del nodo y abre el enlace que imprime (vale una vez, durante 5 minutos).",
                "To log in, run qyvol dashboard on the node's machine and open the link it prints (it works once, within 5 minutes).",
            ),
            Self::NeverTheToken => (
                "Este panel nunca pide el token del nodo: una página que lo pida no es tu nodo.",
                "This dashboard never asks for the node's token: a page that does is not your node.",
            ),
            Self::LinkUsed => (
                "Ese enlace ya se usó o caducó: pide otro con qyvol dashboard.",
                "That link was already used or has expired: get another with qyvol dashboard.",
            ),
            Self::Version => ("Versión", "Version"),
            Self::Uptime => ("En marcha desde hace", "Uptime"),
            Self::RequestsPerSec => ("Peticiones/s", "Requests/s"),
            Self::MemoryInUse => ("Memoria en uso", "Memory in use"),
            Self::RequestsServed => ("Peticiones atendidas", "Requests served"),
            Self::Instances => ("Instancias", "Instances"),
            Self::AppsByState => ("Apps por estado", "Apps by state"),
            Self::RecentEvents => ("Eventos recientes", "Recent events"),
            Self::NoEvents => ("Aún no hay eventos.", "No events yet."),
            Self::Name => ("Nombre", "Name"),
            Self::Kind => ("Tipo", "Kind"),
            Self::State => ("Estado", "State"),
            Self::Restarts => ("Reinicios", "Restarts"),
            Self::Route => ("Ruta", "Route"),
            Self::Memory => ("Memoria", "Memory"),
            Self::Requests => ("Peticiones", "Requests"),
            Self::Filter => ("Filtrar por nombre", "Filter by name"),
            Self::AllStates => ("Todos los estados", "All states"),
            Self::NoApps => (
                "No hay apps desplegadas. Despliega una desde «Desplegar».",
                "No apps deployed. Deploy one from “Deploy”.",
            ),
            Self::NoMatch => ("Ninguna app coincide.", "No app matches."),
            Self::Pages => ("Páginas", "Pages"),
            Self::Previous => ("Anterior", "Previous"),
            Self::Next => ("Siguiente", "Next"),
            Self::Of => ("de", "of"),
            Self::Command => ("comando", "command"),
            Self::Http => ("HTTP", "HTTP"),
            Self::CrashLoop => ("en bucle de fallos", "crash loop"),
            Self::Status => ("Estado", "Status"),
            Self::Policy => ("Permisos", "Policy"),
            Self::MayRead => ("Puede leer", "May read"),
            Self::MayWrite => ("Puede leer y escribir", "May read and write"),
            Self::MayConnect => ("Puede conectar con", "May connect to"),
            Self::NoFiles => ("Ningún archivo del anfitrión.", "No file of the host."),
            Self::NoNetwork => ("Ninguna dirección de red.", "No network address."),
            Self::PrivateBlocked => (
                "Las direcciones privadas y de loopback están bloqueadas salvo que una concesión las nombre.",
                "Private and loopback addresses are blocked unless a grant names them.",
            ),
            Self::PrivateAllowed => (
                "Las direcciones privadas y de loopback no están bloqueadas.",
                "Private and loopback addresses are not blocked.",
            ),
            Self::EnvVars => ("Variables de entorno", "Environment variables"),
            Self::NoEnv => ("Ninguna.", "None."),
            Self::Buckets => ("Cubos clave-valor", "Key-value buckets"),
            Self::Healthy => ("sana", "healthy"),
            Self::Unhealthy => ("no sana", "unhealthy"),
            Self::HealthStarting => ("comprobando", "starting"),
            Self::BucketLine => ("claves", "keys"),
            Self::ConfigVars => (
                "Variables de configuración (wasi:config)",
                "Config variables (wasi:config)",
            ),
            Self::Secrets => ("Secretos (solo nombres)", "Secrets (names only)"),
            Self::Limits => ("Límites", "Limits"),
            Self::MemoryLimit => ("Memoria", "Memory"),
            Self::TimeLimit => ("Tiempo por instancia", "Time per instance"),
            Self::Fuel => ("Combustible", "Fuel"),
            Self::MaxBody => ("Cuerpo de petición máximo", "Largest request body"),
            Self::NoLimit => ("sin límite", "no limit"),
            Self::Precompiled => ("Código precompilado", "Precompiled code"),
            Self::Imports => ("El módulo importa", "The module imports"),
            Self::UsesFiles => ("sistema de archivos", "filesystem"),
            Self::UsesSockets => ("sockets", "sockets"),
            Self::UsesHttp => ("HTTP saliente", "outgoing HTTP"),
            Self::UsesEnv => ("entorno", "environment"),
            Self::UsesNothing => ("nada que pida permisos", "nothing that needs a grant"),
            Self::NoteNetworkImported => (
                "importa red pero no tiene permiso de red: esas llamadas se rechazarán",
                "it imports network but is granted none: those calls will be refused",
            ),
            Self::NoteNetworkGranted => (
                "tiene permiso de red pero no importa nada que lo use",
                "it is granted network but imports nothing that can use it",
            ),
            Self::NoteFilesImported => (
                "importa el sistema de archivos pero no tiene carpetas",
                "it imports the filesystem but is granted no folder",
            ),
            Self::NoteFoldersGranted => (
                "tiene carpetas pero no importa el sistema de archivos",
                "it is granted folders but does not import the filesystem",
            ),
            Self::NoteVariablesSet => (
                "recibe variables pero no puede leer su entorno",
                "it gets variables but cannot read its environment",
            ),
            Self::PrecompiledAllowed => ("permitido por el operador", "allowed by the operator"),
            Self::PrecompiledNo => (
                "no: el wasm se compila aquí",
                "no: the wasm is compiled here",
            ),
            Self::Module => ("Módulo (digest)", "Module (digest)"),
            Self::Source => ("Origen", "Source"),
            Self::RestartPolicy => ("Política de reinicio", "Restart policy"),
            Self::Created => ("Creada", "Created"),
            Self::ExitCode => ("Código de salida", "Exit code"),
            Self::LastError => ("Último error", "Last error"),
            Self::Arguments => ("Argumentos", "Arguments"),
            Self::Events => ("Eventos", "Events"),
            Self::Logs => ("Registro", "Logs"),
            Self::Follow => ("Seguir", "Follow"),
            Self::Pause => ("Pausar", "Pause"),
            Self::Resume => ("Reanudar", "Resume"),
            Self::Search => ("Buscar en el registro", "Search the log"),
            Self::Streams => ("Flujos", "Streams"),
            Self::Both => ("stdout y stderr", "stdout and stderr"),
            Self::Charts => ("Carga de los últimos minutos", "Load over the last minutes"),
            Self::LatencyMs => ("Latencia (ms)", "Latency (ms)"),
            Self::Start => ("Iniciar", "Start"),
            Self::Stop => ("Detener", "Stop"),
            Self::Restart => ("Reiniciar", "Restart"),
            Self::Remove => ("Eliminar", "Remove"),
            Self::ConfirmRemove => (
                "¿Eliminar esta app? Se borran su registro y su estado.",
                "Remove this app? Its log and state are deleted.",
            ),
            Self::Reference => ("Referencia", "Reference"),
            Self::Digest => ("Digest", "Digest"),
            Self::Size => ("Tamaño", "Size"),
            Self::Pull => ("Descargar", "Pull"),
            Self::PullRef => (
                "Referencia de imagen (p. ej. localhost:5000/hello:1)",
                "Image reference (e.g. localhost:5000/hello:1)",
            ),
            Self::Pulling => ("Descargando", "Pulling"),
            Self::Pulled => ("Descargada", "Pulled"),
            Self::PullFailed => ("No se pudo descargar", "Could not pull"),
            Self::ConfirmRemoveImage => (
                "¿Eliminar esta imagen del almacén?",
                "Remove this image from the store?",
            ),
            Self::NoImages => ("El almacén local está vacío.", "The local store is empty."),
            Self::DeployThis => ("Desplegar", "Deploy"),
            Self::FromImage => ("Una imagen del almacén", "An image from the store"),
            Self::FromUpload => (
                "Subir un paquete .qyvc o un .wasm",
                "Upload a .qyvc bundle or a .wasm",
            ),
            Self::UploadFile => ("Archivo", "File"),
            Self::NameOptional => ("Nombre (opcional)", "Name (optional)"),
            Self::DeployButton => ("Desplegar", "Deploy"),
            Self::NoSource => (
                "Elige una imagen o sube un archivo.",
                "Choose an image or upload a file.",
            ),
            Self::Back => ("Volver a las apps", "Back to the apps"),
            Self::Last5Min => ("hace 5 min", "5 min ago"),
            Self::Now => ("ahora", "now"),
            Self::GuestOutput => ("Salida de la app", "The app's output"),
            Self::NewLines => ("líneas nuevas en pausa", "new lines held while paused"),
        };
        match lang {
            Lang::Es => es,
            Lang::En => en,
        }
    }
}

/// A state's name as shown.
pub fn state(state: crate::state::State, lang: Lang) -> &'static str {
    use crate::state::State as S;
    let (es, en) = match state {
        S::Created => ("creada", "created"),
        S::Running => ("en marcha", "running"),
        S::Restarting => ("reiniciando", "restarting"),
        S::Exited => ("terminada", "exited"),
        S::Stopped => ("detenida", "stopped"),
        S::Failed => ("fallida", "failed"),
    };
    match lang {
        Lang::Es => es,
        Lang::En => en,
    }
}

impl From<qyvol_launch::describe::Note> for T {
    fn from(note: qyvol_launch::describe::Note) -> Self {
        use qyvol_launch::describe::Note;
        match note {
            Note::NetworkImportedNotGranted => Self::NoteNetworkImported,
            Note::NetworkGrantedNotImported => Self::NoteNetworkGranted,
            Note::FilesystemImportedNotGranted => Self::NoteFilesImported,
            Note::FoldersGrantedNotImported => Self::NoteFoldersGranted,
            Note::VariablesSetNotImported => Self::NoteVariablesSet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            v.parse().expect("header"),
        );
        h
    }

    #[test]
    fn the_browsers_preferred_language_wins_and_spanish_is_the_default() {
        assert_eq!(choose(None, &HeaderMap::new()), Lang::Es);
        assert_eq!(choose(None, &with_accept("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            choose(None, &with_accept("fr, en;q=0.5, es;q=0.8")),
            Lang::Es
        );
        assert_eq!(choose(None, &with_accept("de")), Lang::Es);
        assert_eq!(choose(Some("en"), &with_accept("es")), Lang::En);
    }
}
