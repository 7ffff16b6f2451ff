//! Reading a spawned `modelgate serve`'s stdout: its first line names the address it listens on.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::sync::mpsc;

/// Reads `stdout`'s first line on a thread and sends it (empty if the process ended first),
/// then keeps draining the pipe so the server never blocks on a full one. Receive it with a
/// deadline (`recv_timeout`).
pub fn first_line(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx
}
