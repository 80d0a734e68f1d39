//! Outgoing email through lettre over SMTP, or, without SMTP configured (embedded default),
//! written to the log so a newcomer can still follow invitation links.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How a message left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Accepted by the SMTP server.
    Smtp,
    /// No SMTP configured: the message was written to the log.
    Logged,
}

/// Sends email.
pub enum Mailer {
    /// A real SMTP server.
    Smtp {
        /// The pooled transport.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Sender address.
        from: Mailbox,
    },
    /// Log instead of sending.
    Log,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Log => f.write_str("Mailer::Log"),
        }
    }
}

/// Why mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `SYNCLINE_SMTP_URL` is unusable.
    #[error("invalid SYNCLINE_SMTP_URL: {0}")]
    Url(String),
    /// `SYNCLINE_MAIL_FROM` is not an address.
    #[error("invalid SYNCLINE_MAIL_FROM: {0}")]
    From(String),
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The server refused or could not be reached.
    #[error("SMTP delivery failed: {0}")]
    Send(String),
}

impl Mailer {
    /// SMTP when a URL is given (`smtp://host:port`, `smtps://…`, `?tls=required` for STARTTLS),
    /// otherwise the log.
    pub fn new(smtp_url: Option<&str>, from: &str) -> Result<Mailer, MailError> {
        let Some(url) = smtp_url else {
            return Ok(Mailer::Log);
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Mailer::Smtp { transport, from })
    }

    /// True when messages really leave.
    pub fn delivers(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<Sent, MailError> {
        match self {
            Mailer::Log => {
                tracing::warn!(
                    to,
                    subject,
                    "SYNCLINE_SMTP_URL is not set: this email was not sent; its text follows\n{body}"
                );
                Ok(Sent::Logged)
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = to
                    .parse()
                    .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(body.to_owned())
                    .map_err(|e| MailError::Build(e.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                Ok(Sent::Smtp)
            }
        }
    }
}

/// Alert notifications go out through the same mailer as invitations.
impl syncline_runner::MailTransport for Mailer {
    fn send<'a>(
        &'a self,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            Mailer::send(self, to, subject, body)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
