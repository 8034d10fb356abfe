/* clientaddr.h: who a request comes from: the peer the web server saw (REMOTE_ADDR), loopback or not, and X-Forwarded-For from trusted proxies. */
#ifndef MCPGW_CLIENTADDR_H
#define MCPGW_CLIENTADDR_H

#include <stddef.h>

#define CLIENTADDR_MAX 64 /* an address as text, with its NUL */

/* clientaddr_loopback: ip (text, IPv4 or IPv6) is a loopback address:
 * 127.0.0.0/8, ::1, or ::ffff:127.x.y.z (RFC 1122 3.2.1.3, RFC 4291 2.5.3).
 * NULL or anything else: 0. */
int clientaddr_loopback(const char *ip);

/* clientaddr_check_list: a comma-separated list of addresses and CIDR
 * ranges ("10.0.0.0/8,192.168.1.7,::1,fd00::/8"; "" is empty). 0, or -1
 * with err naming the item. */
int clientaddr_check_list(const char *list, char *err, size_t errlen);

/* clientaddr_in_list: ip is one of list's addresses or in one of its
 * ranges (a malformed item matches nothing). */
int clientaddr_in_list(const char *list, const char *ip);

/* clientaddr_resolve: the client of a request whose peer is remote
 * (REMOTE_ADDR, may be NULL) and whose X-Forwarded-For is xff (may be
 * NULL): when remote is in trusted (MCPGW_TRUSTED_PROXIES), the rightmost
 * address of xff that is not itself a trusted proxy (the leftmost when all
 * are), as RFC 7239 section 7.4 and MDN's X-Forwarded-For page advise (the
 * entries left of it may be forged by the client); otherwise remote. Into
 * out (outlen bytes; "unknown" when there is none). */
void clientaddr_resolve(const char *remote, const char *xff, const char *trusted, char *out, size_t outlen);

#endif
