//! Feed parameters, from a query string (GET) or a JSON body (POST), with the same rules.

use reco_core::domain::{CATEGORIES, resolve_category};
use serde_json::Value;

use crate::error::ApiError;

pub const DEFAULT_MAX_RESULTS: usize = 20;
pub const MAX_RESULTS_LIMIT: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct FeedParams {
    pub max_results: usize,
    pub force_refresh: bool,
    pub include_trending: bool,
    pub category_id: Option<&'static str>,
}

impl Default for FeedParams {
    fn default() -> Self {
        Self {
            max_results: DEFAULT_MAX_RESULTS,
            force_refresh: false,
            include_trending: true,
            category_id: None,
        }
    }
}

/// A parameter's raw value: query strings give text, JSON bodies give typed values.
pub enum Raw<'a> {
    Text(&'a str),
    Json(&'a Value),
}

fn max_results(raw: Raw) -> Result<usize, ApiError> {
    let n = match raw {
        Raw::Text(t) => t.trim().parse::<i64>().ok(),
        Raw::Json(Value::Number(n)) => n.as_i64(),
        Raw::Json(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Raw::Json(_) => None,
    };
    match n {
        Some(n) if (1..=MAX_RESULTS_LIMIT as i64).contains(&n) => Ok(n as usize),
        _ => Err(ApiError::invalid(
            "max_results",
            format!("max_results must be a whole number from 1 to {MAX_RESULTS_LIMIT}"),
        )),
    }
}

fn boolean(field: &'static str, raw: Raw) -> Result<bool, ApiError> {
    let parsed = match raw {
        Raw::Text(t) => text_bool(t),
        Raw::Json(Value::Bool(b)) => Some(*b),
        Raw::Json(Value::String(s)) => text_bool(s),
        Raw::Json(_) => None,
    };
    parsed.ok_or_else(|| ApiError::invalid(field, format!("{field} must be true or false")))
}

fn text_bool(t: &str) -> Option<bool> {
    match t.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn category(raw: Raw) -> Result<Option<&'static str>, ApiError> {
    let text = match raw {
        Raw::Text(t) => t.to_owned(),
        Raw::Json(Value::String(s)) => s.clone(),
        Raw::Json(Value::Number(n)) => n.to_string(),
        Raw::Json(Value::Null) => return Ok(None),
        Raw::Json(_) => String::new(),
    };
    if text.is_empty() && matches!(raw, Raw::Text(_)) {
        return Ok(None);
    }
    resolve_category(&text).map(Some).ok_or_else(|| {
        let names: Vec<String> = CATEGORIES
            .iter()
            .map(|(id, name)| format!("{id} ({name})"))
            .collect();
        ApiError::invalid(
            "category_filter",
            format!(
                "category_filter must be a YouTube category id or name; valid: {}",
                names.join(", ")
            ),
        )
    })
}

impl FeedParams {
    /// From query-string pairs; unknown names are ignored, the last value of a repeated
    /// name wins.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ApiError> {
        let mut params = FeedParams::default();
        for (name, value) in pairs {
            params.apply(name, Raw::Text(value))?;
        }
        Ok(params)
    }

    pub fn from_json(body: &Value) -> Result<Self, ApiError> {
        let object = match body {
            Value::Object(o) => o,
            Value::Null => return Ok(FeedParams::default()),
            _ => return Err(ApiError::invalid("body", "the body must be a JSON object")),
        };
        let mut params = FeedParams::default();
        for (name, value) in object {
            params.apply(name, Raw::Json(value))?;
        }
        Ok(params)
    }

    fn apply(&mut self, name: &str, raw: Raw) -> Result<(), ApiError> {
        match name {
            "max_results" => self.max_results = max_results(raw)?,
            "force_refresh" => self.force_refresh = boolean("force_refresh", raw)?,
            "include_trending" => self.include_trending = boolean("include_trending", raw)?,
            "category_filter" => self.category_id = category(raw)?,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_json_follow_the_same_rules() {
        let q = FeedParams::from_query([
            ("max_results", "5"),
            ("category_filter", "gaming"),
            ("x", "y"),
        ])
        .unwrap();
        let j = FeedParams::from_json(
            &serde_json::json!({"max_results": 5, "category_filter": "Gaming"}),
        )
        .unwrap();
        assert_eq!(q, j);
        assert_eq!(q.category_id, Some("20"));
        for bad in ["0", "51", "abc", "2.5", ""] {
            let e = FeedParams::from_query([("max_results", bad)]).unwrap_err();
            assert_eq!((e.status, e.field), (400, Some("max_results")));
        }
        let e = FeedParams::from_query([("category_filter", "knitting")]).unwrap_err();
        assert!(e.message.contains("Gaming"));
        let e = FeedParams::from_json(&serde_json::json!({"force_refresh": "maybe"})).unwrap_err();
        assert_eq!(e.field, Some("force_refresh"));
    }
}
