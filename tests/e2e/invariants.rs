//! The ledger invariants (`referral_tests::invariants`), checked after every end-to-end
//! test (from `TestApp`'s drop).

use sqlx::postgres::PgConnectOptions;

pub use referral_tests::invariants::broken;

/// Checks the rules from a thread of its own (drop cannot await), on a connection of its
/// own, and panics with every broken one.
pub fn assert_hold(options: PgConnectOptions) {
    let checked = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("connect for the invariant check");
            broken(&pool).await
        })
    })
    .join();
    match checked {
        Ok(broken) => assert!(
            broken.is_empty(),
            "ledger invariants broken:\n{}",
            broken.join("\n")
        ),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
