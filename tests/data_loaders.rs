//! Every loader against its fixture directory (laid out as the real dataset), and every invalid
//! fixture against the error text a person would see.

use std::path::PathBuf;

use prism_explorer::config::Settings;
use prism_explorer::data::loaders::{self, generic_jsonl, Format, LoadOptions};
use prism_explorer::data::{self, Dataset, Feature};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets").join(name)
}

fn load(name: &str) -> Dataset {
    load_with(name, &LoadOptions::default())
}

fn load_with(name: &str, options: &LoadOptions) -> Dataset {
    loaders::load(&fixture(name), None, options).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

/// `(users, items, interactions)`.
fn counts(d: &Dataset) -> (usize, usize, usize) {
    (d.num_users(), d.num_items(), d.interactions.len())
}

/// `"kind=value"` for each feature of the item with source id `id`.
fn features(d: &Dataset, id: &str) -> Vec<String> {
    item(d, id).features.iter().map(|f| format!("{}={}", f.kind, f.value)).collect()
}

fn item<'d>(d: &'d Dataset, id: &str) -> &'d prism_explorer::data::Item {
    d.item(d.item_by_id(id).unwrap_or_else(|| panic!("no item {id}")))
}

fn title_year(d: &Dataset, id: &str) -> (String, Option<i32>) {
    let it = item(d, id);
    (it.title.clone(), it.year)
}

/// The (rating, reference text) of the kept interaction of `user` with `item`.
fn interaction(d: &Dataset, user: &str, item: &str) -> (f32, Option<String>) {
    let (u, i) = (d.user_by_id(user).unwrap(), d.item_by_id(item).unwrap());
    let found: Vec<_> = d.user_interactions(u).iter().filter(|x| x.item == i).collect();
    assert_eq!(found.len(), 1, "duplicates of ({user}, {item}) must collapse to one");
    (found[0].rating, found[0].reference.as_ref().map(|r| r.text.clone()))
}

fn load_error(name: &str) -> String {
    match loaders::load(&fixture(name), None, &LoadOptions::default()) {
        Ok(_) => panic!("{name} should not load"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn movielens_100k() {
    let d = load("movielens-100k");
    assert_eq!(d.format, "movielens-100k");
    assert_eq!(counts(&d), (3, 6, 11));
    assert_eq!(title_year(&d, "12"), ("The Usual Suspects".into(), Some(1995)));
    assert_eq!(features(&d, "12"), ["genre=Crime", "genre=Thriller"]);
    assert_eq!(
        features(&d, "50"),
        ["genre=Action", "genre=Adventure", "genre=Romance", "genre=Sci-Fi", "genre=War"]
    );
    assert_eq!(
        title_year(&d, "1176"),
        ("Les Misérables".into(), Some(1995)),
        "Latin-1 title, year from the title"
    );
    assert_eq!(title_year(&d, "267"), ("unknown".into(), None));
    assert!(features(&d, "267").is_empty());
    assert_eq!(interaction(&d, "196", "2").0, 5.0, "the later re-rating wins");
    assert_eq!(d.notes.skipped, 0);
}

#[test]
fn movielens_1m() {
    let d = load("movielens-1m");
    assert_eq!((d.format.as_str(), counts(&d)), ("movielens-1m", (3, 6, 11)));
    assert_eq!(title_year(&d, "73"), ("Les Misérables".into(), Some(1995)));
    assert_eq!(title_year(&d, "29"), ("The City of Lost Children".into(), Some(1995)));
    assert_eq!(features(&d, "2"), ["genre=Adventure", "genre=Children's", "genre=Fantasy"]);
    assert_eq!(interaction(&d, "3", "73").0, 4.0);
    let times: Vec<i64> =
        d.user_interactions(d.user_by_id("1").unwrap()).iter().map(|i| i.timestamp).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn movielens_latest() {
    let d = load("movielens-latest");
    assert_eq!((d.format.as_str(), counts(&d)), ("movielens-latest", (3, 7, 11)));
    assert_eq!(title_year(&d, "11"), ("The American President".into(), Some(1995)), "quoted comma");
    assert_eq!(
        title_year(&d, "149532"),
        ("\"Great Performances\" Cats".into(), Some(1998)),
        "escaped quotes"
    );
    assert_eq!(title_year(&d, "176601"), ("Black Mirror".into(), None));
    assert!(features(&d, "114335").is_empty(), "(no genres listed) is no genre");
    assert_eq!(features(&d, "318"), ["genre=Crime", "genre=Drama", "tag=prison", "tag=Morgan Freeman"]);
    assert_eq!(features(&d, "29").last().unwrap(), "tag=dark, surreal");
    assert_eq!(
        features(&d, "1").iter().filter(|f| f.starts_with("tag=")).count(),
        1,
        "tags dedup case-insensitively"
    );
    assert_eq!(interaction(&d, "2", "318").0, 4.0);
}

#[test]
fn amazon_2014_gzipped_with_python_literal_metadata() {
    let d = load("amazon-2014");
    assert_eq!((d.format.as_str(), counts(&d)), ("amazon", (3, 5, 11)));
    assert_eq!(item(&d, "B001").title, "Rose Eau de Parfum");
    assert_eq!(
        features(&d, "B001"),
        ["category=Beauty", "category=Fragrance", "category=Women", "brand=Floris"]
    );
    assert_eq!(item(&d, "B002").title, "Kent's Bristle Brush");
    assert_eq!(title_year(&d, "B005"), ("B005".into(), None), "no metadata: the asin is the title");
    assert!(d.item_by_id("B999").is_none(), "unreviewed products are not loaded");
    let (rating, text) = interaction(&d, "A1", "B002");
    assert_eq!((rating, text.as_deref()), (2.0, Some("Update: bristles fell out after a month.")));
    let u = d.user_by_id("A1").unwrap();
    assert!(d.user_interactions(u).iter().all(|i| i.reference.as_ref().is_some_and(|r| !r.noisy)));
}

#[test]
fn amazon_2018_with_gzipped_json_metadata() {
    let d = load("amazon-2018");
    assert_eq!(counts(&d), (3, 4, 11));
    assert_eq!(item(&d, "X1").title, "Silk Serum & Oil");
    assert_eq!(features(&d, "X1"), ["brand=Lumen"]);
    assert_eq!(features(&d, "X3"), ["category=Luxury Beauty", "category=Skin Care", "category=Masks"]);
    assert_eq!(interaction(&d, "U1", "X3"), (3.0, None), "a review without reviewText has no reference");
    assert_eq!(interaction(&d, "U2", "X1").0, 5.0);
}

#[test]
fn yelp_with_and_without_the_stars_filter() {
    let d = load("yelp");
    assert_eq!((d.format.as_str(), counts(&d)), ("yelp", (3, 5, 11)));
    assert_eq!(item(&d, "b1").title, "Taco Loco");
    assert_eq!(
        features(&d, "b1"),
        ["category=Mexican", "category=Restaurants", "category=Tacos", "city=Phoenix"]
    );
    assert_eq!(features(&d, "b4"), ["city=Mesa"], "null categories");
    assert_eq!(item(&d, "b5").title, "b5", "business missing from business.json");
    let u = d.user_by_id("yu1").unwrap();
    assert_eq!(
        d.user_interactions(u)[0].timestamp,
        1_459_512_000,
        "2016-04-01 12:00:00 UTC (b1's first review was superseded)"
    );
    assert_eq!(interaction(&d, "yu1", "b1"), (4.0, Some("Still good.".into())));

    let d = load_with("yelp", &LoadOptions { min_stars: 4.0, ..LoadOptions::default() });
    assert_eq!(counts(&d), (3, 4, 8));
    assert!(d.item_by_id("b3").is_none());
    assert!(d.interactions.iter().all(|i| i.rating >= 4.0));
    assert_eq!(d.notes.skipped, 0, "filtered reviews are not malformed");
}

#[test]
fn recbole_atomic_files() {
    let d = load("recbole");
    assert_eq!((d.format.as_str(), counts(&d)), ("recbole", (3, 5, 11)));
    assert_eq!(title_year(&d, "10"), ("Toy Story".into(), Some(1995)));
    assert_eq!(features(&d, "10"), ["genre=Animation", "genre=Children's", "genre=Comedy"]);
    assert_eq!(title_year(&d, "50"), ("Copycat".into(), None));
    assert_eq!(interaction(&d, "1", "20").0, 5.0);
}

#[test]
fn generic_jsonl() {
    let d = load("generic-jsonl");
    assert_eq!((d.format.as_str(), counts(&d)), ("generic-jsonl", (3, 4, 11)));
    assert_eq!(title_year(&d, "m1"), ("The Glass Harbor".into(), Some(2011)));
    assert!(item(&d, "m1").features.contains(&Feature::new("director", "Ines Valdar")));
    assert_eq!(item(&d, "m1").features.len(), 3);
    assert_eq!(title_year(&d, "m3"), ("Night Ferry".into(), None));
    assert_eq!(interaction(&d, "u1", "m1"), (2.0, Some("Rewatched: less impressed.".into())));
    let (u, m3) = (d.user_by_id("u1").unwrap(), d.item_by_id("m3").unwrap());
    let noisy =
        d.user_interactions(u).iter().find(|i| i.item == m3).unwrap().reference.as_ref().unwrap().noisy;
    assert!(noisy);
    let info = generic_jsonl::read_info(&fixture("generic-jsonl")).unwrap().unwrap();
    assert_eq!((info.name.as_deref(), info.synthetic), (Some("fixture"), true));
}

#[test]
fn a_named_format_skips_detection_and_a_wrong_one_fails_clearly() {
    let d =
        loaders::load(&fixture("movielens-1m"), Some(Format::MovieLens1M), &LoadOptions::default()).unwrap();
    assert_eq!(d.interactions.len(), 11);
    let err = loaders::load(&fixture("movielens-1m"), Some(Format::MovieLens100K), &LoadOptions::default())
        .unwrap_err();
    assert!(format!("{err:#}").contains("missing u.item"), "{err:#}");
}

#[test]
fn invalid_records_name_file_line_and_field() {
    let cases = [
        ("movielens-100k-bad-rating", "u.data:4: field `rating`: expected a number, found \"five\""),
        ("movielens-1m-missing-column", "ratings.dat:3: field `Timestamp`: missing"),
        ("movielens-latest-bad-utf8", "movies.csv:3: field `title`: not valid UTF-8"),
        ("amazon-missing-overall", "Beauty_5.json:2: field `overall`: missing"),
        (
            "yelp-bad-date",
            "review.json:3: field `date`: expected \"YYYY-MM-DD HH:MM:SS\", found \"03/09/2016\"",
        ),
        ("recbole-bad-rating", "bad.inter:3: field `rating`: expected a number, found \"N/A\""),
        ("generic-unknown-item", "interactions.jsonl:2: field `item`: \"m404\" is not in items.jsonl"),
        ("generic-bad-json", "interactions.jsonl:2: not valid JSON"),
    ];
    for (name, expected) in cases {
        let err = load_error(&format!("invalid/{name}"));
        assert!(err.contains(expected), "{name}: expected {expected:?} in:\n{err}");
        assert!(err.contains("--lenient"), "{name}: the error should offer --lenient:\n{err}");
    }
}

#[test]
fn truncated_gzip_and_unrecognised_directories_are_errors_not_panics() {
    let err = load_error("invalid/amazon-truncated");
    assert!(err.contains("Beauty_5.json.gz") && err.contains("truncated"), "{err}");
    let err = load_error("invalid/unrecognised");
    for expected in [
        "notes.txt",
        "u.data",
        "ratings.dat + movies.dat",
        "ratings.csv + movies.csv",
        "review.json",
        "NAME.inter",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from:\n{err}");
    }
}

#[test]
fn lenient_loading_skips_and_counts() {
    let options = LoadOptions { lenient: true, ..LoadOptions::default() };
    let d = load_with("invalid/movielens-100k-bad-rating", &options);
    assert_eq!((d.interactions.len(), d.notes.skipped), (4, 1));
    let d = load_with("invalid/generic-bad-json", &options);
    assert_eq!((d.interactions.len(), d.notes.skipped), (1, 1));
}

fn settings(path: PathBuf) -> prism_explorer::config::DatasetSettings {
    let mut s = Settings::load_layers(None, None).unwrap().dataset;
    s.path = path.to_string_lossy().into_owned();
    s
}

#[test]
fn open_applies_the_k_core_filter() {
    let mut s = settings(fixture("movielens-1m"));
    s.min_user_interactions = 1;
    assert_eq!(counts(&data::open(&s).unwrap()), (3, 6, 11));
    s.min_user_interactions = 5;
    let d = data::open(&s).unwrap();
    assert_eq!(counts(&d), (1, 5, 5), "only user 1 has five ratings");
    assert_eq!(d.users, ["1"]);
    s.min_user_interactions = 50;
    let err = format!("{:#}", data::open(&s).unwrap_err());
    assert!(err.contains("no interactions left") && err.contains("min_user_interactions = 50"), "{err}");
}

#[test]
fn open_reads_format_and_lenient_from_settings() {
    let mut s = settings(fixture("invalid/movielens-100k-bad-rating"));
    s.min_user_interactions = 1;
    s.lenient = true;
    assert_eq!(data::open(&s).unwrap().notes.skipped, 1);
    s.format = "yelp".into();
    assert!(format!("{:#}", data::open(&s).unwrap_err()).contains("missing review.json"));
    s.format = "movielens".into();
    assert!(format!("{:#}", data::open(&s).unwrap_err()).contains("known formats"));
}
