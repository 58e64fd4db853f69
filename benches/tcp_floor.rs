//! What one streamed token costs the kernel on this machine, before any HTTP, JSON or
//! async runtime: N loopback TCP connections (Nagle off, as every HTTP stack here
//! sets it), one thread writing a token-sized SSE frame (180 bytes) on each in turn
//! and then reading each. A streamed token is exactly that: one segment written by
//! the model server and read by the client. The figure bounds how many concurrent
//! streams a model server and gateprobe can hold together on one machine: at ITL
//! 20 ms, N streams are N x 50 segments a second, and no user-space work can make the
//! kernel's share cheaper.
//!
//! Run: `cargo bench --bench tcp_floor` (or `-- 5000 60`: connections, rounds).
//! `benches/capacity/scale.sh` runs it before its table.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

fn cpu() -> (Duration, Duration) {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    (d(u.user_time()), d(u.system_time()))
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are the positional arguments.
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes: Vec<(usize, usize)> = match args.as_slice() {
        [n, rounds, ..] => vec![(*n, *rounds)],
        [n] => vec![(*n, 300_000 / n.max(&1))],
        _ => vec![(100, 2_000), (1_000, 300), (5_000, 60)],
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "| connections | segments | kernel CPU per segment (write + read) | user CPU per segment | segments/s on {cores} cores at 100% | streams at ITL 20 ms |"
    );
    println!("|--:|--:|--:|--:|--:|--:|");
    for (n, rounds) in sizes {
        match measure(n, rounds) {
            Ok((sys, user)) => {
                let per_s = cores as f64 / (sys + user).as_secs_f64();
                println!(
                    "| {n} | {} | {:.2} µs | {:.2} µs | {:.0} | {:.0} |",
                    n * rounds,
                    sys.as_secs_f64() * 1e6,
                    user.as_secs_f64() * 1e6,
                    per_s,
                    per_s / 50.0
                );
            }
            Err(e) => println!("| {n} | failed: {e} (raise `ulimit -n`: 2 descriptors a connection) |"),
        }
    }
}

/// CPU (kernel, user) per segment written and read.
fn measure(n: usize, rounds: usize) -> std::io::Result<(Duration, Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        pairs.push((server, client));
    }
    let frame = {
        let mut f = br#"data: {"id":"chatcmpl-0","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]}"#.to_vec();
        f.resize(178, b' ');
        f.extend_from_slice(b"\n\n");
        f
    };
    let mut buf = vec![0u8; 4096];
    let (u0, s0) = cpu();
    for _ in 0..rounds {
        for (server, _) in &mut pairs {
            server.write_all(&frame)?;
        }
        for (_, client) in &mut pairs {
            let mut got = 0;
            while got < frame.len() {
                got += client.read(&mut buf)?;
            }
        }
    }
    let (u1, s1) = cpu();
    let segments = (n * rounds) as u32;
    Ok(((s1 - s0) / segments, (u1 - u0) / segments))
}
