//! A small run of the scale simulation (`bench-day` in the procedural world): users over
//! two simulated days, interrupted after a checkpoint on the second day and resumed by a
//! second process, against real Redis, the fake YouTube over HTTP and the real engine,
//! guard and warmer. What must always hold: no quota refusal, no video served twice to
//! a user, and the simulation's own record of what was served agreeing with the store's
//! served marks.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const USERS: &str = "150";

fn bench_day() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench-day"));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn checkpoint_day(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).ok()?;
    let checkpoint: Value = serde_json::from_str(&text).ok()?;
    checkpoint["day"].as_u64()
}

#[test]
fn two_days_interrupted_and_resumed_keep_what_must_always_hold() {
    let out = std::env::temp_dir().join(format!("reco-world-sim-{}", std::process::id()));
    let name = format!("world-2days-{USERS}.json");
    run_interrupted_and_resumed(&out, &[], &name);
    let results = read_figures(&out, &name);
    let days = two_days_that_always_hold(&results["ours"]);
    for day in days {
        let date = &day["date"];
        assert_eq!(day["hourly"].as_array().unwrap().len(), 24, "{date}");
        assert!(day["refreshes"].as_u64().unwrap() > 500, "{date}: {day}");
        assert!(day["units_used"].as_u64().unwrap() <= 10_000, "{date}");
        assert!(
            day["watches"].as_u64().unwrap() > 0,
            "{date}: nobody watched"
        );
    }
    // The second day is a different day: others come, some for the first time.
    assert_ne!(days[0]["date"], days[1]["date"]);
    assert_ne!(days[0]["users"], days[1]["users"]);
    let _ = std::fs::remove_dir_all(&out);
}

/// With push notifications: the product's manager subscribes the channels in demand
/// through the fake's hub, the callback applies what the hub delivers, and an impostor's
/// forgeries are posted every hour. Interrupted and resumed like the above, so the hub's
/// subscriptions must survive the checkpoint (the impostor finds none otherwise). What
/// must hold besides the above: uploads arrive by push and are hydrated on both days,
/// nothing forged is acted on, and the second day spends fewer units on uploads than
/// the first (the subscribed channels are no longer polled).
#[test]
fn two_days_with_push_notifications_keep_what_must_always_hold() {
    let out = std::env::temp_dir().join(format!("reco-world-sim-push-{}", std::process::id()));
    let name = format!("world-2days-{USERS}-push.json");
    let stdout = run_interrupted_and_resumed(&out, &["--push"], &name);
    assert!(stdout.contains("the hub goes on with"), "{stdout}");
    let results = read_figures(&out, &name);
    let days = two_days_that_always_hold(&results["ours"]);
    for day in days {
        let date = &day["date"];
        let push = &day["push"];
        assert!(
            push["live_subscriptions_at_end"].as_u64().unwrap() > 0,
            "{date}: {push}"
        );
        assert!(
            push["notifications_delivered"].as_u64().unwrap() > 0,
            "{date}: {push}"
        );
        assert!(
            push["uploads_hydrated"].as_u64().unwrap() > 0,
            "{date}: {push}"
        );
        assert!(
            push["forged_notifications_posted"].as_u64().unwrap() >= 3,
            "{date}: {push}"
        );
        assert_eq!(push["forged_notifications_acted_on"], 0, "{date}: {push}");
    }
    let upload_units = |d: &Value| d["upload_units"].as_u64().unwrap();
    assert!(
        upload_units(&days[1]) < upload_units(&days[0]),
        "day 2 spent {} units on uploads, day 1 {}",
        upload_units(&days[1]),
        upload_units(&days[0])
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Runs `bench-day` for two days with `extra` arguments: a first process until a
/// checkpoint of the second day is in place, killed with every process it started (its
/// Redis and moto servers: in a session of its own, `setsid` execs in place, SIGKILLed as
/// a whole), before it wrote `results`; then a second process goes on from the checkpoint
/// to the end. Returns the second one's output.
fn run_interrupted_and_resumed(out: &Path, extra: &[&str], results: &str) -> String {
    let _ = std::fs::remove_dir_all(out);
    let checkpoints = out.join("checkpoints");
    std::fs::create_dir_all(&checkpoints).unwrap();
    let mut first = Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_bench-day"))
        .args([
            "--users", USERS, "--world", "300000", "--days", "2", "--only", "ours",
        ])
        .args(extra)
        .arg("--checkpoint")
        .arg(&checkpoints)
        .env("BENCH_OUT_DIR", out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bench-day");
    let started = Instant::now();
    loop {
        if checkpoint_day(&checkpoints) == Some(1) {
            break;
        }
        if let Ok(Some(status)) = first.try_wait() {
            panic!("bench-day ended ({status}) before a checkpoint of day 2");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "no checkpoint of day 2 within 20 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    reco_tests::local::kill_session(first.id());
    let _ = first.wait(); // kill_session may have reaped it already
    assert!(
        !out.join(results).exists(),
        "the first process was stopped before the end"
    );

    let resumed = bench_day()
        .arg("--resume")
        .arg(&checkpoints)
        .env("BENCH_OUT_DIR", out)
        .output()
        .expect("run bench-day --resume");
    let stdout = String::from_utf8_lossy(&resumed.stdout).into_owned();
    assert!(
        resumed.status.success(),
        "resume failed: {}\n{stdout}\n{}",
        resumed.status,
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("resumed from"), "{stdout}");
    stdout
}

/// A run's figures, as `bench-day` wrote them into `out`.
fn read_figures(out: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join(name)).expect("the run's figures"))
        .expect("figures are JSON")
}

/// What must hold in any run, whatever its options: two days, each with no quota refusal
/// and no video served twice, and the judge's own record agreeing with the store.
fn two_days_that_always_hold(ours: &Value) -> &[Value] {
    let days = ours["days"].as_array().expect("a figure per day");
    assert_eq!(days.len(), 2);
    for day in days {
        let date = &day["date"];
        assert_eq!(day["quota_refusals"], 0, "{date}");
        assert_eq!(day["repeats_served"], 0, "{date}: a video served twice");
    }
    let check = &ours["judge_vs_store"];
    assert!(check["users_checked"].as_u64().unwrap() > 100, "{check}");
    assert_eq!(check["served_not_marked"], 0, "{check}");
    assert_eq!(check["marked_not_served"], 0, "{check}");
    days
}
