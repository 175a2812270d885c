//! The `cursor` query parameter of `GET /api/v1/images`: any string a client
//! sends is either refused or names a position we could have issued.
#![no_main]

use catdog::domain::{Category, Cursor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Query values reach the decoder as text, invalid UTF-8 replaced.
    let raw = String::from_utf8_lossy(data);
    for listing in [None, Some(Category::Cat), Some(Category::Dog), Some(Category::Other)] {
        let Ok(cursor) = Cursor::decode(&raw, listing) else {
            continue;
        };
        assert_eq!(cursor.category, listing);
        assert!(cursor.seq >= 0, "a negative position was accepted");
        assert_eq!(Cursor::decode(&cursor.encode(), listing), Ok(cursor));
    }
});
