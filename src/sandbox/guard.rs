//! A checking reader between a layer's decompressor and the tar parser: it follows the tar
//! stream block by block, refuses archives that different readers would see differently
//! (catalogue A5) and stops decompression bombs (catalogue A8).
//!
//! Refused shapes: a PAX `size` that disagrees with a non-zero ustar size, a PAX `x` header
//! followed by another meta header (a GNU long name `L`/`K` or a second `x`): readers disagree on
//! which entry such a header applies to; a GNU long name and a PAX `path` for one entry; a path
//! that appears twice in one archive (image-spec layer.md: a layer "MUST NOT include duplicate
//! entries for file paths"; readers keep the first or the last copy, so they see different
//! trees); and non-zero bytes after the end-of-archive marker (seen when the caller drains the
//! stream, as unpack and explain do).
//!
//! The one repetition accepted is a directory declared twice with the same mode and owner:
//! every reader ends with the same directory (Docker's and containerd's appliers merge a
//! directory entry into an existing directory), and archives made by appending or
//! concatenating tars repeat their parent directories that way. Paths are compared after the
//! same cleaning as extraction does ([`clean_components`]), so `./a`, `a/` and `/a` are one
//! path. Hard-link entries are paths like any other: two entries named `a` are refused whatever
//! their types. Budgets: decompressed bytes and entries per layer, and
//! the same summed over every layer this process unpacks (one `kiln build`), each settable
//! through an environment variable ([`Limits::from_env`]). The zstd window cap is the caller's
//! decoder setting ([`ZSTD_WINDOW_LOG_MAX`]).
//!
//! The guard sees exactly the bytes the tar parser reads, in order, so its view of where each
//! header starts is the parser's as long as both honour the PAX size the same way (tar ≥ 0.4.45
//! always does, and a disagreeing ustar size is refused here).

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::inroot::clean_components;

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
    /// Passing `left` bytes of entry data (and padding); `meta` collects the body of a PAX
    /// header or a GNU long name.
    Data { left: u64, meta: Option<Meta> },
    /// After the end-of-archive marker: only zero padding may follow.
    End,
}

/// The body of a meta header being collected.
#[derive(Debug)]
enum Meta {
    Pax(Vec<u8>),
    LongName(Vec<u8>),
}

/// What a PAX `x` header says about the next entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PaxRecords {
    size: Option<u64>,
    path: Option<Vec<u8>>,
    uid: Option<u64>,
    gid: Option<u64>,
}

/// What the guard remembers of a path it has seen: for a directory, its mode and owner.
type Seen = Option<(u64, u64, u64)>;

/// Wraps the decompressed stream `inner`; read errors caused by the guard carry a
/// [`GuardError`], which [`Verdict::take`] also hands back.
pub struct Guarded<R> {
    inner: R,
    limits: Limits,
    state: State,
    block: Vec<u8>,
    zero_blocks: u8,
    /// The records of the pending PAX `x` header.
    pending_pax: Option<PaxRecords>,
    /// The pending GNU long name (`L`), up to its first NUL.
    pending_long_name: Option<Vec<u8>>,
    /// Every cleaned path of this archive so far.
    seen: HashMap<String, Seen>,
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
        pending_long_name: None,
        seen: HashMap::new(),
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

/// Parses a decimal PAX value.
fn pax_number(value: &[u8], what: &str) -> Result<u64, GuardError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ambiguous(&format!("a PAX {what} that is not a number")))
}

/// The records of a PAX body the guard needs (the last of each wins, as in readers).
fn pax_records(body: &[u8]) -> Result<PaxRecords, GuardError> {
    let mut records = PaxRecords::default();
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
            records.size = Some(pax_number(value, "size")?);
        } else if let Some(value) = record.strip_prefix(b"path=") {
            records.path = Some(value.to_vec());
        } else if let Some(value) = record.strip_prefix(b"uid=") {
            records.uid = Some(pax_number(value, "uid")?);
        } else if let Some(value) = record.strip_prefix(b"gid=") {
            records.gid = Some(pax_number(value, "gid")?);
        }
        rest = &rest[len..];
    }
    Ok(records)
}

/// Bytes up to the first NUL.
fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// The path a header block names by itself: the ustar prefix joined to the name when the block
/// is a POSIX ustar header, as the tar parser reads it.
fn header_path(block: &[u8]) -> Vec<u8> {
    let name = until_nul(&block[..100]);
    let is_ustar = &block[257..263] == b"ustar\0" && &block[263..265] == b"00";
    let prefix = until_nul(&block[345..500]);
    if is_ustar && !prefix.is_empty() {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        path
    } else {
        name.to_vec()
    }
}

fn ambiguous(reason: &str) -> GuardError {
    GuardError::Ambiguous {
        reason: reason.to_owned(),
    }
}

/// A cleaned path as messages show it: `/` for the root, else with a leading `/`.
fn display_path(path: &str) -> String {
    format!("/{path}")
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

    /// Refuses an entry whose path an earlier entry of this archive already named, except a
    /// directory declared again with the same mode and owner.
    fn check_unique(
        &mut self,
        block: &[u8],
        pax: &PaxRecords,
        long_name: Option<Vec<u8>>,
    ) -> Result<(), GuardError> {
        let raw = long_name
            .or_else(|| pax.path.clone())
            .unwrap_or_else(|| header_path(block));
        let path = clean_components(&String::from_utf8_lossy(&raw)).join("/");
        let seen: Seen = (block[156] == b'5')
            .then(|| {
                let mode = number(&block[100..108])? & 0o7777;
                let uid = pax.uid.or_else(|| number(&block[108..116]))?;
                let gid = pax.gid.or_else(|| number(&block[116..124]))?;
                Some((mode, uid, gid))
            })
            .flatten();
        match self.seen.get(&path) {
            None => {
                self.seen.insert(path, seen);
                Ok(())
            }
            Some(earlier) if earlier.is_some() && *earlier == seen => Ok(()),
            Some(Some(_)) if seen.is_some() => Err(ambiguous(&format!(
                "the directory {:?} appears twice with a different mode or owner",
                display_path(&path)
            ))),
            Some(_) => Err(ambiguous(&format!(
                "the path {:?} appears twice",
                display_path(&path)
            ))),
        }
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
                    meta: Some(Meta::Pax(Vec::with_capacity(
                        ustar_size.min(1 << 20) as usize
                    ))),
                };
                if ustar_size > 1 << 20 {
                    return Err(ambiguous("a PAX header larger than 1 MiB"));
                }
            }
            b'L' | b'K' => {
                if self.pending_pax.is_some() {
                    return Err(ambiguous("a PAX header followed by a GNU long name"));
                }
                if ustar_size > 1 << 20 {
                    return Err(ambiguous("a GNU long name larger than 1 MiB"));
                }
                let meta = (typeflag == b'L').then(|| Meta::LongName(Vec::new()));
                self.state = State::Data {
                    left: padded(ustar_size),
                    meta,
                };
            }
            b'g' => {
                self.state = State::Data {
                    left: padded(ustar_size),
                    meta: None,
                };
            }
            _ => {
                self.count_entry()?;
                let pax = self.pending_pax.take().unwrap_or_default();
                let long_name = self.pending_long_name.take();
                self.check_unique(&block, &pax, long_name)?;
                let size = match pax.size {
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
                    meta: None,
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
                State::Data { left, meta } => {
                    let take = (*left).min(buf.len() as u64) as usize;
                    if let Some(Meta::Pax(body) | Meta::LongName(body)) = meta.as_mut() {
                        body.extend_from_slice(&buf[..take]);
                    }
                    *left -= take as u64;
                    buf = &buf[take..];
                    if *left == 0 {
                        match meta.take() {
                            Some(Meta::Pax(body)) => {
                                let records = pax_records(&body)?;
                                if records.path.is_some() && self.pending_long_name.is_some() {
                                    return Err(ambiguous(
                                        "a GNU long name and a PAX path for one entry",
                                    ));
                                }
                                self.pending_pax = Some(records);
                            }
                            Some(Meta::LongName(body)) => {
                                if self.pending_long_name.is_some() {
                                    return Err(ambiguous("two GNU long names for one entry"));
                                }
                                self.pending_long_name = Some(until_nul(&body).to_vec());
                            }
                            None => {}
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

    fn dir_header(name: &str, mode: &str) -> Vec<u8> {
        let mut h = header(name, b'5', "0");
        h[100..100 + mode.len()].copy_from_slice(mode.as_bytes());
        h
    }

    fn archive(headers: &[Vec<u8>]) -> Vec<u8> {
        let mut t: Vec<u8> = headers.concat();
        t.extend(vec![0u8; 1024]);
        t
    }

    #[test]
    fn a_path_that_appears_twice_is_refused_and_named() {
        for (what, second) in [
            ("same name", header("etc/passwd", b'0', "0")),
            ("leading ./", header("./etc/passwd", b'0', "0")),
            ("absolute", header("/etc//passwd", b'0', "0")),
            ("hard link", header("etc/passwd", b'1', "0")),
            ("directory", dir_header("etc/passwd/", "0000755")),
        ] {
            let t = archive(&[header("etc/passwd", b'0', "0"), second]);
            let err = read_all(&t, Limits::default()).unwrap_err();
            assert!(
                err.to_string()
                    .contains("the path \"/etc/passwd\" appears twice"),
                "{what}: {err}"
            );
        }
    }

    #[test]
    fn a_long_name_or_pax_path_counts_as_the_path() {
        let mut long = header("././@LongLink", b'L', "00000000013");
        let mut body = b"etc/passwd\0".to_vec();
        body.resize(512, 0);
        long.extend(body);
        long.extend(header("truncated", b'0', "0"));
        let t = archive(&[header("etc/passwd", b'0', "0"), long]);
        let err = read_all(&t, Limits::default()).unwrap_err();
        assert!(
            err.to_string().contains("\"/etc/passwd\" appears twice"),
            "{err}"
        );

        let mut pax = header("././@PaxHeader", b'x', "00000000023");
        let mut body = b"19 path=etc/passwd\n".to_vec();
        body.resize(512, 0);
        pax.extend(body);
        pax.extend(header("other", b'0', "0"));
        let t = archive(&[header("etc/passwd", b'0', "0"), pax]);
        let err = read_all(&t, Limits::default()).unwrap_err();
        assert!(
            err.to_string().contains("\"/etc/passwd\" appears twice"),
            "{err}"
        );
    }

    #[test]
    fn a_long_name_and_a_pax_path_for_one_entry_are_refused() {
        let mut t = header("././@LongLink", b'L', "00000000002");
        let mut body = b"a\0".to_vec();
        body.resize(512, 0);
        t.extend(body);
        t.extend(header("././@PaxHeader", b'x', "00000000011"));
        let mut body = b"9 path=b\n".to_vec();
        body.resize(512, 0);
        t.extend(body);
        let t = archive(&[t, header("c", b'0', "0")]);
        let err = read_all(&t, Limits::default()).unwrap_err();
        assert!(
            err.to_string().contains("GNU long name and a PAX path"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_declared_twice_alike_is_accepted_otherwise_refused() {
        let alike = archive(&[
            dir_header("usr/", "0000755"),
            header("usr/a", b'0', "0"),
            dir_header("./usr", "0000755"),
        ]);
        assert_eq!(read_all(&alike, Limits::default()), Ok(()));
        let differ = archive(&[dir_header("usr/", "0000755"), dir_header("usr/", "0000777")]);
        let err = read_all(&differ, Limits::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("directory \"/usr\" appears twice with a different mode"),
            "{err}"
        );
        let mut owner = dir_header("usr/", "0000755");
        owner[108..115].copy_from_slice(b"0001750");
        let differ = archive(&[dir_header("usr/", "0000755"), owner]);
        assert!(read_all(&differ, Limits::default()).is_err());
    }
}
