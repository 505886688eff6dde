//! `session.redis_url` as the session store reads it: one server (`redis://…`, left to the
//! redis crate), a Redis Cluster (`redis+cluster://[user:password@]host:port,…`) or a Sentinel
//! deployment (`redis+sentinel://[user:password@]host:port,…/service[/db]`). Parsed here
//! because the redis crate has no URL form for a list of hosts, and `url::Url` takes the
//! comma-separated host list for one (invalid) host. The grammar is strict (hosts, ports,
//! service and database), and no error or `Debug` output repeats a password.

/// What `session.redis_url` names. Its `Debug` leaves the passwords out.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: the URL as the redis crate reads it.
    Server(String),
    /// A Redis Cluster, known first through `nodes`.
    Cluster {
        nodes: Vec<(String, u16)>,
        username: Option<String>,
        password: Option<String>,
    },
    /// The primary of `service`, as the `sentinels` say.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        service: String,
        db: i64,
        username: Option<String>,
        password: Option<String>,
        /// For the sentinels themselves (`?sentinel_username=…&sentinel_password=…`).
        sentinel_username: Option<String>,
        sentinel_password: Option<String>,
    },
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |p: &Option<String>| p.as_ref().map(|_| "***");
        match self {
            Self::Server(_) => f.write_str("Server(…)"),
            Self::Cluster {
                nodes,
                username,
                password,
            } => f
                .debug_struct("Cluster")
                .field("nodes", nodes)
                .field("username", username)
                .field("password", &hidden(password))
                .finish(),
            Self::Sentinel {
                sentinels,
                service,
                db,
                username,
                password,
                sentinel_username,
                sentinel_password,
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("service", service)
                .field("db", db)
                .field("username", username)
                .field("password", &hidden(password))
                .field("sentinel_username", sentinel_username)
                .field("sentinel_password", &hidden(sentinel_password))
                .finish(),
        }
    }
}

/// `redis_url` is not one the store can use; the message never repeats a password.
#[derive(Debug, thiserror::Error)]
#[error("session.redis_url: {0}")]
pub struct UrlError(&'static str);

const SENTINEL_SCHEME: &str = "redis+sentinel://";
const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A URL's credentials and host list: `[user[:password]@]host:port,host:port,…`.
type Authority = (Option<String>, Option<String>, Vec<(String, u16)>);

fn authority(authority: &str, default_port: u16) -> Result<Authority, UrlError> {
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = info
                .split_once(':')
                .map_or((info, None), |(u, p)| (u, Some(p)));
            (decoded(user)?, pass.map(decoded).transpose()?.flatten())
        }
    };
    if username.is_some() && password.is_none() {
        // Redis authenticates a user only with a password: a username alone would be dropped.
        return Err(UrlError("a username needs a password (user:password@)"));
    }
    let mut unique = Vec::new();
    for host in hosts.split(',') {
        let host = host_port(host, default_port)?;
        // Each once: a sentinel named twice would count twice toward a majority.
        if unique.contains(&host) {
            return Err(UrlError("a host is named twice"));
        }
        unique.push(host);
    }
    Ok((username, password, unique))
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let ours = url.starts_with(CLUSTER_SCHEME) || url.starts_with(SENTINEL_SCHEME);
        if ours && url.contains(|c: char| c == '#' || c.is_whitespace() || c.is_control()) {
            return Err(UrlError("no fragment, spaces or control characters"));
        }
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains(['/', '?']) {
                return Err(UrlError(
                    "expected redis+cluster://host:port,… (a cluster has one database)",
                ));
            }
            let (username, password, nodes) = authority(rest, 6379)?;
            return Ok(Self::Cluster {
                nodes,
                username,
                password,
            });
        }
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            if url.contains("+sentinel://") || url.contains("+cluster://") {
                return Err(UrlError(
                    "only redis+sentinel:// and redis+cluster:// (no TLS) are supported",
                ));
            }
            return Ok(Self::Server(url.to_owned()));
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority_part, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (username, password, sentinels) = authority(authority_part, 26379)?;
        let mut segments = path.trim_end_matches('/').split('/');
        let service = segments
            .next()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            })
            .ok_or(UrlError(
                "name the monitored service (letters, digits, '-', '_', '.'): \
                 redis+sentinel://host:port,…/service",
            ))?;
        let db = match segments.next() {
            None => 0,
            Some(db) if !db.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(UrlError("the database must be a number"));
            }
            Some(db) => db
                .parse::<u16>()
                .map(i64::from)
                .map_err(|_| UrlError("the database must be a number"))?,
        };
        if segments.next().is_some() {
            return Err(UrlError("expected redis+sentinel://hosts/service[/db]"));
        }
        let mut target_sentinel = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            // Percent-decoded as the user and password are ('+' is a plus sign).
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decoded(value)?.ok_or(UrlError("an empty query parameter"))?;
            match key {
                "sentinel_username" => target_sentinel.0 = Some(value),
                "sentinel_password" => target_sentinel.1 = Some(value),
                _ => return Err(UrlError("unknown query parameter")),
            }
        }
        if target_sentinel.0.is_some() && target_sentinel.1.is_none() {
            return Err(UrlError("sentinel_username needs sentinel_password"));
        }
        Ok(Self::Sentinel {
            sentinels,
            service: service.to_owned(),
            db,
            username,
            password,
            sentinel_username: target_sentinel.0,
            sentinel_password: target_sentinel.1,
        })
    }
}

fn decoded(part: &str) -> Result<Option<String>, UrlError> {
    if part.is_empty() {
        return Ok(None);
    }
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| Some(s.into_owned()))
        .map_err(|_| UrlError("user and password must be UTF-8"))
}

/// `host:port`, `[v6]:port`, or a host alone (on `default_port`).
fn host_port(entry: &str, default_port: u16) -> Result<(String, u16), UrlError> {
    const BAD: UrlError = UrlError("each host is name:port, a.b.c.d:port or [v6]:port");
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(BAD)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| BAD)?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or(BAD)?),
        };
        (host, port)
    } else {
        let (host, port) = match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        };
        let name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if !host.bytes().all(name) {
            return Err(BAD);
        }
        (host, port)
    };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| BAD)?
        }
        Some(_) => return Err(BAD),
    };
    if host.is_empty() || port == 0 {
        return Err(BAD);
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_parse() {
        let t =
            RedisTarget::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002/").unwrap();
        assert_eq!(
            t,
            RedisTarget::Cluster {
                nodes: vec![
                    ("10.0.0.1".into(), 7000),
                    ("10.0.0.2".into(), 6379),
                    ("::1".into(), 7002)
                ],
                username: None,
                password: Some("pw".into()),
            }
        );
        for bad in [
            "redis+cluster://h1:7000/1",
            "redis+cluster://h1:7000?x=1",
            "redis+cluster://",
            "redis+cluster://h1:70000",
            "rediss+cluster://h1:7000",
        ] {
            assert!(RedisTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sentinel_urls_parse() {
        let t = RedisTarget::parse(
            "redis+sentinel://u%40x:p%3Aw@10.0.0.1:26379,sentinel-b,[::1]:26380/mymaster/2?sentinel_password=s%20p",
        )
        .unwrap();
        assert_eq!(
            t,
            RedisTarget::Sentinel {
                sentinels: vec![
                    ("10.0.0.1".into(), 26379),
                    ("sentinel-b".into(), 26379),
                    ("::1".into(), 26380)
                ],
                service: "mymaster".into(),
                db: 2,
                username: Some("u@x".into()),
                password: Some("p:w".into()),
                sentinel_username: None,
                sentinel_password: Some("s p".into()),
            }
        );
        let plain = RedisTarget::parse("redis://127.0.0.1:6379/").unwrap();
        assert_eq!(plain, RedisTarget::Server("redis://127.0.0.1:6379/".into()));
        let t = RedisTarget::parse("redis+sentinel://:pw@h:1/svc?sentinel_password=a+b").unwrap();
        assert!(
            matches!(&t, RedisTarget::Sentinel { sentinel_password: Some(p), .. } if p == "a+b")
        );
        let shown = format!("{t:?}");
        assert!(!shown.contains("pw") && !shown.contains("a+b"), "{shown}");
        assert!(
            matches!(t, RedisTarget::Sentinel { username: None, password: Some(p), .. } if p == "pw")
        );
    }

    #[test]
    fn bad_sentinel_urls_are_refused_without_repeating_them() {
        for bad in [
            "redis+sentinel://h1:26379,h2:26379",
            "redis+sentinel://h1:26379/",
            "redis+sentinel://h1:x/svc",
            "redis+sentinel://h1:0/svc",
            "redis+sentinel://,h2/svc",
            "redis+sentinel://h1/svc/db",
            "redis+sentinel://h1/svc/0/extra",
            "redis+sentinel://h1/svc?password=secret",
            "rediss+sentinel://h1/svc",
            "redis+sentinel://[::1/svc",
            "redis+sentinel://[::1]junk/svc",
            "redis+sentinel://[nothost]:1/svc",
            "redis+sentinel://::1/svc",
            "redis+sentinel://h1:26379:1/svc",
            "redis+sentinel://h 1/svc",
            "redis+sentinel://h1/svc#frag",
            "redis+sentinel://h1/svc/-1",
            "redis+sentinel://user@h1/svc",
            "redis+sentinel://h1/svc?sentinel_password=",
            "redis+sentinel://h1/svc?sentinel_username=u",
            "redis+sentinel://h1/s%20vc",
            "redis+sentinel://h1:26379,h1/svc",
            "redis+sentinel://h1:+26379/svc",
            "redis+sentinel://h1/svc/+1",
        ] {
            let err = RedisTarget::parse(bad).unwrap_err().to_string();
            assert!(
                !err.contains("secret") && !err.contains("h1"),
                "{bad}: {err}"
            );
        }
    }
}
