//! clap's help in Spanish (the English is the doc comments) and the examples shown under each
//! command's `--help` in both languages.

use std::fmt::Write as _;

use super::Lang;

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
        "run.environment" | "deploy.environment" => "Política de confianza: native, sandbox o edge",
        "run.quiet" => "No mostrar las líneas de estado de Qyvol",
        "run.argv0" => {
            "El nombre de programa que el módulo ve como primer argumento (por defecto: el de la app)"
        }
        "run.allow_outside" | "deploy.allow_outside" => {
            "Permite que el manifiesto apunte fuera de su carpeta"
        }
        "run.max_module_size" | "deploy.max_module_size" => {
            "Tamaño máximo de módulo que se acepta compilar"
        }
        "run.compile_timeout" | "deploy.compile_timeout" => {
            "Tiempo máximo de compilación antes de rechazar el módulo"
        }
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
        "rollback" => "Devuelve apps del nodo a la versión que reemplazó su última actualización",
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
        "build.tags" => "Guarda el paquete en el almacén local con esta referencia (repetible)",
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
        "run.no_precompiled" | "serve.no_precompiled" | "deploy.no_precompiled" => {
            "Nunca ejecuta el código nativo de un paquete, aunque se construyera aquí: compila su wasm"
        }
        "run.allow_precompiled" | "serve.allow_precompiled" => {
            "Ejecuta el código nativo precompilado de un paquete o imagen aunque no se construyera en esta máquina"
        }
        "run.allow_net" | "serve.allow_net" => {
            "Deja que el módulo se conecte a HOST:PUERTO (o escuche, con `listen HOST:PUERTO`)"
        }
        "run.keyvalue" | "serve.keyvalue" | "deploy.keyvalue" => {
            "Concede un cubo clave-valor (wasi:keyvalue) que guarda sus datos entre ejecuciones"
        }
        "run.config" | "serve.config" | "deploy.config" => {
            "Define una variable que el módulo lee con wasi:config"
        }
        "run.secret" | "serve.secret" | "deploy.secret" => {
            "Da un secreto, leído de FILE (`-`: la entrada estándar), que el módulo lee con wasi:config"
        }
        "up" => "Arranca juntas las apps de un archivo compose, como un proyecto",
        "up.file" | "down.file" => "El archivo compose",
        "up.detach" => {
            "Despliega el proyecto en el nodo y vuelve (por defecto: lo ejecuta aquí hasta Ctrl-C)"
        }
        "up.watch" => {
            "Reconstruye y actualiza una app cuando cambian sus archivos (solo la app cuyos archivos cambiaron)"
        }
        "up.remove_orphans" => {
            "Elimina las apps del proyecto que el archivo ya no lista (por defecto, las nombra)"
        }
        "up.http" => "Dónde se sirven las apps HTTP del proyecto cuando se ejecuta en primer plano",
        "down" => "Elimina del nodo las apps de un proyecto",
        "down.volumes" => {
            "Borra también los cubos clave-valor de las apps y los volúmenes del proyecto"
        }
        "kv" => "Mira y cambia los cubos clave-valor de una app desplegada",
        "kv.ls" => "Lista los cubos de una app (claves, bytes), o las claves de un cubo",
        "kv.get" => "Muestra el valor de una clave",
        "kv.get.hex" => "Muestra el valor en hexadecimal, aunque sea texto",
        "kv.put" => "Escribe una clave: VALUE, o los bytes de --file (`-`: la entrada estándar)",
        "kv.put.file" => "Lee el valor de este archivo (`-`: la entrada estándar)",
        "kv.rm" => "Borra una clave",
        "kv.ls.json" | "volume.ls.json" => "Salida en JSON para scripts",
        "volume" => "Gestiona los volúmenes con nombre del nodo (`deploy --mount NOMBRE:/data`)",
        "volume.create" => "Crea un volumen",
        "volume.ls" => "Lista los volúmenes con su tamaño y las apps que los montan",
        "volume.inspect" => "Muestra un volumen en JSON",
        "volume.rm" => "Borra un volumen y sus archivos (se rechaza mientras una app lo monta)",
        "serve" => "Sirve manejadores HTTP (runtime: wasi-http) desde manifiestos .qyv",
        "serve.files" => {
            "Los manifiestos .qyv a servir (o paquetes .qyvc, referencias de imagen, componentes .wasm)"
        }
        "serve.listen" => "Dirección donde escuchar (el puerto 0 elige uno libre)",
        "serve.json" => "Registro de accesos en líneas JSON en lugar de texto",
        "serve.max_body" => {
            "Cuerpo de petición más grande que acepta un manejador si su manifiesto no fija `http.max_body`"
        }
        "serve.reuse" => {
            "Peticiones que atiende una instancia de un manejador WASI 0.3 antes de crear otra, si su manifiesto no fija `http.reuse` (1: una instancia nueva por petición)"
        }
        "serve.concurrent_reuse" => {
            "Peticiones que atiende a la vez una instancia de un manejador WASI 0.3 (como mucho --reuse), si su manifiesto no fija `http.concurrent_reuse`"
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
        "deploy.update" => {
            "Reemplaza sin cortes la app en marcha con este nombre (o la despliega si no existe): la versión nueva toma la ruta cuando está lista y las peticiones en curso terminan en la vieja"
        }
        "deploy.health" => {
            "Comprobación de salud de una app HTTP: una ruta que responde 2xx cuando está bien; la versión nueva de una actualización debe pasarla antes de tomar la ruta"
        }
        "deploy.health_interval" => "Cada cuánto se comprueba la salud [por defecto: 10s]",
        "deploy.calls" => {
            "Una app del mismo proyecto a la que esta puede llamar por su nombre (`http://NOMBRE/`), dentro del proceso"
        }
        "deploy.project" => {
            "El proyecto de la app (lo pone `qyvol up -d`; `qyvol down` lo elimina)"
        }
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
        "logs.name" | "stop.names" | "start.names" | "restart.names" | "rm.names"
        | "rollback.names" => "Las apps",
        "rm.force" => "Las detiene antes si están en marcha",
        "rm.keep_data" => {
            "Conserva sus cubos clave-valor, para una app que se despliegue de nuevo con el mismo nombre"
        }
        "qyvol.help" | "run.help" | "serve.help" | "inspect.help" | "completions.help" => {
            "Muestra la ayuda"
        }
        "qyvol.version" => "Muestra la versión",
        "inspect.max_module_size" => "Tamaño máximo de módulo que se acepta",
        "deploy.insecure" => {
            "HTTP sin cifrar hacia un registro fuera de loopback (si hay que descargar la referencia)"
        }
        "deploy.memory" => "Límite de memoria de cada instancia, p. ej. 64MiB",
        "deploy.timeout" => {
            "Límite de tiempo de cada instancia (la ejecución de un comando, una petición), p. ej. 30s"
        }
        "deploy.fuel" => "Límite de combustible de cada instancia",
        // The node's address and token, on every command that talks to a node.
        k if k.ends_with(".node") => {
            "La API del nodo, p. ej. http://10.0.0.5:7373 (por defecto, la de esta máquina, por su socket)"
        }
        k if k.ends_with(".token") => {
            "El token del nodo, para uno al que se llega por TCP (su QYVOL_HOME/node/token)"
        }
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
        "up" => &[
            "cd examples/compose && qyvol up",
            "qyvol up -d -f examples/compose/qyvol-compose.yaml",
            "qyvol up -d --watch",
        ],
        "down" => &[
            "qyvol down",
            "qyvol down --volumes -f examples/compose/qyvol-compose.yaml",
        ],
        "volume" => &[
            "qyvol volume create data",
            "qyvol volume ls",
            "qyvol volume inspect data",
            "qyvol volume rm data",
        ],
        "kv" => &[
            "qyvol kv ls counter",
            "qyvol kv ls counter counts",
            "qyvol kv get counter counts visits --hex",
            "qyvol kv put counter counts greeting Hola",
            "qyvol kv rm counter counts greeting",
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
        "rollback" => &["qyvol rollback api"],
        "rm" => &[
            "qyvol rm worker",
            "qyvol rm -f worker",
            "qyvol rm -f --keep-data counter",
        ],
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
    use super::help_es;
    use clap::CommandFactory;

    /// Every `command` and `command.arg` the Spanish table names, read from its source.
    fn table_keys() -> Vec<String> {
        let source = include_str!("help.rs");
        let body = source
            .split_once("pub fn help_es")
            .and_then(|(_, rest)| rest.split_once("_ => return None"))
            .map(|(body, _)| body)
            .unwrap_or_default();
        body.lines()
            .filter_map(|l| l.trim().split_once(" =>").map(|(keys, _)| keys.to_string()))
            .flat_map(|keys| {
                keys.split('|')
                    .map(|k| k.trim().trim_matches('"').to_string())
                    .collect::<Vec<_>>()
            })
            // Guards (`k if k.ends_with(".node")`) cover a flag on every command.
            .filter(|k| !k.is_empty() && !k.contains(" if "))
            .collect()
    }

    /// Every command and argument `qyvol` really has, as the table keys them.
    fn real_keys() -> Vec<String> {
        let cli = crate::Cli::command();
        let mut keys = vec!["qyvol".to_string(), "help".to_string()];
        keys.extend(cli.get_arguments().map(|a| format!("qyvol.{}", a.get_id())));
        let mut todo: Vec<(String, &clap::Command)> = cli
            .get_subcommands()
            .map(|s| (s.get_name().to_string(), s))
            .collect();
        while let Some((name, sub)) = todo.pop() {
            keys.extend(
                sub.get_arguments()
                    .map(|a| format!("{name}.{}", a.get_id())),
            );
            // The help and version flags each command gets in Spanish.
            keys.extend([format!("{name}.help"), format!("{name}.version")]);
            todo.extend(
                sub.get_subcommands()
                    .map(|s| (format!("{name}.{}", s.get_name()), s)),
            );
            keys.push(name);
        }
        keys.extend(["qyvol.help", "qyvol.version"].map(String::from));
        keys
    }

    /// A renamed or removed flag leaves its Spanish help behind under a key nothing shows:
    /// this fails instead.
    #[test]
    fn every_spanish_help_names_a_real_command_or_flag() {
        let real = real_keys();
        let stale: Vec<String> = table_keys()
            .into_iter()
            .filter(|k| !real.contains(k))
            .collect();
        assert!(stale.is_empty(), "Spanish help for nothing: {stale:?}");
    }

    /// A new flag without Spanish help would show English in a Spanish `--help`.
    #[test]
    fn every_command_and_flag_has_spanish_help() {
        let cli = crate::Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            if help_es(name).is_none() {
                missing.push(name.to_string());
            }
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let key = format!("{name}.{}", arg.get_id());
                if arg.get_id() != "help" && help_es(&key).is_none() {
                    missing.push(key);
                }
            }
        }
        assert!(missing.is_empty(), "no Spanish help for {missing:?}");
    }
}
