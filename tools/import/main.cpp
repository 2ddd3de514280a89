// pyramidion-import: a pretrained checkpoint in, a pyramidion model directory out (a thin shell
// over pyramidion::import_hf, include/pyramidion/import.h).
//
//   pyramidion-import hf pegasus-arxiv --out pegasus-arxiv-8k --max-source-length 8192 \
//       --block-size 512 --pooled-lengths 0,0,0,0,0,0,0,0,4096,0,0,0,2048,0,0,1024
//
// Exit status (tools/common/exit_status.h): 0 imported, 2 bad input (an unsupported
// architecture, missing or damaged files, invalid flags), 1 any other error.
#include <pyramidion/import.h>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "common/exit_status.h"
#include "common/standard_streams.h"

int main(int argc, char** argv) {
  const auto streams = pyramidion::tools::StandardStreams::secure();  // first: before any file is opened
  (void)streams;  // directories in and out: no standard stream is read or written
  CLI::App app{
      "Import a pretrained checkpoint as a pyramidion model directory (config.json, weights.pt, "
      "tokenizer.model, generation.json), which pyramidion-summarize reads and pyramidion-train --init "
      "fine-tunes (docs/pretrained.md).\n\nExit codes: 0 imported, 2 bad input, 1 other errors."};
  app.require_subcommand(1);
  auto* hf = app.add_subcommand(
      "hf", "a Hugging Face model directory (config.json, model.safetensors or pytorch_model.bin, spiece.model): "
            "PegasusForConditionalGeneration or BigBirdPegasusForConditionalGeneration");
  std::string hf_dir, out;
  pyramidion::ImportOptions options;
  hf->add_option("directory", hf_dir, "the Hugging Face model directory")->required();
  hf->add_option("--out", out, "the pyramidion model directory to write (replaced atomically)")->required();
  hf->add_option("--max-source-length", options.max_source_length(),
                 "longest source in tokens, eos included; 0 = the checkpoint's max_position_embeddings "
                 "(sinusoidal positions extend to any length; learned ones are repeated)")
      ->check(pyramidion::tools::int64_text())
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  hf->add_option("--max-target-length", options.max_target_length(),
                 "longest summary in tokens, eos included; 0 = the checkpoint's max_position_embeddings")
      ->check(pyramidion::tools::int64_text())
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  hf->add_option("--block-size", options.block_size(),
                 "blockwise encoder attention within blocks of this many tokens; 0 = full attention")
      ->check(pyramidion::tools::int64_text())
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  hf->add_option("--pooled-lengths", options.pooled_lengths(),
                 "tokens kept after each encoder layer, comma-separated, one per layer (0 = no pooling "
                 "there): makes the encoder a (Deep)Pyramidion; default: no pooling")
      ->delimiter(',')
      ->check(pyramidion::tools::int64_text());
  hf->add_option("--dropout", options.dropout(), "dropout for fine-tuning; default: the checkpoint's");
  hf->add_option("--seed", options.seed(), "seed of the new pooling layers' scorers")->capture_default_str();
  if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;

  return pyramidion::tools::run("pyramidion-import", [&] {
    const auto report = pyramidion::import_hf(hf_dir, out, options);
    const auto& c = report.config;
    std::cerr << "pyramidion-import: " << report.architecture << " from " << report.weights_source << ": "
              << report.parameters << " parameters, d " << c.d_model << ", " << c.encoder_layers << " + "
              << c.decoder_layers << " layers, vocabulary " << c.vocab_size << ", sources up to "
              << c.max_source_length << " tokens\n";
    for (const auto& note : report.notes) std::cerr << "pyramidion-import: note: " << note << "\n";
    std::cerr << "pyramidion-import: wrote " << out << "\n";
    return pyramidion::tools::kDone;
  });
}
