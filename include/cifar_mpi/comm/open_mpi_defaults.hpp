#pragma once
// The Open MPI settings cifar_mpi changes from Open MPI's defaults, and why. Each is set in the
// environment before MPI_Init only where the user has not set it (the user's choice wins, as
// an OMPI_MCA_* variable or mpirun's --mca); other MPI libraries ignore the variables.
//
// 1. coll_libnbc_iallreduce_algorithm = 3. Open MPI 4.1's libnbc reduces an in-place
//    MPI_Iallreduce, or any on fewer than 4 ranks, by a binomial tree whatever its size: reduce
//    to one rank, then broadcast, so every byte crosses a link twice, one way at a time. Measured
//    between 2 simulated hosts at 1 Gbit/s, one bucket of 1.26 MB: 15.0 ms polled against 10.1 ms
//    for the blocking form. Rabenseifner's reduce-scatter + all-gather (libnbc's algorithm 3,
//    which falls back to its ring for counts below the largest power of two of ranks) takes
//    10.1 ms polled too.
// 2. btl_vader_single_copy_mechanism = none. Between ranks of one host, Open MPI moves a message
//    over 4 KB by one copy through the kernel (CMA: process_vm_readv), a system call and page
//    pinning per message; "none" copies in and out of the shared-memory segment instead. The
//    gradients of this network are 1.26 MB, so every message is at most that, and at those sizes
//    the copies win: MPI_Allreduce at 2 ranks on one host (build/allreduce_bench, AMD EPYC VM)
//    16 KB 6.9 -> 2.1 us, 1 MB 96 -> 66 us, 4 MB 403 -> 286 us; our ring and rhd alike; a training
//    step's all-reduce (time-to-accuracy recipe, 2 ranks, medians of 300 steps, 3 alternated
//    rounds) 0.32-0.39 -> 0.21-0.22 ms. CMA pays off for messages of tens of MB, which this model
//    never sends.
// 3. btl_tcp_eager_limit = 1 MiB (Open MPI's is 64 KB). A larger message goes by rendezvous: the
//    receiver must be inside MPI to match it and answer, then the sender to push the rest, and
//    with overlap (gradient_reducer.hpp) a rank is inside MPI only at the pauses of backward, a
//    layer apart. Sent eagerly, a message is handed to the kernel whole when it is posted, and
//    the kernel moves it while both ranks compute. 1 MiB covers the ring's and rhd's segments
//    and MPI's halves of this network's 1.26 MB of gradients at 2 or more ranks.
namespace cifar {

void apply_open_mpi_defaults();

}  // namespace cifar
