// split_yaml_stream, and parse_documents through it: the same documents, indexes and error lines
// as parsing the stream whole.
#include "manifest/yaml_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "manifest/document.h"

namespace pilus::manifest {
namespace {

using ::testing::HasSubstr;

std::vector<std::pair<std::string, int>> chunks_of(std::string_view text) {
  std::vector<std::pair<std::string, int>> out;
  auto chunks = split_yaml_stream(text);
  if (!chunks) return {{"<whole>", -1}};
  for (const auto& c : *chunks) out.emplace_back(std::string(c.text), c.first_line);
  return out;
}

TEST(YamlStreamTest, CutsBeforeEveryDocumentStartLine) {
  using V = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(chunks_of(""), (V{{"", 0}}));
  EXPECT_EQ(chunks_of("a: 1\n"), (V{{"a: 1\n", 0}}));
  EXPECT_EQ(chunks_of("---\na: 1\n---\nb: 2\n"), (V{{"---\na: 1\n", 0}, {"---\nb: 2\n", 2}}));
  EXPECT_EQ(chunks_of("# c\na: 0\n--- # one\na: 1\n---\t{b: 2}\n---\r\n---"),
            (V{{"# c\na: 0\n", 0}, {"--- # one\na: 1\n", 2}, {"---\t{b: 2}\n", 4}, {"---\r\n", 5}, {"---", 6}}));
  // Not markers: "---" glued to text, or not at the start of the line.
  EXPECT_EQ(chunks_of("a: ---x\n---b: 1\n  ---\n"), (V{{"a: ---x\n---b: 1\n  ---\n", 0}}));
}

TEST(YamlStreamTest, DirectivesAndEndMarkersAreLeftToTheWholeStreamParse) {
  EXPECT_EQ(split_yaml_stream("%YAML 1.2\n---\na: 1\n"), std::nullopt);
  EXPECT_EQ(split_yaml_stream("a: 1\n...\n---\nb: 2\n"), std::nullopt);
  EXPECT_NE(split_yaml_stream("a: ...\nb: '%'\n"), std::nullopt);
}

TEST(YamlStreamTest, ParsedDocumentsKeepTheirIndexesAndLines) {
  const std::string text =
      "# leading comment\n"
      "---\n"
      "---\n"
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"
      "---\n"
      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n  name: c\n";
  try {
    parse_documents({"s.yaml", text});
    FAIL() << "duplicate key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "s.yaml: line 12: duplicate key \"name\"");
  }
  auto docs = parse_documents({"s.yaml", text.substr(0, text.find("  name: c"))});
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].describe(), "s.yaml document 2 (Namespace a)");
  EXPECT_EQ(docs[1].describe(), "s.yaml document 3 (Namespace b)");
}

TEST(YamlStreamTest, SyntaxErrorsAreReportedAsForTheWholeStream) {
  // Before the first document's own error (no apiVersion), as when the stream was parsed whole.
  try {
    parse_documents({"e.yaml", "---\na: 1\n---\nb: [1, 2\n"});
    FAIL() << "syntax error accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "e.yaml: line 5, column 1: YAML syntax error: end of sequence flow not found");
  }
}

}  // namespace
}  // namespace pilus::manifest
