#pragma once
// One rank's string on every rank: a file read once on rank 0 (so that a node without it, or with
// another version, cannot disagree), or the one message all ranks throw.
#include <mpi.h>

#include <string>

namespace cifar {

// Collective over `comm`: returns `root`'s `text` on every rank (the others' `text` is ignored).
std::string broadcast_text(std::string text, int root, MPI_Comm comm);

}  // namespace cifar
