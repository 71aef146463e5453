//! The one tokenisation behind every text metric, so BLEU, ROUGE, distinct-n and USR count the
//! same words, plus [`Vocab`], which interns tokens to `u32` ids so the metrics compare integers.
//!
//! The rules are those of PEPLER's `postprocessing` (Li et al., github.com/lileipisces/PEPLER,
//! `utils.py`, adopted from Yoon Kim's CNN_sentence `clean_str`), applied after lowercasing because
//! PETER's datasets are stored lowercased and pre-tokenised the same way:
//!
//! 1. lowercase (Unicode);
//! 2. split the clitics `'s 'm 've 're 'd 'll` and `n't` off the word before them
//!    (`"it's"` → `it 's`, `"don't"` → `do n't`);
//! 3. `(` and `)` become tokens of their own;
//! 4. a run of `,` becomes `,`, a run of `:` becomes `,`, a run of `;` becomes `.`, a run of `.`
//!    becomes `.`, a run of `!` becomes `!`, a run of `?` becomes `?` (each a token of its own);
//! 5. split on whitespace.
//!
//! Everything else (hyphens, quotes, slashes, digits, emoji) stays inside its word, exactly as in
//! the reference; so does the mapping of `:` to `,` and `;` to `.`. The reference is a chain of
//! regex substitutions; this is one pass over the characters, and a test checks the two agree.

use rayon::prelude::*;

use super::hash::FxMap;

/// Splits `text` into tokens by the rules in the module documentation.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |t| tokens.push(t.to_owned()));
    tokens
}

/// Calls `emit` with every token of `text`, in order, without allocating a `String` per token.
pub fn for_each_token(text: &str, emit: impl FnMut(&str)) {
    // ASCII text (the common case) is scanned as bytes, lowercased on the fly; anything else is
    // lowercased first because Unicode lowercasing can change the number of characters.
    if text.is_ascii() {
        scan(text.as_bytes(), emit);
    } else {
        let chars: Vec<char> = text.to_lowercase().chars().collect();
        scan(&chars, emit);
    }
}

/// A character of text being scanned, lowercased.
trait Lower: Copy {
    fn lower(self) -> char;
}

impl Lower for u8 {
    fn lower(self) -> char {
        char::from(self.to_ascii_lowercase())
    }
}

impl Lower for char {
    fn lower(self) -> char {
        self
    }
}

fn scan<C: Lower>(chars: &[C], mut emit: impl FnMut(&str)) {
    let at = |k: usize| chars.get(k).map(|c| c.lower());
    let mut current = String::new();
    let flush = |current: &mut String, emit: &mut dyn FnMut(&str)| {
        if !current.is_empty() {
            emit(current);
            current.clear();
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].lower();
        if c.is_whitespace() {
            flush(&mut current, &mut emit);
        } else if c == '(' || c == ')' {
            flush(&mut current, &mut emit);
            emit(if c == '(' { "(" } else { ")" });
        } else if let Some(mark) = run_token(c) {
            flush(&mut current, &mut emit);
            while at(i + 1) == Some(c) {
                i += 1;
            }
            emit(mark);
        } else if starts_clitic(c, at(i + 1), at(i + 2)) {
            flush(&mut current, &mut emit);
            current.push(c);
        } else {
            current.push(c);
        }
        i += 1;
    }
    flush(&mut current, &mut emit);
}

/// The token a run of this punctuation mark collapses to (`:` and `;` are remapped as in the
/// reference).
fn run_token(c: char) -> Option<&'static str> {
    match c {
        ',' | ':' => Some(","),
        ';' | '.' => Some("."),
        '!' => Some("!"),
        '?' => Some("?"),
        _ => None,
    }
}

/// Whether a clitic (`'s 'm 'd 've 're 'll n't`) starts at this character.
fn starts_clitic(c: char, c1: Option<char>, c2: Option<char>) -> bool {
    matches!(
        (c, c1, c2),
        ('\'', Some('s' | 'm' | 'd'), _)
            | ('\'', Some('v' | 'r'), Some('e'))
            | ('\'', Some('l'), Some('l'))
            | ('n', Some('\''), Some('t'))
    )
}

/// Interns tokens to dense `u32` ids, shared by hypotheses and references so equal words get
/// equal ids.
#[derive(Debug, Default, Clone)]
pub struct Vocab {
    ids: FxMap<String, u32>,
    words: Vec<String>,
}

impl Vocab {
    pub fn new() -> Vocab {
        Vocab::default()
    }

    /// Tokenises `text` and returns the ids of its tokens, adding unseen tokens to the vocabulary.
    pub fn encode(&mut self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for_each_token(text, |token| out.push(self.intern(token)));
        out
    }

    /// [`Vocab::encode`] of every text, in parallel: chunks are tokenised into local vocabularies
    /// which are then merged in order, so ids come out exactly as sequential encoding gives them.
    pub fn encode_all<S: AsRef<str> + Sync>(&mut self, texts: &[S]) -> Vec<Vec<u32>> {
        const CHUNK: usize = 2048;
        let chunks: Vec<(Vocab, Vec<Vec<u32>>)> = texts
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut local = Vocab::new();
                let ids = chunk.iter().map(|t| local.encode(t.as_ref())).collect();
                (local, ids)
            })
            .collect();
        let mut out = Vec::with_capacity(texts.len());
        for (local, ids) in chunks {
            let to_global: Vec<u32> = local.words.iter().map(|w| self.intern(w)).collect();
            out.extend(ids.into_iter().map(|mut sentence| {
                for id in &mut sentence {
                    *id = to_global[*id as usize];
                }
                sentence
            }));
        }
        out
    }

    /// The id of `token`, adding it if it is new.
    pub fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = self.words.len() as u32;
        self.ids.insert(token.to_owned(), id);
        self.words.push(token.to_owned());
        id
    }

    /// The token with this id, if there is one.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A literal transliteration of PEPLER's `postprocessing` (a chain of `re.sub` calls) plus
    /// lowercasing and `str.split()`: the reference the one-pass tokenizer must agree with.
    fn reference(text: &str) -> Vec<String> {
        let mut s = text.to_lowercase();
        for clitic in ["'s", "'m", "'ve", "n't", "'re", "'d", "'ll"] {
            s = s.replace(clitic, &format!(" {clitic}"));
        }
        s = s.replace('(', " ( ").replace(')', " ) ");
        for (mark, with) in
            [(',', " , "), (':', " , "), (';', " . "), ('.', " . "), ('!', " ! "), ('?', " ? ")]
        {
            s = collapse_runs(&s, mark, with);
        }
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// `re.sub(re.escape(mark) + '+', with, s)`.
    fn collapse_runs(s: &str, mark: char, with: &str) -> String {
        let mut out = String::new();
        let mut in_run = false;
        for c in s.chars() {
            if c == mark {
                if !in_run {
                    out.push_str(with);
                }
                in_run = true;
            } else {
                out.push(c);
                in_run = false;
            }
        }
        out
    }

    #[test]
    fn splits_punctuation_and_clitics_like_pepler() {
        assert_eq!(
            tokenize("Great film!! It's a slow-burn (noir) thriller... Don't miss it; really: 10/10?"),
            [
                "great",
                "film",
                "!",
                "it",
                "'s",
                "a",
                "slow-burn",
                "(",
                "noir",
                ")",
                "thriller",
                ".",
                "do",
                "n't",
                "miss",
                "it",
                ".",
                "really",
                ",",
                "10/10",
                "?"
            ]
        );
        assert_eq!(tokenize("  \t\n "), Vec::<String>::new());
        assert_eq!(
            tokenize("You'll, we've, they're, I'd, I'm"),
            ["you", "'ll", ",", "we", "'ve", ",", "they", "'re", ",", "i", "'d", ",", "i", "'m"]
        );
    }

    #[test]
    fn agrees_with_the_regex_chain_on_tricky_and_random_text() {
        let tricky = [
            "n't",
            "''s",
            ".'s",
            ",:;.!?",
            ":,",
            ";.",
            "a..b",
            "3.5 stars",
            "can't've",
            "'sup",
            "Ünïcode İs",
            "rock'n'roll",
            "(((x)))",
            "won't!?",
            "it''ll",
            "n'ts",
            "e.g. this",
        ];
        for text in tricky {
            assert_eq!(tokenize(text), reference(text), "{text:?}");
        }
        let alphabet: Vec<char> = "ab nstvdlrme'(),:;.!?\t-\"N'STVE".chars().collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let len = rng.random_range(0..24);
            let text: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
            assert_eq!(tokenize(&text), reference(&text), "{text:?}");
        }
    }

    #[test]
    fn vocab_gives_equal_words_equal_ids() {
        let mut vocab = Vocab::new();
        let a = vocab.encode("The plot, the PLOT.");
        assert_eq!(a, [0, 1, 2, 0, 1, 3]);
        assert_eq!(vocab.word(1), Some("plot"));
        assert_eq!(vocab.word(9), None);
        assert_eq!(vocab.len(), 4);
    }

    #[test]
    fn parallel_encoding_equals_sequential() {
        let texts: Vec<String> =
            (0..5000).map(|i| format!("w{} shared w{} (x{})!", i % 97, i % 13, i)).collect();
        let mut sequential = Vocab::new();
        let expected: Vec<Vec<u32>> = texts.iter().map(|t| sequential.encode(t)).collect();
        let mut parallel = Vocab::new();
        parallel.intern("w0");
        let mut fresh = Vocab::new();
        assert_eq!(fresh.encode_all(&texts), expected);
        assert_eq!(fresh.len(), sequential.len());
        // Words already in the vocabulary keep their ids.
        let again = parallel.encode_all(&texts[..1]);
        assert_eq!(again[0][0], 0);
    }
}
