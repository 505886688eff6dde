//! A cookie-jar HTTP client that behaves like a browser where the tests need it: it keeps
//! cookies per host, follows redirects itself (recording each hop), resolves `*.localhost` to
//! loopback, and submits the HTML forms our pages render.

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use url::Url;

/// One response on the way (a redirect or the final page).
#[derive(Clone, Debug)]
pub struct Hop {
    pub url: Url,
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
}

/// Where a navigation ended, and how it got there.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: String,
    pub hops: Vec<Hop>,
}

impl Page {
    /// Whether any hop visited a URL starting with `prefix`.
    pub fn visited(&self, prefix: &str) -> bool {
        self.hops.iter().any(|h| h.url.as_str().starts_with(prefix))
    }

    /// The value of hidden input `name` in the page's HTML.
    pub fn hidden(&self, name: &str) -> Option<String> {
        input_value(&self.body, name)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The hidden inputs of the first `<form … action="ACTION">` in `html` (our templates' shape).
pub fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let Some(start) = html.find(&format!("action=\"{action}\"")) else {
        return Vec::new();
    };
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |e| start + e);
    let form = &html[start..end];
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find("<input type=\"hidden\"") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let v = tag.find(&key)? + key.len();
            Some(unescape(&tag[v..v + tag[v..].find('"')?]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
        rest = &rest[tag_end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&#43;", "+")
        .replace("&#x2d;", "-")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

/// The value of `<input … name="NAME" … value="VALUE">` (our templates' shape).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = tag[v..].find('"')?;
    Some(
        tag[v..v + end]
            .replace("&#43;", "+")
            .replace("&#x2d;", "-")
            .replace("&amp;", "&"),
    )
}

#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// A browser whose connections come from `source` (a loopback address other than
    /// 127.0.0.1), claiming to be `claimed` in `X-Forwarded-For` and `Forwarded` headers of
    /// its own.
    pub fn from_address(source: &str, claimed: Option<&str>) -> Self {
        let source: std::net::IpAddr = source.parse().unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(claimed) = claimed {
            headers.insert("x-forwarded-for", claimed.parse().unwrap());
            let forwarded = format!("for={claimed}");
            headers.insert("forwarded", forwarded.parse().unwrap());
        }
        Self::with(|b| b.local_address(source).default_headers(headers))
    }

    fn with(edit: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder) -> Self {
        let jar = Arc::new(Jar::default());
        let client = edit(client_app::http::client_builder())
            .cookie_provider(jar.clone())
            .user_agent("gatehouse-e2e/1.0")
            .build()
            .unwrap();
        Self { client, jar }
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies_for(&self, url: &str) -> String {
        self.jar
            .cookies(&Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    }

    /// The value of cookie `name` for `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies_for(url)
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    /// Plants a cookie, as an attacker with a foothold on the host could.
    pub fn plant_cookie(&self, url: &str, cookie: &str) {
        self.jar.add_cookie_str(cookie, &Url::parse(url).unwrap());
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        form: Option<&[(String, String)]>,
    ) -> (Hop, HeaderMap, String) {
        let mut req = self.client.request(method.clone(), url.clone());
        if let Some(form) = form {
            req = req.form(form);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let body = resp.text().await.unwrap_or_default();
        (
            Hop {
                url: url.clone(),
                status,
                location,
                set_cookies,
            },
            headers,
            body,
        )
    }

    /// GET `url` without following redirects.
    pub async fn get_once(&self, url: &str) -> Page {
        let url = Url::parse(url).unwrap();
        let (hop, headers, body) = self.send(Method::GET, &url, None).await;
        Page {
            status: hop.status,
            url,
            headers,
            body,
            hops: vec![hop],
        }
    }

    /// GET `url` and follow redirects (303/302/301/307 as GET) to the final page.
    pub async fn follow(&self, url: &str) -> Page {
        self.navigate(Method::GET, Url::parse(url).unwrap(), None)
            .await
    }

    /// POST a form and follow the redirects that answer it.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.navigate(Method::POST, Url::parse(url).unwrap(), Some(form))
            .await
    }

    /// POST a form without following redirects.
    pub async fn post_once(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let url = Url::parse(url).unwrap();
        let (hop, headers, body) = self.send(Method::POST, &url, Some(&form)).await;
        Page {
            status: hop.status,
            url,
            headers,
            body,
            hops: vec![hop],
        }
    }

    async fn navigate(
        &self,
        method: Method,
        url: Url,
        form: Option<Vec<(String, String)>>,
    ) -> Page {
        self.navigate_until(method, url, form, None).await
    }

    /// GET `url` and follow redirects, but stop before any redirect to a URL starting with
    /// `stop` (a client's redirect URI): the returned page's `url` is that location, unfetched.
    pub async fn follow_until(&self, url: &str, stop: &str) -> Page {
        self.navigate_until(Method::GET, Url::parse(url).unwrap(), None, Some(stop))
            .await
    }

    /// Like [`Browser::submit`], stopping before a redirect to `stop`.
    pub async fn submit_until(
        &self,
        page: &Page,
        form_action: &str,
        fields: &[(&str, &str)],
        stop: &str,
    ) -> Page {
        let all = Self::form_fields(page, form_action, fields);
        let url = page.url.join(form_action).unwrap();
        self.navigate_until(Method::POST, url, Some(all), Some(stop))
            .await
    }

    async fn navigate_until(
        &self,
        mut method: Method,
        mut url: Url,
        mut form: Option<Vec<(String, String)>>,
        stop: Option<&str>,
    ) -> Page {
        let mut hops = Vec::new();
        for _ in 0..20 {
            let (hop, headers, body) = self.send(method.clone(), &url, form.as_deref()).await;
            let status = hop.status;
            let next = hop.location.clone();
            hops.push(hop);
            match next {
                Some(location) if status.is_redirection() => {
                    url = url.join(&location).unwrap();
                    if stop.is_some_and(|prefix| url.as_str().starts_with(prefix)) {
                        return Page {
                            status,
                            url,
                            headers,
                            body: String::new(),
                            hops,
                        };
                    }
                    method = Method::GET;
                    form = None;
                }
                _ => {
                    return Page {
                        status,
                        url,
                        headers,
                        body,
                        hops,
                    };
                }
            }
        }
        panic!("too many redirects: {hops:#?}");
    }

    /// Submits a form of `page` to `form_action` with the page's hidden fields (CSRF token,
    /// pending request) plus `fields`, and follows the answer.
    pub async fn submit(&self, page: &Page, form_action: &str, fields: &[(&str, &str)]) -> Page {
        let all = Self::form_fields(page, form_action, fields);
        let url = page.url.join(form_action).unwrap();
        self.navigate(Method::POST, url, Some(all)).await
    }

    /// The hidden fields of the page's form that posts to `form_action` (as a browser would
    /// send them), overlaid with `fields`.
    fn form_fields(
        page: &Page,
        form_action: &str,
        fields: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut all = hidden_fields(&page.body, form_action);
        for (k, v) in fields {
            all.retain(|(n, _)| n != k);
            all.push(((*k).to_owned(), (*v).to_owned()));
        }
        all
    }
}
