//! The configuration layering both programs use, and the duration format their settings are
//! written in.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;

/// The layering of both programs: built-in `defaults`, then `base` (the demo's settings, or
/// nothing), then the optional TOML `file` in the working directory, then environment
/// variables with `env_prefix` (`__` nests: `PREFIX_SESSION__IDLE_TIMEOUT`).
pub fn layered<T: Serialize>(
    defaults: T,
    base: impl figment::Provider,
    file: &str,
    env_prefix: &str,
) -> Figment {
    Figment::from(Serialized::defaults(defaults))
        .merge(base)
        .merge(Toml::file(file))
        .merge(Env::prefixed(env_prefix).split("__"))
}

/// Durations written as `30m`, `12h`, `5s` (humantime).
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(serde::de::Error::custom)
    }
}

/// Optional durations, same format.
pub mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| humantime::parse_duration(t.trim()).map_err(serde::de::Error::custom))
            .transpose()
    }
}
