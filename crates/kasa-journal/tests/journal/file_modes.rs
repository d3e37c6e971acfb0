//! `FileStorage` keeps the data private: its directory is 0700 and every file in it 0600,
//! whether it made them or found them looser.

#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kasa_journal::{FileStorage, Storage};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn new_directories_are_0700_and_new_files_0600() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dir = data.join("journal");
    let mut storage = FileStorage::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&data), 0o700, "missing parents are created private too");

    storage.write_at("a", 0, b"bytes").unwrap();
    storage.sync("a").unwrap();
    assert_eq!(mode(&dir.join("a")), 0o600);
    storage.rename("a", "b").unwrap();
    assert_eq!(mode(&dir.join("b")), 0o600, "a rename keeps the mode");

    let mut clone = storage.try_clone().unwrap();
    clone.write_at("c", 0, b"from a clone").unwrap();
    assert_eq!(mode(&dir.join("c")), 0o600);
}

#[test]
fn existing_directory_and_files_are_tightened() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("journal");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    for (name, loose) in [("read", 0o644), ("written", 0o666)] {
        fs::write(dir.join(name), b"old").unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(loose)).unwrap();
    }

    let mut storage = FileStorage::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    // Listing and lengths open nothing; the first read or write of a file opens a handle
    // (always for writing) and tightens it.
    assert_eq!(storage.len("read").unwrap(), 3);
    assert_eq!(mode(&dir.join("read")), 0o644);
    let mut buf = [0; 3];
    storage.read_at("read", 0, &mut buf).unwrap();
    assert_eq!(mode(&dir.join("read")), 0o600);
    storage.write_at("written", 3, b" and new").unwrap();
    assert_eq!(mode(&dir.join("written")), 0o600);
    assert_eq!(fs::read(dir.join("written")).unwrap(), b"old and new");
}
