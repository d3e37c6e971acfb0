//! An in-memory, deterministic, fault-injecting [`Storage`] for tests.
//!
//! It keeps written and durable state apart the way redb's crash tests do. A file's bytes
//! become durable at `sync(name)`; a file's name (its creation, rename or removal) becomes
//! durable at `sync_dir`. [`FaultStorage::restart`] returns what a power loss would leave: the
//! durable names plus an in-order prefix of the pending directory operations (a journaling file
//! system commits directory changes in order), and for each file its durable bytes plus, chosen
//! by the seed, none, all, or a torn prefix of the unsynced bytes, possibly garbled at its end
//! (only within the write in flight at the cut: a torn write damages itself, not earlier writes).
//!
//! A [`FaultStorage`] is a cheap handle: clones share one simulated disk, so a test can keep a
//! handle while a journal owns another, and [`Storage::try_clone`] is a clone; calls from
//! several threads are serialised by a lock. [`FaultStorage::fork`] copies the disk.
//!
//! Faults: crash at the n-th mutating call, failed sync (after which syncs of that file report
//! success but persist nothing, the Linux behaviour PostgreSQL learned about the hard way), a
//! full disk, bit flips. It does not model latency or partial reads (reads always return what
//! was written), and calls from several threads are atomic: it tests what threads do with the
//! files, not races inside one call.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::Storage;

/// Bytes at the end of a torn write that [`FaultStorage::restart`] may garble. Disks tear at
/// sector granularity, but a few garbled bytes are enough to hit every branch of the
/// torn-tail classification (header, payload, checksum fields).
const TORN_GARBLE_BYTES_MAX: usize = 8;

/// One file's contents (an inode: renames move names, not contents).
#[derive(Clone, Debug, Default)]
struct FileData {
    /// What survives a power loss for certain.
    durable: Vec<u8>,
    /// What reads see.
    written: Vec<u8>,
    /// Set by an injected sync failure: later syncs of this file report success but persist
    /// nothing, like a kernel that dropped the dirty pages and cleared the error.
    sync_lost: bool,
    /// Offsets of the writes since the last sync, oldest first. A torn write garbles only the
    /// write in flight where the file is cut; earlier writes are whole or cut, never garbled.
    write_starts: Vec<u64>,
}

/// A directory change not yet made durable by `sync_dir`.
#[derive(Clone, Debug)]
enum DirOp {
    Create { name: String, inode: u64 },
    Rename { from: String, to: String },
    Remove { name: String },
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Create { name, inode } => {
                names.insert(name.clone(), *inode);
            }
            DirOp::Rename { from, to } => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
            DirOp::Remove { name } => {
                names.remove(name);
            }
        }
    }
}

/// splitmix64: tiny, fast and good enough to pick fault outcomes reproducibly from a seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must be positive.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// In-memory, deterministic, fault-injecting [`Storage`].
///
/// A `FaultStorage` is a handle to a simulated disk. `clone()` gives another handle to the
/// same disk, so a test can keep one while a journal (or an engine thread) owns the other, and
/// inject faults or look at files at any time. [`fork`](Self::fork) copies the disk instead,
/// for example to crash the same state at every call in turn.
#[derive(Clone, Debug)]
pub struct FaultStorage {
    disk: Arc<Mutex<Disk>>,
}

/// The simulated disk behind a [`FaultStorage`] handle.
#[derive(Clone, Debug)]
struct Disk {
    inodes: BTreeMap<u64, FileData>,
    inode_next: u64,
    /// Names as the program sees them.
    names: BTreeMap<String, u64>,
    /// Names as of the last `sync_dir`.
    names_durable: BTreeMap<String, u64>,
    /// Directory changes since the last `sync_dir`, in order.
    dir_ops: Vec<DirOp>,
    rng: Rng,
    calls: u64,
    crash_at_call: Option<u64>,
    crashed: bool,
    fail_next_sync: bool,
    capacity_bytes: Option<u64>,
}

impl Disk {
    /// An empty directory. `seed` decides every random choice, so a failing test can be
    /// replayed from its printed seed.
    fn new(seed: u64) -> Self {
        Disk {
            inodes: BTreeMap::new(),
            inode_next: 1,
            names: BTreeMap::new(),
            names_durable: BTreeMap::new(),
            dir_ops: Vec::new(),
            rng: Rng(seed),
            calls: 0,
            crash_at_call: None,
            crashed: false,
            fail_next_sync: false,
            capacity_bytes: None,
        }
    }

    // Fault configuration and inspection, documented on the `FaultStorage` methods that
    // call them.

    fn crash_after_calls(&mut self, n: u64) {
        assert!(n >= 1, "crash_after_calls counts from 1, found 0");
        self.crash_at_call = Some(self.calls + n);
    }

    fn fail_next_sync(&mut self) {
        self.fail_next_sync = true;
    }

    fn disk_full_after_bytes(&mut self, n: u64) {
        self.capacity_bytes = Some(n);
    }

    fn clear_disk_full(&mut self) {
        self.capacity_bytes = None;
    }

    fn flip_bit(&mut self, name: &str, offset: u64, bit: u8) {
        assert!(bit < 8, "expected a bit index below 8, found {bit}");
        let inode = *self.names.get(name).unwrap_or_else(|| panic!("flip_bit: no file {name}"));
        let data = self.inodes.get_mut(&inode).expect("names point at inodes");
        let offset = usize::try_from(offset).expect("offset fits in memory");
        assert!(
            offset < data.written.len(),
            "flip_bit: {name} has {} bytes, offset {offset} is past the end",
            data.written.len()
        );
        data.written[offset] ^= 1 << bit;
        if offset < data.durable.len() {
            data.durable[offset] ^= 1 << bit;
        }
    }

    fn calls(&self) -> u64 {
        self.calls
    }

    fn is_crashed(&self) -> bool {
        self.crashed
    }

    fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let inode = self.names.get(name)?;
        Some(self.inodes[inode].written.clone())
    }

    fn set_file_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        let inode = match self.names.get(name) {
            Some(inode) => *inode,
            None => {
                let inode = self.inode_next;
                self.inode_next += 1;
                self.names.insert(name.to_string(), inode);
                self.names_durable.insert(name.to_string(), inode);
                inode
            }
        };
        let data = self.inodes.entry(inode).or_default();
        data.durable = bytes.clone();
        data.written = bytes;
    }

    /// What a power loss now would leave (see the module docs and `FaultStorage::restart`).
    fn restart(&self) -> Disk {
        let mut rng = self.rng.clone();
        let mut names = self.names_durable.clone();
        let ops_kept = rng.below(self.dir_ops.len() as u64 + 1) as usize;
        for op in &self.dir_ops[..ops_kept] {
            op.apply(&mut names);
        }
        let mut inodes = BTreeMap::new();
        for inode in names.values() {
            if inodes.contains_key(inode) {
                continue;
            }
            let bytes = after_power_loss(&self.inodes[inode], &mut rng);
            let data = FileData { durable: bytes.clone(), written: bytes, ..FileData::default() };
            inodes.insert(*inode, data);
        }
        Disk {
            inodes,
            inode_next: self.inode_next,
            names_durable: names.clone(),
            names,
            dir_ops: Vec::new(),
            rng,
            calls: self.calls,
            crash_at_call: None,
            crashed: false,
            fail_next_sync: false,
            capacity_bytes: self.capacity_bytes,
        }
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other("fault storage: crashed, restart expected"));
        }
        Ok(())
    }

    /// Counts a mutating call and fails it if it is the one chosen to crash.
    fn mutating_call(&mut self) -> io::Result<()> {
        self.check_alive()?;
        self.calls += 1;
        if self.crash_at_call == Some(self.calls) {
            self.crashed = true;
            return Err(io::Error::other("fault storage: injected crash"));
        }
        Ok(())
    }

    fn data(&self, name: &str) -> io::Result<&FileData> {
        match self.names.get(name) {
            Some(inode) => Ok(&self.inodes[inode]),
            None => Err(not_found(name)),
        }
    }

    fn data_mut(&mut self, name: &str) -> io::Result<&mut FileData> {
        match self.names.get(name) {
            Some(inode) => Ok(self.inodes.get_mut(inode).expect("names point at inodes")),
            None => Err(not_found(name)),
        }
    }

    fn bytes_used(&self) -> u64 {
        let mut total = 0;
        for inode in self.names.values() {
            total += self.inodes[inode].written.len() as u64;
        }
        total
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

/// What a power loss leaves of one file.
fn after_power_loss(data: &FileData, rng: &mut Rng) -> Vec<u8> {
    if data.durable == data.written {
        return data.durable.clone();
    }
    match rng.below(4) {
        0 => data.durable.clone(),
        1 => data.written.clone(),
        _ => {
            let common = data.durable.iter().zip(&data.written).take_while(|(a, b)| a == b).count();
            let extra = data.written.len() - common;
            let kept = rng.below(extra as u64 + 1) as usize;
            let mut bytes = data.written[..common + kept].to_vec();
            if kept > 0 && rng.below(2) == 0 {
                let len = bytes.len();
                // The write that produced the last kept byte is the one torn.
                let in_flight = data
                    .write_starts
                    .iter()
                    .rev()
                    .find(|start| (**start as usize) < len)
                    .map_or(0, |start| *start as usize);
                let floor = in_flight.max(common).max(len - kept.min(TORN_GARBLE_BYTES_MAX));
                let garbled = 1 + rng.below((len - floor) as u64) as usize;
                for byte in &mut bytes[len - garbled..] {
                    *byte ^= 1 + rng.below(255) as u8;
                }
            }
            bytes
        }
    }
}

// The storage operations on the disk itself; `FaultStorage` calls them under its lock.
impl Disk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        self.check_alive()?;
        Ok(self.names.keys().cloned().collect())
    }

    fn len(&mut self, name: &str) -> io::Result<u64> {
        self.check_alive()?;
        Ok(self.data(name)?.written.len() as u64)
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_alive()?;
        let data = &self.data(name)?.written;
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= data.len() as u64 => {
                buf.copy_from_slice(&data[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {} bytes at {offset} in {name}: file has {} bytes", buf.len(), data.len()),
            )),
        }
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.mutating_call()?;
        if !self.names.contains_key(name) {
            let inode = self.inode_next;
            self.inode_next += 1;
            self.inodes.insert(inode, FileData::default());
            self.names.insert(name.to_string(), inode);
            self.dir_ops.push(DirOp::Create { name: name.to_string(), inode });
        }
        let used = self.bytes_used();
        let capacity = self.capacity_bytes;
        let file = self.data_mut(name)?;
        let len = file.written.len() as u64;
        let mut end = offset + data.len() as u64;
        let mut full = false;
        if let Some(capacity) = capacity {
            if used + end.saturating_sub(len) > capacity {
                // Write the prefix that still fits, as a real file system does before ENOSPC.
                end = end.min(len + capacity.saturating_sub(used));
                full = true;
            }
        }
        if end > offset {
            file.write_starts.push(offset);
            if end > len {
                file.written.resize(end as usize, 0);
            }
            let kept = (end - offset) as usize;
            file.written[offset as usize..end as usize].copy_from_slice(&data[..kept]);
        }
        if full {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "fault storage: disk full"));
        }
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.mutating_call()?;
        let fail = std::mem::take(&mut self.fail_next_sync);
        let file = self.data_mut(name)?;
        if fail {
            file.sync_lost = true;
            return Err(io::Error::other("fault storage: injected sync failure"));
        }
        if !file.sync_lost {
            file.durable = file.written.clone();
            file.write_starts.clear();
        }
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.mutating_call()?;
        let file = self.data_mut(name)?;
        file.written.resize(len as usize, 0);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.mutating_call()?;
        let inode = self.names.remove(from).ok_or_else(|| not_found(from))?;
        self.names.insert(to.to_string(), inode);
        self.dir_ops.push(DirOp::Rename { from: from.to_string(), to: to.to_string() });
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.mutating_call()?;
        self.names.remove(name).ok_or_else(|| not_found(name))?;
        self.dir_ops.push(DirOp::Remove { name: name.to_string() });
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.mutating_call()?;
        self.names_durable = self.names.clone();
        self.dir_ops.clear();
        Ok(())
    }
}

impl FaultStorage {
    /// A handle to a new, empty disk. `seed` decides every random choice, so a failing test
    /// can be replayed from its printed seed.
    pub fn new(seed: u64) -> Self {
        FaultStorage { disk: Arc::new(Mutex::new(Disk::new(seed))) }
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        // A panic while holding the lock leaves a disk that is still a valid simulation.
        self.disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A handle to an independent copy of this disk, faults and all.
    pub fn fork(&self) -> FaultStorage {
        FaultStorage { disk: Arc::new(Mutex::new(self.disk().clone())) }
    }

    /// The `n`-th mutating call from now (`write_at`, `sync`, `truncate`, `rename`, `remove`,
    /// `sync_dir`; `n` counts from 1) fails without effect, and every later call of any kind
    /// fails until [`restart`](Self::restart).
    pub fn crash_after_calls(&self, n: u64) -> &Self {
        self.disk().crash_after_calls(n);
        self
    }

    /// The next `sync` fails. From then on, syncs of that file report success but make nothing
    /// durable, so a journal that retries a failed sync is caught losing data.
    pub fn fail_next_sync(&self) -> &Self {
        self.disk().fail_next_sync();
        self
    }

    /// `write_at` fails with [`io::ErrorKind::StorageFull`] once the total size of all files
    /// would exceed `n` bytes, after writing the prefix that still fits.
    pub fn disk_full_after_bytes(&self, n: u64) -> &Self {
        self.disk().disk_full_after_bytes(n);
        self
    }

    /// Removes the limit set by [`disk_full_after_bytes`](Self::disk_full_after_bytes).
    pub fn clear_disk_full(&self) -> &Self {
        self.disk().clear_disk_full();
        self
    }

    /// Flips bit `bit` (0..8) of byte `offset` of file `name`, in both its durable and written
    /// bytes. Panics if the file or the byte does not exist: that is a bug in the test.
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) -> &Self {
        self.disk().flip_bit(name, offset, bit);
        self
    }

    /// Sets the contents of `name` (creating it), as written and durable at once, with a
    /// durable name. For tests that craft damaged files.
    pub fn set_file_bytes(&self, name: &str, bytes: Vec<u8>) -> &Self {
        self.disk().set_file_bytes(name, bytes);
        self
    }

    /// The bytes a read of `name` would see, or `None` if there is no such file.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.disk().file_bytes(name)
    }

    /// Mutating calls made so far.
    pub fn calls(&self) -> u64 {
        self.disk().calls()
    }

    /// Whether an injected crash has happened (and [`restart`](Self::restart) is needed).
    pub fn is_crashed(&self) -> bool {
        self.disk().is_crashed()
    }

    /// A handle to a new disk holding what a power loss now would leave of this one: durable
    /// state plus seed-chosen leftovers of unsynced state (see the module docs). Injected
    /// faults are cleared; the disk-full limit stays, because it is a property of the disk.
    /// This handle's disk is left as it is.
    pub fn restart(&self) -> FaultStorage {
        FaultStorage { disk: Arc::new(Mutex::new(self.disk().restart())) }
    }
}

impl Storage for FaultStorage {
    fn list(&mut self) -> io::Result<Vec<String>> {
        self.disk().list()
    }

    fn len(&mut self, name: &str) -> io::Result<u64> {
        self.disk().len(name)
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.disk().read_at(name, offset, buf)
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.disk().write_at(name, offset, data)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.disk().sync(name)
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.disk().truncate(name, len)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.disk().rename(from, to)
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.disk().remove(name)
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.disk().sync_dir()
    }

    fn try_clone(&self) -> io::Result<Self> {
        // Clones already share the disk, with its crash counter: a crash injected at call n
        // hits whichever handle makes that call.
        Ok(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes synced under a synced name survive every power loss; anything else may not.
    #[test]
    fn restart_keeps_exactly_the_durable_state_or_more_of_what_was_written() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let mut disk = FaultStorage::new(seed);
            disk.write_at("a", 0, b"durable").unwrap();
            disk.sync("a").unwrap();
            disk.sync_dir().unwrap();
            disk.write_at("a", 7, b" and not").unwrap();
            disk.write_at("b", 0, b"never synced").unwrap();
            disk.rename("a", "c").unwrap();
            let mut after = disk.restart();
            let mut names = after.list().unwrap();
            names.sort();
            let renamed: Vec<&String> = names.iter().filter(|n| *n == "a" || *n == "c").collect();
            assert_eq!(renamed.len(), 1, "seed {seed}: {names:?}");
            let a = after.file_bytes(renamed[0]).unwrap();
            assert_eq!(&a[..7], b"durable", "seed {seed}");
            assert!(a.len() <= 15, "seed {seed}");
            if let Some(b) = after.file_bytes("b") {
                assert!(b.len() <= 12, "seed {seed}");
            }
            outcomes.insert((names, a));
        }
        assert!(outcomes.len() > 4, "seeds should disagree: {outcomes:?}");
    }

    #[test]
    fn crash_fails_the_chosen_call_and_everything_after() {
        let mut disk = FaultStorage::new(1);
        disk.crash_after_calls(2);
        disk.write_at("a", 0, b"one").unwrap();
        assert!(disk.sync("a").is_err());
        assert!(disk.is_crashed());
        assert!(disk.len("a").is_err());
        assert_eq!(disk.calls(), 2);
        let mut after = disk.restart();
        assert!(after.list().unwrap().len() <= 1);
    }

    #[test]
    fn disk_full_writes_the_prefix_that_fits() {
        let mut disk = FaultStorage::new(2);
        disk.disk_full_after_bytes(5);
        let error = disk.write_at("a", 0, b"0123456789").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.file_bytes("a").unwrap(), b"01234");
    }
}
