// pilus-cni's side of the CNI protocol that needs no agent: versions, errors, environment.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cni/cni_plugin.h"

namespace pilus::cni {
namespace {

using json = nlohmann::json;

struct Case {
  const char* description;
  std::map<std::string, std::string> env;
  std::string conf;
  int exit_code;
  int error_code;  // 0: no error JSON expected
  const char* msg_part;
};

const std::string kConf = R"({"cniVersion":"1.0.0","name":"pilus","type":"pilus-cni","socket":"/nonexistent/pilus.sock","podmanDatabase":"","podmanSqliteDatabase":""})";
const std::map<std::string, std::string> kAdd = {{"CNI_COMMAND", "ADD"},
                                                 {"CNI_CONTAINERID", "abc"},
                                                 {"CNI_NETNS", "/proc/self/ns/net"},
                                                 {"CNI_IFNAME", "eth0"},
                                                 {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"}};

TEST(CniPlugin, AnswersWithTheSpecsErrorCodes) {
  auto with = [](std::map<std::string, std::string> env, const std::string& key, const std::string& value) {
    if (value.empty())
      env.erase(key);
    else
      env[key] = value;
    return env;
  };
  const std::vector<Case> cases = {
      {"an unsupported version", kAdd, R"({"cniVersion":"0.1.0","name":"p","type":"pilus-cni"})", 1, 1, "0.1.0"},
      {"stdin that is not JSON", kAdd, "not json", 1, 6, "not a JSON object"},
      {"no CNI_COMMAND", with(kAdd, "CNI_COMMAND", ""), kConf, 1, 4, "CNI_COMMAND is required"},
      {"an unknown command", with(kAdd, "CNI_COMMAND", "FOO"), kConf, 1, 4, "not one of"},
      {"ADD without CNI_NETNS", with(kAdd, "CNI_NETNS", ""), kConf, 1, 4, "CNI_NETNS is required"},
      {"ADD without CNI_CONTAINERID", with(kAdd, "CNI_CONTAINERID", ""), kConf, 1, 4, "CNI_CONTAINERID"},
      {"malformed CNI_ARGS", with(kAdd, "CNI_ARGS", "K8S_POD_NAME"), kConf, 1, 4, "not KEY=VALUE"},
      {"a socket that is not a string", kAdd, R"({"cniVersion":"1.0.0","name":"p","type":"pilus-cni","socket":3})", 1, 7,
       "socket"},
      {"ADD with the agent down: try again later", kAdd, kConf, 1, 11, "cannot reach the pilus agent"},
      {"DEL with the agent down", with(kAdd, "CNI_COMMAND", "DEL"), kConf, 1, 11, "cannot reach the pilus agent"},
      {"STATUS with the agent down: plugin not available", with(kAdd, "CNI_COMMAND", "STATUS"), kConf, 1, 50,
       "cannot reach the pilus agent"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    Outcome out = run_plugin({c.env, c.conf});
    EXPECT_EQ(out.exit_code, c.exit_code);
    auto j = json::parse(out.stdout_text, nullptr, false);
    ASSERT_TRUE(j.is_object()) << out.stdout_text;
    EXPECT_EQ(j["code"], c.error_code) << out.stdout_text;
    EXPECT_TRUE(j.contains("cniVersion"));
    EXPECT_NE(j.value("msg", "").find(c.msg_part), std::string::npos) << out.stdout_text;
  }
}

TEST(CniPlugin, VersionListsTheSupportedVersions) {
  Outcome out = run_plugin({{{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"0.4.0"})"});
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  auto j = json::parse(out.stdout_text);
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["supportedVersions"], json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}

}  // namespace
}  // namespace pilus::cni
