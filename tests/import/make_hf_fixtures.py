#!/usr/bin/env python3
"""Fixtures for tests/import: small random PEGASUS and BigBird-PEGASUS models made and run by
transformers itself (the peer environment of scripts/setup_peer.sh, never the library's).

For each configuration it writes a Hugging Face model directory as a user has one (save_pretrained,
or the older pytorch_model.bin, sharded, half-precision weights), a sentencepiece spiece.model
trained here on the bundled papers (pad 0, eos 1, unk 2, as PEGASUS's), and expected.json: what
transformers computes in float32 on real papers' text: the tokenizer's ids (full and truncated) and
decoded text, the encoder's output, teacher-forced logits, and greedy and beam-4 generations.

  make_hf_fixtures.py OUT_DIR          (the C++ test tests/import/import_test.cpp reads OUT_DIR)
"""
import io
import json
import os
import pathlib
import sys

import sentencepiece as spm
import torch
import transformers
from transformers import (BigBirdPegasusConfig, BigBirdPegasusForConditionalGeneration, PegasusConfig,
                          PegasusForConditionalGeneration, PegasusTokenizer)

ROOT = pathlib.Path(__file__).resolve().parents[2]
transformers.logging.set_verbosity_error()


def papers(split):
    out = []
    for line in open(ROOT / "data" / "aclsum" / f"{split}.jsonl"):
        r = json.loads(line)
        out.append((" ".join(r["article_text"]), " ".join(r["abstract_text"])))
    return out


def train_spiece(path, vocab):
    texts = [t for doc in papers("train") for t in doc]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=buf, vocab_size=vocab, pad_id=0,
                                   eos_id=1, unk_id=2, bos_id=-1, model_type="unigram", minloglevel=2,
                                   character_coverage=0.995, num_threads=1)
    path.write_bytes(buf.getvalue())


# name -> (architecture, config, how the weights are saved)
CONFIGS = {
    "pegasus": ("pegasus", dict(d_model=16, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=24,
                                decoder_ffn_dim=24, encoder_layers=2, decoder_layers=2, activation_function="relu",
                                scale_embedding=True, max_position_embeddings=64), "safetensors"),
    "pegasus_odd": ("pegasus", dict(d_model=15, encoder_attention_heads=3, decoder_attention_heads=3, encoder_ffn_dim=17,
                                    decoder_ffn_dim=17, encoder_layers=3, decoder_layers=1, activation_function="gelu",
                                    scale_embedding=False, tie_word_embeddings=False, max_position_embeddings=48),
                    "sharded"),
    "pegasus_bin": ("pegasus", dict(d_model=12, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=20,
                                    decoder_ffn_dim=20, encoder_layers=1, decoder_layers=2,
                                    activation_function="gelu_new", scale_embedding=True,
                                    max_position_embeddings=64), "bin"),
    "bigbird": ("bigbird", dict(d_model=16, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=24,
                                decoder_ffn_dim=24, encoder_layers=2, decoder_layers=2, attention_type="original_full",
                                max_position_embeddings=64), "safetensors"),
    "bigbird_bias_bf16": ("bigbird", dict(d_model=16, encoder_attention_heads=4, decoder_attention_heads=4,
                                          encoder_ffn_dim=20, decoder_ffn_dim=20, encoder_layers=1, decoder_layers=1,
                                          attention_type="original_full", use_bias=True,
                                          max_position_embeddings=40), "bf16"),
}

GENERATIONS = {  # transformers' options (max_length and min_length count the decoder's start token)
    "greedy": dict(num_beams=1, max_length=18, min_length=4),
    "beam": dict(num_beams=4, max_length=16, min_length=3, length_penalty=0.8, no_repeat_ngram_size=3,
                 early_stopping=True),
    "beam_lp": dict(num_beams=4, max_length=14, min_length=0, length_penalty=1.4, no_repeat_ngram_size=2,
                    early_stopping=True),
}


EOS_BIAS = float(os.environ.get("EOS_BIAS", "3.0"))


def floats(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def make(out, name, spiece, tokenizer, seed):
    kind, options, saving = CONFIGS[name]
    vocab = len(tokenizer)
    torch.manual_seed(seed)
    if kind == "pegasus":
        model = PegasusForConditionalGeneration(PegasusConfig(vocab_size=vocab, **options))
    else:
        model = BigBirdPegasusForConditionalGeneration(BigBirdPegasusConfig(vocab_size=vocab, **options))
    with torch.no_grad():
        # Weights far from transformers' small initialisation (std 0.02, unit norms, zero biases),
        # so that every tensor, the source included, changes what is generated.
        for tensor_name, p in model.named_parameters():
            if kind == "pegasus" and "embed_positions" in tensor_name:
                continue  # PEGASUS's sinusoidal table is fixed
            p.add_(torch.randn_like(p) * 0.3)
        # A logits bias worth mapping: eos likely enough that some hypotheses end early; pad far
        # below every other token: pyramidion never generates pad, transformers can.
        model.final_logits_bias.normal_(0, 0.5)
        model.final_logits_bias[0, model.config.eos_token_id] = EOS_BIAS
        model.final_logits_bias[0, model.config.pad_token_id] = -1e4
    model.eval()
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    if saving == "bf16":  # stored as bfloat16; the reference computes in float32 from those values
        model = model.to(torch.bfloat16)
        model.save_pretrained(directory)
        model = model.to(torch.float32)
    elif saving == "sharded":
        model.save_pretrained(directory, max_shard_size="20KB")
    elif saving == "bin":  # what transformers 4 wrote and older Hub checkpoints hold
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(directory)
        model.generation_config.save_pretrained(directory)
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    else:
        model.save_pretrained(directory)
    (directory / "spiece.model").write_bytes(spiece)

    docs = papers("test")[:3]
    max_source = [40, 23, 31]
    enc = [tokenizer(d, truncation=True, max_length=m).input_ids for (d, _), m in zip(docs, max_source)]
    labels = [tokenizer(s, truncation=True, max_length=m).input_ids for (_, s), m in zip(docs, [12, 7, 10])]
    n, t = max(map(len, enc)), max(map(len, labels))
    pad, start = model.config.pad_token_id, model.config.decoder_start_token_id
    src = torch.tensor([e + [pad] * (n - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (n - len(e)) for e in enc])
    dec_in = torch.tensor([[start] + y[:-1] + [pad] * (t - len(y)) for y in labels])
    with torch.no_grad():
        encoded = model.get_encoder()(input_ids=src, attention_mask=mask).last_hidden_state
        logits = model(input_ids=src, attention_mask=mask, decoder_input_ids=dec_in).logits
        generations = {}
        for gname, g in GENERATIONS.items():
            seqs = model.generate(input_ids=src, attention_mask=mask, do_sample=False, forced_eos_token_id=None,
                                  **g).tolist()
            eos = model.config.eos_token_id
            cut = []
            for s in seqs:
                s = s[1:]  # the decoder's start token
                cut.append(s[:s.index(eos) + 1] if eos in s else [x for x in s if x != pad])
            generations[gname] = dict(options=g, tokens=cut)
    expected = dict(
        architecture=type(model).__name__, src=src.tolist(), src_mask=mask.tolist(), source_lengths=list(map(len, enc)),
        dec_in=dec_in.tolist(), target_lengths=list(map(len, labels)), encoder=floats(encoded),
        encoder_shape=list(encoded.shape), logits=floats(logits), logits_shape=list(logits.shape),
        generations=generations)
    (directory / "expected.json").write_text(json.dumps(expected))


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    spiece_path = out / "spiece.model"
    train_spiece(spiece_path, 500)
    tokenizer = PegasusTokenizer.from_pretrained(str(out))  # built from spiece.model, as from a checkpoint
    spiece = spiece_path.read_bytes()
    texts = [t for doc in papers("test") for t in doc]
    # Special tokens' text inside a text is that token for transformers: at any spacing.
    texts += ["a<mask_1>b", "x </s> y", "<unk_7><pad>  tail", "ends with <unk>", "<mask_2>", "<<unk>>", "<unk_1>",
              " </s>x", "x\t</s>", "trailing space ", "trailing newline\n", "\u3000wide\u3000", "zero\u200b width \u200b",
              "  ", ""]
    full = [tokenizer(t).input_ids for t in texts]
    truncated = [tokenizer(t, truncation=True, max_length=50).input_ids for t in texts]
    decoded = [tokenizer.decode(ids, skip_special_tokens=True) for ids in full]
    (out / "tokenizer_expected.json").write_text(json.dumps(dict(texts=texts, ids=full, truncated_50=truncated,
                                                        decoded=decoded, vocab_size=len(tokenizer))))
    for i, name in enumerate(CONFIGS):
        make(out, name, spiece, tokenizer, seed=1000 + i)
    (out / "transformers_version").write_text(transformers.__version__ + "\n")


if __name__ == "__main__":
    main()
