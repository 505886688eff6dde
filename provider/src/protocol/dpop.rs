//! DPoP proofs (RFC 9449 §4) at the provider: a JWT the client signs with a key of its own,
//! whose public half travels in the header, for one HTTP request, once. A token issued with a
//! proof is bound to that key (`cnf.jkt`, the key's RFC 7638 thumbprint, §6) and is accepted
//! only with a fresh proof by the same key, which also names the token (`ath`, §4.2).
//!
//! The stateless checks of §4.3 are `infra::dpop`'s (shared with the `resource-server` crate);
//! here the provider's: the nonce where one is required (§8, [`crate::keys::nonce`]), and
//! `jti` never seen with that key before (kept in the store until the proof would be too old
//! anyway, so every instance refuses a replay).

use super::error::TokenError;
use crate::context::{Ctx, SystemError};
use crate::types::{Alg, TokenErrorCode};
pub use infra::dpop::{Expected, token_hash};

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub const ALGS: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];

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

/// The proof a token request sent, if any: [`at_endpoint`] for the token endpoint (the tests'
/// shorthand; the handlers name their endpoint).
#[cfg(test)]
pub(crate) async fn at_token_endpoint(
    ctx: &Ctx,
    headers: &[&str],
) -> Result<Option<Proof>, TokenError> {
    at_endpoint(ctx, crate::paths::TOKEN, headers).await
}

/// The proof a client's POST to one of the provider's endpoints at `path` (the token endpoint,
/// or the PAR endpoint, §10.1) sent, if any (its `DPoP` headers' values: more than one is
/// refused, §4.3): a nonce is required when `tokens.dpop_nonce` says so (§8), and the
/// refusals are the token endpoint's (§5.1), which the PAR endpoint shares (RFC 9126 §2.3).
pub async fn at_endpoint(
    ctx: &Ctx,
    path: &str,
    headers: &[&str],
) -> Result<Option<Proof>, TokenError> {
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
    let url = ctx.url(path);
    let expected = Expected {
        method: "POST",
        url: &url,
        access_token: None,
    };
    match verify(ctx, proof, &expected, ctx.config.tokens.dpop_nonce).await {
        Ok(p) => Ok(Some(p)),
        Err(Refused::Invalid(why)) => Err(TokenError::new(TokenErrorCode::InvalidDpopProof, why)),
        Err(Refused::Nonce) => Err(TokenError::UseDpopNonce(
            ctx.dpop_nonces.current(ctx.clock.unix()),
        )),
        Err(Refused::System(e)) => Err(e.into()),
    }
}

/// The proof `proof` (a `DPoP` header's value), checked for `expected` (RFC 9449 §4.3), and
/// carrying a current nonce if `nonce` says so (§8).
pub async fn verify(
    ctx: &Ctx,
    proof: &str,
    expected: &Expected<'_>,
    nonce: bool,
) -> Result<Proof, Refused> {
    let now = ctx.clock.unix();
    let checked = infra::dpop::check(proof, expected, now).map_err(Refused::Invalid)?;
    if nonce
        && !checked
            .nonce
            .as_deref()
            .is_some_and(|n| ctx.dpop_nonces.accepts(n, now))
    {
        return Err(Refused::Nonce);
    }
    let seen = infra::secret::hash_secret(&format!("{}\0{}", checked.jkt, checked.jti));
    let until = checked.iat + infra::dpop::REMEMBER_SECS;
    if !ctx.store.dpop_proof_fresh(&seen, until).await? {
        return Err(Refused::Invalid("the proof was used before (jti)"));
    }
    Ok(Proof { jkt: checked.jkt })
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
