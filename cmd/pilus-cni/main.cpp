// pilus-cni: the CNI plugin binary (see src/cni/cni_plugin.h). The runtime passes the command in
// CNI_* variables and the network configuration on stdin; the result or error goes to stdout.
#include <iostream>
#include <iterator>

#include "cni/cni_plugin.h"

extern char** environ;

int main() {
  pilus::cni::Invocation in;
  for (char** e = environ; *e; e++) {
    std::string kv = *e;
    if (auto eq = kv.find('='); eq != std::string::npos && kv.starts_with("CNI_")) in.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  in.stdin_text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  pilus::cni::Outcome out = pilus::cni::run_plugin(in);
  std::cout << out.stdout_text;
  if (!out.stdout_text.empty()) std::cout << '\n';
  std::cout.flush();
  return out.exit_code;
}
