//! DPoP proofs (RFC 9449 §4): a JWT the client signs with a key of its own, whose public half
//! travels in the header, for one HTTP request (method and URL), once. A token issued with a
//! proof is bound to that key (`cnf.jkt`, the key's RFC 7638 thumbprint, §6) and is accepted
//! only with a fresh proof by the same key, which also names the token (`ath`, §4.2).
//!
//! The checks are those of §4.3, in order: one well-formed JWT; `typ` `dpop+jwt`; an
//! asymmetric `alg` (RS256, ES256 or EdDSA) that fits the `jwk`, which holds no private part;
//! a valid signature; `htm` and `htu` this request's; `iat` recent (five minutes back, one
//! ahead); the nonce, where one is required (§8, [`crate::keys::nonce`]); `ath` the token's
//! hash at a resource; and `jti` never seen with that key before (kept in the store until the
//! proof would be too old anyway, so every instance refuses a replay).

use super::client_auth::fits;
use super::error::TokenError;
use crate::context::{Ctx, SystemError};
use crate::paths;
use crate::types::{Alg, TokenErrorCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub const ALGS: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];
const TYP: &str = "dpop+jwt";
/// How old a proof's `iat` may be, and how far ahead of our clock.
const MAX_AGE_SECS: i64 = 300;
const MAX_AHEAD_SECS: i64 = 60;
/// Longer `jti`s are refused (a replay cache is no place for megabytes).
const MAX_JTI: usize = 256;
/// JWK members of private keys (RFC 7518 §6), which a proof's `jwk` must not carry.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof that verified: the thumbprint of its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
}

/// Why a proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// `invalid_dpop_proof`, and why.
    #[error("{0}")]
    Invalid(&'static str),
    /// `use_dpop_nonce` (§8): the proof must carry the provider's current nonce.
    #[error("a current DPoP nonce is required")]
    Nonce,
    #[error(transparent)]
    System(#[from] SystemError),
}

impl From<sqlx::Error> for Refused {
    fn from(e: sqlx::Error) -> Self {
        Self::System(e.into())
    }
}

/// What the proof must say of its request.
pub struct Expected<'a> {
    /// The HTTP method (`htm`).
    pub method: &'a str,
    /// The URL the request was sent to (`htu`, compared without query and fragment).
    pub url: &'a str,
    /// At a resource: the access token it goes with (`ath`).
    pub access_token: Option<&'a str>,
    /// Whether it must carry a current nonce.
    pub nonce: bool,
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

/// The proof a token request sent, if any (its `DPoP` headers' values: more than one is
/// refused, §4.3), checked for the token endpoint: a nonce is required when
/// `tokens.dpop_nonce` says so (§8), and its refusals are the token endpoint's.
pub async fn at_token_endpoint(ctx: &Ctx, headers: &[&str]) -> Result<Option<Proof>, TokenError> {
    let proof = match headers {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(TokenError::new(
                TokenErrorCode::InvalidDpopProof,
                "send one DPoP header",
            ));
        }
    };
    let url = ctx.url(paths::TOKEN);
    let expected = Expected {
        method: "POST",
        url: &url,
        access_token: None,
        nonce: ctx.config.tokens.dpop_nonce,
    };
    match verify(ctx, proof, &expected).await {
        Ok(p) => Ok(Some(p)),
        Err(Refused::Invalid(why)) => Err(TokenError::new(TokenErrorCode::InvalidDpopProof, why)),
        Err(Refused::Nonce) => Err(TokenError::UseDpopNonce(
            ctx.dpop_nonces.current(ctx.clock.unix()),
        )),
        Err(Refused::System(e)) => Err(e.into()),
    }
}

/// The proof `proof` (a `DPoP` header's value), checked for `expected` (RFC 9449 §4.3).
pub async fn verify(ctx: &Ctx, proof: &str, expected: &Expected<'_>) -> Result<Proof, Refused> {
    let (key, alg, jkt) = proof_key(proof)?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| Refused::Invalid("the proof's signature or claims do not verify"))?
        .claims;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI {
        return Err(Refused::Invalid("the proof's jti is missing or too long"));
    }
    if claims.htm != expected.method {
        return Err(Refused::Invalid(
            "the proof is for another HTTP method (htm)",
        ));
    }
    if !same_target(&claims.htu, expected.url) {
        return Err(Refused::Invalid("the proof is for another URL (htu)"));
    }
    let now = ctx.clock.unix();
    if claims.iat < now - MAX_AGE_SECS || claims.iat > now + MAX_AHEAD_SECS {
        return Err(Refused::Invalid(
            "the proof is too old, or from the future (iat)",
        ));
    }
    if expected.nonce
        && !claims
            .nonce
            .as_deref()
            .is_some_and(|n| ctx.dpop_nonces.accepts(n, now))
    {
        return Err(Refused::Nonce);
    }
    if let Some(token) = expected.access_token
        && claims.ath.as_deref() != Some(token_hash(token).as_str())
    {
        return Err(Refused::Invalid(
            "the proof does not name this access token (ath)",
        ));
    }
    let seen = infra::secret::hash_secret(&format!("{jkt}\0{}", claims.jti));
    if !ctx
        .store
        .dpop_proof_fresh(&seen, claims.iat + MAX_AGE_SECS)
        .await?
    {
        return Err(Refused::Invalid("the proof was used before (jti)"));
    }
    Ok(Proof { jkt })
}

/// The proof's key (its header's `jwk`), its `alg`, and the key's thumbprint: `typ`
/// `dpop+jwt`, an algorithm of [`ALGS`] that fits the key, and no private part in it.
fn proof_key(proof: &str) -> Result<(DecodingKey, Algorithm, String), Refused> {
    let malformed = || Refused::Invalid("the proof is not a well-formed JWT");
    let head = proof.split('.').next().ok_or_else(malformed)?;
    let raw: serde_json::Value = URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(malformed)?;
    if !raw["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case(TYP))
    {
        return Err(Refused::Invalid("the proof's typ is not dpop+jwt"));
    }
    let members = raw["jwk"]
        .as_object()
        .ok_or(Refused::Invalid("the proof has no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(Refused::Invalid("the proof's jwk holds a private key"));
    }
    let header = jsonwebtoken::decode_header(proof).map_err(|_| malformed())?;
    let allowed = ALGS.iter().any(|a| a.as_str() == alg_name(header.alg));
    let jwk: Jwk = header.jwk.ok_or_else(malformed)?;
    if !allowed || !fits(&jwk, header.alg) {
        return Err(Refused::Invalid(
            "the proof's alg is not one of RS256, ES256, EdDSA, or does not fit its jwk",
        ));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| malformed())?;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| malformed())?;
    Ok((key, header.alg, jkt))
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "",
    }
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
pub(crate) mod testing {
    //! A client's DPoP key, making proofs as a client would (for the tests).
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    pub(crate) struct ClientKey {
        key: EncodingKey,
        pub(crate) jwk: Jwk,
    }

    impl ClientKey {
        pub(crate) fn new() -> Self {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let der = pair.to_pkcs8v1().unwrap();
            let key = EncodingKey::from_ec_der(der.as_ref());
            let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
            Self { key, jwk }
        }

        /// A proof with these claims (and `typ`, `jwk` as given).
        pub(crate) fn sign(&self, typ: &str, claims: &serde_json::Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.typ = Some(typ.to_owned());
            header.jwk = Some(self.jwk.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }

        /// A fresh proof for `method` `url` at `now`, with `extra` claims.
        pub(crate) fn proof(
            &self,
            method: &str,
            url: &str,
            now: i64,
            extra: serde_json::Value,
        ) -> String {
            let mut claims = serde_json::json!({
                "jti": infra::secret::random_handle().unwrap(),
                "htm": method, "htu": url, "iat": now,
            });
            if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
                c.extend(e.clone());
            }
            self.sign("dpop+jwt", &claims)
        }

        pub(crate) fn jkt(&self) -> String {
            self.jwk
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
        }
    }
}
