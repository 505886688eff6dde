//! Conversions between the provider's values and their columns (booleans as integers, lists
//! as JSON text, protocol values as their wire names).

pub(super) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(super) fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

pub(super) fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A stored protocol value, parsed: an unknown value (written by a newer version, or by hand)
/// is a decode error the caller sees, never a silent default.
pub(super) fn decode<T>(
    what: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    parse(text).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown {what} {text:?} in the database").into())
    })
}

/// A stored list of an API's scopes, read by syntax alone (`ApiScopes`' `TryFrom`).
pub(super) fn api_scopes(text: &str) -> Result<crate::types::ApiScopes, sqlx::Error> {
    decode("API scope list", text, |s| {
        crate::types::ApiScopes::try_from(s.to_owned()).ok()
    })
}
