//! Rows of an import on their way to the writer, packed, and put in the feature table's
//! order: Hilbert key of the bounds centre, ties in input order (tile and page reads
//! depend on neighbours sharing pages). Rows that fit the memory budget are sorted in
//! memory; past it, each full arena is sorted and written to an anonymous temporary
//! file (a run), and the runs are merged. Memory is the budget plus one read buffer per
//! run, whatever the input size, and nothing here knows which database comes next.

use crate::ingest::Geometry;
use crate::model::{Bounds, TimeRange};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

/// Bytes of packed rows kept in memory before a sorted run goes to disk.
pub const MEMORY_BUDGET: usize = 512 << 20;
/// Runs kept before they are merged into one, so open files stay few even with a tiny
/// budget (tests) or a huge input.
const MAX_RUNS: usize = 64;

/// One row; `cells` are (column, raw text), typed once the whole input has been seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub src: Option<String>,
    pub geometry: Option<Geometry>,
    pub time: Option<TimeRange>,
    pub cells: Vec<(usize, String)>,
}

/// Where a row goes in the order: Hilbert key, then input order.
type Key = (i64, u64);

/// Collects rows and hands them back in order.
pub struct SortedRows {
    arena: Vec<u8>,
    /// (key, offset in the arena).
    index: Vec<(Key, usize)>,
    budget: usize,
    runs: Vec<File>,
    next_ord: u64,
}

impl SortedRows {
    pub fn new(budget: usize) -> Self {
        Self {
            arena: Vec::new(),
            index: Vec::new(),
            budget,
            runs: Vec::new(),
            next_ord: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.arena.len() + self.index.len() * std::mem::size_of::<(Key, usize)>()
    }

    /// Whether any rows went to disk.
    #[cfg(test)]
    pub fn spilled(&self) -> bool {
        !self.runs.is_empty()
    }

    pub fn push(&mut self, hkey: i64, row: &Row) -> io::Result<()> {
        if self.bytes() >= self.budget && !self.index.is_empty() {
            self.spill()?;
        }
        self.index.push(((hkey, self.next_ord), self.arena.len()));
        self.next_ord += 1;
        encode(&mut self.arena, row);
        Ok(())
    }

    /// Writes the arena as one sorted run: per row its key, length and encoding.
    fn spill(&mut self) -> io::Result<()> {
        if self.runs.is_empty() {
            tracing::info!(
                mib = self.bytes() >> 20,
                "import larger than its memory budget: sorting in runs on disk"
            );
        }
        self.index.sort_unstable();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for &(key, at) in &self.index {
            write_entry(
                &mut out,
                key,
                &self.arena[at..at + encoded_len(&self.arena, at)],
            )?;
        }
        self.runs.push(finish_run(out)?);
        self.arena.clear();
        self.index.clear();
        if self.runs.len() >= MAX_RUNS {
            let runs = std::mem::take(&mut self.runs);
            let mut out = BufWriter::new(tempfile::tempfile()?);
            let mut merge = Merge::new(runs)?;
            while let Some((key, bytes)) = merge.next_entry()? {
                write_entry(&mut out, key, &bytes)?;
            }
            self.runs.push(finish_run(out)?);
        }
        Ok(())
    }

    /// All rows, in order.
    pub fn into_sorted(mut self) -> io::Result<Sorted> {
        self.index.sort_unstable();
        if self.runs.is_empty() {
            return Ok(Sorted::Memory {
                arena: self.arena,
                index: self.index.into_iter(),
            });
        }
        if !self.index.is_empty() {
            self.spill()?;
        }
        Ok(Sorted::Runs(Merge::new(self.runs)?))
    }
}

/// Rows in order, from memory or merged from runs on disk.
pub enum Sorted {
    Memory {
        arena: Vec<u8>,
        index: std::vec::IntoIter<(Key, usize)>,
    },
    Runs(Merge),
}

impl Iterator for Sorted {
    type Item = io::Result<Row>;
    fn next(&mut self) -> Option<io::Result<Row>> {
        match self {
            Sorted::Memory { arena, index } => index.next().map(|(_, at)| Ok(decode(arena, at))),
            Sorted::Runs(m) => m
                .next_entry()
                .transpose()
                .map(|r| r.map(|(_, bytes)| decode(&bytes, 0))),
        }
    }
}

fn write_entry(out: &mut impl Write, key: Key, bytes: &[u8]) -> io::Result<()> {
    out.write_all(&key.0.to_le_bytes())?;
    out.write_all(&key.1.to_le_bytes())?;
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)
}

fn finish_run(out: BufWriter<File>) -> io::Result<File> {
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.rewind()?;
    Ok(file)
}

/// A k-way merge of sorted runs; keys are unique (input order), so it is stable.
pub struct Merge {
    readers: Vec<BufReader<File>>,
    heads: BinaryHeap<Reverse<(Key, usize)>>,
    /// The entry each reader has read but not yet handed out.
    pending: Vec<Vec<u8>>,
}

impl Merge {
    fn new(runs: Vec<File>) -> io::Result<Self> {
        let mut m = Merge {
            readers: runs
                .into_iter()
                .map(|f| BufReader::with_capacity(1 << 16, f))
                .collect(),
            heads: BinaryHeap::new(),
            pending: Vec::new(),
        };
        m.pending = vec![Vec::new(); m.readers.len()];
        for i in 0..m.readers.len() {
            m.advance(i)?;
        }
        Ok(m)
    }

    /// Reads run `i`'s next entry into `pending[i]`, if it has one.
    fn advance(&mut self, i: usize) -> io::Result<()> {
        let r = &mut self.readers[i];
        let mut head = [0u8; 24];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let word = |k: usize| <[u8; 8]>::try_from(&head[k * 8..k * 8 + 8]).unwrap_or([0; 8]);
        let key = (i64::from_le_bytes(word(0)), u64::from_le_bytes(word(1)));
        let len = usize::try_from(u64::from_le_bytes(word(2)))
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "run entry too long"))?;
        let buf = &mut self.pending[i];
        buf.resize(len, 0);
        r.read_exact(buf)?;
        self.heads.push(Reverse((key, i)));
        Ok(())
    }

    fn next_entry(&mut self) -> io::Result<Option<(Key, Vec<u8>)>> {
        let Some(Reverse((key, i))) = self.heads.pop() else {
            return Ok(None);
        };
        let bytes = std::mem::take(&mut self.pending[i]);
        self.advance(i)?;
        Ok(Some((key, bytes)))
    }
}

/// Hilbert curve index of a lon/lat position on a 65536 x 65536 grid, so that features
/// close on the map get close row ids (and share SQLite pages).
pub fn hilbert_key(lon: f64, lat: f64) -> i64 {
    const N: u32 = 1 << 16;
    let scale = |v: f64, lo: f64, hi: f64| {
        (((v - lo) / (hi - lo)) * (N - 1) as f64).clamp(0.0, (N - 1) as f64) as u32
    };
    let (mut x, mut y) = (scale(lon, -180.0, 180.0), scale(lat, -90.0, 90.0));
    let mut d: u64 = 0;
    let mut s = N / 2;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += u64::from(s) * u64::from(s) * u64::from((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = N - 1 - x;
                y = N - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d as i64
}

/// Names a geometry's type may have, stored as their index.
const TYPE_NAMES: [&str; 8] = [
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
    "Geometry",
];

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The one place a geometry becomes bytes (and [`decode_geometry`] the way back): the
/// pipeline carries it without looking inside.
fn encode_geometry(out: &mut Vec<u8>, g: &Geometry) {
    let ty = TYPE_NAMES
        .iter()
        .position(|t| *t == g.type_name)
        .unwrap_or(7);
    let point =
        g.shape.is_none() && g.bounds.min_x == g.bounds.max_x && g.bounds.min_y == g.bounds.max_y;
    out.push(ty as u8 | u8::from(point) << 4 | u8::from(g.shape.is_some()) << 5);
    let b = g.bounds;
    let coords: &[f64] = if point {
        &[b.min_x, b.min_y]
    } else {
        &[b.min_x, b.min_y, b.max_x, b.max_y]
    };
    coords
        .iter()
        .for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
    // Shapes travel as WKB, the form the writers store (and a compact one).
    if let Some(shape) = &g.shape {
        let wkb = crate::store::wkb::encode(shape);
        out.extend_from_slice(&(wkb.len() as u32).to_le_bytes());
        out.extend_from_slice(&wkb);
    }
}

fn decode_geometry(c: &mut Cursor<'_>) -> Geometry {
    let flags = c.bytes(1)[0];
    let bounds = if flags & 16 != 0 {
        let (x, y) = (c.f64(), c.f64());
        Bounds::of_point(x, y)
    } else {
        Bounds {
            min_x: c.f64(),
            min_y: c.f64(),
            max_x: c.f64(),
            max_y: c.f64(),
        }
    };
    // Our own WKB, written by `encode_geometry` above: it decodes.
    let shape = (flags & 32 != 0)
        .then(|| {
            let n = u32::from_le_bytes(c.bytes(4).try_into().unwrap_or_default()) as usize;
            crate::store::wkb::decode(c.bytes(n)).ok()
        })
        .flatten();
    Geometry {
        bounds,
        shape,
        type_name: TYPE_NAMES[usize::from(flags & 15).min(7)],
    }
}

fn encode(out: &mut Vec<u8>, r: &Row) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // the length, filled in below
    let flags = u8::from(r.src.is_some())
        | u8::from(r.geometry.is_some()) << 1
        | u8::from(r.time.is_some()) << 2;
    out.push(flags);
    if let Some(g) = &r.geometry {
        encode_geometry(out, g);
    }
    if let Some(t) = r.time {
        out.extend_from_slice(&t.start.to_le_bytes());
        out.extend_from_slice(&t.end.to_le_bytes());
    }
    if let Some(s) = &r.src {
        put_str(out, s);
    }
    out.extend_from_slice(&(r.cells.len() as u32).to_le_bytes());
    for (col, v) in &r.cells {
        out.extend_from_slice(&(*col as u32).to_le_bytes());
        put_str(out, v);
    }
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn encoded_len(a: &[u8], at: usize) -> usize {
    Cursor { a, at }.u32()
}

/// Reads back what [`encode`] wrote; the bytes are only ever written by `encode`.
fn decode(a: &[u8], at: usize) -> Row {
    let mut c = Cursor { a, at: at + 4 };
    let flags = c.bytes(1)[0];
    let geometry = (flags & 2 != 0).then(|| decode_geometry(&mut c));
    let time = (flags & 4 != 0).then(|| TimeRange {
        start: c.i64(),
        end: c.i64(),
    });
    let src = (flags & 1 != 0).then(|| c.string());
    let n = c.u32();
    let cells = (0..n).map(|_| (c.u32(), c.string())).collect();
    Row {
        src,
        geometry,
        time,
        cells,
    }
}

/// A read position in packed bytes.
struct Cursor<'a> {
    a: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let s = &self.a[self.at..self.at + n];
        self.at += n;
        s
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.bytes(8).try_into().unwrap_or([0; 8]))
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.bytes(8).try_into().unwrap_or([0; 8]))
    }
    fn u32(&mut self) -> usize {
        u32::from_le_bytes(self.bytes(4).try_into().unwrap_or([0; 4])) as usize
    }
    fn string(&mut self) -> String {
        let n = self.u32();
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hilbert_keys_are_local() {
        // Neighbours share a long key prefix more often than distant points.
        let a = hilbert_key(-2.5, 51.4);
        let b = hilbert_key(-2.5001, 51.4001);
        let c = hilbert_key(140.0, -30.0);
        assert!((a - b).abs() < (a - c).abs());
        assert!(hilbert_key(180.0, 90.0) < 1 << 32);
    }

    fn rows() -> Vec<(i64, Row)> {
        let a = Row {
            src: Some("x1".into()),
            geometry: Some(crate::ingest::point(-2.5, 51.4).unwrap()),
            time: Some(TimeRange { start: 1, end: 2 }),
            cells: vec![(0, "Burglary".into()), (3, "café".into())],
        };
        let b = Row {
            src: None,
            geometry: Some(Geometry {
                bounds: Bounds {
                    min_x: 0.0,
                    min_y: 1.0,
                    max_x: 2.0,
                    max_y: 3.0,
                },
                shape: Some(geo_types::Geometry::LineString(
                    geo_types::LineString::from(vec![(0.0, 1.0), (2.0, 3.0)]),
                )),
                type_name: "LineString",
            }),
            time: None,
            cells: vec![],
        };
        let c = Row {
            src: None,
            geometry: None,
            time: None,
            cells: vec![(1, "z".into())],
        };
        vec![(9, a), (3, b), (3, c)]
    }

    fn sorted(budget: usize, input: &[(i64, Row)]) -> (bool, Vec<Row>) {
        let mut s = SortedRows::new(budget);
        for (k, r) in input {
            s.push(*k, r).unwrap();
        }
        let spilled = s.spilled();
        let out = s.into_sorted().unwrap().map(Result::unwrap).collect();
        (spilled, out)
    }

    #[test]
    fn rows_round_trip_in_hilbert_order_ties_in_input_order() {
        let input = rows();
        let want = vec![input[1].1.clone(), input[2].1.clone(), input[0].1.clone()];
        assert_eq!(sorted(MEMORY_BUDGET, &input), (false, want.clone()));
        // Budget 0: every row is its own run on disk; the merge gives the same order.
        assert_eq!(sorted(0, &input), (true, want));
    }

    /// More runs than are kept open: they are merged on the way, and the order holds.
    #[test]
    fn many_runs_merge_into_the_same_order() {
        let input: Vec<(i64, Row)> = (0..500u64)
            .map(|i| {
                let row = Row {
                    src: Some(i.to_string()),
                    geometry: None,
                    time: None,
                    cells: vec![(0, format!("v{i}"))],
                };
                (((i * 7919) % 13) as i64, row)
            })
            .collect();
        let mut want: Vec<(i64, u64, Row)> = input
            .iter()
            .enumerate()
            .map(|(i, (k, r))| (*k, i as u64, r.clone()))
            .collect();
        want.sort_by_key(|(k, i, _)| (*k, *i));
        let want: Vec<Row> = want.into_iter().map(|(_, _, r)| r).collect();
        let (spilled, got) = sorted(0, &input);
        assert!(spilled);
        assert_eq!(got, want);
        assert_eq!(sorted(MEMORY_BUDGET, &input).1, want);
    }
}
