//! Crash safety of `Store::commit`: a commit interrupted by a crash leaves the store in the
//! state before it or after it, never in between (the argument is in the `store` module's
//! documentation).
//!
//! Two tests, for the two kinds of crash:
//!
//! - `sigkill_mid_commit_leaves_old_or_new_generation` kills a real writer process. The test
//!   re-executes its own binary, running only `crash_writer_child` with an environment variable
//!   that makes it a writer (without the variable that test returns at once). The writer
//!   commits generation after generation; each commit rewrites every object with a body naming
//!   its generation, shifts the key set (deleting the lowest `SHIFT` indices and adding `SHIFT`
//!   new ones) and replaces the boot-time set, so a half-applied commit would show as mixed
//!   generations, a wrong key set, or objects and boot-time set from different commits. It
//!   prints `begin G` before calling `commit` and `committed G` after it returns. The parent
//!   SIGKILLs it after a varied, deterministic delay, reopens the store and checks that it
//!   holds exactly one generation's objects and boot-time set, and that this generation is the
//!   last one reported committed or, if a `begin` followed it, the one after. A kill whose last
//!   line is a `begin` landed while `commit` was running (the line was in the pipe before the
//!   kill); the test requires most kills to be such.
//!
//!   The parent also reads the primary bit of redb's god byte after each kill. Compared with
//!   its value after the writer's last completed commit, it tells how far the commit got: not
//!   flipped (the store must hold the old state), flipped with pages missing (redb must fall
//!   back to the old state), or flipped and complete (the new state, never reported). The last
//!   two are windows of about a millisecond at the end of a commit of tens, so half of the
//!   kills watch the god byte and strike just after the flip. The test prints how many kills
//!   fell in each case. It requires most kills to land inside a commit, and both outcomes of
//!   an interrupted commit: the old state (a kill before the flip) and the new one (a kill
//!   after the commit was complete in the file). It reports but does not require the
//!   roll-back case, whose window (the page writes after the flip) is a fraction of a
//!   millisecond: it is hit in most runs, and the torn-write test below covers it for sure.
//!
//!   What it proves: that process death at the points it hits inside redb's commit (B-tree
//!   updates, header and page writes, fsync) is atomic. What it cannot: SIGKILL keeps every
//!   write the process made, in the order it made them, whereas a power cut can lose or
//!   reorder writes. That is what the second test is for.
//!
//! - `torn_commits_reopen_as_old_or_new_generation` models a power cut during a commit: it
//!   snapshots the file before and after a commit and builds files with the header of either
//!   and any subset of the changed 4 KiB pages, as a disk that persisted only some writes would
//!   leave them. Those must reopen as the old or new generation too, and a file with the new
//!   header and all pages as the new one. Its subsets are chosen at random, so it samples the
//!   states a disk could produce rather than enumerating them, and it does not model torn
//!   writes inside a page.
// SIGKILL and positioned reads of the header are Unix; Palisade targets Linux.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use palisade_filter::store::{ObjectKind, Store, StoreChange, StoredObject};
use uuid::Uuid;

/// Objects per generation: large enough that a commit takes long compared with the writer's
/// other work, so that most kills land inside one.
const OBJECTS: u64 = 2500;
/// Object keys retired and added per generation.
const SHIFT: u64 = 125;
/// Boot-time filters per generation, replaced in the same commit as the objects.
const BOOT_FILTERS: u64 = 200;
/// Boot-time filter keys retired and added per generation.
const BOOT_SHIFT: u64 = 50;
const CHILD_ENV: &str = "PALISADE_STORE_CRASH_WRITER";
const CHILD_TEST: &str = "crash_writer_child";
const KILLS: u32 = 32;
/// Prefixes the writer's lines.
const MARKER: &str = "@store_crash: ";

/// The two sets a generation writes: the persistent objects (all kinds) and the boot-time
/// filters, each a sliding window of indices.
#[derive(Clone, Copy, Debug)]
enum Set {
    Objects,
    BootTime,
}

impl Set {
    fn indices(self, generation: u64) -> std::ops::Range<u64> {
        let (size, shift) = match self {
            Set::Objects => (OBJECTS, SHIFT),
            Set::BootTime => (BOOT_FILTERS, BOOT_SHIFT),
        };
        generation * shift..generation * shift + size
    }

    // A fixed bijection on u128 scatters consecutive indices over the key space, so each
    // commit touches pages all over the tree instead of appending.
    fn key(self, index: u64) -> (ObjectKind, Uuid) {
        let mut x = u128::from(index).wrapping_add(0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f);
        x = x.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15 | 1);
        x ^= x >> 61;
        match self {
            Set::Objects => (ObjectKind::ALL[(index % 5) as usize], Uuid::from_u128(x)),
            Set::BootTime => (ObjectKind::Filter, Uuid::from_u128(!x)),
        }
    }

    fn object(self, generation: u64, index: u64) -> StoredObject {
        let (kind, key) = self.key(index);
        StoredObject {
            kind,
            key,
            body: body(generation, index),
        }
    }

    /// The generation the objects belong to, if they are exactly one generation's set.
    fn generation_of(self, objects: &[StoredObject]) -> Result<u64, String> {
        // The quick check: exactly what the first object's generation wrote, in load order.
        let first = objects.first().ok_or(format!("{self:?}: empty"))?;
        let generation = serde_json::from_slice::<serde_json::Value>(&first.body)
            .ok()
            .and_then(|value| value["generation"].as_u64());
        if let Some(generation) = generation {
            let mut expected: Vec<StoredObject> = self
                .indices(generation)
                .map(|index| self.object(generation, index))
                .collect();
            expected.sort_by_key(|object| (object.kind, object.key));
            if objects == expected {
                return Ok(generation);
            }
        }
        Err(self.explain_mismatch(objects))
    }

    /// What is wrong with a set that is not exactly one generation's.
    fn explain_mismatch(self, objects: &[StoredObject]) -> String {
        match self.explain(objects) {
            Ok(generation) => format!("{self:?}: generation {generation}, out of order"),
            Err(problem) => problem,
        }
    }

    fn explain(self, objects: &[StoredObject]) -> Result<u64, String> {
        let mut generations = BTreeSet::new();
        for object in objects {
            let value: serde_json::Value =
                serde_json::from_slice(&object.body).map_err(|e| format!("bad body: {e}"))?;
            let generation = value["generation"]
                .as_u64()
                .ok_or("body without generation")?;
            let index = value["index"].as_u64().ok_or("body without index")?;
            if self.key(index) != (object.kind, object.key) {
                return Err(format!(
                    "{self:?}: {} holds the body of index {index}",
                    object.key
                ));
            }
            if object.body != body(generation, index) {
                return Err(format!("{self:?}: {} has a damaged body", object.key));
            }
            generations.insert(generation);
        }
        let generation = match generations.len() {
            1 => generations.into_iter().next().ok_or("no generation")?,
            0 => return Err(format!("{self:?}: empty")),
            _ => return Err(format!("{self:?}: mixed generations {generations:?}")),
        };
        let mut expected: Vec<(ObjectKind, Uuid)> =
            self.indices(generation).map(|i| self.key(i)).collect();
        expected.sort();
        let found: Vec<(ObjectKind, Uuid)> = objects.iter().map(|o| (o.kind, o.key)).collect();
        if found != expected {
            return Err(format!(
                "{self:?}: generation {generation} with a wrong key set ({} entries, expected {})",
                found.len(),
                expected.len()
            ));
        }
        Ok(generation)
    }
}

fn body(generation: u64, index: u64) -> Vec<u8> {
    format!(
        r#"{{"generation":{generation},"index":{index},"padding":"{:064}"}}"#,
        generation * 1_000_003 + index
    )
    .into_bytes()
}

/// One generation's commit: every object rewritten, the oldest `SHIFT` deleted, `SHIFT` new
/// ones added, and the boot-time set replaced.
struct Generation {
    changes: Vec<StoreChange>,
    boot_time: Vec<StoredObject>,
}

impl Generation {
    fn new(generation: u64) -> Generation {
        Generation {
            changes: object_changes(generation),
            boot_time: Set::BootTime
                .indices(generation)
                .map(|index| Set::BootTime.object(generation, index))
                .collect(),
        }
    }

    fn commit(&self, store: &Store) {
        store
            .commit_with_boot_time(&self.changes, Some(&self.boot_time))
            .expect("commit a generation");
    }
}

fn object_changes(generation: u64) -> Vec<StoreChange> {
    let mut changes = Vec::with_capacity((OBJECTS + SHIFT) as usize);
    if generation > 0 {
        let retired = (generation - 1) * SHIFT..generation * SHIFT;
        changes.extend(retired.map(|index| {
            let (kind, key) = Set::Objects.key(index);
            StoreChange::Delete { kind, key }
        }));
    }
    changes.extend(
        Set::Objects
            .indices(generation)
            .map(|index| StoreChange::Put(Set::Objects.object(generation, index))),
    );
    changes
}

/// The store's generation, after checking that its objects and boot-time set are exactly
/// that generation's.
fn stored_generation(path: &Path) -> u64 {
    let store = Store::open(path).expect("reopen after the crash");
    let objects = store.load().expect("load after the crash");
    let boot_time = store
        .boot_time_filters()
        .expect("boot-time set after the crash");
    let generation = Set::Objects
        .generation_of(&objects)
        .unwrap_or_else(|e| panic!("inconsistent store after a crash: {e}"));
    let boot_generation = Set::BootTime
        .generation_of(&boot_time)
        .unwrap_or_else(|e| panic!("inconsistent store after a crash: {e}"));
    assert_eq!(
        generation, boot_generation,
        "objects and boot-time set from different commits"
    );
    generation
}

fn create_generation_zero(path: &Path) {
    Generation::new(0).commit(&Store::open(path).expect("create"));
}

/// The writer process. Without `CHILD_ENV` (an ordinary test run) it does nothing.
///
/// Its lines: `ready G P` once open, `begin G` before each commit and `committed G µs P` after
/// it, where P is the primary bit of the file's god byte as the process left it.
#[test]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&path);
    let store = Store::open(path).expect("writer: open");
    let start = Set::Objects
        .generation_of(&store.load().expect("writer: load"))
        .expect("writer: state");
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{MARKER}{line}")
            .and_then(|()| out.flush())
            .expect("writer: stdout");
    };
    say(format!("ready {start} {}", primary_bit(path)));
    // Bounded, so that a parent that fails to kill it does not leave it running for long.
    for generation in start + 1..=start + 300 {
        let next = Generation::new(generation);
        say(format!("begin {generation}"));
        let began = Instant::now();
        next.commit(&store);
        let micros = began.elapsed().as_micros();
        say(format!(
            "committed {generation} {micros} {}",
            primary_bit(path)
        ));
    }
}

/// The primary bit of redb's god byte: which of the two commit slots is current. A commit
/// flips it in the header write that publishes the commit.
fn primary_bit(path: &Path) -> u8 {
    let mut head = [0u8; GOD_BYTE + 1];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .expect("read the header");
    head[GOD_BYTE] & 1
}

/// A deterministic, varied sequence (64-bit LCG), so that failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_unit() * n as f64) as usize
    }
}

/// Kills the writer if the test fails half-way, so that no process outlives it.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_writer(path: &Path) -> (Writer, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("writer stdout");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest's own output shares the pipe, and may share the line ("test name ... ").
            let Some(at) = line.find(MARKER) else {
                continue;
            };
            if lines.send(line[at + MARKER.len()..].to_owned()).is_err() {
                break;
            }
        }
    });
    (Writer(child), received, reader)
}

/// Where the kills landed and what the store held after each.
#[derive(Default, Debug)]
struct Outcomes {
    /// Inside `commit`, before the header write that publishes it: the old state.
    before_flip: u32,
    /// Inside `commit`, after the header flip but before all pages were written (or at least
    /// before `commit` returned), and redb's checksums rolled back to the old state.
    flipped_rolled_back: u32,
    /// Inside `commit`, after it was complete in the file but before `commit` returned: the
    /// new state, which the writer never reported.
    flipped_new: u32,
    /// Outside `commit` (building the next generation): the last reported state.
    between_commits: u32,
}

impl Outcomes {
    fn mid_commit(&self) -> u32 {
        self.before_flip + self.flipped_rolled_back + self.flipped_new
    }
}

#[test]
fn sigkill_mid_commit_leaves_old_or_new_generation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.redb");
    let first_commit = Instant::now();
    create_generation_zero(&path);
    let mut commit_micros = vec![first_commit.elapsed().as_micros() as u64];

    let started = Instant::now();
    let mut rng = Lcg(0x00c0_ffee_d00d_f00d);
    let mut outcomes = Outcomes::default();
    let mut expected_start = 0;
    let mut reopen_total = Duration::ZERO;
    for kill in 0..KILLS {
        let (mut writer, lines, reader) = spawn_writer(&path);
        let next_line = || {
            lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the writer fell silent")
        };
        let ready = next_line();
        assert!(
            ready.starts_with(&format!("ready {expected_start} ")),
            "kill {kill}: {ready}"
        );
        let ready_primary = last_word(&ready);
        // Time the kill from the start of the writer's first commit. Even kills spread over
        // the whole commit and a little past it, to hit every stage (B-tree updates, header
        // flip, page writes, fsync). Odd ones watch the header and strike within 2 ms of the
        // flip, where the narrow windows are: after the flip but before the last page write,
        // and after the last write but before `commit` returns.
        let first_begin = next_line();
        let began = Instant::now();
        let typical_commit = median(&commit_micros).unwrap_or(50_000) as f64;
        if kill % 2 == 0 {
            let delay = rng.next_unit() * 1.3 * typical_commit;
            std::thread::sleep(Duration::from_micros(delay as u64));
        } else {
            // A third at once (the page writes that follow the flip take well under a
            // millisecond), the rest spread over the 2 ms that follow.
            let after_flip = match rng.next_unit() {
                u if u < 1.0 / 3.0 => Duration::ZERO,
                _ => Duration::from_micros((rng.next_unit().powi(2) * 2000.0) as u64),
            };
            let give_up = Duration::from_micros((3.0 * typical_commit) as u64);
            let header = std::fs::File::open(&path).expect("open the store file");
            // Sleep through most of the commit, so as not to compete with the writer for CPU.
            std::thread::sleep(Duration::from_micros((0.6 * typical_commit) as u64));
            let mut god_byte = [0u8];
            loop {
                header
                    .read_exact_at(&mut god_byte, GOD_BYTE as u64)
                    .expect("read the god byte");
                if god_byte[0] & 1 != ready_primary || began.elapsed() > give_up {
                    break;
                }
                std::hint::spin_loop();
            }
            // Spin rather than sleep: the windows are shorter than a sleep's slack.
            let flip_seen = Instant::now();
            while flip_seen.elapsed() < after_flip {
                std::hint::spin_loop();
            }
        }
        let delay = began.elapsed();
        writer.0.kill().expect("SIGKILL the writer");
        let status = writer.0.wait().expect("wait for the writer");
        assert!(
            !status.success(),
            "the writer exited by itself ({status}) before kill {kill}"
        );
        reader.join().expect("reader thread");
        let primary_after_kill = primary_bit(&path);

        let mut last_committed = expected_start;
        let mut last_primary = ready_primary;
        let mut in_commit = false;
        for line in std::iter::once(first_begin).chain(lines.try_iter()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let generation = words.get(1).and_then(|g| g.parse::<u64>().ok());
            match (words.first().copied(), generation) {
                (Some("begin"), Some(generation)) => {
                    assert_eq!(generation, last_committed + 1, "kill {kill}: {line}");
                    in_commit = true;
                }
                (Some("committed"), Some(generation)) if words.len() == 4 => {
                    assert!(
                        in_commit && generation == last_committed + 1,
                        "kill {kill}: {line}"
                    );
                    last_committed = generation;
                    last_primary = last_word(&line);
                    in_commit = false;
                    commit_micros.push(words[2].parse().expect("commit time"));
                }
                _ => panic!("kill {kill}: unexpected line {line:?}"),
            }
        }

        let reopen_started = Instant::now();
        let found = stored_generation(&path);
        reopen_total += reopen_started.elapsed();
        let flipped = primary_after_kill != last_primary;
        let context = format!(
            "kill {kill}, {delay:.1?} into commit {}: store has generation {found}, header {}",
            last_committed + 1,
            if flipped { "flipped" } else { "not flipped" }
        );
        match (in_commit, flipped) {
            (false, _) => {
                assert_eq!(found, last_committed, "{context}");
                outcomes.between_commits += 1;
            }
            (true, false) => {
                assert_eq!(found, last_committed, "{context}");
                outcomes.before_flip += 1;
            }
            (true, true) if found == last_committed => outcomes.flipped_rolled_back += 1,
            (true, true) => {
                assert_eq!(found, last_committed + 1, "{context}");
                outcomes.flipped_new += 1;
            }
        }
        expected_start = found;
    }

    eprintln!(
        "store_crash: {KILLS} kills in {:.2?}, {} inside a commit: {outcomes:?}; \
         {} commits completed, median commit {} µs; mean reopen+verify {:.2?}; \
         final generation {expected_start}",
        started.elapsed(),
        outcomes.mid_commit(),
        commit_micros.len() - 1,
        median(&commit_micros).unwrap_or(0),
        reopen_total / KILLS,
    );
    // The delays are fixed by the seed but the writer's timing is not, so demand a clear
    // majority rather than exact counts: commits take nearly all of the writer's time.
    assert!(
        outcomes.mid_commit() >= KILLS / 2,
        "only {} of {KILLS} kills landed inside a commit: {outcomes:?}",
        outcomes.mid_commit()
    );
    assert!(
        outcomes.before_flip > 0,
        "no kill interrupted a commit before its flip: {outcomes:?}"
    );
    // The kills that watch the header strike within 2 ms of the flip, which on this
    // machine's kind lands before `commit` returns in about half of them.
    assert!(
        outcomes.flipped_new > 0,
        "no kill landed between a commit reaching the file and `commit` returning: \
         {outcomes:?}"
    );
}

fn last_word(line: &str) -> u8 {
    line.rsplit(' ')
        .next()
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no primary bit in {line:?}"))
}

fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

const PAGE: usize = 4096;
/// redb's god byte, whose primary bit selects the commit slot, follows the 9-byte magic number
/// (redb's docs/design.md, "File format").
const GOD_BYTE: usize = 9;

fn changed_pages(old: &[u8], new: &[u8]) -> Vec<usize> {
    let pages = new.len().max(old.len()).div_ceil(PAGE);
    (1..pages)
        .filter(|&page| {
            let range = |bytes: &[u8]| {
                let start = (page * PAGE).min(bytes.len());
                let end = ((page + 1) * PAGE).min(bytes.len());
                bytes[start..end].to_vec()
            };
            range(old) != range(new)
        })
        .collect()
}

/// The old file with `pages` (and optionally the header) taken from the new one, at the new
/// length: what a disk holds if only those writes of the commit reached it.
fn hybrid(old: &[u8], new: &[u8], pages: &[usize], header: Header) -> Vec<u8> {
    let mut bytes = old.to_vec();
    bytes.resize(new.len(), 0);
    for &page in pages {
        let start = page * PAGE;
        let end = ((page + 1) * PAGE).min(new.len());
        if start < end {
            bytes[start..end].copy_from_slice(&new[start..end]);
        }
    }
    match header {
        Header::Old => {}
        Header::New => bytes[..PAGE].copy_from_slice(&new[..PAGE]),
        Header::NewSlotOldGodByte => {
            bytes[..PAGE].copy_from_slice(&new[..PAGE]);
            bytes[GOD_BYTE] = old[GOD_BYTE];
        }
    }
    bytes
}

#[derive(Clone, Copy, Debug)]
enum Header {
    Old,
    New,
    NewSlotOldGodByte,
}

#[test]
fn torn_commits_reopen_as_old_or_new_generation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("torn.redb");
    let hybrid_path = dir.path().join("hybrid.redb");
    create_generation_zero(&path);
    let mut rng = Lcg(0x7042_7042);
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    let started = Instant::now();

    for generation in 1..=2u64 {
        let store = Store::open(&path).expect("open");
        let old = std::fs::read(&path).expect("read old");
        Generation::new(generation).commit(&store);
        // What a crash right after `commit` returned would leave.
        let new = std::fs::read(&path).expect("read new");
        drop(store);
        let changed = changed_pages(&old, &new);
        assert!(
            changed.len() > 10,
            "generation {generation} changed only {} pages",
            changed.len()
        );

        let mut cases: Vec<(Header, Vec<usize>, &str)> = vec![
            (Header::New, changed.clone(), "complete"),
            (Header::Old, changed.clone(), "all pages, old header"),
            (
                Header::NewSlotOldGodByte,
                changed.clone(),
                "new slot, no flip",
            ),
            (Header::New, Vec::new(), "flip without pages"),
        ];
        for _ in 0..5 {
            let mut subset: Vec<usize> = changed
                .iter()
                .copied()
                .filter(|_| rng.next_unit() < 0.5)
                .collect();
            if subset.len() == changed.len() {
                subset.remove(rng.below(subset.len()));
            }
            cases.push((Header::New, subset.clone(), "flip, some pages"));
            cases.push((Header::Old, subset, "no flip, some pages"));
        }
        // Flip with every page but one: the hardest case for the checksums to catch.
        let mut all_but_one = changed.clone();
        all_but_one.remove(rng.below(all_but_one.len()));
        cases.push((Header::New, all_but_one, "flip, all pages but one"));

        for (header, pages, label) in cases {
            std::fs::write(&hybrid_path, hybrid(&old, &new, &pages, header)).expect("write");
            let found = stored_generation(&hybrid_path);
            let outcome = if found == generation {
                "new"
            } else {
                assert_eq!(
                    found,
                    generation - 1,
                    "{label} ({header:?}, {} of {} pages)",
                    pages.len(),
                    changed.len()
                );
                "old"
            };
            // Otherwise (a flip with some of the pages) either is right: a page the commit
            // wrote but the new root does not need may be the one missing.
            match (header, pages.len()) {
                (Header::New, n) if n == changed.len() => assert_eq!(outcome, "new", "{label}"),
                (Header::New, 0) | (Header::Old | Header::NewSlotOldGodByte, _) => {
                    assert_eq!(outcome, "old", "{label}")
                }
                (Header::New, _) => {}
            }
            *seen.entry(format!("{label} -> {outcome}")).or_default() += 1;
        }
    }
    eprintln!(
        "store_crash: torn commits in {:.2?}: {seen:?}",
        started.elapsed()
    );
}
