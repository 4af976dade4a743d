// main() for multi-rank gtest binaries: every rank runs every test; each test's verdict is
// combined across ranks with MPI_Allreduce (see mpi_test_util.hpp), so all ranks agree on
// failure, and the exit code is the logical OR of every rank's result.
//
// MPI is initialised like the program (src/main.cpp) does: MPI_THREAD_MULTIPLE requested (the
// stall watchdog's pings call MPI from their own thread).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

int main(int argc, char** argv) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0 && provided < MPI_THREAD_MULTIPLE)
    std::fprintf(stderr, "note: MPI_Init_thread asked for MPI_THREAD_MULTIPLE (%d), the library provides %d\n",
                 MPI_THREAD_MULTIPLE, provided);
  if (rank != 0) {  // one rank's report is enough; failures are agreed on inside the tests
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
