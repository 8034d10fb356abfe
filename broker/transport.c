/* transport.c: the choice of transport for a config entry, made once when its session is created. */
#include "transport.h"

struct transport *transport_new(const struct transport_env *env, const struct cfg_server *cfg,
				const struct transport_events *ev, void *ctx)
{
	return cfg->transport == CFG_STDIO ? transport_stdio_new(env, cfg, ev, ctx) : transport_http_new(env, cfg, ev, ctx);
}
