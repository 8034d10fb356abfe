/* fixed.c: the cheapest possible FastCGI responder, the yardstick of `make bench`.
 *
 * Serves one fixed body (application/json, 200) to every request. The body is
 * read once at start-up from the file named by BENCH_FIXED_BODY. Plain libfcgi
 * (FCGX_Accept_r / FCGX_PutStr / FCGX_Finish_r) with nothing else per request:
 * whatever mcpgw's responders spend on top of this is their own cost.
 * Run it under lighttpd with LIBFCGI_OS_CLOSE_POLL_TIMEOUT=0, like mcpgw's.
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)n + 1)) && fread(p, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

int main(void)
{
	const char *path = getenv("BENCH_FIXED_BODY");
	static const char fallback[] = "{\"object\":\"list\",\"data\":[]}\n";
	char head[128];
	size_t len = 0;
	char *body = path ? slurp(path, &len) : NULL;
	FCGX_Request req;
	int hlen;

	if (!body) {
		fprintf(stderr, "fixed.fcgi: BENCH_FIXED_BODY unset or unreadable; serving a 27-byte body\n");
		body = strdup(fallback);
		len = body ? strlen(body) : 0;
	}
	hlen = snprintf(head, sizeof head, "Status: 200 OK\r\nContent-Type: application/json\r\n\r\n");
	if (!body || FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&req) == 0) {
		FCGX_PutStr(head, hlen, req.out);
		FCGX_PutStr(body, (int)len, req.out);
		FCGX_Finish_r(&req);
	}
	free(body);
	return 0;
}
