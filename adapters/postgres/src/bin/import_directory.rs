//! Imports a billing directory CSV into PostgreSQL.
//!
//! Usage: `resident-auth-import-directory <file.csv>` with `DATABASE_URL` set.
//! Migrates the schema first. Exits non-zero, writing every bad line, if the file has
//! errors; the database is then unchanged.

use std::process::ExitCode;

use resident_auth_postgres::{connect, import_directory, migrate, ImportError, PoolConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: resident-auth-import-directory <file.csv>   (DATABASE_URL must be set)");
        return ExitCode::from(2);
    };
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not set");
        return ExitCode::from(2);
    };
    let csv = match std::fs::read_to_string(&path) {
        Ok(csv) => csv,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let pool = match connect(&url, &PoolConfig::default()).await {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = migrate(&pool).await {
        eprintln!("cannot migrate: {e}");
        return ExitCode::FAILURE;
    }
    match import_directory(&pool, &csv).await {
        Ok(report) => {
            println!(
                "imported {path}: {} inserted, {} updated, {} unchanged, {} in the database but not in the file (kept)",
                report.inserted, report.updated, report.unchanged, report.absent
            );
            ExitCode::SUCCESS
        }
        Err(ImportError::Csv(errors)) => {
            for error in &errors.errors {
                eprintln!("{path}:{}: {}", error.line, error.reason);
            }
            eprintln!("nothing imported: {} bad row(s)", errors.errors.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("import failed, nothing imported: {e}");
            ExitCode::FAILURE
        }
    }
}
