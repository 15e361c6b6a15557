//! A test guest that does one thing per subcommand, so the CLI tests can exercise arguments,
//! environment, streams, exit codes, mounts and limits through the real `qyvol` binary.
//! Built for wasm32-wasip1 (a core module) and wasm32-wasip2 (a component) by
//! `scripts/build-examples.sh`; the wasm is committed beside this source.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::{env, fs, process};

fn main() {
    let args: Vec<String> = env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let result: std::io::Result<()> = match cmd {
        "args" => {
            for a in &args {
                println!("{a}");
            }
            Ok(())
        }
        "env" => {
            let mut vars: Vec<_> = env::vars().collect();
            vars.sort();
            for (k, v) in vars {
                println!("{k}={v}");
            }
            Ok(())
        }
        "cat" => std::io::copy(&mut std::io::stdin(), &mut std::io::stdout()).map(|_| ()),
        "prompt" => {
            print!("name? ");
            std::io::stdout().flush().ok();
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map(|_| println!("hola {}", line.trim()))
        }
        "exit" => process::exit(arg(2).parse().unwrap_or(1)),
        "stderr" => {
            eprintln!("{}", arg(2));
            Ok(())
        }
        "read" => fs::read_to_string(arg(2)).map(|s| print!("{s}")),
        "write" => fs::write(arg(2), arg(3)),
        "append" => fs::OpenOptions::new()
            .append(true)
            .open(arg(2))
            .and_then(|mut f| f.write_all(arg(3).as_bytes())),
        "truncate" => fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(arg(2))
            .map(|_| ()),
        "set-len" => fs::OpenOptions::new()
            .read(true)
            .open(arg(2))
            .and_then(|f| f.set_len(0)),
        "rename" => fs::rename(arg(2), arg(3)),
        "link" => fs::hard_link(arg(2), arg(3)),
        "remove" => fs::remove_file(arg(2)),
        "mkdir" => fs::create_dir(arg(2)),
        "ls" => fs::read_dir(arg(2)).map(|entries| {
            let mut names: Vec<_> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
        }),
        "symlink" => symlink(&arg(2), &arg(3)),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(
                arg(2).parse().unwrap_or(1000),
            ));
            Ok(())
        }
        "spin" => {
            let mut x: u64 = 0;
            loop {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                if x == 42 {
                    println!("{x}");
                }
            }
        }
        "alloc" => {
            let mib: usize = arg(2).parse().unwrap_or(1);
            let v = vec![1u8; mib << 20];
            println!(
                "allocated {} MiB, sum {}",
                mib,
                v.iter().map(|&b| b as u64).sum::<u64>() >> 20
            );
            Ok(())
        }
        "flood" => {
            let mib: usize = arg(2).parse().unwrap_or(1);
            let chunk = vec![b'x'; 1 << 20];
            let mut out = std::io::stdout().lock();
            (0..mib).try_for_each(|_| out.write_all(&chunk))
        }
        // Opens the file at arg 2 up to arg 3 times, keeping every handle; says how many it
        // got and why it stopped, then holds them until killed.
        "hold" => {
            let want: usize = arg(3).parse().unwrap_or(1);
            let mut held = Vec::new();
            let stopped = loop {
                if held.len() == want {
                    break "asked for no more".to_string();
                }
                match fs::File::open(arg(2)) {
                    Ok(f) => held.push(f),
                    Err(e) => break e.to_string(),
                }
            };
            println!("held {}: {stopped}", held.len());
            std::io::stdout().flush().ok();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        "read-stdin" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map(|_| print!("{s}"))
        }
        "connect" => std::net::TcpStream::connect(arg(2)).and_then(|mut s| {
            s.write_all(arg(3).as_bytes())?;
            s.shutdown(std::net::Shutdown::Write)?;
            let mut reply = String::new();
            s.read_to_string(&mut reply)?;
            println!("connected: {reply}");
            Ok(())
        }),
        "fetch" => get(&format!("http://{}/", arg(2)))
            .map(|(status, _)| println!("upstream answered {status}")),
        "get" => get(&arg(2)).map(|(status, body)| println!("{status} {body}")),
        "resolve" => (arg(2).as_str(), 0).to_socket_addrs().map(|found| {
            let mut ips: Vec<String> = found.map(|a| a.ip().to_string()).collect();
            ips.sort();
            ips.dedup();
            println!("{} is {}", arg(2), ips.join(" "));
        }),
        "udp-recv" => std::net::UdpSocket::bind(arg(2)).and_then(|socket| {
            println!("bound {}", socket.local_addr()?);
            std::io::stdout().flush()?;
            let mut buf = [0u8; 512];
            let (n, peer) = socket.recv_from(&mut buf)?;
            println!("got {} from {peer}", String::from_utf8_lossy(&buf[..n]));
            Ok(())
        }),
        "listen" => std::net::TcpListener::bind(arg(2)).map(|l| {
            println!("listening on {:?}", l.local_addr().ok());
        }),
        _ => {
            eprintln!(
                "usage: probe connect ADDR MSG|fetch HOST:PORT|get URL|resolve NAME|udp-recv ADDR|listen ADDR|args|env|cat|prompt|exit N|stderr MSG|read P|write P T|append P T|truncate P|set-len P|rename A B|link A B|remove P|mkdir P|ls P|symlink T L|sleep MS|spin|alloc MIB|flood MIB|read-stdin"
            );
            process::exit(2)
        }
    };
    match result {
        Ok(()) => {}
        Err(e) => {
            println!("error: {e}");
            process::exit(1)
        }
    }
}

/// Creates a symlink through WASI preview 1 directly (std has no stable API for it on WASI).
#[cfg(all(target_os = "wasi", target_env = "p1"))]
fn symlink(target: &str, link: &str) -> std::io::Result<()> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn path_symlink(
            old: *const u8,
            old_len: usize,
            fd: u32,
            new: *const u8,
            new_len: usize,
        ) -> u16;
    }
    // The link is created relative to the first preopen (fd 3) with its guest prefix removed.
    let rel = link
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, r)| r)
        .unwrap_or(link);
    let errno = unsafe { path_symlink(target.as_ptr(), target.len(), 3, rel.as_ptr(), rel.len()) };
    if errno == 0 {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("errno {errno}")))
    }
}

#[cfg(not(all(target_os = "wasi", target_env = "p1")))]
fn symlink(_target: &str, _link: &str) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "symlink is only implemented for wasm32-wasip1",
    ))
}

/// An outgoing wasi:http GET of `url` (`http://` or `https://`, authority taken as written),
/// returning the status and the body as text (WASI 0.2 only).
#[cfg(all(target_os = "wasi", target_env = "p2"))]
fn get(url: &str) -> std::io::Result<(u16, String)> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, IncomingBody, OutgoingRequest, Scheme};
    let fail = |e: String| std::io::Error::other(e);
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(fail(format!("not an http(s) URL: {url}"))),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&scheme))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| fail("bad request".into()))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| fail(format!("{e:?}")))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| fail("no response".into()))?
        .map_err(|()| fail("taken".into()))?
        .map_err(|e| fail(format!("{e:?}")))?;
    let status = response.status();
    let body = response.consume().map_err(|()| fail("no body".into()))?;
    let mut text = Vec::new();
    {
        let stream = body.stream().map_err(|()| fail("no body stream".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => text.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(e) => return Err(fail(format!("{e:?}"))),
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

#[cfg(not(all(target_os = "wasi", target_env = "p2")))]
fn get(_url: &str) -> std::io::Result<(u16, String)> {
    Err(std::io::Error::other("wasi:http needs the WASI 0.2 build"))
}
