/* responder.c: the start-up and shut-down shared by the responders that talk to the broker. */
#include "http/responder.h"

#include <signal.h>
#include <stdio.h>

#include "mcp/bautostart.h"
#include "core/log.h"

int responder_open(struct responder *r, const char *name, struct hio *h)
{
	signal(SIGPIPE, SIG_IGN);
	r->settings_ok = settings_load(&r->s, r->settings_err, sizeof r->settings_err) == 0;
	log_init(name, r->settings_ok ? r->s.log_level : LOGL_INFO, r->settings_ok ? r->s.log_file : NULL);
	if (!r->settings_ok)
		log_error("%s", r->settings_err);
	else if (!(r->bc = bc_new(r->s.socket_path, r->s.max_message_bytes))) {
		snprintf(r->settings_err, sizeof r->settings_err, "out of memory");
		r->settings_ok = 0;
	}
	if (hio_init(h) < 0) {
		log_error("FastCGI initialisation failed");
		bc_free(r->bc);
		r->bc = NULL;
		return -1;
	}
	/* no broker running: start one (MCPGW_BROKER_AUTOSTART) and retry the call */
	bautostart_attach(r->bc, &r->s, h->cgi);
	return 0;
}

void responder_close(struct responder *r, struct hio *h)
{
	hio_done(h);
	bc_free(r->bc);
	r->bc = NULL;
	log_close();
}
