#include "solver/onnx_tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace mcmpart {
namespace onnx_internal {

int ElementBits(int32_t elem_type) {
  switch (elem_type) {
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case 17:  // FLOAT8E4M3FN
    case 18:  // FLOAT8E4M3FNUZ
    case 19:  // FLOAT8E5M2
    case 20:  // FLOAT8E5M2FNUZ
      return 8;
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      return 16;
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
      return 32;
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
    case onnx::TensorProto::COMPLEX64:
      return 64;
    case onnx::TensorProto::COMPLEX128:
      return 128;
    case 21:  // UINT4
    case 22:  // INT4
    case 23:  // FLOAT4E2M1
      return 4;
    default:
      return 0;
  }
}

bool IsIntegerType(int32_t elem_type) {
  switch (elem_type) {
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
    case 21:  // UINT4
    case 22:  // INT4
      return true;
    default:
      return false;
  }
}

bool IsEvaluatedFloatType(int32_t elem_type) {
  return elem_type == onnx::TensorProto::FLOAT ||
         elem_type == onnx::TensorProto::DOUBLE;
}

double NumElements(const std::vector<int64_t>& dims) {
  double n = 1;
  for (int64_t d : dims) n *= static_cast<double>(d);
  return n;
}

bool IsDefaultDomain(const std::string& domain) {
  return domain.empty() || domain == "ai.onnx";
}

bool HasSubgraph(const onnx::NodeProto& node) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.has_g() || a.graphs_size() > 0) return true;
  }
  return false;
}

const onnx::AttributeProto* FindAttribute(const onnx::NodeProto& node,
                                          absl::string_view name) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

double ConstTensor::AsDouble(size_t k) const {
  return is_float() ? floats[k] : static_cast<double>(ints[k]);
}

int64_t ConstTensor::AsInt(size_t k) const {
  if (!is_float()) return ints[k];
  const double x = std::trunc(floats[k]);
  // Saturate: a float outside int64 (or NaN) has no integer value; the
  // bounds keep the conversion defined.
  if (!(x > -9.2e18)) return std::numeric_limits<int64_t>::min();
  if (!(x < 9.2e18)) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(x);
}

int64_t WrapToType(int64_t x, int32_t elem_type) {
  switch (elem_type) {
    case onnx::TensorProto::BOOL:
      return x != 0;
    case onnx::TensorProto::INT8:
      return static_cast<int8_t>(x);
    case onnx::TensorProto::UINT8:
      return static_cast<uint8_t>(x);
    case onnx::TensorProto::INT16:
      return static_cast<int16_t>(x);
    case onnx::TensorProto::UINT16:
      return static_cast<uint16_t>(x);
    case onnx::TensorProto::INT32:
      return static_cast<int32_t>(x);
    case onnx::TensorProto::UINT32:
      return static_cast<uint32_t>(x);
    default:
      return x;
  }
}

double RoundToType(double x, int32_t elem_type) {
  if (elem_type == onnx::TensorProto::FLOAT) {
    return static_cast<double>(static_cast<float>(x));
  }
  return x;
}

namespace {

bool IsSignedType(int32_t type) {
  return type == onnx::TensorProto::INT8 || type == onnx::TensorProto::INT16 ||
         type == onnx::TensorProto::INT32 || type == onnx::TensorProto::INT64;
}

// Little-endian raw bytes (ONNX's raw_data layout) into v.
bool ParseRaw(const std::string& raw, size_t count, ConstTensor* v) {
  const int32_t type = v->elem_type;
  const size_t width = static_cast<size_t>(ElementBits(type) / 8);
  if (raw.size() != count * width) return false;
  for (size_t k = 0; k < count; ++k) {
    uint64_t bits = 0;
    for (size_t b = 0; b < width; ++b) {
      bits |= uint64_t{static_cast<unsigned char>(raw[k * width + b])}
              << (8 * b);
    }
    if (type == onnx::TensorProto::FLOAT) {
      const uint32_t b32 = static_cast<uint32_t>(bits);
      float f;
      std::memcpy(&f, &b32, sizeof f);
      v->floats.push_back(f);
    } else if (type == onnx::TensorProto::DOUBLE) {
      double d;
      std::memcpy(&d, &bits, sizeof d);
      v->floats.push_back(d);
    } else {
      if (IsSignedType(type) && width < 8 && (bits >> (8 * width - 1)) != 0) {
        bits |= ~uint64_t{0} << (8 * width);  // Sign-extend.
      }
      v->ints.push_back(WrapToType(static_cast<int64_t>(bits), type));
    }
  }
  return true;
}

}  // namespace

std::optional<ConstTensor> ParseConstTensor(const onnx::TensorProto& t) {
  const int32_t type = t.data_type();
  const bool is_int = IsIntegerType(type) && ElementBits(type) >= 8;
  if ((!is_int && !IsEvaluatedFloatType(type)) ||
      t.data_location() == onnx::TensorProto::EXTERNAL) {
    return std::nullopt;
  }
  ConstTensor v;
  v.elem_type = type;
  v.dims.assign(t.dims().begin(), t.dims().end());
  for (int64_t d : v.dims) {
    if (d < 0) return std::nullopt;
  }
  const double n = NumElements(v.dims);
  if (!(n <= kMaxEvaluatedElements)) return std::nullopt;  // NaN too.
  const size_t count = static_cast<size_t>(n);
  if (t.has_raw_data()) {
    if (!ParseRaw(t.raw_data(), count, &v)) return std::nullopt;
  } else if (type == onnx::TensorProto::FLOAT) {
    v.floats.assign(t.float_data().begin(), t.float_data().end());
  } else if (type == onnx::TensorProto::DOUBLE) {
    v.floats.assign(t.double_data().begin(), t.double_data().end());
  } else if (type == onnx::TensorProto::INT64) {
    v.ints.assign(t.int64_data().begin(), t.int64_data().end());
  } else if (type == onnx::TensorProto::UINT32 ||
             type == onnx::TensorProto::UINT64) {
    for (uint64_t x : t.uint64_data()) {
      v.ints.push_back(WrapToType(static_cast<int64_t>(x), type));
    }
  } else {
    for (int32_t x : t.int32_data()) v.ints.push_back(WrapToType(x, type));
  }
  if (v.size() != count) return std::nullopt;
  return v;
}

onnx::TensorProto ToTensorProto(const ConstTensor& v) {
  onnx::TensorProto t;
  const int32_t type = v.elem_type;
  t.set_data_type(type);
  for (int64_t d : v.dims) t.add_dims(d);
  for (double x : v.floats) {
    if (type == onnx::TensorProto::FLOAT) {
      t.add_float_data(static_cast<float>(x));
    } else {
      t.add_double_data(x);
    }
  }
  for (int64_t x : v.ints) {
    if (type == onnx::TensorProto::INT64) {
      t.add_int64_data(x);
    } else if (type == onnx::TensorProto::UINT32 ||
               type == onnx::TensorProto::UINT64) {
      t.add_uint64_data(static_cast<uint64_t>(x));
    } else {
      t.add_int32_data(static_cast<int32_t>(x));
    }
  }
  return t;
}

}  // namespace onnx_internal
}  // namespace mcmpart
