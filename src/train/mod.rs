//! Training on candle autograd: the trainer (AdamW, schedules, clipping, accumulation, label
//! smoothing, dev selection, atomic checkpoints, exact resume) and tokenizer training. Knows
//! models and token ids, nothing of recommendation.

pub mod batch;
pub mod induction;
pub mod optim;
pub mod tokenizer;
pub mod trainer;

pub use batch::Example;
pub use optim::Schedule;
pub use tokenizer::{add_entities, train_tokenizer, TokenizerKind};
pub use trainer::{train, Ending, EvalRecord, Run, TrainConfig, TrainEvent, TrainOutcome, TrainableModel};
