//! The errors of each boundary, one type per wire format, with the codes their specifications
//! define. Nothing here knows HTTP: the web layer renders each type once (`web::error`).
//!
//! - [`PageError`]: a person's browser gets an HTML page.
//! - [`AuthorizeError`]: the authorization endpoint sends the error back to the client's
//!   redirect URI, unless the client or the redirect URI itself is in doubt (a page).
//! - [`TokenError`]: the token, revocation and introspection endpoints answer JSON (RFC 6749
//!   §5.2).
//! - [`BearerError`]: protected resources answer with `WWW-Authenticate: Bearer` (RFC 6750 §3).
//! - [`RegistrationError`]: the registration endpoints answer JSON (RFC 7591 §3.2.2), or a
//!   bearer error for their access tokens.
//!
//! Each carries [`SystemError`] for what fails beneath the rules (503 or an opaque 500).

use super::registration::metadata::MetadataError;
use crate::context::SystemError;
use crate::types::{AuthorizeErrorCode, BearerErrorCode, TokenErrorCode};
use std::borrow::Cow;

/// An error on a page meant for a person.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The page is for a signed-in person: sign in first, then come back to `next` (one of
    /// our own paths).
    #[error("sign in first")]
    SignInFirst { next: &'static str },
    /// A sensitive action, and the password was typed too long ago (`fresh_sign_in`): type it
    /// again, then come back to `next`.
    #[error("sign in again")]
    SignInAgain { next: &'static str },
    /// Over a per-address budget: try again after this many seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    #[error(transparent)]
    System(#[from] SystemError),
}

impl PageError {
    /// A form whose CSRF token is missing, stale or another session's: refused, nothing done.
    pub fn csrf() -> Self {
        Self::Forbidden(
            "This form could not be verified (its security token is missing or stale). \
             Reload the page and try again."
                .into(),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
}

/// An error the client hears about at its redirect URI (RFC 6749 §4.1.2.1), with `state`
/// and `iss` (RFC 9207).
#[derive(Debug)]
pub struct RedirectError {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: String,
    pub code: AuthorizeErrorCode,
    pub description: String,
}

/// Authorization endpoint errors. An unknown client or an unregistered `redirect_uri` is shown
/// to the person and never redirected (RFC 6749 §4.1.2.1); everything else goes back to the
/// client.
#[derive(Debug)]
pub enum AuthorizeError {
    Page(PageError),
    Redirect(RedirectError),
}

impl From<PageError> for AuthorizeError {
    fn from(e: PageError) -> Self {
        Self::Page(e)
    }
}

impl From<SystemError> for AuthorizeError {
    fn from(e: SystemError) -> Self {
        Self::Page(e.into())
    }
}

impl From<RedirectError> for AuthorizeError {
    fn from(e: RedirectError) -> Self {
        Self::Redirect(e)
    }
}

/// `From` for the errors beneath the rules, through [`SystemError`].
macro_rules! system_from {
    ($($ty:ty),* => $target:ty) => {
        $(impl From<$ty> for $target {
            fn from(e: $ty) -> Self {
                SystemError::from(e).into()
            }
        })*
    };
}

system_from!(sqlx::Error, sessions::StoreError, crate::keys::KeyError, infra::secret::RandomError, anyhow::Error => PageError);
system_from!(sqlx::Error, sessions::StoreError, crate::keys::KeyError, infra::secret::RandomError, anyhow::Error => AuthorizeError);

/// Token endpoint errors (RFC 6749 §5.2), also those of revocation and introspection.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{code}: {description}")]
    OAuth {
        code: TokenErrorCode,
        description: Cow<'static, str>,
    },
    /// An authorization request refused at the pushed authorization request endpoint (RFC
    /// 9126 §2.3): JSON as here, with the authorization endpoint's code.
    #[error("{code}: {description}")]
    Authorization {
        code: AuthorizeErrorCode,
        description: String,
    },
    /// RFC 9449 §8 `use_dpop_nonce`: try again with this nonce in the proof (sent in the
    /// `DPoP-Nonce` header).
    #[error("use_dpop_nonce")]
    UseDpopNonce(String),
    /// Too many requests from this client or address: 429 with `Retry-After` (seconds).
    #[error("rate limited")]
    RateLimited(u64),
    #[error(transparent)]
    System(#[from] SystemError),
}

/// An authorization request's refusal, answered as JSON (a push, RFC 9126 §2.3): what the
/// authorization endpoint would show as a page is `invalid_request` here.
impl From<AuthorizeError> for TokenError {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::Redirect(r) => Self::Authorization {
                code: r.code,
                description: r.description,
            },
            AuthorizeError::Page(PageError::System(s)) => Self::System(s),
            AuthorizeError::Page(PageError::TooManyRequests { retry_after }) => {
                Self::RateLimited(retry_after)
            }
            AuthorizeError::Page(p) => Self::Authorization {
                code: AuthorizeErrorCode::InvalidRequest,
                description: p.to_string(),
            },
        }
    }
}

impl TokenError {
    pub fn new(code: TokenErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(TokenErrorCode::InvalidRequest, description)
    }

    /// 401: the client is unknown or its authentication failed (RFC 6749 §5.2).
    pub fn invalid_client() -> Self {
        Self::new(
            TokenErrorCode::InvalidClient,
            "client authentication failed",
        )
    }

    pub fn invalid_grant(description: &'static str) -> Self {
        Self::new(TokenErrorCode::InvalidGrant, description)
    }

    pub fn unauthorized_client() -> Self {
        Self::new(
            TokenErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        )
    }

    pub fn invalid_scope(description: &'static str) -> Self {
        Self::new(TokenErrorCode::InvalidScope, description)
    }

    /// RFC 8707 §2: a `resource` this request may not name.
    pub fn invalid_target(description: &'static str) -> Self {
        Self::new(TokenErrorCode::InvalidTarget, description)
    }

    /// The code, when this is a protocol error (for tests and logs).
    pub fn code(&self) -> Option<TokenErrorCode> {
        match self {
            Self::OAuth { code, .. } => Some(*code),
            _ => None,
        }
    }
}

system_from!(sqlx::Error, sessions::StoreError, crate::keys::KeyError, infra::secret::RandomError, anyhow::Error => TokenError);

/// Bearer-token errors at protected resources (RFC 6750 §3).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
    #[error("missing token")]
    Missing,
    /// No credentials at all where DPoP-bound tokens are accepted too: a bare challenge for
    /// each scheme (RFC 9449 §7.1).
    #[error("missing token")]
    MissingAnyScheme,
    #[error("{code}: {description}")]
    OAuth {
        code: BearerErrorCode,
        description: &'static str,
    },
    /// An error of a request that presented its token under the `DPoP` scheme: answered
    /// under a `DPoP` challenge, the scheme the client used (RFC 9449 §7.1).
    #[error("{code}: {description}")]
    UnderDpop {
        code: BearerErrorCode,
        description: &'static str,
    },
    /// `invalid_token` for a token bound to a DPoP key but presented otherwise: answered with
    /// a `DPoP` challenge, so that the client learns which scheme it needs (RFC 9449 §7.1).
    #[error("invalid_token: {0}")]
    NeedsDpop(&'static str),
    #[error(transparent)]
    System(#[from] SystemError),
}

impl BearerError {
    pub fn invalid_request(description: &'static str) -> Self {
        Self::OAuth {
            code: BearerErrorCode::InvalidRequest,
            description,
        }
    }

    pub fn invalid_token(description: &'static str) -> Self {
        Self::OAuth {
            code: BearerErrorCode::InvalidToken,
            description,
        }
    }

    /// The token is good but not for this resource: the `openid` scope is required (RFC 6750
    /// §3.1, OIDC Core §5.3).
    pub fn insufficient_scope() -> Self {
        Self::OAuth {
            code: BearerErrorCode::InsufficientScope,
            description: "the openid scope is required",
        }
    }

    /// This error, for a request that presented its token under the `DPoP` scheme.
    pub fn under_dpop(self) -> Self {
        match self {
            Self::OAuth { code, description } => Self::UnderDpop { code, description },
            other => other,
        }
    }

    /// The code, when this is a protocol error (for tests and logs).
    pub fn code(&self) -> Option<BearerErrorCode> {
        match self {
            Self::OAuth { code, .. } | Self::UnderDpop { code, .. } => Some(*code),
            Self::NeedsDpop(_) => Some(BearerErrorCode::InvalidToken),
            _ => None,
        }
    }
}

system_from!(sqlx::Error, sessions::StoreError, crate::keys::KeyError, infra::secret::RandomError, anyhow::Error => BearerError);

/// Errors of the registration endpoints (RFC 7591 §3.2.2, RFC 7592 §2).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A body that is not client metadata at all, or an update that breaks RFC 7592 §2.2.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// The bearer token (initial or registration access token) is missing or no good.
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// Too many registration requests from this address: 429 after so many seconds.
    #[error("rate limited")]
    RateLimited(u64),
    #[error(transparent)]
    System(#[from] SystemError),
}

system_from!(sqlx::Error, sessions::StoreError, crate::keys::KeyError, infra::secret::RandomError, anyhow::Error => RegistrationError);
