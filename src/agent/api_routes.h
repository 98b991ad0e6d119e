// The agent's API paths, mapped onto Agent operations.
#pragma once

#include <optional>

#include "agent/agent.h"
#include "api/http_server.h"
#include "identity/labels.h"
#include "policy/selector.h"

namespace pilus::agent {

// kubectl's narrowing of a list, as the list routes take it in their query (`namespace`,
// `labelSelector`): items of namespace `ns` ("": every namespace; cluster-scoped items always
// pass) whose labels match the Kubernetes selector text. Throws pilus::Error on a bad selector.
class ListFilter {
 public:
  ListFilter(std::string ns, const std::string& selector_text);
  bool narrows() const { return !ns_.empty() || selector_.has_value(); }
  bool keeps(const std::string& item_ns, const identity::LabelSet& labels) const;

 private:
  std::string ns_;
  std::optional<policy::LabelSelector> selector_;
};

// An item's labels as the selector sees them: Kubernetes labels from metadata, or Cilium label
// strings ("k8s:app=web"). Its namespace is api::v1::namespace_of.
identity::LabelSet labels_of(const api::v1::Pod& item);
identity::LabelSet labels_of(const api::v1::Endpoint& item);
identity::LabelSet labels_of(const api::v1::Identity& item);
identity::LabelSet labels_of(const api::v1::Namespace& item);
identity::LabelSet labels_of(const api::v1::Policy& item);
identity::LabelSet labels_of(const api::v1::Service& item);

template <class T>
api::v1::List<T> narrow_list(api::v1::List<T> list, const std::string& ns, const std::string& selector_text) {
  ListFilter filter(ns, selector_text);
  if (!filter.narrows()) return list;
  std::erase_if(list.items, [&](const T& item) { return !filter.keeps(api::v1::namespace_of(item), labels_of(item)); });
  return list;
}

void register_api_routes(api::HttpServer& server, Agent& agent);

// The sources of an apply/delete request body (api::v1::ApplyRequest).
std::vector<manifest::Source> sources_from_request(std::string&& body);

}  // namespace pilus::agent
