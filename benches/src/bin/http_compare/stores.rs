//! `--stores`: ours on each store beside the axum no-op ceiling.

use super::*;

/// The axum no-op handler saturated: the ceiling ours is set beside.
pub(super) async fn axum_noop_ceiling(options: &Options) -> Load {
    let noop = start_noop_axum().await;
    saturate(options.clients, options.seconds, {
        let target = Target::new(Kind::Ours, noop.base.clone());
        move |_, _| {
            let target = target.clone();
            async move { target.noop().await }
        }
    })
    .await
}

/// `--stores`: session checks and logins of ours on each store beside the axum no-op, the
/// rows run twice in turn (no-op, memory, SQLite, PostgreSQL; again), each ratio from its
/// own round.
pub(super) async fn stores_beside_noop(options: &Options, residents: usize) {
    println!(
        "| round | store | session checks/s | ÷ no-op (that round) | session p99 | logins/s |"
    );
    println!("|---|---|---|---|---|---|");
    let database = if options.postgres {
        Some(api_suite::services::fresh_database().await)
    } else {
        None
    };
    for round in 1..=2 {
        let noop = axum_noop_ceiling(options).await;
        println!(
            "| {round} | axum no-op | {:.0} | 1.00 | {} | — |",
            noop.per_second,
            ms(noop.p99)
        );
        let mut stores = vec![("memory", OursOn::Memory), ("SQLite file", OursOn::Sqlite)];
        if let Some(url) = &database {
            stores.push(("PostgreSQL", OursOn::Postgres(url)));
        }
        for (name, on) in stores {
            let figures = ours_on(options, on, residents).await;
            println!(
                "| {round} | {name} | {:.0} | {:.2} | {} | {:.1} |",
                figures.sessions.per_second,
                figures.sessions.per_second / noop.per_second,
                ms(figures.sessions.p99),
                figures.logins.per_second
            );
        }
    }
}
