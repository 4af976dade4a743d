#pragma once
// Gradient compression on the wire: what a bucket's floats look like while they travel.
//
//   fp32  the gradients as they are (4 bytes a value);
//   bf16  bfloat16: float32's 8-bit exponent, 7-bit mantissa (2 bytes; same range, ~3 digits);
//   fp16  IEEE half: 5-bit exponent, 10-bit mantissa (2 bytes; ~3.3 digits, |x| <= 65504).
//
// As in PyTorch DDP's bf16/fp16 compression hooks and Horovod's fp16 compressor, values are
// rounded to the wire type (round to nearest even) only to be sent; every addition is done in
// float32 on arrival and rounded again to send on. The 16-bit types halve the bytes a step moves;
// the cost is precision (loss curve and accuracy after one epoch: docs/results.md, "Compression on
// the wire").
#include <mpi.h>

#include <cstddef>
#include <cstdint>

#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

// float <-> 16-bit wire value (bf16 or fp16 only). Round to nearest even; NaN stays NaN, and a
// float beyond fp16's range becomes +-inf (the run's non-finite check then names it).
uint16_t encode_wire16(float x, WireDtype d);
float decode_wire16(uint16_t v, WireDtype d);

void encode_wire16(const float* src, uint16_t* dst, size_t n, WireDtype d);
void decode_wire16(const uint16_t* src, float* dst, size_t n, WireDtype d);
// dst[i] += decode(src[i]), in float32: the reduction of a received 16-bit segment.
void add_decoded_wire16(float* __restrict dst, const uint16_t* __restrict src, size_t n, WireDtype d);
// x = decode(encode(x)): makes a float buffer hold exactly what the wire would carry.
void round_to_wire16(float* x, size_t n, WireDtype d);

// A new MPI_Op summing 16-bit wire values (MPI_UINT16_T) in float32: out = encode(decode(a) +
// decode(b)). Commutative (so every rank of MPI_Allreduce gets the same bits); the caller frees
// it with MPI_Op_free.
MPI_Op create_wire_sum_op(WireDtype d);

}  // namespace cifar
