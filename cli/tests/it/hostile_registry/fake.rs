//! The misbehaving registry the tests here talk to: a small HTTP/1.1 server on loopback, one
//! thread per connection, whose answers can be endless, paced or announced falsely.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake registry answers to one request.
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// `prefix`, then `fill` up to `len` bytes in all, made as they are sent; without a
    /// `Content-Length` unless `declared`, so only the connection's close ends it. How many
    /// bytes went out before the client hung up is sent on `sent`.
    Made {
        prefix: Vec<u8>,
        fill: u8,
        len: u64,
        declared: bool,
        sent: mpsc::Sender<u64>,
    },
    /// `piece` bytes at a time, one piece every `every` (the `Content-Length` announces them
    /// all), until the end or until the client hangs up.
    Paced {
        bytes: Vec<u8>,
        piece: usize,
        every: Duration,
    },
}

/// One byte every two seconds.
pub fn trickled(bytes: Vec<u8>) -> Body {
    Body::Paced {
        bytes,
        piece: 1,
        every: Duration::from_secs(2),
    }
}

pub fn reply(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Reply {
    Reply {
        status,
        headers,
        body: Body::Bytes(body),
    }
}

pub fn ok(body: Body) -> Reply {
    Reply {
        status: 200,
        headers: vec![],
        body,
    }
}

pub type Handler = dyn Fn(&str, &str) -> Reply + Send + Sync;

/// Serves each request with `handler(path, head)`, one thread per connection; records every
/// request's head.
pub fn serve(handler: Arc<Handler>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (handler, log) = (handler.clone(), log.clone());
            std::thread::spawn(move || answer(stream, &*handler, &log));
        }
    });
    (port, seen)
}

fn answer(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().expect("log").push(head.clone());
    let Reply {
        status,
        headers,
        body,
    } = handler(&path, &head);
    let mut stream = reader.into_inner();
    let length = match &body {
        Body::Bytes(b) | Body::Paced { bytes: b, .. } => Some(b.len() as u64),
        Body::Made { len, declared, .. } => declared.then_some(*len),
    };
    let mut response = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if let Some(length) = length {
        response.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (k, v) in headers {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    response.push_str("\r\n");
    if stream.write_all(response.as_bytes()).is_err() {
        return;
    }
    match body {
        Body::Bytes(b) => {
            let _ = stream.write_all(&b);
        }
        Body::Made {
            prefix,
            fill,
            len,
            sent,
            ..
        } => {
            let chunk = vec![fill; 1 << 20];
            let mut n = 0u64;
            if stream.write_all(&prefix).is_ok() {
                n = prefix.len() as u64;
                while n < len {
                    let k = chunk
                        .len()
                        .min(usize::try_from(len - n).unwrap_or(usize::MAX));
                    if stream.write_all(&chunk[..k]).is_err() {
                        break;
                    }
                    n += k as u64;
                }
            }
            let _ = sent.send(n);
        }
        Body::Paced {
            bytes,
            piece,
            every,
        } => {
            for piece in bytes.chunks(piece) {
                if stream
                    .write_all(piece)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    break;
                }
                // The pace is the registry's behaviour under test, not a wait for some state.
                std::thread::sleep(every);
            }
        }
    }
}

pub fn digest(bytes: &[u8]) -> String {
    qyvol_store::bundle::sha256_digest(bytes).to_string()
}

/// An OCI manifest with a config and one wasm layer, as the fake registry serves it.
pub fn manifest(config: (&str, usize), layer: (&str, usize)) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/wasm","digest":"{}","size":{}}}]}}"#,
        config.0, config.1, layer.0, layer.1
    )
    .into_bytes()
}

/// A manifest reply: its media type and, for whole bodies, its digest.
pub fn manifest_reply(body: Body) -> Reply {
    let mut headers = vec![(
        "Content-Type".to_string(),
        "application/vnd.oci.image.manifest.v1+json".to_string(),
    )];
    if let Body::Bytes(b) = &body {
        headers.push(("Docker-Content-Digest".into(), digest(b)));
    }
    Reply {
        status: 200,
        headers,
        body,
    }
}

/// A fake registry serving `manifest_body` for every tag.
pub fn registry(
    blob: impl Fn(&str) -> Reply + Send + Sync + 'static,
    manifest_body: Vec<u8>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    registry_with(false, blob, move || {
        manifest_reply(Body::Bytes(manifest_body.clone()))
    })
}

/// A fake registry; with `basic_auth` it challenges requests that carry no credentials.
pub fn registry_with(
    basic_auth: bool,
    blob: impl Fn(&str) -> Reply + Send + Sync + 'static,
    manifest: impl Fn() -> Reply + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    serve(Arc::new(move |path: &str, head: &str| {
        if basic_auth && !head.to_lowercase().contains("authorization: basic") {
            return reply(
                401,
                vec![("WWW-Authenticate".into(), "Basic realm=\"fake\"".into())],
                Vec::new(),
            );
        }
        if path == "/v2/" {
            reply(200, vec![], b"{}".to_vec())
        } else if path.contains("/manifests/") {
            manifest()
        } else if path.contains("/blobs/") {
            blob(path)
        } else {
            reply(404, vec![], Vec::new())
        }
    }))
}

pub const CONFIG: &[u8] = br#"{"architecture":"wasm","os":"wasip1"}"#;

/// A fake registry serving one image: a config sent whole, and a layer of `size` bytes under
/// `digest` sent as `layer()` makes it.
pub fn image_registry(
    digest_and_size: (&str, usize),
    layer: impl Fn() -> Body + Send + Sync + 'static,
) -> u16 {
    let cd = digest(CONFIG);
    let body = manifest((&cd, CONFIG.len()), digest_and_size);
    let (port, _) = registry(
        move |path| {
            if path.contains(&cd) {
                ok(Body::Bytes(CONFIG.to_vec()))
            } else {
                ok(layer())
            }
        },
        body,
    );
    port
}

pub const HUGE: u64 = 300 << 20;

/// A 300 MB body made as it is sent, announced in `Content-Length` or not.
pub fn huge(prefix: &[u8], fill: u8, declared: bool, sent: &mpsc::Sender<u64>) -> Body {
    Body::Made {
        prefix: prefix.to_vec(),
        fill,
        len: HUGE,
        declared,
        sent: sent.clone(),
    }
}
