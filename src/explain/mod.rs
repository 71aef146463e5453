//! Explanations as text about a recommendation: prompt templates for the Oracle and the Prism
//! (loaded from `configs/prompts/`, see [`prompt`]), feature grounding — which features and titles
//! an explanation mentions and whether each is grounded in the history and the item, or invented
//! (see [`grounding`]), the verdict a reader would reach on one explanation (title named, titles
//! and features invented, features misattributed: [`verdict`]) — and the scoring of explanation
//! files against a dataset ([`eval`]).
//! Prompts and grounding know nothing of models (prompts take a token-counting closure); the
//! [`explainer`] puts a model of the engine to work on one recommendation, [`inputs`] renders a
//! model's prompts from its tokenizer alone, [`bulk`] writes either for many samples to a
//! resumable file, and [`bertscore`] scores texts against references with a BERT or RoBERTa
//! encoder of the engine.

pub mod bench;
pub mod bertscore;
pub mod bulk;
pub mod eval;
pub mod explainer;
pub mod grounding;
pub mod inputs;
pub mod prompt;
pub mod recorded;
pub mod samples;
pub mod slots;
pub mod verdict;

pub use explainer::{decoding_overrides, render_prompt, Explainer, Explanation, PromptKind};
pub use grounding::{Class, Counts, Grounding, Matcher, Mention, MentionRecord, Summary, Target};
pub use prompt::{Prompt, PromptTemplate, Prompts};
pub use slots::Slots;
pub use verdict::Verdict;
