//! Database connection pools of the api and the worker: process setup, not data access.

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::PgPoolOptions;

/// A connection idle for longer than this is checked (one round trip) before use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pool settings for the api and the worker.
///
/// sqlx pings every connection before handing it out, a round trip per request, on top
/// of the ping it sends when a connection comes back (which closes a broken one). A
/// connection used within the last second is known to be alive, so only one idle longer
/// is pinged before use. A connection that died within that second (the server
/// restarted) fails its statement, which the caller answers as the database being
/// unavailable, and is closed on its way back.
///
/// Each new TCP connection gets `TCP_NODELAY` ([`disable_nagle`]).
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .after_connect(|conn, _| Box::pin(disable_nagle(conn)))
}

/// Turns Nagle's algorithm off on `conn`'s socket, as libpq and sqlx before 0.9 do.
///
/// sqlx 0.9.0 no longer sets `TCP_NODELAY` (sqlx issue #4335, fixed after that release).
/// Without it a statement sent in more than one write (an acknowledgement of a few
/// hundred jobs, a large group of clicks) waits for the server's delayed ACK, 40 ms, for
/// its last piece. sqlx does not hand out its socket, so the socket is found among the
/// process's descriptors by the ports the server reports for this connection and its
/// option set on a duplicate (same socket). Best effort: a Unix socket, a proxy that
/// changes the ports, or a system that refuses `pidfd_getfd` leaves the connection as
/// sqlx made it, which works, only slower for large statements.
pub async fn disable_nagle(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let Some(ports) = connection_ports(conn).await? else {
        return Ok(());
    };
    match socket::with_connection_socket(ports, |fd| {
        rustix::net::sockopt::set_tcp_nodelay(fd, true)
    }) {
        Ok(Some(())) => {}
        Ok(None) => tracing::debug!(?ports, "database socket not found; TCP_NODELAY left off"),
        Err(error) => tracing::debug!(%error, "could not set TCP_NODELAY on a database socket"),
    }
    Ok(())
}

/// Whether `conn`'s socket has `TCP_NODELAY` set; `None` when it is not a TCP socket of
/// this process (see [`disable_nagle`]).
pub async fn tcp_nodelay(conn: &mut PgConnection) -> Result<Option<bool>, sqlx::Error> {
    let Some(ports) = connection_ports(conn).await? else {
        return Ok(None);
    };
    Ok(
        socket::with_connection_socket(ports, |fd| rustix::net::sockopt::tcp_nodelay(fd))
            .ok()
            .flatten(),
    )
}

/// (our port, the server's port) of a TCP connection, as the server sees them; `None`
/// over a Unix socket.
async fn connection_ports(conn: &mut PgConnection) -> Result<Option<(u16, u16)>, sqlx::Error> {
    let (client_port, server_port): (Option<i32>, Option<i32>) =
        sqlx::query_as("select inet_client_port(), inet_server_port()")
            .fetch_one(conn)
            .await?;
    Ok(client_port.zip(server_port).and_then(|(client, server)| {
        Some((u16::try_from(client).ok()?, u16::try_from(server).ok()?))
    }))
}

#[cfg(target_os = "linux")]
mod socket {
    use std::net::SocketAddr;
    use std::os::fd::{AsFd, BorrowedFd};

    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    /// Runs `apply` on (a duplicate of) this process's TCP socket whose local port is
    /// `ports.0` and whose peer's port is `ports.1`. `Ok(None)`: no such socket.
    ///
    /// Descriptors are read from `/proc/self/fd` and duplicated with `pidfd_getfd`, which
    /// returns a descriptor of our own: no borrowing of a number some other part of the
    /// process owns (and might close meanwhile).
    pub(super) fn with_connection_socket<T>(
        ports: (u16, u16),
        apply: impl FnOnce(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> std::io::Result<Option<T>> {
        let this_process = pidfd_open(getpid(), PidfdFlags::empty())?;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let entry = entry?;
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
            let Some(number) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if !is_socket {
                continue;
            }
            // Closed since it was listed: not ours to look at any more.
            let Ok(fd) = pidfd_getfd(&this_process, number, PidfdGetfdFlags::empty()) else {
                continue;
            };
            let local = rustix::net::getsockname(&fd)
                .ok()
                .and_then(|a| SocketAddr::try_from(a).ok());
            let peer = rustix::net::getpeername(&fd)
                .ok()
                .flatten()
                .and_then(|a| SocketAddr::try_from(a).ok());
            if let (Some(local), Some(peer)) = (local, peer)
                && (local.port(), peer.port()) == ports
            {
                return Ok(Some(apply(fd.as_fd())?));
            }
        }
        Ok(None)
    }
}

#[cfg(not(target_os = "linux"))]
mod socket {
    /// Finding sqlx's socket needs Linux's `pidfd_getfd`; elsewhere Nagle stays on.
    pub(super) fn with_connection_socket<T>(
        _ports: (u16, u16),
        _apply: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> std::io::Result<Option<T>> {
        Ok(None)
    }
}
