//! The follower: keeps this replica's set equal to the database's.
//!
//! NOTIFY is only a wake-up (a notification is lost when the listening connection drops at
//! the wrong moment), so the current row is read on every notification, after every
//! (re)connect (LISTEN first, then read: nothing committed in between is missed), and on a
//! periodic poll. A lost connection is retried at once, then with a backoff doubling from
//! 100 ms up to the configured cap.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::schema::{self, CHANNEL, DbError};
use super::{Session, Shared, StoreError};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Runs until the store is dropped (which aborts this task).
pub(super) async fn run(shared: Arc<Shared>, first: Option<Session>) {
    let mut next = first;
    let mut connected_before = next.is_some();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut session = match next.take() {
            Some(session) => session,
            None => match shared.connect("follower").await {
                Ok(session) => {
                    if connected_before {
                        shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    connected_before = true;
                    backoff = FIRST_BACKOFF;
                    session
                }
                Err(err) => {
                    tracing::debug!(error = %err, retry_in = ?backoff, "key store follower cannot connect");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(shared.settings.max_backoff);
                    continue;
                }
            },
        };
        let err = follow(&shared, &mut session).await;
        tracing::info!(error = %err, "key store follower lost its connection; reconnecting");
    }
}

/// Follows through one connection until it fails.
async fn follow(shared: &Shared, session: &mut Session) -> StoreError {
    let listen = format!("LISTEN {CHANNEL}");
    let client = &session.client;
    if let Err(err) = shared
        .exchange(async { client.batch_execute(&listen).await.map_err(DbError::from) })
        .await
    {
        return err;
    }
    if let Err(err) = shared.sync(client).await {
        return err;
    }
    let every = shared.settings.poll_interval;
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = session.notifications.recv() => {
                if message.is_none() {
                    return shared.down("the listening connection ended".into());
                }
                let mut received = 1;
                while session.notifications.try_recv().is_ok() {
                    received += 1;
                }
                shared.notifications.fetch_add(received, Ordering::Relaxed);
            }
            _ = poll.tick() => {
                shared.polls.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Err(err) = shared.sync(&session.client).await {
            return err;
        }
    }
}

impl Shared {
    /// Reads the current set and installs it if it is not what we serve.
    pub(super) async fn sync(&self, client: &tokio_postgres::Client) -> Result<(), StoreError> {
        let _install = self.install.lock().await;
        let set = self.exchange(schema::read_current(client)).await?;
        self.mark_up();
        self.install_locked(set).await;
        Ok(())
    }
}
