//! API Gateway HTTP API (payload 2.0) events, as Lambda hands them to the API function:
//! whatever deserialises as an event, `Api::handle` answers with a JSON response and a 2xx,
//! 4xx or 503 — never a panic, never a 500. Redis is a closed loopback port, so requests
//! that pass validation end in the degraded paths (503 / last good page).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reco_api::Api;
use reco_core::config::{AuthMode, Config};
use reco_core::wiring::Services;

struct Harness {
    runtime: tokio::runtime::Runtime,
    api: Api,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let vars = [
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("YOUTUBE_API_KEY", "AIzaFUZZ-not-a-key"),
            ("YOUTUBE_API_BASE_URL", "http://127.0.0.1:1/youtube/v3"),
            ("AUTH_MODE", "jwt"),
            // No EMF lines on stdout for every fuzzed request.
            ("EMF_METRICS", "off"),
        ];
        let config = Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("fuzz config");
        reco_core::wiring::install_metrics(&config);
        let api = runtime.block_on(async {
            let services = Services::build(config, None).expect("services");
            Api {
                engine: services.engine.clone(),
                guard: services.guard.clone(),
                redis: services.redis.clone(),
                queue: None,
                auth: AuthMode::Jwt,
                last_good: Default::default(),
                // An allowed origin, so fuzzed Origin headers and preflights reach CORS.
                cors: reco_api::Cors::new(&["https://app.example.com".to_owned()]),
            }
        });
        Harness { runtime, api }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As in the function's main: the event checked before lambda_http converts it.
    let Ok(request) = reco_api::event::request_from_str(text) else {
        return;
    };
    let unreadable = reco_api::event::UnreadablePart::from_marker(request.headers());
    let h = harness();
    let response = h.runtime.block_on(h.api.handle(request));
    let status = response.status().as_u16();
    assert!(
        (200..300).contains(&status) || (400..500).contains(&status) || status == 503,
        "status {status}"
    );
    if unreadable.is_some() {
        assert_eq!(status, 400, "an unreadable event is the client's mistake");
    }
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.as_bytes().to_vec(),
        lambda_http::Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    };
    let json: serde_json::Value =
        serde_json::from_slice(&body).expect("every response body is JSON");
    assert!(json.get("success").is_some(), "no success field: {json}");
});
