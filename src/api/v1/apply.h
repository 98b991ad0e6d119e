// POST /v1/apply and /v1/delete: manifests in, what happened to each object out.
#pragma once

#include "api/v1/schema.h"

namespace pilus::api::v1 {

struct ManifestSource {
  std::string name;  // file path or "<stdin>"
  std::string text;
};

void fields(auto& f, Is<ManifestSource> auto& s) {
  f("name", s.name);
  f("text", s.text);
}

struct ApplyRequest {
  std::vector<ManifestSource> sources;
};

void fields(auto& f, Is<ApplyRequest> auto& r) { f("sources", r.sources); }

struct ObjectResult {
  std::string kind;
  std::string ns;  // "" for cluster-scoped objects
  std::string name;
  std::string action;  // created, configured, unchanged, deleted, not found
};

void fields(auto& f, Is<ObjectResult> auto& r) {
  f("kind", r.kind);
  f("namespace", r.ns, Presence::kOmitEmpty);
  f("name", r.name);
  f("action", r.action);
}

struct ApplyResponse {
  std::vector<ObjectResult> results;
  std::vector<std::string> warnings;  // fields accepted without effect
  std::vector<std::string> notes;     // e.g. an allow that the other end's policy cancels
  bool dry_run = false;
};

void fields(auto& f, Is<ApplyResponse> auto& r) {
  f("results", r.results);
  f("warnings", r.warnings);
  f("notes", r.notes, Presence::kOmitEmpty);
  f("dryRun", r.dry_run, Presence::kOmitEmpty);
}

struct DeleteResponse {
  std::vector<ObjectResult> results;
};

void fields(auto& f, Is<DeleteResponse> auto& r) { f("results", r.results); }

}  // namespace pilus::api::v1
