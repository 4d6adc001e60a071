//! One IMAP connection: the states of RFC 3501 §3 (not authenticated, authenticated,
//! selected, logout) and the commands each allows, answered with tagged `OK`, `NO` (the
//! command was understood and refused) or `BAD` (it was not understood, or not allowed in
//! this state). IDLE (RFC 2177) waits on the store and pushes `* n EXISTS` as mail arrives;
//! outside IDLE, new mail is announced before the next command's completion, as RFC 3501 §7
//! allows.

use std::collections::BTreeSet;
use std::io;
use std::time::Duration;

use chrono::DateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::fetch::{self, Item};
use super::search::{self, Candidate, SearchError};
use super::store::{Folder, MailStore, SYSTEM_FLAGS, StoreError, canonical};
use super::syntax::{Args, Piece, SequenceSet, Token, literal_length, string, tokenize};
use super::{CAPABILITIES, GREETING};
use crate::smtp::{Line, read_line};

/// The longest command line, literals aside.
const MAX_LINE: usize = 64 * 1024;
/// The largest literal (an appended message, say).
const MAX_LITERAL: usize = 64 << 20;
/// RFC 3501 §5.4: an inactivity autologout timer of at least 30 minutes; RFC 2177 lets a
/// server end an IDLE after as long.
const AUTOLOGOUT: Duration = Duration::from_secs(30 * 60);

pub(crate) async fn serve(stream: TcpStream, store: MailStore) {
    let (read, write) = stream.into_split();
    let changes = store.watch();
    let mut session = Session {
        reader: BufReader::new(read),
        writer: write,
        store,
        changes,
        state: State::NotAuthenticated,
    };
    if let Err(error) = session.run().await {
        tracing::debug!(%error, "imap sandbox: session ended");
    }
}

enum State {
    NotAuthenticated,
    Authenticated {
        user: String,
    },
    Selected {
        user: String,
        folder: String,
        read_only: bool,
        /// How many messages this session was told of.
        announced: usize,
    },
}

/// What came in: a whole command, something to answer `BAD`, or the end.
enum Incoming {
    Command(Vec<Piece>),
    Bad { tag: String, reason: String },
    Eof,
}

enum Flow {
    Continue,
    Close,
}

/// What ends a wait in IDLE.
enum Wake {
    /// The client sent something (`true`: it closed the connection).
    Input(io::Result<bool>),
    /// The store changed (`false`: it is gone).
    Mail(bool),
    TimedOut,
}

/// A command's outcome before its tagged completion: the status and the human text.
type Outcome = (&'static str, String);

fn ok(text: impl Into<String>) -> Outcome {
    ("OK", text.into())
}

fn no(text: impl Into<String>) -> Outcome {
    ("NO", text.into())
}

fn bad(text: impl Into<String>) -> Outcome {
    ("BAD", text.into())
}

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    store: MailStore,
    changes: watch::Receiver<u64>,
    state: State,
}

impl Session {
    async fn run(&mut self) -> io::Result<()> {
        self.line(&format!("* OK [CAPABILITY {CAPABILITIES}] {GREETING}"))
            .await?;
        loop {
            let incoming = match tokio::time::timeout(AUTOLOGOUT, self.read_command()).await {
                Ok(incoming) => incoming?,
                Err(_) => {
                    self.line("* BYE Autologout; idle for too long").await?;
                    return Ok(());
                }
            };
            let pieces = match incoming {
                Incoming::Command(pieces) => pieces,
                Incoming::Bad { tag, reason } => {
                    self.line(&format!("{tag} BAD {reason}")).await?;
                    continue;
                }
                Incoming::Eof => return Ok(()),
            };
            if let Flow::Close = self.command(&pieces).await? {
                return Ok(());
            }
        }
    }

    /// Reads one command: its lines, and the literals they announce (each synchronizing
    /// literal is invited with a `+` continuation first).
    async fn read_command(&mut self) -> io::Result<Incoming> {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut refused: Option<String> = None;
        let mut total = 0usize;
        loop {
            let line = match read_line(&mut self.reader, MAX_LINE).await? {
                Line::Complete(line) => line,
                Line::TooLong { .. } => {
                    return Ok(Incoming::Bad {
                        tag: tag_of(&pieces, b""),
                        reason: "Command line too long".into(),
                    });
                }
                Line::Eof => return Ok(Incoming::Eof),
            };
            let Some(text) = line.strip_suffix(b"\r\n") else {
                return Ok(Incoming::Bad {
                    tag: tag_of(&pieces, &line),
                    reason: "Lines must end with CRLF".into(),
                });
            };
            let text = text.to_vec();
            let Some((length, non_synchronizing)) = literal_length(&text) else {
                pieces.push(Piece::Text(text));
                return Ok(match refused {
                    Some(reason) => Incoming::Bad {
                        tag: tag_of(&pieces, b""),
                        reason,
                    },
                    None => Incoming::Command(pieces),
                });
            };
            total = total.saturating_add(length);
            if non_synchronizing {
                // The client sends the bytes without waiting: read them to stay in step,
                // then refuse the command, as LITERAL+ was never offered.
                if total > MAX_LITERAL {
                    self.line("* BYE Literal too large").await?;
                    return Ok(Incoming::Eof);
                }
                let mut skipped = vec![0; length];
                self.reader.read_exact(&mut skipped).await?;
                refused = Some("LITERAL+ is not supported by this server".into());
                pieces.push(Piece::Text(text));
                pieces.push(Piece::Literal(Vec::new()));
                continue;
            }
            if total > MAX_LITERAL {
                // Not invited, the client does not send it.
                return Ok(Incoming::Bad {
                    tag: tag_of(&pieces, &text),
                    reason: format!("Literal too large (at most {MAX_LITERAL} bytes)"),
                });
            }
            if let Some(reason) = refused.take() {
                return Ok(Incoming::Bad {
                    tag: tag_of(&pieces, &text),
                    reason,
                });
            }
            self.line("+ Ready for literal data").await?;
            let mut bytes = vec![0; length];
            self.reader.read_exact(&mut bytes).await?;
            pieces.push(Piece::Text(text));
            pieces.push(Piece::Literal(bytes));
        }
    }

    async fn command(&mut self, pieces: &[Piece]) -> io::Result<Flow> {
        let tag = tag_of(pieces, b"");
        let tokens = match tokenize(pieces) {
            Ok(tokens) => tokens,
            Err(reason) => {
                self.line(&format!("{tag} BAD {reason}")).await?;
                return Ok(Flow::Continue);
            }
        };
        let mut args = Args::new(tokens);
        let valid_tag = matches!(args.next(), Some(Token::Atom(t)) if is_tag(&t));
        if !valid_tag {
            self.line("* BAD Invalid tag").await?;
            return Ok(Flow::Continue);
        }
        let name = match args.next() {
            Some(Token::Atom(name)) => name.to_ascii_uppercase(),
            _ => {
                self.line(&format!("{tag} BAD Command expected")).await?;
                return Ok(Flow::Continue);
            }
        };
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        let selected = matches!(self.state, State::Selected { .. });
        let outcome = match name.as_str() {
            "CAPABILITY" => match args.end() {
                Ok(()) => {
                    self.line(&format!("* CAPABILITY {CAPABILITIES}")).await?;
                    ok("CAPABILITY completed")
                }
                Err(reason) => bad(reason),
            },
            "NOOP" => match args.end() {
                Ok(()) => ok("NOOP completed"),
                Err(reason) => bad(reason),
            },
            "LOGOUT" => {
                if let Err(reason) = args.end() {
                    self.line(&format!("{tag} BAD {reason}")).await?;
                    return Ok(Flow::Continue);
                }
                self.line("* BYE omnihub sandbox logging out").await?;
                self.line(&format!("{tag} OK LOGOUT completed")).await?;
                return Ok(Flow::Close);
            }
            "STARTTLS" => bad("STARTTLS is not offered: this server speaks plain text on loopback"),
            "AUTHENTICATE" if !authenticated => no("Unsupported authentication mechanism"),
            "LOGIN" if !authenticated => self.login(&mut args),
            "LOGIN" | "AUTHENTICATE" => bad("Already logged in"),
            "SELECT" | "EXAMINE" if authenticated => {
                self.select(&mut args, name == "EXAMINE").await?
            }
            "CREATE" if authenticated => self.create(&mut args),
            "LIST" if authenticated => self.list(&mut args).await?,
            "STATUS" if authenticated => self.status(&mut args).await?,
            "APPEND" if authenticated => self.append(&mut args),
            "IDLE" if authenticated => match args.end() {
                Ok(()) => return self.idle(&tag).await,
                Err(reason) => bad(reason),
            },
            "DELETE" | "RENAME" | "SUBSCRIBE" | "UNSUBSCRIBE" | "LSUB" if authenticated => {
                no(format!("[CANNOT] {name} is not supported by this server"))
            }
            "CHECK" if selected => match args.end() {
                Ok(()) => ok("CHECK completed"),
                Err(reason) => bad(reason),
            },
            "CLOSE" if selected => match args.end() {
                // No message can carry \Deleted here, so there is nothing to expunge.
                Ok(()) => {
                    if let State::Selected { user, .. } = &self.state {
                        self.state = State::Authenticated { user: user.clone() };
                    }
                    ok("CLOSE completed")
                }
                Err(reason) => bad(reason),
            },
            "EXPUNGE" if selected => match args.end() {
                Ok(()) => ok("EXPUNGE completed (no message is marked \\Deleted)"),
                Err(reason) => bad(reason),
            },
            "SEARCH" if selected => self.search(&mut args, false).await?,
            "FETCH" if selected => self.fetch(&mut args, false).await?,
            "STORE" if selected => self.store_flags(&mut args, false).await?,
            "COPY" if selected => self.copy(&mut args, false),
            "UID" if selected => match args.next() {
                Some(Token::Atom(sub)) => match sub.to_ascii_uppercase().as_str() {
                    "SEARCH" => self.search(&mut args, true).await?,
                    "FETCH" => self.fetch(&mut args, true).await?,
                    "STORE" => self.store_flags(&mut args, true).await?,
                    "COPY" => self.copy(&mut args, true),
                    _ => bad(format!("Unknown UID command {sub}")),
                },
                _ => bad("UID command expected"),
            },
            "SELECT" | "EXAMINE" | "CREATE" | "DELETE" | "RENAME" | "SUBSCRIBE" | "UNSUBSCRIBE"
            | "LIST" | "LSUB" | "STATUS" | "APPEND" | "IDLE" => {
                bad(format!("{name} is not allowed before logging in"))
            }
            "CHECK" | "CLOSE" | "EXPUNGE" | "SEARCH" | "FETCH" | "STORE" | "COPY" | "UID" => {
                bad(format!("{name} needs a selected mailbox"))
            }
            _ => bad(format!("Unknown command {name}")),
        };
        self.complete(&tag, outcome).await?;
        Ok(Flow::Continue)
    }

    /// Announces new mail when a mailbox is selected, then writes the tagged completion.
    async fn complete(&mut self, tag: &str, (status, text): Outcome) -> io::Result<()> {
        self.announce().await?;
        self.line(&format!("{tag} {status} {text}")).await
    }

    /// Tells a session with a selected mailbox how many messages it holds, if that grew.
    async fn announce(&mut self) -> io::Result<()> {
        let State::Selected {
            user,
            folder,
            announced,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        let count = self.store.count(user, folder);
        if count > *announced {
            *announced = count;
            let line = format!("* {count} EXISTS");
            self.line(&line).await?;
        }
        Ok(())
    }

    fn user(&self) -> &str {
        match &self.state {
            State::NotAuthenticated => "",
            State::Authenticated { user } | State::Selected { user, .. } => user,
        }
    }

    fn login(&mut self, args: &mut Args) -> Outcome {
        let (user, password) = match (args.text("user name"), args.text("password")) {
            (Ok(user), Ok(password)) => (user, password),
            (Err(reason), _) | (_, Err(reason)) => return bad(reason),
        };
        if let Err(reason) = args.end() {
            return bad(reason);
        }
        if self.store.check_login(&user, &password) {
            self.state = State::Authenticated { user };
            ok(format!("[CAPABILITY {CAPABILITIES}] Logged in"))
        } else {
            no("[AUTHENTICATIONFAILED] Authentication failed.")
        }
    }

    async fn select(&mut self, args: &mut Args, read_only: bool) -> io::Result<Outcome> {
        let name = match args
            .text("mailbox name")
            .and_then(|n| args.end().map(|()| n))
        {
            Ok(name) => name,
            Err(reason) => return Ok(bad(reason)),
        };
        let user = self.user().to_owned();
        // A SELECT deselects first, so a failed one leaves nothing selected.
        self.state = State::Authenticated { user: user.clone() };
        let folder = match self.store.folder(&user, &name) {
            Ok(folder) => folder,
            Err(_) => return Ok(no(format!("[NONEXISTENT] Mailbox doesn't exist: {name}"))),
        };
        let count = folder.messages.len();
        let system = SYSTEM_FLAGS.join(" ");
        self.line(&format!("* FLAGS ({system})")).await?;
        let permanent = if read_only {
            "()".to_owned()
        } else {
            format!("({system} \\*)")
        };
        self.line(&format!(
            "* OK [PERMANENTFLAGS {permanent}] Flags permitted."
        ))
        .await?;
        self.line(&format!("* {count} EXISTS")).await?;
        self.line("* 0 RECENT").await?;
        if let Some(first) = folder
            .messages
            .iter()
            .position(|m| !m.flags.contains("\\Seen"))
        {
            self.line(&format!("* OK [UNSEEN {}] First unseen.", first + 1))
                .await?;
        }
        self.line(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            folder.uid_validity
        ))
        .await?;
        self.line(&format!(
            "* OK [UIDNEXT {}] Predicted next UID",
            folder.uid_next
        ))
        .await?;
        self.state = State::Selected {
            user,
            folder: canonical(&name),
            read_only,
            announced: count,
        };
        Ok(if read_only {
            ok("[READ-ONLY] EXAMINE completed")
        } else {
            ok("[READ-WRITE] SELECT completed")
        })
    }

    fn create(&mut self, args: &mut Args) -> Outcome {
        let name = match args
            .text("mailbox name")
            .and_then(|n| args.end().map(|()| n))
        {
            Ok(name) => name,
            Err(reason) => return bad(reason),
        };
        if name.is_empty() || name.contains(['*', '%']) {
            return bad("Invalid mailbox name");
        }
        match self.store.create_folder(self.user(), &name) {
            Ok(()) => ok("CREATE completed"),
            Err(StoreError::FolderExists(_)) => no("[ALREADYEXISTS] Mailbox already exists"),
            Err(error) => no(error.to_string()),
        }
    }

    async fn list(&mut self, args: &mut Args) -> io::Result<Outcome> {
        let (reference, pattern) = match (args.text("reference"), args.text("mailbox pattern")) {
            (Ok(reference), Ok(pattern)) => (reference, pattern),
            (Err(reason), _) | (_, Err(reason)) => return Ok(bad(reason)),
        };
        if let Err(reason) = args.end() {
            return Ok(bad(reason));
        }
        if pattern.is_empty() {
            // RFC 3501 §6.3.8: the hierarchy delimiter and the root.
            self.line("* LIST (\\Noselect) \"/\" \"\"").await?;
            return Ok(ok("LIST completed"));
        }
        let pattern = format!("{reference}{pattern}");
        for name in self.store.folder_names(self.user()) {
            if wildcard_match(pattern.as_bytes(), name.as_bytes()) {
                let mut line = b"* LIST (\\HasNoChildren) \"/\" ".to_vec();
                line.extend(string(name.as_bytes()));
                self.bytes(&line).await?;
            }
        }
        Ok(ok("LIST completed"))
    }

    async fn status(&mut self, args: &mut Args) -> io::Result<Outcome> {
        let name = match args.text("mailbox name") {
            Ok(name) => name,
            Err(reason) => return Ok(bad(reason)),
        };
        let items = match args
            .atom_list("status items")
            .and_then(|i| args.end().map(|()| i))
        {
            Ok(items) if !items.is_empty() => items,
            Ok(_) => return Ok(bad("status items expected")),
            Err(reason) => return Ok(bad(reason)),
        };
        let folder = match self.store.folder(self.user(), &name) {
            Ok(folder) => folder,
            Err(_) => return Ok(no(format!("[NONEXISTENT] Mailbox doesn't exist: {name}"))),
        };
        let mut values = Vec::new();
        for item in &items {
            let value = match item.to_ascii_uppercase().as_str() {
                "MESSAGES" => folder.messages.len(),
                "RECENT" => 0,
                "UIDNEXT" => folder.uid_next as usize,
                "UIDVALIDITY" => folder.uid_validity as usize,
                "UNSEEN" => folder
                    .messages
                    .iter()
                    .filter(|m| !m.flags.contains("\\Seen"))
                    .count(),
                _ => return Ok(bad(format!("Unknown status item {item}"))),
            };
            values.push(format!("{} {value}", item.to_ascii_uppercase()));
        }
        let mut line = b"* STATUS ".to_vec();
        line.extend(string(name.as_bytes()));
        line.extend(format!(" ({})", values.join(" ")).into_bytes());
        self.bytes(&line).await?;
        Ok(ok("STATUS completed"))
    }

    fn append(&mut self, args: &mut Args) -> Outcome {
        let name = match args.text("mailbox name") {
            Ok(name) => name,
            Err(reason) => return bad(reason),
        };
        let mut flags = BTreeSet::new();
        if args.peek() == Some(&Token::Open) {
            match args.atom_list("flags").and_then(|list| parse_flags(&list)) {
                Ok(parsed) => flags = parsed,
                Err(reason) => return bad(reason),
            }
        }
        let mut date = None;
        let mut message = match args.next() {
            Some(Token::Str(bytes)) => bytes,
            _ => return bad("message literal expected"),
        };
        if let Some(Token::Str(_)) = args.peek() {
            // The first string was the date-time.
            let text = String::from_utf8_lossy(&message).trim_start().to_owned();
            match DateTime::parse_from_str(&text, "%d-%b-%Y %H:%M:%S %z") {
                Ok(parsed) => date = Some(parsed),
                Err(_) => return bad(format!("{text:?} is not a date-time")),
            }
            message = match args.next() {
                Some(Token::Str(bytes)) => bytes,
                _ => return bad("message literal expected"),
            };
        }
        if let Err(reason) = args.end() {
            return bad(reason);
        }
        if message.is_empty() {
            return no("An empty message cannot be appended");
        }
        let user = self.user().to_owned();
        match self.store.append(&user, &name, flags, date, message) {
            Ok(_) => ok("APPEND completed"),
            Err(StoreError::NoSuchFolder(_)) => {
                no(format!("[TRYCREATE] Mailbox doesn't exist: {name}"))
            }
            Err(error) => no(format!("[CANNOT] {error}")),
        }
    }

    /// The selected folder as it is now, after telling the session of new mail, so sequence
    /// numbers mean the same to both sides.
    async fn selected_folder(&mut self) -> io::Result<Result<(String, Folder, bool), Outcome>> {
        self.announce().await?;
        let State::Selected {
            user,
            folder,
            read_only,
            ..
        } = &self.state
        else {
            return Ok(Err(bad("No mailbox selected")));
        };
        Ok(match self.store.folder(user, folder) {
            Ok(snapshot) => Ok((folder.clone(), snapshot, *read_only)),
            Err(error) => Err(no(error.to_string())),
        })
    }

    /// The sequence numbers (1-based) of the messages a set names. Sequence numbers beyond the
    /// mailbox are an error; UIDs that do not exist are simply not there.
    fn resolve(folder: &Folder, set: &str, by_uid: bool) -> Result<Vec<usize>, Outcome> {
        let parsed =
            SequenceSet::parse(set).ok_or_else(|| bad(format!("Invalid message set {set:?}")))?;
        let count = folder.messages.len();
        if by_uid {
            let last = folder.messages.last().map_or(0, |m| m.uid);
            return Ok((1..=count)
                .filter(|&seq| parsed.contains(folder.messages[seq - 1].uid, last))
                .collect());
        }
        if count == 0 || parsed.largest_named() as usize > count {
            return Err(bad(format!(
                "Invalid message set {set:?}: the mailbox has {count}"
            )));
        }
        Ok((1..=count)
            .filter(|&seq| parsed.contains(seq as u32, count as u32))
            .collect())
    }

    async fn search(&mut self, args: &mut Args, by_uid: bool) -> io::Result<Outcome> {
        let key = match search::parse(args) {
            Ok(key) => key,
            Err(SearchError::Syntax(reason)) => return Ok(bad(reason)),
            Err(SearchError::BadCharset) => {
                return Ok(no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"));
            }
        };
        let (_, folder, _) = match self.selected_folder().await? {
            Ok(selected) => selected,
            Err(outcome) => return Ok(outcome),
        };
        let last_uid = folder.messages.last().map_or(0, |m| m.uid);
        let found: Vec<String> = folder
            .messages
            .iter()
            .enumerate()
            .filter(|(i, message)| {
                key.matches(&Candidate {
                    sequence: *i as u32 + 1,
                    message,
                    last_sequence: folder.messages.len() as u32,
                    last_uid,
                })
            })
            .map(|(i, message)| {
                if by_uid {
                    message.uid.to_string()
                } else {
                    (i + 1).to_string()
                }
            })
            .collect();
        let line = if found.is_empty() {
            "* SEARCH".to_owned()
        } else {
            format!("* SEARCH {}", found.join(" "))
        };
        self.line(&line).await?;
        Ok(ok(if by_uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        }))
    }

    async fn fetch(&mut self, args: &mut Args, by_uid: bool) -> io::Result<Outcome> {
        let set = match args.atom("message set") {
            Ok(set) => set,
            Err(reason) => return Ok(bad(reason)),
        };
        let mut items = match fetch::parse(args) {
            Ok(items) => items,
            Err(reason) => return Ok(bad(reason)),
        };
        let (name, folder, read_only) = match self.selected_folder().await? {
            Ok(selected) => selected,
            Err(outcome) => return Ok(outcome),
        };
        let sequences = match Self::resolve(&folder, &set, by_uid) {
            Ok(sequences) => sequences,
            Err(outcome) => return Ok(outcome),
        };
        if by_uid && !items.contains(&Item::Uid) {
            items.insert(0, Item::Uid);
        }
        let marks_seen = !read_only && items.iter().any(Item::sets_seen);
        let user = self.user().to_owned();
        for seq in sequences {
            let mut message = folder.messages[seq - 1].clone();
            let mut answered = items.clone();
            if marks_seen && !message.flags.contains("\\Seen") {
                let seen = self.store.set_flags(&user, &name, &[message.uid], |flags| {
                    let mut flags = flags.clone();
                    flags.insert("\\Seen".to_owned());
                    flags
                });
                if let Ok(changed) = seen
                    && let Some((_, flags)) = changed.into_iter().next()
                {
                    message.flags = flags;
                    if !answered.contains(&Item::Flags) {
                        answered.push(Item::Flags);
                    }
                }
            }
            let mut line = format!("* {seq} FETCH ").into_bytes();
            line.extend(fetch::answer(&message, &answered));
            self.bytes(&line).await?;
        }
        Ok(ok(if by_uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        }))
    }

    async fn store_flags(&mut self, args: &mut Args, by_uid: bool) -> io::Result<Outcome> {
        let set = match args.atom("message set") {
            Ok(set) => set,
            Err(reason) => return Ok(bad(reason)),
        };
        let operation = match args.atom("FLAGS, +FLAGS or -FLAGS") {
            Ok(operation) => operation.to_ascii_uppercase(),
            Err(reason) => return Ok(bad(reason)),
        };
        let (operation, silent) = match operation.strip_suffix(".SILENT") {
            Some(operation) => (operation.to_owned(), true),
            None => (operation, false),
        };
        if !matches!(operation.as_str(), "FLAGS" | "+FLAGS" | "-FLAGS") {
            return Ok(bad(format!("Unknown STORE item {operation}")));
        }
        let list = if args.peek() == Some(&Token::Open) {
            args.atom_list("flags")
        } else {
            let mut atoms = Vec::new();
            while let Some(Token::Atom(_)) = args.peek() {
                if let Some(Token::Atom(atom)) = args.next() {
                    atoms.push(atom);
                }
            }
            Ok(atoms)
        };
        let flags = match list
            .and_then(|list| parse_flags(&list))
            .and_then(|flags| args.end().map(|()| flags))
        {
            Ok(flags) => flags,
            Err(reason) => return Ok(bad(reason)),
        };
        let (name, folder, read_only) = match self.selected_folder().await? {
            Ok(selected) => selected,
            Err(outcome) => return Ok(outcome),
        };
        if read_only {
            return Ok(no("[READ-ONLY] The mailbox is opened read-only"));
        }
        let sequences = match Self::resolve(&folder, &set, by_uid) {
            Ok(sequences) => sequences,
            Err(outcome) => return Ok(outcome),
        };
        let uids: Vec<u32> = sequences
            .iter()
            .map(|seq| folder.messages[seq - 1].uid)
            .collect();
        let user = self.user().to_owned();
        let changed =
            self.store
                .set_flags(&user, &name, &uids, |current| match operation.as_str() {
                    "+FLAGS" => current.union(&flags).cloned().collect(),
                    "-FLAGS" => current.difference(&flags).cloned().collect(),
                    _ => flags.clone(),
                });
        let changed = match changed {
            Ok(changed) => changed,
            Err(error) => return Ok(no(format!("[CANNOT] {error}"))),
        };
        if !silent {
            for (seq, (uid, flags)) in sequences.iter().zip(changed) {
                let uid = if by_uid {
                    format!("UID {uid} ")
                } else {
                    String::new()
                };
                let line = format!("* {seq} FETCH ({uid}FLAGS {})", fetch::flag_list(&flags));
                self.line(&line).await?;
            }
        }
        Ok(ok("STORE completed"))
    }

    fn copy(&mut self, args: &mut Args, by_uid: bool) -> Outcome {
        let (set, target) = match (args.atom("message set"), args.text("mailbox name")) {
            (Ok(set), Ok(target)) => (set, target),
            (Err(reason), _) | (_, Err(reason)) => return bad(reason),
        };
        if let Err(reason) = args.end() {
            return bad(reason);
        }
        let State::Selected { user, folder, .. } = &self.state else {
            return bad("No mailbox selected");
        };
        let (user, source) = (user.clone(), folder.clone());
        let snapshot = match self.store.folder(&user, &source) {
            Ok(snapshot) => snapshot,
            Err(error) => return no(error.to_string()),
        };
        if self.store.folder(&user, &target).is_err() {
            return no(format!("[TRYCREATE] Mailbox doesn't exist: {target}"));
        }
        let sequences = match Self::resolve(&snapshot, &set, by_uid) {
            Ok(sequences) => sequences,
            Err(outcome) => return outcome,
        };
        for seq in sequences {
            let message = &snapshot.messages[seq - 1];
            let copied = self.store.append(
                &user,
                &target,
                message.flags.clone(),
                Some(message.internal_date),
                message.raw.to_vec(),
            );
            if let Err(error) = copied {
                return no(error.to_string());
            }
        }
        ok("COPY completed")
    }

    /// RFC 2177: `+ idling`, then `* n EXISTS` whenever mail arrives, until the client's
    /// `DONE`.
    async fn idle(&mut self, tag: &str) -> io::Result<Flow> {
        // Only changes from now on wake the wait.
        drop(self.changes.borrow_and_update());
        self.line("+ idling").await?;
        // Mail that came since the last command is announced at once.
        self.announce().await?;
        let deadline = tokio::time::sleep(AUTOLOGOUT);
        tokio::pin!(deadline);
        loop {
            // Waiting for input only peeks at it (no bytes are taken), so a wake-up by new
            // mail never loses part of the client's DONE.
            let wake = tokio::select! {
                input = self.reader.fill_buf() => Wake::Input(input.map(|bytes| bytes.is_empty())),
                changed = self.changes.changed() => Wake::Mail(changed.is_ok()),
                () = &mut deadline => Wake::TimedOut,
            };
            match wake {
                Wake::Input(input) => {
                    if input? {
                        return Ok(Flow::Close);
                    }
                    break;
                }
                Wake::Mail(true) => self.announce().await?,
                Wake::Mail(false) => return Ok(Flow::Close),
                Wake::TimedOut => {
                    self.line("* BYE Autologout; idle for too long").await?;
                    return Ok(Flow::Close);
                }
            }
        }
        let done =
            match tokio::time::timeout(AUTOLOGOUT, read_line(&mut self.reader, MAX_LINE)).await {
                Ok(line) => line?,
                Err(_) => return Ok(Flow::Close),
            };
        match done {
            Line::Complete(line) if line.eq_ignore_ascii_case(b"DONE\r\n") => {
                self.complete(tag, ok("IDLE terminated")).await?;
                Ok(Flow::Continue)
            }
            Line::Eof => Ok(Flow::Close),
            _ => {
                self.complete(tag, bad("Expected DONE")).await?;
                Ok(Flow::Continue)
            }
        }
    }

    async fn line(&mut self, text: &str) -> io::Result<()> {
        self.bytes(text.as_bytes()).await
    }

    async fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out).await
    }
}

/// The tag of a command for a `BAD` answer: the first word of its first line when that is a
/// valid tag, else `*`.
fn tag_of(pieces: &[Piece], line: &[u8]) -> String {
    let first = match pieces.first() {
        Some(Piece::Text(text)) => &text[..],
        _ => line,
    };
    let word = first.split(|&b| b == b' ').next().unwrap_or_default();
    match std::str::from_utf8(word) {
        Ok(word) if is_tag(word.trim_end_matches(['\r', '\n'])) => {
            word.trim_end_matches(['\r', '\n']).to_owned()
        }
        _ => "*".to_owned(),
    }
}

/// RFC 3501 `tag`: ASTRING-CHARs but `+`.
fn is_tag(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        })
}

/// Flags of APPEND and STORE: the system flags (any case, written canonically) and keywords.
fn parse_flags(list: &[String]) -> Result<BTreeSet<String>, String> {
    list.iter()
        .map(|flag| match flag.strip_prefix('\\') {
            Some(_) => {
                if flag.eq_ignore_ascii_case("\\Deleted") {
                    return Ok("\\Deleted".to_owned());
                }
                SYSTEM_FLAGS
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(flag))
                    .map(|known| (*known).to_owned())
                    .ok_or_else(|| format!("{flag} is not a flag that can be set"))
            }
            None if flag
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b)) =>
            {
                Ok(flag.clone())
            }
            None => Err(format!("{flag:?} is not a valid keyword")),
        })
        .collect()
}

/// LIST patterns: `*` matches anything, `%` anything but the delimiter `/`.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| wildcard_match(rest, &name[skip..])),
        Some((b'%', rest)) => (0..=name.len())
            .take_while(|&skip| skip == 0 || name[skip - 1] != b'/')
            .any(|skip| wildcard_match(rest, &name[skip..])),
        Some((c, rest)) => name.first() == Some(c) && wildcard_match(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_patterns() {
        assert!(is_tag("A0001") && is_tag("a.1"));
        assert!(!is_tag("") && !is_tag("+1") && !is_tag("A*") && !is_tag("A\"1"));
        assert!(wildcard_match(b"*", b"INBOX"));
        assert!(wildcard_match(b"%", b"Sent") && !wildcard_match(b"%", b"a/b"));
        assert!(wildcard_match(b"a/%", b"a/b") && wildcard_match(b"IN*X", b"INBOX"));
        assert!(!wildcard_match(b"Sent", b"INBOX"));
        assert_eq!(
            tag_of(&[Piece::Text(b"A7 FROB".to_vec())], b""),
            "A7".to_owned()
        );
        assert_eq!(tag_of(&[], b"(x y\r\n"), "*".to_owned());
    }

    #[test]
    fn flags_are_checked() {
        let flags = parse_flags(&["\\seen".into(), "$Label1".into()]).unwrap();
        assert_eq!(flags, BTreeSet::from(["\\Seen".into(), "$Label1".into()]));
        assert!(parse_flags(&["\\Recent".into()]).is_err());
        assert!(parse_flags(&["\\Bogus".into()]).is_err());
    }
}
