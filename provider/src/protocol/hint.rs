//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): an ID token we issued, which
//! may have expired, naming the user (and the session) a request is about.

use crate::context::Ctx;
use serde::Deserialize;

/// The claims of a hint that the rules use.
#[derive(Debug, Deserialize)]
pub struct Hint {
    pub sub: String,
    aud: Audience,
    /// The SSO session it was issued in (OIDC Back-Channel Logout §2.4 puts `sid` in ID tokens).
    pub sid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Hint {
    /// The client it was issued to (its first audience; ours have one).
    pub fn client_id(&self) -> Option<&str> {
        match &self.aud {
            Audience::One(a) => Some(a),
            Audience::Many(list) => list.first().map(String::as_str),
        }
    }
}

/// The hint's claims, if `token` is an ID token signed by one of our keys for our issuer;
/// expiry is not checked (a hint may be old).
pub fn verify(ctx: &Ctx, token: &str) -> Option<Hint> {
    ctx.keys
        .current()
        .verify_with(token, "JWT", &ctx.issuer, None, None)
        .ok()
}
