// main() for the single-process tests: MPI is initialised as a singleton (N = 1) because the
// engine's training loop and collectives are MPI code even in one process.
#include <gtest/gtest.h>
#include <mpi.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  MPI_Init(&argc, &argv);
  int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
