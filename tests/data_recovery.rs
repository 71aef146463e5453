//! What loaders keep and what they refuse, on real-looking files of every format: optional fields
//! that do not parse are left missing and counted (the record kept), structural faults stay
//! errors naming file, line and field, a last line cut inside a field is caught, numbers are
//! range-checked, and the content key follows every byte of the input files.

use std::path::{Path, PathBuf};
use std::process::Command;

use prism_explorer::config::BprSettings;
use prism_explorer::data::loaders::{self, LoadOptions};
use prism_explorer::data::{Dataset, Split};
use prism_explorer::rank::bpr::cache_key;
use prism_explorer::rank::TrainMatrix;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets").join(name)
}

/// A scratch copy of fixture directory `name`.
fn copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// Rewrites a file through `change`; Latin-1 files (MovieLens) stay Latin-1.
fn edit(dir: &Path, file: &str, change: impl FnOnce(String) -> String) {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).unwrap();
    match String::from_utf8(bytes) {
        Ok(text) => std::fs::write(&path, change(text)).unwrap(),
        Err(e) => {
            let text: String = e.into_bytes().iter().map(|&b| char::from(b)).collect();
            let latin1: Vec<u8> = change(text).chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
            std::fs::write(&path, latin1).unwrap();
        }
    }
}

/// The number of lines of a fixture file (so the last line's number).
fn lines(name: &str, file: &str) -> usize {
    std::fs::read(fixture(name).join(file)).unwrap().split(|&b| b == b'\n').filter(|l| !l.is_empty()).count()
}

fn gzip(dir: &Path, file: &str, text: &str) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.join(file), enc.finish().unwrap()).unwrap();
}

fn gunzip(dir: &Path, file: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(dir.join(file)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn load(dir: &Path, lenient: bool) -> anyhow::Result<Dataset> {
    loaders::load(dir, None, &LoadOptions { lenient, min_stars: 0.0 })
}

fn strict(dir: &Path) -> Dataset {
    load(dir, false).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

fn error(dir: &Path) -> String {
    match load(dir, false) {
        Ok(_) => panic!("{} should not load strictly", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// `file field count first_value` of each unparsed field.
fn unparsed(d: &Dataset) -> Vec<String> {
    d.notes.unparsed.iter().map(|u| format!("{} {} {} {}", u.file, u.field, u.count, u.first_value)).collect()
}

/// `(fixture, file, edit, text the strict error must hold)`.
type Damage = (&'static str, &'static str, fn(String) -> String, &'static str);

fn item<'d>(d: &'d Dataset, id: &str) -> &'d prism_explorer::data::Item {
    d.item(d.item_by_id(id).unwrap_or_else(|| panic!("item {id} was dropped")))
}

#[test]
fn recbole_ml_100k_excerpt_keeps_the_unkonwn_year_items() {
    let d = strict(&fixture("recbole-ml-100k"));
    assert_eq!((d.num_users(), d.num_items(), d.interactions.len()), (13, 7, 52));
    assert_eq!(unparsed(&d), ["ml-100k.item release_year 2 unkonwn"]);
    assert_eq!(d.notes.unparsed[0].first_line, 7);
    assert_eq!((item(&d, "267").title.as_str(), item(&d, "267").year), ("unkonwn", None));
    let land = item(&d, "1412");
    assert_eq!((land.year, land.features.len()), (None, 2), "the genres of the row are kept");
    assert_eq!(item(&d, "1").year, Some(1995));
    assert_eq!(d.notes.skipped, 0);
}

/// The full files RecBole ships, where `.ci/run` (or the developer) extracted them from its
/// wheel; CI must have them.
#[test]
fn recbole_ml_100k_full_files_when_present() {
    let Some(dir) = std::env::var_os("PRISM_RECBOLE_ML100K").map(PathBuf::from) else {
        assert!(std::env::var_os("CI").is_none(), "CI must set PRISM_RECBOLE_ML100K (see .ci/run)");
        eprintln!("PRISM_RECBOLE_ML100K is not set: only the excerpt was tested");
        return;
    };
    let d = strict(&dir);
    let hashes: Vec<_> = d.sources.iter().map(|s| (s.file.as_str(), &s.sha256[..16])).collect();
    assert_eq!(
        hashes,
        [("ml-100k.inter", "4edb74e2a81178c2"), ("ml-100k.item", "51d7cdf777ce5c0f")],
        "the files of the RecBole 1.2.1 wheel"
    );
    assert_eq!((d.num_users(), d.num_items(), d.interactions.len()), (943, 1682, 100_000));
    assert_eq!(unparsed(&d), ["ml-100k.item release_year 2 unkonwn"]);
    assert_eq!(d.notes.unparsed[0].first_line, 268);

    // The must-show through the binary: strict, the years reported, all 1,682 items kept.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .arg("--dataset")
        .arg(&dir)
        .args(["data", "stats", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((stats["items"].as_u64(), stats["skipped"].as_u64()), (Some(1682), Some(0)));
    assert_eq!(
        stats["unparsed_fields"],
        serde_json::json!([{"file": "ml-100k.item", "field": "release_year", "count": 2,
                            "first_line": 268, "first_value": "unkonwn"}])
    );
    assert_eq!(stderr.lines().filter(|l| l.starts_with("warning:")).count(), 1, "{stderr}");

    // Cut inside the last timestamp, the 100,000th rating on line 100,001 is refused.
    let cut = tempfile::tempdir().unwrap();
    let inter = std::fs::read_to_string(dir.join("ml-100k.inter")).unwrap();
    let inter = inter.trim_end();
    std::fs::write(cut.path().join("ml-100k.inter"), &inter[..inter.len() - 4]).unwrap();
    std::fs::copy(dir.join("ml-100k.item"), cut.path().join("ml-100k.item")).unwrap();
    let err = error(cut.path());
    assert!(err.contains("ml-100k.inter:100001: field `timestamp`"), "{err}");
}

#[test]
fn unparseable_optional_fields_are_left_missing_in_every_loader() {
    struct Case {
        fixture: &'static str,
        file: &'static str,
        change: fn(String) -> String,
        expected: &'static str,
        item: &'static str,
    }
    let cases = [
        Case {
            fixture: "movielens-100k",
            file: "u.item",
            change: |t| {
                t.replacen("|01-Jan-1995|", "|unknown|", 1).replacen("|0|0|0|1|1|1|", "|0|0|0|1|x|1|", 1)
            },
            expected: "u.item release date 1 unknown|u.item Children's 1 x",
            item: "1",
        },
        Case {
            fixture: "movielens-1m",
            file: "movies.dat",
            change: |t| t.replacen("Toy Story (1995)", "Toy Story (0095)", 1),
            expected: "movies.dat Title 1 Toy Story (0095)",
            item: "1",
        },
        Case {
            fixture: "movielens-latest",
            file: "movies.csv",
            change: |t| t.replacen("Toy Story (1995)", "Toy Story (9999)", 1),
            expected: "movies.csv title 1 Toy Story (9999)",
            item: "1",
        },
        Case {
            fixture: "amazon-2014",
            file: "meta_Beauty.json",
            change: |t| t.replacen("'brand': 'Floris'", "'brand': ['Floris']", 1),
            expected: "meta_Beauty.json brand 1 [\"Floris\"]",
            item: "B001",
        },
        Case {
            fixture: "amazon-2018",
            file: "Luxury_Beauty_5.json",
            change: |t| t.replacen("\"reviewText\": \"Silky and rich.\"", "\"reviewText\": 5", 1),
            expected: "Luxury_Beauty_5.json reviewText 1 5",
            item: "X1",
        },
        Case {
            fixture: "yelp",
            file: "business.json",
            change: |t| t.replacen("\"categories\": \"Mexican, Restaurants, Tacos\"", "\"categories\": 7", 1),
            expected: "business.json categories 1 7",
            item: "b1",
        },
        Case {
            fixture: "recbole",
            file: "ml-mini.item",
            change: |t| t.replacen("Toy Story\t1995", "Toy Story\tunkonwn", 1),
            expected: "ml-mini.item release_year 1 unkonwn",
            item: "10",
        },
        Case {
            fixture: "generic-jsonl",
            file: "items.jsonl",
            change: |t| t.replacen("\"year\": 2011", "\"year\": \"2011?\"", 1),
            expected: "items.jsonl year 1 2011?",
            item: "m1",
        },
    ];
    for case in cases {
        let dir = copy(case.fixture);
        let clean = strict(dir.path());
        edit(dir.path(), case.file, case.change);
        let d = strict(dir.path());
        assert_eq!(unparsed(&d).join("|"), case.expected, "{}", case.fixture);
        assert_eq!(
            (d.num_users(), d.num_items(), d.interactions.len(), d.notes.skipped),
            (clean.num_users(), clean.num_items(), clean.interactions.len(), 0),
            "{}: every record kept",
            case.fixture
        );
        assert!(d.item_by_id(case.item).is_some(), "{}", case.fixture);
        assert!(d.notes.warning().unwrap().contains(case.file), "{}", case.fixture);
    }
}

#[test]
fn structural_faults_stay_errors_naming_file_line_and_field() {
    let cases: [Damage; 5] = [
        (
            "recbole",
            "ml-mini.item",
            |t| t.replacen("\tAnimation Children's Comedy", "", 1),
            "ml-mini.item:2: field `genre`: missing",
        ),
        (
            "recbole",
            "ml-mini.inter",
            |t| t.replacen("1\t10\t4\t", "1\t10\tfour\t", 1),
            "ml-mini.inter:2: field `rating`",
        ),
        (
            "movielens-100k",
            "u.item",
            |t| t.replacen("|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", "|0|0", 1),
            "u.item:1: field `Western`: missing",
        ),
        (
            "generic-jsonl",
            "items.jsonl",
            |t| t.replacen("\"title\": \"The Glass Harbor\", ", "", 1),
            "items.jsonl:1: field `title`: missing",
        ),
        (
            "yelp",
            "business.json",
            |t| t.replacen("\"business_id\": \"b1\"", "\"business_id\": [1]", 1),
            "business.json:1: field `business_id`",
        ),
    ];
    for (name, file, change, expected) in cases {
        let dir = copy(name);
        edit(dir.path(), file, change);
        let err = error(dir.path());
        assert!(
            err.contains(expected) && err.contains("--lenient"),
            "{name}: expected {expected:?} in\n{err}"
        );
        // Under --lenient the record is skipped (and, for a movie, the ratings that name it).
        let d = load(dir.path(), true).unwrap();
        assert!(d.notes.skipped >= 1, "{name}");
        assert!(d.notes.first_skipped.as_deref().unwrap().contains(expected), "{name}");
    }
}

/// Each line-oriented format with its last line cut inside the timestamp (no newline): the
/// shortened timestamp still parses, but not as wide as on every other line.
#[test]
fn a_last_line_cut_inside_the_timestamp_fails_naming_file_and_line() {
    let cases = [
        ("movielens-100k", "u.data", "timestamp"),
        ("movielens-1m", "ratings.dat", "Timestamp"),
        ("movielens-latest", "ratings.csv", "timestamp"),
        ("recbole", "ml-mini.inter", "timestamp"),
    ];
    for (name, file, field) in cases {
        let expected = format!("{file}:{}: field `{field}`", lines(name, file));
        let dir = copy(name);
        edit(dir.path(), file, |t| t.trim_end()[..t.trim_end().len() - 3].to_owned());
        let err = error(dir.path());
        assert!(err.contains(&expected) && err.contains("the file looks cut off here"), "{name}:\n{err}");
        let d = load(dir.path(), true).unwrap();
        assert_eq!(d.notes.skipped, 1, "{name}: the cut line is skipped under --lenient");
        assert!(d.notes.first_skipped.as_deref().unwrap().contains(file), "{name}");
    }
}

/// A file whose last line simply lacks its newline loads, with a note naming file and line.
#[test]
fn a_whole_last_line_without_newline_is_a_note() {
    let cases = [
        ("movielens-100k", "u.data"),
        ("movielens-1m", "ratings.dat"),
        ("movielens-latest", "ratings.csv"),
        ("recbole", "ml-mini.inter"),
        ("yelp", "review.json"),
        ("amazon-2018", "Luxury_Beauty_5.json"),
    ];
    for (name, file) in cases {
        let line = lines(name, file) as u64;
        let dir = copy(name);
        let clean = strict(dir.path());
        edit(dir.path(), file, |t| t.trim_end().to_owned());
        let d = strict(dir.path());
        assert_eq!(d.interactions.len(), clean.interactions.len(), "{name}");
        let notes: Vec<_> = d.notes.unterminated.iter().map(|u| (u.file.as_str(), u.line)).collect();
        assert_eq!(notes, [(file, line)], "{name}");
        assert!(d.notes.warning().unwrap().contains("has no newline"), "{name}");
    }
    // Gzipped, and cut inside a JSON line: the line is not valid JSON, and says it looks cut off.
    let dir = copy("generic-jsonl");
    let text = gunzip(dir.path(), "interactions.jsonl.gz");
    gzip(dir.path(), "interactions.jsonl.gz", &text.trim_end()[..text.trim_end().len() - 10]);
    let err = error(dir.path());
    let expected = format!("interactions.jsonl.gz:{}: not valid JSON", text.trim_end().lines().count());
    assert!(err.contains(&expected) && err.contains("cut off"), "{err}");
}

#[test]
fn numbers_are_range_checked_per_format() {
    let cases: [Damage; 7] = [
        (
            "movielens-100k",
            "u.data",
            |t| t.replacen("\t5\t", "\t6\t", 1),
            "field `rating`: 6 is not on the dataset's rating scale (a whole number from 1 to 5)",
        ),
        (
            "movielens-1m",
            "ratings.dat",
            |t| t.replacen("::5::", "::0::", 1),
            "field `Rating`: 0 is not on the dataset's rating scale (0.5 to 5 in steps of 0.5)",
        ),
        (
            "movielens-latest",
            "ratings.csv",
            |t| t.replacen(",5.0,", ",4.2,", 1),
            "field `rating`: 4.2 is not on",
        ),
        ("movielens-latest", "ratings.csv", |t| t.replacen(",5.0,1", ",5.0,-1", 1), "field `timestamp`: -1"),
        (
            "yelp",
            "review.json",
            |t| t.replacen("2016-03-09 00:44:42", "99999-03-09 00:44:42", 1),
            "review.json:1: field `date`: 3093",
        ),
        (
            "yelp",
            "review.json",
            |t| t.replacen("\"stars\": 5.0", "\"stars\": 50", 1),
            "review.json:1: field `stars`: 50 is not on",
        ),
        (
            "amazon-2018",
            "Luxury_Beauty_5.json",
            |t| t.replacen("1510000000", "15100", 1),
            "field `unixReviewTime`: 15100 (1970-01-01) is outside",
        ),
    ];
    for (name, file, change, expected) in cases {
        let dir = copy(name);
        edit(dir.path(), file, change);
        let err = error(dir.path());
        assert!(err.contains(expected), "{name}: expected {expected:?} in\n{err}");
    }
}

#[test]
fn the_bpr_cache_key_follows_the_content_of_the_files() {
    let dir = copy("movielens-1m");
    let key = |d: &Dataset| {
        let split = Split::leave_last_out(d);
        let train = TrainMatrix::new(d, &split);
        let config = BprSettings {
            factors: 4,
            epochs: 1,
            learning_rate: 0.05,
            regularization: 0.01,
            patience: 0,
            seed: 1,
            cache: true,
        };
        cache_key(d, &split, &train, &config, 10)
    };
    let before = strict(dir.path());
    assert_eq!(
        before.sources.iter().map(|s| s.file.as_str()).collect::<Vec<_>>(),
        ["movies.dat", "ratings.dat"]
    );
    // A changed rating changes neither ids, nor order, nor the train pairs — only the content.
    edit(dir.path(), "ratings.dat", |t| t.replacen("::5::", "::4::", 1));
    let after = strict(dir.path());
    assert_eq!(before.interactions.len(), after.interactions.len());
    assert_ne!(before.content_key(), after.content_key());
    assert_ne!(key(&before), key(&after));
    assert_eq!(key(&after), key(&strict(dir.path())), "the same files give the same key");
}

#[test]
fn stats_reports_unparsed_fields_and_the_unterminated_line_in_json_table_and_one_warning() {
    let dir = copy("recbole-ml-100k");
    edit(dir.path(), "ml-100k.inter", |t| t.trim_end().to_owned());
    let home = tempfile::tempdir().unwrap();
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prism"));
        cmd.env("HOME", home.path()).env("XDG_CONFIG_HOME", home.path().join("config")).arg("--dataset");
        cmd.arg(dir.path()).args(["data", "stats"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (json, stderr) = run(true);
    let stats: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["format", "users", "items", "interactions", "train", "dev", "test", "skipped"] {
        assert!(stats.get(key).is_some(), "the contract's key {key} is kept");
    }
    assert_eq!(stats["unparsed_fields"][0]["count"], 2);
    assert_eq!(stats["unterminated_last_lines"], serde_json::json!([{"file": "ml-100k.inter", "line": 53}]));
    let warnings: Vec<_> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("2 unparseable `release_year`") && warnings[0].contains("no newline"),
        "{stderr}"
    );
    let (table, _) = run(false);
    assert!(
        table.contains("ml-100k.item `release_year` left missing (first at line 7: \"unkonwn\")"),
        "{table}"
    );
    assert!(table.contains("ml-100k.inter: no newline at the end of its last line"), "{table}");
}
