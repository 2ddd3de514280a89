// Private: the checks of the paths users give, shared by every job that reads files and writes
// others (training, pyramidion-summarize, pyramidion-evaluate, pyramidion-preprocess), so that each
// refuses the same mistakes with the same message, as bad input (std::invalid_argument), before
// any work.
//
//   check_input_file("TrainConfig.train", config.train);          // exists, is a file, is readable
//   check_output_file("--output", output);                       // its directory exists
//   check_not_an_input("--output", output, {{"--input", input}}); // by device and inode, not name
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pyramidion {
namespace detail {

/// Throws std::invalid_argument "<what> = '<path>': no such file" / "...: is a directory, not a
/// file" / "...: cannot be read: <the OS reason>" unless `path` is a readable regular file (or a
/// link to one, or a pipe or character device such as /dev/stdin).
void check_input_file(const std::string& what, const std::string& path);

/// Throws std::invalid_argument "<what> = '<path>': the directory '<parent>' does not exist" (or
/// "...: is a directory", "...: '<parent>' is not a directory") unless a file can be created or
/// replaced at `path` ("-" and "" are not files and pass).
void check_output_file(const std::string& what, const std::string& path);

/// True when both paths exist and are the same file (the same device and inode: a link, a second
/// name, "./x" and "x" all count).
bool same_file(const std::string& a, const std::string& b);

/// Throws std::invalid_argument "<what> = '<output>' is the same file as <input what> = '<input>';
/// writing it would destroy that input" when `output` is one of `inputs` ((what, path) pairs; "-"
/// and "" are never files, and an output that is a device or a pipe destroys nothing).
void check_not_an_input(const std::string& what, const std::string& output,
                        const std::vector<std::pair<std::string, std::string>>& inputs);

}  // namespace detail
}  // namespace pyramidion
