//! The search index of a people store: built from a Scan of the store and
//! kept following its change feed.

mod live;
mod load;

pub use live::{LiveIndex, Refresh};
pub use load::build_from_store;
