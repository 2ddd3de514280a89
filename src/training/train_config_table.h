// Private: the table of TrainConfig's fields (util/field_table.h), for the parts of training that
// read it besides the config itself (the resume diff of the checkpoint's saved config).
#pragma once

#include <pyramidion/train.h>

#include "util/field_table.h"

namespace pyramidion {
namespace detail {

const FieldTable<TrainConfig>& train_config_table();

}  // namespace detail
}  // namespace pyramidion
