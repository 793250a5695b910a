//! The PostgreSQL store's link to the database: connections (the whole connect bounded by
//! the connect timeout, each named in `application_name` by its purpose, its messages and
//! notifications driven by a task of its own), one exchange at a time within the exchange
//! timeout, and the store's health: which errors are an outage (reachable = false, since when)
//! and which are not (authentication, TLS verification, schema).

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client};

use super::schema::{self, DbError};
use super::{Shared, StoreError};

/// A connection and the notifications it receives (closed when the connection ends).
pub(super) struct Session {
    pub client: Client,
    pub notifications: mpsc::UnboundedReceiver<String>,
}

impl Shared {
    /// A new connection, its messages driven by a task of its own. `purpose` ("writer",
    /// "follower") is appended to the application name, so `pg_stat_activity` tells them apart.
    pub(super) async fn connect_only(&self, purpose: &str) -> Result<Session, StoreError> {
        let mut config = self.settings.config.clone();
        let name = config.get_application_name().unwrap_or("resigner");
        config.application_name(format!("{name} {purpose}"));
        let attempt = config.connect(self.settings.tls.clone());
        let (client, connection) =
            match tokio::time::timeout(self.settings.connect_timeout, attempt).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(err)) => return Err(self.classify(DbError::Pg(err))),
                Err(_) => {
                    return Err(self.down(format!(
                        "no connection within the connect timeout ({:?})",
                        self.settings.connect_timeout
                    )));
                }
            };
        let (notify, notifications) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut connection = connection;
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let _ = notify.send(n.payload().to_string());
                    }
                    Some(Ok(AsyncMessage::Notice(notice))) => {
                        tracing::debug!(notice = %notice, "PostgreSQL notice");
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        tracing::debug!(error = %describe(&err), "PostgreSQL connection ended");
                        return;
                    }
                    None => return,
                }
            }
        });
        Ok(Session {
            client,
            notifications,
        })
    }

    /// A connection with the schema migrated.
    pub(super) async fn connect(&self, purpose: &str) -> Result<Session, StoreError> {
        let mut session = self.connect_only(purpose).await?;
        if !self.migrated.load(Ordering::Acquire) {
            self.migrate(&mut session.client).await?;
        }
        Ok(session)
    }

    pub(super) async fn migrate(&self, client: &mut Client) -> Result<Vec<i32>, StoreError> {
        let applied = self.exchange(schema::migrate(client)).await?;
        if !applied.is_empty() {
            tracing::info!(store = %self.settings.location, migrations = ?applied, "key store schema migrated");
        }
        self.migrated.store(true, Ordering::Release);
        Ok(applied)
    }

    /// Runs one exchange with the database within the exchange timeout.
    pub(super) async fn exchange<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, DbError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.settings.exchange_timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.classify(err)),
            Err(_) => Err(self.down(format!(
                "no answer within {:?}",
                self.settings.exchange_timeout
            ))),
        }
    }

    pub(super) fn mark_up(&self) {
        if let Ok(mut health) = self.health.lock() {
            if !health.reachable && health.unreachable_since.is_some() {
                tracing::info!(store = %self.settings.location, "key store database reachable again");
            }
            health.reachable = true;
            health.unreachable_since = None;
            health.last_error = None;
        }
    }

    /// Records an outage and returns it as an error.
    pub(super) fn down(&self, message: String) -> StoreError {
        if let Ok(mut health) = self.health.lock() {
            if health.reachable || health.unreachable_since.is_none() {
                tracing::warn!(store = %self.settings.location, error = %message, "key store database unreachable");
                health.unreachable_since = Some(crate::jose::time::now_unix());
            }
            health.reachable = false;
            health.last_error = Some(message.clone());
        }
        StoreError::Unavailable {
            location: self.settings.location.clone(),
            message,
        }
    }

    fn classify(&self, err: DbError) -> StoreError {
        let message = match &err {
            DbError::Pg(pg) => describe(pg),
            DbError::Schema(text) => text.clone(),
        };
        match err {
            DbError::Pg(pg) if is_outage(&pg) => self.down(message),
            _ => {
                if let Ok(mut health) = self.health.lock() {
                    health.last_error = Some(message.clone());
                }
                StoreError::Backend {
                    location: self.settings.location.clone(),
                    message,
                }
            }
        }
    }
}

/// Errors that waiting may cure: the connection, the server shutting down or starting up,
/// too many connections, a statement timeout. Authentication, TLS verification, permissions
/// and schema errors are not.
fn is_outage(err: &tokio_postgres::Error) -> bool {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08")
            || code.starts_with("53")
            || matches!(code, "57P01" | "57P02" | "57P03" | "57014");
    }
    // A certificate the settings refuse (rustls reports it inside an io::Error).
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let wrapped = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|e| e.is::<rustls::Error>());
        if wrapped || inner.is::<rustls::Error>() {
            return false;
        }
        source = inner.source();
    }
    let shown = err.to_string();
    !(shown.starts_with("authentication") || shown.starts_with("invalid co"))
}

/// The error and its sources, one line.
fn describe(err: &tokio_postgres::Error) -> String {
    crate::http::client::error_chain(err)
}
