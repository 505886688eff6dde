//! `load`: drives a running Gatehouse provider the way clients do, and reports flows per
//! second, errors, latency percentiles, and (given the provider's pid) the provider's CPU time
//! per flow and its resident memory, read from `/proc`.
//!
//! ```text
//! cargo run --release --bin load -- sso --concurrency 32 --duration 20s --pid $(pgrep -x gatehouse)
//! ```
//!
//! Flows: `login` (fresh cookie jar, the HTML sign-in form, consent if asked, code exchange),
//! `sso` (authorize with the session cookie → code → token → userinfo), `refresh` (one
//! rotation per flow), `client-credentials`, `userinfo`, `discovery`, `jwks`.
//!
//! Written here rather than with a generic HTTP load tool (wrk, oha) because the flows are
//! stateful (cookies, CSRF tokens, PKCE, rotating refresh tokens) and because the provider's
//! own CPU time per flow is the figure that matters. Percentiles come from the sorted
//! latencies themselves (exact; a run holds at most a few hundred thousand samples).

use anyhow::{Context, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, ValueEnum};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Flow {
    Login,
    Sso,
    Refresh,
    ClientCredentials,
    Userinfo,
    Discovery,
    Jwks,
}

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "Load generator for a running Gatehouse provider"
)]
struct Args {
    /// What each virtual client does, over and over.
    #[arg(value_enum)]
    flow: Flow,
    /// The provider's issuer URL (`*.localhost` resolves to loopback).
    #[arg(long, default_value = "http://idp.localhost:4000")]
    issuer: String,
    /// Concurrent virtual clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to measure (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to run before measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// The provider's process id: report its CPU time per flow and its memory.
    #[arg(long)]
    pid: Option<u32>,
    /// The client that signs users in (the demo's App A).
    #[arg(long, default_value = "app-a")]
    client_id: String,
    #[arg(long, default_value = "app-a-secret")]
    client_secret: String,
    #[arg(long, default_value = "http://app-a.localhost:5001/callback")]
    redirect_uri: String,
    /// The machine client for `client-credentials` (the demo's service).
    #[arg(long, default_value = "demo-service")]
    service_id: String,
    #[arg(long, default_value = "demo-service-secret")]
    service_secret: String,
    #[arg(long, default_value = "alice")]
    username: String,
    #[arg(long, default_value = "wonderland")]
    password: String,
    /// Also print the result as one JSON line.
    #[arg(long)]
    json: bool,
    /// Also print the result as a Markdown table row starting with this label (columns:
    /// flows/s, p50, p99, provider CPU per flow, this tool's CPU per flow, provider peak RSS,
    /// errors).
    #[arg(long, value_name = "LABEL")]
    row: Option<String>,
}

/// One virtual client: an HTTP connection pool of its own and, for some flows, state.
struct Client {
    http: reqwest::Client,
    args: Arc<Args>,
    cookies: BTreeMap<String, String>,
    refresh_token: Option<String>,
    access_token: Option<String>,
}

/// A PKCE verifier (256 random bits) and its S256 challenge.
fn pkce() -> anyhow::Result<(String, String)> {
    let verifier = infra::secret::random_token().map_err(|e| anyhow!("no randomness: {e}"))?;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Ok((verifier, challenge))
}

/// The `value` of `<input … name="NAME" value="VALUE">` in our templates.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    let value = &rest[..rest.find('"')?];
    Some(value.replace("&amp;", "&").replace("&#38;", "&"))
}

impl Client {
    fn new(args: Arc<Args>) -> anyhow::Result<Self> {
        Ok(Self {
            http: infra::http::client_builder().build()?,
            args,
            cookies: BTreeMap::new(),
            refresh_token: None,
            access_token: None,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.args.issuer.trim_end_matches('/'))
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
    }

    /// One request with the jar's cookies; returns status, `Location` (absolute) and body.
    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, Option<String>, String)> {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header(COOKIE, self.cookie_header())
        };
        let resp = req.send().await?;
        self.keep_cookies(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                if l.starts_with('/') {
                    self.url(l)
                } else {
                    l.to_owned()
                }
            });
        let body = resp.text().await?;
        Ok((status, location, body))
    }

    fn authorize_url(&self, state: &str, challenge: &str) -> anyhow::Result<String> {
        let mut url = url::Url::parse(&self.url("/authorize"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.args.client_id)
            .append_pair("redirect_uri", &self.args.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", state)
            .append_pair("nonce", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// The code in a redirect to the client, after checking its `state`.
    fn code_of(&self, location: &str, state: &str) -> anyhow::Result<String> {
        ensure!(
            location.starts_with(&self.args.redirect_uri),
            "expected the client's redirect URI, got {location}"
        );
        let url = url::Url::parse(location)?;
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = get("error") {
            bail!("authorization error {error}");
        }
        ensure!(get("state").as_deref() == Some(state), "state mismatch");
        get("code").ok_or_else(|| anyhow!("no code in {location}"))
    }

    async fn token(&mut self, form: &[(&str, &str)], basic: (&str, &str)) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(self.url("/token"))
            .basic_auth(basic.0, Some(basic.1))
            .form(form)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(status.is_success(), "token endpoint said {status}: {body}");
        Ok(body)
    }

    async fn redeem(&mut self, code: &str, verifier: &str) -> anyhow::Result<Value> {
        let args = self.args.clone();
        let tokens = self
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &args.redirect_uri),
                    ("code_verifier", verifier),
                ],
                (&args.client_id, &args.client_secret),
            )
            .await?;
        ensure!(tokens["id_token"].is_string(), "no ID token: {tokens}");
        self.access_token = tokens["access_token"].as_str().map(str::to_owned);
        self.refresh_token = tokens["refresh_token"].as_str().map(str::to_owned);
        Ok(tokens)
    }

    /// The whole sign-in with a fresh cookie jar: authorize, the login form, consent if asked,
    /// and the code exchange.
    async fn login(&mut self) -> anyhow::Result<()> {
        self.cookies.clear();
        let (verifier, challenge) = pkce()?;
        let state = pkce()?.0;
        let args = self.args.clone();
        let (mut status, mut location, mut body) = self
            .send(self.http.get(self.authorize_url(&state, &challenge)?))
            .await?;
        let mut page_url = String::new();
        for _ in 0..10 {
            match (status, location.take()) {
                (300..=399, Some(loc)) if loc.starts_with(&args.redirect_uri) => {
                    let code = self.code_of(&loc, &state)?;
                    self.redeem(&code, &verifier).await?;
                    return Ok(());
                }
                (300..=399, Some(loc)) => {
                    page_url = loc.clone();
                    (status, location, body) = self.send(self.http.get(&loc)).await?;
                }
                (200, None) if page_url.contains("/login") => {
                    let csrf = hidden(&body, "csrf_token").context("login form")?;
                    let request = hidden(&body, "request").unwrap_or_default();
                    let form = [
                        ("username", args.username.as_str()),
                        ("password", args.password.as_str()),
                        ("csrf_token", csrf.as_str()),
                        ("request", request.as_str()),
                    ];
                    page_url.clear();
                    (status, location, body) = self
                        .send(self.http.post(self.url("/login")).form(&form))
                        .await?;
                }
                (200, None) if page_url.contains("/consent") => {
                    let csrf = hidden(&body, "csrf_token").context("consent form")?;
                    let request = hidden(&body, "request").unwrap_or_default();
                    let form = [
                        ("decision", "allow"),
                        ("csrf_token", csrf.as_str()),
                        ("request", request.as_str()),
                    ];
                    page_url.clear();
                    (status, location, body) = self
                        .send(self.http.post(self.url("/consent")).form(&form))
                        .await?;
                }
                (s, _) => bail!("sign-in stopped at {page_url} with {s}: {body:.200}"),
            }
        }
        bail!("sign-in went round in circles")
    }

    /// Single sign-on with the session cookie: authorize → code → token → userinfo.
    async fn sso(&mut self) -> anyhow::Result<()> {
        let (verifier, challenge) = pkce()?;
        let state = pkce()?.0;
        let (status, location, body) = self
            .send(self.http.get(self.authorize_url(&state, &challenge)?))
            .await?;
        let location = location
            .filter(|_| (300..400).contains(&status))
            .ok_or_else(|| anyhow!("authorize answered {status}: {body:.200}"))?;
        let code = self.code_of(&location, &state)?;
        self.redeem(&code, &verifier).await?;
        self.userinfo().await
    }

    async fn refresh(&mut self) -> anyhow::Result<()> {
        let token = self
            .refresh_token
            .clone()
            .ok_or_else(|| anyhow!("no refresh token (does the client have the grant?)"))?;
        let args = self.args.clone();
        let tokens = self
            .token(
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                (&args.client_id, &args.client_secret),
            )
            .await?;
        self.refresh_token = tokens["refresh_token"].as_str().map(str::to_owned);
        ensure!(self.refresh_token.is_some(), "no rotated refresh token");
        Ok(())
    }

    async fn client_credentials(&mut self) -> anyhow::Result<()> {
        let args = self.args.clone();
        let tokens = self
            .token(
                &[("grant_type", "client_credentials")],
                (&args.service_id, &args.service_secret),
            )
            .await?;
        ensure!(tokens["access_token"].is_string(), "no access token");
        Ok(())
    }

    async fn userinfo(&mut self) -> anyhow::Result<()> {
        let token = self.access_token.clone().context("no access token")?;
        let resp = self
            .http
            .get(self.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(
            status.is_success() && body["sub"].is_string(),
            "userinfo: {status} {body}"
        );
        Ok(())
    }

    async fn get_json(&mut self, path: &str) -> anyhow::Result<()> {
        let resp = self.http.get(self.url(path)).send().await?;
        let status = resp.status();
        let _: Value = resp.json().await?;
        ensure!(status.is_success(), "{path}: {status}");
        Ok(())
    }

    /// What a virtual client does before the flow can run.
    async fn setup(&mut self, flow: Flow) -> anyhow::Result<()> {
        if matches!(flow, Flow::Sso | Flow::Refresh | Flow::Userinfo) {
            self.login().await?;
        }
        Ok(())
    }

    async fn run(&mut self, flow: Flow) -> anyhow::Result<()> {
        match flow {
            Flow::Login => self.login().await,
            Flow::Sso => self.sso().await,
            Flow::Refresh => self.refresh().await,
            Flow::ClientCredentials => self.client_credentials().await,
            Flow::Userinfo => self.userinfo().await,
            Flow::Discovery => self.get_json("/.well-known/openid-configuration").await,
            Flow::Jwks => self.get_json("/jwks").await,
        }
    }
}

/// CPU time (user + system) of a process, from `/proc/PID/stat` (clock ticks of 10 ms: Linux
/// reports them in USER_HZ, which is 100).
fn cpu_time(pid: u32) -> Option<Duration> {
    cpu_split(pid).map(|(user, system)| user + system)
}

/// A process's CPU time in user space and in the kernel, from `/proc/PID/stat` (ticks of
/// 10 ms).
fn cpu_split(pid: u32) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> Option<Duration> {
        Some(Duration::from_millis(
            fields.get(i)?.parse::<u64>().ok()? * 10,
        ))
    };
    Some((tick(11)?, tick(12)?))
}

/// The whole machine's busy CPU time (every core, every process: the provider, the load tool,
/// PostgreSQL, Redis), from the first line of `/proc/stat`: all but idle and iowait.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(Duration::from_millis(busy * 10))
}

/// Resident memory of a process in KiB (`VmRSS`) from `/proc/PID/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The machine, for the report: CPU model, cores, memory, kernel.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| format!(", {} GiB", kib / 1024 / 1024));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores{mem}, Linux {}", kernel.trim())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let flow = args.flow;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let ready = Arc::new(tokio::sync::Barrier::new(args.concurrency + 1));

    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (args, measuring, stop, errors, first_error, ready) = (
            args.clone(),
            measuring.clone(),
            stop.clone(),
            errors.clone(),
            first_error.clone(),
            ready.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u64> = Vec::new();
            let mut client = match Client::new(args) {
                Ok(c) => c,
                Err(e) => {
                    ready.wait().await;
                    return Err(e);
                }
            };
            let setup = client.setup(flow).await;
            ready.wait().await;
            setup.context("setting up a virtual client")?;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = client.run(flow).await;
                let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if !measuring.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    continue;
                }
                match result {
                    Ok(()) => latencies.push(took),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_error.lock().await;
                        if first.is_none() {
                            *first = Some(format!("{e:#}"));
                        }
                        // A refresh chain that broke cannot go on: sign in again.
                        if flow == Flow::Refresh {
                            let _ = client.login().await;
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    ready.wait().await;
    let idle_rss = args.pid.and_then(rss_kib);
    tokio::time::sleep(args.warmup).await;
    let cpu_before = args.pid.and_then(cpu_split);
    let own_before = cpu_time(std::process::id());
    let machine_before = machine_busy();
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < args.duration {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(rss) = args.pid.and_then(rss_kib) {
            peak_rss = peak_rss.max(rss);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu_after = args.pid.and_then(cpu_split);
    let own_after = cpu_time(std::process::id());
    let machine_after = machine_busy();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await??);
    }
    latencies.sort_unstable();
    let flows = latencies.len() as u64;
    let errors = errors.load(Ordering::Relaxed);
    let rate = flows as f64 / elapsed.as_secs_f64();
    let split = cpu_before
        .zip(cpu_after)
        .map(|(a, b)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1)));
    let cpu = split.map(|(user, system)| user + system);
    // The kernel's share of the provider's CPU (scheduling, system calls, network).
    let kernel_share = split
        .filter(|(u, s)| !(*u + *s).is_zero())
        .map(|(u, s)| s.as_secs_f64() / (u + s).as_secs_f64());
    // Every process's CPU per flow: work the provider moved into PostgreSQL or Redis counts.
    let machine_per_flow_ms = machine_before
        .zip(machine_after)
        .filter(|_| flows > 0)
        .map(|(a, b)| b.saturating_sub(a).as_micros() as f64 / flows as f64 / 1000.0);
    // This tool's own CPU: on a machine it shares with the provider, it is what the provider
    // did not get.
    let own = own_before
        .zip(own_after)
        .map(|(a, b)| b.saturating_sub(a))
        .filter(|_| flows > 0)
        .map(|c| c.as_micros() as f64 / flows as f64 / 1000.0);

    let name = format!("{:?}", args.flow).to_lowercase();
    println!("machine      {}", machine());
    println!(
        "flow         {name}, {} clients, {:.1} s measured after {:.1} s warm-up",
        args.concurrency,
        elapsed.as_secs_f64(),
        args.warmup.as_secs_f64()
    );
    println!("flows        {flows} ({rate:.1}/s), errors {errors}");
    println!(
        "latency      p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or(0))
    );
    let cpu_per_flow_us = cpu
        .filter(|_| flows > 0)
        .map(|c| c.as_micros() as f64 / flows as f64);
    if let Some(per) = cpu_per_flow_us {
        println!(
            "provider     CPU {:.3} ms per flow ({:.0}% of one core), RSS idle {} MiB, peak {} MiB",
            per / 1000.0,
            cpu.map_or(0.0, |c| c.as_secs_f64() / elapsed.as_secs_f64() * 100.0),
            idle_rss.unwrap_or(0) / 1024,
            peak_rss / 1024
        );
    }
    if let Some(own) = own {
        println!("load tool    CPU {own:.3} ms per flow");
    }
    if let Some(m) = machine_per_flow_ms {
        println!(
            "machine      CPU {m:.3} ms per flow (every process){}",
            kernel_share.map_or_else(String::new, |k| format!(
                "; kernel {:.0}% of the provider's",
                k * 100.0
            ))
        );
    }
    if let Some(e) = first_error.lock().await.as_ref() {
        println!("first error  {e}");
    }
    if let Some(label) = &args.row {
        let cpu = cpu_per_flow_us.map_or_else(|| "n/a".into(), |u| format!("{:.3} ms", u / 1000.0));
        let rss = args
            .pid
            .map_or_else(|| "n/a".into(), |_| format!("{} MiB", peak_rss / 1024));
        let own = own.map_or_else(|| "n/a".into(), |o| format!("{o:.3} ms"));
        println!(
            "| {label} | {rate:.0} | {} | {} | {cpu} | {own} | {rss} | {errors} |",
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
        );
    }
    if args.json {
        let out = serde_json::json!({
            "machine": machine(),
            "flow": name,
            "concurrency": args.concurrency,
            "seconds": elapsed.as_secs_f64(),
            "flows": flows,
            "flows_per_second": rate,
            "errors": errors,
            "p50_ms": percentile(&latencies, 50.0) as f64 / 1000.0,
            "p90_ms": percentile(&latencies, 90.0) as f64 / 1000.0,
            "p99_ms": percentile(&latencies, 99.0) as f64 / 1000.0,
            "max_ms": latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
            "cpu_ms_per_flow": cpu_per_flow_us.map(|u| u / 1000.0),
            "load_tool_cpu_ms_per_flow": own,
            "machine_cpu_ms_per_flow": machine_per_flow_ms,
            "provider_kernel_share": kernel_share,
            "rss_idle_mib": idle_rss.map(|k| k / 1024),
            "rss_peak_mib": args.pid.map(|_| peak_rss / 1024),
        });
        println!("{out}");
    }
    if flows == 0 {
        bail!("no flow completed");
    }
    Ok(())
}
