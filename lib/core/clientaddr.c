/* clientaddr.c: loopback tests, address/CIDR lists and the client behind trusted proxies (see clientaddr.h). */
#include "core/clientaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* an address in 16 bytes (IPv4 as ::ffff:a.b.c.d) */
struct ca_addr {
	unsigned char b[16];
};

/* ca_parse: n bytes of text at s as an address; 0, or -1 */
static int ca_parse(const char *s, size_t n, struct ca_addr *a)
{
	char t[CLIENTADDR_MAX];
	unsigned char v4[4];

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof t)
		return -1;
	memcpy(t, s, n);
	t[n] = '\0';
	if (inet_pton(AF_INET, t, v4) == 1) {
		memset(a->b, 0, 10);
		a->b[10] = a->b[11] = 0xff;
		memcpy(a->b + 12, v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, t, a->b) == 1 ? 0 : -1;
}

static int ca_is_v4(const struct ca_addr *a)
{
	static const unsigned char pre[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a->b, pre, 12) == 0;
}

int clientaddr_loopback(const char *ip)
{
	struct ca_addr a;
	static const unsigned char one[16] = { [15] = 1 };

	if (!ip || ca_parse(ip, strlen(ip), &a) < 0)
		return 0;
	return (ca_is_v4(&a) && a.b[12] == 127) || memcmp(a.b, one, 16) == 0;
}

/* ca_range: one item "ADDR" or "ADDR/BITS" (n bytes at s) as an address and a prefix length; 0, or -1 */
static int ca_range(const char *s, size_t n, struct ca_addr *a, int *bits)
{
	const char *slash = memchr(s, '/', n);
	char *end;
	long b;

	if (ca_parse(s, slash ? (size_t)(slash - s) : n, a) < 0)
		return -1;
	*bits = 128;
	if (!slash)
		return 0;
	{
		char t[8];
		size_t k = n - (size_t)(slash + 1 - s);

		if (k == 0 || k >= sizeof t)
			return -1;
		memcpy(t, slash + 1, k);
		t[k] = '\0';
		b = strtol(t, &end, 10);
		if (*end || b < 0 || b > (ca_is_v4(a) ? 32 : 128))
			return -1;
	}
	*bits = (int)b + (ca_is_v4(a) ? 96 : 0);
	return 0;
}

/* ca_in: a is inside the range net/bits */
static int ca_in(const struct ca_addr *a, const struct ca_addr *net, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a->b, net->b, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((a->b[full] ^ net->b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int clientaddr_check_list(const char *list, char *err, size_t errlen)
{
	const char *p = list;

	while (*p) {
		size_t k = strcspn(p, ",");
		struct ca_addr a;
		int bits;

		if (ca_range(p, k, &a, &bits) < 0) {
			snprintf(err, errlen, "'%.*s' is no IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, ::1)",
				 (int)(k > 100 ? 100 : k), p);
			return -1;
		}
		p += k + (p[k] == ',');
	}
	return 0;
}

int clientaddr_in_list(const char *list, const char *ip)
{
	struct ca_addr a, net;
	const char *p = list;
	int bits;

	if (!list || !ip || ca_parse(ip, strlen(ip), &a) < 0)
		return 0;
	while (*p) {
		size_t k = strcspn(p, ",");

		if (ca_range(p, k, &net, &bits) == 0 && ca_in(&a, &net, bits))
			return 1;
		p += k + (p[k] == ',');
	}
	return 0;
}

/* ca_copy: n bytes at s, trimmed, into out */
static void ca_copy(const char *s, size_t n, char *out, size_t outlen)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	snprintf(out, outlen, "%.*s", (int)n, s);
}

void clientaddr_resolve(const char *remote, const char *xff, const char *trusted, char *out, size_t outlen)
{
	const char *end;

	snprintf(out, outlen, "%s", remote && *remote ? remote : "unknown");
	if (!remote || !xff || !*xff || !trusted || !*trusted || !clientaddr_in_list(trusted, remote))
		return;
	/* from the right: each hop appended the address it saw */
	end = xff + strlen(xff);
	while (end > xff) {
		const char *start = end;
		char hop[CLIENTADDR_MAX];

		while (start > xff && start[-1] != ',')
			start--;
		ca_copy(start, (size_t)(end - start), hop, sizeof hop);
		if (*hop) {
			snprintf(out, outlen, "%s", hop);
			if (!clientaddr_in_list(trusted, hop))
				return;
		}
		end = start > xff ? start - 1 : xff;
	}
}
