//! Outgoing mail: SMTP when `CLAVIS_SMTP_URL` is set (`smtp://host:port` is plain SMTP for a local relay,
//! `smtp://...?tls=required` uses STARTTLS, `smtps://` implicit TLS), otherwise one `.eml` file per message under
//! `$CLAVIS_DATA_DIR/outbox/` so a deployment without mail still shows what it would have sent.

use std::path::PathBuf;

use clavis_core::config::Config;
use clavis_core::{ClavisError, Result};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Outbox { dir: PathBuf, files: AsyncFileTransport<Tokio1Executor> },
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    /// The mailer the configuration asks for; a malformed SMTP URL or From address stops the start.
    pub fn from_config(config: &Config) -> std::result::Result<Mailer, String> {
        let from: Mailbox = config.smtp_from.parse().map_err(|e| format!("smtp_from {:?}: {e}", config.smtp_from))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(Box::new(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| format!("smtp_url: {e}"))?
                    .build(),
            )),
            None => {
                let dir = config.data_dir.join("outbox");
                Transport::Outbox { files: AsyncFileTransport::new(&dir), dir }
            }
        };
        Ok(Mailer { transport, from })
    }

    /// Send a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<()> {
        let to: Mailbox = to.parse().map_err(|_| ClavisError::invalid("email", "not a deliverable address"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| ClavisError::internal("building mail", e))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(|e| ClavisError::internal("sending mail over SMTP", e))?;
            }
            Transport::Outbox { dir, files } => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| ClavisError::internal("creating the outbox", e))?;
                files.send(message).await.map_err(|e| ClavisError::internal("writing mail to the outbox", e))?;
            }
        }
        Ok(())
    }
}
