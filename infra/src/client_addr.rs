//! The client's address (README "Hostile clients" 2): the TCP peer, unless the peer is a
//! proxy the operator trusts (`trusted_proxies`); then the right-most hop, in the one header
//! the operator's proxies write (`X-Forwarded-For` by default, or `Forwarded`, RFC 7239 §5.2),
//! that is not itself a trusted proxy. Everything left of that hop was written by the client
//! and is ignored, so a client cannot choose its own address; the other header, which the
//! proxy passes through as the client sent it, is never read; without trusted proxies no
//! header is read at all. Only proxies belong in `trusted_proxies`: a client inside those
//! networks could write hops of its own.
//!
//! Also [`rate_key`]: the key under which an address is throttled and rate-limited, an IPv6
//! address by its /64 (one subscriber's allocation supplies that many addresses).
//!
//! Written here because the crates that read these headers (`axum-client-ip` and the like)
//! take the right-most value or trust a fixed number of hops, not a chain walked through a
//! set of trusted networks.

use axum::http::HeaderMap;
use ipnet::{IpNet, Ipv6Net};
use std::net::IpAddr;

/// The client's address, as this module decides it: put in every request's extensions by
/// the server loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which header the trusted proxies write (`trusted_proxy_header`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx's `$proxy_add_x_forwarded_for`, most load
    /// balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The proxies to believe and the header they write.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    pub trusted: Vec<IpNet>,
    pub header: ForwardedHeader,
}

/// The client's address for a request from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &Proxies) -> IpAddr {
    let trusted = &proxies.trusted;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(&ip));
    let mut addr = peer.to_canonical();
    if !is_trusted(addr) {
        return addr;
    }
    for hop in hops(headers, proxies.header).into_iter().rev() {
        match hop {
            Some(ip) => {
                addr = ip.to_canonical();
                if !is_trusted(addr) {
                    return addr;
                }
            }
            // "unknown" or an obfuscated name (RFC 7239 §6): the chain ends at the last
            // trusted proxy.
            None => return addr,
        }
    }
    addr
}

/// The hops the proxies recorded in `header`, left (the first client) to right (the last
/// proxy's client), every header line in order. Each element is decoded on its own, so bytes
/// a client wrote cannot spoil the elements its proxies appended.
fn hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let elements = headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|e| std::str::from_utf8(e).unwrap_or("").trim());
    match header {
        ForwardedHeader::XForwardedFor => elements.map(node).collect(),
        ForwardedHeader::Forwarded => elements
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| node(value))
                })?
            })
            .collect(),
    }
}

/// An address out of a node (`192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`); `None` for anything else.
fn node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    let (host, port) = value.rsplit_once(':')?;
    port.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
pub fn rate_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|n| n.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

/// Parses `trusted_proxies` (networks, or single addresses).
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("trusted_proxies: {e:?} is not an address or a network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(nets: &[&str]) -> Proxies {
        Proxies {
            trusted: parse_trusted(&nets.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap(),
            header: ForwardedHeader::XForwardedFor,
        }
    }

    #[test]
    fn headers_count_only_behind_a_trusted_proxy() {
        let trusted = xff(&["10.0.0.0/8", "192.0.2.10"]);
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // Straight from a client: its claim is ignored.
        assert_eq!(
            resolve(ip("198.51.100.7"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
        // No trusted proxies configured: never read.
        assert_eq!(
            resolve(ip("10.0.0.1"), &spoofed, &Proxies::default()),
            ip("10.0.0.1")
        );
        // Behind the proxy: the proxy's client.
        assert_eq!(
            resolve(ip("10.0.0.1"), &spoofed, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_wins() {
        let trusted = xff(&["10.0.0.0/8"]);
        // The client wrote "1.2.3.4" itself; the proxies appended its real address and theirs.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4, 198.51.100.7"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        // Every hop trusted: the left-most.
        let h = headers(&[("x-forwarded-for", "10.3.3.3, 10.2.2.2")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.3.3.3"));
        // Garbage ends the chain at the last trusted proxy.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, not-an-address")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        // Bytes the client wrote spoil only its own element.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap(),
        );
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
    }

    /// The header the proxies do not write is the client's own: never read.
    #[test]
    fn only_the_configured_header_is_read() {
        let h = headers(&[
            ("forwarded", "for=203.0.113.66"),
            ("x-forwarded-for", "203.0.113.66, 198.51.100.7"),
        ]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &xff(&["10.0.0.0/8"])),
            ip("198.51.100.7")
        );
        let rfc = Proxies {
            header: ForwardedHeader::Forwarded,
            ..xff(&["10.0.0.0/8"])
        };
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.66"),
            ("forwarded", "for=203.0.113.66, for=198.51.100.7"),
        ]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &rfc), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_is_parsed() {
        let trusted = Proxies {
            header: ForwardedHeader::Forwarded,
            ..xff(&["10.0.0.0/8"])
        };
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            (
                "forwarded",
                "for=1.2.3.4;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
            ),
        ]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "For=198.51.100.7:8080")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        // A mapped peer address is its IPv4 address.
        assert_eq!(
            resolve(
                ip("::ffff:10.0.0.1"),
                &headers(&[("forwarded", "for=_hidden")]),
                &trusted
            ),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv6_is_counted_by_its_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            rate_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(rate_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(rate_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert!(parse_trusted(&["10.0.0.0/33".into()]).is_err());
    }
}
