//! A WASI preview 1 handler served CGI-style (WAGI conventions) with one behaviour per path,
//! for `qyvol serve`'s tests. Built for wasm32-wasip1 by `scripts/build-examples.sh`.

use std::io::Read;

fn main() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let path = var("PATH_INFO");
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
