// Helpers shared by the binding files: shape checks that name the argument,
// output allocation, and views of NumPy buffers. No math here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "buffers.hpp"
#include "flexrnn/interrupt.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn::py_bind {

namespace py = pybind11;

// Forgets a signal's Python error kept by an earlier call that was not interrupted after all
// (interrupt.cpp). Needs the GIL.
void discard_pending_interrupt();

// The GIL released around a kernel call, and the call made interruptible: Ctrl-C raises
// KeyboardInterrupt within about a second (interrupt.hpp; the bindings' hook asks Python for
// pending signals). One per call, made with the GIL held; also starts a call of the output
// buffer cache (buffers.hpp).
class LongCall {
  struct Start {
    Start() {
      discard_pending_interrupt();
      buffer_cache_next_call();
    }
  } start_;
  py::gil_scoped_release release_;
  InterruptScope scope_;
};

// Arrays a kernel updates in place, copied first and written back unless the call
// completes (interrupted or failed): an interrupted call leaves its inputs as they were.
class InPlace {
 public:
  template <class T>
  void keep(T* data, py::ssize_t count) {
    if (!data || count <= 0) return;
    const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(T);
    saved_.push_back({data, std::vector<char>(static_cast<const char*>(static_cast<void*>(data)),
                                              static_cast<const char*>(static_cast<void*>(data)) +
                                                  bytes)});
  }
  template <class T>
  void keep(py::array_t<T, py::array::c_style>& a) {
    keep(a.mutable_data(), a.size());
  }
  void commit() { saved_.clear(); }
  InPlace() = default;
  InPlace(const InPlace&) = delete;
  InPlace& operator=(const InPlace&) = delete;
  ~InPlace() {
    for (const Saved& s : saved_) std::memcpy(s.data, s.copy.data(), s.copy.size());
  }

 private:
  struct Saved {
    void* data;
    std::vector<char> copy;
  };
  std::vector<Saved> saved_;
};
template <class S>
using Arr = py::array_t<S, py::array::c_style>;

inline std::string shape_str(const std::vector<py::ssize_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// Raises ValueError unless every element of a is finite (here rather than in
// Python: a vectorised pass costs far less than NumPy's isfinite per argument).
template <class S>
void require_finite(const Arr<S>& a, const char* name) {
  const Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>> v(a.data(), a.size());
  if (!v.allFinite()) throw py::value_error(std::string(name) + ": contains NaN or infinite values");
}

// Raises ValueError unless a has exactly this shape (and, if finite, only finite values).
template <class S>
const S* checked(const Arr<S>& a, const std::vector<py::ssize_t>& shape, const char* name,
                 bool finite = true) {
  std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (got != shape) {
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
                          shape_str(got));
  }
  if (finite) require_finite(a, name);
  return a.data();
}

template <class S>
const S* checked(const std::optional<Arr<S>>& a, const std::vector<py::ssize_t>& shape,
                 const char* name, bool finite = true) {
  return a ? checked(*a, shape, name, finite) : nullptr;
}

// An array updated in place: exact dtype, C-contiguous (no converted copy: pybind11 is told
// noconvert), writeable, of this shape, finite.
template <class S>
S* inout(Arr<S>& a, const std::vector<py::ssize_t>& shape, const char* name) {
  checked(a, shape, name);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return a.mutable_data();
}

template <class S>
Arr<S> empty3(Index T, Index B, Index N) {
  return cached_array<S>({T, B, N});
}

template <class S>
Tensor3<S> view(Arr<S>& a) {
  return {a.mutable_data(), a.shape(0), a.shape(1), a.shape(2)};
}

template <class S>
CTensor3<S> view(const Arr<S>& a, const char* name) {
  if (a.ndim() != 3) throw py::value_error(std::string(name) + ": expected a 3-d array (T, B, n_in)");
  require_finite(a, name);
  return {a.data(), a.shape(0), a.shape(1), a.shape(2)};
}

template <class S>
CMatMap<S> mat(const Arr<S>& a, const char* name) {
  if (a.ndim() != 2) throw py::value_error(std::string(name) + ": expected a 2-d array");
  require_finite(a, name);
  return CMatMap<S>(a.data(), a.shape(0), a.shape(1));
}

// Base of the bound parameter objects (RateRNNParams, NMRNNParams, LSTMParams): typed views
// of the arrays they hold, which were built as Arr<S> of the object's dtype (no conversion).
struct HeldArrays {
  template <class S>
  static Arr<S> a(const py::array& x) {
    return py::reinterpret_borrow<Arr<S>>(x);
  }
  template <class S>
  static CMatMap<S> map(const py::array& x) {
    return CMatMap<S>(static_cast<const S*>(x.data()), x.shape(0), x.shape(1));
  }
};

// A run's inputs u (T, B, n_in) from its drive object (RateDrive, NMRNNDrive, LSTMDrive),
// checked against the parameters: the same dtype, n_in columns (those of the parameters'
// `columns_of`), finite values.
template <class S>
CTensor3<S> drive_inputs(const py::array& u, bool drive_f32, bool params_f32, Index n_in,
                         const char* columns_of) {
  if (drive_f32 != params_f32) {
    throw py::type_error(std::string("drive: its arrays are ") +
                         (drive_f32 ? "float32" : "float64") + " but the parameters are " +
                         (params_f32 ? "float32" : "float64"));
  }
  const CTensor3<S> uv = view(HeldArrays::a<S>(u), "u");
  if (uv.N != n_in) {
    throw py::value_error("u: expected shape (T, B, n_in) with n_in = " + std::to_string(n_in) +
                          " (the columns of " + columns_of + "), got (" + std::to_string(uv.T) +
                          ", " + std::to_string(uv.B) + ", " + std::to_string(uv.N) + ")");
  }
  return uv;
}

void register_buffers(py::module_& m);
void register_interrupt(py::module_& m);
void register_config(py::module_& m);
void register_random(py::module_& m);
void register_rate_rnn(py::module_& m);
void register_nmrnn(py::module_& m);
void register_lstm(py::module_& m);
void register_dynamics(py::module_& m);
void register_learning(py::module_& m);
void register_mop(py::module_& m);

}  // namespace flexrnn::py_bind
