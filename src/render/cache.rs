//! A byte-bounded tile cache on `quick_cache` (sharded, CLOCK-PRO-like eviction: a tile
//! seen once is evicted before the hot working set). Keys carry the dataset versions, so
//! a re-import makes old entries unreachable at once; they then age out. Values are
//! `Bytes` (tiles, and a few small memoised bodies of the pages): a hit clones a
//! pointer, not the bytes.

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// A tile's weight: its bytes and its key, as before the cache moved onto the crate.
#[derive(Debug, Clone, Copy)]
struct ByBytes;

impl Weighter<String, Bytes> for ByBytes {
    fn weight(&self, key: &String, bytes: &Bytes) -> u64 {
        (key.len() + bytes.len()) as u64
    }
}

pub struct TileCache {
    limit: usize,
    /// `None` when the limit is 0 (cache off).
    inner: Option<Cache<String, Bytes, ByBytes>>,
}

impl std::fmt::Debug for TileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileCache")
            .field("limit", &self.limit)
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// A typical compressed tile plus key, to size the cache's tables up front.
const TYPICAL_ENTRY: usize = 2 << 10;

impl TileCache {
    /// A cache holding at most `limit` bytes of tiles and keys (0 disables it).
    pub fn new(limit: usize) -> Self {
        let inner = (limit > 0)
            .then(|| Cache::with_weighter((limit / TYPICAL_ENTRY).max(16), limit as u64, ByBytes));
        Self { limit, inner }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.inner.as_ref()?.get(key)
    }

    pub fn put(&self, key: String, bytes: Bytes) {
        let Some(cache) = &self.inner else { return };
        if bytes.len() + key.len() > self.limit / 8 {
            return; // one giant tile must not flush everything else
        }
        cache.insert(key, bytes);
    }

    /// Bytes currently held (tiles and keys).
    pub fn bytes(&self) -> usize {
        self.inner.as_ref().map_or(0, |c| c.weight() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(bytes: Vec<u8>) -> Bytes {
        Bytes::from(bytes)
    }

    #[test]
    fn stays_within_its_byte_limit() {
        let c = TileCache::new(10_000);
        for i in 0..1000 {
            c.put(format!("k{i}"), tile(vec![0; 100]));
            assert!(c.bytes() <= 10_000, "{} bytes held", c.bytes());
        }
        assert!(c.get("k999").is_some(), "the newest tile is kept");
        let kept = (0..1000)
            .filter(|i| c.get(&format!("k{i}")).is_some())
            .count();
        assert!(
            kept <= 10_000 / 103,
            "{kept} tiles of 103 bytes kept in 10,000"
        );
        let off = TileCache::new(0);
        off.put("a".into(), tile(vec![1]));
        assert!(off.get("a").is_none());
        assert_eq!(off.bytes(), 0);
    }

    /// A hit hands out the cached buffer itself, not a copy.
    #[test]
    fn hits_share_the_bytes() {
        let c = TileCache::new(1 << 20);
        let t = tile(vec![7; 500]);
        c.put("t".into(), t.clone());
        let hit = c.get("t").unwrap();
        assert_eq!(hit, t);
        assert_eq!(hit.as_ptr(), t.as_ptr());
    }

    #[test]
    fn giant_tiles_are_not_cached() {
        let c = TileCache::new(8_000);
        c.put("big".into(), tile(vec![0; 1_500]));
        assert!(c.get("big").is_none());
        c.put("small".into(), tile(vec![0; 500]));
        assert!(c.get("small").is_some());
    }
}
