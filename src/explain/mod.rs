//! Explanations as text about a recommendation: prompt templates for the Oracle and the Prism
//! (loaded from `configs/prompts/`), and feature grounding — which features an explanation
//! mentions and whether each is grounded in the history and the item, or invented.
