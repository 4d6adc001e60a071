//! The SMTP sandbox against lettre (through `SmtpMailer`) and against a hand-typed session.

use std::time::Duration;

use mail_parser::MessageParser;
use omnihub_connectors::email::{EmailError, SmtpMailer, SmtpSecurity, SmtpSettings};
use omnihub_sandbox::smtp::SmtpSandbox;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const WAIT: Duration = Duration::from_secs(5);

fn settings(sandbox: &SmtpSandbox) -> SmtpSettings {
    SmtpSettings {
        host: sandbox.addr().ip().to_string(),
        port: sandbox.addr().port(),
        security: SmtpSecurity::None,
        username: Some("shop-bot".into()),
        password: Some("секрет".into()),
        from: "Магазин <shop@example.com>".into(),
    }
}

#[tokio::test]
async fn mailer_delivers_russian_text_that_decodes_back() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mailer = SmtpMailer::new(&settings(&sandbox)).unwrap();
    let subject = "Заказ №42 — готов к выдаче";
    let body = "Здравствуйте, Иван!\r\nВаш заказ ждёт вас.\r\n";

    mailer
        .send_text("Иван <ivan@example.ru>", subject, body)
        .await
        .unwrap();

    let mails = sandbox.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "shop@example.com");
    assert_eq!(mail.to, ["ivan@example.ru"]);
    assert_eq!(mail.authenticated_as.as_deref(), Some("shop-bot"));
    let parsed = MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some(subject));
    assert_eq!(parsed.body_text(0).as_deref(), Some(body));
    let from = parsed.from().and_then(|from| from.first()).unwrap();
    assert_eq!(from.name(), Some("Магазин"));
    assert!(parsed.message_id().is_some());
}

#[tokio::test]
async fn a_lone_dot_line_in_the_body_does_not_end_the_message() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mailer = SmtpMailer::new(&settings(&sandbox)).unwrap();
    let body = "before\r\n.\r\n..two dots\r\nafter";

    mailer
        .send_text("a@example.com", "dots", body)
        .await
        .unwrap();
    mailer
        .send_text("b@example.com", "second", "reusing the pooled connection")
        .await
        .unwrap();

    let mails = sandbox.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2);
    let parsed = MessageParser::default()
        .parse(mails[0].data.as_bytes())
        .unwrap();
    // SMTP content ends with a line break, so a 7-bit body gains one on the way.
    let expected = format!("{body}\r\n");
    assert_eq!(parsed.body_text(0).as_deref(), Some(expected.as_str()));
    assert_eq!(mails[1].to, ["b@example.com"]);
}

#[tokio::test]
async fn a_subject_cannot_inject_headers() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mailer = SmtpMailer::new(&settings(&sandbox)).unwrap();

    mailer
        .send_text(
            "a@example.com",
            "hi\r\nBcc: evil@example.com\r\n\r\nforged",
            "body",
        )
        .await
        .unwrap();

    let mails = sandbox.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, ["a@example.com"]);
    let parsed = MessageParser::default()
        .parse(mails[0].data.as_bytes())
        .unwrap();
    assert!(parsed.bcc().is_none(), "{}", mails[0].data);
    assert_eq!(parsed.body_text(0).as_deref(), Some("body\r\n"));
}

#[tokio::test]
async fn credentials_are_sent_only_when_both_are_set() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mut settings = settings(&sandbox);
    settings.password = None;
    let mailer = SmtpMailer::new(&settings).unwrap();

    mailer.send_text("a@example.com", "s", "b").await.unwrap();

    let mails = sandbox.wait_for(1, WAIT).await;
    assert_eq!(mails[0].authenticated_as, None);
}

#[tokio::test]
async fn an_oversized_message_is_a_permanent_rejection() {
    let sandbox = SmtpSandbox::start_with_max_size(2048).await.unwrap();
    let mailer = SmtpMailer::new(&settings(&sandbox)).unwrap();

    let error = mailer
        .send_text("a@example.com", "big", &"x".repeat(4096))
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            EmailError::Rejected {
                code: 552,
                permanent: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(sandbox.messages().is_empty());
}

#[tokio::test]
async fn required_starttls_is_never_skipped() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mut settings = settings(&sandbox);
    settings.security = SmtpSecurity::StartTls;
    settings.host = "localhost".into();
    let mailer = SmtpMailer::new(&settings).unwrap();

    let error = mailer
        .send_text("a@example.com", "s", "b")
        .await
        .unwrap_err();

    assert!(matches!(error, EmailError::Connection(_)), "{error:?}");
    assert!(sandbox.messages().is_empty());
}

/// A hand-typed SMTP session.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(sandbox: &SmtpSandbox) -> Client {
        let (read, writer) = TcpStream::connect(sandbox.addr())
            .await
            .unwrap()
            .into_split();
        let mut client = Client {
            reader: BufReader::new(read),
            writer,
        };
        assert!(client.reply().await.starts_with("220 "));
        client
    }

    async fn send(&mut self, raw: &str) {
        self.writer.write_all(raw.as_bytes()).await.unwrap();
    }

    /// Reads one reply, joining the lines of a multi-line one.
    async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(WAIT, self.reader.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            assert!(read > 0, "connection closed after {reply:?}");
            reply.push_str(&line);
            // The fourth byte is '-' on every line of a multi-line reply but the last.
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    async fn expect(&mut self, line: &str, code: &str) {
        let reply = self.command(line).await;
        assert!(
            reply.starts_with(code),
            "{line:?} got {reply:?}, wanted {code}"
        );
    }
}

#[tokio::test]
async fn commands_out_of_sequence_are_refused() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mut client = Client::connect(&sandbox).await;

    client.expect("MAIL FROM:<a@example.com>", "503").await;
    client.expect("RCPT TO:<b@example.com>", "503").await;
    client.expect("DATA", "503").await;
    client.expect("EHLO", "501").await;
    client.expect("FROB", "500").await;
    let ehlo = client.command("EHLO client.example").await;
    for extension in ["8BITMIME", "SIZE ", "PIPELINING", "AUTH PLAIN LOGIN"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    client.expect("RCPT TO:<b@example.com>", "503").await;
    client.expect("MAIL FROM:a@example.com", "501").await;
    client
        .expect("MAIL FROM:<a@example.com> SIZE=999999999999", "552")
        .await;
    client
        .expect("MAIL FROM:<a@example.com> SMTPUTF8", "555")
        .await;
    client
        .expect("MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME", "250")
        .await;
    client.expect("MAIL FROM:<a@example.com>", "503").await;
    client.expect("DATA", "503").await;
    client.expect("RCPT TO:<>", "501").await;
    client.expect("RSET", "250").await;
    client.expect("RCPT TO:<b@example.com>", "503").await;
    client.expect("NOOP", "250").await;
    client.expect("QUIT", "221").await;
    assert!(sandbox.messages().is_empty());
}

#[tokio::test]
async fn data_is_dot_unstuffed_and_ends_only_at_crlf_dot_crlf() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mut client = Client::connect(&sandbox).await;
    client.expect("HELO client.example", "250").await;
    client.expect("MAIL FROM:<>", "250").await;
    client.expect("RCPT TO:<one@example.com>", "250").await;
    client.expect("rcpt to: <two@example.com>", "250").await;
    client.expect("DATA", "354").await;
    // A bare-LF dot is content, not the end of the message (SMTP smuggling).
    client
        .send("Subject: t\r\n\r\n..leading dot\r\nsmuggled\n.\nMAIL FROM:<x@y>\r\n...\r\n.\r\n")
        .await;
    let reply = client.reply().await;
    assert!(reply.starts_with("250 "), "{reply}");
    client.expect("QUIT", "221").await;

    let mails = sandbox.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].from, "");
    assert_eq!(mails[0].to, ["one@example.com", "two@example.com"]);
    assert_eq!(
        mails[0].data,
        "Subject: t\r\n\r\n.leading dot\r\nsmuggled\n.\nMAIL FROM:<x@y>\r\n..\r\n"
    );
    assert_eq!(mails[0].authenticated_as, None);
}

#[tokio::test]
async fn pipelined_commands_get_one_reply_each() {
    let sandbox = SmtpSandbox::start_with_max_size(64).await.unwrap();
    let mut client = Client::connect(&sandbox).await;
    client.expect("EHLO client.example", "250").await;

    client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n").await;
    for code in ["250", "250", "250", "354"] {
        let reply = client.reply().await;
        assert!(reply.starts_with(code), "{reply}");
    }
    client.send(&format!("{}\r\n.\r\n", "y".repeat(100))).await;
    assert!(client.reply().await.starts_with("552"));
    // The refused message left no transaction behind.
    client.expect("RCPT TO:<b@example.com>", "503").await;
    assert!(sandbox.messages().is_empty());
}

#[tokio::test]
async fn auth_login_and_its_errors() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mut client = Client::connect(&sandbox).await;
    client.expect("AUTH LOGIN", "503").await;
    client.expect("EHLO client.example", "250").await;
    client.expect("AUTH CRAM-MD5", "504").await;
    client.expect("AUTH PLAIN not-base64!", "501").await;
    client.expect("AUTH LOGIN", "334").await;
    client.expect("*", "501").await;
    // "operator" and "pass" in base64.
    client.expect("AUTH LOGIN b3BlcmF0b3I=", "334").await;
    client.expect("cGFzcw==", "235").await;
    client.expect("AUTH PLAIN", "503").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("RCPT TO:<b@example.com>", "250").await;
    client.expect("DATA", "354").await;
    client.expect("hello\r\n.", "250").await;

    let mails = sandbox.messages();
    assert_eq!(mails[0].authenticated_as.as_deref(), Some("operator"));
    assert_eq!(mails[0].data, "hello\r\n");
}

#[tokio::test]
async fn dropping_the_sandbox_closes_open_sessions() {
    let sandbox = SmtpSandbox::start().await.unwrap();
    let mut client = Client::connect(&sandbox).await;
    client.expect("EHLO client.example", "250").await;

    drop(sandbox);

    let mut rest = Vec::new();
    // End of stream or a reset both end the session; a live one would trip the timeout.
    let ended = tokio::time::timeout(WAIT, client.reader.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the session outlived its sandbox");
    assert!(rest.is_empty());
}
