//! IMAP protocol without sync policy: transports, login, and the commands the engine needs.
//! The only code that touches async-imap or a socket. It knows commands, responses, literals,
//! tags, capabilities and UIDs — not state files, excludes, subfolders, leavers or dry runs.

pub mod error;
pub mod inspect;
pub mod session;
pub mod store;
pub mod tls;
pub mod transport;
pub mod wire;

pub use error::{ImapError, Reach};
pub use session::{AuthMechanism, Credentials, ListedMailbox, Session};
pub use tls::TlsSettings;
pub use transport::{Endpoint, Security, Timeouts};

/// Logs out of every connection pair at once (each LOGOUT waits for the server's answer).
pub async fn logout_all(pairs: Vec<(Session, Session)>) {
    futures::future::join_all(pairs.into_iter().map(|(a, b)| async move {
        tokio::join!(a.logout(), b.logout());
    }))
    .await;
}
