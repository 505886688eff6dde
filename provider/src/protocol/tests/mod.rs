//! Unit tests of the protocol rules, each against a fresh context: a SQLite database in a
//! temporary directory, sessions in memory, the injected clock. No server, no HTTP. Clients are
//! registered through the registration rules, like everywhere else.

/// Runs each scenario on SQLite (sessions in memory) and on PostgreSQL (sessions in Redis when
/// available): `scenario: sqlite_test_name, postgres_test_name;`.
macro_rules! on_both_databases {
    ($($scenario:ident: $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            $scenario(world().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            let Some(ctx) = testing::postgres_ctx(stringify!($postgres)).await else {
                return;
            };
            $scenario(world_on(ctx).await).await;
        }
    )*};
}

mod apis;
mod apps;
mod authorize;
mod client_auth;
mod device;
mod dpop;
mod durable;
mod end_session;
mod exchange;
mod pushed;
mod races;
mod registrants;
mod registration_endpoint;
mod resources;
mod token;

use super::authorize::Next;
use super::params::Params;
use super::registration::{self, ClientMetadata, Registrant};
use crate::context::testing::{self, TestCtx};
use crate::store::Client;
use crate::types::{AuthMethod, GrantType};
use sessions::{NewSession, Session};

/// A PKCE verifier and its S256 challenge (RFC 7636 Appendix B).
pub(super) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(super) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub(super) const REDIRECT: &str = "https://app.example/cb";
pub(super) const POST_LOGOUT: &str = "https://app.example/bye";

/// A provider with users `alice` and `bob`, and clients:
/// - `first`: first-party, code and refresh tokens, secret `first-secret`;
/// - `third`: third-party (asks for consent), code and refresh tokens, secret `third-secret`;
/// - `service`: `client_credentials` only, secret `service-secret`;
/// - `public`: no secret (PKCE only), code flow.
pub(super) struct World {
    pub ctx: TestCtx,
    pub alice: String,
    pub bob: String,
}

pub(super) async fn world() -> World {
    world_on(testing::ctx().await).await
}

/// [`world`] on the given context (another database).
pub(super) async fn world_on(ctx: TestCtx) -> World {
    let now = ctx.clock.unix();
    let alice = crate::users::create_user(&ctx.store, "alice", "wonderland", now)
        .await
        .unwrap()
        .id;
    let bob = crate::users::create_user(&ctx.store, "bob", "builder", now)
        .await
        .unwrap()
        .id;
    let code_and_refresh = [GrantType::AuthorizationCode, GrantType::RefreshToken];
    for (id, first_party) in [("first", true), ("third", false)] {
        register(
            &ctx,
            id,
            &code_and_refresh,
            AuthMethod::ClientSecretBasic,
            first_party,
        )
        .await;
    }
    register(
        &ctx,
        "service",
        &[GrantType::ClientCredentials],
        AuthMethod::ClientSecretBasic,
        true,
    )
    .await;
    register(
        &ctx,
        "public",
        &[GrantType::AuthorizationCode],
        AuthMethod::None,
        true,
    )
    .await;
    World { ctx, alice, bob }
}

pub(super) async fn register(
    ctx: &TestCtx,
    id: &str,
    grants: &[GrantType],
    method: AuthMethod,
    first_party: bool,
) {
    let metadata = ClientMetadata {
        client_name: Some(format!("App {id}")),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: Some(vec![POST_LOGOUT.into()]),
        grant_types: Some(grants.iter().map(|g| g.as_str().to_owned()).collect()),
        token_endpoint_auth_method: Some(method.as_str().into()),
        ..ClientMetadata::default()
    };
    let who = Registrant {
        client_id: Some(id.into()),
        client_secret: Some(format!("{id}-secret")),
        first_party,
        ..Registrant::default()
    };
    let valid = metadata.validate(&ctx.outbound).unwrap();
    registration::register(&ctx.store, valid, &who, ctx.clock.unix())
        .await
        .unwrap();
}

impl World {
    pub(super) async fn client(&self, id: &str) -> Client {
        self.ctx.store.client(id).await.unwrap().unwrap()
    }

    /// Changes client `id`'s registration through the rules (RFC 7592 style: its metadata,
    /// `edit`ed, written whole).
    pub(super) async fn reregister(&self, id: &str, edit: impl FnOnce(&mut ClientMetadata)) {
        let client = self.client(id).await;
        let mut metadata = registration::metadata_of(&client);
        edit(&mut metadata);
        let valid = metadata.validate(&self.ctx.outbound).unwrap();
        let now = self.ctx.clock.unix();
        registration::update(&self.ctx.store, client, valid, None, now)
            .await
            .unwrap();
    }

    /// A browser session signed in as `user_id`.
    pub(super) async fn signed_in(&self, user_id: &str) -> Session {
        let sessions = &self.ctx.sessions;
        let mut s = sessions.create(NewSession::default()).await.unwrap();
        sessions.authenticate(&mut s, user_id).await.unwrap();
        s
    }

    /// A code for `client_id` through `session` (the client may not need consent).
    pub(super) async fn code(&self, session: &Session, client_id: &str, scope: &str) -> String {
        match self.try_code(session, client_id, scope).await {
            Ok(code) => code,
            Err(other) => panic!("no code: {other}"),
        }
    }

    /// The code the authorization request `params` comes to through `session`.
    pub(super) async fn code_for(&self, session: &Session, params: &Params) -> String {
        match super::authorize::authorize(&self.ctx, params, Some(session)).await {
            Ok(Next::Code(c)) => c.code,
            other => panic!("no code: {other:?}"),
        }
    }

    /// A code for `client_id` through `session`, or what the authorization request came to
    /// instead.
    pub(super) async fn try_code(
        &self,
        session: &Session,
        client_id: &str,
        scope: &str,
    ) -> Result<String, String> {
        let params = authorize_params(client_id, &[("scope", scope)]);
        match super::authorize::authorize(&self.ctx, &params, Some(session)).await {
            Ok(Next::Code(c)) => Ok(c.code),
            other => Err(format!("{other:?}")),
        }
    }
}

/// An authorization request for `client_id`, the usual parameters overridden by `extra` (an
/// empty value removes one).
pub(super) fn authorize_params(client_id: &str, extra: &[(&str, &str)]) -> Params {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    form(&pairs)
}

/// Parameters as a form would carry them.
pub(super) fn form(pairs: &[(&str, &str)]) -> Params {
    let mut encoded = url::form_urlencoded::Serializer::new(String::new());
    encoded.extend_pairs(pairs);
    Params::parse(encoded.finish().as_bytes()).unwrap()
}
