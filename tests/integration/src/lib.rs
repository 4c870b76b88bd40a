//! The test harness: real services on loopback ephemeral ports, one set per test.
//!
//! `redis-server` (Debian's package) and `moto_server` (the project's `.venv`) are
//! spawned as child processes and killed on drop; the fake YouTube runs in-process on its
//! own thread and is reached over HTTP like the real API. A missing binary is a loud
//! failure naming the set-up command, never a skipped test.

pub mod services;

pub use services::{Fake, MotoSqs, RedisServer, TestEnv};
