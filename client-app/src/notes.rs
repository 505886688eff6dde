//! The Notes API, called from this app's server on the user's behalf (the browser never sees
//! a token): with a token addressed to the API (RFC 8707 `resource`, RFC 9068), obtained by a
//! refresh naming the API and renewed like the provider's, App A writes notes and App B reads
//! the same user's notes. The page shows what the API answered, how it validated the token
//! and in how many microseconds (the API says so in its answer), and the round trip.
//!
//! After "Sign out everywhere" the app keeps the API token it held, for one page view only,
//! in a fresh anonymous session, and presents it to the API once more when the browser comes
//! back from the provider: the page shows the API refusing it as revoked (the revocation the
//! API heard on the provider's feed), or says that it still accepts it, or that the check
//! could not tell. A sign-in started from that session instead drops the token.

use crate::AppState;
use crate::config::NotesConfig;
use crate::oidc::{Renew, SignedIn};
use crate::renewal::{renewed, user_of};
use serde_json::Value;
use sessions::{EndCause, NewSession, Session};
use std::time::{Duration, Instant};

/// The most of an API answer read (a demo API answers a few KiB at most).
const MAX_ANSWER: usize = 256 * 1024;
/// The session key of the token kept for the check after "Sign out everywhere".
const AFTER_SIGN_OUT_KEY: &str = "after_sign_out";
/// The longest note text, in characters (the API's own limit).
pub(crate) const MAX_TEXT: usize = 500;

/// The API as this app calls it.
pub(crate) struct NotesApi {
    pub config: NotesConfig,
    http: reqwest::Client,
}

/// Said when no token for the API is at hand.
const NO_TOKEN: &str = "No token for Notes could be obtained from Gatehouse just now.";
/// Said when the provider will give none to this sign-in.
const NOT_ALLOWED: &str = "Gatehouse gives this sign-in no token for Notes (it was not allowed \
    when you signed in, or Notes was registered anew since). Sign out and in again to allow it.";

/// What the API answered.
struct Answer {
    status: u16,
    body: Value,
    /// The whole call as this app saw it.
    round_trip: Duration,
}

impl Answer {
    /// Whether the API refused the token as revoked (RFC 6750 §3.1 `invalid_token`, with
    /// the resource server's description of a revoked token).
    fn revoked(&self) -> bool {
        self.status == 401
            && self.body["error"] == "invalid_token"
            && self.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("revoked"))
    }

    /// The API's error, as its JSON body states it (the Notes API's bodies repeat the
    /// `WWW-Authenticate` challenge's `error` and `error_description`).
    fn error(&self) -> String {
        let error = self.body["error"].as_str().unwrap_or("no error code");
        match self.body["error_description"].as_str() {
            Some(d) => format!("{} {error}: {d}", self.status),
            None => format!("{} {error}", self.status),
        }
    }
}

/// Why the API could not be asked or answered.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("the Notes API could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the Notes API's answer was too long")]
    TooLong,
    #[error("the Notes API's answer was not JSON")]
    NotJson,
}

impl NotesApi {
    pub(crate) fn new(config: NotesConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// One call with `token`: `GET /notes`, or `POST /notes` with `note`; within `timeout`
    /// when given (else the client's own).
    async fn call(
        &self,
        token: &str,
        note: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Answer, CallError> {
        let started = Instant::now();
        let request = match note {
            None => self.http.get(self.config.endpoint()),
            Some(text) => self
                .http
                .post(self.config.endpoint())
                .json(&serde_json::json!({ "text": text })),
        };
        let request = match timeout {
            Some(t) => request.timeout(t),
            None => request,
        };
        let mut response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(CallError::Unreachable)?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(CallError::Unreachable)? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(CallError::TooLong);
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice(&bytes).map_err(|_| CallError::NotJson)?;
        Ok(Answer {
            status,
            body,
            round_trip: started.elapsed(),
        })
    }
}

/// A note, for the page.
pub(crate) struct NoteView {
    pub text: String,
    pub by_app: String,
    pub at: String,
}

/// The Notes panel of the home page.
pub(crate) struct NotesPanel {
    /// Whether this app writes notes (the form is shown).
    pub can_write: bool,
    /// Newest first.
    pub notes: Vec<NoteView>,
    /// How the API validated the token, as it said.
    pub validated_by: String,
    /// In how many microseconds, as it said.
    pub validation_micros: String,
    /// The whole call, as this app measured it.
    pub round_trip: String,
    /// Why there is nothing to show, if so (empty otherwise).
    pub error: String,
}

impl NotesPanel {
    fn failed(can_write: bool, error: String) -> Self {
        Self {
            can_write,
            notes: Vec::new(),
            validated_by: String::new(),
            validation_micros: String::new(),
            round_trip: String::new(),
            error,
        }
    }
}

/// The result of presenting the pre-sign-out token again.
pub(crate) struct AfterSignOut {
    /// Whether the API refused it as revoked.
    pub refused: bool,
    /// Whether it still accepted it (neither: the check could not tell).
    pub accepted: bool,
    /// What the API answered last.
    pub answer: String,
    /// How long the check took, from the first try to the last answer.
    pub waited: String,
}

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The user's token for the API, refreshed if due: the session as it is now (`None` if it
/// ended meanwhile), and the unexpired token or why there is none.
async fn api_token(
    st: &AppState,
    session: Session,
) -> Result<(Option<Session>, Result<String, &'static str>), sessions::StoreError> {
    let session = renewed(st, session, Renew::Api).await?;
    let now = st.clock.unix();
    let token = match session.as_ref().and_then(user_of) {
        Some(u) if u.api_refused.is_some() => Err(NOT_ALLOWED),
        Some(u) => u
            .api_token
            .filter(|_| u.api_token_expires_at > now)
            .ok_or(NO_TOKEN),
        None => Err(NO_TOKEN),
    };
    Ok((session, token))
}

/// The Notes panel for `session`'s user: their notes as the API lists them (with a token
/// renewed first if it is due), or why they cannot be shown. Also the session as it is now:
/// `None` if the provider ended the grant when the token was renewed.
pub(crate) async fn panel(
    st: &AppState,
    api: &NotesApi,
    session: Session,
) -> Result<(Option<Session>, NotesPanel), sessions::StoreError> {
    let can_write = api.config.write;
    let (session, token) = api_token(st, session).await?;
    let token = match token {
        Ok(t) => t,
        Err(why) => return Ok((session, NotesPanel::failed(can_write, why.to_owned()))),
    };
    let answer = match api.call(&token, None, None).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "the Notes API did not answer");
            return Ok((session, NotesPanel::failed(can_write, format!("{e}."))));
        }
    };
    if answer.status != 200 {
        let why = format!("Notes refused: {}.", answer.error());
        return Ok((session, NotesPanel::failed(can_write, why)));
    }
    let notes = answer.body["notes"]
        .as_array()
        .map(|all| {
            all.iter()
                .rev()
                .map(|n| NoteView {
                    text: text_of(&n["text"]),
                    by_app: text_of(&n["by_app"]),
                    at: text_of(&n["at"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let validation = &answer.body["validation"];
    let panel = NotesPanel {
        can_write,
        notes,
        validated_by: text_of(&validation["method"]),
        validation_micros: validation["microseconds"]
            .as_u64()
            .map(|us| format!("{us} µs"))
            .unwrap_or_default(),
        round_trip: millis(answer.round_trip),
        error: String::new(),
    };
    Ok((session, panel))
}

/// Why a note was not written, for the person who wrote it.
pub(crate) enum NotWritten {
    /// The provider ended the grant: the person is signed out.
    SignedOut,
    /// Anything else, said in a sentence.
    Refused(String),
}

/// Writes `text` as a note of `session`'s user (a token renewed first if due).
pub(crate) async fn write(
    st: &AppState,
    api: &NotesApi,
    session: Session,
    text: &str,
) -> Result<Result<(), NotWritten>, sessions::StoreError> {
    let (session, token) = api_token(st, session).await?;
    if session.is_none() {
        return Ok(Err(NotWritten::SignedOut));
    }
    let token = match token {
        Ok(t) => t,
        Err(why) => return Ok(Err(NotWritten::Refused(why.to_owned()))),
    };
    Ok(match api.call(&token, Some(text), None).await {
        Ok(a) if a.status == 201 => Ok(()),
        Ok(a) => Err(NotWritten::Refused(format!(
            "Notes refused: {}.",
            a.error()
        ))),
        Err(e) => Err(NotWritten::Refused(format!("{e}."))),
    })
}

/// Keeps `user`'s API token, if any and unexpired, in a new anonymous session for the check after
/// "Sign out everywhere" ([`after_sign_out`]): the session to give the browser.
pub(crate) async fn keep_for_check(
    st: &AppState,
    user: &SignedIn,
) -> Result<Option<Session>, sessions::StoreError> {
    // An expired token would be refused for that alone, and prove nothing.
    let Some(token) = user
        .api_token
        .as_ref()
        .filter(|_| user.api_token_expires_at > st.clock.unix())
    else {
        return Ok(None);
    };
    let new = NewSession {
        data: serde_json::json!({ AFTER_SIGN_OUT_KEY: token }),
        ..NewSession::default()
    };
    st.sessions.create(new).await.map(Some)
}

/// Drops the token [`keep_for_check`] kept, if `session` carries one (a sign-in starts from
/// the session instead of the check).
pub(crate) fn forget_check(session: &mut Session) {
    if let Some(data) = session.data.as_object_mut() {
        data.remove(AFTER_SIGN_OUT_KEY);
    }
}

/// When `session` carries a token kept by [`keep_for_check`]: ends the session (so the check
/// runs once, whichever request gets there first), and presents the token to the API until
/// it refuses it as revoked, for at most `refusal_wait`.
pub(crate) async fn after_sign_out(
    st: &AppState,
    api: &NotesApi,
    session: &Session,
) -> Result<Option<AfterSignOut>, sessions::StoreError> {
    let Some(token) = session.data.get(AFTER_SIGN_OUT_KEY).and_then(Value::as_str) else {
        return Ok(None);
    };
    if session.user_id.is_some()
        || st
            .sessions
            .end(session.id(), EndCause::Logout)
            .await?
            .is_none()
    {
        return Ok(None);
    }
    let started = Instant::now();
    let deadline = started + api.config.refusal_wait;
    loop {
        // Each try within what is left of the wait (at least a moment, for a last one).
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = api
            .call(token, None, Some(left.max(Duration::from_millis(100))))
            .await;
        let refused = matches!(&answer, Ok(a) if a.revoked());
        if refused || Instant::now() >= deadline {
            let accepted = matches!(&answer, Ok(a) if a.status == 200);
            let answer = match answer {
                Ok(a) if a.status == 200 => "200: it still accepts the token".to_owned(),
                Ok(a) => a.error(),
                Err(e) => e.to_string(),
            };
            return Ok(Some(AfterSignOut {
                refused,
                accepted,
                answer,
                waited: millis(started.elapsed()),
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
