//! Which handler a request goes to, from its path.

/// The API's routes; a user id in a path is percent-decoded.
pub(crate) enum Route {
    Health,
    Quota,
    Feed(String),
    History(String),
}

pub(crate) fn route(path: &str) -> Option<Route> {
    // API Gateway may prefix a stage; function URLs and `cargo lambda watch` add their own.
    let start = path.find("/api/v1/")?;
    let rest = &path[start + "/api/v1/".len()..];
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest == "health" {
        return Some(Route::Health);
    }
    if rest == "quota" {
        return Some(Route::Quota);
    }
    if let Some(user) = rest.strip_prefix("video/recommendations/") {
        return (!user.contains('/')).then(|| Route::Feed(percent_decode(user)));
    }
    if let Some(user) = rest.strip_prefix("video/history/") {
        return (!user.contains('/')).then(|| Route::History(percent_decode(user)));
    }
    None
}

/// `%XX` sequences decoded, anything else kept as it is; bytes that are not UTF-8 become
/// U+FFFD (and then fail the user-id check with a 400).
fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_percent_decoded_and_stray_percents_kept() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert!(matches!(
            route("/prod/api/v1/video/recommendations/u%2D1"),
            Some(Route::Feed(u)) if u == "u-1"
        ));
        assert!(route("/api/v1/video/recommendations/a/b").is_none());
    }
}
