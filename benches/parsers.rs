//! Parser cost per input, typical and worst case, for each value type (the README's performance section).
//!
//! Run: `cargo bench -p resident-auth-benches --bench parsers`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use resident_auth::{AccountNumber, Email, Premises, Surname};

fn bench<T: std::str::FromStr>(c: &mut Criterion, name: &str, inputs: &[(&str, String)]) {
    let mut group = c.benchmark_group(name);
    for (label, input) in inputs {
        group.bench_with_input(
            BenchmarkId::from_parameter(label),
            input.as_str(),
            |b, input| {
                b.iter(|| black_box(black_box(input).parse::<T>().is_ok()));
            },
        );
    }
    group.finish();
}

fn parsers(c: &mut Criterion) {
    bench::<AccountNumber>(
        c,
        "account_number",
        &[
            ("typical", "7800000000001".into()),
            ("bill_spacing", "78 0000 0000 001".into()),
            // Worst case: a long run of digits and separators counted to the end.
            ("worst_long", "7-".repeat(64)),
            ("rejected_letter", "78000000000x1".into()),
        ],
    );
    bench::<Premises>(
        c,
        "premises",
        &[
            ("typical", "12".into()),
            ("parking_slash", "123/456П".into()),
            ("lenient", " 123 / 456 п ".into()),
            ("worst_zeros", format!("{}1", "0".repeat(64))),
            ("rejected_letter", "12А".into()),
        ],
    );
    bench::<Surname>(
        c,
        "surname",
        &[
            ("typical", "Иванов".into()),
            ("double", "Салтыков-Щедрин".into()),
            ("worst_100_chars", "Я".repeat(100)),
            ("rejected_initials", "Иванов И.И.".into()),
        ],
    );
    bench::<Email>(
        c,
        "email",
        &[
            ("typical", "resident@example.org".into()),
            ("mixed_case_padded", "  Ivan.Petrov@Example.ORG ".into()),
            ("idn", "житель@кабинет-жителя.рф".into()),
            (
                "worst_254_chars",
                format!(
                    "{}@{}.{}.{}.org",
                    "a".repeat(64),
                    "b".repeat(63),
                    "c".repeat(63),
                    "d".repeat(57)
                ),
            ),
            ("rejected_whitespace", "a b@example.org".into()),
        ],
    );
}

criterion_group!(benches, parsers);
criterion_main!(benches);
