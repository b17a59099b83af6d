// Thread counts. OpenCV's default is all cores; --threads N overrides it. The training
// library adds LibTorch's pool (nn/torch_setup.h). 0 = all cores.
#pragma once

namespace maskwatch {

int resolve_threads(int requested);       // 0 -> hardware concurrency
void set_compute_threads(int requested);  // OpenCV: at most one per core

// OpenMP (LibTorch, OpenBLAS) threads spin ~300000 times at every barrier before they sleep.
// Beside another busy process that turns a fair 2x slowdown of training into 5-11x (waiting
// threads burn the core the late thread needs; bench/contention.sh). A spin count of 1000
// keeps the uncontended speed. libgomp reads the setting once, when it loads, so it must be
// in the environment before the process starts: set it when the user has not chosen one.
// Returns true when it changed the environment.
bool set_openmp_spin_default();
// For an executable that loads libgomp itself: set the default and exec itself again so that
// the runtime sees it (once: the second start finds the variable set). No-op when set.
void reexec_with_openmp_spin_default(char** argv);

}  // namespace maskwatch
