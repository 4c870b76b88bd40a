//! The production shape of Redis on loopback: a 3-primary Redis Cluster, a TLS server
//! with a CA the test generates, and both at once (ElastiCache Serverless is cluster mode
//! behind TLS).
//!
//! Servers are Debian's `redis-server` (built with TLS), the cluster is formed with
//! `redis-cli --cluster create`, and certificates come from the `openssl` CLI. Everything
//! is killed and removed on drop. A missing binary is a loud failure.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::{RedisMonitor, free_port};

fn binary(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "`{name}` was not found in PATH. Run `scripts/setup.sh` (or the README's test \
         command, which runs it) to install it."
    );
}

fn temp_dir(what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("reco-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A private CA and a server certificate for `127.0.0.1` / `localhost` it signed,
/// as PEM files in a temporary directory.
pub struct TestCa {
    pub dir: PathBuf,
}

impl TestCa {
    pub fn generate() -> Self {
        let dir = temp_dir("tls");
        let openssl = binary("openssl");
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=reco test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n",
        )
        .expect("write server.ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Self { dir }
    }

    pub fn ca_file(&self) -> String {
        self.dir.join("ca.pem").to_str().unwrap().to_owned()
    }

    fn server_args(&self) -> Vec<String> {
        let file = |name: &str| self.dir.join(name).to_str().unwrap().to_owned();
        vec![
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str) {
    let limit = Duration::from_secs(20);
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {addr}: {status}");
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not listen on {addr} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `redis-server` process: plain or TLS-only (`--port 0 --tls-port`), standalone or
/// a cluster node.
struct Node {
    child: Child,
    port: u16,
}

fn spawn_node(dir: &Path, tls: Option<&TestCa>, cluster: bool) -> Node {
    let bin = binary("redis-server");
    for _attempt in 0..5 {
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.to_str().unwrap().into(),
        ];
        match tls {
            None => args.extend(["--port".into(), port.to_string()]),
            Some(ca) => {
                args.extend(["--port".into(), "0".into()]);
                args.extend(["--tls-port".into(), port.to_string()]);
                args.extend(ca.server_args());
                if cluster {
                    args.extend(["--tls-cluster".into(), "yes".into()]);
                }
            }
        }
        if cluster {
            // An explicit bus port: the default (port + 10000) may not exist or be free.
            let bus = free_port();
            args.extend([
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                format!("nodes-{port}.conf"),
                "--cluster-port".into(),
                bus.to_string(),
                "--cluster-node-timeout".into(),
                "5000".into(),
            ]);
        }
        let mut child = Command::new(&bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(Some(_)) = child.try_wait() {
            continue; // a port was taken in the meantime: try others
        }
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_for_port(addr, &mut child, "redis-server");
        return Node { child, port };
    }
    panic!("redis-server could not start on free ports after 5 attempts");
}

fn redis_cli(tls: Option<&TestCa>) -> Command {
    let mut cmd = Command::new(binary("redis-cli"));
    if let Some(ca) = tls {
        cmd.args(["--tls", "--cacert", &ca.ca_file()]);
    }
    cmd
}

/// A standalone TLS-only `redis-server` (`--port 0 --tls-port`), with its own CA.
pub struct TlsRedis {
    node: Node,
    dir: PathBuf,
    pub ca: TestCa,
}

impl TlsRedis {
    pub fn start() -> Self {
        let ca = TestCa::generate();
        let dir = temp_dir("redis-tls");
        let node = spawn_node(&dir, Some(&ca), false);
        Self { node, dir, ca }
    }

    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// `rediss://127.0.0.1:PORT`: the certificate names the IP, so it is verified.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.node.port)
    }

    /// Runs `redis-cli` (over TLS) with `args` and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = redis_cli(Some(&self.ca))
            .args(["-p", &self.node.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.node.child.kill();
        let _ = self.node.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of `n` primaries (no replicas) on loopback, optionally TLS-only.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    pub ca: Option<TestCa>,
}

impl RedisCluster {
    pub fn start(primaries: usize) -> Self {
        Self::start_inner(primaries, None)
    }

    /// TLS everywhere: clients, and the cluster bus (`--tls-cluster yes`).
    pub fn start_tls(primaries: usize) -> Self {
        Self::start_inner(primaries, Some(TestCa::generate()))
    }

    fn start_inner(primaries: usize, ca: Option<TestCa>) -> Self {
        assert!(
            primaries >= 3,
            "redis-cli --cluster create needs 3 primaries"
        );
        let dir = temp_dir("redis-cluster");
        let nodes: Vec<Node> = (0..primaries)
            .map(|_| spawn_node(&dir, ca.as_ref(), true))
            .collect();
        let cluster = Self { nodes, dir, ca };
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = redis_cli(cluster.ca.as_ref())
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok` with all 16384 slots assigned
    /// and knows every other node.
    fn wait_until_ok(&self) {
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            let ready = self.nodes.iter().all(|n| {
                let info = self.cli_on(n.port, &["cluster", "info"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_assigned:16384")
                    && info.contains(&format!("cluster_known_nodes:{}", self.nodes.len()))
            });
            if ready {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the cluster did not reach cluster_state:ok within {limit:?}: {}",
                self.cli_on(self.nodes[0].port, &["cluster", "info"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The URL of the first node: the cluster client discovers the others from it, as
    /// with ElastiCache's single configuration endpoint.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.nodes[0].port)
    }

    pub fn ca_file(&self) -> Option<String> {
        self.ca.as_ref().map(TestCa::ca_file)
    }

    /// Runs `redis-cli` against one node (no redirects followed) and returns stdout.
    pub fn cli_on(&self, port: u16, args: &[&str]) -> String {
        let out = redis_cli(self.ca.as_ref())
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every key on every node (`KEYS *` per node): (port, key).
    pub fn all_keys(&self) -> Vec<(u16, String)> {
        let mut keys = Vec::new();
        for port in self.ports() {
            for key in self.cli_on(port, &["--no-raw", "keys", "*"]).lines() {
                // `--no-raw` quotes and numbers each line: 1) "reco:..."
                if let Some(start) = key.find('"') {
                    let k = key[start + 1..].trim_end_matches('"');
                    keys.push((port, k.to_owned()));
                }
            }
        }
        keys
    }

    /// Starts `redis-cli MONITOR` on every node; [`ClusterMonitor::stop`] returns lines.
    pub fn monitor(&self) -> ClusterMonitor {
        let monitors = self
            .ports()
            .into_iter()
            .map(|port| {
                let mut command = redis_cli(self.ca.as_ref());
                command.args(["-p", &port.to_string(), "monitor"]);
                (port, RedisMonitor::attach(command))
            })
            .collect();
        ClusterMonitor { monitors }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct ClusterMonitor {
    monitors: Vec<(u16, RedisMonitor)>,
}

impl ClusterMonitor {
    /// Stops monitoring; returns (node port, MONITOR line) for every command seen,
    /// including the ones scripts ran (`[0 lua]`).
    pub fn stop(self) -> Vec<(u16, String)> {
        std::thread::sleep(Duration::from_millis(300));
        let mut lines = Vec::new();
        for (port, monitor) in self.monitors {
            lines.extend(monitor.stop_all().into_iter().map(|l| (port, l)));
        }
        lines
    }
}

/// The cluster hash slot of a key (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384).
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let data = tagged.unwrap_or(bytes);
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Parses a MONITOR line (`1764.. [0 127.0.0.1:5555] "EVALSHA" "abc" "2" "k1" "k2"`)
/// into its quoted arguments, unescaping `\"` and `\\`.
pub fn monitor_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let Some(start) = line.find("] ") else {
        return args;
    };
    let mut chars = line[start + 2..].chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        arg.push(n);
                    }
                }
                '"' => break,
                other => arg.push(other),
            }
        }
        args.push(arg);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        // CRC16/XMODEM's check value.
        assert_eq!(key_slot("123456789"), 0x31C3);
        // An empty tag does not count: the whole key is hashed.
        assert_ne!(key_slot("foo{}{bar}"), key_slot("bar"));
        assert_eq!(
            key_slot("reco:{quota}:units:x"),
            key_slot("reco:{quota}:breaker")
        );
    }

    #[test]
    fn monitor_lines_parse() {
        let line = r#"1764064800.123 [0 127.0.0.1:5555] "EVALSHA" "ab\"c" "1" "reco:{u:x}:pool""#;
        assert_eq!(
            monitor_args(line),
            vec!["EVALSHA", "ab\"c", "1", "reco:{u:x}:pool"]
        );
    }
}
