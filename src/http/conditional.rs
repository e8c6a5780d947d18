//! Conditional GET (RFC 9110 §8.8.3, §13.1.2): the one place that makes entity tags and
//! answers `If-None-Match`, for every route that sends an ETag.
//!
//! Tags are digests of what a response depends on (dataset versions, the normalised
//! request, the content coding), hashed with XXH3-64: a specified algorithm, so a tag
//! means the same thing after a Rust upgrade or a restart (unlike `DefaultHasher`).
//!
//! - **Feature pages and single features send weak tags** (`W/"…"`): the same page can
//!   be served in several content codings by the compression layer, and its
//!   `timeStamp` changes, so the bytes are not identical, only equivalent. Assets,
//!   styles and map pages are weak for the first reason.
//! - **Tiles send strong tags**: the bytes are cached and the tag is made from a key that
//!   includes the content coding, so a tag names exactly one sequence of bytes.
//!
//! `If-None-Match` always uses the weak comparison (§13.1.2): `W/"x"` matches `"x"`;
//! `*` matches any current representation; a list matches if any member does. A header
//! that does not parse is treated as no match: the full response is sent, never an error.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use headers::{ETag, HeaderMapExt, IfNoneMatch};
use xxhash_rust::xxh3::Xxh3;

/// An entity tag of one representation.
#[derive(Debug, Clone)]
pub struct Validator {
    tag: ETag,
    value: HeaderValue,
}

impl Validator {
    /// A weak tag over `parts`: equivalent, not byte-identical, representations.
    pub fn weak(parts: &[&[u8]]) -> Self {
        Self::make("W/", parts)
    }

    /// A strong tag over `parts`: one exact sequence of bytes.
    pub fn strong(parts: &[&[u8]]) -> Self {
        Self::make("", parts)
    }

    fn make(prefix: &str, parts: &[&[u8]]) -> Self {
        let text = format!("{prefix}\"{:016x}\"", digest(parts));
        // Hex digits inside quotes always parse as an entity tag.
        let tag: ETag = text
            .parse()
            .expect("a quoted hex digest is a valid entity tag");
        let value = HeaderValue::from_str(&text).expect("ASCII is a valid header value");
        Self { tag, value }
    }

    /// The `ETag` header value.
    pub fn header_value(&self) -> HeaderValue {
        self.value.clone()
    }

    /// Whether the request's `If-None-Match` matches this tag (weak comparison), i.e.
    /// whether a 304 is the answer. A missing or unparsable header never matches.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        headers
            .typed_get::<IfNoneMatch>()
            .is_some_and(|inm| !inm.precondition_passes(&self.tag))
    }

    /// 304 Not Modified carrying the tag (RFC 9110 §15.4.5: the validator is repeated).
    pub fn not_modified(&self) -> Response {
        (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, self.header_value())],
        )
            .into_response()
    }
}

/// XXH3-64 of `parts`, each length-prefixed so that `["ab","c"]` and `["a","bc"]` differ.
pub fn digest(parts: &[&[u8]]) -> u64 {
    let mut h = Xxh3::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inm(v: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_bytes(v).expect("test header"),
        );
        h
    }

    /// The digest is a specification, not an accident of the toolchain: if the algorithm
    /// or the framing changed, every cached tile and page would be revalidated in vain.
    /// The value was checked against the reference XXH3 (Python `xxhash` 3.6.0,
    /// `xxh3_64` of the same length-prefixed bytes).
    #[test]
    fn etag_digest_is_stable_golden_value() {
        assert_eq!(digest(&[b"uk@3", b"Json|limit=5"]), 0xe0b7_4962_5136_b33d);
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }

    #[test]
    fn weak_comparison_lists_star_and_garbage() {
        let strong = Validator::strong(&[b"tile"]);
        let weak = Validator::weak(&[b"tile"]);
        let s = strong.header_value().to_str().unwrap().to_owned();
        let w = weak.header_value().to_str().unwrap().to_owned();
        assert_eq!(w, format!("W/{s}"));
        // Weak comparison: either side may be weak.
        for v in [&s, &w] {
            assert!(strong.matches(&inm(v.as_bytes())), "{v}");
            assert!(weak.matches(&inm(v.as_bytes())), "{v}");
        }
        assert!(strong.matches(&inm(format!("\"x\", {s} , \"y\"").as_bytes())));
        assert!(strong.matches(&inm(b"*")));
        assert!(!strong.matches(&HeaderMap::new()));
        for garbage in [
            &b"\"x\""[..],
            b"xyz",
            b"\"unterminated",
            b"W/",
            b",,,",
            b"\"a b\"",
            b"\"a\tb\"",
            b"\xff\xfe",
            s.trim_matches('"').as_bytes(),
        ] {
            assert!(!strong.matches(&inm(garbage)), "{garbage:?}");
        }
    }
}
