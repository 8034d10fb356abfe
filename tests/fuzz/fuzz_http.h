/* fuzz_http.h: for the targets that run a responder's request check: its answer captured (plain CGI mode writes to stdout) and checked as an OpenAI answer. */
#ifndef MCPGW_FUZZ_HTTP_H
#define MCPGW_FUZZ_HTTP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "http/hio.h"

/* One captured answer: stdout points into memory while a request runs. */
struct fuzz_http {
	struct hio h; /* plain CGI mode: what the handler writes goes to stdout */
	FILE *saved;
	char *out;
	size_t len;
};

/* fuzz_http_begin: a new request: its answer is captured from here on */
static inline void fuzz_http_begin(struct fuzz_http *x)
{
	memset(&x->h, 0, sizeof x->h);
	x->h.cgi = 1;
	x->h.served = 1;
	x->out = NULL;
	x->len = 0;
	x->saved = stdout;
	stdout = open_memstream(&x->out, &x->len);
	FUZZ_CHECK(stdout != NULL);
}

/* fuzz_http_end: the answer written since fuzz_http_begin, checked: nothing,
 * or one "Status: NNN" answer with a JSON body; a 4xx/5xx body is an OpenAI
 * error object {"error": {"message": text, "type": text, ...}} (the
 * gateway's one error shape). Returns the status (0: nothing was written),
 * and the body parsed in *body when body is not NULL (new reference). */
static inline int fuzz_http_end(struct fuzz_http *x, json_t **body)
{
	int status = 0;
	const char *b;
	json_t *j = NULL, *e;

	FUZZ_CHECK(fclose(stdout) == 0);
	stdout = x->saved;
	if (body)
		*body = NULL;
	if (x->len) {
		FUZZ_CHECK(sscanf(x->out, "Status: %d ", &status) == 1 && status >= 100 && status <= 599);
		b = strstr(x->out, "\r\n\r\n");
		FUZZ_CHECK(b != NULL);
		j = json_loads(b + 4, 0, NULL);
		FUZZ_CHECK(json_is_object(j));
		if (status >= 400) {
			e = json_object_get(j, "error");
			FUZZ_CHECK(json_is_object(e) && json_is_string(json_object_get(e, "message")) &&
				   json_is_string(json_object_get(e, "type")));
		}
	}
	free(x->out);
	x->out = NULL;
	if (body)
		*body = j;
	else
		json_decref(j);
	return status;
}

#endif
