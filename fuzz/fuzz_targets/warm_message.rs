//! The SQS message body the warmer reads: any bytes give a warm request or a
//! `MessageError` (poison, to the DLQ), never a panic; what parses re-serialises to
//! the same request, with a user id that is safe in a Redis key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reco_core::messages::WarmRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = WarmRequest::parse(body) {
        let again = WarmRequest::parse(&request.to_json()).expect("a parsed request round-trips");
        assert_eq!(again, request);
        let id = request.user_id.to_string();
        // Only these characters reach a `{u:<id>}` key: no hash-tag braces, no `:`,
        // no glob characters, no whitespace.
        assert!(
            !id.is_empty()
                && id.len() <= reco_core::domain::MAX_USER_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@+".contains(&b)),
            "unsafe user id in a key: {id:?}"
        );
    }
});
