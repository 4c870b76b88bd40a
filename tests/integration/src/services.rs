use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fake_youtube::{FakeConfig, FakeYoutube};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A free loopback port. The tiny race between closing and the child binding is retried
/// by the callers that spawn servers.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> PathBuf {
    for dir in extra_dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "`{name}` was not found (looked in {extra_dirs:?} and PATH). \
         Run `scripts/setup.sh` (or the README's test command, which runs it) to install it."
    );
}

fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {addr}: {status}");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} did not listen on {addr} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private `redis-server` on a loopback port, without persistence, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments (`["--maxmemory", "10mb"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        let bin = find_binary("redis-server", &[]);
        for _attempt in 0..5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("reco-redis-{port}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("redis temp dir");
            let mut child = Command::new(&bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--dir", dir.to_str().unwrap()])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            std::thread::sleep(Duration::from_millis(5));
            if let Ok(Some(_)) = child.try_wait() {
                continue; // port taken in the meantime: try another
            }
            wait_for_port(addr, &mut child, "redis-server", Duration::from_secs(10));
            return Self { child, port, dir };
        }
        panic!("redis-server could not start on a free port after 5 attempts");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain synchronous client, for test assertions (INFO, KEYS, MONITOR counts).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis client")
    }

    /// Stops the server (SIGKILL), keeping the port number for [`RedisServer::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh, empty server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let bin = find_binary("redis-server", &[]);
        let mut child = Command::new(&bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", self.dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        wait_for_port(addr, &mut child, "redis-server", Duration::from_secs(10));
        self.child = child;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli MONITOR` on a server: the commands clients sent (commands run inside a
/// script are left out, so one EVALSHA counts once).
pub struct RedisMonitor {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl RedisMonitor {
    pub fn start(server: &RedisServer) -> Self {
        let mut command = Command::new(find_binary("redis-cli", &[]));
        command.args(["-p", &server.port.to_string(), "monitor"]);
        Self::attach(command)
    }

    /// Runs a prepared `redis-cli ... monitor` command and waits until it is attached.
    pub fn attach(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-cli monitor");
        // MONITOR answers "OK" once it is attached.
        use std::io::BufRead;
        let stdout = child.stdout.take().expect("monitor stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).expect("monitor attached");
        assert_eq!(first.trim(), "OK", "redis-cli monitor said {first:?}");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines: rx }
    }

    /// Stops at once and returns every line seen, script commands (`[0 lua]`) included.
    pub fn stop_all(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.try_iter().collect()
    }

    /// Stops monitoring and returns the client commands seen.
    pub fn stop(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines
            .try_iter()
            .filter(|l| !l.contains(" lua]"))
            .collect()
    }
}

/// `moto_server` from the project's `.venv`: a real SQS API on loopback.
pub struct MotoSqs {
    child: Child,
    pub port: u16,
}

impl MotoSqs {
    pub fn start() -> Self {
        let venv_bin = repo_root().join(".venv/bin");
        let bin = find_binary("moto_server", &[venv_bin]);
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn moto_server");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            if let Ok(Some(_)) = child.try_wait() {
                continue;
            }
            wait_for_port(addr, &mut child, "moto_server", Duration::from_secs(60));
            return Self { child, port };
        }
        panic!("moto_server could not start on a free port after 3 attempts");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SQS client for this server, with dummy static credentials.
    pub async fn client(&self) -> aws_sdk_sqs::Client {
        reco_core::queue::sqs_client(Some(&self.endpoint())).await
    }

    /// Creates `name` with a DLQ `name-dlq` and a redrive policy after `max_receives`.
    /// Returns (queue url, dlq url).
    pub async fn create_queue_with_dlq(
        &self,
        name: &str,
        max_receives: u32,
        visibility_secs: u32,
    ) -> (String, String) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = self.client().await;
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("create dlq")
            .queue_url
            .expect("dlq url");
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("dlq attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("dlq arn");
        let redrive =
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
                .to_string();
        let url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        (url, dlq_url)
    }
}

impl Drop for MotoSqs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake YouTube Data API, in-process, over HTTP.
pub type Fake = FakeYoutube;

/// The API key the tests give the fake and the client. Tests assert it never leaks.
pub const TEST_API_KEY: &str = "AIzaTEST-secret-key-never-log-0123456789";

pub fn start_fake(mut config: FakeConfig) -> Fake {
    config.api_key = TEST_API_KEY.to_owned();
    FakeYoutube::spawn(config).expect("start the fake YouTube")
}

/// Every service a full-flow test needs.
pub struct TestEnv {
    pub redis: RedisServer,
    pub sqs: MotoSqs,
    pub fake: Fake,
    pub queue_url: String,
    pub dlq_url: String,
}

impl TestEnv {
    pub async fn start() -> Self {
        Self::start_with(FakeConfig::default()).await
    }

    pub async fn start_with(fake_config: FakeConfig) -> Self {
        Self::start_with_redis_args(fake_config, &[]).await
    }

    /// With extra `redis-server` arguments: `["--dir", d, "--dbfilename", f]` starts from
    /// a saved RDB file (a resumed simulation).
    pub async fn start_with_redis_args(fake_config: FakeConfig, redis_args: &[&str]) -> Self {
        let redis = RedisServer::start_with(redis_args);
        let sqs = MotoSqs::start();
        let fake = start_fake(fake_config);
        let (queue_url, dlq_url) = sqs.create_queue_with_dlq("reco-warm", 3, 30).await;
        Self {
            redis,
            sqs,
            fake,
            queue_url,
            dlq_url,
        }
    }

    /// Environment lookup the functions' `Config::from_lookup` reads, pointing at these
    /// services.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("REDIS_URL".into(), self.redis.url()),
            ("WARM_QUEUE_URL".into(), self.queue_url.clone()),
            ("AWS_ENDPOINT_URL_SQS".into(), self.sqs.endpoint()),
            ("YOUTUBE_API_KEY".into(), TEST_API_KEY.into()),
            ("YOUTUBE_API_BASE_URL".into(), self.fake.base_url()),
            ("AUTH_MODE".into(), "none".into()),
            // Tests share two cores with a build and other tests; production keeps 200 ms.
            ("YOUTUBE_QUOTA_TIMEOUT_MS".into(), "2000".into()),
        ]
    }

    pub fn config(&self) -> reco_core::config::Config {
        let env = self.env();
        reco_core::config::Config::from_lookup(|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("test config")
    }
}
