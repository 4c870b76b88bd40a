//! Shared by the fault and security tests: every log line the handlers write in the test
//! process, captured so a test can assert what never appears in them (the API key, watch
//! history).

#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

/// Installs (once per process) the functions' own subscriber writing into a buffer.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        lambda_runtime::tracing::init_default_subscriber_with_writer(move || Sink(sink.clone()));
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured lines, ANSI colour codes removed.
pub fn log_lines() -> Vec<String> {
    let raw = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    let mut plain = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.lines().map(str::to_owned).collect()
}

/// Panics naming the first line that contains any of `secrets`; returns the lines checked.
pub fn assert_absent(what: &str, secrets: &[String], extra: &[String]) -> usize {
    let lines = log_lines();
    for line in lines.iter().chain(extra) {
        for secret in secrets {
            assert!(
                !line.contains(secret.as_str()),
                "{what} leaked into a log line or error: {line}"
            );
        }
    }
    lines.len() + extra.len()
}
