//! Rankers on generated data: the train-history rule for every ranker, learnability of the demo
//! generator's signal, and the `eval rank` / `rank` documents built on an in-memory dataset.

use std::io::Write;

use prism_explorer::cli::rank::{evaluation, recommendations};
use prism_explorer::config::Settings;
use prism_explorer::data::synth::{generate, SynthConfig};
use prism_explorer::data::{Dataset, Part, Split};
use prism_explorer::rank::{build, BuildOptions, RankerSpec, TrainMatrix};

fn dataset() -> Dataset {
    generate(&SynthConfig { users: 120, items: 200, interactions: 4000, seed: 11, ..SynthConfig::default() })
        .unwrap()
}

/// Small enough for a debug build, large enough to learn the generator's tastes.
fn settings() -> Settings {
    let mut s = Settings::load_layers(None, None).unwrap();
    s.ranker.bpr.factors = 16;
    s.ranker.bpr.epochs = 25;
    s.ranker.bpr.patience = 4;
    s.ranker.bpr.cache = false;
    s.ranker.itemknn.neighbours = 50;
    s
}

/// Scores every (user, item) pair, train items included, so the rule is tested on this ranker too.
fn ranked_list_file(d: &Dataset) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "user item score").unwrap();
    for (u, user) in d.users.iter().enumerate() {
        for (i, item) in d.items.iter().enumerate() {
            writeln!(file, "{user}\t{}\t{}", item.id, ((u * 31 + i * 17) % 97) as f32 / 10.0).unwrap();
        }
    }
    file
}

#[test]
fn no_ranker_ever_recommends_a_train_item() {
    let d = dataset();
    let split = Split::leave_last_out(&d);
    let train = TrainMatrix::new(&d, &split);
    let s = settings();
    let file = ranked_list_file(&d);
    let options = BuildOptions { settings: &s.ranker, cache_dir: None, progress: &|_| {} };
    let specs =
        [RankerSpec::Popularity, RankerSpec::ItemKnn, RankerSpec::Bpr, RankerSpec::File(file.path().into())];
    for spec in &specs {
        let ranker = build(spec, &d, &split, &train, &options).unwrap();
        for u in 0..d.num_users() as u32 {
            let top = ranker.recommend(&train, u, 50);
            assert_eq!(top.len(), 50, "{} user {u}", ranker.name());
            for s in &top {
                assert!(
                    !split.in_train(&d, u, s.item),
                    "{} recommended train item {} to user {u}",
                    ranker.name(),
                    s.item
                );
            }
            assert!(top.windows(2).all(|w| w[0].score >= w[1].score), "{} order", ranker.name());
        }
    }
}

#[test]
fn personalised_rankers_beat_popularity_on_generated_data() {
    // Enough test users that the comparison is not decided by a handful of hits.
    let config =
        SynthConfig { users: 500, items: 300, interactions: 15_000, references: false, ..Default::default() };
    let d = generate(&config).unwrap();
    let s = settings();
    let out = evaluation(&d, &s.ranker, &RankerSpec::BUILT_IN, 10, Part::Test, None, &|_| {}).unwrap();
    assert_eq!(out.users, 500);
    let ndcg = |name: &str| out.rankers[name]["ndcg@10"];
    assert!(ndcg("bpr") > ndcg("pop"), "{:?}", out.rankers);
    assert!(ndcg("itemknn") > ndcg("pop"), "{:?}", out.rankers);
}

#[test]
fn eval_document_names_metrics_with_the_actual_k() {
    let d = dataset();
    let out =
        evaluation(&d, &settings().ranker, &[RankerSpec::Popularity], 5, Part::Dev, None, &|_| {}).unwrap();
    let json = serde_json::to_value(&out).unwrap();
    let pop = &json["rankers"]["pop"];
    for key in ["hr@5", "ndcg@5", "mrr"] {
        let v = pop[key].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&v), "{key} = {v} in {json}");
    }
    assert_eq!(json["users"], 120);
    assert_eq!(json["split"], "dev");
}

#[test]
fn rank_document_lists_items_with_titles_and_rejects_unknown_users() {
    let d = dataset();
    let s = settings();
    let user = d.users[3].clone();
    let out = recommendations(&d, &s.ranker, &user, &RankerSpec::ItemKnn, 7, None, &|_| {}).unwrap();
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["user"], user.as_str());
    assert_eq!(json["ranker"], "itemknn");
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    let first = d.item_by_id(items[0]["item"].as_str().unwrap()).unwrap();
    assert_eq!(items[0]["title"], d.item(first).title.as_str());
    assert!(items[0]["score"].is_number());

    let err =
        recommendations(&d, &s.ranker, "nobody", &RankerSpec::Popularity, 7, None, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("unknown user 'nobody'"), "{err}");
    let err = recommendations(&d, &s.ranker, &user, &RankerSpec::Popularity, 0, None, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("--k"), "{err}");
}

#[test]
fn ranked_list_errors_name_the_file_and_line() {
    let d = dataset();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, "{} {} 0.5\nghost {} 0.1\n", d.users[0], d.items[0].id, d.items[1].id).unwrap();
    let spec = RankerSpec::File(file.path().into());
    let err = recommendations(&d, &settings().ranker, &d.users[0], &spec, 5, None, &|_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("{}:2", file.path().display())) && msg.contains("unknown user 'ghost'"),
        "{msg}"
    );
}

#[test]
fn bpr_is_cached_and_reused_when_enabled() {
    let d = dataset();
    let mut s = settings();
    s.ranker.bpr.cache = true;
    s.ranker.bpr.epochs = 2;
    let dir = tempfile::tempdir().unwrap();
    let user = d.users[0].clone();
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let log = |l: &str| lines.lock().unwrap().push(l.to_owned());
    let first = recommendations(&d, &s.ranker, &user, &RankerSpec::Bpr, 10, Some(dir.path()), &log).unwrap();
    let trained_lines = lines.lock().unwrap().len();
    assert!(trained_lines >= 2, "expected epoch lines");
    let second = recommendations(&d, &s.ranker, &user, &RankerSpec::Bpr, 10, Some(dir.path()), &log).unwrap();
    assert_eq!(lines.lock().unwrap().len(), trained_lines, "second run should load, not train");
    assert_eq!(serde_json::to_value(&first).unwrap(), serde_json::to_value(&second).unwrap());
    // bpr.cache = false neither reads nor writes the cache.
    s.ranker.bpr.cache = false;
    recommendations(&d, &s.ranker, &user, &RankerSpec::Bpr, 10, Some(dir.path()), &log).unwrap();
    assert!(lines.lock().unwrap().len() > trained_lines);
}
