//! The sources pictures come from, each speaking its own contract. A source
//! first lists what it offers this run ([`Candidate`]s, cheap), then each
//! candidate is loaded on its own, so one bad picture costs only itself and a
//! large folder is never held in memory at once.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::Url;
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use super::config::{IngestConfig, SourceSpec};
use super::fetch::{self, FetchError, Fetcher};
use catdog_core::domain::PictureFormat;

/// The largest answer a source's JSON listing may be.
const LISTING_LIMIT: u64 = 1024 * 1024;
/// Folders are walked this deep at most.
const FOLDER_DEPTH: usize = 16;
/// The file names a folder source considers; their content is still sniffed.
const PICTURE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
    #[error("not a picture (JPEG, PNG, WebP, GIF, BMP or TIFF)")]
    NotAPicture,
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot read {path}: {error}")]
    Folder { path: String, error: String },
}

impl SourceError {
    /// What went wrong, in words from a fixed vocabulary: what the public
    /// stats and the run's summary say. The error itself may name URLs
    /// (with their query strings: tokens, API keys) or the operator's
    /// folders, so it goes to the operator's log only.
    pub fn public_kind(&self) -> String {
        match self {
            SourceError::Fetch(FetchError::Status(code)) => format!("http {code}"),
            SourceError::Fetch(FetchError::RetryAfterTooLong(_)) => "http 429".to_owned(),
            SourceError::Fetch(FetchError::Timeout(_)) => "timeout".to_owned(),
            SourceError::Fetch(FetchError::Network(_)) => "unreachable".to_owned(),
            SourceError::Fetch(FetchError::Refused(_)) => "refused address".to_owned(),
            SourceError::Fetch(FetchError::TooManyRedirects) => "too many redirects".to_owned(),
            SourceError::Fetch(FetchError::TooLarge { .. }) | SourceError::TooLarge { .. } => {
                "too large".to_owned()
            }
            SourceError::BadAnswer(_) => "bad response".to_owned(),
            SourceError::NotAPicture => "not a picture".to_owned(),
            SourceError::Folder { .. } => "unreadable file".to_owned(),
        }
    }
}

/// One picture a source offers this run, not loaded yet.
#[derive(Clone, Debug)]
pub(crate) enum Candidate {
    /// A URL a source's listing named.
    Download {
        url: Url,
        source_ref: Option<String>,
    },
    /// One `POST` to a generator.
    Generate { url: Url },
    /// A file of a folder source.
    File(FolderFile),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FolderFile {
    pub path: PathBuf,
    /// The path below the folder, with `/` separators.
    pub relative: String,
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// A loaded picture whose bytes are known to be one of our formats.
#[derive(Clone, Debug)]
pub(crate) struct Picture {
    pub bytes: Bytes,
    pub format: PictureFormat,
    pub source_ref: Option<String>,
}

/// Lists what `spec` offers this run.
pub(crate) async fn list(
    spec: &SourceSpec,
    config: &IngestConfig,
    fetcher: &Fetcher,
) -> Result<Vec<Candidate>, SourceError> {
    let batch = config.batch_size as usize;
    match spec {
        SourceSpec::TheCatApi => list_thecatapi(config, fetcher).await,
        SourceSpec::DogCeo => list_dogceo(config, fetcher).await,
        SourceSpec::Generator(url) => Ok(vec![Candidate::Generate { url: url.clone() }; batch]),
        SourceSpec::Folder(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || list_folder(&dir))
                .await
                .map_err(|e| SourceError::Folder {
                    path: String::new(),
                    error: e.to_string(),
                })?
                .map(|files| files.into_iter().map(Candidate::File).collect())
        }
    }
}

impl Candidate {
    /// Loads the picture: downloads or reads it, then checks its bytes.
    pub(crate) async fn load(&self, fetcher: &Fetcher, limit: u64) -> Result<Picture, SourceError> {
        let (bytes, source_ref) = match self {
            Candidate::Download { url, source_ref } => (
                fetcher.get(url, HeaderMap::new(), limit).await?,
                source_ref.clone(),
            ),
            Candidate::Generate { url } => {
                // Base64 is 4 bytes for every 3, plus some line breaks.
                let encoded = fetcher.post(url, limit / 3 * 4 + 4096).await?;
                (decode_base64_body(&encoded, limit)?, None)
            }
            Candidate::File(file) => (read_file(file, limit).await?, Some(file.relative.clone())),
        };
        let format = PictureFormat::sniff(&bytes).ok_or(SourceError::NotAPicture)?;
        Ok(Picture {
            bytes,
            format,
            source_ref,
        })
    }

    /// What to call this candidate in the operator's log: a URL without
    /// its query string or credentials (where API keys and tokens ride).
    pub(crate) fn describe(&self) -> String {
        match self {
            Candidate::Download { url, .. } => redacted(url),
            Candidate::Generate { .. } => "a generated picture".to_owned(),
            Candidate::File(file) => file.relative.clone(),
        }
    }
}

/// `url` for a log line: scheme, host, port and path; a query string or
/// credentials become `…`.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let hidden =
        shown.query().is_some() || !shown.username().is_empty() || shown.password().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if hidden {
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

/// `GET {base}/path` with the base's own path kept.
fn endpoint(base: &Url, path: &str) -> Result<Url, SourceError> {
    let joined = format!("{}/{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&joined).map_err(|e| SourceError::BadAnswer(format!("bad URL {joined}: {e}")))
}

fn picture_url(raw: &str) -> Result<Url, SourceError> {
    // The answer's text is never quoted: a source may echo our API key in it,
    // and these errors reach the log and /api/v1/stats.
    let url = Url::parse(raw).map_err(|e| {
        SourceError::BadAnswer(format!(
            "a picture URL in the answer does not parse ({e}, {} bytes)",
            raw.len()
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SourceError::BadAnswer(
            "a picture URL in the answer is not http(s)".to_owned(),
        ));
    }
    Ok(url)
}

#[derive(Deserialize)]
struct CatApiImage {
    id: String,
    url: String,
}

/// `GET {base}/v1/images/search?limit=N` → `[{id, url, width, height}]`.
async fn list_thecatapi(
    config: &IngestConfig,
    fetcher: &Fetcher,
) -> Result<Vec<Candidate>, SourceError> {
    let mut url = endpoint(&config.thecatapi_base_url, "v1/images/search")?;
    url.query_pairs_mut()
        .append_pair("limit", &config.batch_size.to_string());
    let headers = match &config.thecatapi_key {
        Some(key) => fetch::header("x-api-key", key.expose_secret()).ok_or_else(|| {
            SourceError::BadAnswer("THECATAPI_KEY is not a valid header value".to_owned())
        })?,
        None => HeaderMap::new(),
    };
    let body = fetcher.get(&url, headers, LISTING_LIMIT).await?;
    let images: Vec<CatApiImage> = serde_json::from_slice(&body).map_err(|e| {
        SourceError::BadAnswer(format!("not a list of images ({})", json_error(&e)))
    })?;
    // Without a key the API may answer more than asked for.
    images
        .into_iter()
        .take(config.batch_size as usize)
        .map(|image| {
            Ok(Candidate::Download {
                url: picture_url(&image.url)?,
                source_ref: Some(image.id),
            })
        })
        .collect()
}

/// What was wrong with a source's JSON, without quoting it: serde's own
/// text repeats the values it rejects, and an answer may echo our API key
/// (this text ends up in the log and in `/api/v1/stats`).
fn json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Eof => "cut short",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

#[derive(Deserialize)]
struct DogCeoAnswer {
    message: Vec<String>,
    status: String,
}

/// `GET {base}/api/breeds/image/random/N` → `{"message": [urls], "status": "success"}`.
async fn list_dogceo(
    config: &IngestConfig,
    fetcher: &Fetcher,
) -> Result<Vec<Candidate>, SourceError> {
    let url = endpoint(
        &config.dogceo_base_url,
        &format!("api/breeds/image/random/{}", config.batch_size),
    )?;
    let body = fetcher.get(&url, HeaderMap::new(), LISTING_LIMIT).await?;
    let answer: DogCeoAnswer = serde_json::from_slice(&body).map_err(|e| {
        SourceError::BadAnswer(format!("not a Dog CEO answer ({})", json_error(&e)))
    })?;
    if answer.status != "success" {
        return Err(SourceError::BadAnswer(format!(
            "status {:?}",
            answer.status
        )));
    }
    answer
        .message
        .into_iter()
        .take(config.batch_size as usize)
        .map(|raw| {
            let url = picture_url(&raw)?;
            Ok(Candidate::Download {
                source_ref: Some(url.path().trim_start_matches('/').to_owned()),
                url,
            })
        })
        .collect()
}

fn decode_base64_body(encoded: &[u8], limit: u64) -> Result<Bytes, SourceError> {
    // Tolerate what a text answer may carry around the data: whitespace,
    // line breaks, and JSON string quotes.
    let cleaned: Vec<u8> = encoded
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'"')
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .map_err(|_| SourceError::BadAnswer("the body is not base64".to_owned()))?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge { limit });
    }
    Ok(Bytes::from(bytes))
}

async fn read_file(file: &FolderFile, limit: u64) -> Result<Bytes, SourceError> {
    let folder_error = |e: std::io::Error| SourceError::Folder {
        path: file.relative.clone(),
        error: e.to_string(),
    };
    // Checked again at read time: the file may have grown since the listing.
    let len = tokio::fs::metadata(&file.path)
        .await
        .map_err(folder_error)?
        .len();
    if len > limit {
        return Err(SourceError::TooLarge { limit });
    }
    let bytes = tokio::fs::read(&file.path).await.map_err(folder_error)?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge { limit });
    }
    Ok(Bytes::from(bytes))
}

/// Every file under `dir` with a picture's extension, oldest first (by
/// modification time, then name; files without a time last). Only names,
/// sizes and times are kept, so a folder of any size lists cheaply.
/// Symbolic links to files are followed; to folders, not (no loops).
fn list_folder(dir: &Path) -> Result<Vec<FolderFile>, SourceError> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    while let Some((current, depth)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| SourceError::Folder {
            path: current.display().to_string(),
            error: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < FOLDER_DEPTH {
                    pending.push((path, depth + 1));
                }
                continue;
            }
            if !has_picture_extension(&path) {
                continue;
            }
            // Follows a symbolic link to its file.
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push(FolderFile {
                path,
                relative,
                len: metadata.len(),
                modified: metadata.modified().ok(),
            });
        }
    }
    files.sort_by(|a, b| {
        (a.modified.is_none(), a.modified, &a.relative).cmp(&(
            b.modified.is_none(),
            b.modified,
            &b.relative,
        ))
    });
    Ok(files)
}

fn has_picture_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICTURE_EXTENSIONS.iter().any(|p| e.eq_ignore_ascii_case(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_bodies_decode_with_line_breaks_and_quotes() {
        let data = base64::engine::general_purpose::STANDARD.encode(b"\xff\xd8\xffpicture");
        let (a, b) = data.split_at(4);
        let body = format!("\"{a}\n{b}\"\n");
        assert_eq!(
            &decode_base64_body(body.as_bytes(), 100).unwrap()[..],
            b"\xff\xd8\xffpicture"
        );
        assert!(matches!(
            decode_base64_body(b"not base64!", 100),
            Err(SourceError::BadAnswer(_))
        ));
        assert!(matches!(
            decode_base64_body(data.as_bytes(), 4),
            Err(SourceError::TooLarge { .. })
        ));
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let base = Url::parse("http://127.0.0.1:9/cats/").unwrap();
        assert_eq!(
            endpoint(&base, "v1/images/search").unwrap().as_str(),
            "http://127.0.0.1:9/cats/v1/images/search"
        );
    }
}
