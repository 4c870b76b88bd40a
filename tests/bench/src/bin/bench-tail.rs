//! Tail latency of a cache hit: the API function (`target/release/reco-api`, the real
//! release binary) against the earlier design, a small Python Lambda function (FastAPI +
//! Mangum + redis-py, one `GET` of the user's cached page: `tests/bench/baseline/
//! earlier_design.py`), both run as Lambda runs them and timed the same way.
//!
//! `cargo build --release -p reco-api` first (the bench execs `target/release/reco-api`),
//! then `cargo run --release -p reco-bench --bin bench-tail [-- --hits 2000 --runs 5]`.
//! `scripts/setup.sh` installs fastapi, mangum and redis into `.venv`.
//!
//! Each function is a process of its own long-polling a Lambda Runtime API emulator of its
//! own (the 2018-06-01 interface, on a loopback port, in this process). An invocation is
//! timed from the emulator handing the event out (`invocation/next` answering) to the
//! function's answer arriving (`invocation/{id}/response` read in full): the handler, the
//! runtime's (de)serialisation and its post, not the network in front of Lambda.
//!
//! Per run: fresh processes of both; 200 untimed warm-up invocations each (connections up,
//! scripts loaded, the API's item cache holding every video the timed pages show); then
//! `--hits` timed invocations each, interleaved one by one (reco, the earlier design, the
//! earlier design, reco, …: each round starts with the next function), so the machine's
//! noise falls on both alike. An invocation is handed out only when every function is
//! parked in `invocation/next` again, so none's after-work (the Python loop's closing of
//! its connection and its next request) falls into the other's timed window. The bench
//! prints each run's p50 and p99 and the median over runs of each, and writes
//! `benchmarks/tail.json`.
//!
//! Every timed invocation is a hit, checked: the API's answers must be 200 with
//! `meta.cache_status == "hit"` and 20 videos (each user has a 240-video pool, written
//! before the warm-up and again before the timed hits, and is asked for at most 8 pages,
//! so the pool stays above the low watermark and no refill is ever enqueued); the earlier
//! design's must be 200 with exactly the page stored. Any error report fails the bench.
//!
//! The earlier design's page for a user is the exact body the API answers for a first
//! page, obtained from the in-process handler (`apps.api.handle`) once, for a throwaway
//! user whose id is as long as every bench user's, with that id then replaced by each
//! user's: the same 20 videos, the same envelope and the same size as the API's answer.
//!
//! `--variant NAME[,NAME…]` runs one API process per variant, interleaved with the others
//! and the earlier design, each with its own users: `default` (as deployed: `RUST_LOG=info`,
//! EMF metrics on, stdout to a log file), `no-emf` (`EMF_METRICS=off`), `warn-log`
//! (`RUST_LOG=warn`: no request log line), `quiet` (both), `devnull` (as deployed, stdout
//! to /dev/null), `one-worker` (`TOKIO_WORKER_THREADS=1`), `lean` (`quiet` and
//! `one-worker`). `--floor` adds the bench's own `GET` of the stored page after each round
//! (Redis and this machine's noise alone). `--schedstat` reads the scheduler's counters of
//! the function, Redis and the bench around each timed invocation (outside the timed
//! window) and says where the time went. `--out NAME` writes `benchmarks/NAME.json`
//! instead; `--raw PATH` writes every timed latency, in order, per run and function.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use lambda_http::{Body, RequestExt};
use reco_bench::{Samples, feed_event, round1, us, write_json};
use reco_core::config::AuthMode;
use reco_core::engine::POOL_TARGET;
use reco_core::{UserId, Video};
use reco_tests::services::{TEST_API_KEY, repo_root};
use reco_tests::{Apps, TestEnv};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};

const PAGE: usize = 20;
/// Pages per user per pool: 8 of 20 leave 80 of 240, above the low watermark (60).
const HITS_PER_USER: usize = 8;
/// Untimed invocations of each process before the timed ones.
const WARMUP: usize = 200;
const BASELINE: &str = "earlier-design";
/// `--floor`: a `GET` of the page by the bench itself after each round.
const FLOOR: &str = "redis-get[floor]";

/// One invocation to hand out, and where its answer goes.
struct Invocation {
    id: String,
    event: String,
    reply: oneshot::Sender<Answer>,
}

/// A function's answer to one invocation.
struct Answer {
    /// From the event being handed out to the answer read in full.
    latency: Duration,
    body: String,
    error: bool,
}

/// The invocations handed out and not answered yet: when each was, and where its answer
/// goes, by request id.
type Pending = HashMap<String, (Instant, oneshot::Sender<Answer>)>;

/// One function's Runtime API: the invocations to hand out, and those handed out.
#[derive(Clone)]
struct Emulator {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    pending: Arc<Mutex<Pending>>,
    /// The function is parked in `invocation/next`: done with its last invocation.
    parked: Arc<AtomicBool>,
    polled: Arc<Notify>,
}

async fn next(State(emu): State<Emulator>) -> Result<(HeaderMap, String), StatusCode> {
    // The long poll: held until the bench hands out an invocation.
    let mut queue = emu.queue.lock().await;
    emu.parked.store(true, Ordering::SeqCst);
    emu.polled.notify_waiters();
    let inv = queue.recv().await;
    emu.parked.store(false, Ordering::SeqCst);
    drop(queue);
    let Some(inv) = inv else {
        return Err(StatusCode::GONE);
    };
    let mut headers = HeaderMap::new();
    let deadline = jiff::Timestamp::now().as_millisecond() + 30_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&inv.id).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?,
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"),
    );
    emu.pending
        .lock()
        .unwrap()
        .insert(inv.id, (Instant::now(), inv.reply));
    Ok((headers, inv.event))
}

fn answer(emu: &Emulator, id: &str, body: String, error: bool) -> StatusCode {
    let at = Instant::now();
    let Some((handed, reply)) = emu.pending.lock().unwrap().remove(id) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = reply.send(Answer {
        latency: at - handed,
        body,
        error,
    });
    StatusCode::ACCEPTED
}

async fn respond(State(emu): State<Emulator>, Path(id): Path<String>, body: String) -> StatusCode {
    answer(&emu, &id, body, false)
}

async fn invocation_error(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    answer(&emu, &id, body, true)
}

async fn init_error(body: String) -> StatusCode {
    eprintln!("a function reported an init error: {body}");
    StatusCode::ACCEPTED
}

/// A function process and its emulator; the process is killed on drop.
struct Function {
    name: String,
    emu: Emulator,
    invocations: Option<mpsc::Sender<Invocation>>,
    child: Child,
    log: PathBuf,
    handed: usize,
}

impl Function {
    /// Starts an emulator on a loopback port and execs `program args` against it with
    /// exactly `env` (plus `AWS_LAMBDA_RUNTIME_API`); its output goes to `log`
    /// (`None`: /dev/null).
    async fn start(
        name: &str,
        program: &FsPath,
        args: &[&str],
        env: &[(String, String)],
        log: Option<PathBuf>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(1);
        let emu = Emulator {
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            pending: Arc::default(),
            parked: Arc::default(),
            polled: Arc::default(),
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
        let runtime_api = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let (out, err) = match &log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("create the function's log");
                (Stdio::from(file.try_clone().unwrap()), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("exec {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            emu,
            invocations: Some(sender),
            child,
            log: log.unwrap_or_else(|| "/dev/null".into()),
            handed: 0,
        }
    }

    /// Waits (at most 20 s) until the function polls `invocation/next` again: whatever it
    /// does after an answer (closing a connection, its next request) is over, and cannot
    /// fall into another function's timed invocation.
    async fn parked(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let polled = self.emu.polled.notified();
            if self.emu.parked.load(Ordering::SeqCst) {
                return Ok(());
            }
            if tokio::time::timeout(Duration::from_millis(500), polled)
                .await
                .is_ok()
            {
                continue;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before polling for work; see {}",
                    self.name,
                    self.log.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "{} did not poll for work within 20 s; see {}",
                    self.name,
                    self.log.display()
                ));
            }
        }
    }

    /// Hands `event` out and waits (at most 20 s) for the answer.
    async fn invoke(&mut self, event: String) -> Result<Answer, String> {
        self.handed += 1;
        let (reply, mut answer) = oneshot::channel();
        let invocation = Invocation {
            id: format!("bench-tail-{:08}", self.handed),
            event,
            reply,
        };
        let sent = self.invocations.as_ref().unwrap().send(invocation).await;
        sent.map_err(|_| "the emulator stopped".to_owned())?;
        let started = Instant::now();
        loop {
            if let Ok(answer) = tokio::time::timeout(Duration::from_millis(500), &mut answer).await
            {
                return answer.map_err(|_| "the emulator dropped an invocation".to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) without answering; see {}",
                    self.name,
                    self.log.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "{} did not answer within 20 s; see {}",
                    self.name,
                    self.log.display()
                ));
            }
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        // The emulator's held long poll ends (410) when its sender is gone.
        self.invocations.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn arg_str(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// `tail-<v>-<k>`: user `k` of variant `v`, all of one length.
fn user(v: usize, k: usize) -> UserId {
    UserId::parse(&format!("tail-{v}-{k:06}")).expect("user id")
}

/// Gives `users` the template pool and nothing served (untimed): every key under a bench
/// user's hash tag is deleted first, whatever the pool's layout keeps there, then the
/// pool is written and any served marks the write made are dropped.
async fn fill_pools(apps: &Apps, users: &[UserId], template: &[Video]) -> Result<(), String> {
    let mut conn = apps.services.redis.clone();
    let mut stale: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("reco:{u:tail-*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("SCAN: {e}"))?;
        stale.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    for keys in stale.chunks(1000) {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("DEL: {e}"))?;
    }
    for user in users {
        let kept = apps
            .services
            .engine
            .pool
            .replace(user, template)
            .await
            .map_err(|e| format!("pool replace: {e}"))?;
        if kept != template.len() {
            return Err(format!(
                "a refill kept {kept} of {} entries",
                template.len()
            ));
        }
        let _: () = redis::cmd("DEL")
            .arg(reco_core::store::keys::served(user))
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("DEL: {e}"))?;
    }
    Ok(())
}

/// The status and body of a function's Lambda proxy response, unless it reported an
/// error.
fn proxy_response(function: &str, answer: &Answer) -> Result<(u64, String), String> {
    if answer.error {
        return Err(format!("{function} reported an error: {}", answer.body));
    }
    let v: Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("{function}: {e}: {:.300}", answer.body))?;
    Ok((
        v["statusCode"].as_u64().unwrap_or(0),
        v["body"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// The body's size if the API answered a full page that was a cache hit.
fn check_hit(function: &str, answer: &Answer) -> Result<usize, String> {
    let (status, body) = proxy_response(function, answer)?;
    let page: Value =
        serde_json::from_str(&body).map_err(|e| format!("{function}: {e}: {body:.300}"))?;
    let cache_status = page["meta"]["cache_status"].as_str().unwrap_or("-");
    if status == 200 && cache_status == "hit" && page["count"] == PAGE {
        return Ok(body.len());
    }
    Err(format!(
        "{function} answered {status}, cache_status {cache_status}, count {}: {body:.300}\n\
         (were target/release/reco-api and bench-tail built from the same shared/? the bench \
         writes the pools with its own copy of the engine)",
        page["count"]
    ))
}

/// The body's size if the earlier design answered 200 with the stored page.
fn check_baseline(answer: &Answer, page: &str) -> Result<usize, String> {
    let (status, body) = proxy_response(BASELINE, answer)?;
    if status == 200 && body == page {
        return Ok(body.len());
    }
    Err(format!(
        "{BASELINE} answered {status} and not the stored page: {body:.300}"
    ))
}

/// The environment and output of one API variant.
fn variant_env(name: &str) -> (Vec<(&'static str, &'static str)>, bool) {
    match name {
        "default" => (vec![], true),
        "no-emf" => (vec![("EMF_METRICS", "off")], true),
        "warn-log" => (vec![("RUST_LOG", "warn")], true),
        "quiet" => (vec![("EMF_METRICS", "off"), ("RUST_LOG", "warn")], true),
        "devnull" => (vec![], false),
        "one-worker" => (vec![("TOKIO_WORKER_THREADS", "1")], true),
        "lean" => (
            vec![
                ("EMF_METRICS", "off"),
                ("RUST_LOG", "warn"),
                ("TOKIO_WORKER_THREADS", "1"),
            ],
            true,
        ),
        other => panic!(
            "unknown --variant {other}: default, no-emf, warn-log, quiet, devnull, one-worker, lean"
        ),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The 1, 5 and 15-minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The versions of Python and the earlier design's packages, as the interpreter reports.
fn python_versions(python: &FsPath) -> Value {
    let out = Command::new(python)
        .args([
            "-c",
            "import json, platform, importlib.metadata as m; print(json.dumps({'python': platform.python_version(), **{p: m.version(p) for p in ('fastapi', 'mangum', 'redis', 'starlette', 'pydantic')}}))",
        ])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "fastapi, mangum or redis is missing from .venv: run scripts/setup.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("versions json")
}

/// How to start one function.
struct Spec {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Where its output goes (`None`: /dev/null).
    log: Option<PathBuf>,
}

/// What every run does, and with what.
struct Plan<'a> {
    apps: &'a Apps,
    /// Every API variant's users (the first variant's first: the baseline's).
    all_users: &'a [UserId],
    template: &'a [Video],
    /// How to start each function; the last is the earlier design.
    specs: &'a [Spec],
    /// API function `f` serves `events[f]`'s users, the earlier design `events[0]`'s,
    /// whose stored pages are `pages`.
    events: &'a [Vec<String>],
    pages: &'a [String],
    hits: usize,
    floor: bool,
    /// `--schedstat`: redis-server's pid, whose scheduler counters are read with the
    /// function's and the bench's around each timed invocation.
    schedstat: Option<u32>,
}

/// What one run measured, per function (and the floor).
struct Measured {
    latencies: Vec<Vec<Duration>>,
    mean_body_bytes: Vec<usize>,
    /// Per timed invocation with `--schedstat`: [`Sched`] of the function, Redis and the
    /// bench over the invocation.
    sched: Vec<Vec<[Sched; 3]>>,
}

/// CPU time and run-queue wait of a process's threads, in ns (`/proc/<pid>/task/*/schedstat`).
#[derive(Clone, Copy, Default)]
struct Sched {
    cpu_ns: u64,
    wait_ns: u64,
}

impl Sched {
    fn of(pid: u32) -> Self {
        let mut total = Sched::default();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return total;
        };
        for task in tasks.flatten() {
            let Ok(line) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut fields = line
                .split_whitespace()
                .map(|f| f.parse::<u64>().unwrap_or(0));
            total.cpu_ns += fields.next().unwrap_or(0);
            total.wait_ns += fields.next().unwrap_or(0);
        }
        total
    }

    fn since(self, before: Sched) -> Sched {
        Sched {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            wait_ns: self.wait_ns.saturating_sub(before.wait_ns),
        }
    }
}

/// The redis-server this process started (a child of it), for `--schedstat`.
fn child_redis_pid() -> Option<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let (comm, rest) = stat.split_once(") ")?;
        let parent = rest.split_whitespace().nth(1)?;
        (comm.ends_with("(redis-server") && parent == me).then_some(pid)
    })
}

/// One run: the pools refilled, fresh processes of every function, the warm-up, then
/// `plan.hits` timed invocations of each, interleaved.
async fn one_run(plan: &Plan<'_>) -> Result<Measured, String> {
    let Plan {
        apps,
        all_users,
        template,
        specs,
        events,
        pages,
        hits,
        floor,
        schedstat,
    } = *plan;
    let baseline = specs.len() - 1;
    let n_users = events[0].len();
    fill_pools(apps, all_users, template).await?;
    let mut functions = Vec::new();
    for spec in specs {
        let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
        functions.push(
            Function::start(
                &spec.name,
                &spec.program,
                &args,
                &spec.env,
                spec.log.clone(),
            )
            .await,
        );
    }
    // One invocation of function `f` for user `k`, checked: its latency, body size and
    // (with --schedstat) the scheduler's counters over it. Every function is parked in
    // `next` first: none is still busy with its last answer.
    let invoke = async |functions: &mut [Function], f: usize, k: usize| {
        for function in functions.iter_mut() {
            function.parked().await?;
        }
        let pids = schedstat.map(|redis| [functions[f].child.id(), redis, std::process::id()]);
        let before = pids.map(|p| p.map(Sched::of));
        let (a, size) = if f == baseline {
            let a = functions[f].invoke(events[0][k].clone()).await?;
            let size = check_baseline(&a, &pages[k])?;
            (a, size)
        } else {
            let a = functions[f].invoke(events[f][k].clone()).await?;
            let size = check_hit(&specs[f].name, &a)?;
            (a, size)
        };
        let sched = match (pids, before) {
            (Some(pids), Some(before)) => {
                let after = pids.map(Sched::of);
                [0, 1, 2].map(|i| after[i].since(before[i]))
            }
            _ => Default::default(),
        };
        Ok::<_, String>((a.latency, size, sched))
    };

    // Warm-up: 8 pages of each of the first users, so the API's item cache holds every
    // video of the timed pages (all users share the pool); the baseline reads as many.
    for i in 0..WARMUP {
        for f in 0..functions.len() {
            invoke(&mut functions, f, i / HITS_PER_USER).await?;
        }
    }
    fill_pools(apps, all_users, template).await?;

    // The timed hits, one function after the other.
    let columns = functions.len() + usize::from(floor);
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::with_capacity(hits); columns];
    let mut sched: Vec<Vec<[Sched; 3]>> = vec![Vec::new(); columns];
    let mut bytes = vec![0usize; columns];
    let mut conn = apps.services.redis.clone();
    for i in 0..hits {
        // User after user, each user's next page: at most 8 pages per user.
        let k = i % n_users;
        // Each round starts with the next function: none always follows the same one.
        for turn in 0..functions.len() {
            let f = (i + turn) % functions.len();
            let (latency, size, s) = invoke(&mut functions, f, k).await?;
            latencies[f].push(latency);
            bytes[f] += size;
            if schedstat.is_some() {
                sched[f].push(s);
            }
        }
        if floor {
            // The floor: this process's own `GET` of the stored page.
            for function in functions.iter_mut() {
                function.parked().await?;
            }
            let t = Instant::now();
            let page: Vec<u8> = redis::cmd("GET")
                .arg(format!("reco:baseline:{}:{PAGE}", all_users[k].as_str()))
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("GET: {e}"))?;
            latencies[columns - 1].push(t.elapsed());
            bytes[columns - 1] += page.len();
        }
    }
    Ok(Measured {
        latencies,
        mean_body_bytes: bytes.iter().map(|b| b / hits).collect(),
        sched,
    })
}

/// `--schedstat`: where each function's time went over its timed invocations, on average
/// and in its slowest 1%: the function's own CPU and its threads' wait for a CPU (run
/// queue), and Redis's and the bench's, over the same windows. The counters are read just
/// before an invocation is handed out and just after its answer arrives, so a window also
/// holds the start of the function's after-work (its next poll): compare the slowest 1%
/// with the mean — what they take more, and what of it is waiting for a CPU. Printed, and
/// added to `out` for the result file.
fn sched_report(run: usize, names: &[String], measured: &Measured, out: &mut Vec<Value>) {
    for (f, sched) in measured.sched.iter().enumerate() {
        if sched.is_empty() {
            continue;
        }
        let latencies = &measured.latencies[f];
        let mut order: Vec<usize> = (0..latencies.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(latencies[i]));
        let slowest = &order[..(order.len() / 100).max(1)];
        // Mean µs over `which`: latency, then [cpu, wait] of the function, Redis, the bench.
        let means = |which: &[usize]| {
            let n = which.len() as f64;
            let mut m = [0.0f64; 7];
            for &i in which {
                m[0] += us(latencies[i]);
                for (p, s) in sched[i].iter().enumerate() {
                    m[1 + 2 * p] += s.cpu_ns as f64 / 1e3;
                    m[2 + 2 * p] += s.wait_ns as f64 / 1e3;
                }
            }
            m.map(|x| round1(x / n))
        };
        let (all, slow) = (means(&order), means(slowest));
        let to_json = |m: [f64; 7]| {
            json!({
                "latency_us": m[0],
                "cpu_us": m[1],
                "run_queue_wait_us": m[2],
                "redis_cpu_us": m[3],
                "redis_wait_us": m[4],
                "bench_cpu_us": m[5],
                "bench_wait_us": m[6],
            })
        };
        let show = |m: [f64; 7]| {
            format!(
                "latency {:>6.0}: cpu {:>5.0}, run queue {:>5.0}; redis cpu {:>4.0}, run queue {:>4.0}; bench cpu {:>4.0}, run queue {:>5.0}",
                m[0], m[1], m[2], m[3], m[4], m[5], m[6]
            )
        };
        println!(
            "  schedstat run {run} {:<22} mean µs    {}",
            names[f],
            show(all)
        );
        println!(
            "  schedstat run {run} {:<22} slowest 1% {}",
            names[f],
            show(slow)
        );
        out.push(json!({
            "run": run,
            "function": names[f],
            "all": to_json(all),
            "slowest_1pct": to_json(slow),
        }));
    }
}

#[tokio::main]
async fn main() {
    // The in-process handler's metric lines would only clutter the bench's output.
    reco_core::metrics::install(reco_core::metrics::Sink::Off);
    let hits = arg("--hits", 2000);
    let runs = arg("--runs", 5);
    let variants: Vec<String> = arg_str("--variant")
        .unwrap_or_else(|| "default".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect();
    let root = repo_root();
    let reco_bin = root.join("target/release/reco-api");
    assert!(
        reco_bin.is_file(),
        "{} is missing: cargo build --release -p reco-api",
        reco_bin.display()
    );
    // Before any service starts: a missing package or an unknown variant fails at once.
    python_versions(&root.join(".venv/bin/python3"));
    for variant in &variants {
        variant_env(variant);
    }

    let env = TestEnv::start().await;
    let outcome = bench(&env, &variants, hits, runs).await;
    // Not a panic on failure: the release profile aborts, which would leave redis-server
    // and moto_server running.
    drop(env);
    if let Err(e) = outcome {
        eprintln!("bench-tail failed: {e}");
        std::process::exit(1);
    }
}

/// Everything after the services are up; an `Err` fails the bench.
async fn bench(env: &TestEnv, variants: &[String], hits: usize, runs: usize) -> Result<(), String> {
    let floor = std::env::args().any(|a| a == "--floor");
    let root = repo_root();
    let reco_bin = root.join("target/release/reco-api");
    let python = root.join(".venv/bin/python3");
    let script = root.join("tests/bench/baseline/earlier_design.py");
    let versions = python_versions(&python);
    let apps = Apps::build(env, None, AuthMode::Jwt).await;
    // The machine is shared: how busy it was is part of the figure.
    let load_average = loadavg();

    // One real warm through the engine and the fake YouTube, then its ranked pool.
    let seed = UserId::parse("tail-seed").unwrap();
    let template = reco_bench::warmed_pool(&apps, &env.fake, 2, &seed).await;
    assert_eq!(
        template.len(),
        POOL_TARGET,
        "the warm built {} videos",
        template.len()
    );

    // Each API variant's users: enough that none is asked for more than 8 pages.
    let n_users = hits
        .div_ceil(HITS_PER_USER)
        .max(WARMUP.div_ceil(HITS_PER_USER));
    let users: Vec<Vec<UserId>> = (0..variants.len())
        .map(|v| (0..n_users).map(|k| user(v, k)).collect())
        .collect();

    // The earlier design's page: the API's own first page for a throwaway user, with that
    // user's id replaced by each bench user's (same length).
    let throwaway = UserId::parse("tail-x-999999").unwrap();
    fill_pools(&apps, std::slice::from_ref(&throwaway), &template).await?;
    let mut ctx = lambda_http::Context::default();
    ctx.request_id = "bench-tail-00000001".into();
    let req = reco_api::event::request_from_str(&feed_event(throwaway.as_str()))
        .expect("valid event")
        .with_lambda_context(ctx);
    let response = apps.api.handle(req).await;
    let template_page = match response.body() {
        Body::Text(t) => t.clone(),
        _ => panic!("a text body"),
    };
    let probe: Value = serde_json::from_str(&template_page).map_err(|e| e.to_string())?;
    if response.status() != 200 || probe["meta"]["cache_status"] != "hit" || probe["count"] != PAGE
    {
        return Err(format!(
            "the throwaway user's first page was no hit: {template_page:.300}"
        ));
    }
    let pages: Vec<String> = users[0]
        .iter()
        .map(|u| template_page.replace(throwaway.as_str(), u.as_str()))
        .collect();
    {
        let mut conn = apps.services.redis.clone();
        let mut pipe = redis::pipe();
        for (u, page) in users[0].iter().zip(&pages) {
            pipe.cmd("SET")
                .arg(format!("reco:baseline:{}:{PAGE}", u.as_str()))
                .arg(page)
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await.expect("store the pages");
    }
    println!(
        "template pool: {} videos; the earlier design's page: {} bytes; {n_users} users per API process, {hits} timed hits per function per run, {runs} runs",
        template.len(),
        template_page.len()
    );

    let base_env: Vec<(String, String)> = vec![
        ("REDIS_URL".into(), env.redis.url()),
        ("WARM_QUEUE_URL".into(), env.queue_url.clone()),
        ("AWS_ENDPOINT_URL_SQS".into(), env.sqs.endpoint()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
        ("YOUTUBE_API_KEY".into(), TEST_API_KEY.into()),
        ("YOUTUBE_API_BASE_URL".into(), env.fake.base_url()),
        ("AUTH_MODE".into(), "jwt".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "1024".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "info".into()),
    ];
    let python_env: Vec<(String, String)> = vec![
        ("REDIS_URL".into(), env.redis.url()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "1024".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        // No __pycache__ written into the repository.
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];

    // The functions, in the order they take turns: each API variant, then the baseline.
    let names: Vec<String> = variants
        .iter()
        .map(|v| {
            if v == "default" {
                "reco-api".to_owned()
            } else {
                format!("reco-api[{v}]")
            }
        })
        .chain([BASELINE.to_owned()])
        .chain(floor.then(|| FLOOR.to_owned()))
        .collect();
    let feed_events: Vec<Vec<String>> = users
        .iter()
        .map(|us| us.iter().map(|u| feed_event(u.as_str())).collect())
        .collect();

    // How each function is started: each API variant, then the baseline.
    let mut specs: Vec<Spec> = variants
        .iter()
        .enumerate()
        .map(|(v, variant)| {
            let (overrides, to_file) = variant_env(variant);
            let mut env = base_env.clone();
            for (k, val) in overrides {
                env.retain(|(key, _)| key != k);
                env.push((k.to_owned(), val.to_owned()));
            }
            Spec {
                name: names[v].clone(),
                program: reco_bin.clone(),
                args: vec![],
                env,
                log: to_file.then(|| std::env::temp_dir().join(format!("reco-bench-tail-{v}.log"))),
            }
        })
        .collect();
    specs.push(Spec {
        name: BASELINE.to_owned(),
        program: python.clone(),
        args: vec![script.display().to_string()],
        env: python_env,
        log: Some(std::env::temp_dir().join("reco-bench-tail-baseline.log")),
    });
    let all_users: Vec<UserId> = users.iter().flatten().cloned().collect();
    let plan = Plan {
        apps: &apps,
        all_users: &all_users,
        template: &template,
        specs: &specs,
        events: &feed_events,
        pages: &pages,
        hits,
        floor,
        schedstat: if std::env::args().any(|a| a == "--schedstat") {
            Some(child_redis_pid().ok_or("no redis-server child found for --schedstat")?)
        } else {
            None
        },
    };
    let mut sched_runs: Vec<Value> = Vec::new();

    // Per function: each run's samples, and the mean body size.
    let mut per_run: Vec<Vec<Samples>> = vec![Vec::new(); names.len()];
    let mut raw: Vec<Value> = Vec::new();
    let mut body_bytes = vec![0usize; names.len()];
    for run in 0..runs {
        let measured = one_run(&plan)
            .await
            .map_err(|e| format!("run {}: {e}", run + 1))?;
        if plan.schedstat.is_some() {
            sched_report(run + 1, &names, &measured, &mut sched_runs);
        }
        let (latencies, bytes) = (measured.latencies, measured.mean_body_bytes);
        let mut line = format!("run {}:", run + 1);
        for (f, l) in latencies.into_iter().enumerate() {
            body_bytes[f] = bytes[f];
            raw.push(json!({
                "run": run + 1,
                "function": names[f],
                "latency_us": l.iter().map(|d| round1(us(*d))).collect::<Vec<_>>(),
            }));
            let s = Samples::new(l);
            line += &format!(
                "  {} p50 {:.0} µs p99 {:.0} µs |",
                names[f],
                s.p50_us(),
                s.p99_us()
            );
            per_run[f].push(s);
        }
        println!("{}", line.trim_end_matches(" |"));
    }

    println!(
        "\nmedian over {runs} runs of {hits} interleaved hits (hand-out → answer through the Runtime API):"
    );
    let mut medians = serde_json::Map::new();
    let mut runs_json = Vec::new();
    for run in 0..runs {
        let mut r = serde_json::Map::new();
        r.insert("run".into(), json!(run + 1));
        for (name, samples) in names.iter().zip(&per_run) {
            r.insert(name.clone(), samples[run].summary());
        }
        runs_json.push(Value::Object(r));
    }
    for (f, name) in names.iter().enumerate() {
        let p50 = median(per_run[f].iter().map(Samples::p50_us).collect());
        let p99 = median(per_run[f].iter().map(Samples::p99_us).collect());
        println!(
            "  {name:<22} p50 {p50:>6.0} µs   p99 {p99:>6.0} µs   (body {} bytes)",
            body_bytes[f]
        );
        medians.insert(
            name.clone(),
            json!({"p50_us": round1(p50), "p99_us": round1(p99), "mean_body_bytes": body_bytes[f]}),
        );
    }
    if let Some(path) = arg_str("--raw") {
        std::fs::write(&path, serde_json::to_string(&raw).unwrap()).expect("write --raw");
        println!("wrote {path}");
    }
    let out = arg_str("--out").unwrap_or_else(|| "tail".to_owned());
    write_json(
        &out,
        &json!({
            "commit": reco_bench::git_describe(),
            "what": "a cache hit, hand-out → answer through a Lambda Runtime API emulator: target/release/reco-api against the earlier design (FastAPI + Mangum + redis-py GET of the cached page), interleaved one by one",
            "hits_per_run": hits,
            "warmup_per_run": WARMUP,
            "runs": runs,
            "users_per_api_process": n_users,
            "variants": variants,
            "earlier_design_page_bytes": template_page.len(),
            "versions": versions,
            "load_average_at_start": load_average,
            "load_average_at_end": loadavg(),
            "per_run": runs_json,
            "median_over_runs": medians,
            "schedstat": sched_runs,
        }),
    );
    Ok(())
}
