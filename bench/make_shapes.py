"""Random-weight checkpoints at the published shapes of the paper's models, with the real tokenizers,
for speed, memory and parity checks at real scale (the weights are random: the text means nothing).

  python bench/make_shapes.py --out target/shapes [--shapes flan-t5-base flan-t5-large bart-base]

Each shape becomes DIR/NAME/ in Hugging Face layout (config.json, generation_config.json,
model.safetensors, tokenizer.json), written by transformers itself so that every engine reads it as
it reads the published checkpoint. Needs torch and transformers (bench/engines.sh installs them).
The configurations are those of google/flan-t5-base, google/flan-t5-large and facebook/bart-base
(their config.json on the Hub, copied here key by key); vocabularies are the tokenizers' in
../shared/tokenizers (T5: 32,100 pieces in a 32,128-row embedding; BART: 50,265).
"""
import argparse
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZERS = os.path.join(os.path.dirname(ROOT), "shared", "tokenizers")

FLAN_T5 = dict(vocab_size=32128, d_kv=64, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
               relative_attention_num_buckets=32, relative_attention_max_distance=128,
               layer_norm_epsilon=1e-6, dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=0,
               eos_token_id=1, is_encoder_decoder=True)
SHAPES = {
    "flan-t5-base": ("t5", dict(FLAN_T5, d_model=768, d_ff=2048, num_heads=12, num_layers=12,
                                num_decoder_layers=12)),
    "flan-t5-large": ("t5", dict(FLAN_T5, d_model=1024, d_ff=2816, num_heads=16, num_layers=24,
                                 num_decoder_layers=24)),
    "flan-t5-xl": ("t5", dict(FLAN_T5, d_model=2048, d_ff=5120, num_heads=32, num_layers=24,
                              num_decoder_layers=24)),
    "bart-base": ("bart", dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6,
                               encoder_attention_heads=12, decoder_attention_heads=12,
                               encoder_ffn_dim=3072, decoder_ffn_dim=3072, max_position_embeddings=1024,
                               activation_function="gelu", scale_embedding=False, normalize_before=False,
                               add_final_layer_norm=False, bos_token_id=0, pad_token_id=1, eos_token_id=2,
                               decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
                               tie_word_embeddings=True, is_encoder_decoder=True)),
}


def make(name, out, seed):
    import torch
    import transformers

    arch, keys = SHAPES[name]
    torch.manual_seed(seed)
    if arch == "t5":
        config = transformers.T5Config(**keys)
        model = transformers.T5ForConditionalGeneration(config)
        tokenizer = "t5.tokenizer.json"
    else:
        config = transformers.BartConfig(**keys)
        model = transformers.BartForConditionalGeneration(config)
        tokenizer = "bart.tokenizer.json"
    directory = os.path.join(out, name)
    model.eval().save_pretrained(directory, safe_serialization=True)
    shutil.copy(os.path.join(TOKENIZERS, tokenizer), os.path.join(directory, "tokenizer.json"))
    params = sum(p.numel() for p in model.parameters())
    print(f"{directory}: {name}, {params / 1e6:.1f}M parameters")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--shapes", nargs="+", default=["flan-t5-base", "flan-t5-large", "bart-base"],
                        choices=sorted(SHAPES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.shapes:
        make(name, args.out, args.seed)


if __name__ == "__main__":
    main()
