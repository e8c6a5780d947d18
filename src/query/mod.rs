//! Request parameters turned into a validated [`Query`], parsed once and outside HTTP:
//! the feature pages, exports, histograms and tiles of the server and the `tessera tile`
//! command (and next `tessera bake`) all read their filters here, so a filter means the
//! same thing everywhere.
//!
//! Errors are [`QueryError`]s: each names the parameter at fault and says what is wrong.
//! Only the HTTP edge turns them into 400 (or 404) problem documents.
//!
//! [`Query`] itself stays defined in [`crate::store`] and is re-exported here: it is what
//! a backend's read interface answers, so the store must not depend on this parser (the
//! parser needs the store's [`Snapshot`](crate::store::Snapshot) to resolve `within=` and
//! to load the datasets of a tile URL).

mod items;
mod layers;

pub use crate::store::{Bucket, Query, Within};
pub use items::{
    DEFAULT_LIMIT, Format, ITEMS_PARAMS, ItemsRequest, MAX_CATEGORY_VALUES, MAX_LAYERS, MAX_LIMIT,
    MAX_PROPERTIES, MAX_SORTBY, ParamSet, ParamSpec, format_only, pairs, parse_bbox,
    parse_datetime, parse_format, parse_items, parse_typed, resolve_within,
};
pub use layers::{layer_ids, layer_requests, load_datasets, parse_coord};

use crate::store::StoreError;

/// Why a request's parameters cannot be answered. The wording of each message is what
/// clients see as a problem's `detail` (tests and API fuzzers compare it).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query string is not a list of `name=value` pairs (parameter `query`).
    #[error("{0}")]
    Malformed(String),
    /// A parameter given twice: which one counts would be a guess.
    #[error("`{0}` is given more than once")]
    Repeated(String),
    /// A parameter the resource does not take (a typo would otherwise filter nothing).
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    /// A parameter whose value is wrong: the parameter and why.
    #[error("{detail}")]
    Invalid { param: String, detail: String },
    /// A dataset of a tile URL that the catalog does not hold.
    #[error("no dataset `{0}`")]
    NoDataset(String),
    /// A tile address outside the tile pyramid.
    #[error("{0}")]
    NoTile(String),
    /// `within=` names a feature of the catalog, and no snapshot was given to read it.
    #[error("`within` needs a catalog snapshot to be resolved")]
    NeedsCatalog,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    pub(crate) fn invalid(param: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            param: param.to_owned(),
            detail: detail.into(),
        }
    }

    /// The parameter at fault (`query` for the query string as a whole, `ids`, `z`, `x`,
    /// `y` for parts of a tile path); `None` when no parameter is to blame.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            Self::Malformed(_) => Some("query"),
            Self::Repeated(p) | Self::Unknown(p) | Self::Invalid { param: p, .. } => Some(p),
            Self::NoDataset(_) | Self::NoTile(_) | Self::NeedsCatalog | Self::Store(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
