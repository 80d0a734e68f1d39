//! Shared by the end-to-end tests and the pipeline benchmark: `syncline` child processes,
//! and `syncline demo` with what it prints.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Fails loudly by design.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_syncline");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Process {
    pub fn kill_hard(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

pub fn syncline(dir: &Path, env: &[(String, String)], args: &[&str], log: &str) -> Process {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SYNCLINE_LOG", "info,sqlx=warn")
        .stdout(Stdio::piped())
        .stderr(log);
    for (key, value) in env {
        command.env(key, value);
    }
    Process(command.spawn().unwrap())
}

/// What `syncline demo` prints.
pub struct Demo {
    /// The demo process (killed when dropped).
    pub process: Process,
    /// Shopify emulator base URL.
    pub shopify: String,
    /// The demo shop's name.
    pub shop: String,
    /// D365 emulator base URL.
    pub d365: String,
    /// The demo login's e-mail.
    pub email: String,
    /// The demo login's fresh password.
    pub password: String,
    /// The console's URL.
    pub console: String,
}

pub fn start_demo(dir: &Path, env: &[(String, String)]) -> Demo {
    let mut process = syncline(dir, env, &["demo", "--orders-per-second", "0"], "demo.log");
    let stdout = process.0.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !printed.iter().any(|l: &String| l.starts_with("Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => panic!(
                "the demo did not start: {}",
                std::fs::read_to_string(dir.join("demo.log")).unwrap_or_default()
            ),
        }
    }
    let field = |prefix: &str| -> String {
        printed
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {printed:#?}"))
            .trim()
            .to_owned()
    };
    assert!(field("Email:").contains('@'));
    assert!(field("Password:").len() >= 12, "a real password is printed");
    assert!(field("Console:").ends_with("/console"));
    let shopify_line = field("Shopify emulator:");
    let (shopify, shop) = shopify_line.split_once(" (shop ").unwrap();
    Demo {
        process,
        shopify: shopify.to_owned(),
        shop: shop.trim_end_matches(')').to_owned(),
        d365: field("D365 emulator:"),
        email: field("Email:"),
        password: field("Password:"),
        console: field("Console:"),
    }
}

/// The environment of a process on the embedded default, listening on `port`.
pub fn embedded_env(dir: &Path, port: u16) -> Vec<(String, String)> {
    vec![
        ("SYNCLINE_LISTEN".into(), format!("127.0.0.1:{port}")),
        (
            "SYNCLINE_PUBLIC_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "SYNCLINE_DATA_DIR".into(),
            dir.join("data").display().to_string(),
        ),
    ]
}
