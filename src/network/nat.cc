#include "network/nat.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>

#include <memory>
#include <mutex>
#include <sstream>

namespace nfc::network {
namespace {

// libnftables keeps some process-wide state (its parser's, the cache's): one command at a time.
std::mutex nft_mu;

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

struct NftOutput {
  int rc = 0;
  std::string out, err;
};

// Runs `commands` (one nftables transaction) in the calling thread's network namespace.
Result<NftOutput> RunNft(const std::string& commands, bool with_handles) {
  std::lock_guard<std::mutex> lock(nft_mu);
  std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return Error::Internal("nftables: cannot create a context");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return Error::Internal("nftables: cannot buffer output");
  }
  if (with_handles) nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_HANDLE);
  NftOutput r;
  r.rc = nft_run_cmd_from_buffer(ctx.get(), commands.c_str());
  if (const char* o = nft_ctx_get_output_buffer(ctx.get())) r.out = o;
  if (const char* e = nft_ctx_get_error_buffer(ctx.get())) r.err = e;
  return r;
}

Status Run(const std::string& commands, const std::string& what) {
  NFC_ASSIGN_OR_RETURN(NftOutput r, RunNft(commands, false));
  if (r.rc != 0) return Error::Internal("nftables: " + what + ": " + r.err);
  return Ok();
}

// The address in canonical form, or an error naming `field`: nothing but an address reaches a rule's text.
Result<std::string> Ipv4(const std::string& text, const std::string& field) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) {
    return Error::InvalidArgument(field + " \"" + text + "\" is not an IPv4 address");
  }
  char out[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, out, sizeof(out));
  return std::string(out);
}

bool SafeTap(const std::string& tap) {
  return !tap.empty() && tap.size() < 16 &&
         tap.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") == std::string::npos;
}

std::string Table() {
  return std::string("ip ") + kNatTable;
}

// The table and its base chains; `add` leaves existing ones (and their rules) alone.
std::string TableSkeleton() {
  std::string t = Table();
  return "add table " + t + "\n" + "add chain " + t +
         " prerouting { type nat hook prerouting priority -100; policy accept; }\n" + "add chain " + t +
         " output { type nat hook output priority -100; policy accept; }\n" + "add chain " + t +
         " postrouting { type nat hook postrouting priority 100; policy accept; }\n" + "add chain " + t +
         " forward { type filter hook forward priority 0; policy accept; }\n";
}

// The DNAT rules of one port, TCP and UDP, in prerouting and output.
Result<std::string> PortRules(const PortForward& p, const std::string& guest, const std::string& tag) {
  if (p.port == 0) return Error::InvalidArgument("port 0 cannot be forwarded to the guest");
  std::string to = "fib daddr type local";
  if (!p.host_ip.empty() && p.host_ip != "0.0.0.0") {
    NFC_ASSIGN_OR_RETURN(std::string ip, Ipv4(p.host_ip, "port host_ip"));
    to = "ip daddr " + ip;
  }
  std::string out;
  for (const char* proto : {"tcp", "udp"}) {
    std::string match = to + " " + proto + " dport " + std::to_string(p.port);
    std::string action = " dnat to " + guest + " comment \"" + tag + "\"\n";
    out += "add rule " + Table() + " prerouting " + match + action;
    // Loopback is left out: a packet from 127.0.0.1 cannot leave through the TAP.
    out += "add rule " + Table() + " output ip daddr != 127.0.0.0/8 " + match + action;
  }
  return out;
}

// The handles of the rules tagged `tag`, per chain, from `nft -a list table` output.
std::vector<std::pair<std::string, std::string>> TaggedRules(const std::string& listing,
                                                             const std::string& tag) {
  std::vector<std::pair<std::string, std::string>> found;
  std::istringstream in(listing);
  std::string line, chain;
  std::string needle = "comment \"" + tag + "\"";
  while (std::getline(in, line)) {
    auto c = line.find("chain ");
    if (c != std::string::npos && line.find('{') != std::string::npos &&
        line.find("comment") == std::string::npos) {
      std::istringstream words(line.substr(c + 6));
      words >> chain;
      continue;
    }
    auto h = line.rfind("# handle ");
    if (line.find(needle) == std::string::npos || h == std::string::npos) continue;
    found.emplace_back(chain, line.substr(h + 9));
  }
  return found;
}

}  // namespace

std::string NatTag(const std::string& tap) {
  return "nfc:" + tap;
}

Status AddVmNatRules(const VmNatRules& rules) {
  if (!SafeTap(rules.tap)) return Error::InvalidArgument("TAP name \"" + rules.tap + "\" is not one of ours");
  NFC_ASSIGN_OR_RETURN(std::string guest, Ipv4(rules.guest_ip, "guest address"));
  std::string pool_ip = rules.pool.substr(0, rules.pool.find('/'));
  NFC_ASSIGN_OR_RETURN(std::string pool, Ipv4(pool_ip, "host_network cidr"));
  pool += rules.pool.substr(pool_ip.size());
  if (pool.find_first_not_of("0123456789./") != std::string::npos) {
    return Error::InvalidArgument("host_network cidr \"" + rules.pool + "\" is not an IPv4 CIDR");
  }
  NFC_RETURN_IF_ERROR(RemoveVmNatRules(rules.tap));
  std::string tag = NatTag(rules.tap), t = Table(), tap = "\"" + rules.tap + "\"";
  std::string c = " comment \"" + tag + "\"\n";
  std::string cmds = TableSkeleton();
  cmds += "add rule " + t + " postrouting ip saddr " + guest + " ip daddr != " + pool + " masquerade" + c;
  cmds += "add rule " + t + " forward iifname " + tap + " ip saddr != " + guest + " drop" + c;
  cmds += "add rule " + t + " forward iifname " + tap + " accept" + c;
  cmds += "add rule " + t + " forward oifname " + tap + " ct state established,related accept" + c;
  cmds += "add rule " + t + " forward oifname " + tap + " ip daddr " + guest + " ct status dnat accept" + c;
  // Only the published ports reach the guest from outside.
  cmds += "add rule " + t + " forward oifname " + tap + " drop" + c;
  for (const PortForward& p : rules.ports) {
    NFC_ASSIGN_OR_RETURN(std::string port_rules, PortRules(p, guest, tag));
    cmds += port_rules;
  }
  return Run(cmds, "add the rules of " + rules.tap);
}

Result<std::string> ListNatTable() {
  NFC_ASSIGN_OR_RETURN(NftOutput r, RunNft("list table " + Table(), true));
  if (r.rc != 0) {
    if (r.err.find("No such file or directory") != std::string::npos) return std::string();
    return Error::Internal("nftables: list table " + Table() + ": " + r.err);
  }
  return r.out;
}

Status RemoveVmNatRules(const std::string& tap) {
  if (!SafeTap(tap)) return Error::InvalidArgument("TAP name \"" + tap + "\" is not one of ours");
  NFC_ASSIGN_OR_RETURN(std::string listing, ListNatTable());
  if (listing.empty()) return Ok();
  std::string cmds;
  for (const auto& [chain, handle] : TaggedRules(listing, NatTag(tap))) {
    cmds += "delete rule " + Table() + " " + chain + " handle " + handle + "\n";
  }
  if (!cmds.empty()) NFC_RETURN_IF_ERROR(Run(cmds, "remove the rules of " + tap));
  NFC_ASSIGN_OR_RETURN(listing, ListNatTable());
  // No VM's rules left: the table goes too (nothing of ours stays in the host's firewall).
  if (!listing.empty() && listing.find("comment \"nfc:") == std::string::npos) {
    NFC_RETURN_IF_ERROR(Run("delete table " + Table(), "remove the empty table"));
  }
  return Ok();
}

}  // namespace nfc::network
