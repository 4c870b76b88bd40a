//! Helpers shared by the fake's integration tests: start a fake, call it
//! over real HTTP, and read the reference samples.
#![allow(dead_code)]

use std::path::PathBuf;

use fake_youtube::{FakeConfig, FakeYoutube};
use serde_json::Value;

pub const KEY: &str = "fake-youtube-key";

/// A fake with a smaller corpus (starts faster) unless the test needs more.
pub fn fake(channels: usize) -> FakeYoutube {
    FakeYoutube::spawn(FakeConfig {
        channels,
        ..FakeConfig::default()
    })
    .expect("fake-youtube starts")
}

pub fn fake_with(config: FakeConfig) -> FakeYoutube {
    FakeYoutube::spawn(config).expect("fake-youtube starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET `{base}/{path}?{query}` with the key in the header; returns status and body text.
pub async fn get_raw(fake: &FakeYoutube, path: &str, query: &str) -> (u16, String) {
    let url = format!("{}/{path}?{query}", fake.base_url());
    let resp = client()
        .get(url)
        .header("X-Goog-Api-Key", KEY)
        .send()
        .await
        .expect("request reaches the fake");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

pub async fn get(fake: &FakeYoutube, path: &str, query: &str) -> (u16, Value) {
    let (status, body) = get_raw(fake, path, query).await;
    let v = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("body of {path}?{query} is not JSON ({e}): {body}"));
    (status, v)
}

pub fn reason(v: &Value) -> &str {
    v["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or("<no reason>")
}

pub fn samples_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("YOUTUBE_SAMPLES_DIR") {
        return PathBuf::from(dir);
    }
    // The repository's copy of the captures (tests/fixtures, see its PROVENANCE.md), so a
    // clone anywhere has them.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/youtube-samples");
    assert!(
        dir.is_dir(),
        "reference samples not found at {} (set YOUTUBE_SAMPLES_DIR)",
        dir.display()
    );
    dir
}

pub fn sample(name: &str) -> Value {
    let path = samples_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Union of several samples' structure: objects merge their keys, arrays
/// merge their elements into one, scalars keep the first value.
pub fn merge_schema(values: &[Value]) -> Value {
    let mut out = Value::Null;
    for v in values {
        out = merge(out, v);
    }
    out
}

fn merge(acc: Value, v: &Value) -> Value {
    match (acc, v) {
        (Value::Null, v) => normalize(v),
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, bv) in b {
                let cur = a.remove(k).unwrap_or(Value::Null);
                a.insert(k.clone(), merge(cur, bv));
            }
            Value::Object(a)
        }
        (Value::Array(a), Value::Array(b)) => {
            let mut el = a.into_iter().next().unwrap_or(Value::Null);
            for x in b {
                el = merge(el, x);
            }
            if el.is_null() {
                Value::Array(vec![])
            } else {
                Value::Array(vec![el])
            }
        }
        (a, _) => a,
    }
}

fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut el = Value::Null;
            for x in items {
                el = merge(el, x);
            }
            if el.is_null() {
                Value::Array(vec![])
            } else {
                Value::Array(vec![el])
            }
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// Every key the fake emits exists in the schema with the same JSON type.
/// Keys listed in `free_maps` hold maps whose keys are data, not structure.
pub fn assert_conforms(fake: &Value, schema: &Value, what: &str) {
    let mut errors = Vec::new();
    check(fake, schema, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{what}: structure differs from the real samples:\n  {}",
        errors.join("\n  ")
    );
}

fn check(fake: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    if type_name(fake) != type_name(schema) {
        errors.push(format!(
            "{path}: fake has {}, sample has {}",
            type_name(fake),
            type_name(schema)
        ));
        return;
    }
    match (fake, schema) {
        (Value::Object(f), Value::Object(s)) => {
            for (k, v) in f {
                match s.get(k) {
                    Some(sv) => check(v, sv, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k}: not in any sample")),
                }
            }
        }
        (Value::Array(f), Value::Array(s)) => {
            if let Some(el) = s.first() {
                for (i, v) in f.iter().enumerate() {
                    check(v, el, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}
