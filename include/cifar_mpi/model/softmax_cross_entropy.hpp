#pragma once
// Softmax cross-entropy with mean reduction (PyTorch nn.CrossEntropyLoss()). Written by hand:
// it is (B, 10) floats, far below the cost of a primitive call, and fusing loss and gradient
// into one pass over the logits is simpler than chaining oneDNN's softmax and a reduction.
#include <cstddef>
#include <cstdint>

namespace cifar {

struct LossResult {
  double loss = 0;      // batch mean of -log softmax(logits)[label] (double: finite differences need it)
  size_t correct = 0;   // argmax(logits) == label
};

// logits (B, K) row-major; labels (B). If dlogits is not null it receives (=) the gradient of
// the mean loss: (softmax - onehot) / grad_scale_batch. grad_scale_batch is normally B; a
// distributed caller may pass the global batch so that summing gradients over ranks gives the
// union-batch mean.
LossResult softmax_cross_entropy(const float* logits, const int32_t* labels, size_t batch, size_t classes,
                                 float* dlogits, size_t grad_scale_batch);

}  // namespace cifar
