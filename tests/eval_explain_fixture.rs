//! `explain::eval` on the hand-written fixture in tests/fixtures/explanations/: every expected
//! number below is derived by hand in the comments from the fixture files.

use std::path::{Path, PathBuf};

use prism_explorer::data::{Dataset, DatasetBuilder, Feature, Interaction, Item, Part, Reference};
use prism_explorer::explain::eval::{evaluate, parse_rows, read_rows, Options, Report};
use prism_explorer::explain::Matcher;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explanations").join(name)
}

/// Reads the fixture's generic-JSONL dataset (docs/DATA_FORMATS.md) directly, so this test does
/// not depend on the loaders.
fn load_fixture() -> Dataset {
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(fixture("dataset").join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut b = DatasetBuilder::new("generic-jsonl");
    for v in read("items.jsonl") {
        let mut features = Vec::new();
        for (kind, values) in v["features"].as_object().unwrap() {
            for value in values.as_array().unwrap() {
                features.push(Feature::new(kind.as_str(), value.as_str().unwrap()));
            }
        }
        b.set_item(Item {
            id: v["item"].as_str().unwrap().to_owned(),
            title: v["title"].as_str().unwrap().to_owned(),
            year: v["year"].as_i64().map(|y| y as i32),
            features,
        });
    }
    for v in read("interactions.jsonl") {
        let user = b.intern_user(v["user"].as_str().unwrap());
        let item = b.intern_item(v["item"].as_str().unwrap());
        b.push_interaction(Interaction {
            user,
            item,
            rating: v["rating"].as_f64().unwrap() as f32,
            timestamp: v["timestamp"].as_i64().unwrap(),
            reference: v["reference"]
                .as_str()
                .map(|text| Box::new(Reference { text: text.to_owned(), noisy: false })),
        });
    }
    b.build()
}

fn options(part: Part) -> Options {
    Options { part, history_len: 50, models: Vec::new(), limit: None }
}

fn run(rows_file: &str, options: &Options) -> anyhow::Result<Report> {
    let dataset = load_fixture();
    let matcher = Matcher::new(&dataset);
    let rows = read_rows(&fixture(rows_file))?;
    evaluate(&dataset, &matcher, &rows, rows_file, options)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn scores_both_models_on_the_test_split() {
    let report = run("test.jsonl", &options(Part::Test)).unwrap();
    // 10 genres, 7 directors, 2 actors, 6 themes.
    assert_eq!(report.features, 25);
    assert_eq!(report.models.keys().collect::<Vec<_>>(), ["oracle", "prism"]);

    let oracle = &report.models["oracle"];
    assert_eq!((oracle.n, oracle.n_with_reference), (3, 3));
    // u1: Red Meadow (history title), crime + thriller (item only), Mara Lind (grounded: m02 in
    // the history), George Lucas (invented). u2: mystery (item only), "melodramatic" and "award"
    // are not mentions, thrillers (history only). u3: war + drama (item only), Cold Orbit
    // (invented title: not in u3's history).
    assert_eq!(oracle.mentions.grounded, 1);
    assert_eq!(oracle.mentions.item_only, 5);
    assert_eq!(oracle.mentions.history_only, 2);
    assert_eq!(oracle.mentions.invented, 2);
    assert_eq!(oracle.invented_titles, 1);
    // Feature mentions about the item: 1 grounded + 5 item-only + 1 invented.
    assert!(close(oracle.invented_rate, 1.0 / 7.0));
    assert!(close(oracle.grounded_precision, 1.0 / 7.0));
    // Every oracle explanation shares a feature with its reference.
    assert_eq!(oracle.fmr, Some(1.0));
    // {crime, thriller, Mara Lind, George Lucas, mystery, war, drama} of 25.
    assert!(close(oracle.fcr.unwrap(), 7.0 / 25.0));
    // Only the first two share a feature (thriller): 1 of 3 pairs.
    assert!(close(oracle.div.unwrap(), 1.0 / 3.0));
    assert_eq!(oracle.usr, 1.0);
    assert!(oracle.bleu1.unwrap() > 0.0 && oracle.rouge_l.unwrap().f > 0.0);
    // Intervals are around the reported means: ROUGE is a mean of sentence scores, and only u1's
    // explanation invents a feature (u3's invention is a title).
    let rouge_l = oracle.ci95.rouge_l_f.unwrap();
    assert!(close(rouge_l.estimate, oracle.rouge_l.unwrap().f));
    assert!(rouge_l.lower <= rouge_l.estimate && rouge_l.estimate <= rouge_l.upper);
    let fmr = oracle.ci95.fmr.unwrap();
    assert_eq!((fmr.estimate, fmr.lower, fmr.upper), (1.0, 1.0, 1.0));
    let invented = oracle.ci95.explanations_with_invented.unwrap();
    assert!(close(invented.estimate, 1.0 / 3.0) && invented.lower == 0.0 && invented.upper >= 2.0 / 3.0);

    let prism = &report.models["prism"];
    // u1: Mara Lind (grounded), crime + thriller. u2: Ines Valdar + drama (item only). u3: war,
    // drama, loyalty (item only), Paper Moons (history title), friendship (history only).
    assert_eq!(prism.invented_rate, 0.0);
    assert!(close(prism.grounded_precision, 1.0 / 8.0));
    assert_eq!(prism.invented_titles, 0);
    // u2's reference mentions {mystery, thriller}; the prism says {Ines Valdar, drama}: a miss.
    assert!(close(prism.fmr.unwrap(), 2.0 / 3.0));
    assert!(close(prism.fcr.unwrap(), 8.0 / 25.0));

    // The two models explain the same three pairs: paired differences oracle − prism.
    assert_eq!(report.comparisons.len(), 1);
    let c = &report.comparisons[0];
    assert_eq!((c.a.as_str(), c.b.as_str(), c.n), ("oracle", "prism", 3));
    assert!(close(c.explanations_with_invented.difference.estimate, 1.0 / 3.0));
    let rouge = c.rouge_l_f.unwrap().difference;
    assert!(close(rouge.estimate, oracle.rouge_l.unwrap().f - prism.rouge_l.unwrap().f));
    assert!(rouge.lower <= rouge.estimate && rouge.estimate <= rouge.upper);
}

#[test]
fn model_filter_and_limit() {
    let mut opts = options(Part::Test);
    opts.models = vec!["prism".to_owned()];
    opts.limit = Some(2);
    let report = run("test.jsonl", &opts).unwrap();
    assert_eq!(report.models.len(), 1);
    assert_eq!(report.models["prism"].n, 2);
    assert!(report.comparisons.is_empty());
    opts.models = vec!["teacher".to_owned()];
    let err = run("test.jsonl", &opts).unwrap_err().to_string();
    assert!(err.contains("no rows of model \"teacher\""), "{err}");
}

#[test]
fn a_row_outside_the_split_names_its_line_and_the_split_to_use() {
    let err = run("invalid/dev_row_on_test.jsonl", &options(Part::Test)).unwrap_err().to_string();
    assert!(err.contains("invalid/dev_row_on_test.jsonl, line 2"), "{err}");
    assert!(err.contains("not in the test split") && err.contains("--split dev"), "{err}");
    // On dev, line 1 (u1's test item) is the one out of place.
    let err = run("invalid/dev_row_on_test.jsonl", &options(Part::Dev)).unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("--split test"), "{err}");
}

#[test]
fn malformed_rows_name_line_and_field() {
    let err = run("invalid/missing_text.jsonl", &options(Part::Test)).unwrap_err().to_string();
    assert!(err.contains("missing_text.jsonl, line 2: field `text` is missing"), "{err}");
    let cases = [
        (
            "{\"user\": \"u1\", \"item\": \"m05\", \"model\": 7, \"text\": \"x\"}",
            "field `model` must be a string",
        ),
        (
            "{\"user\": [1], \"item\": \"m05\", \"model\": \"a\", \"text\": \"x\"}",
            "field `user` must be a string or a non-negative integer",
        ),
        ("[1, 2]", "expected a JSON object"),
        ("{\"user\": ", "not valid JSON"),
    ];
    for (line, expected) in cases {
        let text = format!("\n{line}\n");
        let err = parse_rows(text.as_bytes(), "rows.jsonl").unwrap_err().to_string();
        assert!(err.starts_with("rows.jsonl, line 2: ") && err.contains(expected), "{err}");
    }
}

#[test]
fn unknown_ids_users_without_held_out_items_and_duplicates_are_errors() {
    let dataset = load_fixture();
    let matcher = Matcher::new(&dataset);
    let cases = [
        (
            "{\"user\": \"u9\", \"item\": \"m05\", \"model\": \"a\", \"text\": \"x\"}",
            "field `user`: unknown user \"u9\"",
        ),
        (
            "{\"user\": \"u1\", \"item\": \"m99\", \"model\": \"a\", \"text\": \"x\"}",
            "field `item`: unknown item \"m99\"",
        ),
        (
            "{\"user\": \"u4\", \"item\": \"m03\", \"model\": \"a\", \"text\": \"x\"}",
            "has no test interaction",
        ),
    ];
    for (line, expected) in cases {
        let rows = parse_rows(line.as_bytes(), "rows.jsonl").unwrap();
        let err = evaluate(&dataset, &matcher, &rows, "rows.jsonl", &options(Part::Test)).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let row = "{\"user\": \"u1\", \"item\": \"m05\", \"model\": \"a\", \"text\": \"x\"}";
    let rows = parse_rows(format!("{row}\n{row}\n").as_bytes(), "rows.jsonl").unwrap();
    let err = evaluate(&dataset, &matcher, &rows, "rows.jsonl", &options(Part::Test)).unwrap_err();
    assert!(
        err.to_string().contains("line 2: model \"a\" already explained")
            && err.to_string().contains("line 1")
    );
}

#[test]
fn without_references_text_metrics_are_null() {
    let mut dataset = load_fixture();
    for interaction in &mut dataset.interactions {
        interaction.reference = None;
    }
    let matcher = Matcher::new(&dataset);
    let rows = read_rows(&fixture("test.jsonl")).unwrap();
    let report = evaluate(&dataset, &matcher, &rows, "test.jsonl", &options(Part::Test)).unwrap();
    let oracle = &report.models["oracle"];
    assert_eq!(oracle.n_with_reference, 0);
    assert_eq!((oracle.bleu1, oracle.rouge_l, oracle.fmr), (None, None, None));
    assert!(close(oracle.invented_rate, 1.0 / 7.0));
    assert!(oracle.ci95.rouge_l_f.is_none() && oracle.ci95.explanations_with_invented.is_some());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["models"]["oracle"]["bleu4"].is_null());
    assert_eq!(json["split"], "test");
}

#[test]
#[ignore = "timing, run by hand: cargo test --release --test eval_explain_fixture -- --ignored --nocapture"]
fn evaluates_100k_rows() {
    const USERS: usize = 100_000;
    const ITEMS: usize = 2_000;
    let genres = ["Drama", "War", "Science Fiction", "Thriller", "Comedy", "Crime", "Romance", "Mystery"];
    let mut b = DatasetBuilder::new("generated");
    for i in 0..ITEMS {
        b.set_item(Item {
            id: format!("m{i}"),
            title: format!("Film Number {i}"),
            year: None,
            features: vec![
                Feature::new("genre", genres[i % genres.len()]),
                Feature::new("genre", genres[(i / 8) % genres.len()]),
                Feature::new("director", format!("Director {}", i % 300)),
            ],
        });
    }
    let mut rows = String::new();
    for u in 0..USERS {
        let user = b.intern_user(&format!("u{u}"));
        for t in 0..4 {
            let i = (u * 7 + t * 13) % ITEMS;
            let item = b.intern_item(&format!("m{i}"));
            let text = format!("A {} film by Director {}.", genres[i % 8], i % 300);
            let reference = Some(Box::new(Reference { text: text.clone(), noisy: false }));
            b.push_interaction(Interaction { user, item, rating: 1.0, timestamp: t as i64, reference });
            if t == 3 {
                let row = serde_json::json!({"user": format!("u{u}"), "item": format!("m{i}"), "model": "m",
                    "text": format!("Since you like {} films, this {} by Director {} fits.", genres[u % 8], genres[i % 8], u % 300)});
                rows.push_str(&format!("{row}\n"));
            }
        }
    }
    let dataset = b.build();
    let start = std::time::Instant::now();
    let matcher = Matcher::new(&dataset);
    let rows = parse_rows(rows.as_bytes(), "generated.jsonl").unwrap();
    let parsed = start.elapsed();
    let report = evaluate(&dataset, &matcher, &rows, "generated.jsonl", &options(Part::Test)).unwrap();
    println!(
        "{USERS} rows: matcher + parsing {parsed:?}, total {:?} ({} mentions)",
        start.elapsed(),
        report.models["m"].grounding.mentions
    );
    assert_eq!(report.models["m"].n, USERS);
}
