#include "ir/attribute.h"

#include <cstring>

namespace llmc {

Attribute Attribute::make_int(std::string name, int64_t v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = AttrKind::kInt;
  a.i = v;
  return a;
}
Attribute Attribute::make_float(std::string name, float v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = AttrKind::kFloat;
  a.f = v;
  return a;
}
Attribute Attribute::make_string(std::string name, std::string v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = AttrKind::kString;
  a.s = std::move(v);
  return a;
}
Attribute Attribute::make_ints(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = AttrKind::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute Attribute::make_floats(std::string name, std::vector<float> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = AttrKind::kFloats;
  a.floats = std::move(v);
  return a;
}
Attribute Attribute::make_tensor(std::string name, Tensor t) {
  Attribute a;
  a.name = std::move(name);
  a.kind = AttrKind::kTensor;
  a.tensors.push_back(std::move(t));
  return a;
}

namespace {
// Floats compare by bits so NaN attributes round-trip as "equal".
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
}  // namespace

bool Attribute::operator==(const Attribute& o) const {
  if (name != o.name || kind != o.kind || i != o.i || s != o.s || ints != o.ints ||
      strings != o.strings || opaque != o.opaque || ref_attr_name != o.ref_attr_name ||
      doc_string != o.doc_string || extra_fields != o.extra_fields || !same_bits(f, o.f) || floats.size() != o.floats.size() ||
      tensors.size() != o.tensors.size())
    return false;
  for (size_t k = 0; k < floats.size(); ++k)
    if (!same_bits(floats[k], o.floats[k])) return false;
  for (size_t k = 0; k < tensors.size(); ++k)
    if (!tensors[k].identical_to(o.tensors[k])) return false;
  return true;
}

}  // namespace llmc
