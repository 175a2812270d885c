//! What the stores hold, read back for a test's checks: the object names,
//! and the objects the rows refer to (each checked to exist).

use std::collections::HashSet;

use catdog::domain::ImageId;
use catdog::objects::ObjectStore;
use catdog::store::ImageStore;

/// Every object's name.
pub async fn object_names(objects: &dyn ObjectStore) -> HashSet<String> {
    objects
        .list()
        .await
        .expect("list the objects")
        .into_iter()
        .map(|n| n.as_str().to_owned())
        .collect()
}

/// Every object name the rows of these images refer to (originals, and
/// thumbnails once recorded), after checking each one exists.
pub async fn objects_of_rows(
    store: &dyn ImageStore,
    objects: &dyn ObjectStore,
    ids: &[ImageId],
) -> HashSet<String> {
    let mut names = HashSet::new();
    for id in ids {
        let record = store.get(*id).await.unwrap().expect("the row");
        let mut referenced = vec![record.object_name.clone()];
        referenced.extend(record.thumbnail.map(|t| t.object_name));
        for name in referenced {
            objects
                .get(&name)
                .await
                .unwrap_or_else(|e| panic!("row {id} refers to {name}, which is gone: {e}"));
            names.insert(name.as_str().to_owned());
        }
    }
    names
}
