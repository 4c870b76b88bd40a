//! The test harness: real services on loopback ephemeral ports, one set per test.
//!
//! `redis-server` (Debian's package) and `moto_server` (the project's `.venv`) are
//! spawned as child processes and killed on drop; the fake YouTube runs in-process on its
//! own thread and is reached over HTTP like the real API. A missing binary is a loud
//! failure naming the set-up command, never a skipped test.

pub mod apigw;
pub mod apps;
pub mod cluster;
pub mod demo;
pub mod local;
pub mod postgrest;
pub mod runtime_api;
pub mod scenario;
pub mod services;

pub use apps::{Apps, api_request, api_request_with, response_json};
pub use services::{Fake, MotoSqs, RedisServer, TEST_API_KEY, TestEnv, start_fake};
