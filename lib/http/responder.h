/* responder.h: what every responder that talks to the broker starts with: settings, log, broker client, FastCGI/CGI. */
#ifndef MCPGW_RESPONDER_H
#define MCPGW_RESPONDER_H

#include "mcp/bclient.h"
#include "http/hio.h"
#include "core/settings.h"

struct responder {
	struct settings s;
	int settings_ok;           /* 0: answer every request 500 with settings_err (exiting would make the web server respawn us in a loop) */
	char settings_err[1024];
	struct bclient *bc;        /* kept across requests; starts a broker when none runs (MCPGW_BROKER_AUTOSTART) */
};

/* responder_open: load the settings, open the log as name, make the broker
 * client and initialise FastCGI (or plain CGI) in h. A settings problem is
 * kept in r, not fatal. 0, or -1 when FastCGI cannot start (r is freed then). */
int responder_open(struct responder *r, const char *name, struct hio *h);

/* responder_close: end h, free the broker client, close the log. */
void responder_close(struct responder *r, struct hio *h);

#endif
