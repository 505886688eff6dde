//! `provider doctor`: a self-check an operator runs against a deployment, from where it runs,
//! with its configuration. Each check prints `ok`, `info` or `PROBLEM` with what to do about
//! it; the command fails (a non-zero exit) when there is a problem.
//!
//! - the issuer: https (plain http only on this machine), and reachable: its discovery
//!   document fetched as a client would, naming this issuer and endpoints under it;
//! - the keys: each algorithm has a key that signs, published in the JWKS the issuer serves,
//!   and not older than the rotation period allows (older: maintenance is not running);
//! - the clock against the database server's (PostgreSQL; SQLite's is this machine's);
//! - the SSO cookie as served by the sign-in page: `HttpOnly`, `SameSite`, and on https
//!   `Secure` with the `__Host-` prefix;
//! - each app's back-channel logout endpoint: allowed by the outbound policy, and answering
//!   (an empty POST, no logout token, which an app refuses);
//! - replication where the servers show it: PostgreSQL's standbys, Redis's replicas.

use super::io::{Io, existing_store};
use crate::Config;
use crate::store::Store;
use infra::Clock;
use std::time::Duration;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Info,
    Problem,
}

/// One line of the report.
struct Finding {
    verdict: Verdict,
    what: String,
    /// What to do (a problem's).
    fix: Option<String>,
}

fn ok(what: impl Into<String>) -> Finding {
    Finding {
        verdict: Verdict::Ok,
        what: what.into(),
        fix: None,
    }
}

fn info(what: impl Into<String>) -> Finding {
    Finding {
        verdict: Verdict::Info,
        what: what.into(),
        fix: None,
    }
}

fn problem(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        verdict: Verdict::Problem,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

/// The most the clock may differ from the database's.
const MAX_SKEW_SECS: f64 = 2.0;

/// `provider doctor`.
pub(super) async fn run(config: &Config, io: &mut Io<'_>) -> anyhow::Result<()> {
    let store = existing_store(config).await?;
    let http = infra::http::client_builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut findings = issuer(config);
    let discovery = discovery(config, &http, &mut findings).await;
    findings.extend(keys(config, &store, &http, discovery.as_ref()).await?);
    findings.push(clock(&store).await?);
    findings.push(cookie(config, &http).await);
    findings.extend(back_channels(config, &store).await?);
    findings.extend(replication(config, &store).await);
    let mut problems = 0;
    for f in &findings {
        let tag = match f.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Info => "info   ",
            Verdict::Problem => {
                problems += 1;
                "PROBLEM"
            }
        };
        out!(io, "{tag} {}", f.what);
        if let Some(fix) = &f.fix {
            out!(io, "        fix: {fix}");
        }
    }
    if problems > 0 {
        // The error (what the process prints as it fails) names them again.
        let list: Vec<String> = findings
            .iter()
            .filter(|f| f.verdict == Verdict::Problem)
            .map(|f| format!("- {} (fix: {})", f.what, f.fix.as_deref().unwrap_or("-")))
            .collect();
        anyhow::bail!("{problems} problem(s) found:\n{}", list.join("\n"));
    }
    out!(io, "no problem found");
    Ok(())
}

fn issuer(config: &Config) -> Vec<Finding> {
    let issuer = config.issuer_str();
    if config.issuer.scheme() == "https" {
        vec![ok(format!("issuer {issuer} is https"))]
    } else {
        vec![info(format!(
            "issuer {issuer} is plain http: for this machine only (a demo, a test)"
        ))]
    }
}

/// The discovery document, fetched from the issuer as a client would; checked.
async fn discovery(
    config: &Config,
    http: &reqwest::Client,
    findings: &mut Vec<Finding>,
) -> Option<serde_json::Value> {
    let issuer = config.issuer_str();
    let url = format!("{issuer}{}", crate::paths::DISCOVERY);
    let fetched = match http.get(&url).send().await {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
        Ok(r) => {
            findings.push(problem(
                format!("{url} answers {}", r.status()),
                "check that the issuer URL reaches this provider (proxy, DNS, listen address)",
            ));
            return None;
        }
        Err(e) => {
            findings.push(problem(
                format!("{url} is not reachable: {e}"),
                "start the provider, or fix the issuer URL, DNS or the proxy in front of it",
            ));
            return None;
        }
    };
    let Some(doc) = fetched else {
        findings.push(problem(
            format!("{url} is not JSON"),
            "check what answers there",
        ));
        return None;
    };
    if doc["issuer"].as_str() != Some(issuer.as_str()) {
        findings.push(problem(
            format!(
                "discovery names issuer {} but the configuration says {issuer}",
                doc["issuer"]
            ),
            "another provider (or another configuration) answers at the issuer URL",
        ));
        return None;
    }
    let outside: Vec<&str> = ["authorization_endpoint", "token_endpoint", "jwks_uri"]
        .into_iter()
        .filter(|k| !doc[*k].as_str().is_some_and(|u| u.starts_with(&issuer)))
        .collect();
    if outside.is_empty() {
        findings.push(ok(format!("discovery at {url} is this issuer's")));
    } else {
        findings.push(problem(
            format!(
                "discovery's {} are not under the issuer",
                outside.join(", ")
            ),
            "check the issuer setting of every instance",
        ));
    }
    Some(doc)
}

/// Each algorithm's signing key: present, published, and rotated in time.
async fn keys(
    config: &Config,
    store: &Store,
    http: &reqwest::Client,
    discovery: Option<&serde_json::Value>,
) -> anyhow::Result<Vec<Finding>> {
    let now = Clock::system().unix();
    let stored = store.signing_keys().await?;
    let mut findings = Vec::new();
    let issuer = config.issuer_str();
    // Only a key set under the issuer (a document naming another was reported above).
    let jwks_uri = discovery
        .and_then(|d| d["jwks_uri"].as_str())
        .filter(|u| u.starts_with(&issuer));
    let published = match jwks_uri {
        Some(uri) => match http.get(uri).send().await {
            Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
            Ok(r) => {
                findings.push(problem(
                    format!("the key set {uri} answers {}", r.status()),
                    "apps cannot verify tokens: check what answers there",
                ));
                None
            }
            Err(e) => {
                findings.push(problem(
                    format!("the key set {uri} is not reachable: {e}"),
                    "apps cannot verify tokens: check the proxy in front of the provider",
                ));
                None
            }
        },
        None => None,
    };
    let kids: Vec<String> = published
        .as_ref()
        .and_then(|j| j["keys"].as_array())
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // Maintenance notices a key's turn up to a round late (`session.sweep_interval`).
    let overdue = infra::secs(config.keys.rotation_period)
        + infra::secs(config.keys.publish_ahead)
        + 3 * infra::secs(config.session.sweep_interval);
    for alg in crate::keys::kept_algs(&config.keys.algorithms, &stored) {
        let signing = stored
            .iter()
            .filter(|k| k.alg == alg && k.activates_at <= now)
            .max_by_key(|k| k.activates_at);
        let Some(key) = signing else {
            findings.push(problem(
                format!("no {alg} key signs"),
                "run `provider keys rotate`, or start the provider (it makes its first keys)",
            ));
            continue;
        };
        let age_days = (now - key.activates_at) / 86_400;
        if now - key.activates_at > overdue {
            findings.push(problem(
                format!("the {alg} key {} has signed for {age_days} days, past keys.rotation_period", key.kid),
                "keep an instance running (its maintenance rotates keys), or run `provider keys rotate`",
            ));
        } else if published.is_some() && !kids.contains(&key.kid) {
            findings.push(problem(
                format!(
                    "the {alg} key {} is not in the JWKS the issuer serves",
                    key.kid
                ),
                "an instance serving an old key set: restart the instances behind the issuer",
            ));
        } else {
            findings.push(ok(format!(
                "{alg} key {} signs, {age_days} day(s) old{}",
                key.kid,
                if published.is_some() {
                    ", published"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(findings)
}

async fn clock(store: &Store) -> anyhow::Result<Finding> {
    let Some(theirs) = store.database_time().await? else {
        return Ok(info(
            "clock: SQLite keeps no clock of its own (this machine's is used)",
        ));
    };
    let now = Clock::system().now();
    let ours = now.unix_timestamp() as f64 + f64::from(now.nanosecond()) / 1e9;
    let skew = ours - theirs;
    Ok(if skew.abs() > MAX_SKEW_SECS {
        problem(
            format!("this machine's clock is {skew:+.1} s off the database server's"),
            "synchronise both clocks (NTP): expiry and token times depend on them",
        )
    } else {
        ok(format!(
            "clock within {skew:+.2} s of the database server's"
        ))
    })
}

/// The SSO cookie the sign-in page sets.
async fn cookie(config: &Config, http: &reqwest::Client) -> Finding {
    let url = format!("{}{}", config.issuer_str(), crate::paths::LOGIN);
    let Ok(page) = http.get(&url).send().await else {
        return info(format!(
            "cookie: {url} not reachable (see the issuer above)"
        ));
    };
    let set: Vec<String> = page
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let policy = sessions::CookiePolicy::for_url(
        &config.cookie.name,
        &config.issuer,
        config.cookie.allow_insecure_http,
    );
    let name = policy.name();
    let Some(cookie) = set
        .iter()
        .find(|c| c.split('=').next().map(str::trim) == Some(name))
    else {
        return problem(
            format!("{url} sets no {name} cookie"),
            "check cookie.name, and that nothing in front of the provider strips Set-Cookie",
        );
    };
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    let has = |attr: &str| attrs.iter().any(|a| a == attr);
    let https = config.issuer.scheme() == "https";
    let mut missing: Vec<&str> = Vec::new();
    if !has("httponly") {
        missing.push("HttpOnly");
    }
    if !has("samesite=lax") && !has("samesite=strict") {
        missing.push("SameSite=Lax or Strict");
    }
    if https && !has("secure") {
        missing.push("Secure");
    }
    let domain = attrs.iter().any(|a| a.starts_with("domain="));
    if name.starts_with("__Host-") && (!has("path=/") || domain) {
        missing.push("the __Host- rules (Path=/, no Domain)");
    }
    if https && !name.starts_with("__Host-") {
        missing.push("the __Host- prefix");
    }
    if missing.is_empty() {
        let secure = if https { ", Secure" } else { "" };
        ok(format!(
            "the SSO cookie {name} is served HttpOnly, SameSite{secure}"
        ))
    } else {
        problem(
            format!("the SSO cookie is served without {}", missing.join(", ")),
            "a proxy in front of the provider may rewrite Set-Cookie; on https, do not set cookie.allow_insecure_http",
        )
    }
}

/// Each app's back-channel logout endpoint, through the outbound policy.
async fn back_channels(config: &Config, store: &Store) -> anyhow::Result<Vec<Finding>> {
    let policy = config.outbound.policy().map_err(anyhow::Error::msg)?;
    let guarded = infra::outbound::Guarded::new(policy, Duration::from_secs(5))?;
    let mut findings = Vec::new();
    for client in store.list_clients().await? {
        let Some(uri) = client.backchannel_logout_uri.as_deref() else {
            continue;
        };
        let app = &client.client_id;
        let request = match guarded.post(uri) {
            Ok(request) => request,
            Err(refused) => {
                findings.push(problem(
                    format!("{app}: back-channel logout to {uri} is refused by the outbound policy ({refused})"),
                    "the app must register a public endpoint, or the operator allow it (outbound.allow)",
                ));
                continue;
            }
        };
        findings.push(match request.send().await {
            // A logout endpoint refuses a POST without a logout token (Back-Channel Logout
            // 1.0 §2.8: 400).
            Ok(answer) if answer.status() == 400 => ok(format!(
                "{app}: back-channel logout endpoint answers (400 to a POST without a token)"
            )),
            Ok(answer) if answer.status().is_success() => info(format!(
                "{app}: back-channel logout endpoint accepts a POST without a logout token ({})",
                answer.status()
            )),
            Ok(answer) => problem(
                format!("{app}: back-channel logout to {uri} answers {}", answer.status()),
                "ask the app's developer to fix the endpoint: logouts to it fail",
            ),
            Err(e) if infra::outbound::was_refused(&e) => problem(
                format!("{app}: {uri} resolves to an address the outbound policy refuses"),
                "the app must register a public endpoint, or the operator allow it (outbound.allow)",
            ),
            Err(e) => problem(
                format!("{app}: {uri} does not answer: {e}"),
                "the app's logouts are queued and retried; ask its developer to fix the endpoint",
            ),
        });
    }
    if findings.is_empty() {
        findings.push(info("no app registers a back-channel logout endpoint"));
    }
    Ok(findings)
}

/// Replication, where PostgreSQL and Redis show it.
async fn replication(config: &Config, store: &Store) -> Vec<Finding> {
    let mut findings = Vec::new();
    match store.replication().await {
        Ok(Some((true, _))) => findings.push(problem(
            "the database is a PostgreSQL standby (read-only)",
            "point database_url at the primary",
        )),
        Ok(Some((false, 0))) => findings.push(info(
            "PostgreSQL primary, no standby streaming from it: a lost server loses the data since the last backup",
        )),
        Ok(Some((false, n))) => findings.push(ok(format!("PostgreSQL primary, {n} standby(s) streaming"))),
        Ok(None) => {}
        Err(e) => findings.push(info(format!("PostgreSQL replication not visible: {e}"))),
    }
    if config.session.store == sessions::SessionBackend::Redis
        && let Some(url) = &config.session.redis_url
    {
        let wanted = sessions::redis_conn::RedisTarget::parse(url)
            .map(|target| config.session.redis_confirm(&target).replicas)
            .unwrap_or(0);
        let status = match config.session.redis_store(url).await {
            Ok(redis) => redis.replication().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let replicas = |s: &str| -> u32 {
            s.split(", ")
                .find_map(|kv| kv.strip_prefix("connected_slaves="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        findings.push(match status {
            Ok(s) if s.contains("role=slave") => problem(
                format!("the session store is a Redis replica ({s}): writes fail"),
                "point session.redis_url at the primary",
            ),
            Ok(s) if s.contains("master_link_status=down") => problem(
                format!("Redis {s}"),
                "the replica lost its primary: check replication",
            ),
            Ok(s) if s.contains("role=master") && replicas(&s) < wanted => problem(
                format!(
                    "Redis {s}, but new sessions and sign-outs wait for {wanted} replica(s): \
                     they all fail"
                ),
                "add replicas, or lower session.redis_confirm_replicas",
            ),
            Ok(s) if s.contains("connected_slaves=0") => info(format!(
                "Redis {s}: no replica, so a lost Redis signs everyone out"
            )),
            Ok(s) => ok(format!("Redis {s}")),
            Err(e) => problem(
                format!("the session store (Redis) does not answer: {e}"),
                "start Redis, or fix session.redis_url",
            ),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing;

    /// On PostgreSQL and Redis the doctor reads the database server's clock and both
    /// servers' replication (here: a primary without standbys, a Redis without replicas).
    #[tokio::test]
    async fn clock_and_replication_are_read_from_postgres_and_redis() {
        let Some(ctx) = testing::postgres_ctx("doctor").await else {
            return;
        };
        let found = clock(&ctx.store).await.unwrap();
        assert_eq!(found.verdict, Verdict::Ok, "{}", found.what);
        assert!(
            found.what.contains("of the database server's"),
            "{}",
            found.what
        );
        let found = replication(&ctx.config, &ctx.store).await;
        let said: Vec<&str> = found.iter().map(|f| f.what.as_str()).collect();
        assert!(
            said.iter().any(|w| w.contains("PostgreSQL primary")),
            "{said:?}"
        );
        if ctx.config.session.store == sessions::SessionBackend::Redis {
            assert!(said.iter().any(|w| w.contains("Redis role=")), "{said:?}");
            // Writes confirmed by a replica that this Redis does not have: all would fail.
            let mut config = ctx.config.clone();
            config.session.redis_confirm_replicas = Some(1);
            let found = replication(&config, &ctx.store).await;
            let redis = found.iter().find(|f| f.what.contains("Redis")).unwrap();
            assert_eq!(redis.verdict, Verdict::Problem, "{}", redis.what);
            assert!(redis.what.contains("wait for 1 replica"), "{}", redis.what);
        }
    }
}
