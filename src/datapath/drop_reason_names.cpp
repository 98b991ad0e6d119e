#include "datapath/drop_reason_names.h"

#include "abi/drop_reasons.h"

namespace pilus::datapath {

std::string drop_reason_name(uint8_t reason) {
  switch (reason) {
    case REASON_FORWARDED: return "FORWARDED";
    case DROP_INVALID_SOURCE_IP: return "INVALID_SOURCE_IP";
    case DROP_POLICY_DENIED: return "POLICY_DENIED";
    case DROP_CT_TRUNCATED_OR_INVALID_HEADER: return "CT_TRUNCATED_OR_INVALID_HEADER";
    case DROP_CT_MISSING_TCP_ACK_FLAG: return "CT_MISSING_TCP_ACK_FLAG";
    case DROP_CT_CANNOT_CREATE_ENTRY_FROM_PACKET: return "CT_CANNOT_CREATE_ENTRY_FROM_PACKET";
    case DROP_UNSUPPORTED_L3_PROTOCOL: return "UNSUPPORTED_L3_PROTOCOL";
    case DROP_UNKNOWN_L4_PROTOCOL: return "UNKNOWN_L4_PROTOCOL";
    case DROP_STALE_OR_UNROUTABLE_IP: return "STALE_OR_UNROUTABLE_IP";
    case DROP_CT_MAP_INSERTION_FAILED: return "CT_MAP_INSERTION_FAILED";
    case DROP_IP_FRAGMENTATION_NOT_SUPPORTED: return "IP_FRAGMENTATION_NOT_SUPPORTED";
    case DROP_SERVICE_BACKEND_NOT_FOUND: return "SERVICE_BACKEND_NOT_FOUND";
    case DROP_FIB_LOOKUP_FAILED: return "FIB_LOOKUP_FAILED";
    case DROP_POLICY_DENY: return "POLICY_DENY";
    case DROP_TTL_EXCEEDED: return "TTL_EXCEEDED";
    case DROP_WRITE_ERROR: return "ERROR_WRITING_TO_PACKET";
    case DROP_EP_NOT_READY: return "DROP_EP_NOT_READY";
    case DROP_NO_ROUTE_OUTSIDE: return "NO_ROUTE_TO_OUTSIDE";
    default: return "UNKNOWN_REASON_" + std::to_string(reason);
  }
}

// Cilium's agent texts (pkg/monitor/api/drop.go), which its metrics' reason label and its
// Grafana dashboards use ("Policy denied").
std::string drop_reason_text(uint8_t reason) {
  switch (reason) {
    case DROP_INVALID_SOURCE_IP: return "Invalid source ip";
    case DROP_POLICY_DENIED: return "Policy denied";
    case DROP_CT_TRUNCATED_OR_INVALID_HEADER: return "CT: Truncated or invalid header";
    case DROP_CT_MISSING_TCP_ACK_FLAG: return "CT: Missing TCP ACK flag";
    case DROP_CT_CANNOT_CREATE_ENTRY_FROM_PACKET: return "CT: Can't create entry from packet";
    case DROP_UNSUPPORTED_L3_PROTOCOL: return "Unsupported L3 protocol";
    case DROP_UNKNOWN_L4_PROTOCOL: return "Unknown L4 protocol";
    case DROP_STALE_OR_UNROUTABLE_IP: return "Stale or unroutable IP";
    case DROP_CT_MAP_INSERTION_FAILED: return "CT: Map insertion failed";
    case DROP_IP_FRAGMENTATION_NOT_SUPPORTED: return "IP fragmentation not supported";
    case DROP_SERVICE_BACKEND_NOT_FOUND: return "Service backend not found";
    case DROP_FIB_LOOKUP_FAILED: return "FIB lookup failed";
    case DROP_POLICY_DENY: return "Policy denied by denylist";
    case DROP_TTL_EXCEEDED: return "TTL exceeded";
    case DROP_WRITE_ERROR: return "Error writing to packet";
    case DROP_EP_NOT_READY: return "Endpoint policy program not available";
    case DROP_NO_ROUTE_OUTSIDE: return "No route to the outside";
    default: return std::to_string(reason);
  }
}

}  // namespace pilus::datapath
