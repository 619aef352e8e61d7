#include "ir/graph.h"

#include <algorithm>

namespace llmc {

const Attribute* Node::find_attr(const std::string& attr_name) const {
  for (const auto& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

int64_t Node::attr_int(const std::string& attr_name, int64_t fallback) const {
  const Attribute* a = find_attr(attr_name);
  return a && a->kind == AttrKind::kInt ? a->i : fallback;
}

float Node::attr_float(const std::string& attr_name, float fallback) const {
  const Attribute* a = find_attr(attr_name);
  return a && a->kind == AttrKind::kFloat ? a->f : fallback;
}

bool Node::same_as(const Node& o) const {
  return name == o.name && op_type == o.op_type && domain == o.domain && inputs == o.inputs &&
         outputs == o.outputs && attributes == o.attributes && doc_string == o.doc_string &&
         extra_fields == o.extra_fields;
}

const Tensor* Graph::find_initializer(const std::string& value_name) const {
  for (const auto& t : initializers)
    if (t.name() == value_name) return &t;
  return nullptr;
}

Tensor* Graph::find_initializer(const std::string& value_name) {
  for (auto& t : initializers)
    if (t.name() == value_name) return &t;
  return nullptr;
}

bool Graph::is_graph_input(const std::string& value_name) const {
  return std::any_of(inputs.begin(), inputs.end(),
                     [&](const ValueInfo& v) { return v.name == value_name; });
}

namespace {
bool is_default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }
}  // namespace

int64_t Model::opset(const std::string& domain) const {
  for (const auto& o : opset_imports) {
    if (o.domain == domain || (is_default_domain(o.domain) && is_default_domain(domain)))
      return o.version;
  }
  return -1;
}

void Model::set_opset(const std::string& domain, int64_t version) {
  for (auto& o : opset_imports) {
    if (o.domain == domain || (is_default_domain(o.domain) && is_default_domain(domain))) {
      o.version = version;
      return;
    }
  }
  opset_imports.push_back({domain, version});
}

const std::string* Model::find_metadata(const std::string& key) const {
  for (const auto& [k, v] : metadata_props)
    if (k == key) return &v;
  return nullptr;
}

void Model::set_metadata(const std::string& key, std::string value) {
  for (auto& [k, v] : metadata_props) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_props.emplace_back(key, std::move(value));
}

}  // namespace llmc
