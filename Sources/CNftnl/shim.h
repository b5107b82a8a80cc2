#ifndef SLUICE_CNFTNL_SHIM_H
#define SLUICE_CNFTNL_SHIM_H
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <malloc.h>
#include <libmnl/libmnl.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>

/* Helpers for things Swift cannot import (function-like macros, macro constants of
 * composite expressions). Kept tiny: everything else is called directly. */

/** NLMSG_HDRLEN */
static inline uint32_t sluice_nlmsg_hdrlen(void) { return (uint32_t)NLMSG_HDRLEN; }

/** NLMSG_ALIGN(len) */
static inline uint32_t sluice_nlmsg_align(uint32_t len) { return (uint32_t)NLMSG_ALIGN(len); }

/** Offset of the payload after the nfgenmsg header of an nf_tables message. */
static inline uint32_t sluice_nfgen_payload_offset(void) {
    return (uint32_t)(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
}

/** Adds NFNL_BATCH_GENID to a batch-begin message: the kernel rejects the whole batch
 *  with ERESTART when the ruleset generation moved on (a concurrent writer). */
static inline void sluice_batch_put_genid(struct nlmsghdr *nlh, uint32_t genid) {
    mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(genid));
}

/** Attribute walk helpers over a raw TLV region (mnl_attr_for_each is a macro). */
static inline const struct nlattr *sluice_attr_first(const void *start) {
    return (const struct nlattr *)start;
}
static inline int sluice_attr_ok(const struct nlattr *attr, int len) {
    return mnl_attr_ok(attr, len);
}
static inline const struct nlattr *sluice_attr_next(const struct nlattr *attr) {
    return mnl_attr_next(attr);
}
/** malloc_trim(0): return free heap pages of every arena to the OS. */
static inline int sluice_malloc_trim(void) { return malloc_trim(0); }

/** setns(fd, CLONE_NEWNET) for the calling thread (setns needs _GNU_SOURCE in glibc). */
static inline int sluice_setns_net(int fd) { return (int)syscall(SYS_setns, fd, CLONE_NEWNET); }

/** Starts a ctnetlink request (NFNL_SUBSYS_CTNETLINK) with its nfgenmsg header. */
static inline struct nlmsghdr *sluice_ct_msg(void *buf, uint8_t msg, uint16_t flags, uint8_t family, uint32_t seq) {
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = seq;
    struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
    nfg->nfgen_family = family;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = 0;
    return nlh;
}

/** Starts an RTM_GETADDR dump request (every family) with its ifaddrmsg header. */
static inline struct nlmsghdr *sluice_getaddr_dump(void *buf, uint32_t seq) {
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg));
    ifa->ifa_family = AF_UNSPEC;
    return nlh;
}

/** Offset of the attributes after the ifaddrmsg header of an RTM_NEWADDR message. */
static inline uint32_t sluice_ifaddr_payload_offset(void) {
    return (uint32_t)(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifaddrmsg)));
}
#endif
