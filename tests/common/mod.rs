//! Helpers shared by the integration tests that run the binary with tiny models.

use prism_explorer::train::{train_tokenizer, TokenizerKind, TrainableModel};

/// A tiny random BART with a byte-level tokenizer and room for the Prism's whole prompt.
pub fn tiny_bart(dir: &std::path::Path) {
    let texts = ["Recent history: a drama by a director, a comedy with an actor. Why it fits:"; 30];
    let tokenizer = train_tokenizer(TokenizerKind::ByteLevelBpe, 300, texts.iter()).unwrap();
    let config = serde_json::json!({
        "model_type": "bart", "d_model": 16, "encoder_layers": 1, "decoder_layers": 1,
        "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32, "max_position_embeddings": 1024, "forced_bos_token_id": 0,
        "vocab_size": tokenizer.get_vocab_size(true)
    });
    let model = TrainableModel::fresh(&config, &candle_core::Device::Cpu).unwrap();
    model.model.save(dir, Some(&tokenizer)).unwrap();
}
