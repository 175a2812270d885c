//! Downloads from strangers' servers, on our terms: bounded in time and size,
//! retried when the server asks for it, and never led into our own network.
//!
//! Redirects are followed here, one hop at a time, rather than inside reqwest,
//! so that every hop is checked: only the origins the operator configured may
//! be on loopback or a private network; any other URL, whether a source named
//! it or a redirect did, must resolve to public addresses only (checked on
//! the addresses actually connected to, so DNS tricks do not get around it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT_ENCODING, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};

/// How patient and how trusting the fetcher is.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Time for one attempt, from sending the request to the body's last byte
    /// (so a server dripping bytes is cut off).
    pub total_timeout: Duration,
    /// Attempts per download, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// The longest `Retry-After` honoured within a run. A server asking for
    /// more is not retried now: the next run comes soon enough.
    pub max_retry_after: Duration,
    pub max_redirects: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(10),
            max_redirects: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL (or a redirect) leads somewhere we never go.
    #[error("refused: {0}")]
    Refused(String),
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the server answered {0}")]
    Status(u16),
    #[error("the server asked to retry after {0:?}, longer than we wait")]
    RetryAfterTooLong(Duration),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("network error: {0}")]
    Network(String),
}

/// An HTTP client for downloads from sources. Cheap to share.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    /// For the origins the operator configured: the system resolver.
    configured: reqwest::Client,
    /// For everything else: only public addresses are connected to.
    guarded: reqwest::Client,
    trusted_origins: Vec<reqwest::Url>,
    options: FetchOptions,
}

/// A refusal raised inside the resolver, recognised again in the error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PrivateAddress(String);

/// Resolves names like the system does, then keeps only public addresses.
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                resolved.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(PrivateAddress(format!(
                    "{host} resolves only to loopback, private or link-local addresses"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (the metadata server lives there), shared, multicast or unspecified.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT and some clouds' internal ranges.
        || (a == 100 && (64..128).contains(&b))
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // 64:ff9b::/96 could reach private IPv4 through a NAT64.
        || (first == 0x64 && ip.segments()[1] == 0xff9b))
}

/// Why one attempt at a download failed.
enum Failure {
    /// Worth another try, after this long (or the usual backoff).
    Retry(FetchError, Option<Duration>),
    Final(FetchError),
}

impl Failure {
    fn error(&self) -> &FetchError {
        match self {
            Failure::Retry(error, _) | Failure::Final(error) => error,
        }
    }
}

impl Fetcher {
    /// A fetcher that trusts exactly `trusted_origins` (scheme, host and port)
    /// to be on a private network, because the operator configured them.
    pub fn new(options: FetchOptions, trusted_origins: &[Url]) -> Result<Self, FetchError> {
        let build = |guarded: bool| {
            let builder = reqwest::Client::builder()
                .connect_timeout(options.connect_timeout)
                .timeout(options.total_timeout)
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would connect for us, past the address checks.
                .no_proxy()
                // Bodies are limited as they arrive; never inflate them first.
                .no_gzip()
                .no_brotli()
                .no_deflate()
                .no_zstd()
                .user_agent(concat!("catdog-gallery/", env!("CARGO_PKG_VERSION")));
            let builder = if guarded {
                builder.dns_resolver(Arc::new(PublicOnlyResolver))
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| FetchError::Network(format!("cannot build the HTTP client: {e}")))
        };
        Ok(Self {
            inner: Arc::new(Inner {
                configured: build(false)?,
                guarded: build(true)?,
                trusted_origins: trusted_origins.to_vec(),
                options,
            }),
        })
    }

    pub fn options(&self) -> &FetchOptions {
        &self.inner.options
    }

    /// `GET url`, the body up to `limit` bytes.
    pub async fn get(
        &self,
        url: &Url,
        headers: HeaderMap,
        limit: u64,
    ) -> Result<Bytes, FetchError> {
        self.fetch(Method::GET, url, headers, limit).await
    }

    /// `POST url` with an empty body, the answer up to `limit` bytes.
    pub async fn post(&self, url: &Url, limit: u64) -> Result<Bytes, FetchError> {
        self.fetch(Method::POST, url, HeaderMap::new(), limit).await
    }

    /// One download with its retries: 5xx, 429 and failed connections are
    /// tried again with backoff (or after `Retry-After`); timeouts are not,
    /// because a server that was slow once is likely slow again.
    pub async fn fetch(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        limit: u64,
    ) -> Result<Bytes, FetchError> {
        let options = &self.inner.options;
        let policy = ExponentialBuilder::new()
            .with_min_delay(options.backoff)
            .with_factor(2.0)
            .without_max_delay()
            .with_max_times((options.attempts.max(1) - 1) as usize);
        // Set when a server asks for a longer wait than we give it: the
        // download then ends with that, not with the server's status.
        let mut asked_too_long = None;
        let mut attempt = 0;
        let result = (|| self.attempt(method.clone(), url, &headers, limit))
            .retry(policy)
            .when(|failure| matches!(failure, Failure::Retry(..)))
            .adjust(|failure, backoff| {
                // No backoff left: the attempts are used up.
                let backoff = backoff?;
                match failure {
                    Failure::Retry(_, Some(asked)) if *asked > options.max_retry_after => {
                        asked_too_long = Some(*asked);
                        None
                    }
                    Failure::Retry(_, Some(asked)) => Some(*asked),
                    _ => Some(backoff),
                }
            })
            .notify(|failure, wait| {
                attempt += 1;
                tracing::debug!(
                    url = %crate::sources::redacted(url),
                    attempt,
                    ?wait,
                    error = %failure.error(),
                    "retrying a download"
                );
            })
            .await;
        match (result, asked_too_long) {
            (Ok(bytes), _) => Ok(bytes),
            (Err(_), Some(asked)) => Err(FetchError::RetryAfterTooLong(asked)),
            (Err(Failure::Retry(error, _) | Failure::Final(error)), None) => Err(error),
        }
    }

    /// One attempt, following redirects hop by hop.
    async fn attempt(
        &self,
        mut method: Method,
        url: &Url,
        headers: &HeaderMap,
        limit: u64,
    ) -> Result<Bytes, Failure> {
        let options = &self.inner.options;
        let mut url = url.clone();
        let mut hops = 0;
        let response = loop {
            let client = match self.client_for(&url) {
                Ok(client) => client,
                Err(e) => return Err(Failure::Final(e)),
            };
            let mut request = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            request = request.header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => return Err(classify_error(e, options.total_timeout)),
            };
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                break response;
            }
            hops += 1;
            if hops > options.max_redirects {
                return Err(Failure::Final(FetchError::TooManyRedirects));
            }
            let Some(next) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| url.join(location).ok())
            else {
                return Err(Failure::Final(FetchError::Status(status.as_u16())));
            };
            // As browsers do: 303, and 301/302 after a POST, continue with GET.
            if status == StatusCode::SEE_OTHER
                || (method == Method::POST
                    && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
            {
                method = Method::GET;
            }
            url = next;
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let asked = retry_after(response.headers());
            return Err(Failure::Retry(FetchError::Status(status.as_u16()), asked));
        }
        if !status.is_success() {
            return Err(Failure::Final(FetchError::Status(status.as_u16())));
        }
        read_limited(response, limit, options.total_timeout).await
    }

    /// The client allowed to reach `url`, or why none is.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!(
                "{} is not http(s)",
                url.scheme()
            )));
        }
        let trusted = self
            .inner
            .trusted_origins
            .iter()
            .any(|o| o.origin() == url.origin());
        if trusted {
            return Ok(&self.inner.configured);
        }
        let Some(host) = url.host_str() else {
            return Err(FetchError::Refused("the URL has no host".to_owned()));
        };
        // Addresses written as such never reach the resolver: check them here.
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        match literal {
            Ok(ip) if !is_public(ip) => Err(refused(url)),
            _ if host.eq_ignore_ascii_case("localhost") => Err(refused(url)),
            _ => Ok(&self.inner.guarded),
        }
    }
}

fn refused(url: &Url) -> FetchError {
    FetchError::Refused(format!(
        "{} is a loopback, private or link-local address",
        url.host_str().unwrap_or_default()
    ))
}

fn classify_error(error: reqwest::Error, timeout: Duration) -> Failure {
    if let Some(private) = find_private_address(&error) {
        return Failure::Final(FetchError::Refused(private.0.clone()));
    }
    if error.is_timeout() {
        Failure::Final(FetchError::Timeout(timeout))
    } else {
        // Refused or reset connections, failed name lookups: try again.
        // reqwest names the URL in its message, query string and all; the
        // caller knows the URL and says what it may of it.
        Failure::Retry(FetchError::Network(error_chain(&error.without_url())), None)
    }
}

/// The resolver's refusal, wherever it sits in the error chain. The
/// connector wraps it in an `io::Error`, whose `source()` skips the error it
/// wraps, so those are looked into explicitly.
fn find_private_address<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a PrivateAddress> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(private) = e.downcast_ref::<PrivateAddress>() {
            return Some(private);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(private) = find_private_address(inner)
        {
            return Some(private);
        }
        current = e.source();
    }
    None
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Reads the body as it arrives and stops at `limit`, whatever the server
/// declared: a Content-Length above the limit is refused before reading, one
/// below it is not believed.
async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, Failure> {
    if response
        .content_length()
        .is_some_and(|declared| declared > limit)
    {
        return Err(Failure::Final(FetchError::TooLarge { limit }));
    }
    let capacity = response.content_length().unwrap_or(64 * 1024).min(limit) as usize;
    let mut body = BytesMut::with_capacity(capacity);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(Failure::Final(FetchError::TooLarge { limit }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) if e.is_timeout() => return Err(Failure::Final(FetchError::Timeout(timeout))),
            Err(e) => {
                return Err(Failure::Retry(
                    FetchError::Network(error_chain(&e.without_url())),
                    None,
                ));
            }
        }
    }
}

/// A header for [`Fetcher::get`], e.g. an API key.
pub(crate) fn header(name: &'static str, value: &str) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "151.101.1.1", "2607:f8b0::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_internal_addresses_are_refused() {
        use std::str::FromStr as _;
        for name in ["localhost", "127.0.0.1", "ip6-localhost"] {
            let Ok(name) = Name::from_str(name) else {
                continue;
            };
            match PublicOnlyResolver.resolve(name).await {
                Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
                // Either refused, or unknown on this machine (ip6-localhost).
                Err(e) => assert!(
                    e.downcast_ref::<PrivateAddress>().is_some()
                        || e.downcast_ref::<std::io::Error>().is_some(),
                    "{e}"
                ),
            }
        }
        let Err(e) = PublicOnlyResolver
            .resolve(Name::from_str("localhost").unwrap())
            .await
        else {
            panic!("localhost resolved")
        };
        assert!(e.downcast_ref::<PrivateAddress>().is_some(), "{e}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_configured_origins_may_be_private() {
        let trusted = Url::parse("http://127.0.0.1:4000/api").unwrap();
        let fetcher = Fetcher::new(FetchOptions::default(), &[trusted]).unwrap();
        let ok = |u: &str| fetcher.client_for(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("http://127.0.0.1:4000/images/1.jpg"));
        assert!(!ok("http://127.0.0.1:4001/"));
        assert!(!ok("http://169.254.169.254/computeMetadata/v1/"));
        assert!(!ok("http://[::1]:4000/"));
        assert!(!ok("http://localhost:4000/"));
        assert!(!ok("file:///etc/passwd"));
        assert!(ok("https://cdn2.thecatapi.com/images/abc.jpg"));
    }
}
