//! The IMAP sandbox's mail, kept in memory: accounts with a password, each with folders of
//! messages under UIDs. Every IMAP session and the code that delivers mail share one
//! [`MailStore`]; a change bumps a counter that idling sessions watch, so they announce new
//! mail at once.
//!
//! Messages are never removed: the sandbox refuses the `\Deleted` flag, so message sequence
//! numbers only grow and a session never has to be told of an expunge.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::watch;

/// The flags a message may carry here (RFC 3501 §2.3.2, without `\Deleted` and `\Recent`).
pub const SYSTEM_FLAGS: [&str; 4] = ["\\Answered", "\\Flagged", "\\Seen", "\\Draft"];

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub uid: u32,
    /// Flags as written by the client (keywords keep their case; system flags are canonical).
    pub flags: BTreeSet<String>,
    pub internal_date: DateTime<FixedOffset>,
    /// The message exactly as delivered or appended.
    pub raw: Arc<[u8]>,
}

/// A folder: its UIDVALIDITY (fixed for its life), the next UID and its messages in UID order.
#[derive(Clone, Debug)]
pub(crate) struct Folder {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: Vec<StoredMessage>,
}

struct Account {
    password: String,
    /// Keyed by name; the inbox is always `INBOX`.
    folders: BTreeMap<String, Folder>,
}

/// Why the store refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("there is no account {0:?}")]
    NoSuchAccount(String),
    #[error("there is no folder {0:?}")]
    NoSuchFolder(String),
    #[error("the folder {0:?} already exists")]
    FolderExists(String),
    #[error("the flag {0} cannot be set here")]
    FlagRefused(String),
}

/// The sandbox's mail, shared by every session; cheap to clone.
#[derive(Clone)]
pub struct MailStore {
    inner: Arc<Inner>,
}

struct Inner {
    accounts: Mutex<HashMap<String, Account>>,
    /// Bumped on every change.
    changes: watch::Sender<u64>,
    /// The UIDVALIDITY of the next folder created: the creation time in seconds, as Dovecot
    /// does, so a folder made again after a restart never reuses an old value.
    next_uid_validity: Mutex<u32>,
}

impl Default for MailStore {
    fn default() -> Self {
        MailStore::new()
    }
}

impl MailStore {
    pub fn new() -> MailStore {
        let now = u32::try_from(Utc::now().timestamp()).unwrap_or(1);
        MailStore {
            inner: Arc::new(Inner {
                accounts: Mutex::new(HashMap::new()),
                changes: watch::Sender::new(0),
                next_uid_validity: Mutex::new(now.max(1)),
            }),
        }
    }

    fn accounts(&self) -> MutexGuard<'_, HashMap<String, Account>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn uid_validity(&self) -> u32 {
        let mut next = self
            .inner
            .next_uid_validity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = *next;
        *next = next.wrapping_add(1).max(1);
        value
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Adds an account (the login name is matched exactly) with an empty `INBOX`; an existing
    /// account only gets the new password.
    pub fn add_account(&self, username: &str, password: &str) {
        let inbox = self.new_folder();
        let mut accounts = self.accounts();
        accounts
            .entry(username.to_owned())
            .and_modify(|account| account.password = password.to_owned())
            .or_insert_with(|| Account {
                password: password.to_owned(),
                folders: BTreeMap::from([("INBOX".to_owned(), inbox)]),
            });
    }

    fn new_folder(&self) -> Folder {
        Folder {
            uid_validity: self.uid_validity(),
            uid_next: 1,
            messages: Vec::new(),
        }
    }

    /// Whether `username` and `password` name an account.
    pub(crate) fn check_login(&self, username: &str, password: &str) -> bool {
        self.accounts()
            .get(username)
            .is_some_and(|account| account.password == password)
    }

    /// Creates a folder of an account.
    pub fn create_folder(&self, username: &str, folder: &str) -> Result<(), StoreError> {
        let name = canonical(folder);
        let created = self.new_folder();
        let mut accounts = self.accounts();
        let account = accounts
            .get_mut(username)
            .ok_or_else(|| StoreError::NoSuchAccount(username.to_owned()))?;
        if account.folders.contains_key(&name) {
            return Err(StoreError::FolderExists(name));
        }
        account.folders.insert(name, created);
        drop(accounts);
        self.changed();
        Ok(())
    }

    /// Delivers a message into the account's `INBOX`, as a mail server's local delivery does;
    /// returns its UID.
    pub fn deliver(&self, username: &str, raw: impl Into<Vec<u8>>) -> Result<u32, StoreError> {
        self.append(username, "INBOX", BTreeSet::new(), None, raw.into())
    }

    /// Adds a message to a folder with these flags and internal date (now when `None`).
    pub(crate) fn append(
        &self,
        username: &str,
        folder: &str,
        flags: BTreeSet<String>,
        internal_date: Option<DateTime<FixedOffset>>,
        raw: Vec<u8>,
    ) -> Result<u32, StoreError> {
        if let Some(refused) = flags.iter().find(|flag| !settable(flag)) {
            return Err(StoreError::FlagRefused(refused.clone()));
        }
        let mut accounts = self.accounts();
        let folder = Self::folder_mut(&mut accounts, username, folder)?;
        let uid = folder.uid_next;
        folder.uid_next += 1;
        folder.messages.push(StoredMessage {
            uid,
            flags,
            internal_date: internal_date.unwrap_or_else(|| Utc::now().fixed_offset()),
            raw: raw.into(),
        });
        drop(accounts);
        self.changed();
        Ok(uid)
    }

    fn folder_mut<'a>(
        accounts: &'a mut HashMap<String, Account>,
        username: &str,
        folder: &str,
    ) -> Result<&'a mut Folder, StoreError> {
        accounts
            .get_mut(username)
            .ok_or_else(|| StoreError::NoSuchAccount(username.to_owned()))?
            .folders
            .get_mut(&canonical(folder))
            .ok_or_else(|| StoreError::NoSuchFolder(folder.to_owned()))
    }

    /// A snapshot of one folder.
    pub(crate) fn folder(&self, username: &str, folder: &str) -> Result<Folder, StoreError> {
        let mut accounts = self.accounts();
        Self::folder_mut(&mut accounts, username, folder).map(|folder| folder.clone())
    }

    /// How many messages a folder holds (0 when it is gone).
    pub(crate) fn count(&self, username: &str, folder: &str) -> usize {
        let mut accounts = self.accounts();
        Self::folder_mut(&mut accounts, username, folder).map_or(0, |folder| folder.messages.len())
    }

    /// The names of an account's folders.
    pub(crate) fn folder_names(&self, username: &str) -> Vec<String> {
        self.accounts()
            .get(username)
            .map(|account| account.folders.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes the flags of the messages with these UIDs: `change` gets each message's flags
    /// and returns the new set. Returns the UIDs and flags after the change.
    pub(crate) fn set_flags(
        &self,
        username: &str,
        folder: &str,
        uids: &[u32],
        change: impl Fn(&BTreeSet<String>) -> BTreeSet<String>,
    ) -> Result<Vec<(u32, BTreeSet<String>)>, StoreError> {
        let mut accounts = self.accounts();
        let folder = Self::folder_mut(&mut accounts, username, folder)?;
        // Every new set is checked before any is kept: a refused flag changes nothing.
        let mut changed = Vec::new();
        for message in folder.messages.iter().filter(|m| uids.contains(&m.uid)) {
            let flags = change(&message.flags);
            if let Some(refused) = flags.iter().find(|flag| !settable(flag)) {
                return Err(StoreError::FlagRefused(refused.clone()));
            }
            changed.push((message.uid, flags));
        }
        for (uid, flags) in &changed {
            if let Some(message) = folder.messages.iter_mut().find(|m| m.uid == *uid) {
                message.flags = flags.clone();
            }
        }
        drop(accounts);
        self.changed();
        Ok(changed)
    }

    /// The messages of a folder, oldest first.
    pub fn messages(&self, username: &str, folder: &str) -> Result<Vec<StoredMessage>, StoreError> {
        self.folder(username, folder).map(|folder| folder.messages)
    }

    /// The UIDVALIDITY of a folder.
    pub fn uid_validity_of(&self, username: &str, folder: &str) -> Result<u32, StoreError> {
        self.folder(username, folder)
            .map(|folder| folder.uid_validity)
    }

    /// A receiver that sees every change to the store.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
}

/// `INBOX` in any case is the inbox (RFC 3501 §5.1); other names are kept as written.
pub(crate) fn canonical(folder: &str) -> String {
    if folder.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        folder.to_owned()
    }
}

/// Keywords and the system flags but `\Deleted` and `\Recent` (see the module documentation).
fn settable(flag: &str) -> bool {
    !flag.starts_with('\\') || SYSTEM_FLAGS.contains(&flag)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uids_grow_and_uidvalidity_stays() {
        let store = MailStore::new();
        store.add_account("shop", "pw");
        let validity = store.uid_validity_of("shop", "inbox").unwrap();
        assert_eq!(store.deliver("shop", b"a".to_vec()), Ok(1));
        assert_eq!(store.deliver("shop", b"b".to_vec()), Ok(2));
        assert_eq!(store.uid_validity_of("shop", "INBOX").unwrap(), validity);
        assert_eq!(
            store.deliver("nobody", b"c".to_vec()),
            Err(StoreError::NoSuchAccount("nobody".into()))
        );
        store.create_folder("shop", "Sent").unwrap();
        assert_ne!(store.uid_validity_of("shop", "Sent").unwrap(), validity);
        assert_eq!(
            store.create_folder("shop", "inbox"),
            Err(StoreError::FolderExists("INBOX".into()))
        );
        assert!(store.check_login("shop", "pw"));
        assert!(!store.check_login("shop", "PW"));
    }

    #[test]
    fn deleted_is_refused() {
        let store = MailStore::new();
        store.add_account("shop", "pw");
        let flags = BTreeSet::from(["\\Deleted".to_owned()]);
        assert!(matches!(
            store.append("shop", "INBOX", flags, None, b"x".to_vec()),
            Err(StoreError::FlagRefused(_))
        ));
        assert!(store.messages("shop", "INBOX").unwrap().is_empty());
    }
}
