//! A checking reader between a layer's decompressor and the tar parser: it follows the tar
//! stream block by block, refuses archives that different readers would see differently
//! (catalogue A5) and stops decompression bombs (catalogue A8).
//!
//! Refused shapes: a PAX `size` that disagrees with a non-zero ustar size, a PAX `x` header
//! followed by another meta header (a GNU long name `L`/`K` or a second `x`): readers disagree on
//! which entry such a header applies to; and non-zero bytes after the end-of-archive marker
//! (seen when the caller drains the stream, as unpack and explain do). Budgets: decompressed bytes and entries per layer, and
//! the same summed over every layer this process unpacks (one `kiln build`), each settable
//! through an environment variable ([`Limits::from_env`]). The zstd window cap is the caller's
//! decoder setting ([`ZSTD_WINDOW_LOG_MAX`]).
//!
//! The guard sees exactly the bytes the tar parser reads, in order, so its view of where each
//! header starts is the parser's as long as both honour the PAX size the same way (tar ≥ 0.4.45
//! always does, and a disagreeing ustar size is refused here).

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// zstd frames may not ask for a window above 2^27 bytes (128 MiB, zstd's own default limit).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

const GIB: u64 = 1 << 30;

/// Budgets for unpacking layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed tar bytes of one layer (`KILN_LAYER_MAX_BYTES`).
    pub layer_bytes: u64,
    /// Entries of one layer (`KILN_LAYER_MAX_ENTRIES`).
    pub layer_entries: u64,
    /// Decompressed bytes of all layers this process unpacks (`KILN_BUILD_MAX_BYTES`).
    pub build_bytes: u64,
    /// Entries of all layers this process unpacks (`KILN_BUILD_MAX_ENTRIES`).
    pub build_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            layer_bytes: 64 * GIB,
            layer_entries: 2_000_000,
            build_bytes: 256 * GIB,
            build_entries: 8_000_000,
        }
    }
}

impl Limits {
    /// The defaults, each replaced by its environment variable when that holds a number.
    pub fn from_env() -> Self {
        let d = Limits::default();
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Limits {
            layer_bytes: var("KILN_LAYER_MAX_BYTES", d.layer_bytes),
            layer_entries: var("KILN_LAYER_MAX_ENTRIES", d.layer_entries),
            build_bytes: var("KILN_BUILD_MAX_BYTES", d.build_bytes),
            build_entries: var("KILN_BUILD_MAX_ENTRIES", d.build_entries),
        }
    }
}

/// Why the guard stopped a layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error(
        "failed to unpack the layer: it exceeds the {scope} budget of {limit} {what} \
         (raise it with the environment variable {env}=<n>)"
    )]
    Budget {
        scope: &'static str,
        what: &'static str,
        limit: u64,
        env: &'static str,
    },
    #[error("failed to read the layer: ambiguous tar archive ({reason}), refused")]
    Ambiguous { reason: String },
}

static BUILD_BYTES: AtomicU64 = AtomicU64::new(0);
static BUILD_ENTRIES: AtomicU64 = AtomicU64::new(0);

/// Where the guard is in the tar stream.
#[derive(Debug)]
enum State {
    /// Collecting a 512-byte header block.
    Header,
    /// Passing `left` bytes of entry data (and padding); `pax` collects a PAX header's body.
    Data { left: u64, pax: Option<Vec<u8>> },
    /// After the end-of-archive marker: only zero padding may follow.
    End,
}

/// Wraps the decompressed stream `inner`; read errors caused by the guard carry a
/// [`GuardError`], which [`Verdict::take`] also hands back.
pub struct Guarded<R> {
    inner: R,
    limits: Limits,
    state: State,
    block: Vec<u8>,
    zero_blocks: u8,
    /// The pending PAX `x` header's `size` record (`Some(None)`: a PAX header without one).
    pending_pax: Option<Option<u64>>,
    bytes: u64,
    entries: u64,
    verdict: Verdict,
}

/// Shared view of why a guard stopped, for callers whose tar parser rewraps io errors.
#[derive(Debug, Clone, Default)]
pub struct Verdict(Arc<Mutex<Option<GuardError>>>);

impl Verdict {
    /// The error that stopped the stream, if the guard stopped it.
    pub fn take(&self) -> Option<GuardError> {
        self.0.lock().ok().and_then(|mut v| v.take())
    }
}

/// Puts a guard in front of the reader `inner` (or behind the writer `inner`).
pub fn guard<R>(inner: R, limits: Limits) -> (Guarded<R>, Verdict) {
    let verdict = Verdict::default();
    let g = Guarded {
        inner,
        limits,
        state: State::Header,
        block: Vec::with_capacity(512),
        zero_blocks: 0,
        pending_pax: None,
        bytes: 0,
        entries: 0,
        verdict: verdict.clone(),
    };
    (g, verdict)
}

/// Parses a tar numeric field: octal text, or GNU base-256 when the top bit is set.
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The `size` record of a PAX body, if any (the last one wins, as in readers).
fn pax_size(body: &[u8]) -> Result<Option<u64>, GuardError> {
    let mut size = None;
    let mut rest = body;
    while !rest.is_empty() && rest[0] != 0 {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| ambiguous("a malformed PAX record"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > space && l <= rest.len())
            .ok_or_else(|| ambiguous("a malformed PAX record length"))?;
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"size=") {
            let value = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ambiguous("a PAX size that is not a number"))?;
            size = Some(value);
        }
        rest = &rest[len..];
    }
    Ok(size)
}

fn ambiguous(reason: &str) -> GuardError {
    GuardError::Ambiguous {
        reason: reason.to_owned(),
    }
}

/// Rounds a data length up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(512).saturating_mul(512)
}

impl<R> Guarded<R> {
    fn fail(&self, err: GuardError) -> io::Error {
        if let Ok(mut v) = self.verdict.0.lock() {
            *v = Some(err.clone());
        }
        io::Error::other(err)
    }

    fn count_bytes(&mut self, n: u64) -> Result<(), GuardError> {
        self.bytes += n;
        let build = BUILD_BYTES.fetch_add(n, Ordering::Relaxed) + n;
        if self.bytes > self.limits.layer_bytes {
            return Err(GuardError::Budget {
                scope: "per-layer",
                what: "decompressed bytes",
                limit: self.limits.layer_bytes,
                env: "KILN_LAYER_MAX_BYTES",
            });
        }
        if build > self.limits.build_bytes {
            return Err(GuardError::Budget {
                scope: "per-build",
                what: "decompressed bytes",
                limit: self.limits.build_bytes,
                env: "KILN_BUILD_MAX_BYTES",
            });
        }
        Ok(())
    }

    fn count_entry(&mut self) -> Result<(), GuardError> {
        self.entries += 1;
        let build = BUILD_ENTRIES.fetch_add(1, Ordering::Relaxed) + 1;
        if self.entries > self.limits.layer_entries {
            return Err(GuardError::Budget {
                scope: "per-layer",
                what: "entries",
                limit: self.limits.layer_entries,
                env: "KILN_LAYER_MAX_ENTRIES",
            });
        }
        if build > self.limits.build_entries {
            return Err(GuardError::Budget {
                scope: "per-build",
                what: "entries",
                limit: self.limits.build_entries,
                env: "KILN_BUILD_MAX_ENTRIES",
            });
        }
        Ok(())
    }

    /// Handles one complete header block.
    fn header(&mut self) -> Result<(), GuardError> {
        let block = std::mem::take(&mut self.block);
        if block.iter().all(|&b| b == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::End;
            }
            return Ok(());
        }
        self.zero_blocks = 0;
        let typeflag = block[156];
        let ustar_size =
            number(&block[124..136]).ok_or_else(|| ambiguous("an unreadable size field"))?;
        match typeflag {
            b'x' => {
                if self.pending_pax.is_some() {
                    return Err(ambiguous("two PAX headers for one entry"));
                }
                self.state = State::Data {
                    left: padded(ustar_size),
                    pax: Some(Vec::with_capacity(ustar_size.min(1 << 20) as usize)),
                };
                if ustar_size > 1 << 20 {
                    return Err(ambiguous("a PAX header larger than 1 MiB"));
                }
            }
            b'L' | b'K' => {
                if self.pending_pax.is_some() {
                    return Err(ambiguous("a PAX header followed by a GNU long name"));
                }
                self.state = State::Data {
                    left: padded(ustar_size),
                    pax: None,
                };
            }
            b'g' => {
                self.state = State::Data {
                    left: padded(ustar_size),
                    pax: None,
                };
            }
            _ => {
                self.count_entry()?;
                let size = match self.pending_pax.take().flatten() {
                    Some(pax) if ustar_size != 0 && ustar_size != pax => {
                        return Err(ambiguous(&format!(
                            "the PAX size {pax} disagrees with the ustar size {ustar_size}"
                        )));
                    }
                    Some(pax) => pax,
                    None => ustar_size,
                };
                self.state = State::Data {
                    left: padded(size),
                    pax: None,
                };
            }
        }
        Ok(())
    }

    /// Follows the bytes just read.
    fn follow(&mut self, mut buf: &[u8]) -> Result<(), GuardError> {
        self.count_bytes(buf.len() as u64)?;
        while !buf.is_empty() {
            match &mut self.state {
                State::End => {
                    // What follows the end-of-archive marker is padding; anything else is a
                    // second archive some readers would go on to read.
                    if buf.iter().any(|&b| b != 0) {
                        return Err(ambiguous("data after the end-of-archive marker"));
                    }
                    return Ok(());
                }
                State::Header => {
                    let take = (512 - self.block.len()).min(buf.len());
                    self.block.extend_from_slice(&buf[..take]);
                    buf = &buf[take..];
                    if self.block.len() == 512 {
                        self.header()?;
                    }
                }
                State::Data { left, pax } => {
                    let take = (*left).min(buf.len() as u64) as usize;
                    if let Some(body) = pax.as_mut() {
                        body.extend_from_slice(&buf[..take]);
                    }
                    *left -= take as u64;
                    buf = &buf[take..];
                    if *left == 0 {
                        if let Some(body) = pax.take() {
                            self.pending_pax = Some(pax_size(&body)?);
                        }
                        self.state = State::Header;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R> Guarded<R> {
    /// The wrapped reader or writer.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// The write side, for a decompressor that pushes its output (as `kiln load` does while it
/// hashes a gzip layer).
impl<W: io::Write> io::Write for Guarded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Err(err) = self.follow(&buf[..n]) {
            return Err(self.fail(err));
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(err) = self.follow(&buf[..n]) {
            return Err(self.fail(err));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, typeflag: u8, size: &str) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..124 + size.len()].copy_from_slice(size.as_bytes());
        h[156] = typeflag;
        h
    }

    fn read_all(bytes: &[u8], limits: Limits) -> Result<(), GuardError> {
        let (mut g, verdict) = guard(bytes, limits);
        let mut sink = Vec::new();
        match g.read_to_end(&mut sink) {
            Ok(_) => Ok(()),
            Err(_) => Err(verdict.take().expect("the guard stopped the stream")),
        }
    }

    #[test]
    fn numbers_are_octal_or_base_256() {
        assert_eq!(number(b"00000000012\0"), Some(10));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"\0\0\0"), Some(0));
    }

    #[test]
    fn a_pax_header_before_a_gnu_long_name_is_refused() {
        let mut t = header("././@PaxHeader", b'x', "00000000012");
        let mut body = b"10 size=0\n".to_vec();
        body.resize(512, 0);
        t.extend(body);
        t.extend(header("././@LongLink", b'L', "00000000002"));
        t.extend(vec![0u8; 512]);
        let err = read_all(&t, Limits::default()).unwrap_err();
        assert!(err.to_string().contains("GNU long name"), "{err}");
    }

    #[test]
    fn entry_budget_counts_entries_not_meta_headers() {
        let mut t = Vec::new();
        for i in 0..3 {
            t.extend(header(&format!("f{i}"), b'0', "0"));
        }
        t.extend(vec![0u8; 1024]);
        let tight = Limits {
            layer_entries: 2,
            ..Limits::default()
        };
        let err = read_all(&t, tight).unwrap_err();
        assert!(err.to_string().contains("KILN_LAYER_MAX_ENTRIES"), "{err}");
        let enough = Limits {
            layer_entries: 3,
            ..Limits::default()
        };
        assert_eq!(read_all(&t, enough), Ok(()));
    }
}
