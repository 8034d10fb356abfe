/* check.c: mcpgw-broker --check-config: load servers_config.json and make sure every stdio server's command can be run. */
#include "check.h"

#include "core/progpath.h"
#include "mcp/config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* check_server: one stdio server's command and cwd, checked exactly as the
 * broker checks them before a start (progpath_server); 0, or -1 with the
 * problem printed */
static int check_server(const struct settings *set, const struct cfg_server *s)
{
	char path[PATH_MAX], dir[PATH_MAX], why[2600];

	if (progpath_server(s->command, s->cwd, set->home, path, sizeof path, dir, sizeof dir, why, sizeof why) == 0)
		return 0;
	fprintf(stderr, "%s: server '%s': %s%s\n", set->config, s->name, why,
		strchr(s->command, ' ') ? "; a whole command line? put the program in \"command\" and the rest in \"args\""
					: "");
	return -1;
}

int check_config(const struct settings *set)
{
	char err[4600];
	struct cfg cfg;
	size_t disabled = 0;
	int bad = 0;

	if (cfg_load(set->config, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < cfg.nservers; i++) {
		if (cfg.servers[i].disabled)
			disabled++;
		else if (cfg.servers[i].transport == CFG_STDIO && check_server(set, &cfg.servers[i]) < 0)
			bad++;
	}
	if (bad == 0 && disabled)
		printf("%s: ok, %zu server%s (%zu disabled)\n", set->config, cfg.nservers, cfg.nservers == 1 ? "" : "s",
		       disabled);
	else if (bad == 0)
		printf("%s: ok, %zu server%s\n", set->config, cfg.nservers, cfg.nservers == 1 ? "" : "s");
	else
		fprintf(stderr, "%s: %d of %zu server%s cannot start\n", set->config, bad, cfg.nservers,
			cfg.nservers == 1 ? "" : "s");
	cfg_free(&cfg);
	if (fflush(stdout) != 0)
		return 1;
	return bad ? 1 : 0;
}
