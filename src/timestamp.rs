//! RFC 3339 timestamps as trackers write them: the names existing callers
//! use; the implementation (jiff) and its guarantees are in [`crate::time`].

pub use crate::time::{format_secs, now_secs, parse_millis, parse_secs};
