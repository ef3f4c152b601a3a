//! Streaming a stack of layer tars once, bottom first, into per-layer file changes and
//! wasted space.
//!
//! [`Stack`] keeps the merged filesystem of the layers applied so far (path → size, which
//! layer wrote it, whether it is a directory). Applying a layer classifies each of its
//! entries as added or modified against that merged view, and OCI whiteouts as deletions:
//! `.wh.name` deletes `name` and everything below it; `.wh..wh..opq` in a directory deletes
//! what *lower* layers had in it (entries of the same layer survive; OCI image spec,
//! "Whiteouts"). A file that a later layer replaces or deletes is wasted at its earlier size.
//!
//! Counts are of non-directory entries (files, symlinks, hard links, devices): a layer that
//! re-emits `usr/` does not "modify" it. Directory entries still appear in the change list,
//! so the `--layer` tree can mark new and deleted directories.
//!
//! It does not decide what a layer *is* (history or build record); see the parent module.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read};

use serde::Serialize;

/// How an entry of a layer changed the merged filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    /// The one-letter mark of dive's file pane.
    pub fn mark(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'M',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One path a layer added, modified or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Path relative to the root, no leading `/` (`etc/passwd`).
    pub path: String,
    pub kind: ChangeKind,
    /// Bytes of the entry; for deletions, the size the deleted entry had.
    pub size: u64,
    pub is_dir: bool,
}

/// Counts of a layer's file changes (directories excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSummary {
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
    /// Bytes of added and modified files.
    pub added_bytes: u64,
    /// Bytes the deleted files had.
    pub deleted_bytes: u64,
}

/// A file version that a later layer replaced or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waste {
    pub path: String,
    /// Size of the earlier (wasted) version.
    pub size: u64,
    /// Index (0-based, bottom first) of the layer that wrote it.
    pub written_by: usize,
    /// Index of the layer that replaced or deleted it.
    pub removed_by: usize,
    /// `modified` when replaced, `deleted` when removed.
    pub how: ChangeKind,
}

/// What one layer did, from streaming its tar once.
#[derive(Debug, Clone, Default)]
pub struct LayerScan {
    pub changes: Vec<Change>,
    pub summary: ChangeSummary,
    /// Bytes of the uncompressed tar stream.
    pub uncompressed_size: u64,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    size: u64,
    layer: usize,
    is_dir: bool,
}

/// Per path, over every layer: the smallest size seen and the sum of sizes seen (a
/// deletion is a sighting of size 0). dive's efficiency is Σmin / Σsum.
#[derive(Debug, Clone, Copy)]
struct Seen {
    min: u64,
    sum: u64,
}

/// The merged filesystem of the layers applied so far, and the waste found on the way.
#[derive(Debug, Default)]
pub struct Stack {
    nodes: BTreeMap<String, Node>,
    seen: HashMap<String, Seen>,
    waste: Vec<Waste>,
    layers: usize,
}

/// One entry of a layer tar, before it is applied.
enum Entry {
    Put {
        path: String,
        size: u64,
        is_dir: bool,
    },
    Whiteout(String),
    Opaque(String),
}

impl Stack {
    pub fn new() -> Stack {
        Stack::default()
    }

    /// Streams one uncompressed, gzip or zstd layer tar (sniffed from its first bytes, not
    /// trusted from a media type) to its end and applies it on top of the stack.
    ///
    /// The reader is read to EOF, so a verifying reader gets to check its digest.
    pub fn apply_reader(&mut self, reader: impl Read) -> io::Result<LayerScan> {
        let mut buffered = BufReader::with_capacity(1 << 16, reader);
        let head = buffered.fill_buf()?;
        let stream: Box<dyn Read + '_> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
        } else {
            Box::new(buffered)
        };
        // The same guard as extraction, so explain sees the tree kiln would unpack or
        // refuses the layer as extraction does (catalogue A5, A8).
        let (guarded, verdict) = crate::sandbox::guard(stream, crate::sandbox::Limits::from_env());
        let stopped = |e: io::Error| match verdict.take() {
            Some(g) => io::Error::new(io::ErrorKind::InvalidData, g),
            None => e,
        };
        let mut counted = Counting {
            inner: guarded,
            count: 0,
        };
        let entries = read_entries(&mut counted).map_err(stopped)?;
        // The end-of-archive blocks, padding, and the rest of the compressed stream: read
        // them so the uncompressed size is exact and the blob's digest is verified.
        io::copy(&mut counted, &mut io::sink()).map_err(stopped)?;
        let mut scan = self.apply(entries);
        scan.uncompressed_size = counted.count;
        Ok(scan)
    }

    fn apply(&mut self, entries: Vec<Entry>) -> LayerScan {
        let layer = self.layers;
        self.layers += 1;
        let mut scan = LayerScan::default();
        let mut puts = Vec::new();
        let mut removed: HashMap<String, Node> = HashMap::new();
        // Whiteouts and opaque markers hide lower layers only: apply them before this
        // layer's own entries, whatever their order in the tar.
        for entry in entries {
            match entry {
                Entry::Put { path, size, is_dir } => puts.push((path, size, is_dir)),
                Entry::Whiteout(path) => {
                    if let Some(node) = self.nodes.remove(&path) {
                        removed.insert(path.clone(), node);
                    }
                    self.remove_below(&path, &mut removed);
                }
                Entry::Opaque(dir) => self.remove_below(&dir, &mut removed),
            }
        }
        for (path, size, is_dir) in puts {
            let before = removed
                .remove(&path)
                .or_else(|| self.nodes.get(&path).copied());
            let node = Node {
                size,
                layer,
                is_dir,
            };
            self.nodes.insert(path.clone(), node);
            match before {
                // Re-emitting a directory that exists changes nothing a user sees.
                Some(old) if old.is_dir && is_dir => {}
                Some(old) => {
                    if !old.is_dir {
                        self.waste.push(Waste {
                            path: path.clone(),
                            size: old.size,
                            written_by: old.layer,
                            removed_by: layer,
                            how: ChangeKind::Modified,
                        });
                    }
                    self.record(&mut scan, path, ChangeKind::Modified, size, is_dir);
                }
                None => self.record(&mut scan, path, ChangeKind::Added, size, is_dir),
            }
        }
        let mut removed: Vec<(String, Node)> = removed.into_iter().collect();
        removed.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, old) in removed {
            if !old.is_dir {
                self.waste.push(Waste {
                    path: path.clone(),
                    size: old.size,
                    written_by: old.layer,
                    removed_by: layer,
                    how: ChangeKind::Deleted,
                });
            }
            self.record(&mut scan, path, ChangeKind::Deleted, old.size, old.is_dir);
        }
        scan.changes.sort_by(|a, b| a.path.cmp(&b.path));
        scan
    }

    fn record(
        &mut self,
        scan: &mut LayerScan,
        path: String,
        kind: ChangeKind,
        size: u64,
        is_dir: bool,
    ) {
        if !is_dir {
            let sighting = if kind == ChangeKind::Deleted { 0 } else { size };
            match self.seen.get_mut(&path) {
                Some(seen) => {
                    seen.min = seen.min.min(sighting);
                    seen.sum += sighting;
                }
                None => {
                    self.seen.insert(
                        path.clone(),
                        Seen {
                            min: sighting,
                            sum: sighting,
                        },
                    );
                }
            }
            let summary = &mut scan.summary;
            match kind {
                ChangeKind::Added => summary.added += 1,
                ChangeKind::Modified => summary.modified += 1,
                ChangeKind::Deleted => summary.deleted += 1,
            }
            if kind == ChangeKind::Deleted {
                summary.deleted_bytes += size;
            } else {
                summary.added_bytes += size;
            }
        }
        scan.changes.push(Change {
            path,
            kind,
            size,
            is_dir,
        });
    }

    /// Moves every node strictly below `dir` into `removed`.
    fn remove_below(&mut self, dir: &str, removed: &mut HashMap<String, Node>) {
        let below: Vec<String> = if dir.is_empty() {
            self.nodes.keys().cloned().collect()
        } else {
            // Keys under `dir/` sort between `dir/` and `dir0` ('0' follows '/').
            let start = format!("{dir}/");
            let end = format!("{dir}0");
            self.nodes
                .range(start..end)
                .map(|(k, _)| k.clone())
                .collect()
        };
        for path in below {
            if let Some(node) = self.nodes.remove(&path) {
                removed.insert(path, node);
            }
        }
    }

    /// Every replaced or deleted file version, in layer order.
    pub fn waste(&self) -> &[Waste] {
        &self.waste
    }

    /// Sum of the wasted versions' sizes.
    pub fn wasted_bytes(&self) -> u64 {
        self.waste.iter().map(|w| w.size).sum()
    }

    /// dive's efficiency score: over every file path of every layer, the smallest size it
    /// had divided by the sum of all sizes it had (deletions count as size 0); 1.0 when no
    /// layer holds a byte.
    pub fn efficiency(&self) -> f64 {
        let (min, sum) = self
            .seen
            .values()
            .fold((0u64, 0u64), |(m, s), seen| (m + seen.min, s + seen.sum));
        if sum == 0 {
            1.0
        } else {
            min as f64 / sum as f64
        }
    }

    /// Sum of the sizes of the files in the merged filesystem.
    pub fn final_size(&self) -> u64 {
        self.nodes
            .values()
            .filter(|n| !n.is_dir)
            .map(|n| n.size)
            .sum()
    }
}

fn read_entries(reader: impl Read) -> io::Result<Vec<Entry>> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let kind = header.entry_type();
        // PAX and GNU long-name records are folded into the next entry by the tar crate;
        // anything else that is not a filesystem object is skipped.
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let raw = entry.path_bytes();
        let path = normalise(&String::from_utf8_lossy(&raw));
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path.as_str()),
        };
        if name == ".wh..wh..opq" {
            entries.push(Entry::Opaque(dir.to_owned()));
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                hidden.to_owned()
            } else {
                format!("{dir}/{hidden}")
            };
            entries.push(Entry::Whiteout(target));
        } else if !path.is_empty() {
            let is_dir = kind.is_dir();
            let size = if kind.is_file() || kind == tar::EntryType::Continuous {
                entry.size()
            } else {
                0
            };
            entries.push(Entry::Put { path, size, is_dir });
        }
    }
    Ok(entries)
}

/// `./usr/bin/` and `/usr/bin` → `usr/bin`; `.` and `./` → `` (the root).
fn normalise(path: &str) -> String {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pax_header_before_a_gnu_long_name_is_refused_as_extraction_refuses_it() {
        let block = |name: &str, flag: u8, size: u64| {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(tar::EntryType::new(flag));
            h.set_size(size);
            h.set_mode(0o644);
            h.set_cksum();
            h.as_bytes().to_vec()
        };
        let mut t = block("././@PaxHeader", b'x', 10);
        let mut body = b"10 size=0\n".to_vec();
        body.resize(512, 0);
        t.extend(body);
        t.extend(block("././@LongLink", b'L', 7));
        let mut name = b"hidden\0".to_vec();
        name.resize(512, 0);
        t.extend(name);
        t.extend(block("outer", b'0', 0));
        t.extend(vec![0u8; 1024]);
        let err = Stack::new().apply_reader(&t[..]).unwrap_err();
        assert!(err.to_string().contains("GNU long name"), "{err}");
    }

    #[test]
    fn a_path_twice_is_refused_as_extraction_refuses_it() {
        let t = tar(&[
            ("etc/", b""),
            ("etc/motd", b"safe"),
            ("./etc/motd", b"evil"),
        ]);
        let err = Stack::new().apply_reader(&t[..]).unwrap_err();
        assert!(
            err.to_string().contains("\"/etc/motd\" appears twice"),
            "{err}"
        );
    }

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = tar::Header::new_ustar();
            if path.ends_with('/') {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            } else {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                builder.append_data(&mut header, path, *content).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    fn kinds(scan: &LayerScan) -> Vec<(String, char)> {
        scan.changes
            .iter()
            .map(|c| (c.path.clone(), c.kind.mark()))
            .collect()
    }

    #[test]
    fn overwrite_is_modified_and_wastes_the_earlier_size() {
        let mut stack = Stack::new();
        stack
            .apply_reader(&tar(&[("app/", b""), ("app/a", b"12345")])[..])
            .unwrap();
        let scan = stack.apply_reader(&tar(&[("app/a", b"xy")])[..]).unwrap();
        assert_eq!(kinds(&scan), [("app/a".to_owned(), 'M')]);
        assert_eq!(stack.wasted_bytes(), 5);
        assert_eq!(stack.waste()[0].written_by, 0);
        assert_eq!(stack.waste()[0].removed_by, 1);
        // min(5, 2) / (5 + 2)
        assert!((stack.efficiency() - 2.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn whiteout_of_a_directory_deletes_everything_below_it() {
        let mut stack = Stack::new();
        stack
            .apply_reader(&tar(&[("d/", b""), ("d/x", b"aaa"), ("d/y/z", b"bb"), ("dz", b"c")])[..])
            .unwrap();
        let scan = stack.apply_reader(&tar(&[(".wh.d", b"")])[..]).unwrap();
        assert_eq!(scan.summary.deleted, 2);
        assert_eq!(scan.summary.deleted_bytes, 5);
        assert_eq!(stack.final_size(), 1, "dz is not below d");
    }

    #[test]
    fn opaque_directory_keeps_entries_of_its_own_layer() {
        let mut stack = Stack::new();
        stack
            .apply_reader(&tar(&[("d/", b""), ("d/old", b"1234"), ("d/kept", b"1")])[..])
            .unwrap();
        // The new file comes before the marker in the tar: it must survive anyway.
        let scan = stack
            .apply_reader(&tar(&[("d/new", b"22"), ("d/kept", b"9"), ("d/.wh..wh..opq", b"")])[..])
            .unwrap();
        assert_eq!(
            kinds(&scan),
            [
                ("d/kept".to_owned(), 'M'),
                ("d/new".to_owned(), 'A'),
                ("d/old".to_owned(), 'D')
            ]
        );
        assert_eq!(stack.wasted_bytes(), 5);
        assert_eq!(stack.final_size(), 3);
    }

    #[test]
    fn gzip_and_zstd_layers_are_sniffed() {
        use std::io::Write;
        let plain = tar(&[("f", b"hello")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        for layer in [plain.clone(), gz, zst] {
            let scan = Stack::new().apply_reader(&layer[..]).unwrap();
            assert_eq!(kinds(&scan), [("f".to_owned(), 'A')]);
            assert_eq!(scan.uncompressed_size, plain.len() as u64);
        }
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise("./usr/bin/"), "usr/bin");
        assert_eq!(normalise("/a/./b/../c"), "a/c");
        assert_eq!(normalise("./"), "");
    }
}
