//! Objects as files in a folder: the embedded default of local mode.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::fs;

use super::{
    ListedObject, MAX_PAGE, NameRange, ObjectError, ObjectResult, ObjectStore, StoredObject,
};
use catdog_core::domain::{ImageId, ObjectName};

/// Keeps each object as a file named like the object, and its content type in
/// a sibling file, so what is read back is exactly what was written.
pub struct FolderStore {
    root: PathBuf,
}

const TYPE_SUFFIX: &str = ".content-type";

impl FolderStore {
    pub async fn open(dir: &str) -> ObjectResult<Self> {
        if dir.is_empty() {
            return Err(ObjectError::BadUrl("file:// needs a folder".to_owned()));
        }
        let root = PathBuf::from(dir);
        fs::create_dir_all(root.join("thumbs"))
            .await
            .map_err(|e| ObjectError::Other(format!("cannot create {}: {e}", root.display())))?;
        Ok(Self { root })
    }

    /// The folders objects live in, with the prefix of their names there.
    fn folders(&self) -> [(PathBuf, &'static str); 2] {
        [
            (self.root.clone(), ""),
            (self.root.join("thumbs"), "thumbs/"),
        ]
    }

    /// The file an object lives in. `ObjectName` only holds names we made
    /// (an image id, or `thumbs/` + id + `.jpg`), so this never leaves `root`.
    fn path_of(&self, name: &ObjectName) -> PathBuf {
        self.root.join(name.as_str())
    }
}

fn io_error(name: &ObjectName, e: std::io::Error) -> ObjectError {
    use std::io::ErrorKind;
    if e.kind() == ErrorKind::NotFound {
        ObjectError::NotFound(name.to_string())
    } else if is_transient(&e) {
        // Callers answer 503 with Retry-After (Pub/Sub redelivers the push):
        // the picture is fine, the machine is not, for now.
        ObjectError::Unavailable(format!("{name}: {e}"))
    } else {
        ObjectError::Other(format!("{name}: {e}"))
    }
}

/// A disk that is full or read-only, a quota reached, or no file
/// descriptor left: conditions that pass, not a bad object.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    /// EMFILE and ENFILE (the same numbers on Linux and macOS): std has no
    /// stable ErrorKind for them.
    const TOO_MANY_OPEN_FILES: [i32; 2] = [24, 23];
    matches!(
        e.kind(),
        ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem | ErrorKind::QuotaExceeded
    ) || e
        .raw_os_error()
        .is_some_and(|code| cfg!(unix) && TOO_MANY_OPEN_FILES.contains(&code))
}

/// The names of the files in `dir` that are valid UTF-8 (ours all are);
/// none when the folder is not there.
async fn file_names(dir: &Path) -> ObjectResult<Vec<String>> {
    let mut entries = match fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ObjectError::Other(format!("{}: {e}", dir.display()))),
    };
    let mut names = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| ObjectError::Other(e.to_string()))?
    {
        if let Some(file) = entry.file_name().to_str() {
            names.push(file.to_owned());
        }
    }
    Ok(names)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes through a temporary file and a rename, so a reader never sees half
/// an object and a crash leaves no partial file under the real name.
async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = with_suffix(path, &format!(".tmp-{}", ImageId::new()));
    fs::write(&tmp, bytes).await?;
    match fs::rename(&tmp, path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

#[async_trait]
impl ObjectStore for FolderStore {
    async fn put(&self, name: &ObjectName, bytes: Bytes, content_type: &str) -> ObjectResult<()> {
        let path = self.path_of(name);
        // The type first: an object file is only there once its type is.
        write_atomically(&with_suffix(&path, TYPE_SUFFIX), content_type.as_bytes())
            .await
            .map_err(|e| io_error(name, e))?;
        write_atomically(&path, &bytes)
            .await
            .map_err(|e| io_error(name, e))
    }

    async fn get(&self, name: &ObjectName) -> ObjectResult<StoredObject> {
        let path = self.path_of(name);
        let bytes = fs::read(&path).await.map_err(|e| io_error(name, e))?;
        let content_type = fs::read_to_string(with_suffix(&path, TYPE_SUFFIX))
            .await
            .unwrap_or_else(|_| "application/octet-stream".to_owned());
        Ok(StoredObject {
            bytes: Bytes::from(bytes),
            content_type,
        })
    }

    async fn delete(&self, name: &ObjectName) -> ObjectResult<()> {
        let path = self.path_of(name);
        for p in [path.clone(), with_suffix(&path, TYPE_SUFFIX)] {
            match fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(name, e)),
            }
        }
        Ok(())
    }

    async fn list(&self) -> ObjectResult<Vec<ObjectName>> {
        let mut names = Vec::new();
        for (dir, prefix) in self.folders() {
            for file in file_names(&dir).await? {
                if let Ok(name) = format!("{prefix}{file}").parse::<ObjectName>() {
                    names.push(name);
                }
            }
        }
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(names)
    }

    /// Temporary files of writes that never finished (`NAME.tmp-ID`, left
    /// by a crash or a full disk between write and rename), and content-type
    /// files whose object is gone (a crash between the two files of a put).
    async fn sweep_leftovers(&self, older_than: std::time::Duration) -> ObjectResult<usize> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut removed = 0;
        for (dir, _) in self.folders() {
            for file in file_names(&dir).await? {
                let path = dir.join(&file);
                let leftover = if file.contains(".tmp-") {
                    true
                } else if let Some(object) = file.strip_suffix(TYPE_SUFFIX) {
                    !fs::try_exists(dir.join(object)).await.unwrap_or(true)
                } else {
                    false
                };
                if !leftover {
                    continue;
                }
                let old_enough = match fs::metadata(&path).await.and_then(|m| m.modified()) {
                    Ok(modified) => modified < cutoff,
                    Err(_) => false,
                };
                if !old_enough {
                    continue;
                }
                match fs::remove_file(&path).await {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ObjectError::Other(format!("{file}: {e}"))),
                }
            }
        }
        Ok(removed)
    }

    async fn list_page(&self, range: &NameRange, limit: usize) -> ObjectResult<Vec<ListedObject>> {
        let mut page = Vec::new();
        for name in self.list().await?.into_iter() {
            if page.len() >= limit.min(MAX_PAGE) {
                break;
            }
            if !range.contains(name.as_str()) {
                continue;
            }
            let modified = match fs::metadata(self.path_of(&name)).await {
                Ok(meta) => meta.modified().map_err(|e| io_error(&name, e))?,
                // Deleted since it was listed: not there any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&name, e)),
            };
            page.push(ListedObject {
                name,
                updated: modified.into(),
            });
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn a_full_or_read_only_disk_and_no_files_left_are_unavailable_not_errors() {
        let name = ObjectName::thumbnail(ImageId::new());
        for e in [
            Error::from(ErrorKind::StorageFull),
            Error::from(ErrorKind::ReadOnlyFilesystem),
            Error::from(ErrorKind::QuotaExceeded),
            Error::from_raw_os_error(24),
            Error::from_raw_os_error(23),
        ] {
            let shown = e.to_string();
            assert!(
                matches!(io_error(&name, e), ObjectError::Unavailable(_)),
                "{shown}"
            );
        }
        assert!(matches!(
            io_error(&name, Error::from(ErrorKind::NotFound)),
            ObjectError::NotFound(_)
        ));
        assert!(matches!(
            io_error(&name, Error::from(ErrorKind::InvalidData)),
            ObjectError::Other(_)
        ));
    }
}
