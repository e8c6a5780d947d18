//! A byte-bounded tile cache. Keys carry the dataset versions, so a re-import makes old
//! entries unreachable at once; they then age out. Eviction is first-in first-out, which
//! is cheap and, for tile traffic (a working set that drifts with the viewport), close
//! enough to LRU.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct TileCache {
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Arc<Vec<u8>>>,
    order: VecDeque<String>,
    bytes: usize,
}

impl TileCache {
    /// A cache holding at most `limit` bytes of tiles (0 disables it).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        if self.limit == 0 {
            return None;
        }
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(key)
            .cloned()
    }

    pub fn put(&self, key: String, tile: Arc<Vec<u8>>) {
        let size = tile.len() + key.len();
        if size > self.limit / 8 {
            return; // one giant tile must not flush everything else
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.map.contains_key(&key) {
            return;
        }
        while inner.bytes + size > self.limit {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(t) = inner.map.remove(&old) {
                inner.bytes -= t.len() + old.len();
            }
        }
        inner.bytes += size;
        inner.order.push_back(key.clone());
        inner.map.insert(key, tile);
    }

    /// Bytes currently held (tiles and keys).
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_byte_limit() {
        let c = TileCache::new(1000);
        for i in 0..100 {
            c.put(format!("k{i}"), Arc::new(vec![0; 100]));
            assert!(c.bytes() <= 1000);
        }
        assert!(c.get("k99").is_some());
        assert!(c.get("k0").is_none());
        let off = TileCache::new(0);
        off.put("a".into(), Arc::new(vec![1]));
        assert!(off.get("a").is_none());
    }
}
