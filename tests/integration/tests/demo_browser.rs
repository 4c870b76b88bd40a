//! The demo page in a real browser: the demo stack (private `redis-server`, `moto_server`,
//! the fake YouTube, the three function binaries under `cargo lambda watch`, the SQS
//! event source stand-in, the page's server on its own origin), then headless Chromium
//! (Debian's package) driven by `web/tests/feed.mjs` through playwright-core.
//!
//! The page loads its first page of 10 and is refreshed three times: 40 distinct video
//! cards whose thumbnails (served by the fake) loaded, no console error, no failed or
//! refused request (so CORS let the page's origin call the API), the quota meter equal
//! to the fake's own counters; a watch brings a forced refresh; the OpenAPI document
//! renders. The screenshot goes to `target/demo-browser/feed.png` (`SCREENSHOT` to
//! choose); the README's copy is `docs/demo-feed.png`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reco_tests::demo::{DEMO_USER, Demo, DemoOptions};
use reco_tests::services::repo_root;
use serde_json::Value;

const COMPILE_LIMIT: Duration = Duration::from_secs(1200);

/// A program the test needs, or a failure naming the set-up command (never a skip).
fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} was not found at {}: run scripts/setup.sh (the README's test command runs it)",
        path.display()
    );
    path
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_in_headless_chromium_shows_40_distinct_videos_and_the_fakes_quota() {
    let started = Instant::now();
    let root = repo_root();
    let chromium = require(
        std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium")),
        "Chromium (Debian's chromium package)",
    );
    let node = on_path("node").unwrap_or_else(|| {
        panic!("`node` was not found on PATH: run scripts/setup.sh (it installs Node.js)")
    });
    require(
        root.join("web/node_modules/playwright-core/package.json"),
        "playwright-core",
    );
    let screenshot = std::env::var_os("SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/demo-browser/feed.png"));
    let _ = std::fs::remove_file(&screenshot);

    let work_dir = std::env::temp_dir().join(format!("reco-demo-browser-{}", std::process::id()));
    let demo = Demo::start(DemoOptions {
        page_port: 0,
        youtube_api_key: None,
        work_dir: work_dir.clone(),
        compile_limit: COMPILE_LIMIT,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("[demo_browser] stack ready after {:?}", started.elapsed());
    demo.record_history()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    demo.sign_in().await.unwrap_or_else(|e| panic!("{e}"));
    let pool = demo
        .wait_for_pool(COMPILE_LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[demo_browser] pool of {pool} built after {:?}",
        started.elapsed()
    );
    let fake = demo.fake.as_ref().expect("the demo runs the fake");

    let browser_started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let (page, counters, screenshot) = (
            demo.page_url(),
            format!("{}/counters", fake.admin_url()),
            screenshot.clone(),
        );
        move || {
            Command::new(node)
                .arg(root.join("web/tests/feed.mjs"))
                .env("PAGE_URL", page)
                .env("FAKE_COUNTERS_URL", counters)
                .env("SCREENSHOT", &screenshot)
                .env("CHROMIUM", &chromium)
                .current_dir(root.join("web"))
                .output()
                .expect("run node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    assert!(
        output.status.success() && report["ok"] == true,
        "the browser test failed ({}):\n{stderr}\nreport: {report:#}\n--- cargo lambda watch log ---\n{}",
        output.status,
        demo.watch.log_tail(30)
    );
    eprintln!(
        "[demo_browser] browser part took {:?}: {report}",
        browser_started.elapsed()
    );

    // What the script checked, checked again from its report.
    assert_eq!(report["cards"], 40, "{report}");
    assert_eq!(report["distinct"], 40, "{report}");
    assert_eq!(report["images_loaded"], 40, "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["failed_requests"], serde_json::json!([]), "{report}");
    // Every thumbnail came from the fake itself: nothing left the machine.
    assert_eq!(
        report["thumbnail_hosts"],
        serde_json::json!([fake.addr().to_string()]),
        "{report}"
    );
    // The meter matched the fake's metering, which only ever grows: never more than now.
    let now = fake.counters();
    let meter = &report["meter"];
    assert_eq!(
        meter["units_used"], report["fake"]["units_used"],
        "{report}"
    );
    assert_eq!(
        meter["searches_used"], report["fake"]["searches_used"],
        "{report}"
    );
    let metered = meter["units_used"].as_u64().unwrap();
    assert!(
        metered > 0 && metered <= now.units_used,
        "{report} vs {now:?}"
    );
    // The page never saw the key.
    assert!(!stdout.contains(reco_tests::TEST_API_KEY));
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!(
        "[demo_browser] user {DEMO_USER}: 40 distinct cards, meter {} units / {} searches = the fake's; screenshot {}; total {:?}",
        meter["units_used"],
        meter["searches_used"],
        screenshot.display(),
        started.elapsed()
    );
    demo.stop().await;
    let _ = std::fs::remove_dir_all(&work_dir);
}
