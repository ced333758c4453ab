//! The pools of the api and the worker (`referral_core::pool`) against a real server.
#![allow(clippy::unwrap_used)] // test: a failure is the test failing

use referral_core::pool::{pool_options, tcp_nodelay};
use sqlx::PgPool;

/// Without `TCP_NODELAY`, a statement written in more than one piece waits 40 ms for the
/// server's delayed ACK: a few hundred jobs' acknowledgement ran at a fifth of its speed.
#[sqlx::test(migrations = false)]
async fn connections_of_our_pools_send_without_waiting_for_acks(plain: PgPool) {
    let ours = pool_options()
        .max_connections(2)
        .connect_with((*plain.connect_options()).clone())
        .await
        .unwrap();
    let mut conn = ours.acquire().await.unwrap();
    let mut control = plain.acquire().await.unwrap();
    let Some(control_nodelay) = tcp_nodelay(&mut control).await.unwrap() else {
        panic!("DATABASE_URL must name a TCP address for this test (Unix sockets have no Nagle)");
    };
    assert!(
        !control_nodelay,
        "sqlx sets TCP_NODELAY itself again: core::pool::disable_nagle can go"
    );
    assert_eq!(tcp_nodelay(&mut conn).await.unwrap(), Some(true));
}
