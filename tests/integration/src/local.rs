//! Local stand-ins for AWS plumbing, used by the demo and the `cargo lambda watch`
//! workflow: the SQS event source mapping, invoking a function through the Lambda
//! invoke API that `cargo lambda watch` serves.

use aws_lambda_events::sqs::SqsBatchResponse;

use crate::apps::sqs_event_from_messages;

/// One poll of the SQS event source mapping: receive up to 10 messages, invoke the
/// warmer with a real SQS event through `invoke_base`
/// (`http://127.0.0.1:9000/2015-03-31/functions`), delete every message the batch
/// response does not name as failed. Returns (received, failed).
pub async fn poll_and_invoke(
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    queue_url: &str,
    invoke_base: &str,
    function: &str,
    wait_secs: i32,
) -> Result<(usize, usize), String> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("receive: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok((0, 0));
    }
    let event = sqs_event_from_messages(&messages, "arn:aws:sqs:us-east-1:000000000000:reco-warm");
    let url = format!("{invoke_base}/{function}/invocations");
    let response = http
        .post(&url)
        .json(&event)
        .send()
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    // A function error (not a batch response) leaves every message for redelivery.
    let batch: SqsBatchResponse = match serde_json::from_str(&text) {
        Ok(b) if status.is_success() => b,
        _ => {
            return Err(format!(
                "{function} failed (HTTP {status}): {}",
                text.chars().take(300).collect::<String>()
            ));
        }
    };
    let failed: Vec<&str> = batch
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for message in &messages {
        if failed.contains(&message.message_id.as_deref().unwrap_or("")) {
            continue;
        }
        sqs.delete_message()
            .queue_url(queue_url)
            .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
            .send()
            .await
            .map_err(|e| format!("delete: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    }
    Ok((messages.len(), failed.len()))
}

/// `cargo lambda watch` from the project's `.venv`, serving every function of the
/// workspace on a loopback port, in its own process group (killed on drop). Used by the
/// demo and the end-to-end test.
pub struct LambdaWatch {
    child: std::process::Child,
    pub port: u16,
    log: std::path::PathBuf,
}

impl LambdaWatch {
    /// Starts `cargo lambda watch --ignore-changes --disable-cors` on a free port with the `KEY=VALUE`
    /// lines of `env_file` as its functions' environment, its output going to `log`. A missing `cargo-lambda` is an error naming the set-up command.
    pub fn start(env_file: &std::path::Path, log: &std::path::Path) -> Result<Self, String> {
        use std::process::{Command, Stdio};

        let root = crate::services::repo_root();
        let venv_bin = root.join(".venv/bin");
        let cargo_lambda = venv_bin.join("cargo-lambda");
        if !cargo_lambda.is_file() {
            return Err(format!(
                "`cargo-lambda` was not found at {}: run scripts/setup.sh (the README's test command runs it)",
                cargo_lambda.display()
            ));
        }
        let env_text = std::fs::read_to_string(env_file)
            .map_err(|e| format!("could not read {}: {e}", env_file.display()))?;
        let env_vars: Vec<String> = env_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && l.contains('='))
            .map(str::to_owned)
            .collect();
        let port = crate::services::free_port();
        adopt_orphans();
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("could not create {}: {e}", log.display()))?;
        // In a session of its own (`setsid` execs in place, so the pid and the group id
        // are the child's): whatever watch signals on its way up or down stays in there.
        let mut command = Command::new("setsid");
        without_inherited_cargo_env(&mut command);
        let child = command
            .arg(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                // Watch's own permissive CORS would answer for the API: the function's
                // CORS_ALLOWED_ORIGINS decides, as API Gateway's configuration does in AWS.
                "--disable-cors",
                // The test build's dependency features (tests/workspace-hack): the
                // functions are built from the test build's compiled dependencies.
                "--features",
                "reco-core/workspace-hack",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            // `--env-var`, not `--env-file`: cargo-lambda 1.9.2 lets the workspace metadata's
            // environment win over a file, while `--env-var` replaces the metadata list.
            .args(env_vars.iter().flat_map(|kv| ["--env-var", kv.as_str()]))
            .current_dir(&root)
            // zig (for cargo-lambda) lives in the venv too.
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    venv_bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stdin(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", cargo_lambda.display()))?;
        Ok(Self {
            child,
            port,
            log: log.to_owned(),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Lambda invoke API base: `{base}/2015-03-31/functions`.
    pub fn invoke_base(&self) -> String {
        format!("{}/2015-03-31/functions", self.base_url())
    }

    /// A function URL path served by watch: `{base}/lambda-url/{function}{path}`.
    pub fn function_url(&self, function: &str, path: &str) -> String {
        format!("{}/lambda-url/{function}{path}", self.base_url())
    }

    /// The last `lines` lines of watch's log (cargo's output and the functions' stderr).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Fails if the log shows a compile error: watch keeps serving, so a request for a
    /// function that does not compile would otherwise wait out every timeout.
    pub fn check_compile_errors(&self) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if text.contains("error: could not compile") {
            return Err(format!(
                "a function failed to compile under cargo lambda watch:\n{}",
                self.log_tail(40)
            ));
        }
        Ok(())
    }

    /// Waits until `url` answers 2xx (the first request compiles the function), up to
    /// `limit`; fails early if watch exits or a function fails to compile.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        limit: std::time::Duration,
    ) -> Result<(), String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            // Short request timeouts, so a compile error is noticed while a request waits.
            let request = http.get(url).timeout(std::time::Duration::from_secs(20));
            if let Ok(r) = request.send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            self.check_compile_errors()?;
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("cargo lambda watch exited: {status}"));
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{url} did not answer within {limit:?}"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // watch spawns cargo and the function processes: end the whole group, with
        // SIGKILL. On SIGTERM, watch's own shutdown signalled processes outside its group
        // (the test runner itself was cancelled "due to signal" in CI right after this
        // test had passed), so it gets no chance to run one.
        //
        // The syscall, not the `kill` program: procps-ng 4.0.2 reads `kill -KILL -20715` as
        // `kill(-2, SIGKILL)` (the first digit only), so a watch pid starting with 1 became
        // `kill(-1, SIGKILL)`: every process on the machine, the CI runner among them.
        if let Ok(group) = i32::try_from(self.child.id())
            && group > 1
        {
            // SAFETY: kill with a negative pid names one process group (watch's own, made by
            // `setsid`); `group > 1` keeps it from ever meaning "every process" (-1).
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Watch starts `cargo run` and the functions in process groups of their own: the
        // group kill misses them. They are still in watch's session.
        kill_session(self.child.id());
    }
}

/// Makes this process the parent of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`),
/// so the processes `cargo lambda watch` leaves behind are reaped here, not by the
/// machine's init (on some hosts init is a supervisor that does not expect them).
fn adopt_orphans() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and changes only this
    // process's own attribute.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// SIGKILLs every process of session `sid` and all below them, and the orphans this
/// process adopted (as subreaper) from sessions other than its own, then reaps this
/// process's dead children. The services a test starts itself stay in the test's own
/// session and are left to their own drops.
pub fn kill_session(sid: u32) {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    // pid -> (ppid, session)
    let mut table: Vec<(u32, u32, u32)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) start after the last ')':
        // state, ppid, pgrp, session, ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(ppid), Some(session)) = (
            fields.get(1).and_then(|f| f.parse::<u32>().ok()),
            fields.get(3).and_then(|f| f.parse::<u32>().ok()),
        ) {
            table.push((pid, ppid, session));
        }
    }
    // Watch's session ...
    let mut doomed: std::collections::HashSet<u32> = table
        .iter()
        .filter(|(_, _, session)| *session == sid)
        .map(|(pid, _, _)| *pid)
        .collect();
    // Orphans this process adopted that had made sessions of their own: the services a
    // test starts itself (redis-server, moto_server) stay in this process's session.
    let my_session = table
        .iter()
        .find(|(pid, _, _)| *pid == me)
        .map(|(_, _, session)| *session);
    for (pid, ppid, session) in &table {
        if *ppid == me && Some(*session) != my_session {
            doomed.insert(*pid);
        }
    }
    // ... and everything below them.
    loop {
        let before = doomed.len();
        for (pid, ppid, _) in &table {
            if doomed.contains(ppid) {
                doomed.insert(*pid);
            }
        }
        if doomed.len() == before {
            break;
        }
    }
    doomed.remove(&me);
    // Never init, never a pid that `kill` reads as a group or as "every process".
    doomed.retain(|pid| *pid > 1 && i32::try_from(*pid).is_ok());
    for pid in &doomed {
        // SAFETY: kill with a pid read from /proc and a constant signal.
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    for (pid, ppid, _) in &table {
        if *ppid == me && doomed.contains(pid) {
            // SAFETY: waitpid on a child of this process, with a valid status pointer.
            unsafe {
                let mut status = 0;
                libc::waitpid(*pid as i32, &mut status, 0);
            }
        }
    }
    // Adopted orphans that had already exited: reap them too (only the dead: WNOHANG).
    // SAFETY: as above; -1 names any child, and WNOHANG never blocks.
    unsafe {
        let mut status = 0;
        while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
    }
}

/// The environment file for the functions under watch: local Redis, SQS and YouTube,
/// `AUTH_MODE=none`, and the guard's Redis bound at 2 s instead of production's 200 ms: a
/// developer's machine runs builds, tests and a browser beside the functions. Given to watch as `--env-var`s, they replace the workspace
/// metadata's `env_var` list.
pub fn local_env_text(
    redis_url: &str,
    queue_url: &str,
    sqs_endpoint: &str,
    youtube_base_url: &str,
    youtube_key: &str,
) -> String {
    format!(
        "REDIS_URL={redis_url}\nWARM_QUEUE_URL={queue_url}\nAWS_ENDPOINT_URL_SQS={sqs_endpoint}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=local\nAWS_SECRET_ACCESS_KEY=local\nYOUTUBE_API_BASE_URL={youtube_base_url}\nYOUTUBE_API_KEY={youtube_key}\nAUTH_MODE=none\nYOUTUBE_QUOTA_TIMEOUT_MS=2000\nAWS_LAMBDA_LOG_FORMAT=json\nRUST_LOG=warn\n"
    )
}

/// Drops what this process inherited from the `cargo` that started it (`CARGO_PKG_*`,
/// `CARGO_MANIFEST_DIR`, `LD_LIBRARY_PATH`, ...): passed on, they change the build
/// environment of `cargo lambda watch`'s own `cargo run`, and it would rebuild crates the
/// workspace build already compiled.
pub fn without_inherited_cargo_env(command: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let inherited = (name.starts_with("CARGO") && name != "CARGO_HOME")
            || name.starts_with("RUST_RECURSION")
            || name.starts_with("DEP_")
            || matches!(
                name,
                "LD_LIBRARY_PATH"
                    | "OUT_DIR"
                    | "TARGET"
                    | "HOST"
                    | "NEXTEST"
                    | "NEXTEST_RUN_ID"
                    | "NEXTEST_EXECUTION_MODE"
                    | "__CARGO_FIX_YOLO"
            );
        if inherited {
            command.env_remove(name);
        }
    }
}
