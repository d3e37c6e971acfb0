//! Hash tables for the state: persistent, so that a snapshot's view copies one in constant
//! time, and hashed with a fixed function, so that the order a table iterates in (and so a
//! snapshot's bytes) depends on its keys alone, on every machine.
//!
//! Looked up on every request (sessions, what a user has used of their limits, keyed
//! answers). A [`Table`] is a linear hash table of pages: each page holds the entries of one
//! range of hashes, sorted by hash, behind a shared pointer, and the pages are in segments of
//! 1,024, shared too. A lookup finds its page from the hash's top bits and searches it; a
//! snapshot's copy shares every segment, and a write copies the page it changes (and, the
//! first time after a snapshot, the segment's 1,024 pointers). The table grows one page at a
//! time (linear hashing: the next page in turn splits in two by one more bit of the hash), so
//! no insert ever rehashes the whole table. It never shrinks its directory: pages emptied by
//! removals stay (about 72 bytes each) until the table fills again.
//!
//! Why not `imbl`'s hash map: its trie nodes reserve room for 32 entries however few they
//! hold, so an entry of 56 bytes (a session) cost 500 to 700 bytes there, measured at 0.2 to
//! 14 million entries. Here it costs its size, its hash and the pages' spare room (up to a
//! quarter of its entries as a page fills, an eighth on average; a page shrinks once it is
//! less than half full), about 70 bytes for a session. Tables that are walked in key order
//! (expiries) stay ordered maps.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// Entries per page, on average, before the table grows by a page.
const PAGE_LOAD: usize = 32;

/// Pages per segment of the page directory: a snapshot's copy of a table copies one pointer
/// per segment, and the first write to a segment after it copies the segment's pointers.
const SEGMENT_PAGES: usize = 1_024;

/// One page: the entries of one range of hashes, sorted by hash (equal hashes in the order
/// they were inserted). The hashes are apart from the entries, so a lookup searches a few
/// cache lines and then reads one entry.
#[derive(Clone)]
struct Page<K, V> {
    hashes: Vec<u64>,
    entries: Vec<(K, V)>,
}

/// A run of [`SEGMENT_PAGES`] pages (the last may be shorter), shared like the pages.
type Segment<K, V> = Arc<Vec<Arc<Page<K, V>>>>;

impl<K, V> Page<K, V> {
    const EMPTY: Page<K, V> = Page { hashes: Vec::new(), entries: Vec::new() };
}

/// A persistent hash table with [`Fixed`] hashing. See the module documentation.
///
/// Page `b` of a table at depth `d` with `split` pages split holds the keys whose reversed
/// hash `r` has `r mod 2^d = b`, or, for `b < split`, whose `r mod 2^(d+1) = b` (and page
/// `b + 2^d` the others of that range). Reversed, the low bits of `r` are the high bits of
/// the hash, so each page is a range of hashes and the table iterates in hash order whatever
/// its shape.
pub struct Table<K, V> {
    /// The pages, in segments of [`SEGMENT_PAGES`].
    segments: Vec<Segment<K, V>>,
    pages: usize,
    depth: u32,
    split: usize,
    len: usize,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            segments: self.segments.clone(),
            pages: self.pages,
            depth: self.depth,
            split: self.split,
            len: self.len,
        }
    }
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table { segments: vec![Arc::new(vec![Arc::new(Page::EMPTY)])], pages: 1, depth: 0, split: 0, len: 0 }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when the entries are equal in iteration order: two tables with the same entries
/// differ only if keys with equal 64-bit hashes went in in a different order.
impl<K: PartialEq, V: PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Eq, V: Eq> Eq for Table<K, V> {}

fn hash_of<Q: Hash + ?Sized>(key: &Q) -> u64 {
    Fixed.hash_one(key)
}

impl<K, V> Table<K, V> {
    /// An empty table.
    pub fn new() -> Self {
        Table::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn page(&self, page: usize) -> &Page<K, V> {
        &self.segments[page / SEGMENT_PAGES][page % SEGMENT_PAGES]
    }

    /// The page that holds hash `hash`.
    fn page_of(&self, hash: u64) -> usize {
        let reversed = hash.reverse_bits();
        let low = |bits: u32| if bits == 0 { 0 } else { (reversed & (u64::MAX >> (64 - bits))) as usize };
        let page = low(self.depth);
        if page < self.split {
            low(self.depth + 1)
        } else {
            page
        }
    }

    /// The entries, in hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let base = 1usize << self.depth;
        (0..base)
            .flat_map(move |prefix| {
                // The page of hash prefix `prefix` at depth `depth` is its bits reversed; when
                // it has split, the half with the next bit 0 comes first.
                let page = if self.depth == 0 { 0 } else { prefix.reverse_bits() >> (usize::BITS - self.depth) };
                let second = (page < self.split).then_some(page + base);
                std::iter::once(page).chain(second)
            })
            .flat_map(move |page| self.page(page).entries.iter().map(|(k, v)| (k, v)))
    }

    /// The keys, in hash order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values, in their keys' hash order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Table<K, V> {
    /// Page `page`, to change: copied first if a snapshot shares it (or its segment).
    fn page_mut(&mut self, page: usize) -> &mut Page<K, V> {
        let segment = Arc::make_mut(&mut self.segments[page / SEGMENT_PAGES]);
        Arc::make_mut(&mut segment[page % SEGMENT_PAGES])
    }

    /// Where `key` is in `page`: `Ok(index)` if present, else `Err(index)` where it goes.
    fn find<Q>(page: &Page<K, V>, hash: u64, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut i = page.hashes.partition_point(|&h| h < hash);
        while page.hashes.get(i) == Some(&hash) {
            if page.entries[i].0.borrow() == key {
                return Ok(i);
            }
            i += 1;
        }
        Err(i)
    }

    /// `key`'s hash, its page and where it is (or goes) in the page.
    fn locate<Q>(&self, key: &Q) -> (u64, usize, Result<usize, usize>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = hash_of(key);
        let at = self.page_of(hash);
        (hash, at, Self::find(self.page(at), hash, key))
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (_, at, found) = self.locate(key);
        found.ok().map(|i| &self.page(at).entries[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// The value of `key`, to change (its page is copied first if a snapshot shares it).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // The index first: a key that is not there must not copy a page a snapshot shares.
        let (_, at, found) = self.locate(key);
        let i = found.ok()?;
        Some(&mut self.page_mut(at).entries[i].1)
    }

    /// The value of `key`, inserted by `make` if it has none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let (_, mut at, mut found) = self.locate(&key);
        if found.is_err() {
            self.insert(key.clone(), make());
            (_, at, found) = self.locate(&key);
        }
        &mut self.page_mut(at).entries[found.expect("just inserted")].1
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let (hash, at, found) = self.locate(&key);
        let page = self.page_mut(at);
        match found {
            Ok(i) => Some(std::mem::replace(&mut page.entries[i].1, value)),
            Err(i) => {
                if page.entries.len() == page.entries.capacity() {
                    // A page's spare room stays under a quarter of it: with an eighth, growing
                    // pages (reallocations of a few kilobytes) took 6% of the sequencer's time
                    // while members signed up, twice what they take now.
                    let more = (page.entries.len() / 4).max(2);
                    page.entries.reserve_exact(more);
                    page.hashes.reserve_exact(more);
                }
                page.hashes.insert(i, hash);
                page.entries.insert(i, (key, value));
                self.len += 1;
                if self.len > self.pages * PAGE_LOAD {
                    self.grow();
                }
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (_, at, found) = self.locate(key);
        let i = found.ok()?;
        let page = self.page_mut(at);
        page.hashes.remove(i);
        let (_, value) = page.entries.remove(i);
        if page.entries.capacity() > 2 * page.entries.len() + 8 {
            page.entries.shrink_to_fit();
            page.hashes.shrink_to_fit();
        }
        self.len -= 1;
        Some(value)
    }

    /// Splits the next page in turn by one more bit of the hash: a page's worth of work.
    fn grow(&mut self) {
        let base = 1usize << self.depth;
        let at = self.split;
        let bit = 1u64 << self.depth;
        let page = self.page_mut(at);
        // Both halves stay sorted: a stable partition of a sorted page.
        let mut low = Page::EMPTY;
        let mut high = Page::EMPTY;
        for (hash, entry) in page.hashes.drain(..).zip(page.entries.drain(..)) {
            let half = if hash.reverse_bits() & bit != 0 { &mut high } else { &mut low };
            half.hashes.push(hash);
            half.entries.push(entry);
        }
        for half in [&mut low, &mut high] {
            half.hashes.shrink_to_fit();
            half.entries.shrink_to_fit();
        }
        *page = low;
        debug_assert_eq!(self.pages, base + at);
        if self.pages.is_multiple_of(SEGMENT_PAGES) {
            self.segments.push(Arc::new(Vec::with_capacity(SEGMENT_PAGES)));
        }
        let last = self.segments.last_mut().expect("a table has a segment");
        Arc::make_mut(last).push(Arc::new(high));
        self.pages += 1;
        self.split += 1;
        if self.split == base {
            self.depth += 1;
            self.split = 0;
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> FromIterator<(K, V)> for Table<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut table = Table::new();
        for (k, v) in entries {
            table.insert(k, v);
        }
        table
    }
}

/// The fixed hash function of [`Table`]s: no random seed, the same on every platform (bytes
/// are read little-endian), and mixed well enough that keys which are counters (user ids)
/// spread as evenly as keys which are already hashes (session tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixed;

impl BuildHasher for Fixed {
    type Hasher = FixedHasher;

    fn build_hasher(&self) -> FixedHasher {
        FixedHasher(0)
    }
}

/// The state of one [`Fixed`] hash.
#[derive(Clone, Copy, Debug)]
pub struct FixedHasher(u64);

/// An odd constant with bits spread over the word (the golden ratio's).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl FixedHasher {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        // MurmurHash3's finaliser: every input bit reaches the low bits a table uses first.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            self.word(u64::from_le_bytes(last) ^ ((tail.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.word(i as u64);
        self.word((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(value: impl std::hash::Hash) -> u64 {
        Fixed.hash_one(value)
    }

    #[test]
    fn hashes_are_fixed_values() {
        // Pinned: a change of the function changes the order of every snapshot's tables.
        let pinned = [hash(0u64), hash(1u64), hash([0u8; 32]), hash("key")];
        assert_eq!(
            pinned.map(|h| format!("{h:016x}")),
            ["0000000000000000", "9ca066f1a4ab2eea", "2344ac19ad2cb65c", "2391c21fcaf4f5b0"]
        );
    }

    #[test]
    fn counters_spread_over_the_high_bits() {
        // A table's pages are ranges of hashes, by their top bits: user ids 1..=3,200 fill 32
        // pages about evenly.
        let mut slots = [0u32; 32];
        for id in 1..=3_200u64 {
            slots[(hash(id) >> 59) as usize] += 1;
        }
        assert!(slots.iter().all(|&n| (60..=140).contains(&n)), "{slots:?}");
    }

    #[test]
    fn iteration_order_depends_on_the_keys_alone() {
        let keys: Vec<u64> = (1..=2_000).map(|i| i * 7_919).collect();
        let forwards: Table<u64, u64> = keys.iter().map(|&k| (k, k)).collect();
        let mut backwards: Table<u64, u64> = keys.iter().rev().map(|&k| (k, k)).collect();
        for k in 5_000..6_000u64 {
            backwards.insert(k * 104_729, 0);
        }
        for k in 5_000..6_000u64 {
            backwards.remove(&(k * 104_729));
        }
        let order = |t: &Table<u64, u64>| t.keys().copied().collect::<Vec<_>>();
        assert_eq!(order(&forwards), order(&backwards));
    }

    /// A table against `std`'s map under random inserts, replacements, changes and removals,
    /// with copies taken along the way (a snapshot's view): every answer agrees, the table
    /// iterates in hash order, and each copy keeps exactly what it held when it was taken.
    #[test]
    fn a_table_answers_as_a_map_and_its_copies_never_change() {
        let mut table: Table<u64, u64> = Table::new();
        let mut model = std::collections::HashMap::new();
        // Each copy, with what it held when taken.
        type Copy = (Table<u64, u64>, Vec<(u64, u64)>);
        let mut copies: Vec<Copy> = Vec::new();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..160_000u64 {
            // Keys from a range that grows, so the table grows while entries come and go.
            let key = next() % (1 + step / 2);
            match next() % 8 {
                0..=3 => assert_eq!(table.insert(key, step), model.insert(key, step)),
                4 | 5 => assert_eq!(table.remove(&key), model.remove(&key)),
                6 => {
                    if let Some(v) = table.get_mut(&key) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&key) {
                        *v += 1;
                    }
                }
                _ => {
                    *table.get_or_insert_with(key, || 7) += 1;
                    *model.entry(key).or_insert(7) += 1;
                }
            }
            assert_eq!(table.get(&key), model.get(&key));
            assert_eq!(table.contains_key(&key), model.contains_key(&key));
            assert_eq!(table.len(), model.len());
            if step % 10_000 == 0 {
                let held: Vec<(u64, u64)> = table.iter().map(|(&k, &v)| (k, v)).collect();
                copies.push((table.clone(), held));
            }
        }
        let mut sorted: Vec<(u64, u64)> = model.iter().map(|(&k, &v)| (k, v)).collect();
        sorted.sort_by_key(|&(k, _)| (hash(k), k));
        assert_eq!(table.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>(), sorted);
        assert!(table.pages > SEGMENT_PAGES, "the table grew past a segment");
        for (copy, held) in copies {
            assert_eq!(copy.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>(), held);
            assert_eq!(copy.len(), held.len());
        }
    }

    /// Keys whose hashes are equal (a collision of the 64-bit hash) are all kept and found.
    #[test]
    fn keys_with_equal_hashes_are_kept_apart() {
        // Nothing collides in practice: a key type whose hash ignores a field forces it.
        #[derive(Clone, Debug, PartialEq, Eq)]
        struct Key(u64, u64);
        impl std::hash::Hash for Key {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }
        let mut table = Table::new();
        for i in 0..100 {
            assert_eq!(table.insert(Key(i % 3, i), i), None);
        }
        for i in 0..100 {
            assert_eq!(table.get(&Key(i % 3, i)), Some(&i));
        }
        assert_eq!(table.remove(&Key(1, 4)), Some(4));
        assert_eq!(table.get(&Key(1, 4)), None);
        assert_eq!(table.len(), 99);
    }
}
