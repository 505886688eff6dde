//! The session cookie policy, in one place: `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`;
//! `Secure` and the `__Host-` prefix whenever the public URL is https. The removal cookie
//! carries the same name and attributes, so a browser matches and deletes it.

use crate::id::SessionId;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// Name and attributes of one app's session cookie.
#[derive(Clone, Debug)]
pub struct CookiePolicy {
    name: String,
    secure: bool,
}

impl CookiePolicy {
    /// `base_name` becomes `__Host-base_name` when `secure` (RFC 6265bis §4.1.3.2).
    pub fn new(base_name: &str, secure: bool) -> Self {
        let name = if secure {
            format!("__Host-{base_name}")
        } else {
            base_name.to_owned()
        };
        Self { name, secure }
    }

    /// The policy for an app served at `public_url`: secure exactly when it is https, unless
    /// `allow_insecure` lowers it for a plain-http demo.
    pub fn for_url(base_name: &str, public_url: &url::Url, allow_insecure: bool) -> Self {
        Self::new(base_name, public_url.scheme() == "https" || !allow_insecure)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The cookie that carries `id`.
    pub fn cookie(&self, id: &SessionId) -> Cookie<'static> {
        self.base(id.expose().to_owned())
    }

    /// The cookie for `session`: a kept one ("keep me signed in") outlives the browser, with
    /// `Max-Age` up to its absolute expiry (at most 400 days, RFC 6265bis §5.6.2); any other
    /// is a session cookie.
    pub fn cookie_for(&self, session: &crate::Session, now: i64) -> Cookie<'static> {
        let mut cookie = self.cookie(session.id());
        if session.remembered() {
            let left = session.absolute_expires_at.unix_timestamp() - now;
            let max_age = left.clamp(0, 400 * 24 * 3600);
            cookie.set_max_age(time::Duration::seconds(max_age));
        }
        cookie
    }

    /// The cookie that deletes it (same name, path and flags; empty and expired).
    pub fn removal(&self) -> Cookie<'static> {
        let mut c = self.base(String::new());
        c.make_removal();
        c
    }

    /// The id in the request's cookie, if it has the shape of one we issue.
    pub fn read(&self, jar: &CookieJar) -> Option<SessionId> {
        jar.get(&self.name)
            .and_then(|c| SessionId::parse(c.value()))
    }

    fn base(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.name.clone(), value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_cookie_has_host_prefix_and_flags() {
        let p = CookiePolicy::new("sid", true);
        let id = SessionId::generate().unwrap();
        let s = p.cookie(&id).to_string();
        assert!(s.starts_with("__Host-sid="), "{s}");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
            assert!(s.contains(flag), "{flag} missing in {s}");
        }
        assert!(!s.contains("Domain"), "{s}");
    }

    #[test]
    fn insecure_cookie_for_http_demo() {
        let p = CookiePolicy::for_url("sid", &"http://idp.localhost:4000".parse().unwrap(), true);
        let s = p.cookie(&SessionId::generate().unwrap()).to_string();
        assert!(s.starts_with("sid="), "{s}");
        assert!(!s.contains("Secure"), "{s}");
        assert!(s.contains("HttpOnly"), "{s}");
    }

    /// A session with `data`, ending at `absolute_expires_at`.
    fn session(data: serde_json::Value, absolute_expires_at: i64) -> crate::Session {
        let stored = crate::StoredSession {
            id_hash: String::new(),
            handle: "h".into(),
            user_id: Some("u".into()),
            external_key: None,
            data,
            csrf_token: "c".into(),
            created_at: 0,
            last_seen_at: 0,
            idle_expires_at: absolute_expires_at,
            absolute_expires_at,
            auth_time: Some(0),
            user_agent: None,
            client_addr: None,
            version: 0,
        };
        crate::Session::from_stored(SessionId::generate().unwrap(), stored)
    }

    #[test]
    fn only_a_kept_session_outlives_the_browser_and_at_most_400_days() {
        let p = CookiePolicy::new("sid", true);
        let kept = serde_json::json!({ "remembered": true });
        let usual = p.cookie_for(&session(serde_json::json!({}), 1000), 100);
        assert_eq!(usual.max_age(), None, "a session cookie");
        let c = p.cookie_for(&session(kept.clone(), 1000), 100);
        assert_eq!(c.max_age(), Some(time::Duration::seconds(900)));
        assert!(c.to_string().contains("Max-Age=900"), "{c}");
        let far = p.cookie_for(&session(kept.clone(), 500 * 86400), 0);
        assert_eq!(far.max_age(), Some(time::Duration::days(400)));
        let over = p.cookie_for(&session(kept, 100), 200);
        assert_eq!(over.max_age(), Some(time::Duration::ZERO));
    }

    #[test]
    fn https_is_always_secure() {
        let p = CookiePolicy::for_url("sid", &"https://idp.example".parse().unwrap(), true);
        assert!(p.is_secure());
        assert_eq!(p.name(), "__Host-sid");
    }

    #[test]
    fn removal_matches_name_and_expires() {
        let p = CookiePolicy::new("sid", true);
        let s = p.removal().to_string();
        assert!(s.starts_with("__Host-sid=;"), "{s}");
        assert!(s.contains("Max-Age=0") || s.contains("Expires="), "{s}");
        assert!(s.contains("Path=/") && s.contains("Secure"), "{s}");
    }

    #[test]
    fn read_ignores_foreign_values() {
        let p = CookiePolicy::new("sid", false);
        let jar = CookieJar::new().add(Cookie::new("sid", "attacker-chosen"));
        assert!(p.read(&jar).is_none());
        let id = SessionId::generate().unwrap();
        let jar = CookieJar::new().add(p.cookie(&id));
        assert_eq!(p.read(&jar), Some(id));
    }
}
