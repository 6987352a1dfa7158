// Checkpoints: the versioned file of named entries (checkpoint/format.hpp),
// written atomically (checkpoint/atomic_file.hpp), and a network's training
// state in it (checkpoint/training_state.hpp). This header only includes.
#pragma once

#include "checkpoint/atomic_file.hpp"
#include "checkpoint/format.hpp"
#include "checkpoint/training_state.hpp"
