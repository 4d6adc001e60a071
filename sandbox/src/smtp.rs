//! A capturing SMTP server (RFC 5321 with the ESMTP extensions 8BITMIME, SIZE, PIPELINING,
//! ENHANCEDSTATUSCODES and AUTH PLAIN/LOGIN). It accepts every message and every login and keeps
//! the messages in memory instead of delivering them. There is no STARTTLS: the sandbox runs on
//! loopback, and a client that insists on TLS is expected to fail against it.
//!
//! Line handling is strict where it matters for correctness: inside DATA only CRLF ends a line,
//! so a bare-LF `.` cannot end a message early (the "SMTP smuggling" confusion).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What [`SmtpSandbox::start`] accepts per message; tests of the limit use
/// [`SmtpSandbox::start_with_max_size`].
pub const DEFAULT_MAX_SIZE: usize = 10 * 1024 * 1024;

const HOSTNAME: &str = "sandbox.omnihub.invalid";
/// RFC 4954 allows AUTH lines of this length; ordinary commands are far shorter.
const MAX_COMMAND_LINE: usize = 12_288;
/// RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients.
const MAX_RECIPIENTS: usize = 100;
/// RFC 5321 §4.5.3.2.7: the server's wait for the next command.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// One accepted message, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// The reverse-path of `MAIL FROM`; empty for the null sender `<>`.
    pub from: String,
    /// The forward-paths of the accepted `RCPT TO` commands, in order.
    pub to: Vec<String>,
    /// The message content, dot-unstuffed, without the terminating `.` line. Bytes that are not
    /// UTF-8 (an 8BITMIME body in another charset) are replaced, as the tests compare text.
    pub data: String,
    /// The identity the client logged in with, if it used AUTH.
    pub authenticated_as: Option<String>,
}

/// A running SMTP sandbox on an ephemeral loopback port. Dropping it stops the server and closes
/// every open session.
pub struct SmtpSandbox {
    addr: SocketAddr,
    mails: Arc<watch::Sender<Vec<CapturedMail>>>,
    server: JoinHandle<()>,
}

impl SmtpSandbox {
    pub async fn start() -> std::io::Result<SmtpSandbox> {
        Self::start_with_max_size(DEFAULT_MAX_SIZE).await
    }

    /// Like [`start`](Self::start), refusing messages larger than `max_size` bytes.
    pub async fn start_with_max_size(max_size: usize) -> std::io::Result<SmtpSandbox> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mails = Arc::new(watch::Sender::new(Vec::new()));
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&mails), max_size));
        Ok(SmtpSandbox {
            addr,
            mails,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<CapturedMail> {
        self.mails.borrow().clone()
    }

    /// Waits until at least `count` messages arrived or `timeout` passed, and returns what
    /// arrived either way, so the caller's assertion shows what was missing.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<CapturedMail> {
        let mut receiver = self.mails.subscribe();
        // Timing out is not an error here: the caller compares what it got with what it wanted.
        let _ =
            tokio::time::timeout(timeout, receiver.wait_for(|mails| mails.len() >= count)).await;
        self.messages()
    }
}

impl Drop for SmtpSandbox {
    fn drop(&mut self) {
        // The accept loop owns the session tasks, so aborting it ends them too.
        self.server.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    mails: Arc<watch::Sender<Vec<CapturedMail>>>,
    max_size: usize,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(serve(stream, Arc::clone(&mails), max_size));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "smtp sandbox: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next() => {}
        }
    }
}

async fn serve(stream: TcpStream, mails: Arc<watch::Sender<Vec<CapturedMail>>>, max_size: usize) {
    let (read, write) = stream.into_split();
    let mut session = Session {
        reader: BufReader::new(read),
        writer: write,
        mails,
        max_size,
        greeted: false,
        authenticated_as: None,
        transaction: None,
    };
    if let Err(error) = session.run().await {
        tracing::debug!(%error, "smtp sandbox: session ended");
    }
}

struct Transaction {
    from: String,
    to: Vec<String>,
}

enum Flow {
    Continue,
    Close,
}

pub(crate) enum Line {
    /// The line's bytes with their terminator (CRLF, or a bare LF).
    Complete(Vec<u8>),
    /// Longer than allowed; it was read and dropped. `crlf` tells how it ended.
    TooLong { crlf: bool },
    /// The client closed the connection (a partial last line is dropped with it).
    Eof,
}

struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: OwnedWriteHalf,
    mails: Arc<watch::Sender<Vec<CapturedMail>>>,
    max_size: usize,
    greeted: bool,
    authenticated_as: Option<String>,
    transaction: Option<Transaction>,
}

impl Session {
    async fn run(&mut self) -> std::io::Result<()> {
        self.reply(&format!("220 {HOSTNAME} ESMTP omnihub sandbox"))
            .await?;
        loop {
            let line = match self.read_line(MAX_COMMAND_LINE).await? {
                Line::Complete(line) => line,
                Line::TooLong { .. } => {
                    self.reply("500 5.5.6 Line too long").await?;
                    continue;
                }
                Line::Eof => return Ok(()),
            };
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
            let argument = argument.trim();
            let flow = match verb.to_ascii_uppercase().as_str() {
                "EHLO" => self.hello(argument, true).await?,
                "HELO" => self.hello(argument, false).await?,
                "AUTH" => self.auth(argument).await?,
                "MAIL" => self.mail(argument).await?,
                "RCPT" => self.rcpt(argument).await?,
                "DATA" => self.data(argument).await?,
                "RSET" if argument.is_empty() => {
                    self.transaction = None;
                    self.reply("250 2.0.0 Ok").await?
                }
                "NOOP" => self.reply("250 2.0.0 Ok").await?,
                // RFC 5321 §3.5.3: 252 is the honest answer of a server that does not verify.
                "VRFY" => {
                    self.reply("252 2.5.0 Cannot verify, will attempt delivery")
                        .await?
                }
                "QUIT" => {
                    self.reply("221 2.0.0 Bye").await?;
                    Flow::Close
                }
                "RSET" => self.reply("501 5.5.4 No arguments allowed").await?,
                _ => self.reply("500 5.5.2 Command not recognized").await?,
            };
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    async fn hello(&mut self, domain: &str, extended: bool) -> std::io::Result<Flow> {
        if domain.is_empty() {
            return self
                .reply("501 5.5.4 A domain or address is required")
                .await;
        }
        // A new greeting resets any transaction in progress (RFC 5321 §4.1.4).
        self.greeted = true;
        self.transaction = None;
        if extended {
            let reply = format!(
                "250-{HOSTNAME} greets {domain}\r\n250-8BITMIME\r\n250-SIZE {}\r\n250-PIPELINING\r\n\
                 250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN",
                self.max_size
            );
            self.reply(&reply).await
        } else {
            self.reply(&format!("250 {HOSTNAME} greets {domain}")).await
        }
    }

    async fn auth(&mut self, argument: &str) -> std::io::Result<Flow> {
        if !self.greeted {
            return self.reply("503 5.5.1 Send EHLO first").await;
        }
        if self.authenticated_as.is_some() {
            return self.reply("503 5.5.1 Already authenticated").await;
        }
        if self.transaction.is_some() {
            return self.reply("503 5.5.1 Not during a mail transaction").await;
        }
        let mut words = argument.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        let identity = match mechanism.as_str() {
            "PLAIN" => {
                let Some(response) = self.sasl_response(initial, "").await? else {
                    return Ok(Flow::Continue);
                };
                // authzid NUL authcid NUL password (RFC 4616); the identity is the authcid.
                let parts: Vec<&[u8]> = response.split(|&b| b == 0).collect();
                match parts.as_slice() {
                    [_, user, password] if !user.is_empty() && !password.is_empty() => {
                        String::from_utf8_lossy(user).into_owned()
                    }
                    _ => return self.reply("501 5.5.2 Malformed PLAIN response").await,
                }
            }
            "LOGIN" => {
                // The challenges are base64 for "Username:" and "Password:".
                let Some(user) = self.sasl_response(initial, "VXNlcm5hbWU6").await? else {
                    return Ok(Flow::Continue);
                };
                let Some(password) = self.sasl_response(None, "UGFzc3dvcmQ6").await? else {
                    return Ok(Flow::Continue);
                };
                if user.is_empty() || password.is_empty() {
                    return self.reply("501 5.5.2 Empty user name or password").await;
                }
                String::from_utf8_lossy(&user).into_owned()
            }
            _ => {
                return self
                    .reply("504 5.5.4 Unrecognized authentication type")
                    .await;
            }
        };
        self.authenticated_as = Some(identity);
        self.reply("235 2.7.0 Authentication successful").await
    }

    /// Gets one SASL response, from the AUTH line or after a `334` challenge. `None` means the
    /// exchange is over and already answered (cancelled, undecodable, or the client left).
    async fn sasl_response(
        &mut self,
        initial: Option<&str>,
        challenge: &str,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let response = match initial {
            Some(initial) => initial.to_owned(),
            None => {
                self.reply(&format!("334 {challenge}")).await?;
                match self.read_line(MAX_COMMAND_LINE).await? {
                    Line::Complete(line) => String::from_utf8_lossy(&line)
                        .trim_end_matches(['\r', '\n'])
                        .to_owned(),
                    Line::TooLong { .. } => {
                        self.reply("500 5.5.6 Line too long").await?;
                        return Ok(None);
                    }
                    Line::Eof => return Ok(None),
                }
            }
        };
        if response == "*" {
            self.reply("501 5.7.0 Authentication cancelled").await?;
            return Ok(None);
        }
        // "=" is how a client sends an empty initial response (RFC 4954 §4).
        if response == "=" {
            return Ok(Some(Vec::new()));
        }
        match BASE64.decode(response.as_bytes()) {
            Ok(decoded) => Ok(Some(decoded)),
            Err(_) => {
                self.reply("501 5.5.2 Cannot decode response").await?;
                Ok(None)
            }
        }
    }

    async fn mail(&mut self, argument: &str) -> std::io::Result<Flow> {
        if !self.greeted {
            return self.reply("503 5.5.1 Send HELO or EHLO first").await;
        }
        if self.transaction.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command").await;
        }
        let Some((from, parameters)) = strip_keyword(argument, "FROM:").and_then(parse_path) else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        for parameter in parameters.split_whitespace() {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<usize>() {
                    Ok(size) if size > self.max_size => {
                        return self
                            .reply("552 5.3.4 Message size exceeds fixed limit")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.reply("501 5.5.4 Bad SIZE value").await,
                },
                "BODY" if matches!(value.to_ascii_uppercase().as_str(), "7BIT" | "8BITMIME") => {}
                "BODY" => return self.reply("501 5.5.4 Unsupported BODY type").await,
                _ => return self.reply("555 5.5.4 Unsupported MAIL parameter").await,
            }
        }
        self.transaction = Some(Transaction {
            from,
            to: Vec::new(),
        });
        self.reply("250 2.1.0 Ok").await
    }

    async fn rcpt(&mut self, argument: &str) -> std::io::Result<Flow> {
        let Some(accepted) = self.transaction.as_ref().map(|t| t.to.len()) else {
            return self.reply("503 5.5.1 Need MAIL before RCPT").await;
        };
        let Some((to, parameters)) = strip_keyword(argument, "TO:").and_then(parse_path) else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>").await;
        };
        if to.is_empty() {
            return self.reply("501 5.1.3 Empty recipient").await;
        }
        if !parameters.trim().is_empty() {
            return self.reply("555 5.5.4 Unsupported RCPT parameter").await;
        }
        if accepted >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 Too many recipients").await;
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.to.push(to);
        }
        self.reply("250 2.1.5 Ok").await
    }

    async fn data(&mut self, argument: &str) -> std::io::Result<Flow> {
        if !argument.is_empty() {
            return self.reply("501 5.5.4 No arguments allowed").await;
        }
        match self.transaction.as_ref().map(|t| t.to.len()) {
            None => return self.reply("503 5.5.1 Need MAIL before DATA").await,
            Some(0) => return self.reply("503 5.5.1 Need RCPT before DATA").await,
            Some(_) => {}
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;

        let mut data = Vec::new();
        let mut too_big = false;
        // Only a line that follows a CRLF starts a new line: after a bare LF we are mid-line.
        let mut at_line_start = true;
        loop {
            // One byte over the limit is enough to know a line does not fit.
            let line = match self.read_line(self.max_size + 1).await? {
                Line::Complete(line) => line,
                Line::TooLong { crlf } => {
                    too_big = true;
                    at_line_start = crlf;
                    continue;
                }
                Line::Eof => return Ok(Flow::Close),
            };
            if at_line_start && line == b".\r\n" {
                break;
            }
            let unstuffed = if at_line_start && line.first() == Some(&b'.') {
                &line[1..]
            } else {
                &line[..]
            };
            at_line_start = line.ends_with(b"\r\n");
            if too_big || data.len() + unstuffed.len() > self.max_size {
                too_big = true;
                data = Vec::new();
            } else {
                data.extend_from_slice(unstuffed);
            }
        }

        let Some(transaction) = self.transaction.take() else {
            return Ok(Flow::Continue);
        };
        if too_big {
            return self
                .reply("552 5.3.4 Message size exceeds fixed limit")
                .await;
        }
        let mail = CapturedMail {
            from: transaction.from,
            to: transaction.to,
            data: String::from_utf8_lossy(&data).into_owned(),
            authenticated_as: self.authenticated_as.clone(),
        };
        let mut number = 0;
        self.mails.send_modify(|mails| {
            mails.push(mail);
            number = mails.len();
        });
        self.reply(&format!("250 2.0.0 Ok: queued as {number}"))
            .await
    }

    /// Reads one line of at most `max` bytes, terminator included. A line ends at LF; callers
    /// that care whether it was CRLF look at the bytes.
    async fn read_line(&mut self, max: usize) -> std::io::Result<Line> {
        match tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut self.reader, max)).await {
            Ok(line) => line,
            Err(_) => {
                self.reply("421 4.4.2 Idle timeout, closing connection")
                    .await?;
                Ok(Line::Eof)
            }
        }
    }

    async fn reply(&mut self, text: &str) -> std::io::Result<Flow> {
        self.writer
            .write_all(format!("{text}\r\n").as_bytes())
            .await?;
        Ok(Flow::Continue)
    }
}

/// Reads one line of at most `max` bytes (terminator included) from any buffered reader.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut length = 0;
    // Kept across chunks so a CRLF split between two reads is still seen on a dropped line.
    let mut previous = 0u8;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let consumed = chunk.len();
        length += consumed;
        if length <= max {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        let crlf = match chunk {
            [.., b'\r', b'\n'] => true,
            [b'\n'] => previous == b'\r',
            _ => false,
        };
        previous = chunk.last().copied().unwrap_or(previous);
        reader.consume(consumed);
        if complete {
            return Ok(if length <= max {
                Line::Complete(line)
            } else {
                Line::TooLong { crlf }
            });
        }
    }
}

/// `FROM:` / `TO:` followed by the path; some clients put a space after the colon.
fn strip_keyword<'a>(argument: &'a str, keyword: &str) -> Option<&'a str> {
    let head = argument.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| argument[keyword.len()..].trim_start())
}

/// Splits `<path> parameters` into the address and the rest. Quoted local parts may hold `>`
/// and spaces; a source route (`<@relay:user@host>`, RFC 5321 §4.1.2) is dropped.
fn parse_path(text: &str) -> Option<(String, &str)> {
    let inner = text.strip_prefix('<')?;
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (index, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                end = Some(index);
                break;
            }
            _ => {}
        }
    }
    let end = end?;
    let path = &inner[..end];
    let rest = &inner[end + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let address = match path.strip_prefix('@') {
        Some(routed) => routed.split_once(':')?.1,
        None => path,
    };
    Some((address.to_owned(), rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        assert_eq!(parse_path("<a@b.c>"), Some(("a@b.c".into(), "")));
        assert_eq!(parse_path("<> SIZE=10"), Some(("".into(), " SIZE=10")));
        assert_eq!(
            parse_path("<\"x> y\"@b.c>"),
            Some(("\"x> y\"@b.c".into(), ""))
        );
        assert_eq!(parse_path("<@r1,@r2:u@h>"), Some(("u@h".into(), "")));
        assert_eq!(parse_path("a@b.c"), None);
        assert_eq!(parse_path("<a@b.c"), None);
        assert_eq!(parse_path("<a@b.c>junk"), None);
    }

    #[test]
    fn strips_keywords_case_insensitively() {
        assert_eq!(strip_keyword("from: <a@b>", "FROM:"), Some("<a@b>"));
        assert_eq!(strip_keyword("TO:<a@b>", "FROM:"), None);
        assert_eq!(strip_keyword("Ф", "FROM:"), None);
    }

    #[tokio::test]
    async fn reads_bounded_lines() {
        let input: &[u8] = b"short\r\nfar too long\r\nlong and bare\nbare\nlast";
        // A tiny buffer splits lines, and one CRLF, across reads.
        let mut reader = BufReader::with_capacity(3, input);
        let mut lines = Vec::new();
        loop {
            match read_line(&mut reader, 10).await.unwrap() {
                Line::Complete(line) => lines.push(String::from_utf8(line).unwrap()),
                Line::TooLong { crlf } => lines.push(format!("too long, crlf: {crlf}")),
                Line::Eof => break,
            }
        }
        assert_eq!(
            lines,
            [
                "short\r\n",
                "too long, crlf: true",
                "too long, crlf: false",
                "bare\n"
            ]
        );
    }
}
