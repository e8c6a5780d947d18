//! Splitting GeoJSON text into one byte slice per feature without parsing it whole.
//!
//! The scanner knows only JSON's structure (strings, escapes, brackets), so it finds where
//! each feature ends even when the feature itself is not valid GeoJSON: a bad feature is
//! one row error and the next feature is read from its real start. It decides between a
//! FeatureCollection and a sequence of features by structure (a top-level `features`
//! array), wherever the keys appear. Running out of input inside a value is an error
//! naming the line, never a stream of bogus rows. Memory is bounded by
//! [`MAX_FEATURE_BYTES`]; nesting is counted, not recursed into.

use super::limits::{MAX_DEPTH, MAX_FEATURE_BYTES};
use std::io::{self, BufRead};

/// One feature's text, or why a delimited feature cannot be used.
#[derive(Debug)]
pub(super) enum Piece {
    /// `complete` is false for a last line that ends without a newline (it may be cut).
    Feature {
        bytes: Vec<u8>,
        line: u64,
        complete: bool,
    },
    Unfit {
        line: u64,
        message: String,
    },
}

#[derive(Debug)]
pub(super) enum ScanError {
    Io(io::Error),
    /// The structure is broken at `line`: nothing after it can be trusted.
    Broken {
        line: u64,
        message: String,
    },
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Top,
    Features,
    AfterFeatures,
    Lines,
}

#[derive(Debug)]
pub(super) struct Scanner<R> {
    input: R,
    line: u64,
    phase: Phase,
    /// Features delimited so far, for messages.
    count: u64,
    /// Whether the input was a FeatureCollection.
    pub collection: bool,
    /// In the features array, just after an element: a `,` or `]` must come next.
    after_feature: bool,
}

#[derive(Debug, Default)]
struct Scanned {
    too_big: bool,
    too_deep: bool,
}

fn broken<T>(line: u64, message: impl Into<String>) -> Result<T, ScanError> {
    Err(ScanError::Broken {
        line,
        message: message.into(),
    })
}

impl<R: BufRead> Scanner<R> {
    /// `line` is the line on which `input` starts.
    pub fn new(input: R, line: u64) -> Self {
        Self {
            input,
            line,
            phase: Phase::Top,
            count: 0,
            collection: false,
            after_feature: false,
        }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        if let Ok([b'\n', ..]) = self.input.fill_buf() {
            self.line += 1;
        }
        self.input.consume(1);
    }

    /// Skips JSON whitespace (and record separators between top-level values).
    fn skip_ws(&mut self, rs: bool) -> io::Result<()> {
        loop {
            let buf = self.input.fill_buf()?;
            let skip = |b: &u8| b.is_ascii_whitespace() || (rs && *b == 0x1e);
            let n = buf.iter().position(|b| !skip(b)).unwrap_or(buf.len());
            let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            let done = n < buf.len() || buf.is_empty();
            self.line += lines;
            self.input.consume(n);
            if done {
                return Ok(());
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(), ScanError> {
        self.skip_ws(false)?;
        match self.peek()? {
            Some(b) if b == want => {
                self.bump();
                self.skip_ws(false)?;
                Ok(())
            }
            Some(b) => broken(
                self.line,
                format!("expected {what}, found `{}`", b.escape_ascii()),
            ),
            None => broken(self.line, "the file ends inside a JSON object: truncated?"),
        }
    }

    /// Reads one JSON value starting at the next byte into `out` (while it fits).
    fn scan(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<Scanned, ScanError> {
        let start = self.line;
        let scalar = !matches!(self.peek()?, Some(b'{' | b'[' | b'"'));
        let (mut depth, mut in_str, mut esc, mut started) = (0u32, false, false, false);
        let mut s = Scanned::default();
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                if scalar && started {
                    return Ok(s);
                }
                let what = if start == self.line {
                    "on this line".to_owned()
                } else {
                    format!("that starts on line {start}")
                };
                return broken(
                    self.line,
                    format!("the file ends inside the JSON value {what}: truncated?"),
                );
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if scalar {
                    if matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace() {
                        end = Some(i);
                        break;
                    }
                    started = true;
                    continue;
                }
                started = true;
                if in_str {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                } else {
                    match b {
                        b'"' => in_str = true,
                        b'{' | b'[' => {
                            depth += 1;
                            s.too_deep |= depth > MAX_DEPTH;
                        }
                        b'}' | b']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                if depth == 0 && !in_str {
                    end = Some(i + 1);
                    break;
                }
            }
            let n = end.unwrap_or(buf.len());
            if scalar && n == 0 && !started {
                // A closing bracket or comma where a value should be: consuming nothing
                // here would loop forever.
                let b = buf[0].escape_ascii().to_string();
                return broken(self.line, format!("expected a JSON value, found `{b}`"));
            }
            let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            if let Some(o) = out.as_deref_mut() {
                if o.len() + n > MAX_FEATURE_BYTES {
                    s.too_big = true;
                    *o = Vec::new();
                    out = None;
                } else {
                    o.extend_from_slice(&buf[..n]);
                }
            }
            self.line += lines;
            self.input.consume(n);
            if end.is_some() {
                return Ok(s);
            }
        }
    }

    fn unfit(&self, line: u64, s: &Scanned) -> Option<Piece> {
        let message = if s.too_big {
            format!("feature larger than {} MiB", MAX_FEATURE_BYTES >> 20)
        } else if s.too_deep {
            format!("JSON nested more than {MAX_DEPTH} levels deep")
        } else {
            return None;
        };
        Some(Piece::Unfit { line, message })
    }

    /// The next feature; `None` at the end of the input.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, ScanError> {
        loop {
            match self.phase {
                Phase::Top => {
                    self.skip_ws(true)?;
                    match self.peek()? {
                        None => return Ok(None),
                        Some(b'{') => {
                            if let Some(p) = self.top_object()? {
                                return Ok(Some(p));
                            }
                        }
                        Some(b) => {
                            return broken(
                                self.line,
                                format!("expected a GeoJSON object, found `{}`", b.escape_ascii()),
                            );
                        }
                    }
                }
                Phase::Features => return self.feature(),
                Phase::AfterFeatures => self.after_features()?,
                Phase::Lines => return self.line_piece(),
            }
        }
    }

    /// A top-level object: a FeatureCollection (switches to its `features` array and
    /// returns `None`) or a single feature (returned; what follows is read by lines).
    fn top_object(&mut self) -> Result<Option<Piece>, ScanError> {
        let line = self.line;
        let mut buf = vec![b'{'];
        let mut worst = Scanned::default();
        self.bump();
        loop {
            self.skip_ws(false)?;
            match self.peek()? {
                None => {
                    return broken(
                        self.line,
                        format!(
                            "the file ends inside the JSON object that starts on line {line}: truncated?"
                        ),
                    );
                }
                Some(b'}') => {
                    self.bump();
                    buf.push(b'}');
                    break;
                }
                Some(b',') => {
                    self.bump();
                    buf.push(b',');
                }
                Some(b'"') => {
                    let key_at = buf.len();
                    self.scan(Some(&mut buf))?;
                    let is_features = buf.get(key_at..) == Some(b"\"features\"");
                    self.expect(b':', "`:` after a key")?;
                    if is_features && self.peek()? == Some(b'[') {
                        self.bump();
                        self.phase = Phase::Features;
                        self.collection = true;
                        return Ok(None);
                    }
                    buf.push(b':');
                    let s = self.scan(Some(&mut buf))?;
                    worst.too_big |= s.too_big;
                    worst.too_deep |= s.too_deep;
                }
                Some(b) => {
                    return broken(
                        self.line,
                        format!("expected a key, found `{}`", b.escape_ascii()),
                    );
                }
            }
        }
        self.phase = Phase::Lines;
        self.count += 1;
        Ok(Some(self.unfit(line, &worst).unwrap_or(Piece::Feature {
            bytes: buf,
            line,
            complete: true,
        })))
    }

    /// The next element of the `features` array.
    fn feature(&mut self) -> Result<Option<Piece>, ScanError> {
        loop {
            self.skip_ws(false)?;
            match self.peek()? {
                None => {
                    let msg = format!(
                        "the file ends inside the features array, after {} features: truncated?",
                        self.count
                    );
                    return broken(self.line, msg);
                }
                Some(b']') => {
                    self.bump();
                    self.phase = Phase::AfterFeatures;
                    return self.next_piece();
                }
                Some(b',') if self.after_feature => {
                    self.bump();
                    self.after_feature = false;
                }
                Some(b) if self.after_feature => {
                    let msg = format!(
                        "expected `,` or `]` after feature {}, found `{}`",
                        self.count,
                        b.escape_ascii()
                    );
                    return broken(self.line, msg);
                }
                Some(first) => {
                    self.after_feature = true;
                    let line = self.line;
                    let mut bytes = Vec::new();
                    let s = self.scan(Some(&mut bytes))?;
                    self.count += 1;
                    if first != b'{' {
                        let message = "a feature must be a JSON object".into();
                        return Ok(Some(Piece::Unfit { line, message }));
                    }
                    return Ok(Some(self.unfit(line, &s).unwrap_or(Piece::Feature {
                        bytes,
                        line,
                        complete: true,
                    })));
                }
            }
        }
    }

    /// The rest of a FeatureCollection after its features: other keys, then `}`.
    fn after_features(&mut self) -> Result<(), ScanError> {
        loop {
            self.skip_ws(false)?;
            match self.peek()? {
                None => {
                    return broken(
                        self.line,
                        "the file ends inside the FeatureCollection: truncated?",
                    );
                }
                Some(b'}') => {
                    self.bump();
                    self.phase = Phase::Top;
                    return Ok(());
                }
                Some(b',') => self.bump(),
                Some(b'"') => {
                    self.scan(None)?;
                    self.expect(b':', "`:` after a key")?;
                    self.scan(None)?;
                }
                Some(b) => {
                    return broken(
                        self.line,
                        format!("expected a key, found `{}`", b.escape_ascii()),
                    );
                }
            }
        }
    }

    /// One line of a feature sequence (newline-delimited or RFC 8142 text sequence).
    fn line_piece(&mut self) -> Result<Option<Piece>, ScanError> {
        loop {
            let line = self.line;
            let mut bytes = Vec::new();
            let (mut too_big, mut newline) = (false, false);
            loop {
                let buf = self.input.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                let (n, nl) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                if too_big || bytes.len() + n > MAX_FEATURE_BYTES {
                    too_big = true;
                    bytes = Vec::new();
                } else {
                    bytes.extend_from_slice(&buf[..n]);
                }
                self.input.consume(n);
                if nl {
                    self.line += 1;
                    newline = true;
                    break;
                }
            }
            let trim = |b: &u8| b.is_ascii_whitespace() || *b == 0x1e;
            let first = bytes.iter().position(|b| !trim(b));
            let last = bytes.iter().rposition(|b| !trim(b));
            let empty = first.is_none();
            if !newline && empty && !too_big {
                return Ok(None);
            }
            if empty && !too_big {
                continue;
            }
            self.count += 1;
            if too_big {
                let s = Scanned {
                    too_big,
                    too_deep: false,
                };
                return Ok(self.unfit(line, &s));
            }
            let (a, z) = (first.unwrap_or(0), last.map_or(0, |z| z + 1));
            if nested_too_deep(&bytes[a..z]) {
                let s = Scanned {
                    too_big: false,
                    too_deep: true,
                };
                return Ok(self.unfit(line, &s));
            }
            return Ok(Some(Piece::Feature {
                bytes: bytes[a..z].to_vec(),
                line,
                complete: newline,
            }));
        }
    }
}

/// Whether brackets outside strings nest deeper than [`MAX_DEPTH`]: a geometry is
/// only skimmed by serde_json on the first pass, so its depth is checked here.
fn nested_too_deep(bytes: &[u8]) -> bool {
    let (mut depth, mut in_str, mut esc) = (0u32, false, false);
    for &b in bytes {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Result<Vec<String>, (u64, String)> {
        let mut s = Scanner::new(text.as_bytes(), 1);
        let mut out = Vec::new();
        loop {
            match s.next_piece() {
                Ok(None) => return Ok(out),
                Ok(Some(Piece::Feature { bytes, line, .. })) => {
                    out.push(format!("{line}:{}", String::from_utf8(bytes).unwrap()))
                }
                Ok(Some(Piece::Unfit { line, message })) => out.push(format!("{line}!{message}")),
                Err(ScanError::Broken { line, message }) => return Err((line, message)),
                Err(ScanError::Io(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn collection_by_structure_with_late_type() {
        let text = "{\"bbox\": [1, 2, 3, 4],\n \"features\": [\n{\"a\": \"}]\\\"\"},\n{\"b\": [1]}\n], \"type\": \"FeatureCollection\"}\n";
        assert_eq!(
            pieces(text).unwrap(),
            ["3:{\"a\": \"}]\\\"\"}", "4:{\"b\": [1]}"]
        );
    }

    #[test]
    fn sequences_and_single_features() {
        let text = "{\"type\":\"Feature\"}\n\n\x1e{\"x\":1}\n{bad";
        assert_eq!(
            pieces(text).unwrap(),
            ["1:{\"type\":\"Feature\"}", "3:{\"x\":1}", "4:{bad"]
        );
    }

    #[test]
    fn truncation_is_broken_structure() {
        let (line, msg) = pieces("{\"features\": [{\"a\": 1},\n{\"b\": [1, 2").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("truncated"), "{msg}");
        assert!(pieces("{\"features\": [{\"a\": 1}").is_err());
        assert!(pieces("{\"features\": [], ").is_err());
        assert!(pieces("{\"features\": []} x").is_err());
    }

    /// Found by `fuzz::geojson_reader_survives_any_text`: a `}` where a feature should
    /// be was a value of zero bytes, read again and again.
    #[test]
    fn stray_bracket_in_features_cannot_stall_the_reader_regression() {
        for text in [
            "{\"features\":[\u{1}}",
            "{\"features\":[,",
            "{\"features\":[{} {}]}",
        ] {
            assert!(pieces(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_one_unfit_feature() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let text = format!("{{\"features\": [{{\"p\": {deep}}}, {{\"ok\": 1}}]}}");
        let got = pieces(&text).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].contains("nested"), "{got:?}");
        assert_eq!(got[1], "1:{\"ok\": 1}");
    }
}
