//! The OAuth 2.0 and OpenID Connect endpoints: each handler translates HTTP to a rule of
//! `protocol` and its outcome back.

pub mod authorize;
pub mod discovery;
pub mod end_session;
pub mod feed;
pub mod register;
pub mod token;
pub mod userinfo;
