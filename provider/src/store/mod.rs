//! The provider's durable state over one `infra::Db` (the sqlx `Any` driver): SQLite by default,
//! PostgreSQL by URL. One portable SQL string per operation, `$N` placeholders; the only SQL
//! in the provider. Statements that change something go to the write pool, plain reads to
//! the read pool (on SQLite one writer connection and several readers; see `infra::Db`); the
//! reads of the hot paths (a client, a user, a code, a token, a session) go through
//! `Db::read_optional`, which on SQLite runs them on the request's own thread.

mod audit;
mod batch;
mod clients;
mod codes;
mod columns;
mod consents;
mod devices;
mod dpop;
mod factors;
mod grants;
mod handle;
mod keys;
mod leases;
mod ledger;
mod logout;
mod passkeys;
mod pending;
mod pushed;
mod resources;
mod rows;
mod script;
mod secrets;
mod sweep;
mod tokens;
mod users;

pub use audit::AuditRow;
pub use clients::{Client, ClientFlag, NewClient};
pub use codes::{AuthCode, CodeState};
pub use devices::{DEVICE_REDIRECT, DeviceRow, MAX_POLL_INTERVAL, NewDevice, Poll};
pub use factors::TotpFactor;
pub use grants::{GrantRow, Revoke};
pub use handle::{Store, is_unique_violation};
pub use keys::StoredKey;
pub use ledger::Credential;
pub use logout::{DELIVERY_RETENTION_SECS, Delivery};
pub use passkeys::{Added, Ceremony, PasskeyRow};
pub use resources::{ExchangeRule, GrantResource, NewResource, Resource};
pub use rows::Guard;
pub use rows::Insert;
pub use sweep::SWEEP_BATCH;
pub use tokens::{AccessTokenRow, RefreshTokenRow, RevokedToken};
pub use users::{NewUser, Reserved, User};
