//! The fake's thumbnails: a small SVG per video and size, generated from the video id
//! (same id, same bytes), served at the URLs its responses give
//! (`/vi/{id}/{size}.svg`), so a page showing the fake's videos needs no network.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new().route("/vi/{id}/{file}", get(serve))
}

/// Google's thumbnail names and sizes.
const SIZES: [(&str, u32, u32); 5] = [
    ("default", 120, 90),
    ("mqdefault", 320, 180),
    ("hqdefault", 480, 360),
    ("sddefault", 640, 480),
    ("maxresdefault", 1280, 720),
];

async fn serve(State(s): State<Arc<Shared>>, Path((id, file)): Path<(String, String)>) -> Response {
    let size = file
        .strip_suffix(".svg")
        .and_then(|name| SIZES.iter().find(|(n, _, _)| *n == name));
    let known = s
        .corpus()
        .video(&id)
        .map(|v| v.has_maxres || size.is_some_and(|(n, _, _)| *n != "maxresdefault"));
    match (size, known) {
        (Some(&(_, w, h)), Some(true)) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            svg(&id, w, h),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such thumbnail").into_response(),
    }
}

/// The thumbnail of `video_id` at `w`×`h`: a two-colour gradient and a play mark whose
/// colours and placement come from the id, and the id itself. Ids are `[A-Za-z0-9_-]`,
/// so they need no escaping; anything else is left out of the text.
pub fn svg(video_id: &str, w: u32, h: u32) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in video_id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let hue = hash % 360;
    let hue2 = (hue + 40 + (hash >> 16) % 80) % 360;
    let r = h / 5;
    let cx = w / 2 + ((hash >> 24) % u64::from(w / 4).max(1)) as u32 - w / 8;
    let cy = h / 2;
    let text: String = video_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let font = (h / 9).max(8);
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#,
            r#"<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">"#,
            r#"<stop offset="0" stop-color="hsl({hue},65%,45%)"/><stop offset="1" stop-color="hsl({hue2},70%,25%)"/>"#,
            r#"</linearGradient></defs><rect width="{w}" height="{h}" fill="url(#g)"/>"#,
            r#"<circle cx="{cx}" cy="{cy}" r="{r}" fill="black" fill-opacity=".35"/>"#,
            r#"<path d="M{px0} {py0}L{px1} {cy}L{px0} {py1}Z" fill="white"/>"#,
            r#"<text x="{pad}" y="{ty}" font-family="monospace" font-size="{font}" fill="white" fill-opacity=".85">{text}</text>"#,
            "</svg>"
        ),
        w = w,
        h = h,
        hue = hue,
        hue2 = hue2,
        cx = cx,
        cy = cy,
        r = r,
        px0 = cx - r / 3,
        px1 = cx + r / 2,
        py0 = cy - r / 2,
        py1 = cy + r / 2,
        pad = font / 2,
        ty = h - font / 2,
        font = font,
        text = text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_id_same_bytes_and_well_formed() {
        let a = svg("dQw4w9WgXcQ", 320, 180);
        assert_eq!(a, svg("dQw4w9WgXcQ", 320, 180));
        assert_ne!(a, svg("9bZkp7q19f0", 320, 180));
        assert!(a.starts_with("<svg ") && a.ends_with("</svg>"), "{a}");
        assert!(a.contains(r#"width="320" height="180""#));
        assert!(a.len() < 1024, "{} bytes", a.len());
        // Nothing of a hostile id reaches the markup but its plain characters.
        let hostile = svg("<script>&amp;", 120, 90);
        assert!(
            !hostile.contains("<script") && !hostile.contains('&'),
            "{hostile}"
        );
    }
}
