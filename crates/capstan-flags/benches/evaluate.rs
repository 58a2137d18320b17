//! Evaluation latency with the context built once, as the server does per request.

use std::hint::black_box;
use std::time::Duration;

use capstan_flags::{CompiledEnvironment, EvaluationContext, FlagdDocument};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_700_000_000;

fn flag(targeting: Value) -> Value {
    json!({
        "state": "ENABLED",
        "variants": {"on": true, "off": false, "a": "a", "b": "b", "c": "c", "d": "d", "e": "e"},
        "defaultVariant": "off",
        "targeting": targeting,
    })
}

fn environment() -> CompiledEnvironment {
    let mut flags = Map::new();
    // Filler flags so the key lookup works on a realistically sized table.
    for index in 0..200 {
        flags.insert(format!("filler-flag-{index}"), flag(json!({})));
    }
    flags.insert("no-rules".into(), flag(json!({})));
    flags.insert(
        "one-rule".into(),
        flag(json!({"if": [{"in": [{"var": "userId"}, ["7"]]}, "on", "off"]})),
    );
    flags.insert(
        "two-rules".into(),
        flag(json!({"if": [
            {"and": [{"in": [{"var": "userId"}, ["7"]]}, {"in": [{"var": "country"}, ["NO", "SE"]]}]},
            "on",
            "off"
        ]})),
    );
    flags.insert(
        "five-rules".into(),
        flag(json!({"if": [
            {"in": [{"var": "userId"}, ["1", "2", "3"]]}, "a",
            {"==": [{"var": "country"}, "DK"]}, "b",
            {"starts_with": [{"var": "email"}, "admin@"]}, "c",
            {"sem_ver": [{"var": "appVersion"}, ">=", "3.0.0"]}, "d",
            {">": [{"var": "age"}, 65]}, "e",
            "off"
        ]})),
    );
    flags.insert(
        "split".into(),
        flag(json!({"fractional": [["a", 33], ["b", 33], ["c", 34]]})),
    );
    let document = FlagdDocument::parse(&json!({"flags": flags})).expect("benchmark flags parse");
    CompiledEnvironment::compile(&document).expect("benchmark flags compile")
}

fn context() -> EvaluationContext {
    let attributes = json!({
        "userId": "7",
        "country": "NO",
        "email": "user@example.com",
        "appVersion": "2.4.1",
        "age": 30,
        "plan": "pro",
        "device": "ios",
        "locale": "nb-NO",
    });
    let Value::Object(attributes) = attributes else {
        unreachable!("an object literal")
    };
    EvaluationContext::new(Some("user-7@example.com".into()), attributes)
}

fn evaluate(criterion: &mut Criterion) {
    let environment = environment();
    let context = context();
    let mut group = criterion.benchmark_group("evaluate");
    for (name, key, expected) in [
        ("flag without rules", "no-rules", "off"),
        ("one in rule", "one-rule", "on"),
        ("two rules", "two-rules", "on"),
        ("five non-matching rules", "five-rules", "off"),
        ("three-way fractional", "split", ""),
    ] {
        let resolution = environment.evaluate(key, &context, NOW);
        assert!(resolution.error.is_none(), "{key}: {:?}", resolution.error);
        if !expected.is_empty() {
            assert_eq!(resolution.variant, Some(expected), "{key}");
        }
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                environment
                    .evaluate(black_box(key), black_box(&context), NOW)
                    .variant
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = evaluate
}
criterion_main!(benches);
