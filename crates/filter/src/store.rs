//! Persistence: the engine's persistent objects and the boot-time filter set, in one redb file.
//!
//! The engine is sans-IO: it serializes its objects (providers, sublayers, callouts, provider
//! contexts, filters) to JSON bodies and hands them here as [`StoreChange`]s; this module owns
//! the file and never looks inside a body.
//!
//! # Layout
//!
//! Four redb tables:
//!
//! - `palisade_meta` (`&str -> &[u8]`): `magic` = `palisade-filter-store` and `format_version`
//!   = [`FORMAT_VERSION`] as a little-endian `u32`. [`Store::open`] refuses a redb file whose
//!   metadata is missing or different, so the daemon never adopts another program's database,
//!   and refuses a newer format instead of misreading it.
//! - `palisade_objects` (`(u8, [u8; 16]) -> &[u8]`): the persistent objects, keyed by the kind's
//!   on-disk code (see [`ObjectKind`]) and the GUID's 16 bytes. The key is fixed-size, and
//!   because the kind codes follow the declaration order of [`ObjectKind`] and [`uuid::Uuid`]
//!   orders by its bytes, redb's key order already is the (kind, key) order [`Store::load`]
//!   promises.
//! - `palisade_boot_time_filters`: the same shape, holding the boot-time filter set.
//! - `palisade_settings` (`&str -> &[u8]`): engine-wide settings that are not objects (the
//!   engine's and the containers' access lists), written by [`StoreChange::Setting`] in the
//!   same transaction as the objects. It is created on first use, so a store without it
//!   simply has no settings.
//!
//! A redb file with no tables at all (a file this module created but crashed before
//! initializing, or an empty file) is initialized; one with other tables but no metadata is
//! refused.
//!
//! # Why a crash during a commit leaves the store before or after it, never between
//!
//! [`Store::commit`] applies every change inside one redb write transaction and commits it with
//! redb's default [`redb::Durability::Immediate`] (redb 4.6; see its `docs/design.md`, "Commit
//! strategies", and `WriteTransaction::set_two_phase_commit`). Three properties of redb make
//! the commit all-or-nothing:
//!
//! 1. Copy-on-write. A transaction never modifies a page that the last commit references: it
//!    writes new pages and a new root, so the previous state stays intact in the file until a
//!    later commit has superseded it durably.
//! 2. Two commit slots. The file header holds two slots, each a root pair with its transaction
//!    id and a checksum, and a "god byte" whose primary bit says which slot is current. A
//!    commit writes the new root into the inactive slot and flips the bit. A byte cannot be
//!    half-written, so the header names either the old commit or the new one (and a
//!    half-written slot fails its own checksum).
//! 3. Checksums. Every page is covered by a Merkle tree of XXH3-128 checksums rooted in the
//!    slot. When a file was not closed cleanly, opening it verifies the primary slot's whole
//!    tree and, if a checksum or the transaction id does not match, falls back to the other
//!    slot: the previous commit, intact by (1).
//!
//! redb's default durable commit (1-phase + checksum) puts the new pages and the new header
//! (new slot, flipped bit) into its write buffer, writes the buffer out, and then `fsync`s;
//! `commit` returns only after that. Nothing orders the header after the pages: in redb 4.6
//! the header, at offset 0, is even written first. So a crash in the middle of a commit, be it
//! a killed process or a power cut (which may also drop or reorder writes the process did
//! make), can leave any mix of the commit's writes in the file:
//!
//! - without the flipped bit: the old slot is primary and references only old pages, so the
//!   store reopens in the old state;
//! - with the flipped bit and every page the new root references: the store reopens in the new
//!   state, although `commit` never returned;
//! - with the flipped bit but some of those pages missing: verification fails and redb falls
//!   back to the old state.
//!
//! Once `commit` has returned `Ok`, the `fsync` has completed, so the changes survive a crash
//! of the process or of the machine (as far as the disk honours `fsync`).
//!
//! redb also offers 2-phase commit (flush, then flip, then flush again). It is not enabled: it
//! only defends against an attacker who controls the order in which pages reach the disk and
//! can crash the machine on cue, who could rewrite the root-owned file anyway; and on a disk
//! that acknowledges `fsync` early, redb treats a bad primary written in 2-phase mode as fatal
//! corruption, whereas the default mode falls back to the previous commit.
//!
//! The store is opened with redb's integrity check on open: every open verifies the checksums,
//! not only the first one after a crash, so a file damaged outside redb is reported as an
//! error instead of risking a panic in the daemon. That costs one read of the whole file per
//! open, which for a policy store is milliseconds.
//!
//! `tests/store_crash.rs` checks the argument for real: it SIGKILLs a writer process in the
//! middle of large commits (and sees all three cases above), and it builds files holding the
//! old file plus random subsets of a commit's page writes, as a power cut could leave them.
//!
//! # Deletes of missing objects
//!
//! Deleting a key that is not stored is not an error: the store mirrors the engine's state, and
//! a commit whose outcome is unknown (a [`StoreError::Commit`], or a crash) must be safe to
//! apply again after reopening. Within one commit, changes apply in order, so a later change to
//! the same key wins.
//!
//! # The boot-time filter set
//!
//! WFP's `FWPM_FILTER_FLAG_BOOTTIME` filters are not persistent objects: they are enforced from
//! network start until the filtering engine is up. They live in their own table, replaced as a
//! whole by [`Store::set_boot_time_filters`], and can be exported with [`export_boot_time`] to a
//! small JSON file that an early-boot program reads without redb (see [`export_boot_time`] for
//! its format).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition, TableHandle as _,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The on-disk format version of the store file and of the boot-time export that this build
/// reads and writes; any other version is refused.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8] = b"palisade-filter-store";
const MAGIC_KEY: &str = "magic";
const VERSION_KEY: &str = "format_version";
const EXPORT_FORMAT: &str = "palisade-boot-time-filters";

type ObjectKey = (u8, [u8; 16]);

const META_NAME: &str = "palisade_meta";
const OBJECTS_NAME: &str = "palisade_objects";
const BOOT_TIME_NAME: &str = "palisade_boot_time_filters";
const SETTINGS_NAME: &str = "palisade_settings";
const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_NAME);
const OBJECTS: TableDefinition<ObjectKey, &[u8]> = TableDefinition::new(OBJECTS_NAME);
const BOOT_TIME: TableDefinition<ObjectKey, &[u8]> = TableDefinition::new(BOOT_TIME_NAME);
/// Engine-wide settings that are not objects (the engine's and containers' access
/// lists), by name. Added after format version 1 shipped without changing it: a store
/// without the table simply has no settings.
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new(SETTINGS_NAME);

/// Kinds of persistent objects (WFP: providers, sublayers, callouts, provider contexts, filters).
///
/// Each kind has a fixed one-byte code in the store file (1 to 5, in declaration order), so
/// reordering or inserting variants is a format change. The order is also the dependency
/// order (a provider context or sublayer names a provider, a filter names sublayers, callouts
/// and provider contexts), so [`Store::load`] returns referenced objects before their users.
/// With serde a kind is written as its [`name`](ObjectKind::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A provider (`FWPM_PROVIDER0`).
    Provider,
    /// A sublayer (`FWPM_SUBLAYER0`).
    Sublayer,
    /// A callout (`FWPM_CALLOUT0`).
    Callout,
    /// A provider context (`FWPM_PROVIDER_CONTEXT0..3`).
    ProviderContext,
    /// A filter (`FWPM_FILTER0`).
    Filter,
}

impl ObjectKind {
    /// Every kind, in storage order.
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Provider,
        ObjectKind::Sublayer,
        ObjectKind::Callout,
        ObjectKind::ProviderContext,
        ObjectKind::Filter,
    ];

    /// The kind's name in the boot-time export file (`provider`, `sublayer`, `callout`,
    /// `provider_context`, `filter`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Provider => "provider",
            ObjectKind::Sublayer => "sublayer",
            ObjectKind::Callout => "callout",
            ObjectKind::ProviderContext => "provider_context",
            ObjectKind::Filter => "filter",
        }
    }

    fn from_name(name: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    // Explicit rather than `as u8`, so that the file format does not silently follow a
    // reordering of the enum.
    fn code(self) -> u8 {
        match self {
            ObjectKind::Provider => 1,
            ObjectKind::Sublayer => 2,
            ObjectKind::Callout => 3,
            ObjectKind::ProviderContext => 4,
            ObjectKind::Filter => 5,
        }
    }

    fn from_code(code: u8) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// One stored object: its kind, its GUID key and its serialized body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// What the object is.
    pub kind: ObjectKind,
    /// Its GUID key, unique per kind.
    pub key: Uuid,
    /// Its serialized body (JSON bytes produced by the engine; the store does not interpret
    /// them).
    pub body: Vec<u8>,
}

/// One change to the persistent objects, applied by [`Store::commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChange {
    /// Inserts the object, or replaces the stored object of the same kind and key.
    Put(StoredObject),
    /// Removes the object of this kind and key; removing one that is not stored is not an
    /// error.
    Delete {
        /// The object's kind.
        kind: ObjectKind,
        /// The object's key.
        key: Uuid,
    },
    /// Sets an engine-wide setting (opaque bytes, like object bodies).
    Setting {
        /// The setting's name.
        name: String,
        /// Its value.
        value: Vec<u8>,
    },
}

/// The persistent store: one redb file holding the persistent objects and the boot-time filter
/// set. See the [module documentation](self) for the layout and the crash-safety argument.
///
/// redb locks the file, so only one `Store` (in any process) has it open at a time; a `Store`
/// can be shared between threads, and concurrent commits are serialized.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens or creates the store file; a file from another program or a newer format version
    /// is an error naming the path.
    ///
    /// Every open verifies the file's checksums. After an unclean shutdown it also rolls the
    /// file back to the last commit whose writes all reached it, which may be one whose
    /// `commit` call never returned (see the module documentation).
    ///
    /// The file holds policy secrets (pre-shared keys), so a new file is created readable
    /// by its owner only, and an existing one is made so.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path)?;
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|source| open_error(path, source))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
        };
        store.check_or_initialize()?;
        // Only once the file is known to be a store: a foreign file is left as it was.
        make_private(path)?;
        Ok(store)
    }

    /// The path the store was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every persistent object, in a deterministic order (kind, then key).
    pub fn load(&self) -> Result<Vec<StoredObject>, StoreError> {
        self.read_table(OBJECTS, OBJECTS_NAME)
    }

    /// Applies all changes in one durable redb write transaction, in order (a later change to
    /// the same key wins).
    ///
    /// After `Ok`, the changes survive a crash. A crash before `Ok` leaves either none or all of
    /// them, never some: a crash after redb published the commit but before this returned
    /// keeps them. Likewise an `Err` raised before the commit point (a transaction or table
    /// error) means none of them were applied, whereas [`StoreError::Commit`] means they were
    /// applied entirely or not at all, and redb then refuses further writes: drop the store,
    /// reopen it and [`load`](Self::load) to learn which. Re-applying the same changes is
    /// harmless, since deletes of missing keys succeed.
    pub fn commit(&self, changes: &[StoreChange]) -> Result<(), StoreError> {
        self.commit_with_boot_time(changes, None)
    }

    /// Like [`commit`](Self::commit), and in the same transaction, if `boot_time` is given,
    /// replaces the boot-time filter set as [`set_boot_time_filters`](Self::set_boot_time_filters)
    /// does: an engine transaction that changes both persists both or neither.
    ///
    /// An invalid boot-time set is refused before anything is written.
    pub fn commit_with_boot_time(
        &self,
        changes: &[StoreChange],
        boot_time: Option<&[StoredObject]>,
    ) -> Result<(), StoreError> {
        if let Some(filters) = boot_time {
            validate_boot_time_set(&self.path, filters)?;
        } else if changes.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write()?;
        // An error below drops `txn` uncommitted, which makes redb abort it.
        self.apply_changes(&txn, changes)?;
        if let Some(filters) = boot_time {
            self.replace_boot_time(&txn, filters)?;
        }
        self.commit_txn(txn)
    }

    /// Replaces the boot-time filter set atomically (all of it or none of it, durably once this
    /// returns `Ok`).
    ///
    /// The boot-time set (WFP `FWPM_FILTER_FLAG_BOOTTIME` filters) is not made of persistent
    /// objects, but the daemon must enforce it at start before anything else. Every object must
    /// be a [`ObjectKind::Filter`] and the keys must be distinct; otherwise nothing is written
    /// and [`StoreError::InvalidBootTimeSet`] is returned.
    pub fn set_boot_time_filters(&self, filters: &[StoredObject]) -> Result<(), StoreError> {
        self.commit_with_boot_time(&[], Some(filters))
    }

    /// The boot-time filter set, ordered by key.
    pub fn boot_time_filters(&self) -> Result<Vec<StoredObject>, StoreError> {
        self.read_table(BOOT_TIME, BOOT_TIME_NAME)
    }

    /// The engine-wide settings, by name.
    pub fn settings(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.transaction_error(e))?;
        let table = match txn.open_table(SETTINGS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.table_error(SETTINGS_NAME, e)),
        };
        let mut out = Vec::new();
        for entry in table
            .iter()
            .map_err(|e| self.storage_error("reading settings", e))?
        {
            let (name, value) = entry.map_err(|e| self.storage_error("reading settings", e))?;
            out.push((name.value().to_owned(), value.value().to_vec()));
        }
        Ok(out)
    }

    fn check_or_initialize(&self) -> Result<(), StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.transaction_error(e))?;
        let tables: Vec<String> = txn
            .list_tables()
            .map_err(|e| self.storage_error("listing tables", e))?
            .map(|table| table.name().to_owned())
            .collect();
        let multimap_tables = txn
            .list_multimap_tables()
            .map_err(|e| self.storage_error("listing tables", e))?
            .count();
        if !tables.iter().any(|name| name == META_NAME) {
            if tables.is_empty() && multimap_tables == 0 {
                drop(txn);
                return self.initialize();
            }
            return Err(self.foreign(format!(
                "redb database without Palisade metadata (it has tables {})",
                tables.join(", ")
            )));
        }
        let meta = txn.open_table(META).map_err(|e| match e {
            redb::TableError::Storage(source) => self.storage_error("opening the metadata", source),
            other => self.foreign(format!("unexpected metadata table: {other}")),
        })?;
        let magic = meta
            .get(MAGIC_KEY)
            .map_err(|e| self.storage_error("reading the metadata", e))?;
        if magic.as_ref().map(|m| m.value()) != Some(MAGIC) {
            return Err(self.foreign("metadata lacks the Palisade magic identifier".to_owned()));
        }
        let version = meta
            .get(VERSION_KEY)
            .map_err(|e| self.storage_error("reading the metadata", e))?
            .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| self.corrupt("missing or malformed format version".to_owned()))?;
        if version != FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion {
                path: self.path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(())
    }

    fn initialize(&self) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| self.table_error(META_NAME, e))?;
            meta.insert(MAGIC_KEY, MAGIC)
                .map_err(|e| self.storage_error("writing the metadata", e))?;
            meta.insert(VERSION_KEY, FORMAT_VERSION.to_le_bytes().as_slice())
                .map_err(|e| self.storage_error("writing the metadata", e))?;
            // Opening creates the tables, so a store always has all three.
            txn.open_table(OBJECTS)
                .map_err(|e| self.table_error(OBJECTS_NAME, e))?;
            txn.open_table(BOOT_TIME)
                .map_err(|e| self.table_error(BOOT_TIME_NAME, e))?;
        }
        self.commit_txn(txn)
    }

    fn read_table(
        &self,
        definition: TableDefinition<ObjectKey, &[u8]>,
        name: &'static str,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.transaction_error(e))?;
        let table = match txn.open_table(definition) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.table_error(name, e)),
        };
        let len = table
            .len()
            .map_err(|e| self.storage_error("counting entries", e))?;
        let mut objects = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let entries = table
            .iter()
            .map_err(|e| self.storage_error("reading entries", e))?;
        for entry in entries {
            let (key, body) = entry.map_err(|e| self.storage_error("reading entries", e))?;
            let (code, uuid) = key.value();
            let kind = ObjectKind::from_code(code).ok_or_else(|| {
                self.corrupt(format!("unknown object kind code {code} in table {name}"))
            })?;
            objects.push(StoredObject {
                kind,
                key: Uuid::from_bytes(uuid),
                body: body.value().to_vec(),
            });
        }
        Ok(objects)
    }

    fn apply_changes(
        &self,
        txn: &redb::WriteTransaction,
        changes: &[StoreChange],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut table = txn
            .open_table(OBJECTS)
            .map_err(|e| self.table_error(OBJECTS_NAME, e))?;
        for change in changes {
            match change {
                StoreChange::Setting { name, value } => {
                    txn.open_table(SETTINGS)
                        .map_err(|e| self.table_error(SETTINGS_NAME, e))?
                        .insert(name.as_str(), value.as_slice())
                        .map_err(|e| self.storage_error("writing a setting", e))?;
                }
                StoreChange::Put(object) => {
                    table
                        .insert(object_key(object.kind, object.key), object.body.as_slice())
                        .map_err(|e| self.storage_error("inserting an object", e))?;
                }
                StoreChange::Delete { kind, key } => {
                    table
                        .remove(object_key(*kind, *key))
                        .map_err(|e| self.storage_error("removing an object", e))?;
                }
            }
        }
        Ok(())
    }

    fn replace_boot_time(
        &self,
        txn: &redb::WriteTransaction,
        filters: &[StoredObject],
    ) -> Result<(), StoreError> {
        // Deleting and recreating the table drops every old entry in one step, without reading
        // them.
        txn.delete_table(BOOT_TIME)
            .map_err(|e| self.table_error(BOOT_TIME_NAME, e))?;
        let mut table = txn
            .open_table(BOOT_TIME)
            .map_err(|e| self.table_error(BOOT_TIME_NAME, e))?;
        for filter in filters {
            table
                .insert(object_key(filter.kind, filter.key), filter.body.as_slice())
                .map_err(|e| self.storage_error("inserting a boot-time filter", e))?;
        }
        Ok(())
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        self.db.begin_write().map_err(|e| self.transaction_error(e))
    }

    fn commit_txn(&self, txn: redb::WriteTransaction) -> Result<(), StoreError> {
        txn.commit().map_err(|source| StoreError::Commit {
            path: self.path.clone(),
            source: Box::new(source),
        })
    }

    fn transaction_error(&self, source: redb::TransactionError) -> StoreError {
        StoreError::Transaction {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    fn table_error(&self, table: &'static str, source: redb::TableError) -> StoreError {
        StoreError::Table {
            path: self.path.clone(),
            table,
            source: Box::new(source),
        }
    }

    fn storage_error(&self, action: &'static str, source: redb::StorageError) -> StoreError {
        StoreError::Storage {
            path: self.path.clone(),
            action,
            source: Box::new(source),
        }
    }

    fn foreign(&self, reason: String) -> StoreError {
        StoreError::Foreign {
            path: self.path.clone(),
            reason,
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

fn object_key(kind: ObjectKind, key: Uuid) -> ObjectKey {
    (kind.code(), key.into_bytes())
}

fn open_error(path: &Path, source: redb::DatabaseError) -> StoreError {
    // redb reports a file without its magic number as InvalidData; anything else (I/O, lock
    // held, damage) is a failure to open, not proof that the file belongs to someone else.
    if let redb::DatabaseError::Storage(redb::StorageError::Io(io)) = &source
        && io.kind() == io::ErrorKind::InvalidData
    {
        return StoreError::Foreign {
            path: path.to_path_buf(),
            reason: io.to_string(),
        };
    }
    StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

fn validate_boot_time_set(path: &Path, filters: &[StoredObject]) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidBootTimeSet {
        path: path.to_path_buf(),
        reason,
    };
    let mut keys = HashSet::with_capacity(filters.len());
    for filter in filters {
        if filter.kind != ObjectKind::Filter {
            return Err(invalid(format!(
                "{} is a {}, not a filter",
                filter.key,
                filter.kind.name()
            )));
        }
        if !keys.insert(filter.key) {
            return Err(invalid(format!("filter {} appears twice", filter.key)));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct ExportOut<'a> {
    format: &'static str,
    version: u32,
    filters: Vec<ExportedFilterOut<'a>>,
}

#[derive(Serialize)]
struct ExportedFilterOut<'a> {
    kind: &'static str,
    key: Uuid,
    body: &'a str,
}

// Read in two steps, so that a newer version whose filters have another shape is reported as
// a version mismatch rather than as a decoding error.
#[derive(Deserialize)]
struct ExportHeader {
    format: String,
    version: u32,
}

#[derive(Deserialize)]
struct ExportIn {
    filters: Vec<ExportedFilterIn>,
}

#[derive(Deserialize)]
struct ExportedFilterIn {
    kind: String,
    key: Uuid,
    body: String,
}

/// Writes the boot-time set to a standalone JSON file, atomically (a temporary file in the same
/// directory, `fsync`, rename over `path`, `fsync` of the directory), so a small early-boot
/// program can read it without redb and never sees a half-written file.
///
/// The file is a JSON object:
///
/// ```json
/// {"format": "palisade-boot-time-filters", "version": 1,
///  "filters": [{"kind": "filter", "key": "<GUID>", "body": "<the body's JSON text>"}]}
/// ```
///
/// The body is embedded as a string holding its exact bytes, so the export round-trips byte
/// for byte without interpreting it; a body that is not UTF-8 (and therefore not JSON) is
/// refused. The filters are written ordered by key. The set is validated as by
/// [`Store::set_boot_time_filters`].
pub fn export_boot_time(path: &Path, filters: &[StoredObject]) -> Result<(), StoreError> {
    validate_boot_time_set(path, filters)?;
    let mut sorted: Vec<&StoredObject> = filters.iter().collect();
    sorted.sort_by_key(|filter| (filter.kind, filter.key));
    let mut exported = Vec::with_capacity(sorted.len());
    for filter in sorted {
        let body =
            std::str::from_utf8(&filter.body).map_err(|_| StoreError::InvalidBootTimeSet {
                path: path.to_path_buf(),
                reason: format!("the body of filter {} is not UTF-8", filter.key),
            })?;
        exported.push(ExportedFilterOut {
            kind: filter.kind.name(),
            key: filter.key,
            body,
        });
    }
    let document = ExportOut {
        format: EXPORT_FORMAT,
        version: FORMAT_VERSION,
        filters: exported,
    };
    let mut bytes = serde_json::to_vec_pretty(&document).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        action: "encode",
        source,
    })?;
    bytes.push(b'\n');
    write_atomically(path, &bytes)
}

/// Reads a file written by [`export_boot_time`], refusing a file of another format or version
/// and a set that [`Store::set_boot_time_filters`] would refuse.
pub fn read_boot_time_export(path: &Path) -> Result<Vec<StoredObject>, StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    let decode_error = |source| StoreError::Json {
        path: path.to_path_buf(),
        action: "decode",
        source,
    };
    let header: ExportHeader = serde_json::from_slice(&bytes).map_err(decode_error)?;
    if header.format != EXPORT_FORMAT {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            reason: format!("format is {:?}, not {EXPORT_FORMAT:?}", header.format),
        });
    }
    if header.version != FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    let document: ExportIn = serde_json::from_slice(&bytes).map_err(decode_error)?;
    let mut filters = Vec::with_capacity(document.filters.len());
    for filter in document.filters {
        let kind = ObjectKind::from_name(&filter.kind).ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("unknown object kind {:?}", filter.kind),
        })?;
        filters.push(StoredObject {
            kind,
            key: filter.key,
            body: filter.body.into_bytes(),
        });
    }
    validate_boot_time_set(path, &filters)?;
    Ok(filters)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io_error = |action: &'static str, at: &Path| {
        let at = at.to_path_buf();
        move |source| StoreError::Io {
            path: at,
            action,
            source,
        }
    };
    let file_name = path.file_name().ok_or_else(|| StoreError::Io {
        path: path.to_path_buf(),
        action: "write",
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
    })?;
    // The temporary file must be in the same directory for the rename to be atomic.
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (temp_path, mut file) = create_temp_file(dir, &file_name.to_string_lossy())?;
    let flushed = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let written = flushed
        .map_err(io_error("write", &temp_path))
        .and_then(|()| {
            fs::rename(&temp_path, path).map_err(io_error("rename the temporary file onto", path))
        });
    if let Err(error) = written {
        // Best effort: a leftover temporary file is harmless, and the first error is the one
        // worth reporting.
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(io_error("fsync the directory", dir))
}

fn create_temp_file(dir: &Path, file_name: &str) -> Result<(PathBuf, File), StoreError> {
    // create_new never follows or reuses an existing file; a leftover from a crashed writer or
    // a concurrent export only moves us on to the next name.
    const ATTEMPTS: u32 = 64;
    let pid = std::process::id();
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        let temp_path = dir.join(format!(".{file_name}.{pid}.{attempt}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(source) => {
                return Err(StoreError::Io {
                    path: temp_path,
                    action: "create",
                    source,
                });
            }
        }
    }
    Err(StoreError::Io {
        path: dir.to_path_buf(),
        action: "create a temporary file in",
        source: last_error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::AlreadyExists, "no free name")),
    })
}

/// What failed in the store or the boot-time export, and on which file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb could not open or create the store file (I/O error, held by another process,
    /// damaged file, older redb format).
    #[error("cannot open store {}: {source}", .path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// redb's error (boxed: redb's errors are large, and this is the cold path).
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// The file belongs to another program: not a redb database, a redb database without the
    /// Palisade metadata, or an export file of another format.
    #[error("{} is not a Palisade filter store or export: {reason}", .path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The file is of a format version this build does not read (most likely written by a
    /// newer Palisade).
    #[error(
        "{} has format version {found}, but this build reads only version {supported}",
        .path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// [`FORMAT_VERSION`].
        supported: u32,
    },
    /// A read or write transaction could not begin (for a write, possibly because an earlier
    /// commit failed: reopen the store).
    #[error("cannot begin a transaction on store {}: {source}", .path.display())]
    Transaction {
        /// The store file.
        path: PathBuf,
        /// redb's error (boxed: redb's errors are large, and this is the cold path).
        #[source]
        source: Box<redb::TransactionError>,
    },
    /// A table could not be opened or deleted.
    #[error("cannot open table {table} of store {}: {source}", .path.display())]
    Table {
        /// The store file.
        path: PathBuf,
        /// The table's name.
        table: &'static str,
        /// redb's error (boxed: redb's errors are large, and this is the cold path).
        #[source]
        source: Box<redb::TableError>,
    },
    /// Reading or writing entries failed.
    #[error("store {}: failed {action}: {source}", .path.display())]
    Storage {
        /// The store file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// redb's error (boxed: redb's errors are large, and this is the cold path).
        #[source]
        source: Box<redb::StorageError>,
    },
    /// The commit itself failed: its changes were applied entirely or not at all, possibly
    /// durably; reopen the store to learn which (see [`Store::commit`]).
    #[error(
        "commit to store {} failed; its changes are applied entirely or not at all, \
         reopen the store to learn which: {source}",
        .path.display()
    )]
    Commit {
        /// The store file.
        path: PathBuf,
        /// redb's error (boxed: redb's errors are large, and this is the cold path).
        #[source]
        source: Box<redb::CommitError>,
    },
    /// A Palisade file holds data this build cannot decode (unknown object kind, malformed
    /// metadata).
    #[error("{} is corrupt: {detail}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The boot-time filter set was refused and nothing was written.
    #[error("invalid boot-time filter set for {}: {reason}", .path.display())]
    InvalidBootTimeSet {
        /// The store or export file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A file-system operation on the boot-time export failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The boot-time export could not be encoded or decoded as JSON.
    #[error("cannot {action} boot-time export {}: {source}", .path.display())]
    Json {
        /// The export file.
        path: PathBuf,
        /// `encode` or `decode`.
        action: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// The file (or directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Open { path, .. }
            | StoreError::Foreign { path, .. }
            | StoreError::UnsupportedVersion { path, .. }
            | StoreError::Transaction { path, .. }
            | StoreError::Table { path, .. }
            | StoreError::Storage { path, .. }
            | StoreError::Commit { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::InvalidBootTimeSet { path, .. }
            | StoreError::Io { path, .. }
            | StoreError::Json { path, .. } => path,
        }
    }
}

fn private_io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        path,
        action,
        source,
    }
}

/// Creates `path`, readable and writable by its owner only, if it does not exist.
fn create_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(private_io_error(path, "create")(e)),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Leaves an existing store readable and writable by its owner only.
fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(private_io_error(path, "restrict the permissions of"))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
