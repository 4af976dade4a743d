#pragma once
// Comparing tensors in tests. A tensor passes when
//     max_i |got[i] - want[i]|  <=  max(atol, rtol * max_i |want[i]|)
// i.e. one tolerance per tensor, relative to the tensor's scale (so rtol = atol = 1e-4 is the
// "1e-4 * max(1, max|want|)" rule). Every comparison reports its worst element: flat index (and
// multi-index when a shape is given), both values, the error and the tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <cstddef>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cifar_mpi/util/error.hpp"

namespace cifar::testing {

// The message of the cifar::Error that f throws, or "" if it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct CloseReport {
  bool ok = true;
  size_t size = 0;
  size_t worst_index = 0;
  double got = 0, want = 0;
  double max_abs_err = 0;   // max |got - want|
  double max_abs_want = 0;  // max |want|
  double tol = 0;           // the tolerance the error was held to
  double rel_to_scale() const { return max_abs_err / std::max(max_abs_want, 1e-30); }
};

inline std::string format_index(size_t flat, const std::vector<size_t>& shape) {
  std::ostringstream os;
  os << flat;
  if (shape.size() > 1) {
    std::vector<size_t> idx(shape.size());
    size_t r = flat;
    for (size_t k = shape.size(); k-- > 0;) {
      idx[k] = shape[k] ? r % shape[k] : 0;
      r = shape[k] ? r / shape[k] : 0;
    }
    os << " [";
    for (size_t k = 0; k < idx.size(); ++k) os << (k ? "," : "") << idx[k];
    os << "]";
  }
  return os.str();
}

// Compares without asserting; NaN/Inf in `got` (or any mismatch in non-finite values) fails.
template <class A, class B>
CloseReport compare_close(const std::vector<A>& got, const std::vector<B>& want, double rtol,
                          double atol) {
  CloseReport r;
  r.size = want.size();
  if (got.size() != want.size()) {
    r.ok = false;
    return r;
  }
  for (size_t i = 0; i < want.size(); ++i)
    if (std::isfinite(double(want[i])))
      r.max_abs_want = std::max(r.max_abs_want, std::fabs(double(want[i])));
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = double(got[i]), w = double(want[i]);
    double e = 0;  // equal values (including the same infinity) count as no error
    if (g != w)
      e = std::isfinite(g) && std::isfinite(w) ? std::fabs(g - w)
                                               : std::numeric_limits<double>::infinity();
    if (e > r.max_abs_err || i == 0) r.max_abs_err = e, r.worst_index = i, r.got = g, r.want = w;
  }
  r.tol = std::max(atol, rtol * r.max_abs_want);
  r.ok = r.max_abs_err <= r.tol;
  return r;
}

inline std::string describe(const std::string& name, const CloseReport& r,
                            const std::vector<size_t>& shape = {}) {
  std::ostringstream os;
  os.precision(9);
  os << name << ": ";
  os << "max|err| = " << r.max_abs_err << " (" << r.rel_to_scale() << " of max|want| = "
     << r.max_abs_want << "), tol " << r.tol << ", worst at " << format_index(r.worst_index, shape)
     << ": got " << r.got << ", want " << r.want << " (" << r.size << " elements)";
  return os.str();
}

// EXPECTs that `got` is close to `want` (see the rule at the top), always printing the worst
// error, and returns the report so callers can collect statistics.
template <class A, class B>
CloseReport expect_close(const std::string& name, const std::vector<A>& got,
                         const std::vector<B>& want, double rtol, double atol,
                         const std::vector<size_t>& shape = {}) {
  CloseReport r = compare_close(got, want, rtol, atol);
  if (got.size() != want.size()) {
    ADD_FAILURE() << name << ": size mismatch, got " << got.size() << " elements, want "
                  << want.size();
    return r;
  }
  const std::string msg = describe(name, r, shape);
  if (r.ok)
    std::cout << "[  CLOSE   ] " << msg << "\n";
  else
    ADD_FAILURE() << msg;
  return r;
}

}  // namespace cifar::testing
