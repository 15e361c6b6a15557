//! A WASI 0.3 command (`wasi:cli/run@0.3.0`, through the `wasip3` crate) for qyvol's CLI tests.
//! It reads its arguments and environment, and reaches the network, through 0.3's interfaces:
//!
//! - `args`: prints each argument after the program name (`args` too), one per line
//! - `env NAME`: prints the variable's value
//! - `exit N`: exits with code N (0.3's `exit-with-code`)
//! - `read PATH`: prints the file (0.3's filesystem, through std)
//! - `write PATH TEXT`: writes the file through 0.3's `wasi:filesystem` (`open-at`,
//!   `write-via-stream`) in the preopen PATH is under; prints `written` or the error code
//! - `sleep MS`: waits in 0.3's `wait-for` (an async host call), then prints `slept`
//! - `connect IP:PORT`: a TCP connection; prints `connected` or the error code
//! - `listen IP:PORT`: binds a TCP socket there and listens; prints `listening` or the error code
//! - `alloc MIB`: allocates MIB MiB, prints `allocated`; `spin`: loops forever
//! - `lookup NAME`: a name lookup; prints the addresses or the error code
//! - `udp IP:PORT`: sends one datagram; prints `sent` or the error code
//! - `udp-recv IP:PORT`: binds there, prints `bound IP:PORT`, then the first datagram it
//!   receives as `got DATA from IP:PORT`
//!
//! Rebuilt by scripts/build-examples.sh (`wasm32-wasip2`, whose linker makes the component).

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod guest {
    use wasip3::cli::environment::{get_arguments, get_environment};
    use wasip3::sockets::ip_name_lookup::resolve_addresses;
    use wasip3::sockets::types::{
        IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket, UdpSocket,
    };

    fn show(addr: IpSocketAddress) -> String {
        match addr {
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (a, b, c, d),
            }) => {
                format!("{a}.{b}.{c}.{d}:{port}")
            }
            IpSocketAddress::Ipv6(v6) => format!("{v6:?}"),
        }
    }

    async fn write(path: &str, text: &str) -> Result<(), String> {
        use wasip3::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let (dir, rel) = wasip3::filesystem::preopens::get_directories()
            .into_iter()
            .find_map(|(d, guest)| {
                let rel = path
                    .strip_prefix(guest.trim_end_matches('/'))?
                    .strip_prefix('/')?;
                Some((d, rel.to_string()))
            })
            .ok_or("no preopen holds that path")?;
        let file = dir
            .open_at(
                PathFlags::empty(),
                rel,
                OpenFlags::CREATE | OpenFlags::TRUNCATE,
                DescriptorFlags::WRITE,
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (mut tx, rx) = wasip3::wit_stream::new();
        let done = file.write_via_stream(rx, 0);
        tx.write_all(text.as_bytes().to_vec()).await;
        drop(tx);
        done.await.map_err(|e| format!("{e:?}"))
    }

    struct Probe;
    wasip3::cli::command::export!(Probe);

    fn v4(text: &str) -> IpSocketAddress {
        let (ip, port) = text.split_once(':').expect("IP:PORT");
        let o: Vec<u8> = ip
            .split('.')
            .map(|p| p.parse().expect("an IPv4 address"))
            .collect();
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: port.parse().expect("a port"),
            address: (o[0], o[1], o[2], o[3]),
        })
    }

    mod state {
        wit_bindgen::generate!({
            path: "../kv-probe/wit",
            world: "kv-probe",
            generate_all,
        });
        pub use wasi::config::store as config;
        pub use wasi::keyvalue::{atomics, store};
    }

    impl wasip3::exports::cli::run::Guest for Probe {
        async fn run() -> Result<(), ()> {
            let args = get_arguments();
            println!("probe-p3");
            match args.iter().skip(1).map(String::as_str).collect::<Vec<_>>()[..] {
                ["args", ..] => args.iter().skip(1).for_each(|a| println!("{a}")),
                ["env", name] => {
                    let env = get_environment();
                    match env.iter().find(|(k, _)| k == name) {
                        Some((_, v)) => println!("{v}"),
                        None => println!("(unset)"),
                    }
                }
                ["kv-incr", bucket, key] => match state::store::open(bucket) {
                    Ok(b) => println!("{:?}", state::atomics::increment(&b, key, 1)),
                    Err(e) => println!("open {bucket}: {e:?}"),
                },
                ["config", name] => println!("{:?}", state::config::get(name)),
                ["exit", code] => {
                    wasip3::cli::exit::exit_with_code(code.parse().expect("a code"));
                }
                ["read", path] => match std::fs::read_to_string(path) {
                    Ok(text) => print!("{text}"),
                    Err(e) => println!("error: {e}"),
                },
                ["write", path, text] => match write(path, text).await {
                    Ok(()) => println!("written"),
                    Err(e) => println!("error: {e}"),
                },
                ["sleep", ms] => {
                    let ms: u64 = ms.parse().expect("milliseconds");
                    wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
                    println!("slept");
                }
                ["connect", addr] => {
                    let socket = TcpSocket::create(IpAddressFamily::Ipv4).expect("a socket");
                    match socket.connect(v4(addr)).await {
                        Ok(()) => println!("connected"),
                        Err(e) => println!("error: {e:?}"),
                    }
                }
                ["listen", addr] => {
                    let socket = TcpSocket::create(IpAddressFamily::Ipv4).expect("a socket");
                    match socket
                        .bind(v4(addr))
                        .and_then(|()| socket.listen().map(drop))
                    {
                        Ok(()) => println!("listening"),
                        Err(e) => println!("error: {e:?}"),
                    }
                }
                ["alloc", mib] => {
                    let mib: usize = mib.parse().expect("MiB");
                    std::hint::black_box(vec![1u8; mib << 20]);
                    println!("allocated");
                }
                #[expect(clippy::empty_loop, reason = "the test of a guest that never ends")]
                ["spin"] => loop {},
                ["lookup", name] => match resolve_addresses(name.to_string()).await {
                    Ok(addrs) => println!("{addrs:?}"),
                    Err(e) => println!("error: {e:?}"),
                },
                ["udp", addr] => match UdpSocket::create(IpAddressFamily::Ipv4) {
                    Ok(socket) => match socket.send(b"ping".to_vec(), Some(v4(addr))).await {
                        Ok(()) => println!("sent"),
                        Err(e) => println!("error: {e:?}"),
                    },
                    Err(e) => println!("error: {e:?}"),
                },
                ["udp-recv", addr] => {
                    let socket = UdpSocket::create(IpAddressFamily::Ipv4).expect("a socket");
                    if let Err(e) = socket.bind(v4(addr)) {
                        println!("error: {e:?}");
                        return Err(());
                    }
                    let local = socket.get_local_address().expect("a bound address");
                    println!("bound {}", show(local));
                    std::io::Write::flush(&mut std::io::stdout()).expect("flush");
                    match socket.receive().await {
                        Ok((data, from)) => {
                            println!("got {} from {}", String::from_utf8_lossy(&data), show(from))
                        }
                        Err(e) => println!("error: {e:?}"),
                    }
                }
                _ => {
                    println!(
                        "usage: probe-p3 args|env|exit|read|write|sleep|connect|listen|alloc|spin|lookup|udp|udp-recv ..."
                    );
                    return Err(());
                }
            }
            Ok(())
        }
    }
}

fn main() {
    // The component's `wasi:cli/run@0.3.0` export is what runs; this 0.2 entry is never called
    // by a host that speaks 0.3.
    eprintln!("probe-p3 is a WASI 0.3 command: run it on a host with WASI 0.3");
    std::process::exit(2);
}
