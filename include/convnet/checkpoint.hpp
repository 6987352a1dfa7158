// Checkpoints: the versioned file of named entries (checkpoint/format.hpp),
// written atomically (checkpoint/atomic_file.hpp), the one save/load pair every
// stateful object has (checkpoint/state.hpp), and a network's training state in
// it (train/training_state.hpp). This header only includes.
#pragma once

#include "checkpoint/atomic_file.hpp"
#include "checkpoint/format.hpp"
#include "checkpoint/state.hpp"
#include "train/training_state.hpp"
