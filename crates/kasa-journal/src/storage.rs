//! The storage seam: a flat directory of named files, and the real file-system backend.
//!
//! Every byte the journal reads or writes goes through [`Storage`], so tests can swap in
//! [`FaultStorage`](crate::FaultStorage) and crash, tear, flip bits or fill the disk at will.
//! The trait is deliberately small (redb's seam has a similar handful of methods): no
//! directories, no metadata beyond length, no locking, no memory mapping. This module does
//! not know about frames or snapshots; it moves bytes.
//!
//! A storage value is used by one thread at a time (`&mut self`). Work on another thread (a
//! snapshot being written, a reader of the record log) gets its own handle from
//! [`Storage::try_clone`]; handles never share open files, so each one syncs what it wrote.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A flat directory of named files. All disk access of the journal goes through this trait.
///
/// Names are plain file names (no separators). Methods take `&mut self` so that
/// implementations can cache handles without interior mutability.
pub trait Storage: Send + 'static {
    /// Names of the files in the directory, in no particular order.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// Length in bytes of the file `name`.
    fn len(&mut self, name: &str) -> io::Result<u64>;
    /// Reads exactly `buf.len()` bytes at `offset`; fails with
    /// [`io::ErrorKind::UnexpectedEof`] if the file is shorter.
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, creating the file if it is missing. On error a
    /// prefix of `data` may have been written.
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes the written bytes of one file durable (fdatasync).
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Sets the length of the file `name` to `len`.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Removes the file `name`.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Makes file creations, renames and removals in the directory durable.
    fn sync_dir(&mut self) -> io::Result<()>;
    /// Another handle on the same directory, for another thread. Writes through one handle are
    /// visible to reads through the other; `sync` makes durable what this handle wrote.
    fn try_clone(&self) -> io::Result<Self>
    where
        Self: Sized;
}

/// A byte range of one file as an [`io::Read`], to put behind a [`io::BufReader`] so that
/// records are parsed from large reads instead of one storage call per field.
pub(crate) struct FileRange<'a, S: Storage> {
    pub storage: &'a mut S,
    pub name: &'a str,
    /// The next byte to read.
    pub position: u64,
    /// One past the last byte to read.
    pub end: u64,
}

impl<S: Storage> Read for FileRange<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = (self.end - self.position).min(buf.len() as u64) as usize;
        if len > 0 {
            self.storage.read_at(self.name, self.position, &mut buf[..len])?;
            self.position += len as u64;
        }
        Ok(len)
    }
}

/// How many file handles [`FileStorage`] keeps open. The journal appends to one segment and
/// touches a snapshot now and then; recovery walks every segment once, and without a bound a
/// journal of thousands of segments would hold thousands of descriptors.
const OPEN_FILES_MAX: usize = 16;

/// One cached handle.
struct OpenFile {
    file: File,
    /// Whether the handle has written or truncated since its last sync. Such a handle is never
    /// evicted: on Linux a writeback error is reported to descriptors that were open when it
    /// happened, so closing and reopening could hide a failed write from the next fsync.
    dirty: bool,
}

/// Mode of the directory: only its owner may list or enter it. The journal holds every
/// payment ever made.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Mode of every file: only its owner may read or write it.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// [`Storage`] on a real directory.
///
/// Keeps open `std::fs::File` handles per name (bounded by an internal limit), because the
/// journal appends to the same segment many times a second. It takes no lock on the directory:
/// running two writers on one journal is the caller's bug to prevent.
///
/// On Unix the directory is private to its owner (mode 0700) and so is every file in it (0600):
/// see [`open`](Self::open).
pub struct FileStorage {
    dir: PathBuf,
    files: HashMap<String, OpenFile>,
}

impl FileStorage {
    /// Opens the directory `dir`, creating it and any missing parents with mode 0700, and
    /// tightening an existing `dir` to 0700. Files it creates get mode 0600, and an existing
    /// file gets 0600 when this storage first opens it (every handle is opened for writing).
    pub fn open(dir: &Path) -> io::Result<Self> {
        create_private_dir(dir)?;
        Ok(FileStorage { dir: dir.to_path_buf(), files: HashMap::new() })
    }

    /// The directory this storage works in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        // A name with a separator or a dot-dot would escape the directory.
        let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\\');
        if !plain {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("expected a plain file name, found {name:?}"),
            ));
        }
        Ok(self.dir.join(name))
    }

    fn file(&mut self, name: &str, create: bool) -> io::Result<&mut OpenFile> {
        if !self.files.contains_key(name) {
            let path = self.path(name)?;
            let file = open_private_file(&path, create)?;
            if self.files.len() >= OPEN_FILES_MAX {
                self.files.retain(|_, open| open.dirty);
            }
            self.files.insert(name.to_string(), OpenFile { file, dirty: false });
        }
        Ok(self.files.get_mut(name).expect("inserted above"))
    }
}

impl Storage for FileStorage {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            // Names the journal writes are ASCII; anything else is not ours.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn len(&mut self, name: &str) -> io::Result<u64> {
        if let Some(open) = self.files.get(name) {
            return Ok(open.file.metadata()?.len());
        }
        Ok(fs::metadata(self.path(name)?)?.len())
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let open = self.file(name, false)?;
        open.file.seek(SeekFrom::Start(offset))?;
        open.file.read_exact(buf)
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let open = self.file(name, true)?;
        open.dirty = true;
        open.file.seek(SeekFrom::Start(offset))?;
        open.file.write_all(data)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let open = self.file(name, false)?;
        open.file.sync_data()?;
        open.dirty = false;
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let open = self.file(name, false)?;
        open.dirty = true;
        open.file.set_len(len)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let from_path = self.path(from)?;
        let to_path = self.path(to)?;
        self.files.remove(from);
        self.files.remove(to);
        fs::rename(from_path, to_path)
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let path = self.path(name)?;
        self.files.remove(name);
        fs::remove_file(path)
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        // Opening a directory read-only and fsyncing it is how POSIX makes entries durable.
        File::open(&self.dir)?.sync_all()
    }

    fn try_clone(&self) -> io::Result<Self> {
        // A fresh handle set: the clone opens its own files, so a sync through it covers what
        // it wrote and nothing is shared between threads.
        Ok(FileStorage { dir: self.dir.clone(), files: HashMap::new() })
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // `mode` applies to every directory `recursive` creates, parents included.
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    if fs::metadata(dir)?.permissions().mode() & 0o777 != DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private_file(path: &Path, create: bool) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new().read(true).write(true).create(create).mode(FILE_MODE).open(path)?;
    // `mode` only applies to a file this call creates (and the umask may narrow it further);
    // an existing file, or one another tool made, is set to exactly 0600.
    if file.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_private_file(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(create).open(path)
}
