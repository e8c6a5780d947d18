//! Served feature ids of a point layer, looked up by internal key.
//!
//! A key is whatever id the store gives a feature inside one dataset version: SQLite's
//! are dense rowids 1..=n, a PostgreSQL backend's need not be. The dense case stays a
//! direct index (point tiles look up every single point they draw); any other set of
//! keys is kept sorted and searched.

/// See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedIds {
    /// `None` while the keys are exactly 1..=`ids.len()` in order; otherwise one key per
    /// id, ascending.
    keys: Option<Vec<i64>>,
    ids: Vec<String>,
    /// Some key came after a greater one: [`Self::finish`] must sort.
    unsorted: bool,
}

impl ServedIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the served id of `key`. Keys usually come in ascending order; any order works.
    pub fn push(&mut self, key: i64, id: String) {
        let dense_next = i64::try_from(self.ids.len()).is_ok_and(|n| key == n + 1);
        match &mut self.keys {
            None if dense_next => {}
            None => {
                let n = self.ids.len() as i64;
                self.unsorted = key <= n;
                self.keys = Some((1..=n).chain([key]).collect());
            }
            Some(keys) => {
                self.unsorted |= keys.last().is_some_and(|&last| last >= key);
                keys.push(key);
            }
        }
        self.ids.push(id);
    }

    /// Call once all ids are pushed: sorts keys that came out of order.
    pub fn finish(mut self) -> Self {
        if let (Some(keys), true) = (&mut self.keys, self.unsorted) {
            let mut pairs: Vec<(i64, String)> = keys.drain(..).zip(self.ids.drain(..)).collect();
            pairs.sort_by_key(|(k, _)| *k);
            (*keys, self.ids) = pairs.into_iter().unzip();
            self.unsorted = false;
        }
        self
    }

    /// The served id of `key`, if one was pushed and is not empty.
    pub fn get(&self, key: i64) -> Option<&str> {
        let at = match &self.keys {
            None => usize::try_from(key.checked_sub(1)?).ok()?,
            Some(keys) => keys.binary_search(&key).ok()?,
        };
        self.ids
            .get(at)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_keys_are_indexed_and_sparse_ones_searched() {
        let mut dense = ServedIds::new();
        for k in 1..=3 {
            dense.push(k, format!("d{k}"));
        }
        let dense = dense.finish();
        assert!(dense.keys.is_none());
        assert_eq!(
            (dense.get(1), dense.get(3), dense.get(0), dense.get(4)),
            (Some("d1"), Some("d3"), None, None)
        );

        // Sparse, negative and out of order: what another backend may hand out.
        let mut sparse = ServedIds::new();
        for (k, id) in [
            (1, "a"),
            (2, "b"),
            (900_000_000_000, "c"),
            (-5, "neg"),
            (77, ""),
        ] {
            sparse.push(k, id.into());
        }
        let sparse = sparse.finish();
        assert_eq!(sparse.get(1), Some("a"));
        assert_eq!(sparse.get(2), Some("b"));
        assert_eq!(sparse.get(900_000_000_000), Some("c"));
        assert_eq!(sparse.get(-5), Some("neg"));
        assert_eq!(sparse.get(77), None, "empty ids are not served");
        assert_eq!(sparse.get(3), None);
        assert_eq!(sparse.len(), 5);
    }
}
