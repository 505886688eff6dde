//! Request objects (RFC 9101, JWT-Secured Authorization Requests): an authorization request
//! whose parameters are the claims of a JWT the client signed with one of its registered keys,
//! sent by value (`request`) at the authorization endpoint or pushed (RFC 9126). Only its
//! claims count: parameters beside it are not read (RFC 9101 §6.3), but `client_id`, which
//! must be the claim's (§5).
//!
//! Unsigned (`alg: none`) and MAC-signed objects are refused: the provider keeps only the hash
//! of a client's secret, and an unsigned object proves nothing (RFC 9101 §10.2).

use crate::protocol::client_auth::{client_key, is_media_type};
use crate::protocol::params::Params;
use crate::store::Client;
use jsonwebtoken::Validation;
use serde_json::Value;

/// The longest a request object may live (from now to its `exp`).
const MAX_LIFETIME_SECS: i64 = 3600;
/// The JWT's own claims, not parameters of the request.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];
/// RFC 9101 §10.8: the media type a request object should declare (`typ`).
const TYP: &str = "oauth-authz-req+jwt";

/// The parameters of `client`'s request object `jwt`: signed with one of its registered keys
/// (§6.1), `iss` the client and `aud` this provider (`issuer`), in date and living at most an
/// hour, its `client_id` the client (§5), and no `request` or `request_uri` inside (§4).
/// Strings are taken as they are, numbers and booleans as text, objects (`claims`) as JSON;
/// arrays and nulls are refused. The error says why, for the client's developer.
pub fn parameters(
    issuer: &str,
    client: &Client,
    jwt: &str,
    now: i64,
) -> Result<Params, &'static str> {
    let (key, alg) = client_key(client, jwt).ok_or(
        "it is not signed with one of the client's registered keys (RS256, ES256 or EdDSA)",
    )?;
    let typ = jsonwebtoken::decode_header(jwt).ok().and_then(|h| h.typ);
    if typ.is_some_and(|t| !is_media_type(&t, TYP) && !is_media_type(&t, "JWT")) {
        return Err("its typ is neither oauth-authz-req+jwt nor JWT");
    }
    let mut validation = Validation::new(alg);
    validation.validate_exp = false; // checked below on the injected clock
    validation.set_required_spec_claims(&["iss", "aud", "exp"]);
    validation.set_issuer(&[&client.client_id]);
    validation.set_audience(&[issuer]);
    let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(jwt, &key, &validation)
        .map_err(
            |_| "its signature, iss or aud does not verify (iss: the client; aud: the issuer)",
        )?
        .claims;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp <= now || exp > now + MAX_LIFETIME_SECS {
        return Err("it has expired, or lives longer than an hour");
    }
    if claims
        .get("nbf")
        .is_some_and(|nbf| nbf.as_i64().is_none_or(|nbf| nbf > now + 60))
    {
        return Err("it is not valid yet (nbf)");
    }
    if claims.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err("its client_id is missing or not the client's");
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err("it carries request or request_uri");
    }
    // A JWT by the client about itself is a client assertion (RFC 7523 §3), and travels in no
    // browser: a request object must never be mistaken for one, nor one for it.
    if claims.get("sub").and_then(Value::as_str) == Some(client.client_id.as_str()) {
        return Err("its sub is the client (a client assertion is not a request object)");
    }
    let mut pairs = Vec::with_capacity(claims.len());
    for (name, value) in claims {
        if JWT_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(_) => value.to_string(),
            Value::Array(_) | Value::Null => {
                return Err("a parameter in it is an array or null: each must be one value");
            }
        };
        pairs.push((name, text));
    }
    Params::from_pairs(pairs).map_err(|_| "it holds too many parameters, or a NUL character")
}
