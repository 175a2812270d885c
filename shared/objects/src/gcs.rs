//! Objects in a Cloud Storage bucket, `gs://BUCKET[/PREFIX]`.
//!
//! Reads and writes go through the official client
//! (`google_cloud_storage::client::Storage`). That client has no delete or
//! list: in 1.21 those live only in `StorageControl`, which speaks gRPC
//! (`google.storage.v2`), and fake-gcs-server implements only the JSON API
//! (its gRPC surface is the old `google.storage.v1`), so a gRPC delete/list
//! could never be tested here. Delete and list therefore call the JSON API
//! (`/storage/v1/b/{bucket}/o`) directly, with the same credentials and the
//! same limits as the client.
//!
//! How uploads are sent, and why. Looking at the bytes on the wire (a socat
//! proxy between this client and fake-gcs-server 1.54):
//! - `send_unbuffered()` below 16 MiB posts one `multipart/related` body of
//!   three parts: JSON metadata, the media (no Content-Type header), and a
//!   third JSON part with the CRC32C computed while streaming
//!   (`{"crc32c":"…"}`, the client's "trailing checksums").
//! - `send_buffered()` below 16 MiB posts two parts: metadata with the CRC32C
//!   computed up front, and the media. From 16 MiB it uploads resumably: the
//!   metadata in one request, then the bytes in `PUT`s sent as
//!   `application/octet-stream`.
//!
//! fake-gcs-server reads the first part as metadata and every later part as
//! content, concatenated, taking the content type from the last part's
//! header. So the three-part upload is stored as `media + {"crc32c":…}` with
//! type `application/json`, and the client rightly rejects it (the stored
//! CRC32C is not the one it computed). The client's bodies are well-formed;
//! the emulator is at fault. We use `send_buffered()`, whose bytes every
//! server stores exactly, and whose checksum Cloud Storage verifies.
//!
//! The emulator also loses the content type with `send_buffered()`: an empty
//! or `application/octet-stream` Content-Type on the media part or on a
//! resumable `PUT` replaces the type given in the metadata (Cloud Storage
//! takes it from the metadata). So `put` checks the type in the service's
//! answer and, when it differs, sets it with a metadata `PATCH` conditioned
//! on the generation just written. Against Cloud Storage that never fires.
//!
//! One fault is the client's: it sends `Host:` without the endpoint's port
//! (`host: 127.0.0.1` for `http://127.0.0.1:4443`, against RFC 9110 §7.2),
//! and the emulator builds the resumable session URL from that header, so
//! uploads from 16 MiB would continue on port 80. Harmless against Cloud
//! Storage (443 is the default port); an emulator must listen on port 80
//! (the tests give each emulator port 80 on an address of its own).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use google_cloud_auth::credentials::{
    Builder as DefaultCredentials, CacheableResource, Credentials, anonymous,
};
use google_cloud_gax::backoff_policy::BackoffPolicy;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{RetryPolicy, RetryPolicyExt};
use google_cloud_gax::retry_result::RetryResult;
use google_cloud_gax::retry_state::RetryState;
use google_cloud_storage::client::Storage;
use google_cloud_storage::read_resume_policy::{ReadResumePolicyExt, Recommended};
use google_cloud_storage::retry_policy::RetryableErrors;
use reqwest::{StatusCode, Url};

use super::{
    ListedObject as Listed, MAX_PAGE, NameRange, ObjectError, ObjectResult, ObjectStore,
    StorageOptions, StoredObject,
};
use catdog_core::domain::ObjectName;

/// How long one operation may take, retries included, before the store says
/// storage is unavailable. A storage that is down answers within this (plus
/// [`GRACE`]), so a request handler can answer 503 instead of hanging.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(5);
/// Attempts per operation, the first one included.
const ATTEMPTS: u32 = 4;
/// The client's own retry policy normally gives up first with a clearer
/// error; the hard deadline (deadline + grace) covers the paths where the
/// client applies no timeout of its own (single-shot uploads).
const GRACE: Duration = Duration::from_secs(1);

const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

pub struct GcsStore {
    storage: Storage,
    json: JsonApi,
    bucket: String,
    /// `""`, or the configured prefix with one trailing `/`.
    prefix: String,
}

impl GcsStore {
    /// Builds the client; no request is made until the first operation.
    pub async fn connect(
        bucket: &str,
        prefix: &str,
        options: &StorageOptions,
    ) -> ObjectResult<Self> {
        let bucket = parse_bucket(bucket)?;
        let prefix = parse_prefix(prefix)?;
        let (endpoint, credentials) = match &options.endpoint {
            // An emulator takes no credentials.
            Some(endpoint) => (
                endpoint.trim_end_matches('/').to_owned(),
                anonymous::Builder::new().build(),
            ),
            None => (
                GOOGLE_ENDPOINT.to_owned(),
                DefaultCredentials::default()
                    .build()
                    .map_err(|e| ObjectError::Other(format!("no Google credentials: {e}")))?,
            ),
        };
        let base = Url::parse(&endpoint)
            .map_err(|e| ObjectError::BadUrl(format!("storage endpoint {endpoint:?}: {e}")))?;
        let retry: Arc<dyn RetryPolicy> = Arc::new(
            RetryableErrors
                .with_attempt_limit(ATTEMPTS)
                .with_time_limit(OPERATION_DEADLINE),
        );
        let backoff: Arc<dyn BackoffPolicy> = Arc::new(
            ExponentialBackoffBuilder::new()
                .with_initial_delay(Duration::from_millis(100))
                .with_maximum_delay(Duration::from_secs(1))
                .clamp(),
        );
        let storage = Storage::builder()
            .with_endpoint(endpoint.clone())
            .with_credentials(credentials.clone())
            .with_retry_policy(retry.clone())
            .with_backoff_policy(backoff.clone())
            .with_read_resume_policy(Recommended.with_attempt_limit(ATTEMPTS))
            .build()
            .await
            .map_err(|e| ObjectError::Other(format!("cannot build the storage client: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(OPERATION_DEADLINE)
            .build()
            .map_err(|e| ObjectError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            storage,
            json: JsonApi {
                http,
                base,
                credentials,
                retry,
                backoff,
            },
            bucket,
            prefix,
        })
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    fn key(&self, name: &ObjectName) -> String {
        format!("{}{}", self.prefix, name.as_str())
    }

    fn object_url(&self, name: &ObjectName) -> ObjectResult<Url> {
        let mut url = self.json.objects_url(&self.bucket)?;
        url.path_segments_mut()
            .map_err(|_| ObjectError::BadUrl("endpoint cannot take a path".to_owned()))?
            .push(&self.key(name));
        Ok(url)
    }

    /// One answer of the JSON API's object listing.
    async fn objects_page(&self, query: &[(&str, String)]) -> ObjectResult<ObjectsPage> {
        let url = self.json.objects_url(&self.bucket)?;
        self.json
            .send(reqwest::Method::GET, url, query, None)
            .await
            .map_err(|e| e.into_object_error("list"))?
            .json()
            .await
            .map_err(|e| ObjectError::Other(format!("list: unreadable answer: {e}")))
    }

    /// Corrects the type of the object just written (see the module comment),
    /// only if nobody has written a newer generation since.
    async fn set_content_type(
        &self,
        name: &ObjectName,
        generation: i64,
        content_type: &str,
    ) -> ObjectResult<()> {
        let url = self.object_url(name)?;
        let query = [("ifGenerationMatch", generation.to_string())];
        let body = serde_json::json!({ "contentType": content_type });
        match self
            .json
            .send(reqwest::Method::PATCH, url, &query, Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            // A newer write won; its type is its own.
            Err(JsonError::Status(StatusCode::PRECONDITION_FAILED, _)) => Ok(()),
            Err(e) => Err(e.into_object_error(name.as_str())),
        }
    }
}

/// Bucket names are 3–222 of `a-z 0-9 - _ .` (Cloud Storage's rule); checking
/// them keeps the name safe to put in a URL path.
fn parse_bucket(bucket: &str) -> ObjectResult<String> {
    let valid_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if (3..=222).contains(&bucket.len()) && valid_chars {
        Ok(bucket.to_owned())
    } else {
        Err(ObjectError::BadUrl(format!(
            "not a bucket name: {bucket:?}"
        )))
    }
}

/// `a/b/` from `a/b`, `/a/b/` or `a/b/`; refuses `.`/`..` and empty segments
/// so the prefix always names one place in the bucket.
fn parse_prefix(prefix: &str) -> ObjectResult<String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(ObjectError::BadUrl(format!(
            "not a usable prefix: {prefix:?}"
        )));
    }
    Ok(format!("{trimmed}/"))
}

/// Runs one operation under the hard deadline.
async fn within_deadline<T>(
    what: &str,
    operation: impl Future<Output = ObjectResult<T>>,
) -> ObjectResult<T> {
    match tokio::time::timeout(OPERATION_DEADLINE + GRACE, operation).await {
        Ok(result) => result,
        Err(_) => Err(ObjectError::Unavailable(format!(
            "{what}: no answer within {:?}",
            OPERATION_DEADLINE + GRACE
        ))),
    }
}

/// Maps the client's errors: 404 is NotFound; anything that says the service
/// could not be reached or is overloaded (and retries did not help) is
/// Unavailable, so callers answer 503 and try later.
fn client_error(name: &ObjectName, e: google_cloud_storage::Error) -> ObjectError {
    match e.http_status_code() {
        Some(404) => ObjectError::NotFound(name.to_string()),
        Some(408 | 429 | 500..=599) => ObjectError::Unavailable(format!("{name}: {e}")),
        Some(_) => ObjectError::Other(format!("{name}: {e}")),
        // A checksum mismatch or a request we built wrong: retrying later
        // would not help.
        None if e.is_serialization() || e.is_deserialization() || e.is_binding() => {
            ObjectError::Other(format!("{name}: {e}"))
        }
        // Refused, reset, timed out, retries exhausted, no token: the
        // service could not be reached.
        None => ObjectError::Unavailable(format!("{name}: {e}")),
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn put(&self, name: &ObjectName, bytes: Bytes, content_type: &str) -> ObjectResult<()> {
        let upload = self
            .storage
            .write_object(self.bucket_path(), self.key(name), bytes)
            .set_content_type(content_type)
            // Writing the same bytes under the same name twice is harmless,
            // so transient failures may be retried.
            .with_idempotency(true)
            .send_buffered();
        within_deadline(name.as_str(), async {
            let written = upload.await.map_err(|e| client_error(name, e))?;
            if written.content_type != content_type {
                self.set_content_type(name, written.generation, content_type)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, name: &ObjectName) -> ObjectResult<StoredObject> {
        within_deadline(name.as_str(), async {
            let mut response = self
                .storage
                .read_object(self.bucket_path(), self.key(name))
                .send()
                .await
                .map_err(|e| client_error(name, e))?;
            let content_type = match response.object().content_type {
                t if t.is_empty() => DEFAULT_CONTENT_TYPE.to_owned(),
                t => t,
            };
            let mut bytes = BytesMut::new();
            while let Some(chunk) = response.next().await {
                bytes.extend_from_slice(&chunk.map_err(|e| client_error(name, e))?);
            }
            Ok(StoredObject {
                bytes: bytes.freeze(),
                content_type,
            })
        })
        .await
    }

    async fn delete(&self, name: &ObjectName) -> ObjectResult<()> {
        within_deadline(name.as_str(), async {
            let url = self.object_url(name)?;
            match self
                .json
                .send(reqwest::Method::DELETE, url, &[], None)
                .await
            {
                Ok(_) => Ok(()),
                // Already gone is what the caller wanted.
                Err(JsonError::Status(StatusCode::NOT_FOUND, _)) => Ok(()),
                Err(e) => Err(e.into_object_error(name.as_str())),
            }
        })
        .await
    }

    async fn list(&self) -> ObjectResult<Vec<ObjectName>> {
        within_deadline("list", async {
            let mut names = Vec::new();
            let mut page_token: Option<String> = None;
            loop {
                let mut query = vec![
                    ("prefix", self.prefix.clone()),
                    ("maxResults", "1000".to_owned()),
                ];
                if let Some(token) = page_token.take() {
                    query.push(("pageToken", token));
                }
                let page = self.objects_page(&query).await?;
                names.extend(page.items.into_iter().filter_map(|item| {
                    item.name
                        .strip_prefix(&self.prefix)
                        // Anything else in the bucket is not ours to report.
                        .and_then(|rest| rest.parse::<ObjectName>().ok())
                }));
                match page.next_page_token {
                    Some(token) if !token.is_empty() => page_token = Some(token),
                    _ => break,
                }
            }
            names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Ok(names)
        })
        .await
    }
    async fn list_page(&self, range: &NameRange, limit: usize) -> ObjectResult<Vec<Listed>> {
        within_deadline("list", async {
            let limit = limit.clamp(1, MAX_PAGE);
            // The service filters by range itself (startOffset inclusive,
            // endOffset exclusive), so a page costs the same in any bucket.
            let mut query = vec![
                ("prefix", self.prefix.clone()),
                ("maxResults", limit.to_string()),
                ("fields", "items(name,updated)".to_owned()),
            ];
            if let Some(start) = &range.start {
                query.push(("startOffset", format!("{}{start}", self.prefix)));
            }
            if let Some(end) = &range.end {
                query.push(("endOffset", format!("{}{end}", self.prefix)));
            }
            let page = self.objects_page(&query).await?;
            let mut listed: Vec<Listed> = page
                .items
                .into_iter()
                .filter_map(|item| {
                    let name = item
                        .name
                        .strip_prefix(&self.prefix)?
                        .parse::<ObjectName>()
                        .ok()?;
                    // An object without a time is treated as just written,
                    // so a sweep never takes it for an old one.
                    let updated = item.updated.unwrap_or_else(chrono::Utc::now);
                    Some(Listed { name, updated })
                })
                .filter(|item| range.contains(item.name.as_str()))
                .collect();
            listed.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
            listed.truncate(limit);
            Ok(listed)
        })
        .await
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectsPage {
    #[serde(default)]
    items: Vec<ListedObject>,
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListedObject {
    name: String,
    /// RFC 3339; absent when a `fields` filter left it out.
    updated: Option<chrono::DateTime<chrono::Utc>>,
}

/// The JSON API calls the client lacks (delete, list, metadata patch), with
/// the client's credentials and its retry and backoff policies.
struct JsonApi {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    retry: Arc<dyn RetryPolicy>,
    backoff: Arc<dyn BackoffPolicy>,
}

#[derive(Debug)]
enum JsonError {
    /// The service answered with this status (and body).
    Status(StatusCode, String),
    /// No usable answer: refused, reset, timed out, or no credentials.
    Unreachable(String),
}

impl JsonError {
    /// The same failure as the client would report it, for its retry policy
    /// to judge.
    fn as_gax_error(&self) -> google_cloud_gax::error::Error {
        use google_cloud_gax::error::Error;
        match self {
            JsonError::Status(status, body) => {
                Error::http(status.as_u16(), http::HeaderMap::new(), body.clone().into())
            }
            JsonError::Unreachable(reason) => Error::io(reason.clone()),
        }
    }

    fn into_object_error(self, what: &str) -> ObjectError {
        match self {
            JsonError::Status(status, body)
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                ObjectError::Unavailable(format!("{what}: {status}: {body}"))
            }
            JsonError::Status(StatusCode::NOT_FOUND, _) => {
                ObjectError::Other(format!("{what}: the bucket does not exist"))
            }
            JsonError::Status(status, body) => {
                ObjectError::Other(format!("{what}: {status}: {body}"))
            }
            JsonError::Unreachable(reason) => ObjectError::Unavailable(format!("{what}: {reason}")),
        }
    }
}

impl JsonApi {
    fn objects_url(&self, bucket: &str) -> ObjectResult<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ObjectError::BadUrl("endpoint cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["storage", "v1", "b", bucket, "o"]);
        Ok(url)
    }

    /// Sends an idempotent request, retrying what the client's retry policy
    /// would retry (until [`ATTEMPTS`] or [`OPERATION_DEADLINE`] runs out),
    /// after the waits of its backoff policy. The loop is ours because
    /// google-cloud-gax keeps its own (`retry_loop_internal`) out of its
    /// public, semver-stable API; every decision in it is the policies'.
    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, JsonError> {
        let start = tokio::time::Instant::now().into_std();
        let mut attempt = 0_u32;
        loop {
            attempt += 1;
            let state = RetryState::new(true)
                .set_start(start)
                .set_attempt_count(attempt);
            let remaining = self
                .retry
                .remaining_time(&state)
                .unwrap_or(OPERATION_DEADLINE);
            let error = match self
                .attempt(method.clone(), url.clone(), query, body, remaining)
                .await
            {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            let delay = self.backoff.on_failure(&state);
            let retry = matches!(
                self.retry.on_error(&state, error.as_gax_error()),
                RetryResult::Continue(_)
            );
            let out_of_time = self
                .retry
                .remaining_time(&state)
                .is_some_and(|left| left <= delay);
            if !retry || out_of_time {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        method: reqwest::Method,
        url: Url,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<reqwest::Response, JsonError> {
        let auth = match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => http::HeaderMap::new(),
            Err(e) => return Err(JsonError::Unreachable(format!("credentials: {e}"))),
        };
        let mut request = self
            .http
            .request(method, url)
            .query(query)
            .headers(auth)
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| JsonError::Unreachable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(JsonError::Status(status, body.chars().take(300).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_one_place() {
        assert_eq!(parse_prefix("").unwrap(), "");
        assert_eq!(parse_prefix("/").unwrap(), "");
        assert_eq!(parse_prefix("a/b").unwrap(), "a/b/");
        assert_eq!(parse_prefix("/a/b/").unwrap(), "a/b/");
        assert!(parse_prefix("a/../b").is_err());
        assert!(parse_prefix("a//b").is_err());
        assert!(parse_prefix("./a").is_err());
    }

    #[test]
    fn bucket_names_follow_the_cloud_storage_rule() {
        assert!(parse_bucket("catdog-images_1.x").is_ok());
        assert!(parse_bucket("ab").is_err());
        assert!(parse_bucket("Upper").is_err());
        assert!(parse_bucket("a/b?c").is_err());
    }
}
