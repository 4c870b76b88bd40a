//! A Lambda Runtime API (the 2018-06-01 interface) on a loopback port, to run the real
//! function binaries as Lambda runs them: the binary long-polls `invocation/next`, gets
//! an event with its request id and deadline, and posts a response or an error.
//!
//! Each [`RuntimeApi::invoke`] hands one event to the next poll and waits for the
//! function's answer; an `init/error` or the process exiting is an answer too, so a
//! function that cannot start fails the test with its reason instead of hanging it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(String),
    /// `invocation/{id}/error`: the handler failed.
    Error(String),
    /// `init/error`: the function could not start.
    InitError(String),
}

#[derive(Default)]
struct Inner {
    answers: HashMap<String, Answer>,
    init_error: Option<String>,
    polls: usize,
}

#[derive(Clone)]
struct Emulator {
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<(String, String, i64)>>>,
    inner: Arc<Mutex<Inner>>,
    answered: Arc<Notify>,
}

async fn next(State(emu): State<Emulator>) -> Result<(HeaderMap, String), StatusCode> {
    emu.inner.lock().unwrap().polls += 1;
    emu.answered.notify_waiters();
    let Some((id, event, deadline_ms)) = emu.events.lock().await.recv().await else {
        return Err(StatusCode::GONE);
    };
    let mut headers = HeaderMap::new();
    let value = |s: String| HeaderValue::from_str(&s).map_err(|_| StatusCode::BAD_REQUEST);
    headers.insert("lambda-runtime-aws-request-id", value(id)?);
    headers.insert(
        "lambda-runtime-deadline-ms",
        value(deadline_ms.to_string())?,
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:reco-test"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    Ok((headers, event))
}

async fn respond(State(emu): State<Emulator>, Path(id): Path<String>, body: String) -> StatusCode {
    emu.inner
        .lock()
        .unwrap()
        .answers
        .insert(id, Answer::Response(body));
    emu.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    emu.inner
        .lock()
        .unwrap()
        .answers
        .insert(id, Answer::Error(body));
    emu.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(emu): State<Emulator>, body: String) -> StatusCode {
    emu.inner.lock().unwrap().init_error = Some(body);
    emu.answered.notify_waiters();
    StatusCode::ACCEPTED
}

/// A function binary running against this emulator; killed on drop.
pub struct RuntimeApi {
    sender: mpsc::Sender<(String, String, i64)>,
    emu: Emulator,
    child: Child,
    log: PathBuf,
    invocations: usize,
}

/// The path of a workspace binary built by `cargo build --workspace` (the test command
/// builds every target before the tests run).
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::services::repo_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` (scripts/test.sh does)",
        path.display()
    );
    path
}

impl RuntimeApi {
    /// Starts the emulator and execs `binary` against it with exactly `env` (plus
    /// `AWS_LAMBDA_RUNTIME_API` and the variables Lambda always sets); the function's
    /// stdout and stderr go to a log file under the temp dir.
    pub async fn start(binary: &std::path::Path, env: &[(String, String)]) -> Self {
        let (sender, receiver) = mpsc::channel(16);
        let emu = Emulator {
            events: Arc::new(tokio::sync::Mutex::new(receiver)),
            inner: Arc::default(),
            answered: Arc::new(Notify::new()),
        };
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(emu.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let log = std::env::temp_dir().join(format!(
            "reco-runtime-{}-{}.log",
            binary.file_name().unwrap().to_string_lossy(),
            crate::services::free_port()
        ));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "reco-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "json")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = command.spawn().expect("spawn the function binary");
        Self {
            sender,
            emu,
            child,
            log,
            invocations: 0,
        }
    }

    /// Everything the function printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines the function printed, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Hands `event` to the function with `deadline` from now, and waits at most `wait`
    /// for its answer. `Err` says why there was none (the process exited, or time ran out).
    pub async fn invoke(
        &mut self,
        event: &str,
        deadline: Duration,
        wait: Duration,
    ) -> Result<(Answer, Duration), String> {
        let deadline_ms = jiff::Timestamp::now().as_millisecond() + deadline.as_millis() as i64;
        self.invoke_with_deadline_ms(event, deadline_ms, wait).await
    }

    /// [`RuntimeApi::invoke`] with the `Lambda-Runtime-Deadline-Ms` header given as is
    /// (milliseconds since the epoch), as an emulator of its own may send it.
    pub async fn invoke_with_deadline_ms(
        &mut self,
        event: &str,
        deadline_ms: i64,
        wait: Duration,
    ) -> Result<(Answer, Duration), String> {
        self.invocations += 1;
        let id = format!("reco-test-{}", self.invocations);
        let started = Instant::now();
        self.sender
            .send((id.clone(), event.to_owned(), deadline_ms))
            .await
            .map_err(|_| "the emulator stopped".to_string())?;
        loop {
            let notified = self.emu.answered.notified();
            {
                let inner = self.emu.inner.lock().unwrap();
                if let Some(answer) = inner.answers.get(&id) {
                    return Ok((answer.clone(), started.elapsed()));
                }
                if let Some(e) = &inner.init_error {
                    return Ok((Answer::InitError(e.clone()), started.elapsed()));
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the function exited ({status}) without answering; the end of its log:\n{}",
                    self.log_tail()
                ));
            }
            if started.elapsed() > wait {
                return Err(format!(
                    "no answer within {wait:?}; the end of the function's log:\n{}",
                    self.log_tail()
                ));
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
