// An option given as a name (str) or as the bound enum value (py::enum_, e.g. _core.Phi.tanh).
#pragma once

#include <string>

#include "common.hpp"

namespace flexrnn::py_bind {

// The name goes through the core's one table of names (from_name: a ValueError naming the
// option for an unknown name); anything but a name or an E is a TypeError naming the option.
template <class E>
E enum_arg(const py::handle& v, E (*from_name)(const std::string&), const char* name) {
  if (py::isinstance<py::str>(v)) return from_name(v.cast<std::string>());
  try {
    return v.cast<E>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(name) + ": expected a name or a flexrnn._core enum value, " +
                         "got " + Py_TYPE(v.ptr())->tp_name);
  }
}

}  // namespace flexrnn::py_bind
