//! Slots on the demo dataset as it ships: the references a slot-reading model learns from go
//! through delexicalise → fill unchanged, and a prompt rendered for a slot tokenizer shows each
//! slot where [`Slots::fill`] finds the value it stands for.

use prism_explorer::config::Settings;
use prism_explorer::data::split::Split;
use prism_explorer::data::{self, Dataset};
use prism_explorer::explain::samples::{samples, SampleSet};
use prism_explorer::explain::slots::{self, Slots};
use prism_explorer::explain::{render_prompt, Matcher, PromptKind, Prompts};
use prism_explorer::train::{train_tokenizer, TokenizerKind};

fn demo() -> (Settings, Dataset) {
    let mut settings = Settings::load_layers(None, None).unwrap();
    settings.dataset.path = "demo".into();
    let dataset = data::open(&settings.dataset).unwrap();
    (settings, dataset)
}

#[test]
fn demo_references_survive_delexicalisation() {
    let (settings, dataset) = demo();
    let matcher = Matcher::new(&dataset);
    let split = Split::leave_last_out(&dataset);
    let train = samples(&dataset, &split, SampleSet::Train, settings.dataset.history_len);
    let (mut slotted, mut without_slot, mut item_slots, mut rewritten) = (0, 0, 0, 0);
    for sample in train.iter().take(3000) {
        let reference = sample.reference.as_deref().unwrap();
        let slots = Slots::new(&dataset, &sample.history, sample.item);
        match slots.delexicalise(&matcher, reference) {
            Ok(delexicalised) => {
                // Exactly the text, or (where the text left out a title's article, which the
                // title's slot writes) the same mentions of the same things.
                let filled = slots.fill(&delexicalised);
                let targets = |text: &str| {
                    let grounding = matcher.ground(text, &sample.history, sample.item);
                    grounding.mentions.iter().map(|m| (m.class, m.target)).collect::<Vec<_>>()
                };
                if filled != reference {
                    assert_eq!(targets(&filled), targets(reference), "{filled} / {reference}");
                    rewritten += 1;
                }
                slotted += 1;
                item_slots += delexicalised.contains(slots::ITEM) as usize;
            }
            Err(title) => {
                let words =
                    ["The ", "A ", "An "].iter().find_map(|a| title.strip_prefix(a)).unwrap_or(&title);
                assert!(reference.contains(words), "{title} not in {reference}");
                without_slot += 1;
            }
        }
    }
    // Only the deliberately noisy references cite a film outside the history ("docs/DEMO_DATA.md").
    assert!(without_slot * 100 < 3000 * 6, "{without_slot} of 3000 cite a title without a slot");
    assert!(item_slots * 100 > slotted * 95, "[ITEM] in {item_slots} of {slotted}");
    assert!(rewritten * 100 < slotted, "{rewritten} of {slotted} read differently once filled");
}

#[test]
fn a_slot_prompt_shows_the_slots_it_fills() {
    let (settings, dataset) = demo();
    let prompts = Prompts::load(&settings.prompts).unwrap();
    let split = Split::leave_last_out(&dataset);
    let test = samples(&dataset, &split, SampleSet::Held(data::split::Part::Test), 50);
    let corpus = ["Explain to the user why the recommended item suits them, in one or two sentences."; 50];
    let tokenizer =
        train_tokenizer(TokenizerKind::MetaspaceBpe, 300, corpus.iter(), &slots::tokens(&dataset)).unwrap();
    assert!(slots::read_by(&tokenizer));
    let sample = test.iter().find(|s| s.history.len() >= 20).unwrap();
    let whole =
        render_prompt(&dataset, &prompts, PromptKind::Oracle, sample, &tokenizer, None, 4096).unwrap();
    let cut =
        render_prompt(&dataset, &prompts, PromptKind::Oracle, sample, &tokenizer, None, whole.tokens - 10)
            .unwrap();
    assert!(cut.history_cut > 0 && cut.history_used < whole.history_used);
    for prompt in [&whole, &cut] {
        let slots = prompt.slots.as_ref().unwrap();
        assert!(prompt.text.contains("- [ITEM]") && !prompt.text.contains(&dataset.item(sample.item).title));
        for k in 1..=prompt.history_used {
            let title = dataset.item(sample.history[sample.history.len() - k]).title.as_str();
            assert!(prompt.text.contains(&format!("- [H{k}]")), "[H{k}] missing");
            assert_eq!(
                slots.fill(&format!("[H{k}]")),
                prism_explorer::explain::grounding::clean_title(title)
            );
        }
        let hidden = format!("[H{}]", prompt.history_used + 1);
        assert!(!prompt.text.contains(&format!("{hidden}\n")));
        assert_eq!(slots.fill(&hidden), hidden, "a title the prompt does not show has no value");
        let ids = tokenizer.encode(" [ITEM] [H1] [genre1]", false).unwrap();
        assert_eq!(ids.get_ids().len(), 3, "one token per slot");
    }
}

/// Decoding suppresses exactly the slot tokens that would stay unfilled: every slot the model can
/// write either has a value for this pair or is never generated.
#[test]
fn the_unavailable_slots_are_those_without_a_value() {
    let (settings, dataset) = demo();
    let split = Split::leave_last_out(&dataset);
    let test =
        samples(&dataset, &split, SampleSet::Held(data::split::Part::Test), settings.dataset.history_len);
    let corpus = ["a corpus"; 10];
    let tokenizer =
        train_tokenizer(TokenizerKind::MetaspaceBpe, 60, corpus.iter(), &slots::tokens(&dataset)).unwrap();
    for sample in test.iter().take(50) {
        let mut pair = Slots::new(&dataset, &sample.history, sample.item);
        pair.keep_newest(sample.history.len().min(7));
        let unavailable = pair.unavailable(&tokenizer);
        for token in slots::tokens(&dataset) {
            let id = tokenizer.token_to_id(&format!(" {token}")).unwrap();
            assert_eq!(pair.fill(&token) == token, unavailable.contains(&id), "{token}");
        }
        assert!(!unavailable.contains(&tokenizer.token_to_id(" [ITEM]").unwrap()));
    }
}
