//! A long-running microservice: listens on the address in `LISTEN` (granted in its manifest
//! under `network.allow` as `listen ADDR`) and answers each line it receives with a greeting.
//! Built for wasm32-wasip2, where std's sockets are WASI 0.2's `wasi:sockets`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() {
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:7070".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {addr}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        for line in BufReader::new(&stream).lines() {
            let Ok(line) = line else { break };
            if writeln!(&stream, "hola, {}", line.trim()).is_err() {
                break;
            }
        }
    }
}
