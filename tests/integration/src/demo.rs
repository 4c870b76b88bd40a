//! The demo stack, shared by `reco-demo` and the browser test: a private `redis-server`,
//! `moto_server` (SQS), YouTube (the fake unless a real key is given), the three function
//! binaries under `cargo lambda watch`, the local stand-in for the SQS event source
//! mapping, and the demo page's server.
//!
//! The page (`web/`) is served on its own origin, not the API's, so it calls the API the
//! way a deployed page would: cross-origin, allowed by the function's
//! `CORS_ALLOWED_ORIGINS` (watch runs with `--disable-cors`, so nothing else answers for
//! it). What the page learns from this server is the API's address and the user's id:
//! never a key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::local::{LambdaWatch, local_env_text, poll_and_invoke};
use crate::scenario::history_in_topic;
use crate::services::{Fake, FakeConfig, MotoSqs, RedisServer, repo_root, start_fake};

/// The `sub` of `events/cognito-post-authentication.json`: the demo's signed-in user.
pub const DEMO_USER: &str = "8f1e2d3c-0000-4000-8000-123456789abc";
/// The page's port unless told otherwise (`reco-demo --port`, `RECO_DEMO_PORT`).
pub const DEFAULT_PAGE_PORT: u16 = 8080;
/// How many videos the page asks for per refresh.
pub const PAGE_SIZE: usize = 10;
/// Well-known public videos used as the history when talking to the real API.
const REAL_HISTORY: &[&str] = &["dQw4w9WgXcQ", "9bZkp7q19f0", "kJQP7kiw5Fk", "JGwWNGJdvx8"];
/// The OpenAPI renderer's files the page server hands out, installed by `scripts/setup.sh`
/// (`npm ci` in `web/`) into `web/node_modules/swagger-ui-dist`.
const RENDERER_FILES: [&str; 2] = ["swagger-ui-bundle.js", "swagger-ui.css"];

pub struct DemoOptions {
    /// The page server's port on 127.0.0.1; 0 for any free one.
    pub page_port: u16,
    /// A real YouTube Data API key; `None` runs the fake.
    pub youtube_api_key: Option<String>,
    /// Where the functions' environment file and watch's log go.
    pub work_dir: PathBuf,
    /// How long `cargo lambda watch` may take to compile and answer.
    pub compile_limit: Duration,
}

pub struct Demo {
    pub redis: RedisServer,
    pub sqs: MotoSqs,
    pub fake: Option<Fake>,
    pub watch: LambdaWatch,
    pub queue_url: String,
    pub dlq_url: String,
    pub page_port: u16,
    pub http: reqwest::Client,
    /// Warm requests the event source stand-in has delivered to the warmer.
    pub delivered: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    poller: Option<tokio::task::JoinHandle<()>>,
    page: Option<tokio::task::JoinHandle<()>>,
}

impl Demo {
    /// Starts everything and waits until the API function answers its health check.
    pub async fn start(options: DemoOptions) -> Result<Demo, String> {
        let root = repo_root();
        let renderer = root.join("web/node_modules/swagger-ui-dist");
        if let Some(missing) = RENDERER_FILES
            .iter()
            .map(|f| renderer.join(f))
            .find(|f| !f.is_file())
        {
            return Err(format!(
                "{} is missing: run scripts/setup.sh (it installs the page's OpenAPI renderer)",
                missing.display()
            ));
        }
        // The page's address first: the API must know which origin to allow.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.page_port))
            .await
            .map_err(|e| {
                format!(
                    "the demo page cannot listen on 127.0.0.1:{}: {e} (choose another with --port or RECO_DEMO_PORT)",
                    options.page_port
                )
            })?;
        let page_port = listener.local_addr().map_err(|e| e.to_string())?.port();
        // Space-separated: watch's `--env-var` splits its values at commas.
        let origins = format!("http://127.0.0.1:{page_port} http://localhost:{page_port}");

        let redis = RedisServer::start();
        let sqs = MotoSqs::start();
        let (queue_url, dlq_url) = sqs.create_queue_with_dlq("reco-warm", 3, 60).await;
        let fake = options
            .youtube_api_key
            .is_none()
            .then(|| start_fake(FakeConfig::default()));
        let (base_url, key) = match (&fake, &options.youtube_api_key) {
            (Some(f), _) => (f.base_url(), crate::TEST_API_KEY.to_owned()),
            (None, Some(k)) => (
                reco_core::config::DEFAULT_YOUTUBE_API_BASE_URL.to_owned(),
                k.clone(),
            ),
            (None, None) => unreachable!("the fake runs when there is no key"),
        };
        std::fs::create_dir_all(&options.work_dir).map_err(|e| e.to_string())?;
        let env_file = options.work_dir.join("demo.env");
        let env_text = format!(
            "{}CORS_ALLOWED_ORIGINS={origins}\n",
            local_env_text(&redis.url(), &queue_url, &sqs.endpoint(), &base_url, &key)
        );
        std::fs::write(&env_file, env_text).map_err(|e| e.to_string())?;
        let mut watch = LambdaWatch::start(&env_file, &options.work_dir.join("watch.log"))?;
        let http = reqwest::Client::builder()
            .timeout(options.compile_limit)
            .build()
            .map_err(|e| e.to_string())?;
        watch
            .wait_ready(
                &http,
                &watch.function_url("reco-api", "/api/v1/health"),
                options.compile_limit,
            )
            .await
            .map_err(|e| {
                format!(
                    "{e}\n--- cargo lambda watch log ---\n{}",
                    watch.log_tail(40)
                )
            })?;

        let page_state = Arc::new(PageState {
            root: root.join("web"),
            api_base: watch.function_url("reco-api", ""),
            youtube: if fake.is_some() { "fake" } else { "youtube" },
        });
        let page = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, page_router(page_state)).await {
                eprintln!("demo page server stopped: {e}");
            }
        });

        // The local SQS event source mapping: long-polls the queue, invokes the warmer.
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicUsize::new(0));
        let poller = {
            let (sqs_client, http, queue_url, invoke, stop, delivered) = (
                sqs.client().await,
                http.clone(),
                queue_url.clone(),
                watch.invoke_base(),
                stop.clone(),
                delivered.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match poll_and_invoke(&sqs_client, &http, &queue_url, &invoke, "reco-warmer", 1)
                        .await
                    {
                        Ok((n, _)) => {
                            delivered.fetch_add(n, Ordering::SeqCst);
                        }
                        Err(e) => eprintln!("event source: {e}"),
                    }
                }
            })
        };
        Ok(Demo {
            redis,
            sqs,
            fake,
            watch,
            queue_url,
            dlq_url,
            page_port,
            http,
            delivered,
            stop,
            poller: Some(poller),
            page: Some(page),
        })
    }

    /// The page, on its own origin.
    pub fn page_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.page_port)
    }

    /// The API function's URL under watch (what the page calls).
    pub fn api_base(&self) -> String {
        self.watch.function_url("reco-api", "")
    }

    /// Records a watch history for [`DEMO_USER`] through the API: three channels of the
    /// fake's largest topic, or well-known public videos with the real API. Returns the
    /// ids and a one-line description.
    pub async fn record_history(&self) -> Result<(Vec<String>, String), String> {
        let (ids, about) = match &self.fake {
            Some(f) => {
                let h = history_in_topic(f, 0, 3, 3);
                let about = format!(
                    "{} videos from {} channels about {:?}",
                    h.video_ids.len(),
                    h.channels.len(),
                    h.topics
                );
                (h.video_ids, about)
            }
            None => (
                REAL_HISTORY.iter().map(|s| s.to_string()).collect(),
                format!("{} well-known public videos", REAL_HISTORY.len()),
            ),
        };
        let events: Vec<Value> = ids
            .iter()
            .map(|id| json!({"video_id": id, "watch_seconds": 240}))
            .collect();
        let response = self
            .http
            .post(format!(
                "{}/api/v1/video/history/{DEMO_USER}",
                self.api_base()
            ))
            .json(&json!({ "events": events }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 202 {
            return Err(format!("POST history: HTTP {status} {text}"));
        }
        Ok((ids, about))
    }

    /// Signs in: the Cognito PostAuthentication event through watch's invoke API. The
    /// trigger must return its event unchanged.
    pub async fn sign_in(&self) -> Result<Duration, String> {
        let event =
            std::fs::read_to_string(repo_root().join("events/cognito-post-authentication.json"))
                .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let returned: Value = self
            .http
            .post(format!(
                "{}/reco-login/invocations",
                self.watch.invoke_base()
            ))
            .body(event.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let sent: Value = serde_json::from_str(&event).map_err(|e| e.to_string())?;
        if returned != sent {
            return Err(format!("reco-login changed the event: {returned}"));
        }
        Ok(started.elapsed())
    }

    /// Waits until the warmer has built [`DEMO_USER`]'s pool; returns its size.
    pub async fn wait_for_pool(&self, limit: Duration) -> Result<usize, String> {
        let mut conn = self
            .redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + limit;
        loop {
            self.watch.check_compile_errors()?;
            let size: usize = redis::cmd("LLEN")
                .arg(format!("reco:{{u:{DEMO_USER}}}:feed"))
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if size > 0 {
                return Ok(size);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the pool was not built within {limit:?}\n--- cargo lambda watch log ---\n{}",
                    self.watch.log_tail(40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the event source stand-in and the page server (the services stop on drop).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(poller) = self.poller.take() {
            let _ = tokio::time::timeout(Duration::from_secs(3), poller).await;
        }
        if let Some(page) = self.page.take() {
            page.abort();
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in [self.poller.take(), self.page.take()].into_iter().flatten() {
            task.abort();
        }
        if let Some(fake) = &self.fake {
            fake.shutdown();
        }
    }
}

struct PageState {
    /// `web/`: the page's files, read on each request (edit, reload).
    root: PathBuf,
    api_base: String,
    youtube: &'static str,
}

/// The page server's routes: a fixed list of files, nothing addressed by a path the
/// request chooses.
fn page_router(state: Arc<PageState>) -> axum::Router {
    let file = |name: &'static str, content_type: &'static str| {
        get(move |State(s): State<Arc<PageState>>| async move {
            serve_file(&s.root.join(name), content_type, &s)
        })
    };
    let renderer = |name: &'static str, content_type: &'static str| {
        get(move |State(s): State<Arc<PageState>>| async move {
            let path = s.root.join("node_modules/swagger-ui-dist").join(name);
            serve_file(&path, content_type, &s)
        })
    };
    axum::Router::new()
        .route("/", file("index.html", "text/html; charset=utf-8"))
        .route("/app.js", file("app.js", "text/javascript; charset=utf-8"))
        .route("/style.css", file("style.css", "text/css; charset=utf-8"))
        .route(
            "/api-docs",
            file("api-docs.html", "text/html; charset=utf-8"),
        )
        .route(
            "/api-docs.js",
            file("api-docs.js", "text/javascript; charset=utf-8"),
        )
        .route(
            "/vendor/swagger-ui/swagger-ui-bundle.js",
            renderer("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        )
        .route(
            "/vendor/swagger-ui/swagger-ui.css",
            renderer("swagger-ui.css", "text/css; charset=utf-8"),
        )
        .route("/config.json", get(page_config))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// What the page needs to know: where the API is and who is signed in. No key.
async fn page_config(State(s): State<Arc<PageState>>) -> Response {
    with_headers(
        axum::Json(json!({
            "api_base": s.api_base,
            "user_id": DEMO_USER,
            "youtube": s.youtube,
            "page_size": PAGE_SIZE,
        }))
        .into_response(),
        &s,
    )
}

/// The API's OpenAPI document, with this demo's API first among its servers, so the
/// renderer's "try it out" calls the local functions.
async fn openapi(State(s): State<Arc<PageState>>) -> Response {
    let path = repo_root().join("functions/api/openapi.json");
    let mut doc: Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(doc) => doc,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("openapi.json: {e}"),
            )
                .into_response();
        }
    };
    let mut servers = vec![json!({
        "url": s.api_base,
        "description": "this demo: the API function under cargo lambda watch (AUTH_MODE=none)"
    })];
    if let Some(Value::Array(deployed)) = doc.get("servers") {
        servers.extend(deployed.iter().cloned());
    }
    doc["servers"] = Value::Array(servers);
    with_headers(axum::Json(doc).into_response(), &s)
}

fn serve_file(path: &Path, content_type: &'static str, s: &PageState) -> Response {
    match std::fs::read(path) {
        Ok(bytes) => with_headers(
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
            s,
        ),
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!("{}: {e} (run scripts/setup.sh)", path.display()),
        )
            .into_response(),
    }
}

/// No caching (the files are read fresh, for editing), no sniffing, and a content
/// security policy: scripts and styles from this server only, calls to this server and
/// the API only, images from here, the fake YouTube on loopback or YouTube's image host.
fn with_headers(mut response: Response, s: &PageState) -> Response {
    let api_origin = origin_of(&s.api_base);
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: http://127.0.0.1:* https://i.ytimg.com; \
         connect-src 'self' {api_origin}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        "nosniff".parse().expect("static"),
    );
    if let Ok(value) = policy.parse() {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::REFERRER_POLICY,
        "no-referrer".parse().expect("static"),
    );
    response
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_of_a_url() {
        assert_eq!(
            super::origin_of("http://127.0.0.1:9000/lambda-url/reco-api"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(super::origin_of("https://a.example"), "https://a.example");
    }
}
