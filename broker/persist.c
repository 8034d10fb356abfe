/* persist.c: the broker's write-through to the registry: servers' states, the catalog, cached tools. */
#include "persist.h"

#include <stdlib.h>

#include "core/log.h"
#include "session.h"

void persist_server(struct registry *reg, const struct session *s)
{
	static const char *const tnames[] = { "stdio", "http", "sse", "auto" };
	struct registry_server rs = {
		.name = s->cfg->name,
		.transport = tnames[s->cfg->transport],
		.fingerprint = s->fingerprint,
		.state = session_state_name(s->state),
		.protocol_version = *s->proto ? s->proto : NULL,
		.server_info = s->server_info,
		.last_error = s->last_error,
		.restarts = s->restarts,
		.pid = session_pid(s),
	};

	if (reg && registry_put_server(reg, &rs) < 0)
		log_error("registry: saving server %s: %s", s->cfg->name, registry_errmsg(reg));
}

json_t *persist_cached_tools(struct registry *reg, const struct session *s)
{
	return reg && !s->cfg->disabled ? registry_load_tools(reg, s->cfg->name, s->fingerprint) : NULL;
}

void persist_tools(struct registry *reg, const struct registry_tool *rt, size_t n)
{
	if (reg && registry_replace_tools(reg, rt, n) < 0)
		log_error("registry: saving tools: %s", registry_errmsg(reg));
}

void persist_prune(struct registry *reg, struct session *const *sessions, size_t n)
{
	const char **names;

	if (!reg)
		return;
	names = calloc(n ? n : 1, sizeof *names);
	for (size_t i = 0; names && i < n; i++)
		names[i] = sessions[i]->cfg->name;
	if (!names || registry_prune_servers(reg, names, n) < 0)
		log_error("registry: pruning servers: %s", registry_errmsg(reg));
	free(names);
}
