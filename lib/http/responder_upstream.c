/* responder_upstream.c: the workers' upstream client for the routes that need ROUTE_UPSTREAM (libcurl: linked only by the programs naming it). */
#include "http/responder.h"

#include "core/log.h"
#include "core/redact.h"
#include "openai/upstream.h"

/* upstream_worker_init: w->up from the settings and the program's upstream_opts; NULL (logged) when it cannot be made */
static int upstream_worker_init(struct responder_worker *w)
{
	const struct responder *r = w->r;
	struct upstream_opts o;
	char shown[1024];

	upstream_opts_from_settings(&o, &r->s);
	if (r->def->upstream_opts)
		r->def->upstream_opts(r, &o);
	if (!(w->up = upstream_new(&o)))
		log_error("cannot create the upstream client for %s",
			  o.base_url ? redact_url(o.base_url, shown, sizeof shown) : "(none)");
	return 0;
}

/* upstream_more_headers: the hio hook: what the upstream told, for the client */
static int upstream_more_headers(void *ud, int status, buf_t *out)
{
	return upstream_client_headers(ud, status, out);
}

/* upstream_client_gone: the upstream's watch hook: has this request's client gone away? */
static int upstream_client_gone(void *ud)
{
	return hio_client_gone(ud);
}

/* upstream_request_begin: the client's retry count for this request; its answer carries what the upstream
 * told; a client that goes away while the upstream is waited for stops that wait (not the upstream timeout) */
static void upstream_request_begin(struct responder_worker *w)
{
	upstream_begin(w->up, hio_param(&w->h, "HTTP_X_STAINLESS_RETRY_COUNT"));
	upstream_watch(w->up, hio_client_fd(&w->h), upstream_client_gone, &w->h);
	hio_on_headers(&w->h, upstream_more_headers, w->up);
}

static void upstream_worker_free(struct responder_worker *w)
{
	upstream_free(w->up);
	w->up = NULL;
}

const struct responder_client responder_upstream = {
	.global_init = upstream_global_init,
	.global_cleanup = upstream_global_cleanup,
	.worker_init = upstream_worker_init,
	.worker_free = upstream_worker_free,
	.request_begin = upstream_request_begin,
};
