/* responder_broker.c: the workers' broker client for the routes that need ROUTE_BROKER (linked only by the programs naming it). */
#include "http/responder.h"

#include "mcp/bclient.h"
#include "mcp/brokerstart.h"

/* broker_worker_init: w->bc on MCPGW_BROKER_SOCKET; -1 when out of memory */
static int broker_worker_init(struct responder_worker *w)
{
	const struct responder *r = w->r;

	if (!(w->bc = bc_new(r->s.socket_path, r->s.max_message_bytes)))
		return -1;
	/* no broker running: the first call starts one (MCPGW_BROKER_AUTOSTART); threads
	 * start it one at a time (brokerstart_attach's mutex), the broker detached */
	brokerstart_attach(w->bc, &r->s, w->h.cgi);
	return 0;
}

static void broker_worker_free(struct responder_worker *w)
{
	bc_free(w->bc);
	w->bc = NULL;
}

/* broker_request_caller: the caller's id into each tools/call's _meta (broker/audit.c) */
static void broker_request_caller(struct responder_worker *w, const char *caller)
{
	bc_set_caller(w->bc, caller);
}

const struct responder_client responder_broker = {
	.worker_init = broker_worker_init,
	.worker_free = broker_worker_free,
	.request_caller = broker_request_caller,
};
