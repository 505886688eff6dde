//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests (query or body).
//!
//! Written here rather than taken from `serde_urlencoded` because the protocol needs what it
//! does not give: a repeated parameter is an error (RFC 6749 §3.1), an empty value counts as
//! absent (RFC 6749 §3.1), and bad percent-encoding or invalid UTF-8 is refused instead of
//! being silently replaced.

use percent_encoding::percent_decode;
use std::collections::HashMap;

/// At most this many parameters are read (hostile requests send thousands).
const MAX_PARAMS: usize = 100;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("parameter {0} is repeated")]
    Repeated(String),
    #[error("a parameter is not valid UTF-8 or not well percent-encoded")]
    Encoding,
    #[error("too many parameters")]
    TooMany,
}

/// Parsed parameters: name → value, each name at most once.
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    /// Parses; repeated names are remembered (see [`Params::check_repeated`]) so that the
    /// authorization endpoint can first check the client and redirect URI, and report the
    /// error to the right place.
    pub fn parse(raw: &[u8]) -> Result<Self, ParamsError> {
        let mut p = Self::default();
        for (i, pair) in raw
            .split(|b| *b == b'&')
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            if i >= MAX_PARAMS {
                return Err(ParamsError::TooMany);
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            p.add(decode(name)?, decode(value)?);
        }
        Ok(p)
    }

    /// Adds one parameter; a name sent before is a repetition (its first value stands).
    fn add(&mut self, name: String, value: String) {
        if self.map.contains_key(&name) {
            if !self.repeated.contains(&name) {
                self.repeated.push(name);
            }
            return;
        }
        self.map.insert(name, value);
    }

    /// The value, or `None` when absent or empty (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// The first repeated parameter, if any.
    pub fn check_repeated(&self) -> Result<(), ParamsError> {
        self.check_repeated_except(&[])
    }

    /// The first repeated parameter other than those of `left`, if any (those are left for
    /// the rules to judge).
    pub fn check_repeated_except(&self, left: &[&str]) -> Result<(), ParamsError> {
        match self.repeated.iter().find(|r| !left.contains(&r.as_str())) {
            Some(name) => Err(ParamsError::Repeated(name.clone())),
            None => Ok(()),
        }
    }

    /// Parameters from name and value pairs (a request object's members, RFC 9101 §4), held to
    /// [`Params::parse`]'s rules: at most [`MAX_PARAMS`], no NUL, each name once (a later value
    /// is taken as a repetition).
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ParamsError> {
        let mut p = Self::default();
        for (i, (name, value)) in pairs.into_iter().enumerate() {
            if i >= MAX_PARAMS {
                return Err(ParamsError::TooMany);
            }
            if name.contains('\0') || value.contains('\0') {
                return Err(ParamsError::Encoding);
            }
            p.add(name, value);
        }
        Ok(p)
    }

    /// These parameters but those named in `names`.
    pub fn without(&self, names: &[&str]) -> Self {
        Self {
            map: self
                .map
                .iter()
                .filter(|(n, _)| !names.contains(&n.as_str()))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            repeated: self
                .repeated
                .iter()
                .filter(|n| !names.contains(&n.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// These parameters with `name` set to `value` (whatever it was).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.repeated.retain(|n| n != name);
        self.map.insert(name.to_owned(), value.to_owned());
        self
    }

    /// As a form, in name order (to be stored, and parsed back by [`Params::parse`]); a
    /// repeated parameter cannot be written, so there must be none.
    pub fn encode(&self) -> Result<String, ParamsError> {
        if let Some(name) = self.repeated.first() {
            return Err(ParamsError::Repeated(name.clone()));
        }
        let mut pairs: Vec<(&String, &String)> = self.map.iter().collect();
        pairs.sort();
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.extend_pairs(pairs);
        Ok(out.finish())
    }
}

fn decode(raw: &[u8]) -> Result<String, ParamsError> {
    // Bad percent-encoding: a '%' not followed by two hex digits.
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let ok = raw
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return Err(ParamsError::Encoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let decoded: Vec<u8> = percent_decode(&plus_as_space).collect();
    let text = String::from_utf8(decoded).map_err(|_| ParamsError::Encoding)?;
    if text.contains('\0') {
        return Err(ParamsError::Encoding);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_written_reads_back_the_same() {
        let p = Params::from_pairs([
            ("b".to_owned(), "a b&c=d%".to_owned()),
            ("a".to_owned(), "é+/?".to_owned()),
        ])
        .unwrap();
        let text = p.encode().unwrap();
        assert_eq!(text, "a=%C3%A9%2B%2F%3F&b=a+b%26c%3Dd%25");
        let back = Params::parse(text.as_bytes()).unwrap();
        assert_eq!(back.get("a"), Some("é+/?"));
        assert_eq!(back.get("b"), Some("a b&c=d%"));
        assert_eq!(back.without(&["a"]).get("a"), None);
        let twice = Params::from_pairs([("a".into(), "1".into()), ("a".into(), "2".into())]);
        let twice = twice.unwrap();
        assert!(twice.is_repeated("a") && twice.encode().is_err());
        // Held to parse's rules.
        assert!(Params::from_pairs([("a".into(), "x\0y".into())]).is_err());
        let many = (0..=MAX_PARAMS).map(|i| (format!("p{i}"), "v".to_owned()));
        assert_eq!(Params::from_pairs(many).unwrap_err(), ParamsError::TooMany);
    }

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse(b"a=1&b=hello+world&c=%2Fx%3Fy&empty=&flag").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("hello world"));
        assert_eq!(p.get("c"), Some("/x?y"));
        assert_eq!(p.get("empty"), None, "empty counts as absent");
        assert_eq!(p.get("flag"), None);
        assert!(p.check_repeated().is_ok());
    }

    #[test]
    fn repeated_is_reported() {
        let p = Params::parse(b"state=a&state=b&x=1").unwrap();
        assert!(p.is_repeated("state"));
        assert_eq!(
            p.check_repeated(),
            Err(ParamsError::Repeated("state".into()))
        );
        assert_eq!(p.get("state"), Some("a"));
    }

    #[test]
    fn bad_encoding_is_refused() {
        assert_eq!(Params::parse(b"a=%zz").unwrap_err(), ParamsError::Encoding);
        assert_eq!(Params::parse(b"a=%4").unwrap_err(), ParamsError::Encoding);
        assert_eq!(
            Params::parse(b"a=%ff%fe").unwrap_err(),
            ParamsError::Encoding
        );
        assert_eq!(Params::parse(b"a=%00").unwrap_err(), ParamsError::Encoding);
    }

    #[test]
    fn too_many_is_refused() {
        let raw: Vec<String> = (0..5000).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            Params::parse(raw.join("&").as_bytes()).unwrap_err(),
            ParamsError::TooMany
        );
    }

    proptest::proptest! {
        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn any_bytes_parse_or_are_refused(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = Params::parse(&raw);
        }

        /// What a browser or client encodes comes back exactly, or is refused for a NUL.
        #[test]
        fn encoded_pairs_round_trip(
            pairs in proptest::collection::btree_map("[^\\x00]{1,12}", "\\PC{0,40}", 0..20)
        ) {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                form.append_pair(k, v);
            }
            let encoded = form.finish();
            match Params::parse(encoded.as_bytes()) {
                Ok(p) => {
                    proptest::prop_assert!(p.check_repeated().is_ok());
                    for (k, v) in &pairs {
                        let expected = (!v.is_empty()).then_some(v.as_str());
                        proptest::prop_assert_eq!(p.get(k), expected);
                    }
                }
                Err(e) => proptest::prop_assert!(
                    pairs.values().any(|v| v.contains('\0')),
                    "refused {encoded:?}: {e}"
                ),
            }
        }

        /// A name sent twice is always reported, whatever else the request holds.
        #[test]
        fn a_repeated_name_is_always_caught(
            name in "[a-z_]{1,10}", a in "[a-z0-9]{0,8}", b in "[a-z0-9]{0,8}",
            other in proptest::collection::vec("[A-Z]{1,5}=[a-z]{0,5}", 0..10)
        ) {
            let mut parts = other;
            parts.insert(0, format!("{name}={a}"));
            parts.push(format!("{name}={b}"));
            let p = Params::parse(parts.join("&").as_bytes()).unwrap();
            proptest::prop_assert!(p.is_repeated(&name));
        }
    }
}
