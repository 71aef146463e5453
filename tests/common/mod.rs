//! Helpers shared by the integration tests that run the binary: tiny models, a demo explanation
//! file, and a tmux driver. Each test crate uses some of them.
#![allow(dead_code)]

pub mod damage;
pub mod golden;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use prism_explorer::config::Settings;
use prism_explorer::data::{self, Part, Split};
use prism_explorer::explain::samples::{samples, SampleSet};
use prism_explorer::train::{train_tokenizer, TokenizerKind, TrainableModel};

/// A student recipe small enough for a distillation job in seconds: a tiny BART, 3 steps.
pub const TINY_STUDENT_RECIPE: &str = r#"
prompt = "prism"
max_input_tokens = 400
max_target_tokens = 16
dev_limit = 4
eval_generate = 2
eval_max_new_tokens = 6

[model.config]
model_type = "bart"
d_model = 16
encoder_layers = 1
decoder_layers = 1
encoder_attention_heads = 2
decoder_attention_heads = 2
encoder_ffn_dim = 32
decoder_ffn_dim = 32
max_position_embeddings = 512
forced_bos_token_id = 0

[tokenizer]
kind = "bytelevelbpe"
vocab_size = 400

[train]
epochs = 1
max_steps = 3
batch_size = 4
lr = 1e-3
seed = 1
save_every = 1
select = "rouge_l"
select_higher = true
"#;

/// A tiny random BART with a byte-level tokenizer and room for the Prism's whole prompt.
pub fn tiny_bart(dir: &std::path::Path) {
    let texts = ["Recent history: a drama by a director, a comedy with an actor. Why it fits:"; 30];
    let tokenizer = train_tokenizer(TokenizerKind::ByteLevelBpe, 300, texts.iter(), &[]).unwrap();
    let config = serde_json::json!({
        "model_type": "bart", "d_model": 16, "encoder_layers": 1, "decoder_layers": 1,
        "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32, "max_position_embeddings": 1024, "forced_bos_token_id": 0,
        "vocab_size": tokenizer.get_vocab_size(true)
    });
    // Fresh weights are a function of their seed; this one's greedy output does not end at once
    // (an immediate end-of-sequence would be an empty explanation).
    let model = TrainableModel::fresh_seeded(&config, &candle_core::Device::Cpu, 1).unwrap();
    model.model.save(dir, Some(&tokenizer)).unwrap();
}

pub fn command(args: &[&str], home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prism"));
    c.args(args).env("HOME", home).env("XDG_CONFIG_HOME", home).env("PRISM_CACHE_DIR", home);
    c
}

pub fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The xq7 system's texts start with this; the template's with "We recommend".
pub const XQ7: &str = "You will enjoy";

/// Writes the xq7 system's explanations of the first 300 test pairs of the demo.
pub fn write_xq7(path: &Path) {
    let settings = Settings::load_layers(None, None).unwrap();
    let dataset = data::open(&settings.dataset).unwrap();
    let split = Split::leave_last_out(&dataset);
    let mut lines = String::new();
    for s in samples(&dataset, &split, SampleSet::Held(Part::Test), 5).iter().take(300) {
        let row = serde_json::json!({
            "user": dataset.users[s.user as usize],
            "item": dataset.item(s.item).id,
            "text": format!("{XQ7} {}, it suits your taste.", dataset.item(s.item).title),
        });
        lines.push_str(&format!("{row}\n"));
    }
    std::fs::write(path, lines).unwrap();
}

/// A tmux server of the test's own (socket `socket`) holding one session `session`; killed on drop.
pub struct Tmux {
    pub socket: String,
    pub session: String,
}

impl Tmux {
    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn capture(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", &self.session])
    }

    pub fn literal(&self, text: &str) {
        self.cmd(&["send-keys", "-t", &self.session, "-l", text]);
    }

    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.cmd(&["send-keys", "-t", &self.session, key]);
        }
    }

    /// Waits until the pane satisfies `ok` and holds still (a frame can be caught half drawn).
    pub fn wait(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        loop {
            let screen = self.capture();
            if ok(&screen) && screen == last {
                return screen;
            }
            last = screen.clone();
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the pane shows:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends the server of this test's own socket only.
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}
