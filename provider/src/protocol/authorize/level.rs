//! The level of sign-in a request needs (`acr`, OIDC Core §2), and step-up: a signed-in
//! session below it is kept, and only the missing factor is asked.
//!
//! A request names a level with `acr_values` (OIDC Core §3.1.2.1: voluntary) or with an
//! `acr` claim in `claims` (§5.5.1.1: essential when it says so). A client registered with
//! `default_acr_values` asks that level when its request names none (OIDC Dynamic Client
//! Registration §2); one an operator marked `require_mfa` always needs two factors, whatever
//! its requests say. A voluntary level the person cannot reach (their account has no second
//! factor) is not an error: the ID token's `acr` says what was reached, and the app decides.
//! An essential one is (OpenID Connect Core Unmet Authentication Requirements 1.0), and is
//! answered with one of the values it named ([`AcrRequest::answer`]).

use crate::context::{Ctx, SystemError};
use crate::protocol::params::Params;
use crate::store::Client;
use crate::types::{AuthorizeErrorCode, Level};
use crate::users::{self, second_factor};
use serde::{Deserialize, Serialize};
use sessions::Session;
use std::borrow::Cow;

/// The levels a request (or its client) asks for: ours among those it names, in its order of
/// preference (OIDC Core §3.1.2.1), never empty.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcrRequest {
    pub levels: Vec<Level>,
    /// Reaching none of them is an error (`unmet_authentication_requirements`), and the
    /// `acr` answered is one of them (OIDC Core §5.5.1.1), not merely the level reached.
    pub essential: bool,
}

impl AcrRequest {
    fn new(levels: Vec<Level>, essential: bool) -> Option<Self> {
        (!levels.is_empty()).then_some(Self { levels, essential })
    }

    /// The level asked for first: step-up aims at it.
    pub fn preferred(&self) -> Level {
        self.levels.first().copied().unwrap_or(Level::Pwd)
    }

    /// The lowest level that will do.
    fn lowest(&self) -> Level {
        self.levels.iter().copied().min().unwrap_or(Level::Pwd)
    }

    /// The `acr` to state for a sign-in that `reached`: for an essential request, the first
    /// of its levels that sign-in satisfies (OIDC Core §5.5.1.1); otherwise what it reached.
    pub fn answer(&self, reached: Level) -> Level {
        if !self.essential {
            return reached;
        }
        self.levels
            .iter()
            .copied()
            .find(|l| *l <= reached)
            .unwrap_or(reached)
    }
}

/// Our levels among `values`, in their order, each once; others are not ours and are passed
/// over.
fn known<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Level> {
    let mut levels = Vec::new();
    for level in values.into_iter().filter_map(Level::parse) {
        if !levels.contains(&level) {
            levels.push(level);
        }
    }
    levels
}

/// What the request's `claims` (OIDC Core §5.5) and `acr_values` ask of the sign-in. The
/// `acr` member of `claims.id_token` wins over `acr_values`; the other claims it names are
/// answered by the scopes as always (§5.5: a claim asked for may be left out). An essential
/// `acr` none of whose values is ours cannot be met: refused here.
pub fn requested(
    params: &Params,
) -> Result<Option<AcrRequest>, (AuthorizeErrorCode, Cow<'static, str>)> {
    let invalid = |why: &'static str| (AuthorizeErrorCode::InvalidRequest, Cow::Borrowed(why));
    if let Some(claims) = params.get("claims") {
        let claims: serde_json::Value =
            serde_json::from_str(claims).map_err(|_| invalid("claims is not a JSON object"))?;
        if !claims.is_object() {
            return Err(invalid("claims is not a JSON object"));
        }
        match claims.pointer("/id_token/acr") {
            None | Some(serde_json::Value::Null) => {}
            Some(acr) => return claimed(acr),
        }
    }
    let asked = params.get("acr_values").unwrap_or("");
    Ok(AcrRequest::new(known(asked.split(' ')), false))
}

/// An `acr` member of `claims` (OIDC Core §5.5.1): `essential`, and `value` or `values`.
fn claimed(
    acr: &serde_json::Value,
) -> Result<Option<AcrRequest>, (AuthorizeErrorCode, Cow<'static, str>)> {
    let invalid = |why: &'static str| (AuthorizeErrorCode::InvalidRequest, Cow::Borrowed(why));
    let Some(acr) = acr.as_object() else {
        return Err(invalid("the acr claim request is not an object"));
    };
    let essential = match acr.get("essential") {
        None | Some(serde_json::Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid("essential is not a boolean"))?,
    };
    let mut values: Vec<&str> = Vec::new();
    if let Some(v) = acr.get("value") {
        values.push(
            v.as_str()
                .ok_or_else(|| invalid("the acr value is not a string"))?,
        );
    }
    if let Some(vs) = acr.get("values") {
        let vs = vs
            .as_array()
            .ok_or_else(|| invalid("the acr values are not a list"))?;
        for v in vs {
            values.push(
                v.as_str()
                    .ok_or_else(|| invalid("an acr value is not a string"))?,
            );
        }
    }
    if values.is_empty() {
        // Any level will do: the claim is returned whatever was reached.
        return Ok(None);
    }
    match AcrRequest::new(known(values), essential) {
        None if essential => Err((
            AuthorizeErrorCode::UnmetAuthenticationRequirements,
            Cow::Borrowed("none of the essential acr values is one this provider supports"),
        )),
        asked => Ok(asked),
    }
}

/// What a request that `asked` needs at `client` as the client is registered now: two
/// factors if an operator requires them, else what the request asked, else the client's
/// default.
pub fn required(asked: Option<&AcrRequest>, client: &Client) -> Option<AcrRequest> {
    if client.require_mfa {
        return AcrRequest::new(vec![Level::Mfa], true);
    }
    asked
        .cloned()
        .or_else(|| AcrRequest::new(client.default_acr_values.clone(), false))
}

/// Whether a signed-in session reaches the level a request needs at `client`.
#[derive(Debug, PartialEq, Eq)]
pub enum StepUp {
    /// It does (or the level was voluntary, and the account has no factor to add).
    Reached,
    /// It does not, and the account has the missing factor: ask for it (the session is kept).
    /// `optional`: the level reached will do if nobody can be asked (`prompt=none`).
    Ask { optional: bool },
    /// It does not, the level is essential, and the account has no factor to add.
    Unmet,
}

/// [`StepUp`] for `session` and a request that `asked` ([`required`]) at `client`.
pub async fn step_up(
    ctx: &Ctx,
    asked: Option<&AcrRequest>,
    client: &Client,
    session: &Session,
) -> Result<StepUp, SystemError> {
    let Some(need) = required(asked, client) else {
        return Ok(StepUp::Reached);
    };
    let reached = users::methods_of(session).level();
    if reached >= need.preferred() {
        return Ok(StepUp::Reached);
    }
    let will_do = !need.essential || reached >= need.lowest();
    let factor = match session.user_id.as_deref() {
        Some(user_id) => second_factor::factors(&ctx.store, user_id).await?.any(),
        None => false,
    };
    Ok(match (factor, will_do) {
        (true, optional) => StepUp::Ask { optional },
        (false, true) => StepUp::Reached,
        (false, false) => StepUp::Unmet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Params::parse(body.as_bytes()).unwrap()
    }

    fn asked(pairs: &[(&str, &str)]) -> Option<AcrRequest> {
        requested(&params(pairs)).unwrap()
    }

    const MFA: &str = "urn:gatehouse:acr:mfa";

    #[test]
    fn acr_values_are_voluntary_and_ours_are_kept_in_order() {
        assert_eq!(asked(&[]), None);
        assert_eq!(asked(&[("acr_values", "urn:other:gold")]), None);
        let values =
            "urn:other:gold urn:gatehouse:acr:mfa urn:gatehouse:acr:pwd urn:gatehouse:acr:mfa";
        let want = AcrRequest {
            levels: vec![Level::Mfa, Level::Pwd],
            essential: false,
        };
        assert_eq!(asked(&[("acr_values", values)]), Some(want.clone()));
        assert_eq!(want.preferred(), Level::Mfa);
        assert_eq!(
            want.answer(Level::Pwd),
            Level::Pwd,
            "voluntary: what was reached"
        );
    }

    #[test]
    fn an_essential_acr_claim_wins_over_acr_values_and_is_answered_with_one_of_its_values() {
        let claims = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{MFA}"]}}}}}}"#);
        let got = asked(&[("claims", &claims), ("acr_values", "urn:gatehouse:acr:pwd")]);
        assert_eq!(
            got,
            Some(AcrRequest {
                levels: vec![Level::Mfa],
                essential: true
            })
        );
        // OIDC Core §5.5.1.1: an essential acr is answered with one of the values asked.
        let pwd = r#"{"id_token":{"acr":{"essential":true,"value":"urn:gatehouse:acr:pwd"}}}"#;
        let pwd = asked(&[("claims", pwd)]).unwrap();
        assert_eq!(pwd.answer(Level::Mfa), Level::Pwd);
        let one = format!(r#"{{"id_token":{{"acr":{{"value":"{MFA}"}}}}}}"#);
        assert_eq!(asked(&[("claims", &one)]).map(|a| a.essential), Some(false));
        // Any level: nothing is required.
        let any = r#"{"id_token":{"acr":{"essential":true}},"userinfo":{"email":null}}"#;
        assert_eq!(asked(&[("claims", any)]), None);
        let null = r#"{"id_token":{"acr":null}}"#;
        assert_eq!(
            asked(&[("claims", null), ("acr_values", MFA)]).map(|a| a.preferred()),
            Some(Level::Mfa)
        );
    }

    #[test]
    fn malformed_claims_and_unknown_essential_levels_are_refused() {
        for bad in [
            "not json",
            "[1]",
            r#"{"id_token":{"acr":"x"}}"#,
            r#"{"id_token":{"acr":{"essential":"yes","value":"x"}}}"#,
            r#"{"id_token":{"acr":{"values":"x"}}}"#,
            r#"{"id_token":{"acr":{"values":[1]}}}"#,
        ] {
            let refused = requested(&params(&[("claims", bad)])).unwrap_err();
            assert_eq!(refused.0, AuthorizeErrorCode::InvalidRequest, "{bad}");
        }
        let unknown = r#"{"id_token":{"acr":{"essential":true,"values":["urn:other:gold"]}}}"#;
        let refused = requested(&params(&[("claims", unknown)])).unwrap_err();
        assert_eq!(
            refused.0,
            AuthorizeErrorCode::UnmetAuthenticationRequirements
        );
        let voluntary = r#"{"id_token":{"acr":{"values":["urn:other:gold"]}}}"#;
        assert_eq!(asked(&[("claims", voluntary)]), None);
    }
}
