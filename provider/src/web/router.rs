//! Every route of the provider, in one place, with the paths of `crate::paths` (the ones
//! discovery advertises and the tests use), and the layers around them.

use super::layers::{Budget, audit_context, hsts, limit_by_address, limit_uri, security_headers};
use super::oauth::{authorize, discovery, end_session, feed, register, token, userinfo};
use super::pages::{apps, consent, developer, device, login, ops, passkeys, security, sessions};
use super::state::AppState;
use crate::paths;
use axum::Router;
use axum::http::{Request, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The whole HTTP surface.
pub fn router(st: AppState) -> Router {
    let limits = st.ctx.config.limits.clone();
    let strict_transport = hsts(&st.ctx.config.issuer);
    Router::new()
        .merge(protocol_endpoints(&st))
        .merge(pages())
        .merge(passkey_sign_in(&st))
        .route(paths::STYLESHEET, get(ops::stylesheet))
        .route(paths::PASSKEY_SCRIPT, get(ops::passkey_script))
        .route(paths::HEALTHZ, get(infra::health::alive))
        .route(paths::READYZ, get(ops::readiness))
        .fallback(ops::not_found)
        .layer(from_fn(audit_context))
        .layer(from_fn(infra::metrics::track))
        .layer(security_headers())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &Response| strict_transport.clone(),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(from_fn_with_state(limits.max_uri_bytes, limit_uri))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(st)
}

/// `/metrics` alone, for the listener of its own (`metrics_listen`): the counts it shows are
/// for the operator's scraper, not the public.
pub fn metrics_router() -> Router {
    Router::new().route(paths::METRICS, get(infra::metrics::render))
}

/// The OAuth 2.0 and OpenID Connect endpoints. Those machines call are counted against their
/// address's budget before anything else is done for them.
fn protocol_endpoints(st: &AppState) -> Router<AppState> {
    let budget = |b: Budget| from_fn_with_state((st.clone(), b), limit_by_address);
    let machines = Router::new()
        .route(paths::TOKEN, post(token::issue_token))
        .route(paths::REVOCATION, post(token::revoke_token))
        .route(paths::INTROSPECTION, post(token::introspect_token))
        .route(paths::DEVICE_AUTHORIZATION, post(token::authorize_device))
        .route(paths::PUSHED_AUTHORIZATION, post(token::push_request))
        .route(paths::REVOCATION_FEED, post(feed::subscribe_feed))
        .merge(
            Router::new()
                .route(paths::REGISTRATION, post(register::register_client))
                .route(
                    paths::REGISTRATION_CLIENT,
                    get(register::read_client)
                        .put(register::update_client)
                        .delete(register::delete_client),
                )
                .route_layer(budget(Budget::Registration)),
        )
        .route_layer(budget(Budget::Machine));
    Router::new()
        .route(paths::DISCOVERY, get(discovery::show_configuration))
        .route(paths::JWKS, get(discovery::show_jwks))
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            paths::USERINFO,
            get(userinfo::show_userinfo).post(userinfo::show_userinfo_post),
        )
        .route(
            paths::END_SESSION,
            get(end_session::end_session_get).post(end_session::end_session_post),
        )
        .route(
            paths::END_SESSION_CONFIRM,
            post(end_session::confirm_logout),
        )
        .merge(machines)
}

/// Signing in with a passkey: pages' endpoints anyone with a sign-in page may call, each of
/// which writes, so counted against their address's budget.
fn passkey_sign_in(st: &AppState) -> Router<AppState> {
    Router::new()
        .route(paths::LOGIN_PASSKEY, post(passkeys::submit_passkey))
        .route(
            paths::LOGIN_PASSKEY_OPTIONS,
            post(passkeys::sign_in_options),
        )
        .route_layer(from_fn_with_state(
            (st.clone(), Budget::Passkey),
            limit_by_address,
        ))
}

/// The pages for people.
fn pages() -> Router<AppState> {
    Router::new()
        .route(paths::HOME, get(login::show_home))
        .route(
            paths::LOGIN,
            get(login::show_login).post(login::submit_login),
        )
        .route(paths::LOGIN_CODE, post(login::submit_code))
        .route(paths::LOGIN_STEP_UP, post(login::submit_step_up))
        .route(paths::SECURITY, get(security::show_security))
        .route(paths::SECURITY_TOTP, post(security::start_totp))
        .route(paths::SECURITY_TOTP_CONFIRM, post(security::confirm_totp))
        .route(paths::SECURITY_TOTP_REMOVE, post(security::remove_totp))
        .route(paths::SECURITY_PASSKEYS, post(passkeys::add_passkey))
        .route(
            paths::SECURITY_PASSKEYS_OPTIONS,
            post(passkeys::registration_options),
        )
        .route(
            paths::SECURITY_PASSKEYS_REMOVE,
            post(passkeys::remove_passkey),
        )
        .route(
            paths::CONSENT,
            get(consent::show_consent).post(consent::submit_consent),
        )
        .route(
            paths::DEVICE,
            get(device::show_device).post(device::find_device),
        )
        .route(paths::DEVICE_DECIDE, post(device::decide_device))
        .route(paths::SESSIONS, get(sessions::show_sessions))
        .route(paths::SESSIONS_REVOKE, post(sessions::revoke_session))
        .route(
            paths::SESSIONS_REVOKE_ALL,
            post(sessions::revoke_all_sessions),
        )
        .route(paths::APPS, get(apps::show_apps))
        .route(paths::APPS_DISCONNECT, post(apps::disconnect_app))
        .route(paths::DEVELOPER, get(developer::show_apps))
        .route(paths::DEVELOPER_APPS, post(developer::create_app))
        .route(paths::DEVELOPER_NEW_APP, get(developer::show_new_app))
        .route(
            paths::DEVELOPER_APP,
            get(developer::show_app).post(developer::update_app),
        )
        .route(paths::DEVELOPER_APP_ROTATE, post(developer::rotate_secret))
        .route(paths::DEVELOPER_APP_DELETE, post(developer::delete_app))
}
