//! The streaming layer writer: deterministic tar, gzip and zstd bytes,
//! digests computed in the same pass, normalisation and tar special entries.

use std::io::{Cursor, Read, Write};

use kiln::build::layer::{
    ChangeKind, Compression, EntryMeta, LayerError, LayerInfo, LayerOptions, LayerWriter,
};
use sha2::{Digest, Sha256};

fn meta(mode: u32, mtime: i64) -> EntryMeta {
    EntryMeta {
        mode,
        uid: 1000,
        gid: 1000,
        mtime,
    }
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pseudo-random bytes (xorshift) so compression has real work to do.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const LONG_DIR: &str = "z-directory-name-that-is-quite-long/another-directory-name-that-is-long-too/and-a-third-one-for-good-measure";

/// A layer exercising every entry kind, a multi-chunk file and long names.
fn sample_layer(compression: Compression, options: LayerOptions) -> (Vec<u8>, LayerInfo) {
    let mut w = LayerWriter::new(Vec::new(), compression, options);
    let big = noise(3 * 1024 * 1024 + 123, 7);
    let text = b"hello layer\n".repeat(5000);
    w.append_dir("app", &meta(0o755, 1_700_000_000)).unwrap();
    w.append_file(
        "app/big.bin",
        &meta(0o644, 1_700_000_001),
        big.len() as u64,
        &mut &big[..],
    )
    .unwrap();
    w.append_hardlink("app/big.link", &meta(0o644, 1_700_000_001), "app/big.bin")
        .unwrap();
    w.append_opaque("app/cache").unwrap();
    w.append_file(
        "app/run.sh",
        &meta(0o4755, 1_800_000_000),
        3,
        &mut &b"#!\n"[..],
    )
    .unwrap();
    w.append_symlink("app/self", &meta(0o755, 5), &format!("/{LONG_DIR}/target"))
        .unwrap();
    w.append_file(
        "app/text.txt",
        &meta(0o600, 42),
        text.len() as u64,
        &mut &text[..],
    )
    .unwrap();
    w.append_whiteout("etc/gone.conf").unwrap();
    w.append_dir(LONG_DIR, &meta(0o700, 9)).unwrap();
    w.append_file(
        &format!("{LONG_DIR}/file"),
        &meta(0o644, 9),
        0,
        &mut std::io::empty(),
    )
    .unwrap();
    w.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn same_inputs_give_bit_identical_tar_gzip_and_zstd() {
    for compression in [Compression::None, Compression::GZIP, Compression::ZSTD] {
        let (a, info_a) = sample_layer(compression, LayerOptions::default());
        let (b, info_b) = sample_layer(compression, LayerOptions::default());
        assert!(a == b, "{compression:?} bytes differ");
        assert_eq!(info_a, info_b);
    }
}

#[test]
fn digests_are_those_of_the_written_and_uncompressed_bytes() {
    let (tar, plain) = sample_layer(Compression::None, LayerOptions::default());
    assert_eq!(plain.diff_id, sha(&tar));
    assert_eq!(plain.digest, plain.diff_id);
    assert_eq!(plain.size, tar.len() as u64);
    assert_eq!(plain.uncompressed_size, tar.len() as u64);
    assert_eq!(tar.len() % 512, 0);

    let (gz, gzip) = sample_layer(Compression::GZIP, LayerOptions::default());
    assert_eq!(gzip.digest, sha(&gz));
    assert_eq!(gzip.size, gz.len() as u64);
    assert_eq!(gzip.diff_id, plain.diff_id);
    assert!(gunzip(&gz) == tar, "gzip does not decode to the tar");
    // Fixed header: no mtime, no file name.
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    assert!(gz.len() < tar.len());

    let (zst, zstd) = sample_layer(Compression::ZSTD, LayerOptions::default());
    assert_eq!(zstd.digest, sha(&zst));
    assert_eq!(zstd.diff_id, plain.diff_id);
    assert!(
        zstd::decode_all(&zst[..]).unwrap() == tar,
        "zstd does not decode to the tar"
    );
}

#[test]
fn tar_entries_read_back_with_kinds_names_and_links() {
    let (tar, info) = sample_layer(Compression::None, LayerOptions::default());
    let mut archive = tar::Archive::new(Cursor::new(tar));
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        seen.push((path, entry.header().entry_type(), link));
    }
    let names: Vec<&str> = seen.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "app/",
            "app/big.bin",
            "app/big.link",
            "app/cache/.wh..wh..opq",
            "app/run.sh",
            "app/self",
            "app/text.txt",
            "etc/.wh.gone.conf",
            &format!("{LONG_DIR}/"),
            &format!("{LONG_DIR}/file"),
        ]
    );
    assert_eq!(seen[2].1, tar::EntryType::Link);
    assert_eq!(seen[2].2.as_deref(), Some("app/big.bin"));
    assert_eq!(seen[5].1, tar::EntryType::Symlink);
    assert_eq!(
        seen[5].2.as_deref(),
        Some(format!("/{LONG_DIR}/target").as_str())
    );
    assert_eq!(info.summary.files, 4);
    assert_eq!(info.summary.deleted, 1);
    assert_eq!(info.summary.opaque_dirs, 1);
    assert!(info
        .summary
        .changes
        .iter()
        .any(|c| c.path == "etc/gone.conf" && c.kind == ChangeKind::Deleted));
}

fn headers(tar: Vec<u8>) -> Vec<(String, u64, u32, u64, u64)> {
    let mut archive = tar::Archive::new(Cursor::new(tar));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mtime().unwrap(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
            )
        })
        .collect()
}

#[test]
fn source_date_epoch_clamps_later_mtimes_only() {
    let options = LayerOptions {
        source_date_epoch: Some(1_750_000_000),
        ..LayerOptions::default()
    };
    let (tar, _) = sample_layer(Compression::None, options);
    let h = headers(tar);
    let mtime = |p: &str| h.iter().find(|e| e.0 == p).unwrap().1;
    assert_eq!(mtime("app/run.sh"), 1_750_000_000, "later mtime clamped");
    assert_eq!(mtime("app/big.bin"), 1_700_000_001, "earlier mtime kept");
    assert_eq!(mtime("app/text.txt"), 42);
}

#[test]
fn owner_and_modes_are_normalised_when_asked() {
    let (tar, _) = sample_layer(Compression::None, LayerOptions::default());
    let h = headers(tar);
    let run = h.iter().find(|e| e.0 == "app/run.sh").unwrap();
    assert_eq!((run.2, run.3, run.4), (0o4755, 1000, 1000));

    let options = LayerOptions {
        owner: Some((0, 0)),
        file_mode: Some(0o640),
        dir_mode: Some(0o750),
        ..LayerOptions::default()
    };
    let (tar, _) = sample_layer(Compression::None, options);
    for (path, _, mode, uid, gid) in headers(tar) {
        assert_eq!((uid, gid), (0, 0), "{path}");
        if path.ends_with('/') {
            assert_eq!(mode, 0o750, "{path}");
        } else if path == "app/self" {
            assert_eq!(mode, 0o777, "symlink modes are fixed");
        } else if !path.contains(".wh.") {
            assert_eq!(mode, 0o640, "{path}");
        }
    }
}

#[test]
fn unsorted_or_unclean_paths_are_refused() {
    let mut w = LayerWriter::new(Vec::new(), Compression::None, LayerOptions::default());
    w.append_dir("b", &meta(0o755, 0)).unwrap();
    assert!(matches!(
        w.append_dir("a", &meta(0o755, 0)),
        Err(LayerError::Unsorted { .. })
    ));
    for bad in ["/abs", "x/../y", "./x", ""] {
        assert!(matches!(
            w.append_dir(bad, &meta(0o755, 0)),
            Err(LayerError::InvalidPath { .. })
        ));
    }
}

#[test]
fn a_file_shorter_or_longer_than_announced_is_an_error() {
    let mut w = LayerWriter::new(Vec::new(), Compression::None, LayerOptions::default());
    let err = w
        .append_file("f", &meta(0o644, 0), 10, &mut &b"short"[..])
        .unwrap_err();
    assert!(matches!(err, LayerError::FileChanged { .. }), "{err}");
    let mut w = LayerWriter::new(Vec::new(), Compression::None, LayerOptions::default());
    let err = w
        .append_file("f", &meta(0o644, 0), 2, &mut &b"longer"[..])
        .unwrap_err();
    assert!(matches!(err, LayerError::FileChanged { .. }), "{err}");
}

struct FailingSink;

impl Write for FailingSink {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn sink_errors_are_reported() {
    let data = noise(4 * 1024 * 1024, 3);
    for compression in [Compression::None, Compression::GZIP, Compression::ZSTD] {
        let mut w = LayerWriter::new(FailingSink, compression, LayerOptions::default());
        let result = w
            .append_file("f", &meta(0o644, 0), data.len() as u64, &mut &data[..])
            .and_then(|()| w.finish().map(|_| ()));
        assert!(
            matches!(result, Err(LayerError::Write(_))),
            "{compression:?}: {result:?}"
        );
    }
}

#[test]
fn empty_layer_is_two_zero_blocks() {
    let (tar, info) = LayerWriter::new(Vec::new(), Compression::None, LayerOptions::default())
        .finish()
        .unwrap();
    assert_eq!(tar, vec![0u8; 1024]);
    assert_eq!(info.summary.changes, []);
    let (gz, _) = LayerWriter::new(Vec::new(), Compression::GZIP, LayerOptions::default())
        .finish()
        .unwrap();
    assert_eq!(gunzip(&gz), vec![0u8; 1024]);
}
