//! The pages for people: sign-in and the account home ([`login`]), consent, the device page
//! ([`device`]), "your sessions", "connected apps", "security" (second factors,
//! [`passkeys`]), the developer console, and the operational endpoints ([`ops`]).

pub mod apps;
pub mod consent;
pub mod developer;
pub mod device;
pub mod login;
pub mod ops;
pub mod passkeys;
pub mod security;
pub mod sessions;
