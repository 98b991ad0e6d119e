// Unit tests for manifest reading and validation (pilus apply -f / delete -f).
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "manifest/validation.h"

namespace pilus::manifest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const pilus::Error& e) {
    return e.what();
  }
  return "<no error>";
}

Object parse_one(const std::string& yaml, const std::string& source = "app.yaml") {
  std::vector<Document> docs = parse_documents(Source{source, yaml});
  if (docs.size() != 1) throw std::logic_error("expected exactly one document");
  return parse_object(docs[0]);
}

std::string parse_error(const std::string& yaml) {
  return error_of([&] { parse_one(yaml); });
}

Pod parse_pod_yaml(const std::string& yaml) { return std::get<Pod>(parse_one(yaml)); }

// Replaces the single occurrence of `from`, so a test states only what it changes.
std::string with(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) {
    throw std::logic_error("test helper: \"" + from + "\" must occur exactly once");
  }
  return text.replace(at, from.size(), to);
}

const std::string kPod = R"(apiVersion: v1
kind: Pod
metadata:
  name: frontend
  labels:
    app: web
spec:
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    ports:
    - name: http
      containerPort: 80
)";

const std::string kNamespace = R"(apiVersion: v1
kind: Namespace
metadata:
  name: prod
  labels:
    team: blue
)";

const std::string kPodError = "app.yaml document 1 (Pod default/frontend): ";

// ---------------------------------------------------------------- documents

TEST(ManifestDocument, SplitsMultiDocumentYamlSkippingEmptyOnes) {
  std::string text = "# leading comment\n---\n" + kNamespace + "---\n---\n# only a comment\n---\n" + kPod + "---\n";
  std::vector<Document> docs = parse_documents(Source{"app.yaml", text});
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].kind, "Namespace");
  EXPECT_EQ(docs[0].index, 1);
  EXPECT_EQ(docs[1].kind, "Pod");
  EXPECT_EQ(docs[1].api_version, "v1");
  // Empty documents are skipped but still counted, so the index is the position in the file.
  EXPECT_EQ(docs[1].index, 4);
  EXPECT_EQ(docs[1].source, "app.yaml");
}

TEST(ManifestDocument, EmptyAndCommentOnlySourcesHaveNoDocuments) {
  EXPECT_TRUE(parse_documents(Source{"a.yaml", ""}).empty());
  EXPECT_TRUE(parse_documents(Source{"a.yaml", "# nothing\n\n# here\n"}).empty());
  EXPECT_TRUE(parse_documents(Source{"a.yaml", "---\n---\n"}).empty());
}

TEST(ManifestDocument, ScalarTypesFollowJsonExpectations) {
  auto docs = parse_documents(Source{"t.yaml", R"(apiVersion: v1
kind: Test
int: 80
negative: -5
plus: +7
string80: "80"
single: '80'
yes_word: yes
bool_true: true
bool_false: False
null_word: null
tilde: ~
empty:
float: 1.5
exp: 1e3
hex: 0x1F
octal: 0o17
leading_zero: 0080
big: 18446744073709551615
quoted_true: "true"
block: |
  line one
  line two
tagged: !!str 123
tagged_int: !!int "42"
list: [1, "2", true]
)"});
  ASSERT_EQ(docs.size(), 1u);
  const json& b = docs[0].body;
  EXPECT_TRUE(b["int"].is_number_integer());
  EXPECT_EQ(b["int"], 80);
  EXPECT_EQ(b["negative"], -5);
  EXPECT_EQ(b["plus"], 7);
  EXPECT_EQ(b["string80"], "80");
  EXPECT_EQ(b["single"], "80");
  EXPECT_EQ(b["yes_word"], "yes");  // YAML 1.2: only true/false are booleans
  EXPECT_EQ(b["bool_true"], true);
  EXPECT_EQ(b["bool_false"], false);
  EXPECT_TRUE(b["null_word"].is_null());
  EXPECT_TRUE(b["tilde"].is_null());
  EXPECT_TRUE(b["empty"].is_null());
  EXPECT_TRUE(b["float"].is_number_float());
  EXPECT_DOUBLE_EQ(b["float"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(b["exp"].get<double>(), 1000.0);
  EXPECT_EQ(b["hex"], 31);
  EXPECT_EQ(b["octal"], 15);
  EXPECT_EQ(b["leading_zero"], "0080");  // octal in kubectl, decimal in YAML 1.2: kept as written
  EXPECT_TRUE(b["big"].is_number_unsigned());
  EXPECT_EQ(b["quoted_true"], "true");
  EXPECT_EQ(b["block"], "line one\nline two\n");
  EXPECT_EQ(b["tagged"], "123");
  EXPECT_EQ(b["tagged_int"], 42);
  EXPECT_EQ(b["list"], json::parse(R"([1, "2", true])"));
}

TEST(ManifestDocument, YamlSyntaxErrorNamesSourceAndLine) {
  std::string e = error_of([] { parse_documents(Source{"bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [a\nspec: {}\n"}); });
  EXPECT_THAT(e, HasSubstr("bad.yaml: line 4"));
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));

  e = error_of([] { parse_documents(Source{"bad.yaml", "a: 1\n  b: 2\n"}); });
  EXPECT_THAT(e, HasSubstr("bad.yaml: line 2"));
}

TEST(ManifestDocument, DuplicateKeysAreErrorsWithLine) {
  std::string e = error_of([] { parse_documents(Source{"d.yaml", "apiVersion: v1\nkind: Pod\nkind: Namespace\n"}); });
  EXPECT_EQ(e, "d.yaml: line 3: duplicate key \"kind\"");
}

TEST(ManifestDocument, MergeKeysAreApplied) {
  auto docs = parse_documents(Source{"m.yaml", R"(apiVersion: v1
kind: Test
base: &base {a: 1, b: 2}
other: &other {c: 3, b: 20}
merged:
  <<: [*base, *other]
  a: 10
)"});
  EXPECT_EQ(docs.at(0).body["merged"], json::parse(R"({"a": 10, "b": 2, "c": 3})"));
}

TEST(ManifestDocument, RecursiveAliasIsAnErrorNotACrash) {
  std::string e = error_of([] { parse_documents(Source{"r.yaml", "apiVersion: v1\nkind: Pod\nx: &a [*a]\n"}); });
  EXPECT_THAT(e, HasSubstr("r.yaml"));
  EXPECT_THAT(e, HasSubstr("nested deeper"));
}

TEST(ManifestDocument, InvalidUtf8AndUnknownTagsAreErrors) {
  EXPECT_EQ(error_of([] { parse_documents(Source{"u.yaml", "apiVersion: v1\nkind: \xff\n"}); }),
            "u.yaml: line 2: not valid UTF-8");
  EXPECT_EQ(error_of([] { parse_documents(Source{"t.yaml", "apiVersion: v1\nkind: !custom Pod\n"}); }),
            "t.yaml: line 2: unsupported YAML tag \"!custom\"");
  EXPECT_EQ(error_of([] { parse_documents(Source{"t.yaml", "apiVersion: v1\nkind: Pod\nx: !!int abc\n"}); }),
            "t.yaml: line 3: !!int value \"abc\" is not an integer");
}

TEST(ManifestDocument, DocumentMustBeAMapWithApiVersionAndKind) {
  EXPECT_EQ(error_of([] { parse_documents(Source{"a.yaml", "- a\n- b\n"}); }),
            "a.yaml document 1: must be a map with apiVersion and kind, got a list");
  EXPECT_EQ(error_of([] { parse_documents(Source{"a.yaml", "kind: Pod\n---\napiVersion: v1\n"}); }),
            "a.yaml document 1: missing required field \"apiVersion\"");
  EXPECT_EQ(error_of([] { parse_documents(Source{"a.yaml", "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\n"}); }),
            "a.yaml document 2: missing required field \"kind\"");
  EXPECT_EQ(error_of([] { parse_documents(Source{"a.yaml", "apiVersion: v1\nkind: [Pod]\n"}); }),
            "a.yaml document 1: kind: must be a string, got a list");
  EXPECT_EQ(error_of([] { parse_documents(Source{"a.yaml", "apiVersion: 1\nkind: Pod\n"}); }),
            "a.yaml document 1: apiVersion: must be a string, got 1");
}

TEST(ManifestDocument, JsonDocumentsAreAccepted) {
  std::string text = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "api", "namespace": "prod", "labels": {"app": "api"}},
    "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080, "protocol": "UDP"}]}]}
  })").dump(2);
  Pod pod = std::get<Pod>(parse_one(text, "pod.json"));
  EXPECT_EQ(pod.name, "api");
  EXPECT_EQ(pod.ns, "prod");
  EXPECT_EQ(pod.containers.at(0).ports.at(0).container_port, 8080);
  EXPECT_EQ(pod.containers.at(0).ports.at(0).protocol, "UDP");

  // Compact JSON and tab indentation too.
  auto docs = parse_documents(Source{"c.json", "{\n\t\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"x\"}}"});
  EXPECT_EQ(docs.at(0).name(), "x");
}

TEST(ManifestDocument, NameNamespaceAndDescribe) {
  auto docs = parse_documents(Source{"app.yaml", kNamespace + "---\n" + kPod + "---\n" +
                                                     with(kPod, "name: frontend", "name: api\n  namespace: prod") +
                                                     "---\napiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Foo\nmetadata: {name: x}\n"});
  ASSERT_EQ(docs.size(), 5u);
  EXPECT_EQ(docs[0].describe(), "app.yaml document 1 (Namespace prod)");
  EXPECT_EQ(docs[0].ns(), "");  // cluster-scoped
  EXPECT_EQ(docs[1].describe(), "app.yaml document 2 (Pod default/frontend)");
  EXPECT_EQ(docs[1].ns(), "default");
  EXPECT_EQ(docs[2].describe(), "app.yaml document 3 (Pod prod/api)");
  EXPECT_EQ(docs[2].name(), "api");
  EXPECT_EQ(docs[2].ns(), "prod");
  EXPECT_EQ(docs[3].describe(), "app.yaml document 4 (Pod)");
  EXPECT_EQ(docs[3].name(), "");
  EXPECT_EQ(docs[4].describe(), "app.yaml document 5 (Foo default/x)");
}

TEST(ManifestDocument, FromJsonRoundTrip) {
  Document original = parse_documents(Source{"app.yaml", kPod}).at(0);
  // As the store would: serialize, read back.
  Document back = document_from_json(json::parse(original.body.dump()));
  EXPECT_EQ(back.body, original.body);
  EXPECT_EQ(back.kind, "Pod");
  EXPECT_EQ(back.api_version, "v1");
  EXPECT_EQ(back.source, "store");
  EXPECT_EQ(back.index, 0);
  EXPECT_EQ(back.describe(), "store (Pod default/frontend)");
  Pod a = std::get<Pod>(parse_object(original));
  Pod b = std::get<Pod>(parse_object(back));
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.containers.at(0).command, b.containers.at(0).command);
  EXPECT_EQ(a.containers.at(0).ports.at(0).container_port, b.containers.at(0).ports.at(0).container_port);

  EXPECT_EQ(error_of([] { document_from_json(json::parse(R"({"kind":"Pod"})"), "etcd"); }),
            "etcd: missing required field \"apiVersion\"");
}

// ---------------------------------------------------------------- sources

class ManifestSources : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pilus-manifest-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  fs::path dir_;
};

TEST_F(ManifestSources, DirectoryYieldsManifestFilesSortedByName) {
  write("b.yaml", kPod);
  write("a.yml", kNamespace);
  write("c.json", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"}})");
  write("notes.txt", "not a manifest");
  write(".hidden.yaml", "editor backup");
  fs::create_directory(dir_ / "sub.yaml");
  write("sub.yaml/inner.yaml", kPod);  // not recursive

  std::vector<Source> sources = read_sources(dir_.string());
  ASSERT_EQ(sources.size(), 3u);
  EXPECT_EQ(sources[0].name, (dir_ / "a.yml").string());
  EXPECT_EQ(sources[1].name, (dir_ / "b.yaml").string());
  EXPECT_EQ(sources[2].name, (dir_ / "c.json").string());
  EXPECT_EQ(sources[0].text, kNamespace);

  auto objects = parse_all(sources);
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(kind_of(objects[0].second), "Namespace");
  EXPECT_EQ(kind_of(objects[1].second), "Pod");
  EXPECT_EQ(objects[1].first.describe(), (dir_ / "b.yaml").string() + " document 1 (Pod default/frontend)");
}

TEST_F(ManifestSources, SingleFileIsReadWhateverItsName) {
  write("pod.manifest", kPod);
  std::vector<Source> sources = read_sources((dir_ / "pod.manifest").string());
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].text, kPod);
}

TEST_F(ManifestSources, EmptyDirectoryAndMissingFileAreErrors) {
  write("readme.md", "x");
  EXPECT_EQ(error_of([&] { read_sources(dir_.string()); }),
            dir_.string() + ": no *.yaml, *.yml or *.json files in directory");
  std::string missing = (dir_ / "missing.yaml").string();
  EXPECT_EQ(error_of([&] { read_sources(missing); }), "cannot read " + missing + ": No such file or directory");
}

// ---------------------------------------------------------------- syntax checks

TEST(ManifestValidation, DnsLabel) {
  for (const char* ok : {"a", "frontend", "a-b-1", "0abc"}) EXPECT_EQ(dns_label_error(ok), std::nullopt) << ok;
  EXPECT_EQ(dns_label_error(std::string(63, 'a')), std::nullopt);
  EXPECT_EQ(dns_label_error("Frontend"),
            "invalid DNS-1123 label \"Frontend\": must contain only lowercase letters, digits and '-' (found 'F')");
  EXPECT_EQ(dns_label_error("-a"), "invalid DNS-1123 label \"-a\": must start and end with a lowercase letter or digit");
  EXPECT_EQ(dns_label_error(""), "invalid DNS-1123 label \"\": must not be empty");
  EXPECT_THAT(*dns_label_error(std::string(64, 'a')), HasSubstr("must be at most 63 characters (has 64)"));
  for (const char* bad : {"a-", "a_b", "a.b", "a b"}) EXPECT_NE(dns_label_error(bad), std::nullopt) << bad;
}

TEST(ManifestValidation, DnsSubdomain) {
  for (const char* ok : {"node1", "node-1.example.com", "a.b"}) EXPECT_EQ(dns_subdomain_error(ok), std::nullopt) << ok;
  for (const char* bad : {"", "Node1", "a..b", ".a", "a.", "a.-b", "a_b"}) EXPECT_NE(dns_subdomain_error(bad), std::nullopt) << bad;
  EXPECT_NE(dns_subdomain_error(std::string(254, 'a')), std::nullopt);
}

TEST(ManifestValidation, LabelKey) {
  for (const char* ok : {"app", "App_Name.v1", "app.kubernetes.io/name", "example.com/Tier", "a"}) {
    EXPECT_EQ(label_key_error(ok), std::nullopt) << ok;
  }
  EXPECT_EQ(label_key_error(std::string(63, 'k')), std::nullopt);
  EXPECT_EQ(label_key_error("Example.com/app"),
            "invalid label key \"Example.com/app\": prefix before '/' must contain only lowercase letters, digits, '-' "
            "and '.' (found 'E')");
  EXPECT_EQ(label_key_error("a/b/c"), "invalid label key \"a/b/c\": must contain at most one '/'");
  EXPECT_EQ(label_key_error("example.com/"), "invalid label key \"example.com/\": name after '/' must not be empty");
  EXPECT_EQ(label_key_error("/app"), "invalid label key \"/app\": prefix before '/' must not be empty");
  for (const char* bad : {"", "-app", "app-", "a b", "app!"}) EXPECT_NE(label_key_error(bad), std::nullopt) << bad;
  EXPECT_NE(label_key_error(std::string(64, 'k')), std::nullopt);
  EXPECT_NE(label_key_error(std::string(254, 'p') + "/k"), std::nullopt);
}

TEST(ManifestValidation, LabelValue) {
  for (const char* ok : {"", "web", "v1.2_rc-3", "A"}) EXPECT_EQ(label_value_error(ok), std::nullopt) << ok;
  EXPECT_EQ(label_value_error(std::string(63, 'v')), std::nullopt);
  EXPECT_EQ(label_value_error("a b"),
            "invalid label value \"a b\": must contain only letters, digits, '-', '_' and '.' (found ' ')");
  for (const char* bad : {"-web", "web.", "a/b"}) EXPECT_NE(label_value_error(bad), std::nullopt) << bad;
  EXPECT_NE(label_value_error(std::string(64, 'v')), std::nullopt);
}

TEST(ManifestValidation, PortName) {
  for (const char* ok : {"http", "http-alt", "h2c", "dns-53", "abcdefghijklmno"}) {
    EXPECT_EQ(port_name_error(ok), std::nullopt) << ok;
  }
  EXPECT_EQ(port_name_error("1234"), "invalid port name \"1234\": must contain at least one letter");
  EXPECT_EQ(port_name_error("ht--tp"), "invalid port name \"ht--tp\": must not contain \"--\"");
  EXPECT_THAT(*port_name_error("abcdefghijklmnop"), HasSubstr("at most 15 characters"));
  for (const char* bad : {"", "HTTP", "-http", "http-", "http_alt"}) EXPECT_NE(port_name_error(bad), std::nullopt) << bad;
}

TEST(ManifestValidation, EnvName) {
  for (const char* ok : {"PATH", "my.var-1", "_X"}) EXPECT_EQ(env_name_error(ok), std::nullopt) << ok;
  for (const char* bad : {"", "A=B", "TAB\tX"}) EXPECT_NE(env_name_error(bad), std::nullopt) << bad;
}

TEST(ManifestValidation, FieldPaths) {
  EXPECT_EQ(field_path("", "spec"), "spec");
  EXPECT_EQ(field_path("spec", "containers"), "spec.containers");
  EXPECT_EQ(index_path("spec.containers", 2), "spec.containers[2]");
  EXPECT_EQ(field_path("metadata.labels", "app.kubernetes.io/name"), "metadata.labels[\"app.kubernetes.io/name\"]");
}

// ---------------------------------------------------------------- strict reader

TEST(ManifestValidation, ReaderReportsUnknownFieldsWithSuggestion) {
  json body = json::parse(R"({"name": "x", "labls": {}, "other": 1})");
  Value v(body, "spec.thing", "doc");
  auto read = [](ObjectReader& r) {
    r.required("name").string();
    r.optional("labels");
    r.optional("names");
  };
  // "labls" is close to the absent "labels"; present fields are never suggested.
  EXPECT_EQ(error_of([&] { v.object(read); }), "doc: unknown field \"spec.thing.labls\" (did you mean \"labels\"?)");
  json other = json::parse(R"({"name": "x", "other": 1})");
  EXPECT_EQ(error_of([&] { Value(other, "spec.thing", "doc").object(read); }), "doc: unknown field \"spec.thing.other\"");

  json ok = json::parse(R"({"name": "x"})");
  EXPECT_EQ(Value(ok, "", "doc").object([](ObjectReader& r) { return r.required("name").string(); }), "x");
}

TEST(ManifestValidation, ReaderReportsWrongTypesAndMissingFields) {
  json body = json::parse(R"({"s": 1, "b": "yes", "l": {"a": 1}, "m": [1], "i": 1.5, "n": null, "e": "x"})");
  Value v(body, "x", "doc");
  auto read = [&](const std::function<void(ObjectReader&)>& fn) {
    return error_of([&] { v.object([&](ObjectReader& r) { fn(r); }); });
  };
  EXPECT_EQ(read([](ObjectReader& r) { r.required("s").string(); }), "doc: x.s: must be a string, got 1 (put it in quotes)");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("b").boolean(); }), "doc: x.b: must be true or false, got \"yes\"");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("l").list(); }), "doc: x.l: must be a list, got a map");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("m").object([](ObjectReader&) {}); }), "doc: x.m: must be a map, got a list");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("i").integer(); }), "doc: x.i: must be an integer, got 1.5");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("n"); }), "doc: missing required field \"x.n\"");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("absent"); }), "doc: missing required field \"x.absent\"");
  EXPECT_EQ(read([](ObjectReader& r) { r.required("e").one_of({"a", "b"}); }), "doc: x.e: must be one of a, b, got \"x\"");
}

TEST(ManifestValidation, ReaderTreatsNullAsAbsent) {
  json body = json::parse(R"({"labels": null})");
  Value(body, "", "doc").object([](ObjectReader& r) { EXPECT_FALSE(r.optional("labels").has_value()); });
}

// ---------------------------------------------------------------- Namespace

TEST(ManifestNamespace, ValidNamespace) {
  auto ns = std::get<NamespaceObject>(parse_one(with(kNamespace, "    team: blue\n", "    team: blue\n  annotations:\n    note: any text at all\n")));
  EXPECT_EQ(ns.name, "prod");
  EXPECT_EQ(ns.labels, (std::map<std::string, std::string>{{"team", "blue"}}));
  EXPECT_EQ(ns.annotations.at("note"), "any text at all");
}

TEST(ManifestNamespace, StrictFields) {
  EXPECT_EQ(parse_error(with(kNamespace, "  name: prod\n", "  name: prod\n  namespace: x\n")),
            "app.yaml document 1 (Namespace prod): unknown field \"metadata.namespace\"");
  // spec {finalizers} and status are accepted (kubectl writes them; see kubectl_manifest_test.cpp).
  EXPECT_EQ(parse_error(kNamespace + "spec: {color: red}\n"),
            "app.yaml document 1 (Namespace prod): unknown field \"spec.color\"");
  EXPECT_EQ(parse_error(kNamespace + "sttus: {phase: Active}\n"),
            "app.yaml document 1 (Namespace prod): unknown field \"sttus\" (did you mean \"status\"?)");
}

TEST(ManifestNamespace, NameApiVersionAndLabels) {
  EXPECT_EQ(parse_error(with(kNamespace, "name: prod", "name: Prod")),
            "app.yaml document 1 (Namespace Prod): metadata.name: invalid DNS-1123 label \"Prod\": must contain only "
            "lowercase letters, digits and '-' (found 'P')");
  EXPECT_EQ(parse_error(with(kNamespace, "  name: prod\n", "")),
            "app.yaml document 1 (Namespace): missing required field \"metadata.name\"");
  EXPECT_EQ(parse_error(with(kNamespace, "apiVersion: v1", "apiVersion: v2")),
            "app.yaml document 1 (Namespace prod): apiVersion: \"v2\" is not supported for kind Namespace (use \"v1\")");
  EXPECT_EQ(parse_error(with(kNamespace, "team: blue", "team: true")),
            "app.yaml document 1 (Namespace prod): metadata.labels.team: must be a string, got true (put it in quotes)");
}

// ---------------------------------------------------------------- Pod

TEST(ManifestPod, FullPodParses) {
  Pod pod = parse_pod_yaml(R"(apiVersion: v1
kind: Pod
metadata:
  name: backend
  namespace: prod
  labels:
    app: api
    app.kubernetes.io/version: "1.0"
    empty: ""
  annotations:
    description: "serves /api, see docs"
spec:
  nodeName: node-1.example
  restartPolicy: Never
  containers:
  - name: server
    image: example/api:1.0
    command: [/bin/sh, -c]
    args: ["exec sleep 1000"]
    env:
    - name: MODE
      value: prod
    - name: EMPTY
    ports:
    - name: http
      containerPort: 8080
    - containerPort: 8080
      protocol: UDP
  - name: sidecar
    ports:
    - name: metrics
      containerPort: 9090
      protocol: TCP
)");
  EXPECT_EQ(pod.name, "backend");
  EXPECT_EQ(pod.ns, "prod");
  EXPECT_EQ(pod.labels.size(), 3u);
  EXPECT_EQ(pod.labels.at("app.kubernetes.io/version"), "1.0");
  EXPECT_EQ(pod.labels.at("empty"), "");
  EXPECT_EQ(pod.annotations.at("description"), "serves /api, see docs");
  EXPECT_EQ(pod.node_name, "node-1.example");
  ASSERT_EQ(pod.containers.size(), 2u);
  const Container& c = pod.containers[0];
  EXPECT_EQ(c.name, "server");
  EXPECT_EQ(c.image, "example/api:1.0");
  EXPECT_EQ(c.command, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(c.args, (std::vector<std::string>{"exec sleep 1000"}));
  EXPECT_EQ(c.env, (std::vector<std::pair<std::string, std::string>>{{"MODE", "prod"}, {"EMPTY", ""}}));
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "http");
  EXPECT_EQ(c.ports[0].container_port, 8080);
  EXPECT_EQ(c.ports[0].protocol, "TCP");
  EXPECT_EQ(c.ports[1].name, "");
  EXPECT_EQ(c.ports[1].protocol, "UDP");  // same number, other protocol: allowed
  EXPECT_EQ(pod.containers[1].image, "");
  EXPECT_TRUE(pod.containers[1].command.empty());
}

TEST(ManifestPod, NamespaceDefaultsToDefault) {
  EXPECT_EQ(parse_pod_yaml(kPod).ns, "default");
  EXPECT_EQ(parse_pod_yaml(with(kPod, "name: frontend", "name: frontend\n  namespace: team-a")).ns, "team-a");
  EXPECT_EQ(parse_error(with(kPod, "name: frontend", "name: frontend\n  namespace: Team_A")),
            "app.yaml document 1 (Pod Team_A/frontend): metadata.namespace: invalid DNS-1123 label \"Team_A\": must "
            "contain only lowercase letters, digits and '-' (found 'T')");
}

TEST(ManifestPod, PortErrorNamesDocumentAndFieldPath) {
  std::string text = kNamespace + "---\n" +
                     with(kPod, "      containerPort: 80\n", "      containerPort: 80\n    - containerPort: http\n");
  std::vector<Document> docs = parse_documents(Source{"app.yaml", text});
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(error_of([&] { parse_object(docs[1]); }),
            "app.yaml document 2 (Pod default/frontend): spec.containers[0].ports[1].containerPort: must be an integer "
            "between 1 and 65535, got \"http\"");
}

TEST(ManifestPod, ContainerPortRange) {
  EXPECT_EQ(parse_pod_yaml(with(kPod, "containerPort: 80", "containerPort: 65535")).containers[0].ports[0].container_port, 65535);
  EXPECT_EQ(parse_pod_yaml(with(kPod, "containerPort: 80", "containerPort: 1")).containers[0].ports[0].container_port, 1);
  for (const char* bad : {"0", "65536", "-1", "\"80\"", "80.5"}) {
    EXPECT_THAT(parse_error(with(kPod, "containerPort: 80", std::string("containerPort: ") + bad)),
                HasSubstr("spec.containers[0].ports[0].containerPort: must be an integer between 1 and 65535"))
        << bad;
  }
  EXPECT_EQ(parse_error(with(kPod, "      containerPort: 80\n", "")),
            kPodError + "missing required field \"spec.containers[0].ports[0].containerPort\"");
}

TEST(ManifestPod, ApiVersionAndKind) {
  EXPECT_EQ(parse_error(with(kPod, "apiVersion: v1", "apiVersion: apps/v1")),
            kPodError + "apiVersion: \"apps/v1\" is not supported for kind Pod (use \"v1\")");
  EXPECT_EQ(parse_error(with(kPod, "kind: Pod", "kind: Foo")),
            "app.yaml document 1 (Foo default/frontend): unknown kind \"Foo\" (supported: CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, Namespace, NetworkPolicy, Pod, Service)");
  EXPECT_EQ(parse_error(with(kPod, "kind: Pod\n", "")), "app.yaml document 1: missing required field \"kind\"");
  EXPECT_EQ(parse_error(with(kPod, "apiVersion: v1\n", "")), "app.yaml document 1: missing required field \"apiVersion\"");
}

TEST(ManifestPod, UnknownFieldsAnywhere) {
  EXPECT_EQ(parse_error(with(kPod, "    image: busybox\n", "    image: busybox\n    imagePullPolicy: Always\n")),
            kPodError + "unknown field \"spec.containers[0].imagePullPolicy\"");
  EXPECT_EQ(parse_error(kPod + "statuses:\n  phase: Running\n"), kPodError + "unknown field \"statuses\" (did you mean \"status\"?)");
  EXPECT_EQ(parse_error(with(kPod, "  name: frontend\n", "  name: frontend\n  uid: 1234\n")),
            kPodError + "unknown field \"metadata.uid\"");
  EXPECT_EQ(parse_error(with(kPod, "containerPort: 80", "containerPort: 80\n      hostPort: 80")),
            kPodError + "unknown field \"spec.containers[0].ports[0].hostPort\"");
  EXPECT_EQ(parse_error(with(kPod, "image: busybox", "imgae: busybox")),
            kPodError + "unknown field \"spec.containers[0].imgae\" (did you mean \"image\"?)");
  // A misspelt required field is noticed as missing first: the message points at the typo.
  EXPECT_EQ(parse_error(with(kPod, "containerPort: 80", "containerport: 80")),
            kPodError + "missing required field \"spec.containers[0].ports[0].containerPort\" (is \"containerport\" a typo?)");
  EXPECT_EQ(parse_error(with(kPod, "spec:\n", "spec:\n  hostNetwork: true\n")), kPodError + "unknown field \"spec.hostNetwork\"");
}

TEST(ManifestPod, Names) {
  EXPECT_EQ(parse_error(with(kPod, "  name: frontend\n", "")), "app.yaml document 1 (Pod): missing required field \"metadata.name\"");
  EXPECT_THAT(parse_error(with(kPod, "name: frontend", "name: front.end")), HasSubstr("metadata.name: invalid DNS-1123 label"));
  EXPECT_THAT(parse_error(with(kPod, "name: frontend", "name: " + std::string(64, 'f'))), HasSubstr("at most 63 characters"));
  EXPECT_EQ(parse_pod_yaml(with(kPod, "name: frontend", "name: " + std::string(63, 'f'))).name, std::string(63, 'f'));
  EXPECT_EQ(parse_error(with(kPod, "- name: app", "- name: App")),
            kPodError + "spec.containers[0].name: invalid DNS-1123 label \"App\": must contain only lowercase letters, "
                        "digits and '-' (found 'A')");
  EXPECT_NO_THROW(parse_one(with(kPod, "    image: busybox\n", "")));  // image is optional
}

TEST(ManifestPod, DuplicateContainerNames) {
  std::string two = kPod + "  - name: app\n";
  EXPECT_EQ(parse_error(two), kPodError + "spec.containers[1].name: duplicate container name \"app\" (also at spec.containers[0].name)");
  EXPECT_EQ(parse_pod_yaml(kPod + "  - name: other\n").containers.size(), 2u);
}

TEST(ManifestPod, AtLeastOneContainer) {
  std::string no_containers = kPod.substr(0, kPod.find("  containers:")) + "  containers: []\n";
  EXPECT_EQ(parse_error(no_containers), kPodError + "spec.containers: must have at least one container");
  std::string no_spec = kPod.substr(0, kPod.find("spec:"));
  EXPECT_EQ(parse_error(no_spec), kPodError + "missing required field \"spec\"");
}

TEST(ManifestPod, PortNames) {
  EXPECT_EQ(parse_pod_yaml(with(kPod, "name: http", "name: http-alt")).containers[0].ports[0].name, "http-alt");
  EXPECT_EQ(parse_error(with(kPod, "name: http", "name: HTTP")),
            kPodError + "spec.containers[0].ports[0].name: invalid port name \"HTTP\": must contain only lowercase "
                        "letters, digits and '-' (found 'H')");
  EXPECT_THAT(parse_error(with(kPod, "name: http", "name: \"8080\"")), HasSubstr("must contain at least one letter"));
  EXPECT_THAT(parse_error(with(kPod, "name: http", "name: a-very-long-port-name")), HasSubstr("at most 15 characters"));
  EXPECT_THAT(parse_error(with(kPod, "name: http", "name: ht--tp")), HasSubstr("must not contain \"--\""));
}

TEST(ManifestPod, Protocols) {
  EXPECT_EQ(parse_pod_yaml(with(kPod, "containerPort: 80", "containerPort: 80\n      protocol: UDP")).containers[0].ports[0].protocol, "UDP");
  EXPECT_EQ(parse_pod_yaml(with(kPod, "containerPort: 80", "containerPort: 80\n      protocol: TCP")).containers[0].ports[0].protocol, "TCP");
  EXPECT_EQ(parse_error(with(kPod, "containerPort: 80", "containerPort: 80\n      protocol: SCTP")),
            kPodError + "spec.containers[0].ports[0].protocol: SCTP is not supported by pilus (use TCP or UDP)");
  EXPECT_EQ(parse_error(with(kPod, "containerPort: 80", "containerPort: 80\n      protocol: tcp")),
            kPodError + "spec.containers[0].ports[0].protocol: must be one of TCP, UDP, SCTP, got \"tcp\"");
}

TEST(ManifestPod, DuplicatePorts) {
  // Across containers too: they share the pod's network namespace.
  std::string second_container = kPod + "  - name: side\n    ports:\n";
  EXPECT_EQ(parse_error(second_container + "    - name: http\n      containerPort: 81\n"),
            kPodError + "spec.containers[1].ports[0].name: duplicate port name \"http\" (also at spec.containers[0].ports[0].name)");
  EXPECT_EQ(parse_error(second_container + "    - containerPort: 80\n"),
            kPodError + "spec.containers[1].ports[0]: duplicate port 80/TCP (also at spec.containers[0].ports[0])");
  EXPECT_EQ(parse_pod_yaml(second_container + "    - containerPort: 80\n      protocol: UDP\n    - name: admin\n      containerPort: 81\n")
                .containers[1].ports.size(), 2u);
}

TEST(ManifestPod, Labels) {
  EXPECT_EQ(parse_pod_yaml(with(kPod, "app: web", "app: \"true\"")).labels.at("app"), "true");
  EXPECT_EQ(parse_pod_yaml(with(kPod, "app: web", "example.com/app: web")).labels.at("example.com/app"), "web");
  EXPECT_EQ(parse_error(with(kPod, "app: web", "app: true")),
            kPodError + "metadata.labels.app: must be a string, got true (put it in quotes)");
  EXPECT_EQ(parse_error(with(kPod, "app: web", "app: 1")),
            kPodError + "metadata.labels.app: must be a string, got 1 (put it in quotes)");
  EXPECT_EQ(parse_error(with(kPod, "app: web", "app: null")), kPodError + "metadata.labels.app: must be a string, got null");
  EXPECT_EQ(parse_error(with(kPod, "app: web", "app: web server")),
            kPodError + "metadata.labels.app: invalid label value \"web server\": must contain only letters, digits, "
                        "'-', '_' and '.' (found ' ')");
  EXPECT_EQ(parse_error(with(kPod, "app: web", "\"my app\": web")),
            kPodError + "metadata.labels: invalid label key \"my app\": must contain only letters, digits, '-', '_' "
                        "and '.' (found ' ')");
  EXPECT_EQ(parse_error(with(kPod, "    app: web\n", "    - app\n")), kPodError + "metadata.labels: must be a map, got a list");
  EXPECT_TRUE(parse_pod_yaml(with(kPod, "    app: web\n", "")).labels.empty());  // `labels:` with nothing is null: absent
}

TEST(ManifestPod, ReservedLabelsAreRejected) {
  EXPECT_EQ(parse_error(with(kPod, "app: web", "io.kubernetes.pod.namespace: kube-system")),
            kPodError + "metadata.labels[\"io.kubernetes.pod.namespace\"]: label key \"io.kubernetes.pod.namespace\" is "
                        "reserved: pilus sets it from metadata.namespace");
  EXPECT_THAT(parse_error(with(kPod, "app: web", "io.cilium.k8s.namespace.labels.team: blue")), HasSubstr("is reserved"));
}

TEST(ManifestPod, Annotations) {
  EXPECT_EQ(parse_pod_yaml(with(kPod, "spec:", "  annotations:\n    example.com/note: \"free text: ok!\"\nspec:"))
                .annotations.at("example.com/note"),
            "free text: ok!");
  EXPECT_EQ(parse_error(with(kPod, "spec:", "  annotations:\n    replicas: 3\nspec:")),
            kPodError + "metadata.annotations.replicas: must be a string, got 3 (put it in quotes)");
  EXPECT_THAT(parse_error(with(kPod, "spec:", "  annotations:\n    \"bad key\": x\nspec:")),
              HasSubstr("metadata.annotations: invalid label key \"bad key\""));
}

TEST(ManifestPod, WrongTypes) {
  EXPECT_EQ(parse_error(kPod.substr(0, kPod.find("  containers:")) + "  containers:\n    name: app\n"),
            kPodError + "spec.containers: must be a list, got a map");
  EXPECT_EQ(parse_error(with(kPod, "command: [\"sleep\", \"3600\"]", "command: sleep 3600")),
            kPodError + "spec.containers[0].command: must be a list, got \"sleep 3600\"");
  EXPECT_EQ(parse_error(with(kPod, "command: [\"sleep\", \"3600\"]", "command: [sleep, 3600]")),
            kPodError + "spec.containers[0].command[1]: must be a string, got 3600 (put it in quotes)");
  EXPECT_EQ(parse_error(with(kPod, "    image: busybox\n", "    image: [busybox]\n")),
            kPodError + "spec.containers[0].image: must be a string, got a list");
  EXPECT_EQ(parse_error(with(kPod, "spec:\n  containers:", "spec:\n  - containers:")), kPodError + "spec: must be a map, got a list");
}

TEST(ManifestPod, CommandAndArgs) {
  EXPECT_EQ(parse_error(with(kPod, "command: [\"sleep\", \"3600\"]", "command: [\"\", x]")),
            kPodError + "spec.containers[0].command[0]: must not be empty (it is the program to run)");
  EXPECT_EQ(parse_error(with(kPod, "command: [\"sleep\", \"3600\"]", "command: [sleep]\n    args: [\"a\\0b\"]")),
            kPodError + "spec.containers[0].args[0]: must not contain a NUL character");
  EXPECT_TRUE(parse_pod_yaml(with(kPod, "command: [\"sleep\", \"3600\"]", "command: []")).containers[0].command.empty());
}

TEST(ManifestPod, RestartPolicyAndNodeName) {
  for (const char* ok : {"Always", "OnFailure", "Never"}) {
    EXPECT_NO_THROW(parse_one(with(kPod, "spec:\n", std::string("spec:\n  restartPolicy: ") + ok + "\n"))) << ok;
  }
  EXPECT_EQ(parse_error(with(kPod, "spec:\n", "spec:\n  restartPolicy: Sometimes\n")),
            kPodError + "spec.restartPolicy: must be one of Always, OnFailure, Never, got \"Sometimes\"");
  EXPECT_THAT(parse_error(with(kPod, "spec:\n", "spec:\n  nodeName: Node_1\n")),
              HasSubstr("spec.nodeName: invalid DNS-1123 subdomain \"Node_1\""));
}

TEST(ManifestPod, Env) {
  auto env = [](const std::string& items) { return with(kPod, "    image: busybox\n", "    image: busybox\n    env:\n" + items); };
  EXPECT_EQ(parse_pod_yaml(env("    - name: A\n      value: \"1\"\n")).containers[0].env.at(0).second, "1");
  EXPECT_EQ(parse_error(env("    - name: A\n      value: 1\n")),
            kPodError + "spec.containers[0].env[0].value: must be a string, got 1 (put it in quotes)");
  EXPECT_EQ(parse_error(env("    - name: A\n    - name: A\n")),
            kPodError + "spec.containers[0].env[1].name: duplicate environment variable \"A\" (also at spec.containers[0].env[0].name)");
  EXPECT_THAT(parse_error(env("    - name: A=B\n")), HasSubstr("spec.containers[0].env[0].name: invalid environment variable name"));
  EXPECT_EQ(parse_error(env("    - value: x\n")), kPodError + "missing required field \"spec.containers[0].env[0].name\"");
  EXPECT_EQ(parse_error(env("    - name: A\n      valueFrom: {}\n")), kPodError + "unknown field \"spec.containers[0].env[0].valueFrom\"");
}

// ---------------------------------------------------------------- parse_all

TEST(ManifestParseAll, ParsesEverythingInOrder) {
  auto objects = parse_all({Source{"ns.yaml", kNamespace}, Source{"pods.yaml", kPod + "---\n" + with(kPod, "name: frontend", "name: backend")}});
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(std::get<NamespaceObject>(objects[0].second).name, "prod");
  EXPECT_EQ(std::get<Pod>(objects[1].second).name, "frontend");
  EXPECT_EQ(std::get<Pod>(objects[2].second).name, "backend");
  EXPECT_EQ(objects[2].first.describe(), "pods.yaml document 2 (Pod default/backend)");
}

TEST(ManifestParseAll, DuplicateObjectsNameBothDocuments) {
  EXPECT_EQ(error_of([] { parse_all({Source{"a.yaml", kPod + "---\n" + kPod}}); }),
            "a.yaml document 2 (Pod default/frontend): duplicate of a.yaml document 1 (Pod default/frontend)");
  // Explicit "default" is the same namespace as none.
  EXPECT_EQ(error_of([] {
              parse_all({Source{"a.yaml", kPod}, Source{"b.yaml", with(kPod, "name: frontend", "name: frontend\n  namespace: default")}});
            }),
            "b.yaml document 1 (Pod default/frontend): duplicate of a.yaml document 1 (Pod default/frontend)");
  // Other namespace or other kind with the same name: distinct objects.
  EXPECT_EQ(parse_all({Source{"a.yaml", kPod + "---\n" + with(kPod, "name: frontend", "name: frontend\n  namespace: prod")}}).size(), 2u);
  EXPECT_EQ(parse_all({Source{"a.yaml", with(kNamespace, "name: prod", "name: frontend") + "---\n" + kPod}}).size(), 2u);
}

TEST(ManifestParseAll, ReportsAllErrorsAndReturnsNothing) {
  std::string e = error_of([] {
    parse_all({Source{"a.yaml", kNamespace + "---\n" + with(kPod, "kind: Pod", "kind: Foo")},
               Source{"b.yaml", "key: [unclosed\n"},
               Source{"c.yaml", with(kPod, "containerPort: 80", "containerPort: 0")}});
  });
  EXPECT_EQ(e,
            "a.yaml document 2 (Foo default/frontend): unknown kind \"Foo\" (supported: CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, Namespace, NetworkPolicy, Pod, Service)\n"
            "b.yaml: line 2, column 1: YAML syntax error: end of sequence flow not found\n"
            "c.yaml document 1 (Pod default/frontend): spec.containers[0].ports[0].containerPort: must be an integer "
            "between 1 and 65535, got 0");
}

TEST(ManifestParseAll, NoObjectsIsAnError) {
  EXPECT_EQ(error_of([] { parse_all({Source{"empty.yaml", "# nothing\n---\n"}}); }), "no objects found in empty.yaml");
}

}  // namespace
}  // namespace pilus::manifest
