//! Trains the embedded models' tokenizers from a text corpus with the tokenizers crate, in the
//! layouts their model families expect: T5-style (Metaspace pre-tokenisation, `<pad>`=0, `</s>`=1,
//! `<unk>`=2, `</s>` appended) with a Unigram or a BPE model, and BART-style byte-level BPE
//! (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>`, inputs wrapped in `<s> … </s>`).
//!
//! On the demo corpus, BPE compresses far better than Unigram at these small sizes (measured with
//! 3,000 entries asked for: Unigram stopped at 1,761 entries and spent 38 tokens on an item line and
//! 137 on the Oracle's instructions; BPE 20 and 62), so the embedded Oracle uses Metaspace BPE.

use anyhow::{anyhow, Result};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::metaspace::{Metaspace, PrependScheme};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

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

/// Trains a tokenizer of `kind` with at most `vocab_size` entries on `texts`.
pub fn train_tokenizer<S: AsRef<str> + Send>(
    kind: TokenizerKind,
    vocab_size: usize,
    texts: impl Iterator<Item = S> + Send,
) -> Result<Tokenizer> {
    let err = |e: tokenizers::Error| anyhow!("tokenizer training failed: {e}");
    if kind == TokenizerKind::ByteLevelBpe {
        let mut tokenizer = Tokenizer::new(BPE::default());
        tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tokenizer.with_decoder(Some(ByteLevel::default()));
        let trainer = BpeTrainer::builder()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .special_tokens(special(&["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        tokenizer.train(&mut TrainerWrapper::BpeTrainer(trainer), texts).map_err(err)?;
        tokenizer.with_post_processor(Some(RobertaProcessing::new(("</s>".into(), 2), ("<s>".into(), 0))));
        return Ok(tokenizer);
    }
    let t5_specials = special(&["<pad>", "</s>", "<unk>"]);
    let (mut tokenizer, mut trainer) = if kind == TokenizerKind::Unigram {
        let trainer = UnigramTrainer::builder()
            .show_progress(false)
            .vocab_size(vocab_size as u32)
            .special_tokens(t5_specials)
            .unk_token(Some("<unk>".into()))
            .build()
            .map_err(|e| anyhow!("unigram trainer: {e}"))?;
        (Tokenizer::new(Unigram::default()), TrainerWrapper::UnigramTrainer(trainer))
    } else {
        let bpe = BPE::builder().unk_token("<unk>".into()).build().map_err(err)?;
        let trainer = BpeTrainer::builder()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .special_tokens(t5_specials)
            .build();
        (Tokenizer::new(bpe), TrainerWrapper::BpeTrainer(trainer))
    };
    tokenizer.with_normalizer(Some(NFKC)).map_err(err)?;
    tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::metaspace::Metaspace::new(
        '▁',
        PrependScheme::Always,
        true,
    )));
    tokenizer.with_decoder(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    tokenizer.train(&mut trainer, texts).map_err(err)?;
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
        let tok = train_tokenizer(TokenizerKind::Unigram, 120, corpus().iter()).unwrap();
        assert_eq!(["<pad>", "</s>", "<unk>"].map(|t| tok.token_to_id(t)), [Some(0), Some(1), Some(2)]);
        let enc = tok.encode("a drama about memory", true).unwrap();
        assert_eq!(enc.get_ids().last(), Some(&1), "ends with </s>");
        let text = tok.decode(enc.get_ids(), true).unwrap();
        assert_eq!(text, "a drama about memory");
        assert!(tok.get_vocab_size(true) <= 120);
    }

    #[test]
    fn metaspace_bpe_follows_t5_layout_and_keeps_frequent_words_whole() {
        let tok = train_tokenizer(TokenizerKind::MetaspaceBpe, 300, corpus().iter()).unwrap();
        assert_eq!(["<pad>", "</s>", "<unk>"].map(|t| tok.token_to_id(t)), [Some(0), Some(1), Some(2)]);
        let enc = tok.encode("a drama about Ines", true).unwrap();
        assert_eq!(enc.get_tokens(), ["▁a", "▁drama", "▁about", "▁Ines", "</s>"]);
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "a drama about Ines");
    }

    #[test]
    fn byte_level_bpe_follows_bart_layout_and_round_trips() {
        let tok = train_tokenizer(TokenizerKind::ByteLevelBpe, 400, corpus().iter()).unwrap();
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
}
