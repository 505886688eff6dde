//! The device page (`/device`, RFC 8628 §3.3): a signed-in person types the code a device
//! shows (or follows the link with it, and still confirms it), sees which app asks for what,
//! and allows or denies it. The rules are `protocol::device`.

use super::consent::describe;
use super::login::wait_message;
use crate::paths;
use crate::protocol::consent::Decision;
use crate::protocol::device::{self, Answer, Decided, DeviceRequest, Found, UserCode};
use crate::protocol::error::PageError;
use crate::web::error::no_store;
use crate::web::extract::{ClientMeta, Page, PostedForm, Query, SignedIn};
use crate::web::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Template, WebTemplate)]
#[template(path = "provider/device.html")]
struct DevicePage {
    csrf_token: String,
    username: String,
    /// The entry form: what is in the field, and why the last code did not do.
    typed: String,
    error: Option<String>,
    confirm: Option<Confirm>,
    done: Option<Done>,
}

/// The request found, to confirm.
struct Confirm {
    client_name: String,
    scopes: Vec<String>,
    /// As the device shows it, and as the form sends it back.
    user_code: String,
    canonical: String,
    /// Not an app of the provider's operator: its name is whatever its developer chose.
    third_party: bool,
}

struct Done {
    approved: bool,
    client_name: String,
}

impl DevicePage {
    async fn new(st: &AppState, me: &SignedIn) -> Result<Self, PageError> {
        let user = st.ctx.store.user_by_id(&me.user_id).await?;
        Ok(Self {
            csrf_token: me.session.csrf_token().to_owned(),
            username: user.map(|u| u.username).unwrap_or_default(),
            typed: String::new(),
            error: None,
            confirm: None,
            done: None,
        })
    }
}

/// To the sign-in page, back here afterwards with the code (`again`: a new sign-in although
/// one is there, for the level the app needs).
fn sign_in_first(code: Option<&UserCode>, again: bool) -> Response {
    let page = device::page(code);
    let next: String = url::form_urlencoded::byte_serialize(page.as_bytes()).collect();
    let again = if again { "&again=1" } else { "" };
    let to = format!("{}?next={next}{again}", paths::LOGIN);
    (no_store(), Redirect::to(&to)).into_response()
}

/// `GET /device`: the entry form, with the code of the link filled in (RFC 8628 §3.3.1).
pub async fn show_device(
    State(st): State<AppState>,
    me: Option<SignedIn>,
    Query(query, _): Query<Page>,
) -> Result<Response, PageError> {
    let code = query.get("user_code").and_then(UserCode::parse);
    let Some(me) = me else {
        return Ok(sign_in_first(code.as_ref(), false));
    };
    let mut page = DevicePage::new(&st, &me).await?;
    page.typed = code.map(|c| c.display()).unwrap_or_default();
    Ok((no_store(), page).into_response())
}

/// `POST /device`: the code typed; the request it names, to confirm.
pub async fn find_device(
    State(st): State<AppState>,
    meta: ClientMeta,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let Some((me, form)) = posted.signed_in()? else {
        return Ok(sign_in_first(None, false));
    };
    let typed = form.get("user_code").unwrap_or("");
    let req = match looked_up(&st, &me, &meta, typed).await? {
        Ok(req) => req,
        Err(refused) => return Ok(refused),
    };
    let mut page = DevicePage::new(&st, &me).await?;
    page.confirm = Some(Confirm {
        scopes: req.scope.iter().map(|s| describe(s).to_owned()).collect(),
        client_name: req.client.name,
        user_code: req.user_code.display(),
        canonical: req.user_code.as_str().to_owned(),
        third_party: !req.client.first_party,
    });
    Ok((no_store(), page).into_response())
}

/// `POST /device/decide`: the answer to the request confirmed.
pub async fn decide_device(
    State(st): State<AppState>,
    meta: ClientMeta,
    posted: PostedForm,
) -> Result<Response, PageError> {
    let Some((me, form)) = posted.signed_in()? else {
        return Ok(sign_in_first(None, false));
    };
    let answer = match Decision::parse(form.get("decision"))? {
        Decision::Allow => Answer::Approve,
        Decision::Deny => Answer::Deny,
    };
    let typed = form.get("user_code").unwrap_or("");
    let req = match looked_up(&st, &me, &meta, typed).await? {
        Ok(req) => req,
        Err(refused) => return Ok(refused),
    };
    let approved = match device::decide(&st.ctx, &me.session, &req, answer).await? {
        Decided::Approved => true,
        Decided::Denied => false,
        Decided::SignInAgain => return Ok(sign_in_first(Some(&req.user_code), true)),
        Decided::TooLate => return entry(&st, &me, typed, TOO_LATE, StatusCode::CONFLICT).await,
    };
    let mut page = DevicePage::new(&st, &me).await?;
    page.done = Some(Done {
        approved,
        client_name: req.client.name,
    });
    Ok((no_store(), page).into_response())
}

const NOT_FOUND: &str = "That code is not valid: it may be mistyped, expired or already used. \
                         Check the code your device shows.";
const TOO_LATE: &str = "That code was answered already, or has expired. Start again on your \
                        device.";

/// The open request `typed` names, or the entry page again saying why not.
async fn looked_up(
    st: &AppState,
    me: &SignedIn,
    meta: &ClientMeta,
    typed: &str,
) -> Result<Result<DeviceRequest, Response>, PageError> {
    let found = device::find(&st.ctx, &me.user_id, meta.key.as_deref(), typed).await?;
    Ok(match found {
        Found::Request(req) => Ok(*req),
        Found::Nothing => Err(entry(st, me, typed, NOT_FOUND, StatusCode::BAD_REQUEST).await?),
        Found::Throttled { wait_secs } => {
            let why = wait_message("Too many codes that were not valid.", wait_secs);
            let mut page = entry(st, me, typed, &why, StatusCode::TOO_MANY_REQUESTS).await?;
            let retry = HeaderValue::from(wait_secs);
            page.headers_mut().insert(header::RETRY_AFTER, retry);
            Err(page)
        }
    })
}

/// The entry form again, with what was typed and why it did not do.
async fn entry(
    st: &AppState,
    me: &SignedIn,
    typed: &str,
    why: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut page = DevicePage::new(st, me).await?;
    page.typed = typed.chars().take(12).collect();
    page.error = Some(why.to_owned());
    Ok((status, no_store(), page).into_response())
}
