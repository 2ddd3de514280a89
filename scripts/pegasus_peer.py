#!/usr/bin/env python3
"""The PEGASUS peers of `pyramidion-bench summarize`: Hugging Face transformers and CTranslate2 on the same weights.

Two subcommands, in the peer environment of scripts/setup_peer.sh (never a dependency of the library):

  make  builds a PEGASUS model with random weights made by transformers from its configuration
        (by default PEGASUS-large's shape: d_model 1024, 16 + 16 layers, 16 heads, FFN 4096,
        vocabulary 96103), with a sentencepiece model of that vocabulary (PegasusTokenizer's 103
        special ids plus pieces trained on the bundled papers, padded with filler pieces: a
        benchmark feeds ids, not text), saved as a user has it (save_pretrained) in OUT/hf. Then
        converts it with CTranslate2's own converter into OUT/ct2-float32 and OUT/ct2-int8.
        --architecture bigbird-pegasus makes google/bigbird-pegasus-large-arxiv's configuration
        instead (the same sizes, 4096 learned positions, block-sparse encoder attention with blocks
        of 64 and 3 random blocks, gelu_new, no biases), in OUT/hf only: CTranslate2 has no
        BigBird-PEGASUS.
  run   times one summarization job on a model directory: --engine hf (transformers, float32) or
        ct2 (CTranslate2, --compute-type float32 or int8), the documents of --ids (JSON lines of
        token ids, eos included: what pyramidion-bench writes for both sides) in batches of
        --batch, beam --beam, exactly --new-tokens tokens each. Prints one JSON object: seconds,
        documents, generated tokens, peak resident memory (VmHWM after resetting it).

  pegasus_peer.py make --out /tmp/pegasus-large
  pegasus_peer.py make --out /tmp/bigbird-pegasus-large --architecture bigbird-pegasus
  pegasus_peer.py run --engine ct2 --model /tmp/pegasus-large/ct2-int8 --compute-type int8 --ids ids.jsonl
"""
import argparse
import io
import json
import pathlib
import sys
import time

from peer_memory import reset_peak_rss, rss_bytes  # beside this script

ROOT = pathlib.Path(__file__).resolve().parents[1]
OFFSET = 103  # PegasusTokenizer's special ids before the sentencepiece pieces


def spiece_of_size(pieces):
    """A unigram sentencepiece model of exactly `pieces` pieces (pad 0, eos 1, unk 2, as PEGASUS's):
    trained on the bundled papers, then filler pieces that no text produces."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    texts = []
    for line in open(ROOT / "data" / "aclsum" / "train.jsonl"):
        r = json.loads(line)
        texts += [" ".join(r["article_text"]), " ".join(r["abstract_text"])]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=buf, vocab_size=min(pieces, 2000),
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram", minloglevel=2)
    proto = model_pb2.ModelProto()
    proto.ParseFromString(buf.getvalue())
    lowest = min(p.score for p in proto.pieces if p.type == model_pb2.ModelProto.SentencePiece.NORMAL)
    for i in range(pieces - len(proto.pieces)):
        piece = proto.pieces.add()
        piece.piece = f"\u2581filler{i}"
        piece.score = lowest - 1.0
    return proto.SerializeToString()


def make(a):
    import torch
    import transformers

    out = pathlib.Path(a.out)
    hf = out / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(a.seed)
    sizes = dict(vocab_size=a.vocab_size, d_model=a.d_model, encoder_layers=a.layers, decoder_layers=a.layers,
                 encoder_attention_heads=a.heads, decoder_attention_heads=a.heads, encoder_ffn_dim=a.ffn,
                 decoder_ffn_dim=a.ffn, scale_embedding=True)
    if a.architecture == "bigbird-pegasus":  # as google/bigbird-pegasus-large-arxiv's config
        config = transformers.BigBirdPegasusConfig(
            **sizes, max_position_embeddings=a.max_positions or 4096, activation_function="gelu_new",
            attention_type="block_sparse", block_size=64, num_random_blocks=3, use_bias=False)
        model = transformers.BigBirdPegasusForConditionalGeneration(config).eval()
    else:  # as google/pegasus-large's config
        config = transformers.PegasusConfig(**sizes, max_position_embeddings=a.max_positions or 1024,
                                            activation_function="relu")
        model = transformers.PegasusForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.final_logits_bias[0, config.pad_token_id] = -1e4  # neither side generates pad
    model.save_pretrained(hf)
    (hf / "spiece.model").write_bytes(spiece_of_size(a.vocab_size - OFFSET))
    transformers.PegasusTokenizer.from_pretrained(str(hf))  # the tokenizer a user would load reads it
    params = sum(t.numel() for t in model.parameters())
    made = {"made": str(out), "architecture": config.architectures[0] if config.architectures else
            type(model).__name__, "params": params, "transformers": transformers.__version__}
    if a.architecture == "bigbird-pegasus":
        json.dump(made, sys.stdout)
        print()
        return 0
    import ctranslate2

    # CTranslate2's Pegasus loader (4.8) reads config.normalize_before and normalize_embedding, which
    # transformers 5's PegasusConfig no longer has: PEGASUS is pre-norm, without a LayerNorm on the
    # embeddings (as CTranslate2's Marian loader sets them for Marian).
    loader = ctranslate2.converters.transformers.PegasusLoader
    original = loader.get_model_spec

    def get_model_spec(self, model):
        model.config.normalize_before = True
        model.config.normalize_embedding = False
        return original(self, model)

    loader.get_model_spec = get_model_spec
    for quantization in ("float32", "int8"):
        converter = ctranslate2.converters.TransformersConverter(str(hf))
        converter.convert(str(out / f"ct2-{quantization}"), quantization=quantization, force=True)
    json.dump({**made, "ctranslate2": ctranslate2.__version__}, sys.stdout)
    print()
    return 0


def run(a):
    docs = [json.loads(line) for line in open(a.ids) if line.strip()]
    if not docs:
        print(f"pegasus_peer.py: {a.ids} holds no documents", file=sys.stderr)
        return 2
    batches = [docs[i:i + a.batch] for i in range(0, len(docs), a.batch)]
    info = {}
    if a.engine == "hf":
        import torch
        import transformers

        if a.threads > 0:
            torch.set_num_threads(a.threads)
        # PEGASUS or BigBird-PEGASUS (with the attention its config.json names), as saved.
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(a.model, dtype=torch.float32).eval()
        settings = dict(num_beams=a.beam, min_new_tokens=a.new_tokens, max_new_tokens=a.new_tokens,
                        no_repeat_ngram_size=a.no_repeat_ngram_size, early_stopping=True, do_sample=False,
                        forced_eos_token_id=None)

        def generate(batch, **overrides):
            n = max(len(d) for d in batch)
            ids = torch.tensor([d + [0] * (n - len(d)) for d in batch])
            mask = torch.tensor([[1] * len(d) + [0] * (n - len(d)) for d in batch])
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, **{**settings, **overrides})
            return (out.shape[1] - 1) * out.shape[0]  # without the decoder start token

        generate([docs[0][:16]], min_new_tokens=2, max_new_tokens=2)  # warm-up
        info = {"transformers": transformers.__version__, "torch": torch.__version__,
                "threads": torch.get_num_threads(), "architecture": type(model).__name__,
                "attention_type": getattr(model.config, "attention_type", "full")}
    else:
        import ctranslate2

        translator = ctranslate2.Translator(a.model, device="cpu", compute_type=a.compute_type,
                                            inter_threads=1, intra_threads=max(a.threads, 0))
        model_dir = pathlib.Path(a.model)
        if (model_dir / "shared_vocabulary.json").exists():  # CTranslate2 >= 3
            vocabulary = json.load(open(model_dir / "shared_vocabulary.json"))
        else:
            vocabulary = (model_dir / "shared_vocabulary.txt").read_text().split("\n")

        def generate(batch, min_length=None, max_length=None):
            tokens = [[vocabulary[i] for i in d] for d in batch]
            n = a.new_tokens if max_length is None else max_length
            results = translator.translate_batch(tokens, beam_size=a.beam, max_decoding_length=n,
                                                 min_decoding_length=n if min_length is None else min_length,
                                                 no_repeat_ngram_size=a.no_repeat_ngram_size, max_batch_size=0,
                                                 return_scores=False)
            return sum(len(r.hypotheses[0]) for r in results)

        generate([docs[0][:16]], min_length=2, max_length=2)  # warm-up
        info = {"ctranslate2": ctranslate2.__version__, "compute_type": a.compute_type, "threads": a.threads}
    rss_before = rss_bytes("VmRSS")
    peak_reset = reset_peak_rss()
    generated = 0
    t0 = time.perf_counter()
    for batch in batches:
        generated += generate(batch)
    seconds = time.perf_counter() - t0
    expected = len(docs) * a.new_tokens
    if generated != expected:
        print(f"pegasus_peer.py: {a.engine} generated {generated} tokens, expected {expected}", file=sys.stderr)
        return 1
    json.dump({"peer": a.engine, **info, "documents": len(docs), "batch": a.batch, "beam": a.beam,
               "new_tokens": a.new_tokens, "seconds": seconds, "generated_tokens": generated,
               "rss_before_bytes": rss_before, "peak_rss_bytes": rss_bytes("VmHWM") if peak_reset else -1},
              sys.stdout)
    print()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="a random PEGASUS model, saved and converted")
    m.add_argument("--out", required=True)
    m.add_argument("--architecture", choices=("pegasus", "bigbird-pegasus"), default="pegasus")
    m.add_argument("--d-model", type=int, default=1024)
    m.add_argument("--layers", type=int, default=16, help="encoder and decoder layers each")
    m.add_argument("--heads", type=int, default=16)
    m.add_argument("--ffn", type=int, default=4096)
    m.add_argument("--vocab-size", type=int, default=96103)
    m.add_argument("--max-positions", type=int, default=0, help="0: 1024 (pegasus), 4096 (bigbird-pegasus)")
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", help="time one summarization job")
    r.add_argument("--engine", choices=("hf", "ct2"), required=True)
    r.add_argument("--model", required=True, help="the Hugging Face directory (hf) or a converted one (ct2)")
    r.add_argument("--compute-type", choices=("float32", "int8"), default="float32")
    r.add_argument("--ids", required=True, help="JSON lines: one list of token ids per document, eos included")
    r.add_argument("--batch", type=int, default=1)
    r.add_argument("--beam", type=int, default=4)
    r.add_argument("--new-tokens", type=int, default=128)
    r.add_argument("--no-repeat-ngram-size", type=int, default=0)
    r.add_argument("--threads", type=int, default=0, help="0 keeps the engine's default")
    a = p.parse_args()
    if a.command == "make":
        for name in ("d_model", "layers", "heads", "ffn", "vocab_size"):
            if getattr(a, name) < 1:
                p.error(f"--{name.replace('_', '-')} must be >= 1")
        if a.max_positions < 0:
            p.error("--max-positions must be >= 0")
        if a.vocab_size <= OFFSET + 8:
            p.error(f"--vocab-size must be > {OFFSET + 8} (PegasusTokenizer's {OFFSET} special ids and pieces)")
        return make(a)
    for name in ("batch", "beam", "new_tokens"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
