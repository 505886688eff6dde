//! DPoP proofs (RFC 9449 §4): the checks that need no state, shared by the provider (token
//! endpoint, userinfo) and the `resource-server` crate, which each add their own replay cache
//! (and the provider its nonces). Written here over `jsonwebtoken` rather than taken from a
//! crate: no maintained Rust crate verifies DPoP proofs, and the checks are the few lines of
//! §4.3 below.
//!
//! A proof is one JWT: `typ` `dpop+jwt`; an asymmetric `alg` (RS256, ES256 or EdDSA) that fits
//! its header's `jwk`, which holds no private part; a valid signature by that key; `jti`,
//! `htm` and `htu` this request's (the URL compared without query and fragment, as URLs); `iat`
//! at most [`MAX_AGE_SECS`] old and [`MAX_AHEAD_SECS`] ahead; and at a resource `ath`, the
//! hash of the token it goes with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, EllipticCurveKeyParameters, Jwk, OctetKeyPairParameters,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 3] = ["ES256", "RS256", "EdDSA"];
/// How old a proof's `iat` may be, and how far ahead of the verifier's clock.
pub const MAX_AGE_SECS: i64 = 300;
pub const MAX_AHEAD_SECS: i64 = 60;
/// How long after its `iat` a proof's `jti` must be remembered: as long as some verifier could
/// accept it, with a clock up to [`MAX_AHEAD_SECS`] behind the one that swept it.
pub const REMEMBER_SECS: i64 = MAX_AGE_SECS + MAX_AHEAD_SECS;
const TYP: &str = "dpop+jwt";
/// Longer `jti`s are refused (a replay cache is no place for megabytes).
const MAX_JTI: usize = 256;
/// JWK members of private keys (RFC 7518 §6), which a proof's `jwk` must not carry.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must say of its request.
pub struct Expected<'a> {
    /// The HTTP method (`htm`).
    pub method: &'a str,
    /// The URL the request was sent to (`htu`).
    pub url: &'a str,
    /// At a resource: the access token it goes with (`ath`).
    pub access_token: Option<&'a str>,
}

/// A proof that passed the checks: its key's RFC 7638 thumbprint (what a bound token's
/// `cnf.jkt` names), and what the caller's own checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    ath: Option<String>,
}

/// The values of a request's `DPoP` headers (RFC 9449 §4.1), each readable text (one that is
/// not is refused, never skipped, so that two headers cannot pass for one).
pub fn headers(all: &axum::http::HeaderMap) -> Result<Vec<&str>, &'static str> {
    all.get_all("dpop")
        .iter()
        .map(|v| {
            v.to_str()
                .map_err(|_| "the DPoP header is not readable text")
        })
        .collect()
}

/// The checks of RFC 9449 §4.3 that need no state, at the verifier's time `now`; the error
/// says which failed.
pub fn check(proof: &str, expected: &Expected<'_>, now: i64) -> Result<Checked, &'static str> {
    if has_dot_segments(expected.url) {
        // A URL parser would resolve them, and a proof for `/notes` would name
        // `/files/../notes` too.
        return Err("the request's path has dot segments");
    }
    let (key, alg, jkt) = proof_key(proof)?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| "the proof's signature or claims do not verify")?
        .claims;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI {
        return Err("the proof's jti is missing or too long");
    }
    if claims.htm != expected.method {
        return Err("the proof is for another HTTP method (htm)");
    }
    if !same_target(&claims.htu, expected.url) {
        return Err("the proof is for another URL (htu)");
    }
    if claims.iat < now - MAX_AGE_SECS || claims.iat > now + MAX_AHEAD_SECS {
        return Err("the proof is too old, or from the future (iat)");
    }
    if let Some(token) = expected.access_token
        && claims.ath.as_deref() != Some(token_hash(token).as_str())
    {
        return Err("the proof does not name this access token (ath)");
    }
    Ok(Checked {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

/// The proof's key (its header's `jwk`), its `alg`, and the key's thumbprint.
fn proof_key(proof: &str) -> Result<(DecodingKey, Algorithm, String), &'static str> {
    const MALFORMED: &str = "the proof is not a well-formed JWT";
    let head = proof.split('.').next().ok_or(MALFORMED)?;
    let raw: serde_json::Value = URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(MALFORMED)?;
    if !raw["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case(TYP))
    {
        return Err("the proof's typ is not dpop+jwt");
    }
    let members = raw["jwk"].as_object().ok_or("the proof has no jwk")?;
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err("the proof's jwk holds a private key");
    }
    let header = jsonwebtoken::decode_header(proof).map_err(|_| MALFORMED)?;
    let jwk: Jwk = header.jwk.ok_or(MALFORMED)?;
    if !key_fits(&jwk, header.alg) {
        return Err("the proof's alg is not one of RS256, ES256, EdDSA, or does not fit its jwk");
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| MALFORMED)?;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| MALFORMED)?;
    Ok((key, header.alg, jkt))
}

/// Whether a key of `jwk`'s type signs with `alg`: RSA with RS256, P-256 with ES256, Ed25519
/// with EdDSA, and nothing else (never `none` or a MAC), so that a header cannot choose how
/// its key is read.
pub fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    matches!(
        (&jwk.algorithm, alg),
        (AlgorithmParameters::RSA(_), Algorithm::RS256)
            | (
                AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    curve: EllipticCurve::P256,
                    ..
                }),
                Algorithm::ES256
            )
            | (
                AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    curve: EllipticCurve::Ed25519,
                    ..
                }),
                Algorithm::EdDSA
            )
    )
}

/// Whether `url`'s path (before any query) has a `.` or `..` segment, plain or
/// percent-encoded.
fn has_dot_segments(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    path.split('/').skip(1).any(|segment| {
        let lowered = segment.to_ascii_lowercase().replace("%2e", ".");
        lowered == "." || lowered == ".."
    })
}

/// RFC 9449 §4.2 `ath`: the token's SHA-256, base64url.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// `htu` names `url`, query and fragment aside (RFC 9449 §4.3 step 9), both normalised as
/// URLs (scheme and host case, default port).
fn same_target(htu: &str, url: &str) -> bool {
    let bare = |u: &str| {
        url::Url::parse(u).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((bare(htu), bare(url)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_seen_plain_and_encoded() {
        for dotted in [
            "https://api.example/files/../notes",
            "https://api.example/files/%2e%2E/notes",
            "https://api.example/./notes",
            "https://api.example/notes/..",
        ] {
            assert!(has_dot_segments(dotted), "{dotted}");
        }
        for plain in [
            "https://api.example/notes",
            "https://api.example/v1.2/notes",
            "https://api.example/notes?x=/../",
            "https://api.example/.well-known/x",
        ] {
            assert!(!has_dot_segments(plain), "{plain}");
        }
    }

    #[test]
    fn targets_compare_as_urls_without_query_and_fragment() {
        let url = "https://api.example/notes";
        for same in [
            "https://api.example/notes",
            "HTTPS://API.EXAMPLE/notes",
            "https://api.example:443/notes",
            "https://api.example/notes?x=1#f",
        ] {
            assert!(same_target(same, url), "{same}");
        }
        for other in [
            "https://api.example/notes/",
            "https://api.example/Notes",
            "http://api.example/notes",
            "https://api.example:8443/notes",
            "https://evil.example/notes",
            "not a url",
        ] {
            assert!(!same_target(other, url), "{other}");
        }
    }
}
