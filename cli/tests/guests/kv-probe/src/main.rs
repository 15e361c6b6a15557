//! `kv-probe COMMAND ARGS...`: one subcommand per thing a guest may do with `wasi:keyvalue`
//! and `wasi:config`, printing what it got so tests can tell right from wrong.

use std::env;
use std::process;

wit_bindgen::generate!({
    path: "wit",
    world: "kv-probe",
    generate_all,
});

use wasi::config::store as config;
use wasi::keyvalue::{atomics, batch, store};

fn open(name: &str) -> store::Bucket {
    match store::open(name) {
        Ok(b) => b,
        Err(e) => {
            println!("open {name}: {e:?}");
            process::exit(3);
        }
    }
}

fn main() {
    let args: Vec<String> = env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    match arg(1).as_str() {
        "open" => {
            open(&arg(2));
            println!("opened {}", arg(2));
        }
        // incr BUCKET KEY TIMES: adds 1 TIMES times, prints the last value.
        "incr" => {
            let b = open(&arg(2));
            let mut last = 0;
            for _ in 0..num(4).max(1) {
                last = atomics::increment(&b, &arg(3), 1).unwrap_or_else(|e| {
                    println!("increment: {e:?}");
                    process::exit(4)
                });
            }
            println!("{last}");
        }
        "set" => match open(&arg(2)).set(&arg(3), arg(4).as_bytes()) {
            Ok(()) => println!("set {}", arg(3)),
            Err(e) => println!("set: {e:?}"),
        },
        "get" => match open(&arg(2)).get(&arg(3)) {
            Ok(Some(v)) => println!("{}", String::from_utf8_lossy(&v)),
            Ok(None) => println!("(none)"),
            Err(e) => println!("get: {e:?}"),
        },
        "delete" => match open(&arg(2)).delete(&arg(3)) {
            Ok(()) => println!("deleted {}", arg(3)),
            Err(e) => println!("delete: {e:?}"),
        },
        // fill BUCKET SIZE: writes keys of SIZE-byte values until refused.
        "fill" => {
            let b = open(&arg(2));
            let value = vec![b'x'; num(3) as usize];
            let mut n = 0u64;
            loop {
                if let Err(e) = b.set(&format!("k{n:08}"), &value) {
                    println!("stored {n} then: {e:?}");
                    break;
                }
                n += 1;
                if n > 1_000_000 {
                    println!("stored {n} and was never refused");
                    break;
                }
            }
        }
        // setlen BUCKET KEYLEN VALUELEN: one key and value of those sizes.
        "setlen" => {
            let key = "k".repeat(num(3) as usize);
            match open(&arg(2)).set(&key, &vec![7u8; num(4) as usize]) {
                Ok(()) => println!("stored"),
                Err(e) => println!("refused: {e:?}"),
            }
        }
        // binary BUCKET: every byte value, and a key of non-ASCII text, round-trip.
        "binary" => {
            let b = open(&arg(2));
            let value: Vec<u8> = (0..=255u8).collect();
            let key = "clé\u{0}\u{7f}ñ";
            b.set(key, &value).expect("set");
            let back = b.get(key).expect("get").expect("present");
            println!(
                "{}",
                if back == value {
                    "binary ok"
                } else {
                    "binary differs"
                }
            );
        }
        // badkey BUCKET: a key whose bytes are not UTF-8, which the host must refuse.
        "badkey" => {
            let b = open(&arg(2));
            let bytes: Vec<u8> = std::hint::black_box(vec![0x66, 0xff, 0xfe, 0x6f]);
            // Deliberately invalid: this is what a hostile guest sends.
            let key = unsafe { std::str::from_utf8_unchecked(&bytes) };
            println!("{:?}", b.set(key, b"v"));
        }
        "list" => {
            let b = open(&arg(2));
            let mut cursor = None;
            let mut all = Vec::new();
            loop {
                let page = b.list_keys(cursor).expect("list");
                all.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            println!("{} keys; first {:?}", all.len(), all.first());
        }
        "batch" => {
            let b = open(&arg(2));
            let pairs = vec![
                ("a".to_string(), b"1".to_vec()),
                ("b".to_string(), b"2".to_vec()),
            ];
            batch::set_many(&b, &pairs).expect("set-many");
            let got = batch::get_many(&b, &["a".into(), "b".into(), "c".into()]).expect("get-many");
            println!("{got:?}");
            batch::delete_many(&b, &["a".into()]).expect("delete-many");
            println!("a after delete: {:?}", b.exists("a"));
        }
        // config NAME: one variable or secret.
        "config" => match config::get(&arg(2)) {
            Ok(Some(v)) => println!("{}={v}", arg(2)),
            Ok(None) => println!("{} is not set", arg(2)),
            Err(e) => println!("config: {e:?}"),
        },
        "config-names" => {
            let mut names: Vec<String> = config::get_all()
                .expect("get-all")
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            names.sort();
            println!("{}", names.join(","));
        }
        other => {
            eprintln!("unknown command {other:?}");
            process::exit(2);
        }
    }
}
