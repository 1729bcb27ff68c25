/* guard.c - the outbound address guard's classifier (SPEC §4 "Address guard").
 *
 * Invariant: an address is allowed only when an --allow-net range covers it, or when it is in
 * no refused range below and every IPv4 address it embeds (IPv4-mapped, -translated,
 * -compatible, NAT64, 6to4, Teredo) is allowed by the same rules. Anything we cannot classify
 * (other address families, short sockaddrs, unparseable text) is refused: the guard fails closed.
 */
#include "net/guard.h"

#include "core/xalloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One network: FAMILY is AF_INET (the first 4 bytes of B used) or AF_INET6. */
struct net {
    int family;
    uint8_t b[16];
    unsigned plen; /* prefix length in bits; 0..32 or 0..128 */
};

struct guard {
    struct net *allow; /* owned; the --allow-net ranges in the order given */
    size_t nallow;
};

/* A refused range of the IANA special-purpose registries (RFC 6890 and successors). */
struct range {
    const char *cidr; /* the range as text; compiled once into the parallel NETS array */
    const char *what; /* finishes "ADDRESS is ..." */
    const char *ref;  /* where the range is defined */
};

/* IPv4 ranges refused by default, most specific first so the reason names the narrowest one.
 * Left out on purpose: special-purpose blocks that the registry marks globally reachable
 * (192.31.196.0/24 and 192.175.48.0/24 AS112, 192.52.193.0/24 AMT): those are ordinary
 * public services. 192.0.0.9 and 192.0.0.10 (PCP/TURN anycast) are refused with the rest of
 * 192.0.0.0/24, which costs nothing for HTTP. */
static const struct range V4_RANGES[] = {
    {"255.255.255.255/32", "broadcast", "RFC 919"},
    {"0.0.0.0/8", "unspecified (\"this network\")", "RFC 1122"},
    {"10.0.0.0/8", "private", "RFC 1918"},
    {"100.64.0.0/10", "shared address space (carrier-grade NAT)", "RFC 6598"},
    {"127.0.0.0/8", "loopback", "RFC 1122"},
    {"169.254.0.0/16", "link-local", "RFC 3927"},
    {"172.16.0.0/12", "private", "RFC 1918"},
    {"192.0.0.0/24", "reserved (IETF protocol assignments)", "RFC 6890"},
    {"192.0.2.0/24", "reserved (documentation, TEST-NET-1)", "RFC 5737"},
    {"192.88.99.0/24", "reserved (deprecated 6to4 relay anycast)", "RFC 7526"},
    {"192.168.0.0/16", "private", "RFC 1918"},
    {"198.18.0.0/15", "reserved (benchmarking)", "RFC 2544"},
    {"198.51.100.0/24", "reserved (documentation, TEST-NET-2)", "RFC 5737"},
    {"203.0.113.0/24", "reserved (documentation, TEST-NET-3)", "RFC 5737"},
    {"224.0.0.0/4", "multicast", "RFC 5771"},
    {"240.0.0.0/4", "reserved (future use)", "RFC 1112"},
};

/* IPv6 ranges refused by default. The IPv4-embedding forms are handled separately (see
 * V6_EMBED), before this table; anything outside 2000::/3 that is in neither table is refused
 * as well, since IANA allocates global unicast only from 2000::/3. */
/* The first two entries must stay ::/128 and ::1/128: check_v6 looks them up before the
 * IPv4-compatible form (::/96) that contains them. */
static const struct range V6_RANGES[] = {
    {"::/128", "unspecified", "RFC 4291"},
    {"::1/128", "loopback", "RFC 4291"},
    {"100::/64", "reserved (discard-only)", "RFC 6666"},
    {"100:0:0:1::/64", "reserved (dummy prefix)", "RFC 9780"},
    /* Includes benchmarking 2001:2::/48, ORCHID, AMT and AS112-v6: none is a web server. */
    {"2001::/23", "reserved (IETF protocol assignments)", "RFC 2928"},
    {"2001:db8::/32", "reserved (documentation)", "RFC 3849"},
    {"3fff::/20", "reserved (documentation)", "RFC 9637"},
    {"5f00::/16", "reserved (SRv6 SIDs)", "RFC 9602"},
    {"fc00::/7", "private (unique local)", "RFC 4193"},
    {"fe80::/10", "link-local", "RFC 4291"},
    {"fec0::/10", "site-local (deprecated)", "RFC 3879"},
    {"ff00::/8", "multicast", "RFC 4291"},
};

#define NV4 (sizeof V4_RANGES / sizeof V4_RANGES[0])
#define NV6 (sizeof V6_RANGES / sizeof V6_RANGES[0])

/* IPv6 forms that carry an IPv4 address; the traffic ends up at that IPv4 address (through the
 * host's own stack, a NAT64 translator, a 6to4 or a Teredo relay), so it is checked as if it
 * were the destination. */
enum embed_kind {
    EMBED_LOW32,   /* the last 32 bits */
    EMBED_6TO4,    /* the 32 bits after the 2002::/16 prefix */
    EMBED_TEREDO,  /* server in bits 32..63, client in bits 96..127 inverted (RFC 4380) */
    EMBED_NAT64LU, /* local-use NAT64: every RFC 6052 layout, see decode_nat64_local */
};

struct embed {
    const char *cidr;
    const char *what;
    enum embed_kind kind;
};

/* Order matters: ::ffff:0:0/96 and ::ffff:0:0:0/96 lie inside ::/96, so they come first. */
static const struct embed V6_EMBED[] = {
    {"::ffff:0:0/96", "IPv4-mapped", EMBED_LOW32},
    {"::ffff:0:0:0/96", "IPv4-translated (SIIT)", EMBED_LOW32},
    {"::/96", "IPv4-compatible", EMBED_LOW32},
    {"64:ff9b::/96", "NAT64", EMBED_LOW32},
    {"64:ff9b:1::/48", "local-use NAT64", EMBED_NAT64LU},
    {"2002::/16", "6to4", EMBED_6TO4},
    {"2001::/32", "Teredo", EMBED_TEREDO},
};

#define NEMBED (sizeof V6_EMBED / sizeof V6_EMBED[0])

static struct net V4_NETS[NV4];
static struct net V6_NETS[NV6];
static struct net EMBED_NETS[NEMBED];
static struct net GLOBAL_UNICAST; /* 2000::/3 */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Parse "ADDR/LEN" or a bare "ADDR" (a single host) in inet_pton's strict forms. On failure,
 * returns -1 and points *PROBLEM at a phrase that finishes "... is not a CIDR range: ". */
static int parse_cidr(const char *text, struct net *out, const char **problem)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);

    memset(out, 0, sizeof *out);
    if (alen == 0 || alen >= sizeof addr) {
        *problem = "expected an IPv4 or IPv6 address before the '/'";
        return -1;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    out->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(out->family, addr, out->b) != 1) {
        *problem = out->family == AF_INET6
                       ? "the address is not a valid IPv6 address"
                       : "the address is not a valid dotted-quad IPv4 address (a.b.c.d)";
        return -1;
    }
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->plen = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strlen(p);
        /* Digits only, no sign, no leading zero: "/08" or "/+8" are typos, not prefixes. */
        if (n == 0 || n > 3 || strspn(p, "0123456789") != n || (n > 1 && p[0] == '0')) {
            *problem = "the prefix length after '/' must be a plain decimal number";
            return -1;
        }
        out->plen = (unsigned)atoi(p);
        if (out->plen > max) {
            *problem = out->family == AF_INET ? "an IPv4 prefix length is at most 32"
                                              : "an IPv6 prefix length is at most 128";
            return -1;
        }
    }
    /* Host bits set ("10.1.2.3/8") usually means the range is not what the operator thinks. */
    for (unsigned bit = out->plen; bit < max; bit++) {
        if (out->b[bit / 8] & (0x80u >> (bit % 8))) {
            *problem = "bits are set after the prefix length (give the network address)";
            return -1;
        }
    }
    return 0;
}

static void compile_one(const char *cidr, int family, struct net *out)
{
    const char *problem = NULL;
    if (parse_cidr(cidr, out, &problem) != 0 || out->family != family) {
        /* A typo in the tables above: a programming error that unit tests catch. */
        fprintf(stderr, "guard: bad built-in range %s: %s\n", cidr, problem ? problem : "family");
        abort();
    }
}

static void compile_tables(void)
{
    for (size_t i = 0; i < NV4; i++)
        compile_one(V4_RANGES[i].cidr, AF_INET, &V4_NETS[i]);
    for (size_t i = 0; i < NV6; i++)
        compile_one(V6_RANGES[i].cidr, AF_INET6, &V6_NETS[i]);
    for (size_t i = 0; i < NEMBED; i++)
        compile_one(V6_EMBED[i].cidr, AF_INET6, &EMBED_NETS[i]);
    compile_one("2000::/3", AF_INET6, &GLOBAL_UNICAST);
}

static bool in_net(const struct net *n, int family, const uint8_t *b)
{
    if (n->family != family)
        return false;
    unsigned full = n->plen / 8, rest = n->plen % 8;
    if (memcmp(n->b, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (n->b[full] & mask) == (b[full] & mask);
}

static bool allowed(const guard_t *g, int family, const uint8_t *b)
{
    for (size_t i = 0; g && i < g->nallow; i++)
        if (in_net(&g->allow[i], family, b))
            return true;
    return false;
}

/* The refused range holding the IPv4 address V4, or NULL when V4 may be used. */
static const struct range *refused_v4(const guard_t *g, const uint8_t v4[4], size_t *idx)
{
    if (allowed(g, AF_INET, v4))
        return NULL;
    for (size_t i = 0; i < NV4; i++) {
        if (in_net(&V4_NETS[i], AF_INET, v4)) {
            *idx = i;
            return &V4_RANGES[i];
        }
    }
    return NULL;
}

static void say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static int check_v4(const guard_t *g, const uint8_t v4[4], char *why, size_t why_len)
{
    size_t i = 0;
    const struct range *r = refused_v4(g, v4, &i);
    if (!r)
        return 0;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, v4, text, sizeof text);
    say(why, why_len, "%s is %s (%s, %s)", text, r->what, r->cidr, r->ref);
    return BR_EBLOCKED;
}

/* Local-use NAT64 (RFC 8215): the translator's prefix may be any of RFC 6052's lengths inside
 * 64:ff9b:1::/48, and the address alone does not say which, so every layout is decoded (the
 * u-octet, bits 64..71, is skipped as RFC 6052 §2.2 says). Returns the number of candidates. */
static size_t decode_nat64_local(const uint8_t *b, uint8_t out[][4])
{
    static const uint8_t at[4][4] = {
        {6, 7, 9, 10},    /* /48 */
        {7, 9, 10, 11},   /* /56 */
        {9, 10, 11, 12},  /* /64 */
        {12, 13, 14, 15}, /* /96 */
    };
    for (size_t k = 0; k < 4; k++)
        for (size_t j = 0; j < 4; j++)
            out[k][j] = b[at[k][j]];
    return 4;
}

static int check_v6(const guard_t *g, const uint8_t b[16], char *why, size_t why_len)
{
    char text[INET6_ADDRSTRLEN];

    if (allowed(g, AF_INET6, b))
        return 0;
    inet_ntop(AF_INET6, b, text, sizeof text);

    /* :: and ::1 are their own things, not IPv4-compatible 0.0.0.0 and 0.0.0.1. */
    bool native_first = in_net(&V6_NETS[0], AF_INET6, b) || in_net(&V6_NETS[1], AF_INET6, b);
    for (size_t e = 0; !native_first && e < NEMBED; e++) {
        if (!in_net(&EMBED_NETS[e], AF_INET6, b))
            continue;
        uint8_t cand[4][4];
        const char *role[4] = {"", "", "", ""};
        size_t n = 1;
        switch (V6_EMBED[e].kind) {
        case EMBED_LOW32:
            memcpy(cand[0], b + 12, 4);
            break;
        case EMBED_6TO4:
            memcpy(cand[0], b + 2, 4);
            break;
        case EMBED_TEREDO:
            memcpy(cand[0], b + 4, 4);
            for (size_t j = 0; j < 4; j++)
                cand[1][j] = (uint8_t)~b[12 + j];
            role[0] = " server";
            role[1] = " client";
            n = 2;
            break;
        case EMBED_NAT64LU:
            n = decode_nat64_local(b, cand);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            size_t i = 0;
            const struct range *r = refused_v4(g, cand[k], &i);
            if (!r)
                continue;
            char v4[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, cand[k], v4, sizeof v4);
            say(why, why_len, "%s is %s and embeds%s %s, which is %s (%s, %s)", text,
                V6_EMBED[e].what, role[k], v4, r->what, r->cidr, r->ref);
            return BR_EBLOCKED;
        }
        return 0;
    }
    for (size_t i = 0; i < NV6; i++) {
        if (in_net(&V6_NETS[i], AF_INET6, b)) {
            say(why, why_len, "%s is %s (%s, %s)", text, V6_RANGES[i].what, V6_RANGES[i].cidr,
                V6_RANGES[i].ref);
            return BR_EBLOCKED;
        }
    }
    if (!in_net(&GLOBAL_UNICAST, AF_INET6, b)) {
        say(why, why_len, "%s is reserved (outside 2000::/3, not allocated for unicast)", text);
        return BR_EBLOCKED;
    }
    return 0;
}

/* A new guard with no --allow-net ranges. Returned owned (free with guard_free). Any thread. */
guard_t *guard_new(void)
{
    pthread_once(&tables_once, compile_tables);
    return XNEW(guard_t);
}

/* Free G and its ranges; NULL is allowed. */
void guard_free(guard_t *g)
{
    if (!g)
        return;
    free(g->allow);
    free(g);
}

/* Open the range CIDR (borrowed): "a.b.c.d/n", "x:y::/n", or a bare address for one host.
 * An IPv4 range also opens the IPv6 forms that embed its addresses (::ffff:127.0.0.1 under
 * "127.0.0.1/32"); an IPv6 range opens IPv6 addresses only. Returns 0, or BR_EUSAGE with the
 * problem in ERR (may be NULL). Call before the guard is shared between threads. */
int guard_allow_cidr(guard_t *g, const char *cidr, err_t *err)
{
    struct net n;
    const char *problem = NULL;

    if (!cidr)
        return err_set(err, BR_EUSAGE, "--allow-net needs a CIDR range such as 127.0.0.1/32");
    if (parse_cidr(cidr, &n, &problem) != 0)
        return err_set(err, BR_EUSAGE,
                       "--allow-net '%.100s' is not a CIDR range: %s (e.g. 10.0.0.0/8, fd00::/8)",
                       cidr, problem);
    g->allow = xrealloc(g->allow, (g->nallow + 1) * sizeof *g->allow);
    g->allow[g->nallow++] = n;
    return 0;
}

/* Decide whether the socket address SA (borrowed, LEN bytes) may be connected to. Returns 0,
 * or BR_EBLOCKED with a one-line reason in WHY (WHY_LEN bytes; may be NULL); families other
 * than AF_INET and AF_INET6 are refused. G may be NULL (defaults only). Any thread. */
int guard_check(const guard_t *g, const struct sockaddr *sa, socklen_t len, char *why,
                size_t why_len)
{
    pthread_once(&tables_once, compile_tables);
    say(why, why_len, "%s", "");
    if (!sa || len < (socklen_t)sizeof(sa_family_t)) {
        say(why, why_len, "no socket address to check");
        return BR_EBLOCKED;
    }
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return check_v4(g, (const uint8_t *)&in->sin_addr, why, why_len);
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return check_v6(g, in6->sin6_addr.s6_addr, why, why_len);
    }
    say(why, why_len, "address family %d (length %u) is not IPv4 or IPv6", (int)sa->sa_family,
        (unsigned)len);
    return BR_EBLOCKED;
}

/* guard_check for the textual address IP (borrowed), parsed with inet_pton only: "127.1",
 * "0x7f.1", "010.0.0.1" or a "%scope" suffix are not addresses here and are refused, as is
 * NULL. Same returns and threads as guard_check. */
int guard_check_text(const guard_t *g, const char *ip, char *why, size_t why_len)
{
    uint8_t b[16];

    pthread_once(&tables_once, compile_tables);
    say(why, why_len, "%s", "");
    if (ip && inet_pton(AF_INET, ip, b) == 1)
        return check_v4(g, b, why, why_len);
    if (ip && inet_pton(AF_INET6, ip, b) == 1)
        return check_v6(g, b, why, why_len);
    say(why, why_len, "'%.64s' is not a strict IPv4 or IPv6 address", ip ? ip : "(null)");
    return BR_EBLOCKED;
}
