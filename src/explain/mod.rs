//! Explanations as text about a recommendation: prompt templates for the Oracle and the Prism
//! (loaded from `configs/prompts/`, see [`prompt`]), feature grounding — which features and titles
//! an explanation mentions and whether each is grounded in the history and the item, or invented
//! (see [`grounding`]) — and the scoring of explanation files against a dataset ([`eval`]).
//! Knows nothing of models: prompts take a token-counting closure, not a tokenizer.

pub mod eval;
pub mod grounding;
pub mod prompt;
pub mod samples;

pub use grounding::{Class, Counts, Grounding, Matcher, Mention, MentionRecord, Summary, Target};
pub use prompt::{Prompt, PromptTemplate, Prompts};
