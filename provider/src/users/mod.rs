//! User accounts: password hashing ([`password`]), sign-in throttling ([`throttle`]), signing
//! in ([`sign_in`]) and out of one's own sessions ([`sign_out_session`],
//! [`sign_out_everywhere`]), the apps connected to an account and disconnecting them
//! ([`apps`]), and the operator's actions that end sessions ([`admin`]: a new password, a
//! disabled or removed account, revoked grants), second factors ([`second_factor`], [`passkeys`]), and
//! what a session remembers of how it signed in ([`methods_of`], [`password_at`]).

pub mod admin;
pub mod apps;
mod methods;
pub mod passkeys;
pub mod password;
pub mod second_factor;
mod sign_in;
mod sign_out;
pub mod throttle;

pub use methods::{methods_in, methods_of, password_at};
pub use sign_in::{
    Attempt, MAX_USERNAME_BYTES, SignIn, finish_second_factor, second_step_account, sign_in,
    sign_in_with_passkey, step_up,
};
pub use sign_out::{sign_out_everywhere, sign_out_session};

#[cfg(test)]
use crate::store::{NewUser, Store, User};

/// Creates a user with `password` (hashed here) and nothing else, for the unit tests.
#[cfg(test)]
pub(crate) async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    now: i64,
) -> anyhow::Result<User> {
    let user = NewUser {
        username: username.to_owned(),
        password_hash: password::hash(password.to_owned()).await?,
        ..NewUser::default()
    };
    Ok(store.create_user(&user, now).await?)
}
