/* bautostart.c: start mcpgw-broker from a responder that finds none, through brokerstart_ensure (detached, one at a time). */
#include "mcp/bautostart.h"
#include "core/clock.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp/brokerstart.h"
#include "core/log.h"

#define BA_ERR_MAX 4096

extern char **environ;

/* CGI/1.1 request variables (RFC 3875) and what web servers add: not for the broker's environment */
static const char *const ba_cgi_prefixes[] = { "HTTP_", "CONTENT_", "REQUEST_", "REMOTE_", "SCRIPT_", "SERVER_",
					       "REDIRECT_", "CONTEXT_", "SSL_", NULL };
static const char *const ba_cgi_names[] = { "GATEWAY_INTERFACE", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING",
					    "AUTH_TYPE", "DOCUMENT_ROOT", "HTTPS", "UNIQUE_ID", NULL };

static pthread_mutex_t ba_lock = PTHREAD_MUTEX_INITIALIZER;
static int ba_cgi;                /* plain CGI: scrub the request variables around a start */
static long ba_failed_at = -1;    /* monotonic ms of the last failed start; -1: none */
static char ba_err[BA_ERR_MAX];   /* why it failed */

/* ba_is_cgi_var: the environment entry "NAME=value" is a CGI request variable */
static int ba_is_cgi_var(const char *entry)
{
	size_t n = strcspn(entry, "=");

	for (size_t i = 0; ba_cgi_prefixes[i]; i++)
		if (strncmp(entry, ba_cgi_prefixes[i], strlen(ba_cgi_prefixes[i])) == 0)
			return 1;
	for (size_t i = 0; ba_cgi_names[i]; i++)
		if (strlen(ba_cgi_names[i]) == n && strncmp(entry, ba_cgi_names[i], n) == 0)
			return 1;
	return 0;
}

/* ba_scrub: remove the CGI request variables from the environment; the
 * removed entries (the environment's own strings) are returned for
 * ba_restore. NULL when there are none or memory is short (nothing removed). */
static char **ba_scrub(size_t *n)
{
	size_t count = 0, k = 0;
	char **saved;

	*n = 0;
	for (char **e = environ; e && *e; e++)
		count += (size_t)ba_is_cgi_var(*e);
	if (!count || !(saved = calloc(count, sizeof *saved)))
		return NULL;
	for (char **e = environ; e && *e && k < count; e++)
		if (ba_is_cgi_var(*e))
			saved[k++] = *e;
	for (size_t i = 0; i < k; i++) {
		char name[256];
		size_t len = strcspn(saved[i], "=");

		if (len < sizeof name) {
			memcpy(name, saved[i], len);
			name[len] = '\0';
			unsetenv(name);
		}
	}
	*n = k;
	return saved;
}

/* ba_restore: put the scrubbed entries back (the same strings: putenv keeps them) */
static void ba_restore(char **saved, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putenv(saved[i]);
	free(saved);
}

/* the bc_on_no_broker hook: 0 when a broker serves the socket now */
static int ba_start(void *ud)
{
	const struct settings *s = ud;
	struct brokerstart_opts o = { NULL, 0, 1 };
	struct brokerstart bs;
	char bin[PATH_MAX], err[BA_ERR_MAX] = "", **saved = NULL;
	size_t nsaved = 0;
	int rc = -1;

	pthread_mutex_lock(&ba_lock);
	if (ba_failed_at >= 0 && clock_now_ms() - ba_failed_at < BAUTOSTART_RETRY_MS)
		goto out; /* it failed a moment ago: do not hammer */
	/* not found: "mcpgw-broker", whose exec then fails with a message saying so */
	(void)brokerstart_find_bin(bin, sizeof bin);
	o.bin = bin;
	if (ba_cgi)
		saved = ba_scrub(&nsaved);
	rc = brokerstart_ensure(s, &o, &bs, err, sizeof err);
	if (saved)
		ba_restore(saved, nsaved);
	if (rc < 0) {
		log_error("no broker on %s, and starting one failed: %s", s->socket_path, err);
		snprintf(ba_err, sizeof ba_err, "%s", err);
		ba_failed_at = clock_now_ms();
	} else {
		ba_failed_at = -1;
		ba_err[0] = '\0';
		/* a new broker lists a server's tools once it is ready: wait
		 * (MCPGW_STARTUP_WAIT) so that this request sees the whole catalog
		 * (chat offers only the tools listed) */
		if (s->startup_wait_ms > 0 && brokerstart_wait_ready(s, s->startup_wait_ms) < 0)
			log_warn("the broker on %s does not answer mcpgw/status", s->socket_path);
	}
out:
	pthread_mutex_unlock(&ba_lock);
	return rc < 0 ? -1 : 0;
}

void bautostart_attach(struct bclient *bc, const struct settings *s, int cgi)
{
	if (!bc || !s || !s->broker_autostart)
		return;
	pthread_mutex_lock(&ba_lock);
	ba_cgi = cgi;
	pthread_mutex_unlock(&ba_lock);
	bc_on_no_broker(bc, ba_start, (void *)s);
}

void bautostart_last_error(char *out, size_t outlen)
{
	if (!outlen)
		return;
	pthread_mutex_lock(&ba_lock);
	snprintf(out, outlen, "%s", ba_err);
	pthread_mutex_unlock(&ba_lock);
}
