//! Rendering on every core while the archive is written in order.
//!
//! Workers (one store snapshot each) take tile numbers from a shared queue, render,
//! gzip and hash; the calling thread hands out numbers no further than a window ahead of
//! the next tile to write and writes results in order. So memory holds at most a
//! window of tiles, whatever the size of the bake, and the output order (and therefore
//! the file) does not depend on which worker was fastest.

use super::BakeError;
use crate::render::{LayerRequest, Renderer};
use crate::store::{Catalog, Snapshot};
use crate::tiles::TileCoord;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A rendered, non-empty tile: gzip bytes, a 128-bit hash of them, the raw size.
#[derive(Debug)]
pub struct Baked {
    pub gz: Vec<u8>,
    pub key: u128,
    pub raw_len: usize,
}

type Job = (usize, TileCoord);
type Done = (usize, Result<Option<Baked>, String>);

/// A pool of render workers for the duration of one bake.
#[derive(Debug)]
pub struct Pool {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    window: usize,
}

impl Pool {
    /// Starts `threads` workers inside `scope`; they stop when the pool is dropped.
    pub fn start<'s, 'e: 's>(
        scope: &'s std::thread::Scope<'s, 'e>,
        threads: usize,
        catalog: &'e dyn Catalog,
        renderer: &'e Renderer,
        layers: &'e [LayerRequest],
        gzip_level: u32,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (report, done) = mpsc::channel::<Done>();
        for _ in 0..threads.max(1) {
            let (queue, report) = (queue.clone(), report.clone());
            scope.spawn(move || worker(catalog, renderer, layers, gzip_level, &queue, &report));
        }
        Self {
            jobs: Some(jobs),
            done,
            window: threads.max(1) * 32,
        }
    }

    /// Renders `coords` and calls `write` with each result in the order of `coords`.
    pub fn run(
        &self,
        coords: &[TileCoord],
        write: &mut dyn FnMut(TileCoord, Option<Baked>) -> Result<(), BakeError>,
    ) -> Result<(), BakeError> {
        let jobs = self.jobs.as_ref().ok_or(BakeError::Stopped)?;
        let (mut sent, mut next) = (0usize, 0usize);
        let mut ready: BTreeMap<usize, Option<Baked>> = BTreeMap::new();
        while next < coords.len() {
            while sent < coords.len() && sent < next + self.window {
                jobs.send((sent, coords[sent]))
                    .map_err(|_| BakeError::Stopped)?;
                sent += 1;
            }
            let (i, result) = self.done.recv().map_err(|_| BakeError::Stopped)?;
            ready.insert(i, result.map_err(BakeError::Render)?);
            while let Some(tile) = ready.remove(&next) {
                write(coords[next], tile)?;
                next += 1;
            }
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends every worker after its current tile.
        self.jobs.take();
    }
}

fn worker(
    catalog: &dyn Catalog,
    renderer: &Renderer,
    layers: &[LayerRequest],
    gzip_level: u32,
    queue: &Mutex<mpsc::Receiver<Job>>,
    report: &mpsc::Sender<Done>,
) {
    let snap = catalog
        .snapshot()
        .map_err(|e| e.to_string())
        .and_then(|s| same_versions(&*s, layers).map(|()| s));
    let mut gzip = Gzip::new(gzip_level);
    loop {
        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((i, coord)) = job else { return };
        let result = match &snap {
            Err(e) => Err(e.clone()),
            Ok(snap) => renderer
                .render(&**snap, layers, coord)
                .map_err(|e| format!("tile {coord}: {e}"))
                .and_then(|raw| raw.map(|raw| gzip.bake(&raw)).transpose()),
        };
        if report.send((i, result)).is_err() {
            return;
        }
    }
}

/// Pins the worker's snapshot (SQLite starts its read transaction at the first read) and
/// checks that it sees the versions the bake was planned on: a re-import committed while
/// the workers start would otherwise put two versions of a dataset into one archive.
fn same_versions(snap: &dyn Snapshot, layers: &[LayerRequest]) -> Result<(), String> {
    for l in layers {
        let now = snap
            .dataset(&l.dataset.id)
            .map_err(|e| e.to_string())?
            .map(|d| d.version);
        if now != Some(l.dataset.version) {
            return Err(format!(
                "dataset `{}` changed while the bake started (version {} is no longer current); run it again",
                l.dataset.id, l.dataset.version
            ));
        }
    }
    Ok(())
}

/// gzip (RFC 1952) with one deflate state per worker, reused from tile to tile (a fresh
/// encoder allocates and clears ~200 KB of tables, more than a small tile costs), and a
/// fixed header (no time stamp, no name) so that the same tile gives the same bytes.
struct Gzip {
    compress: flate2::Compress,
}

impl Gzip {
    fn new(level: u32) -> Self {
        Self {
            compress: flate2::Compress::new(flate2::Compression::new(level.min(9)), false),
        }
    }

    fn bake(&mut self, raw: &[u8]) -> Result<Baked, String> {
        use flate2::{FlushCompress, Status};
        self.compress.reset();
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let consumed = self.compress.total_in() as usize;
            match self
                .compress
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Finish)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(raw);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        Ok(Baked {
            key: xxhash_rust::xxh3::xxh3_128(&out),
            gz: out,
            raw_len: raw.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Gzip;
    use std::io::Read;

    #[test]
    fn gzip_round_trips_and_is_deterministic() {
        let mut g = Gzip::new(6);
        let inputs: [&[u8]; 3] = [b"", b"a tile", &[7u8; 100_000]];
        for input in inputs {
            let a = g.bake(input).unwrap();
            let b = Gzip::new(6).bake(input).unwrap();
            assert_eq!(a.gz, b.gz);
            assert_eq!(a.key, b.key);
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&a.gz[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, input);
        }
    }
}
