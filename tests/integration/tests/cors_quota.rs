//! The two things a page on another origin needs from the API, through the real handler,
//! real Redis, moto and the fake YouTube: CORS (`CORS_ALLOWED_ORIGINS`; none by default)
//! and the read-only quota figures of `GET /api/v1/quota`, which must be the fake's own
//! count of what was spent.

use lambda_http::http::HeaderValue;
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::quota::Priority;
use reco_tests::apps::config_with;
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TestEnv, api_request, response_json};

const ME: &str = "8f1e2d3c-0000-4000-8000-123456789abc";
const PAGE: &str = "http://127.0.0.1:8080";

fn with_headers(
    mut req: lambda_http::Request,
    headers: &[(&'static str, &str)],
) -> lambda_http::Request {
    for (name, value) in headers {
        req.headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    req
}

fn header<'r>(
    response: &'r lambda_http::Response<lambda_http::Body>,
    name: &str,
) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_figures_are_the_fakes_own_count_and_need_a_signed_in_user() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    let quota = || api_request("GET", "/api/v1/quota", &[], None, Some(ME));

    let (status, body) = response_json(&apps.api.handle(quota()).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["units"]["used"], 0, "{body}");
    // The interactive caps: 95% of Google's 10,000 units and 100 searches.
    assert_eq!(body["units"]["limit"], 9_500, "{body}");
    assert_eq!(body["searches"]["limit"], 95, "{body}");
    assert_eq!(body["quota_state"], "ok");

    // A warm spends units (and searches for a topic history) through the guard.
    let history = history_in_topic(&env.fake, 0, 3, 4);
    let response = apps
        .api
        .handle(api_request(
            "POST",
            &format!("/api/v1/video/history/{ME}"),
            &[],
            Some(&history.body()),
            Some(ME),
        ))
        .await;
    assert_eq!(response.status().as_u16(), 202);
    apps.services
        .engine
        .warm(&UserId::parse(ME).unwrap(), Priority::Background)
        .await
        .expect("warm");
    let (status, body) = response_json(&apps.api.handle(quota()).await);
    assert_eq!(status, 200, "{body}");
    let fake = env.fake.counters();
    assert!(fake.units_used > 0, "the warm spent nothing: {fake:?}");
    assert_eq!(body["units"]["used"], fake.units_used, "{body} vs {fake:?}");
    assert_eq!(
        body["searches"]["used"], fake.searches_used,
        "{body} vs {fake:?}"
    );
    assert_eq!(body["units"]["left"], 9_500 - fake.units_used, "{body}");
    assert_eq!(body["searches"]["left"], 95 - fake.searches_used, "{body}");
    assert_eq!(
        body["day"], fake.day,
        "the guard's day is Google's (Pacific)"
    );
    let resets_at: jiff::Timestamp = body["resets_at"].as_str().unwrap().parse().unwrap();
    assert!(resets_at > jiff::Timestamp::now());
    // Only figures: no key, no per-user data.
    let text = body.to_string();
    assert!(!text.contains(reco_tests::TEST_API_KEY) && !text.contains(ME));

    // Signed-in users only (API Gateway's authorizer in AWS; the handler checks too).
    let (status, body) = response_json(
        &apps
            .api
            .handle(api_request("GET", "/api/v1/quota", &[], None, None))
            .await,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = response_json(
        &apps
            .api
            .handle(api_request(
                "POST",
                "/api/v1/quota",
                &[],
                Some("{}"),
                Some(ME),
            ))
            .await,
    );
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_gets_its_preflight_and_headers_and_no_other_does() {
    let env = TestEnv::start().await;
    let config = config_with(
        &env,
        &[(
            "CORS_ALLOWED_ORIGINS",
            &format!("{PAGE},https://app.example.com"),
        )],
    );
    let apps = Apps::build_with(&env, config, None, AuthMode::None).await;
    let feed = format!("/api/v1/video/recommendations/{ME}");
    let history = format!("/api/v1/video/history/{ME}");

    // Preflights: 204 with the route's methods for an allowed origin.
    for (path, methods) in [
        (feed.as_str(), "GET, POST, OPTIONS"),
        (history.as_str(), "POST, OPTIONS"),
        ("/api/v1/quota", "GET, OPTIONS"),
    ] {
        let response = apps
            .api
            .handle(with_headers(
                api_request("OPTIONS", path, &[], None, None),
                &[
                    ("origin", PAGE),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
            ))
            .await;
        assert_eq!(response.status().as_u16(), 204, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
        assert_eq!(
            header(&response, "access-control-allow-methods"),
            Some(methods)
        );
        assert_eq!(
            header(&response, "access-control-allow-headers"),
            Some("authorization, content-type")
        );
        assert_eq!(header(&response, "access-control-max-age"), Some("600"));
        assert_eq!(header(&response, "vary"), Some("origin"));
    }

    // A preflight from any other origin: a 403 naming the origin, and no allowance.
    for origin in ["http://127.0.0.1:8081", "https://evil.example", "null"] {
        let response = apps
            .api
            .handle(with_headers(
                api_request("OPTIONS", &feed, &[], None, None),
                &[("origin", origin), ("access-control-request-method", "GET")],
            ))
            .await;
        assert!(header(&response, "access-control-allow-origin").is_none());
        let (status, body) = response_json(&response);
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (403, Some("origin")),
            "{origin}: {body}"
        );
    }
    // OPTIONS that is not a preflight stays a 405; unknown paths a 404.
    let (status, _) = response_json(
        &apps
            .api
            .handle(api_request("OPTIONS", &feed, &[], None, None))
            .await,
    );
    assert_eq!(status, 405);
    let response = apps
        .api
        .handle(with_headers(
            api_request("OPTIONS", "/api/v1/nothing", &[], None, None),
            &[("origin", PAGE), ("access-control-request-method", "GET")],
        ))
        .await;
    assert_eq!(response.status().as_u16(), 404);

    // Actual requests: the allowed origin is echoed (errors too, with Retry-After
    // readable), another origin is not.
    let response = apps
        .api
        .handle(with_headers(
            api_request("GET", &feed, &[("max_results", "3")], None, None),
            &[("origin", "https://app.example.com")],
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&response, "access-control-expose-headers"),
        Some("retry-after")
    );
    let response = apps
        .api
        .handle(with_headers(
            api_request("GET", &feed, &[("max_results", "51")], None, None),
            &[("origin", PAGE)],
        ))
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
    let response = apps
        .api
        .handle(with_headers(
            api_request("GET", "/api/v1/health", &[], None, None),
            &[("origin", "https://evil.example")],
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert_eq!(header(&response, "vary"), Some("origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_origin_is_allowed_by_default() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let feed = format!("/api/v1/video/recommendations/{ME}");
    let response = apps
        .api
        .handle(with_headers(
            api_request("OPTIONS", &feed, &[], None, None),
            &[("origin", PAGE), ("access-control-request-method", "GET")],
        ))
        .await;
    assert!(header(&response, "access-control-allow-origin").is_none());
    let (status, body) = response_json(&response);
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (403, Some("origin"))
    );
    let response = apps
        .api
        .handle(with_headers(
            api_request("GET", "/api/v1/health", &[], None, None),
            &[("origin", PAGE)],
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
    assert!(header(&response, "vary").is_none());
}
