//! A WASI preview 1 handler served CGI-style (WAGI conventions) with one behaviour per path
//! (print its environment, answer with any `Status`, wait for other instances...), for
//! `qyvol serve`'s tests. Built for wasm32-wasip1 by `scripts/build-examples.sh`.

use std::io::Read;

#[path = "../../shared/handler.rs"]
mod shared;

fn main() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let path = var("PATH_INFO");
    let query = var("QUERY_STRING");
    match path.rsplit('/').next().unwrap_or("") {
        "trap" => unreachable!("the CGI handler trapped on purpose"),
        "spin" => {
            let mut x: u64 = 1;
            while x != 0 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            println!("Content-Type: text/plain\n\n{x}");
        }
        "alloc" => {
            let v = vec![1u8; 512 << 20];
            let sum: usize = v.iter().map(|&b| b as usize).sum();
            println!("Content-Type: text/plain\n\n{sum}");
        }
        "missing" => {
            println!("Status: 404 Not Found");
            println!("Content-Type: text/plain");
            println!("X-Probe: yes");
            println!();
            println!("nothing at {path}");
        }
        "redirect" => println!("Location: /elsewhere\n"),
        "garbage" => print!("no headers here"),
        "status" => {
            let code = shared::query(&query, "code").unwrap_or("200");
            println!("Status: {code}\nContent-Type: text/plain\n\nstatus {code}");
        }
        "barrier" => {
            // Waits in `/sync` until `n` instances are there at once (see `shared::barrier`).
            let n = shared::query(&query, "n")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2);
            let ms = shared::query(&query, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(5000);
            match shared::barrier("/sync", n, std::time::Duration::from_millis(ms)) {
                Ok(slot) => println!("Content-Type: text/plain\n\nslot {slot}"),
                Err(e) => println!("Status: 504\nContent-Type: text/plain\n\n{e}"),
            }
        }
        "fail" => std::process::exit(3),
        "echo" => {
            let mut body = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut body);
            println!("Content-Type: application/octet-stream\n");
            print!("{} bytes: {}", body.len(), String::from_utf8_lossy(&body));
        }
        _ => {
            println!("Content-Type: text/plain\n");
            let mut vars: Vec<_> = std::env::vars().collect();
            vars.sort();
            for (k, v) in vars {
                println!("{k}={v}");
            }
        }
    }
}
