// Private: the names of DataFormat (include/pyramidion/data.h), for every reader of a format name
// (data_format_from_string, TrainConfig's JSON).
#pragma once

#include <pyramidion/data.h>

#include "util/enum_names.h"

namespace pyramidion {
namespace detail {

/// "auto", "arxiv", "plain".
const EnumNames<DataFormat>& data_format_names();

}  // namespace detail
}  // namespace pyramidion
