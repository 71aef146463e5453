//! Trains the embedded models' tokenizers from a text corpus with the tokenizers crate, in the
//! layouts their model families expect: T5-style (Metaspace pre-tokenisation, `<pad>`=0, `</s>`=1,
//! `<unk>`=2, `</s>` appended) with a Unigram or a BPE model, and BART-style byte-level BPE
//! (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>`, inputs wrapped in `<s> … </s>`).
//!
//! [`add_entities`] gives named entities (titles, people, genres of a catalogue) one token each,
//! appended after the trained vocabulary as added tokens of `tokenizer.json`, so a model copies a
//! title by copying one token (docs/EMBEDDED_MODELS.md, "Entity tokens"). Every entity token
//! carries the space before it, so a text and its tokens map both ways exactly:
//! the normalizer strips leading whitespace and prepends one space (`▁` for Metaspace), the
//! entities are matched there (leftmost, longest first), and the decoder drops that first space
//! again. The same `tokenizer.json` reads the same way in the `tokenizers` Python package.
//!
//! On the demo corpus, BPE compresses far better than Unigram at these small sizes (measured with
//! 3,000 entries asked for: Unigram stopped at 1,761 entries and spent 38 tokens on an item line and
//! 137 on the Oracle's instructions; BPE 20 and 62), so the embedded Oracle uses Metaspace BPE.

use anyhow::{anyhow, bail, Result};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::metaspace::{Metaspace, PrependScheme};
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip as DecoderStrip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::strip::Strip;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::normalizers::{NormalizerWrapper, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, OffsetReferential, OffsetType, Tokenizer};

/// Which tokenizer layout to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// SentencePiece-style Unigram, as T5 uses.
    Unigram,
    /// SentencePiece-style BPE (Metaspace words, T5's special tokens).
    MetaspaceBpe,
    /// Byte-level BPE, as BART uses.
    ByteLevelBpe,
}

fn special(tokens: &[&str]) -> Vec<AddedToken> {
    tokens.iter().map(|t| AddedToken::from(t.to_string(), true)).collect()
}

/// Trains a tokenizer of `kind` with at most `vocab_size` entries on `texts`, then gives each of
/// `entities` a token of its own ([`add_entities`]). The trained vocabulary is learnt on the text
/// between the entities only, so it is spent on the words around them, not on the pieces of titles.
pub fn train_tokenizer<S: AsRef<str> + Send>(
    kind: TokenizerKind,
    vocab_size: usize,
    texts: impl Iterator<Item = S> + Send,
    entities: &[String],
) -> Result<Tokenizer> {
    if entities.is_empty() {
        return train_plain(kind, vocab_size, texts);
    }
    // The entities' layout (normalizer, added tokens) on an untrained model splits each text into
    // what the entity tokens will cover and the fragments between them, already normalized.
    let mut splitter = layout(kind)?;
    add_entities(&mut splitter, entities)?;
    let mut fragments = Vec::new();
    for text in texts {
        let split =
            splitter.get_added_vocabulary().extract_and_normalize(splitter.get_normalizer(), text.as_ref());
        for (fragment, _, tokens) in split.get_splits(OffsetReferential::Normalized, OffsetType::Byte) {
            if tokens.is_none() && !fragment.is_empty() {
                fragments.push(fragment.to_owned());
            }
        }
    }
    let mut tokenizer = train_normalized(kind, vocab_size, fragments.iter())?;
    add_entities(&mut tokenizer, entities)?;
    Ok(tokenizer)
}

/// [`train_plain`] on texts already normalized as [`add_entities`] leaves them: no normalizer and
/// no space prepended while training; the entity layout installs both afterwards.
fn train_normalized<S: AsRef<str> + Send>(
    kind: TokenizerKind,
    vocab_size: usize,
    texts: impl Iterator<Item = S> + Send,
) -> Result<Tokenizer> {
    let mut tokenizer = layout(kind)?;
    tokenizer.with_normalizer(None::<NormalizerWrapper>).map_err(|e| anyhow!("tokenizer layout: {e}"))?;
    if kind != TokenizerKind::ByteLevelBpe {
        tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::metaspace::Metaspace::new(
            '▁',
            PrependScheme::Never,
            true,
        )));
    }
    train_layout(tokenizer, kind, vocab_size, texts)
}

/// Gives every entity of `entities` (exact strings, e.g. titles and names) a single added token,
/// after the tokenizer's vocabulary, and installs the layout that makes those tokens match and
/// decode exactly (module doc). Works on a Metaspace (T5-style) or byte-level (BART-style)
/// tokenizer, freshly trained or loaded; entities it already has are kept with their ids. Returns
/// how many tokens were added.
pub fn add_entities(tokenizer: &mut Tokenizer, entities: &[String]) -> Result<usize> {
    let err = |e: tokenizers::Error| anyhow!("cannot install the entity tokens: {e}");
    let strip = Strip::new(true, false).into();
    let (normalizer, decoder): (Vec<NormalizerWrapper>, DecoderWrapper) = match tokenizer.get_pre_tokenizer()
    {
        Some(PreTokenizerWrapper::Metaspace(metaspace)) => {
            let replacement = metaspace.get_replacement();
            let mut metaspace = metaspace.clone();
            // Fragments after an entity start mid-text: no second space before them.
            metaspace.set_prepend_scheme(PrependScheme::First);
            tokenizer.with_pre_tokenizer(Some(metaspace));
            let decoder = DecoderSequence::new(vec![
                Replace::new(replacement.to_string(), " ").map_err(err)?.into(),
                Fuse::new().into(),
                DecoderStrip::new(' ', 1, 0).into(),
            ]);
            let normalizer = vec![
                NFKC.into(),
                strip,
                Replace::new(" ", replacement.to_string()).map_err(err)?.into(),
                Prepend::new(replacement.to_string()).into(),
            ];
            (normalizer, decoder.into())
        }
        Some(PreTokenizerWrapper::ByteLevel(_)) => {
            let decoder =
                DecoderSequence::new(vec![ByteLevel::default().into(), DecoderStrip::new(' ', 1, 0).into()]);
            (vec![strip, Prepend::new(" ".into()).into()], decoder.into())
        }
        _ => bail!("entity tokens need a Metaspace or a byte-level tokenizer"),
    };
    tokenizer.with_normalizer(Some(NormalizerSequence::new(normalizer))).map_err(err)?;
    tokenizer.with_decoder(Some(decoder));
    let tokens = entities.iter().map(|entity| AddedToken::from(format!(" {}", entity.trim()), false));
    tokenizer.add_tokens(tokens.collect::<Vec<_>>()).map_err(err)
}

fn trainer(kind: TokenizerKind, vocab_size: usize) -> Result<TrainerWrapper> {
    Ok(match kind {
        TokenizerKind::ByteLevelBpe => TrainerWrapper::BpeTrainer(
            BpeTrainer::builder()
                .show_progress(false)
                .vocab_size(vocab_size)
                .min_frequency(2)
                .special_tokens(special(&BART_SPECIALS))
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .build(),
        ),
        TokenizerKind::MetaspaceBpe => TrainerWrapper::BpeTrainer(
            BpeTrainer::builder()
                .show_progress(false)
                .vocab_size(vocab_size)
                .min_frequency(2)
                .special_tokens(special(&T5_SPECIALS))
                .build(),
        ),
        TokenizerKind::Unigram => TrainerWrapper::UnigramTrainer(
            UnigramTrainer::builder()
                .show_progress(false)
                .vocab_size(vocab_size as u32)
                .special_tokens(special(&T5_SPECIALS))
                .unk_token(Some("<unk>".into()))
                .build()
                .map_err(|e| anyhow!("unigram trainer: {e}"))?,
        ),
    })
}

const T5_SPECIALS: [&str; 3] = ["<pad>", "</s>", "<unk>"];
const BART_SPECIALS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];

/// The untrained layout of `kind`: its model, normalizer, pre-tokenizer and decoder.
fn layout(kind: TokenizerKind) -> Result<Tokenizer> {
    let err = |e: tokenizers::Error| anyhow!("tokenizer layout: {e}");
    let mut tokenizer = match kind {
        TokenizerKind::ByteLevelBpe => {
            let mut tokenizer = Tokenizer::new(BPE::default());
            tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            tokenizer.with_decoder(Some(ByteLevel::default()));
            return Ok(tokenizer);
        }
        TokenizerKind::Unigram => Tokenizer::new(Unigram::default()),
        TokenizerKind::MetaspaceBpe => {
            Tokenizer::new(BPE::builder().unk_token("<unk>".into()).build().map_err(err)?)
        }
    };
    tokenizer.with_normalizer(Some(NFKC)).map_err(err)?;
    tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::metaspace::Metaspace::new(
        '▁',
        PrependScheme::Always,
        true,
    )));
    tokenizer.with_decoder(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    Ok(tokenizer)
}

/// Trains `tokenizer` (a [`layout`] of `kind`) on `texts` and adds the post-processor, which needs
/// the trained special tokens' ids.
fn train_layout<S: AsRef<str> + Send>(
    mut tokenizer: Tokenizer,
    kind: TokenizerKind,
    vocab_size: usize,
    texts: impl Iterator<Item = S> + Send,
) -> Result<Tokenizer> {
    let err = |e: tokenizers::Error| anyhow!("tokenizer training failed: {e}");
    tokenizer.train(&mut trainer(kind, vocab_size)?, texts).map_err(err)?;
    if kind == TokenizerKind::ByteLevelBpe {
        tokenizer.with_post_processor(Some(RobertaProcessing::new(("</s>".into(), 2), ("<s>".into(), 0))));
        return Ok(tokenizer);
    }
    let eos = tokenizer.token_to_id("</s>").ok_or_else(|| anyhow!("trained vocabulary lacks </s>"))?;
    let post = TemplateProcessing::builder()
        .try_single("$A </s>")
        .and_then(|b| b.try_pair("$A </s> $B </s>"))
        .map_err(|e| anyhow!("post-processor template: {e}"))?
        .special_tokens(vec![("</s>", eos)])
        .build()
        .map_err(|e| anyhow!("post-processor: {e}"))?;
    tokenizer.with_post_processor(Some(post));
    Ok(tokenizer)
}

/// A tokenizer of `kind` trained on `texts` as they are written (no entity tokens).
fn train_plain<S: AsRef<str> + Send>(
    kind: TokenizerKind,
    vocab_size: usize,
    texts: impl Iterator<Item = S> + Send,
) -> Result<Tokenizer> {
    train_layout(layout(kind)?, kind, vocab_size, texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        (0..200)
            .map(|i| format!("The Glass Harbor {i} is a drama about memory, directed by Ines Valdar."))
            .collect()
    }

    #[test]
    fn unigram_follows_t5_layout_and_round_trips() {
        let tok = train_tokenizer(TokenizerKind::Unigram, 120, corpus().iter(), &[]).unwrap();
        assert_eq!(["<pad>", "</s>", "<unk>"].map(|t| tok.token_to_id(t)), [Some(0), Some(1), Some(2)]);
        let enc = tok.encode("a drama about memory", true).unwrap();
        assert_eq!(enc.get_ids().last(), Some(&1), "ends with </s>");
        let text = tok.decode(enc.get_ids(), true).unwrap();
        assert_eq!(text, "a drama about memory");
        assert!(tok.get_vocab_size(true) <= 120);
    }

    #[test]
    fn metaspace_bpe_follows_t5_layout_and_keeps_frequent_words_whole() {
        let tok = train_tokenizer(TokenizerKind::MetaspaceBpe, 300, corpus().iter(), &[]).unwrap();
        assert_eq!(["<pad>", "</s>", "<unk>"].map(|t| tok.token_to_id(t)), [Some(0), Some(1), Some(2)]);
        let enc = tok.encode("a drama about Ines", true).unwrap();
        assert_eq!(enc.get_tokens(), ["▁a", "▁drama", "▁about", "▁Ines", "</s>"]);
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "a drama about Ines");
    }

    #[test]
    fn byte_level_bpe_follows_bart_layout_and_round_trips() {
        let tok = train_tokenizer(TokenizerKind::ByteLevelBpe, 400, corpus().iter(), &[]).unwrap();
        assert_eq!(
            ["<s>", "<pad>", "</s>", "<unk>"].map(|t| tok.token_to_id(t)),
            [Some(0), Some(1), Some(2), Some(3)]
        );
        let enc = tok.encode("Ines Valdar directed a drama", true).unwrap();
        let ids = enc.get_ids();
        assert_eq!((ids[0], *ids.last().unwrap()), (0, 2));
        assert_eq!(tok.decode(ids, true).unwrap(), "Ines Valdar directed a drama");
        // Byte fallback: unseen characters still encode losslessly.
        let odd = tok.encode("Zoë ☂", true).unwrap();
        assert_eq!(tok.decode(odd.get_ids(), true).unwrap(), "Zoë ☂");
    }

    fn entities() -> Vec<String> {
        [
            "The Glass Harbor",
            "The Glass",
            "Ines Valdar",
            "Drama",
            "drama",
            "war",
            "war trauma",
            "Lena's Valley",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn entity_corpus() -> Vec<String> {
        let mut texts: Vec<String> = (0..200)
            .map(|i| format!("The Glass Harbor {i} is a drama about war trauma, directed by Ines Valdar; see Lena's Valley."))
            .collect();
        // Every letter outside the entities too: T5-style BPE has no byte fallback.
        texts.push("It's the quick brown fox (jumps) over the lazy dog:\nnext.".into());
        texts.push("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG".into());
        texts
    }

    /// The ids a tokenizer gives `text`, checked to decode back to exactly `text`.
    fn exact_ids(tok: &Tokenizer, text: &str) -> Vec<u32> {
        let enc = tok.encode(text, false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), text, "round trip of {text:?}");
        enc.get_ids().to_vec()
    }

    #[test]
    fn entity_tokens_match_whole_entities_longest_first_in_both_layouts() {
        for kind in [TokenizerKind::MetaspaceBpe, TokenizerKind::ByteLevelBpe] {
            let tok = train_tokenizer(kind, 300, entity_corpus().iter(), &entities()).unwrap();
            let trained = tok.get_vocab_size(false);
            let id = |e: &str| tok.token_to_id(&format!(" {e}")).unwrap();
            let mut added: Vec<u32> = entities().iter().map(|e| id(e)).collect();
            added.sort_unstable();
            let after: Vec<u32> = (trained as u32..trained as u32 + 8).collect();
            assert_eq!(added, after, "{kind:?}: one token each, right after the trained vocabulary");
            let text = "The Glass Harbor, a drama about war trauma by Ines Valdar";
            let got = exact_ids(&tok, text);
            for entity in ["The Glass Harbor", "drama", "war trauma", "Ines Valdar"] {
                assert!(got.contains(&id(entity)), "{kind:?}: {entity:?} is one token in {got:?}");
            }
            assert!(!got.contains(&id("The Glass")) && !got.contains(&id("war")), "{kind:?}: longest first");
            assert_eq!(
                exact_ids(&tok, "The Glass Harbor")[..],
                [id("The Glass Harbor")],
                "{kind:?}: at the start too"
            );
            // Mid-text, after punctuation, at the start, and next to ordinary words.
            for text in [
                "You watched The Glass Harbor.",
                "Drama, war and more: Lena's Valley's mood",
                "(The Glass) and Ines Valdar",
                "warm words, no entity at all",
                "two  spaces\nand a line",
            ] {
                exact_ids(&tok, text);
            }
        }
    }

    #[test]
    fn trained_vocabulary_is_spent_around_the_entities() {
        let with =
            train_tokenizer(TokenizerKind::MetaspaceBpe, 300, entity_corpus().iter(), &entities()).unwrap();
        let without = train_tokenizer(TokenizerKind::MetaspaceBpe, 300, entity_corpus().iter(), &[]).unwrap();
        assert!(without.token_to_id("▁Valdar").is_some());
        assert!(with.token_to_id("▁Valdar").is_none(), "entity text is not trained into the vocabulary");
        assert!(with.token_to_id("▁directed").is_some());
    }

    #[test]
    fn adding_entities_keeps_other_texts_tokens_and_survives_saving() {
        for kind in [TokenizerKind::MetaspaceBpe, TokenizerKind::ByteLevelBpe] {
            let plain = train_tokenizer(kind, 300, corpus().iter(), &[]).unwrap();
            let mut extended = plain.clone();
            assert_eq!(add_entities(&mut extended, &entities()).unwrap(), 8);
            assert_eq!(
                add_entities(&mut extended, &entities()).unwrap(),
                0,
                "{kind:?}: entities it has are kept"
            );
            let text = "a drama about memory, directed by someone";
            let ids = |t: &Tokenizer| t.encode(text, true).unwrap().get_ids().to_vec();
            if kind == TokenizerKind::MetaspaceBpe {
                // The warm start's promise: text around no entity reads as the checkpoint knew it.
                let no_entity = "directed by someone, about memory";
                assert_eq!(
                    plain.encode(no_entity, true).unwrap().get_ids(),
                    extended.encode(no_entity, true).unwrap().get_ids()
                );
            }
            let json = extended.to_string(false).unwrap();
            let reloaded: Tokenizer = json.parse().unwrap();
            assert_eq!(ids(&reloaded), ids(&extended), "{kind:?}");
            exact_ids(&reloaded, "The Glass Harbor is a drama");
        }
    }

    mod round_trip {
        use super::*;
        use proptest::prelude::*;
        use std::sync::OnceLock;

        fn trained(kind: TokenizerKind) -> &'static Tokenizer {
            static METASPACE: OnceLock<Tokenizer> = OnceLock::new();
            static BYTES: OnceLock<Tokenizer> = OnceLock::new();
            let cell = if kind == TokenizerKind::MetaspaceBpe { &METASPACE } else { &BYTES };
            cell.get_or_init(|| train_tokenizer(kind, 300, entity_corpus().iter(), &entities()).unwrap())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Any text made of entities, words and punctuation decodes back exactly.
            #[test]
            fn entity_texts_decode_exactly(
                parts in prop::collection::vec(
                    prop_oneof![
                        prop::sample::select(entities()),
                        "[a-zA-Z']{1,8}",
                        prop::sample::select(vec![",".to_owned(), ".".to_owned(), "(".to_owned(), ")".to_owned()]),
                    ],
                    1..10,
                ),
                glue in prop::collection::vec(prop::sample::select(vec!["", " ", "  ", "\n"]), 10),
            ) {
                let mut text = String::new();
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        text.push_str(glue[i]);
                    }
                    text.push_str(part);
                }
                for kind in [TokenizerKind::MetaspaceBpe, TokenizerKind::ByteLevelBpe] {
                    let tok = trained(kind);
                    let ids = tok.encode(text.as_str(), true).unwrap().get_ids().to_vec();
                    prop_assert_eq!(tok.decode(&ids, true).unwrap(), text.clone());
                }
            }
        }
    }
}
