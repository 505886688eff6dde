//! Server-side sessions for Gatehouse, shared by the provider (its SSO session) and the sample
//! relying party (its local session).
//!
//! Why our own crate and not `tower-sessions`: its store crates still pin sqlx 0.8 and
//! tower-sessions-core 0.14, and the behaviour we need goes beyond a key-value
//! bag: a public handle (the OIDC `sid`) that survives id regeneration, indexes by user and by an
//! external key, expiry enforced in the store query itself, a bounded touch rate, and every
//! session end reported as an event.
//!
//! The pieces:
//! - [`Sessions`]: the rules (id generation, idle and absolute expiry, touch interval,
//!   regeneration, revocation) over any [`SessionStore`] backend.
//! - Backends: [`MemoryStore`] (one process, lost on restart), [`SqlStore`] (SQLite or
//!   PostgreSQL through a [`Db`]) and [`RedisStore`].
//! - [`CookiePolicy`]: the session cookie's name and attributes, in one place.
//! - [`SessionId`]: the secret the cookie carries, never logged, stored only as its hash.
//! - CSRF: every session carries a token ([`Session::csrf_token`]) checked in constant time by
//!   [`Session::verify_csrf`].
//! - [`SessionConfig`]: the session settings both servers read.
//!
//! Time comes from the injected `infra::Clock`, so expiry is tested without sleeping; the SQL
//! backend runs on the `infra::Db` of the program that uses it.

pub mod config;
mod cookie;
mod id;
mod memory;
mod model;
pub mod redis_conn;
mod redis_store;
mod redis_url;
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{RememberConfig, SessionBackend, SessionConfig};
pub use cookie::CookiePolicy;
pub use id::SessionId;
pub use memory::MemoryStore;
pub use model::{EndCause, NewSession, Session, SessionEnd, SessionPolicy, StoredSession};
pub use redis_store::RedisStore;
pub use sql::SqlStore;
pub use store::{
    SessionInfo, SessionStore, Sessions, SignInPlan, StoreError, external_marker, user_marker,
};
