//! The secret each subscription is made with, and the check of a notification's
//! `X-Hub-Signature` against it.
//!
//! WebSub lets a subscriber give the hub a secret (`hub.secret`, under 200 bytes) with
//! each subscription; the hub then signs every notification body with an HMAC keyed by
//! it. One master secret (from Secrets Manager, like the API key) yields a different
//! secret per channel, so no secret is stored anywhere, and one leaked channel secret
//! forges nothing for another channel. The HMAC is the project's one crypto library's
//! (aws-lc-rs, already under rustls), compared in constant time.

use aws_lc_rs::hmac;
use thiserror::Error;

/// Why a notification's signature was not accepted. Never names the secret or the
/// expected signature: only what was wrong with what arrived.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the X-Hub-Signature header is missing")]
    Missing,
    #[error("the X-Hub-Signature header is not `method=hex`")]
    Malformed,
    #[error("the X-Hub-Signature method is not sha1, sha256, sha384 or sha512")]
    UnknownMethod,
    #[error("the X-Hub-Signature does not match the body")]
    Mismatch,
}

/// The master secret every subscription's secret is derived from.
#[derive(Clone)]
pub struct PushSecrets {
    master: hmac::Key,
}

impl std::fmt::Debug for PushSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushSecrets(<redacted>)")
    }
}

/// The shortest master secret accepted: 128 bits of hex or 16 characters of anything.
pub const MIN_MASTER_SECRET_BYTES: usize = 16;

/// Domain separation: a derived secret is never an HMAC anyone else computes with the
/// master secret.
const DERIVATION_LABEL: &[u8] = b"reco-websub-v1:";
/// The callback token's label: a different derivation from the channel's secret.
const TOKEN_LABEL: &[u8] = b"reco-websub-callback-v1:";
/// The query parameter of a subscription's callback URL that carries its token.
pub const CALLBACK_TOKEN_PARAM: &str = "t";

impl PushSecrets {
    /// `None` when the master secret is too short to be a secret.
    pub fn new(master_secret: &str) -> Option<Self> {
        let master = master_secret.trim();
        (master.len() >= MIN_MASTER_SECRET_BYTES).then(|| Self {
            master: hmac::Key::new(hmac::HMAC_SHA256, master.as_bytes()),
        })
    }

    /// The `hub.secret` of `channel_id`'s subscription: 64 hex characters.
    pub fn secret_for(&self, channel_id: &str) -> ChannelSecret {
        let mut ctx = hmac::Context::with_key(&self.master);
        ctx.update(DERIVATION_LABEL);
        ctx.update(channel_id.as_bytes());
        ChannelSecret(hex::encode(ctx.sign().as_ref()))
    }

    /// The token in `channel_id`'s callback URL (`?t=…`, 32 hex characters). The hub's
    /// verification GETs come to that URL, so a GET without it is not the hub's: nobody
    /// else can confirm, deny or lengthen our subscriptions. Stable per channel, so a
    /// renewal names the same callback, which WebSub keys subscriptions by.
    pub fn callback_token(&self, channel_id: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.master);
        ctx.update(TOKEN_LABEL);
        ctx.update(channel_id.as_bytes());
        hex::encode(&ctx.sign().as_ref()[..16])
    }

    /// Whether `token` is `channel_id`'s callback token, compared in constant time.
    pub fn callback_token_matches(&self, channel_id: &str, token: Option<&str>) -> bool {
        let expected = self.callback_token(channel_id);
        token.is_some_and(|t| {
            aws_lc_rs::constant_time::verify_slices_are_equal(t.as_bytes(), expected.as_bytes())
                .is_ok()
        })
    }

    /// Checks `header` (the `X-Hub-Signature` value, if any) against `body` for
    /// `channel_id`'s subscription.
    pub fn verify(
        &self,
        channel_id: &str,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        self.secret_for(channel_id).verify(header, body)
    }
}

/// One subscription's secret. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelSecret(String);

impl std::fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSecret(<redacted>)")
    }
}

impl ChannelSecret {
    /// The value to send as `hub.secret` (and only there).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `X-Hub-Signature: method=hex` of `body`, as a hub writes it: what the fake hub
    /// signs with, and what a test forges against.
    pub fn sign(&self, method: &str, body: &[u8]) -> Option<String> {
        let algorithm = algorithm(method)?;
        let key = hmac::Key::new(algorithm, self.0.as_bytes());
        Some(format!(
            "{method}={}",
            hex::encode(hmac::sign(&key, body).as_ref())
        ))
    }

    /// Whether `header` is a valid signature of `body` with this secret. The comparison
    /// is aws-lc-rs's, in constant time.
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?.trim();
        let (method, signature) = header.split_once('=').ok_or(SignatureError::Malformed)?;
        let algorithm =
            algorithm(&method.to_ascii_lowercase()).ok_or(SignatureError::UnknownMethod)?;
        let tag = hex::decode(signature).map_err(|_| SignatureError::Malformed)?;
        let key = hmac::Key::new(algorithm, self.0.as_bytes());
        hmac::verify(&key, body, &tag).map_err(|_| SignatureError::Mismatch)
    }
}

/// The HMAC of a WebSub signature method. Google's hub signs with SHA-1, which WebSub
/// still names first; an HMAC-SHA1 is not weakened by SHA-1's collisions.
fn algorithm(method: &str) -> Option<hmac::Algorithm> {
    match method {
        "sha1" => Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        "sha256" => Some(hmac::HMAC_SHA256),
        "sha384" => Some(hmac::HMAC_SHA384),
        "sha512" => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: &str = "UC_x5XG1OV2P6uZZ5FSM9Ttw";

    fn secrets() -> PushSecrets {
        PushSecrets::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_short_master_secret_is_refused() {
        assert!(PushSecrets::new("short").is_none());
        assert!(PushSecrets::new("   0123456789abcde   ").is_none());
    }

    #[test]
    fn each_channel_has_its_own_secret_under_the_spec_limit() {
        let s = secrets();
        let a = s.secret_for(CHANNEL);
        let b = s.secret_for("UCBR8-60-B28hp2BmDPdntcQ");
        assert_ne!(a, b);
        assert_eq!(a, s.secret_for(CHANNEL), "derivation is deterministic");
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().len() < 200, "hub.secret MUST be under 200 bytes");
        let other_master = PushSecrets::new("fedcba9876543210fedcba9876543210").unwrap();
        assert_ne!(a, other_master.secret_for(CHANNEL));
    }

    #[test]
    fn the_callback_token_is_the_channels_own_and_unlike_its_secret() {
        let s = secrets();
        let token = s.callback_token(CHANNEL);
        assert_eq!(token.len(), 32);
        assert_eq!(token, s.callback_token(CHANNEL));
        assert_ne!(token, s.callback_token("UCBR8-60-B28hp2BmDPdntcQ"));
        assert!(!s.secret_for(CHANNEL).expose().contains(&token));
        assert!(s.callback_token_matches(CHANNEL, Some(&token)));
        assert!(!s.callback_token_matches(CHANNEL, None));
        assert!(!s.callback_token_matches(CHANNEL, Some(&token[..31])));
        assert!(!s.callback_token_matches("UCBR8-60-B28hp2BmDPdntcQ", Some(&token)));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = secrets();
        let secret = s.secret_for(CHANNEL);
        let shown = format!("{s:?} {secret:?}");
        assert!(!shown.contains(secret.expose()));
        assert!(!shown.contains("0123456789abcdef"));
    }

    #[test]
    fn a_hub_signature_of_the_body_verifies_with_every_method() {
        let s = secrets();
        let body = b"<feed>...</feed>";
        for method in ["sha1", "sha256", "sha384", "sha512"] {
            let header = s.secret_for(CHANNEL).sign(method, body).unwrap();
            assert!(header.starts_with(&format!("{method}=")));
            assert_eq!(s.verify(CHANNEL, Some(&header), body), Ok(()), "{method}");
            // The method name is case-insensitive, the hex too.
            let upper = header.to_ascii_uppercase();
            assert_eq!(s.verify(CHANNEL, Some(&upper), body), Ok(()), "{method}");
        }
    }

    #[test]
    fn a_known_sha1_vector_matches() {
        // RFC 2202 test case 2: HMAC-SHA1 with key "Jefe".
        let secret = ChannelSecret("Jefe".to_owned());
        assert_eq!(
            secret
                .sign("sha1", b"what do ya want for nothing?")
                .unwrap(),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn bad_signatures_are_told_apart_and_refused() {
        let s = secrets();
        let body = b"<feed>...</feed>";
        let good = s.secret_for(CHANNEL).sign("sha1", body).unwrap();
        assert_eq!(s.verify(CHANNEL, None, body), Err(SignatureError::Missing));
        assert_eq!(
            s.verify(CHANNEL, Some("nonsense"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            s.verify(CHANNEL, Some("sha1=zz"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            s.verify(CHANNEL, Some("md5=00"), body),
            Err(SignatureError::UnknownMethod)
        );
        // The body changed, the channel is another's, the secret is another's, or the
        // tag is cut short: all a mismatch.
        assert_eq!(
            s.verify(CHANNEL, Some(&good), b"<feed>..!</feed>"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify("UCBR8-60-B28hp2BmDPdntcQ", Some(&good), body),
            Err(SignatureError::Mismatch)
        );
        let forged = ChannelSecret("guess".to_owned())
            .sign("sha1", body)
            .unwrap();
        assert_eq!(
            s.verify(CHANNEL, Some(&forged), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify(CHANNEL, Some(&good[..good.len() - 2]), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn errors_never_carry_the_secret() {
        let s = secrets();
        let secret = s.secret_for(CHANNEL);
        for e in [
            SignatureError::Missing,
            SignatureError::Malformed,
            SignatureError::UnknownMethod,
            SignatureError::Mismatch,
        ] {
            assert!(!e.to_string().contains(secret.expose()));
        }
    }
}
