//! The files a dataset was loaded from and the SHA-256 of their bytes as stored (compressed if
//! gzipped). [`content_key`] of them keys everything built from the dataset and cached (the BPR
//! model), so that a changed file — a rating edited, a line cut off — never reuses a stale result,
//! whatever the loaded ids and counts look like.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One input file of a dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The file name, relative to the dataset directory.
    pub file: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Hashes the file at `path`.
pub fn hash_file(path: &Path) -> Result<Source> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
    Ok(Source { file: name, bytes, sha256: hex(&hasher.finalize()) })
}

/// One SHA-256 over the sources (name and hash of each, in the order given).
pub fn content_key(sources: &[Source]) -> String {
    let mut hasher = Sha256::new();
    for s in sources {
        hasher.update((s.file.len() as u64).to_le_bytes());
        hasher.update(s.file.as_bytes());
        hasher.update(s.sha256.as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_a_key_that_follows_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.data");
        std::fs::write(&path, "abc").unwrap();
        let a = hash_file(&path).unwrap();
        // FIPS 180-2, appendix B.1.
        assert_eq!(a.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!((a.file.as_str(), a.bytes), ("u.data", 3));
        std::fs::write(&path, "abd").unwrap();
        let b = hash_file(&path).unwrap();
        assert_ne!(content_key(std::slice::from_ref(&a)), content_key(&[b]));
        let renamed = Source { file: "u.item".into(), ..a.clone() };
        assert_ne!(content_key(&[a]), content_key(&[renamed]));
    }
}
