// pyramidion-train: trains a Seq2Seq on summarization data (a thin shell over pyramidion::train,
// include/pyramidion/train.h). Options have one precedence: defaults < --config file < --set and
// the named flags, in command-line order.
//
//   pyramidion-train --config configs/train/aclsum-small.json --out runs/small
//   pyramidion-train --config ... --out runs/small --resume         # continue after a stop
//   pyramidion-train --config ... --out runs/small --resume auto    # under a launcher that restarts
//   scripts/launch_local.sh 2 -- pyramidion-train --config ...     # data-parallel, 2 processes
#include <pyramidion/train.h>

#include <CLI/CLI.hpp>

#include "common/exit_status.h"
#include "common/standard_streams.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int signal) {
  // The first SIGINT/SIGTERM asks for a checkpoint and a clean exit at the end of the current
  // update; a second one kills as usual.
  g_stop.store(true);
  std::signal(signal, SIG_DFL);
}

std::string fields_help() {
  std::string text =
      "\nConfig fields: the JSON keys of --config and the keys of --set KEY=VALUE, with their defaults "
      "(docs/training.md says more):\n";
  text += pyramidion::TrainConfig::help_text();
  text += "\nModel fields: --set model.FIELD=VALUE overrides any field of the model preset "
          "(include/pyramidion/config.h), e.g. --set model.dropout=0.2; their defaults (a preset sets its own):\n";
  text += pyramidion::ModelConfig::help_text();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  pyramidion::tools::StandardStreams::secure();  // first: before any file is opened
  CLI::App app{"Train a pyramidion encoder-decoder on summarization data (arXiv/PubMed JSON lines or "
               "{id, document, summary} JSON lines)."};
  app.footer(fields_help());
  std::string config_path;
  // Every override in command-line order: (key, value).
  std::vector<std::pair<std::string, std::string>> overrides;
  std::vector<std::string> resume;  // --resume [auto]: none or one value
  bool print_config = false;
  int64_t kill_at_step = 0;
  app.add_option("--config", config_path, "training config (JSON); fields not given keep their defaults")
      ->check(CLI::ExistingFile);
  const auto named = [&](const char* flag, const char* key, const char* help) {
    // trigger_on_parse: the callback runs at each occurrence, so `overrides` keeps the command
    // line's order across flags (a later --out replaces an earlier --set out=..., and the reverse).
    app.add_option_function<std::string>(
           flag, [&overrides, key](const std::string& v) { overrides.emplace_back(key, v); }, help)
        ->trigger_on_parse();
  };
  named("--model", "model", "model preset (ModelConfig JSON), e.g. configs/deep-pyramidion.json");
  named("--init", "init",
        "start from this model directory (pyramidion-import's output or a checkpoint): its architecture, weights "
        "and tokenizer, a fresh optimizer at step 0; --model and --set model.* may change only the pooling "
        "schedule, block size, lengths and dropout (docs/pretrained.md)");
  named("--train", "train", "training data (JSON lines)");
  named("--valid", "valid", "validation data (JSON lines)");
  named("--data", "data", "a dataset made by pyramidion-preprocess, instead of --train (memory-mapped)");
  named("--out", "out", "output directory (checkpoints, tokenizer, metrics)");
  named("--max-steps", "max_steps", "optimizer updates in total");
  app.add_option_function<std::vector<std::string>>(
         "--set",
         [&overrides](const std::vector<std::string>& items) {
           for (const auto& item : items) {
             const auto eq = item.find('=');
             if (eq == std::string::npos || eq == 0)
               throw CLI::ValidationError("--set", "expected KEY=VALUE, got '" + item + "'");
             overrides.emplace_back(item.substr(0, eq), item.substr(eq + 1));
           }
         },
         "set any config field: KEY=VALUE (repeatable); model fields as model.FIELD=VALUE")
      ->allow_extra_args(true)
      ->take_all()
      ->trigger_on_parse();
  app.add_option("--resume", resume,
                 "continue from the newest checkpoint in the output directory (an error when there is none); "
                 "--resume auto: continue when there is one, else start a fresh run (one command line for "
                 "launchers that restart a failed job: torchrun --max-restarts, Slurm --requeue)")
      ->expected(0, 1);
  app.add_flag("--print-config", print_config, "print the effective config (JSON) and exit");
  app.add_option("--kill-at-step", kill_at_step, "testing: SIGKILL this process right after update N")
      ->group("");  // hidden: fault-injection tests only
  app.footer(app.get_footer() +
             "\nExit status (docs/reliability.md): 0 done; 2 bad input (invalid flags or values, missing or "
             "malformed inputs), reported before any work; 1 other errors (a failed write names the path and "
             "the reason)" + std::string("; a run stopped by SIGINT/SIGTERM saves a checkpoint and exits 0; another run holding --out is 1."));
  if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;

  return pyramidion::tools::run("pyramidion-train", [&] {
    pyramidion::TrainConfig config;
    if (!config_path.empty()) config = pyramidion::TrainConfig::from_json_file(config_path);
    for (const auto& [key, value] : overrides) config.set(key, value);
    config.validate();  // every check before any work starts
    if (print_config) {
      pyramidion::tools::print("the config", config.to_json_string() + "\n");
      return pyramidion::tools::kDone;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    // A log reader that goes away (a closed terminal's output filter, `| head`) must not kill the
    // run before its next checkpoint: writes to it fail instead, and the run goes on.
    std::signal(SIGPIPE, SIG_IGN);
    auto mode = pyramidion::Resume::never;
    if (app.count("--resume") > 0) {
      if (resume.empty() || resume.front().empty()) {  // (CLI11 gives "" for a flag without its value)
        mode = pyramidion::Resume::required;
      } else if (resume.front() == "auto") {
        mode = pyramidion::Resume::automatic;
      } else {
        throw std::invalid_argument("--resume takes no value, or \"auto\"; got \"" + resume.front() + "\"");
      }
    }
    auto options = pyramidion::TrainRunOptions().resume(mode).log(&std::cerr).stop(&g_stop);
    if (kill_at_step > 0)
      options.on_update([kill_at_step](int64_t step) {
        if (step == kill_at_step) std::raise(SIGKILL);
      });
    const auto result = pyramidion::train(config, options);
    if (!result.checkpoint.empty()) pyramidion::tools::print("the checkpoint's path", result.checkpoint + "\n");
    return pyramidion::tools::kDone;
  });
}
