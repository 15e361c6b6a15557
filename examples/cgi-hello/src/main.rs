//! An HTTP handler as a plain WASI preview 1 program, WAGI style: the request arrives as
//! environment variables (`REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`, `HTTP_*`) and the
//! body on stdin; the response is headers, a blank line, then the body, on stdout.

use std::io::Read;

fn main() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let mut body = String::new();
    let _ = std::io::stdin().read_to_string(&mut body);
    println!("Content-Type: text/plain; charset=utf-8");
    println!();
    println!(
        "¡Hola desde un módulo CGI! {} {}{}",
        var("REQUEST_METHOD"),
        var("SCRIPT_NAME"),
        var("PATH_INFO")
    );
    if !body.is_empty() {
        println!("body: {body}");
    }
}
