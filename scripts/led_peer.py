#!/usr/bin/env python3
"""The benchmark peer of `pyramidion-bench summarize`: Hugging Face's LED (Longformer-Encoder-Decoder).

Builds an LED with random weights at the sizes the benchmark passes (by default those of
configs/deep-pyramidion.json: 6 + 6 layers, d_model 512, 8 heads, FFN 2048, vocabulary 32,000,
attention window 512), then times one summarization job: --documents random documents of
--source-length tokens, in batches of --batch, each generating exactly --target-length tokens with
beam --beam (no repeated trigram, as pyramidion-summarize), fp32 on the CPU with --threads threads.
Prints one JSON object on stdout: seconds, documents, generated tokens, peak resident memory.

Installed for the benchmark only (scripts/setup_peer.sh), never a dependency of the library.
The first global token is the first one, as LED's authors do for summarization.
"""
import argparse
import json
import sys
import time

from peer_memory import reset_peak_rss, rss_bytes  # beside this script


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--documents", type=int, default=1)
    p.add_argument("--batch", type=int, default=1, help="documents per generate() call")
    p.add_argument("--source-length", type=int, default=8192)
    p.add_argument("--target-length", type=int, default=256)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--no-repeat-ngram-size", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0 keeps PyTorch's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--layers", type=int, default=6, help="encoder and decoder layers each")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--ffn", type=int, default=2048)
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--window", type=int, default=512)
    a = p.parse_args()
    for name in ("documents", "batch", "source_length", "target_length", "beam", "d_model", "layers", "heads",
                 "ffn", "vocab_size", "window"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")

    import torch
    from transformers import LEDConfig, LEDForConditionalGeneration
    import transformers

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    config = LEDConfig(vocab_size=a.vocab_size, d_model=a.d_model, encoder_layers=a.layers, decoder_layers=a.layers,
                       encoder_attention_heads=a.heads, decoder_attention_heads=a.heads, encoder_ffn_dim=a.ffn,
                       decoder_ffn_dim=a.ffn, attention_window=[a.window] * a.layers,
                       max_encoder_position_embeddings=max(a.source_length, 1024),
                       max_decoder_position_embeddings=max(a.target_length + 2, 1024), pad_token_id=1,
                       bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    model = LEDForConditionalGeneration(config).eval()
    params = sum(t.numel() for t in model.parameters())
    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(4, a.vocab_size, (a.documents, a.source_length), generator=g)
    settings = dict(num_beams=a.beam, min_new_tokens=a.target_length, max_new_tokens=a.target_length,
                    no_repeat_ngram_size=a.no_repeat_ngram_size, early_stopping=True, do_sample=False)

    def run(batch_ids, **overrides):
        mask = torch.ones_like(batch_ids)
        global_mask = torch.zeros_like(batch_ids)
        global_mask[:, 0] = 1
        return model.generate(input_ids=batch_ids, attention_mask=mask, global_attention_mask=global_mask,
                              **{**settings, **overrides})

    with torch.inference_mode():
        run(ids[:1, : min(a.source_length, 2 * a.window)], min_new_tokens=4, max_new_tokens=4)  # warm-up
        rss_before = rss_bytes("VmRSS")
        peak_reset = reset_peak_rss()
        generated = 0
        t0 = time.perf_counter()
        for start in range(0, a.documents, a.batch):
            out = run(ids[start:start + a.batch])
            generated += (out.shape[1] - 1) * out.shape[0]  # without the decoder start token
        seconds = time.perf_counter() - t0
    expected = a.documents * a.target_length
    if generated != expected:
        print(f"led_peer.py: generated {generated} tokens, expected {expected}", file=sys.stderr)
        return 1
    json.dump({"peer": "led", "transformers": transformers.__version__, "torch": torch.__version__,
               "threads": torch.get_num_threads(), "params": params, "documents": a.documents, "batch": a.batch,
               "source_length": a.source_length, "target_length": a.target_length, "beam": a.beam,
               "seconds": seconds, "generated_tokens": generated, "rss_before_bytes": rss_before,
               "peak_rss_bytes": rss_bytes("VmHWM") if peak_reset else -1}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
