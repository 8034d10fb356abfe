/* transport_http.h: MCP servers over HTTP (Streamable HTTP, legacy SSE) and the libcurl multi handle they share in the broker's loop. */
#ifndef MCPGW_TRANSPORT_HTTP_H
#define MCPGW_TRANSPORT_HTTP_H

#include "core/settings.h"
#include "core/evloop.h"
#include "transport.h"

struct httphub;

/* httphub_new: initialise libcurl and a multi handle whose sockets and
 * timer are registered on l (as many sockets as libcurl opens). Free with
 * httphub_free. NULL on failure. */
struct httphub *httphub_new(struct evloop *l, const struct settings *set);
/* httphub_busy: 1 while transfers still run (a shutdown waits for the
 * sessions' DELETEs), else 0 */
int httphub_busy(const struct httphub *h);
/* httphub_free: abort every transfer, clean libcurl up (NULL: nothing) */
void httphub_free(struct httphub *h);

/* transport_http_new: a remote transport for cfg (url, headers) on
 * env->hub: Streamable HTTP, legacy SSE, or (CFG_AUTO) Streamable HTTP that
 * falls back to SSE when the first POST gets a 4xx. Opening it without a
 * hub fails. NULL on ENOMEM. */
transport_new_fn transport_http_new;

#endif
