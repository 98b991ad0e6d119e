#!/usr/bin/env bash
# TODO(issue 5): services benchmark, not run yet (bench/run.sh lists it commented out).
# When services land, this script should, with the helpers of lib.sh:
#   1. agent_start svc; server_and_client_pods; apply S ClusterIP services (S = 1, 1000,
#      10000; quick: 1, 1000) whose last one selects bench-server on port 5001, and record
#      the time `pilus apply` takes (record controlplane-style, baseline below).
#   2. baseline: routed_pair k ...; in the router namespace, iptables-restore a kube-proxy
#      iptables-mode table of S services (nat KUBE-SERVICES -> KUBE-SVC-<hash> ->
#      KUBE-SEP-<hash> with -m statistic and DNAT), the bench server's VIP last; record its
#      programming time.
#   3. measure "$client" VIP crr (and rr) interleaved with the iptables client, as e2e.sh
#      does, and record "ClusterIP connections/s" with the floor (server IP, no service).
#   4. datapath: extend bench/datapath/datapath_bench.cpp with a "service-translated TCP"
#      case once the LB maps exist (seed S services, the packet to the last VIP).
source "$(dirname "$0")/lib.sh"
log "services: not implemented until services exist (issue 5)"
