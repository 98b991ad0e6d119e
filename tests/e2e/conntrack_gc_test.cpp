// The agent's conntrack GC on its own schedule (--ct-gc-interval), through its maintenance loop:
// expired entries are deleted, live ones kept. Entries are aged by rewriting their expiry in the
// agent's pinned conntrack map (waiting out a real lifetime would take a minute at least).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <gmock/gmock.h>

#include "abi/conntrack.h"
#include "datapath/bpf_map.h"
#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

uint32_t mono_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

uint32_t be_address(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) throw HarnessError("not an IPv4 address: " + ip);
  return a.s_addr;
}

// The agent's pinned conntrack map, opened by path; closed when dropped.
class PinnedConntrack {
 public:
  explicit PinnedConntrack(const std::string& bpf_root) : fd_(bpf_obj_get((bpf_root + "/conntrack").c_str())) {
    if (fd_ < 0) throw HarnessError("opening " + bpf_root + "/conntrack: " + std::strerror(errno));
  }
  ~PinnedConntrack() { close(fd_); }
  PinnedConntrack(const PinnedConntrack&) = delete;
  PinnedConntrack& operator=(const PinnedConntrack&) = delete;
  datapath::BpfMap<ct_key, ct_entry> map() const { return {fd_, "conntrack"}; }

 private:
  int fd_;
};

class ConntrackGc : public PodNetworkTest {
 protected:
  TestAgent::Options agent_options() const override {
    TestAgent::Options o;
    o.agent_args = {"--ct-gc-interval", "1"};
    return o;
  }
  uint64_t gc_runs() { return status_gc("runs"); }
  uint64_t gc_deleted() { return status_gc("deleted"); }
  uint64_t status_gc(const char* field) {
    CommandResult r = agent().pilus({"status", "-o", "json"});
    if (!r.ok()) throw HarnessError("pilus status: " + r.describe());
    return nlohmann::json::parse(r.out)["conntrackGC"].value(field, uint64_t(0));
  }
};

TEST_F(ConntrackGc, ExpiredEntriesAreDeletedOnScheduleAndLiveOnesKept) {
  create_pods({server_pod("server"), idle_pod("client")});
  Peer server = pod("server"), client = pod("client");
  CommandResult r = run_at(client, {netprobe_bin(), "connect", "udp", server.ip, std::to_string(kUdpPort)});
  ASSERT_TRUE(r.ok()) << r.describe();

  PinnedConntrack pinned(agent().bpf_root());
  auto ct = pinned.map();
  // The exchange's two entries: the client's egress one and the server's ingress one.
  std::optional<ct_key> client_side, server_side;
  for (const ct_key& k : ct.keys()) {
    if (k.proto != IPPROTO_UDP || k.saddr != be_address(client.ip) || k.daddr != be_address(server.ip)) continue;
    (k.scope == CT_EGRESS ? client_side : server_side) = k;
  }
  ASSERT_TRUE(client_side && server_side) << "the UDP exchange left no conntrack entries: "
                                          << agent().bpf_conntrack().dump();

  // Aged: the client's real entry, and a made-up one. Live for an hour: the server's real entry
  // and a made-up one (a real UDP lifetime is 60 s: a loaded machine could outlast it).
  uint32_t now = mono_seconds();
  auto set_expiry = [&](const ct_key& k, uint32_t expires) {
    ct_entry e = ct.lookup(k).value();
    e.expires = expires;
    ct.update(k, e);
  };
  auto made_up = [&](uint16_t sport, uint32_t expires) {
    ct_key k{be_address("10.255.255.1"), be_address("10.255.255.2"), htons(sport), htons(9), IPPROTO_TCP, CT_EGRESS, 0};
    ct_entry e{};
    e.created = now - 100;
    e.expires = expires;
    ct.update(k, e);
    return k;
  };
  uint64_t deleted_before = gc_deleted();
  set_expiry(*client_side, now - 1);
  set_expiry(*server_side, now + 3600);
  ct_key stale = made_up(1111, now - 5), live = made_up(2222, now + 3600);

  // Two more runs of the agent's loop: the second started after every write above.
  uint64_t runs = gc_runs();
  ASSERT_TRUE(wait_until([&] { return gc_runs() >= runs + 2; })) << "the GC loop did not run every second";
  EXPECT_FALSE(ct.lookup(*client_side)) << "an expired real entry is deleted";
  EXPECT_FALSE(ct.lookup(stale)) << "an expired entry is deleted";
  EXPECT_TRUE(ct.lookup(*server_side)) << "a live real entry is kept";
  EXPECT_TRUE(ct.lookup(live)) << "a live entry is kept";
  EXPECT_GE(gc_deleted(), deleted_before + 2) << "the deletions are counted";
  ct.erase(live);
}

}  // namespace
}  // namespace pilus::e2e
