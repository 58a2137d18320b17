//! Capstan's engine and Unleash's yggdrasil side by side, on rules that mean the same in
//! both, so a regression against the engine Unleash ships in its SDKs shows up in one run.
//!
//! Both engines hold the same 200 filler flags next to the measured ones, so each looks a
//! key up in a realistically sized table. Contexts and engine state are built once; the
//! timed closure does one evaluation through the entry point each engine's SDKs call.
//!
//! How the cases map:
//!
//! | case                    | Capstan (flagd targeting)                         | yggdrasil (client features)                                   |
//! |-------------------------|---------------------------------------------------|---------------------------------------------------------------|
//! | flag without rules      | no targeting, `defaultVariant: "on"`              | enabled, one `default` strategy                               |
//! | one constraint          | `if` `in(userId, ["7"])`                          | `default` strategy, `userId IN ["7"]`                         |
//! | two constraints         | `if` `and` of `in(userId)`, `in(country)`         | `default` strategy with both constraints (constraints AND)    |
//! | five non-matching rules | `if` chain of five conditions, each serving `on`  | five `default` strategies with one constraint each (OR)       |
//! | three-way split         | `fractional` on `userId`, 33/33/34                | feature variants 33/33/34 with stickiness `userId`            |
//!
//! The five rules pair up as `in(userId, [1,2,3])` with `IN`, `==(country, "DK")` with
//! `IN ["DK"]` (Unleash has no string equality operator), `starts_with(email, "admin@")`
//! with `STR_STARTS_WITH`, `sem_ver(appVersion, ">=", "3.0.0")` with `SEMVER_GTE` and
//! `>(age, 65)` with `NUM_GT`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use capstan_flags::{CompiledEnvironment, EvaluationContext, FlagdDocument};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use unleash_yggdrasil::state::EnrichedContext;
use unleash_yggdrasil::{ClientFeatures, Context, EngineState, UpdateMessage};

const NOW: i64 = 1_700_000_000;
const FILLER_FLAGS: usize = 200;
const SPLIT_VARIANTS: [&str; 3] = ["a", "b", "c"];
const SPLIT_SHARES: [f64; 3] = [0.33, 0.33, 0.34];

/// What both engines must serve for a case before it is timed.
#[derive(Clone, Copy)]
enum Expected {
    Enabled(bool),
    /// The two engines hash different strings with different seeds, so for a split they
    /// agree on the shares of a population, not on which variant one user gets.
    Split,
}

struct Case {
    name: &'static str,
    flag_key: &'static str,
    expected: Expected,
}

const CASES: [Case; 5] = [
    Case {
        name: "flag without rules",
        flag_key: "no-rules",
        expected: Expected::Enabled(true),
    },
    Case {
        name: "one constraint",
        flag_key: "one-constraint",
        expected: Expected::Enabled(true),
    },
    Case {
        name: "two constraints",
        flag_key: "two-constraints",
        expected: Expected::Enabled(true),
    },
    Case {
        name: "five non-matching rules",
        flag_key: "five-rules",
        expected: Expected::Enabled(false),
    },
    Case {
        name: "three-way split",
        flag_key: "split",
        expected: Expected::Split,
    },
];

fn capstan_flag(default_variant: &str, targeting: Value) -> Value {
    json!({
        "state": "ENABLED",
        "variants": {"on": true, "off": false, "a": "a", "b": "b", "c": "c"},
        "defaultVariant": default_variant,
        "targeting": targeting,
    })
}

fn capstan_environment() -> CompiledEnvironment {
    let mut flags = Map::new();
    for index in 0..FILLER_FLAGS {
        flags.insert(
            format!("filler-flag-{index}"),
            capstan_flag("on", json!({})),
        );
    }
    flags.insert("no-rules".into(), capstan_flag("on", json!({})));
    flags.insert(
        "one-constraint".into(),
        capstan_flag(
            "off",
            json!({"if": [{"in": [{"var": "userId"}, ["7"]]}, "on", "off"]}),
        ),
    );
    flags.insert(
        "two-constraints".into(),
        capstan_flag(
            "off",
            json!({"if": [
                {"and": [{"in": [{"var": "userId"}, ["7"]]}, {"in": [{"var": "country"}, ["NO", "SE"]]}]},
                "on",
                "off"
            ]}),
        ),
    );
    flags.insert(
        "five-rules".into(),
        capstan_flag(
            "off",
            json!({"if": [
                {"in": [{"var": "userId"}, ["1", "2", "3"]]}, "on",
                {"==": [{"var": "country"}, "DK"]}, "on",
                {"starts_with": [{"var": "email"}, "admin@"]}, "on",
                {"sem_ver": [{"var": "appVersion"}, ">=", "3.0.0"]}, "on",
                {">": [{"var": "age"}, 65]}, "on",
                "off"
            ]}),
        ),
    );
    flags.insert(
        "split".into(),
        capstan_flag(
            "off",
            json!({"fractional": [{"var": "userId"}, ["a", 33], ["b", 33], ["c", 34]]}),
        ),
    );
    let document = FlagdDocument::parse(&json!({"flags": flags})).expect("Capstan flags parse");
    CompiledEnvironment::compile(&document).expect("Capstan flags compile")
}

fn constraint(context_name: &str, operator: &str, values: &[&str]) -> Value {
    json!({"contextName": context_name, "operator": operator, "values": values})
}

fn single_value_constraint(context_name: &str, operator: &str, value: &str) -> Value {
    json!({"contextName": context_name, "operator": operator, "value": value})
}

fn default_strategy(constraints: Vec<Value>) -> Value {
    json!({"name": "default", "parameters": {}, "constraints": constraints})
}

fn yggdrasil_feature(name: &str, strategies: Vec<Value>) -> Value {
    json!({"name": name, "enabled": true, "strategies": strategies})
}

fn yggdrasil_engine() -> EngineState {
    let mut features: Vec<Value> = (0..FILLER_FLAGS)
        .map(|index| {
            yggdrasil_feature(
                &format!("filler-flag-{index}"),
                vec![default_strategy(vec![])],
            )
        })
        .collect();
    features.push(yggdrasil_feature(
        "no-rules",
        vec![default_strategy(vec![])],
    ));
    features.push(yggdrasil_feature(
        "one-constraint",
        vec![default_strategy(vec![constraint("userId", "IN", &["7"])])],
    ));
    features.push(yggdrasil_feature(
        "two-constraints",
        vec![default_strategy(vec![
            constraint("userId", "IN", &["7"]),
            constraint("country", "IN", &["NO", "SE"]),
        ])],
    ));
    features.push(yggdrasil_feature(
        "five-rules",
        vec![
            default_strategy(vec![constraint("userId", "IN", &["1", "2", "3"])]),
            default_strategy(vec![constraint("country", "IN", &["DK"])]),
            default_strategy(vec![constraint("email", "STR_STARTS_WITH", &["admin@"])]),
            default_strategy(vec![single_value_constraint(
                "appVersion",
                "SEMVER_GTE",
                "3.0.0",
            )]),
            default_strategy(vec![single_value_constraint("age", "NUM_GT", "65")]),
        ],
    ));
    let mut split = yggdrasil_feature("split", vec![default_strategy(vec![])]);
    split["variants"] = SPLIT_VARIANTS
        .iter()
        .zip([33, 33, 34])
        .map(|(name, weight)| json!({"name": name, "weight": weight, "stickiness": "userId"}))
        .collect();
    features.push(split);

    let client_features: ClientFeatures =
        serde_json::from_value(json!({"version": 2, "features": features}))
            .expect("yggdrasil client features deserialize");
    // The start time only stamps metrics buckets, which this benchmark never reads, so a
    // fixed one (the epoch) keeps the setup off the wall clock.
    let engine = EngineState::initial_state(Default::default());
    let warnings = engine.take_state(UpdateMessage::FullResponse(client_features));
    assert!(
        warnings.is_none(),
        "yggdrasil failed to compile a feature: {warnings:?}"
    );
    engine
}

/// The user's attributes, the one source both engines' contexts are built from.
fn attributes(user_id: &str) -> Map<String, Value> {
    let attributes = json!({
        "userId": user_id,
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
    attributes
}

fn capstan_context(attributes: &Map<String, Value>) -> EvaluationContext {
    let user_id = attributes["userId"].as_str().expect("userId is a string");
    EvaluationContext::new(
        Some(format!("user-{user_id}@example.com")),
        attributes.clone(),
    )
}

/// Unleash's context holds only strings, and the user id in a field of its own.
fn yggdrasil_context(attributes: &Map<String, Value>) -> Context {
    let mut user_id = None;
    let mut properties = HashMap::new();
    for (name, value) in attributes {
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if name == "userId" {
            user_id = Some(text);
        } else {
            properties.insert(name.clone(), text);
        }
    }
    Context {
        user_id,
        properties: Some(properties),
        ..Context::default()
    }
}

fn capstan_variant<'a>(
    environment: &'a CompiledEnvironment,
    context: &EvaluationContext,
) -> &'a str {
    let resolution = environment.evaluate("split", context, NOW);
    assert!(resolution.error.is_none(), "split: {:?}", resolution.error);
    resolution.variant.expect("Capstan split serves a variant")
}

fn yggdrasil_variant(engine: &EngineState, context: &Context) -> String {
    let enriched = EnrichedContext::from(context, "split", None);
    let variant = engine
        .check_variant(&enriched)
        .expect("yggdrasil knows the split");
    assert!(variant.enabled, "yggdrasil split serves a variant");
    variant.name
}

/// Checks that each of the five rules matches in both engines when the user meets it, so
/// the non-matching case is not "off" only because a rule could never match in one engine.
fn assert_equivalent_five_rules(environment: &CompiledEnvironment, engine: &EngineState) {
    let one_rule_met_each = [
        ("userId", json!("2")),
        ("country", json!("DK")),
        ("email", json!("admin@example.com")),
        ("appVersion", json!("3.0.0")),
        ("age", json!(66)),
    ];
    for (name, value) in one_rule_met_each {
        let mut attributes = attributes("7");
        attributes.insert(name.into(), value);
        let capstan = environment.evaluate("five-rules", &capstan_context(&attributes), NOW);
        assert_eq!(
            capstan.value,
            Some(&Value::Bool(true)),
            "Capstan, {name} met"
        );
        let yggdrasil_context = yggdrasil_context(&attributes);
        let enriched = EnrichedContext::from(&yggdrasil_context, "five-rules", None);
        assert_eq!(
            engine.check_enabled(&enriched),
            Some(true),
            "yggdrasil, {name} met"
        );
    }
}

/// Checks that both engines split a population of users 33/33/34, which is what the
/// split case promises; the benchmarked user is one draw from it.
fn assert_equivalent_splits(environment: &CompiledEnvironment, engine: &EngineState) {
    const USERS: usize = 20_000;
    let mut capstan_counts = [0_usize; 3];
    let mut yggdrasil_counts = [0_usize; 3];
    for user in 0..USERS {
        let attributes = attributes(&user.to_string());
        let capstan = capstan_variant(environment, &capstan_context(&attributes));
        let yggdrasil = yggdrasil_variant(engine, &yggdrasil_context(&attributes));
        for (index, variant) in SPLIT_VARIANTS.iter().enumerate() {
            capstan_counts[index] += usize::from(capstan == *variant);
            yggdrasil_counts[index] += usize::from(yggdrasil == *variant);
        }
    }
    for (engine_name, counts) in [("Capstan", capstan_counts), ("yggdrasil", yggdrasil_counts)] {
        assert_eq!(
            counts.iter().sum::<usize>(),
            USERS,
            "{engine_name} served other variants"
        );
        for ((variant, share), count) in SPLIT_VARIANTS.iter().zip(SPLIT_SHARES).zip(counts) {
            let observed = count as f64 / USERS as f64;
            // Two percentage points is over six standard deviations at this population.
            assert!(
                (observed - share).abs() < 0.02,
                "{engine_name} gave variant {variant} a share of {observed:.3}, not {share}"
            );
        }
    }
}

fn versus_yggdrasil(criterion: &mut Criterion) {
    let environment = capstan_environment();
    let engine = yggdrasil_engine();
    let attributes = attributes("7");
    let capstan_context = capstan_context(&attributes);
    let yggdrasil_context = yggdrasil_context(&attributes);
    assert_equivalent_five_rules(&environment, &engine);
    assert_equivalent_splits(&environment, &engine);

    for case in CASES {
        let key = case.flag_key;
        // yggdrasil's SDKs hand the engine a context that carries the flag's name; it only
        // borrows from the user's context, so it is built here once, like Capstan's.
        let enriched = EnrichedContext::from(&yggdrasil_context, key, None);
        let resolution = environment.evaluate(key, &capstan_context, NOW);
        assert!(resolution.error.is_none(), "{key}: {:?}", resolution.error);

        let mut group = criterion.benchmark_group(case.name);
        match case.expected {
            Expected::Enabled(expected) => {
                assert_eq!(
                    resolution.value,
                    Some(&Value::Bool(expected)),
                    "Capstan {key}"
                );
                assert_eq!(
                    engine.check_enabled(&enriched),
                    Some(expected),
                    "yggdrasil {key}"
                );
                group.bench_function("capstan", |bencher| {
                    bencher.iter(|| {
                        environment
                            .evaluate(black_box(key), black_box(&capstan_context), NOW)
                            .value
                    })
                });
                group.bench_function("yggdrasil", |bencher| {
                    bencher.iter(|| engine.check_enabled(black_box(&enriched)))
                });
            }
            Expected::Split => {
                assert!(SPLIT_VARIANTS.contains(&capstan_variant(&environment, &capstan_context)));
                assert!(
                    SPLIT_VARIANTS
                        .contains(&yggdrasil_variant(&engine, &yggdrasil_context).as_str())
                );
                group.bench_function("capstan", |bencher| {
                    bencher.iter(|| {
                        environment
                            .evaluate(black_box(key), black_box(&capstan_context), NOW)
                            .variant
                    })
                });
                group.bench_function("yggdrasil", |bencher| {
                    bencher.iter(|| engine.check_variant(black_box(&enriched)))
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = versus_yggdrasil
}
criterion_main!(benches);
