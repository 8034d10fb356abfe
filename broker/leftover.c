/* leftover.c: MCP server processes that a broker which died (SIGKILL) left running: found by the registry's pids, checked, killed. */
#include "leftover.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct proc_info {
	char state;
	long ppid, pgrp;
	double start_s; /* seconds since the epoch */
};

/* boot_s: the system's boot time (seconds since the epoch, /proc/stat btime); -1 when unknown */
static long boot_s(void)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[256];
	long b = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "btime %ld", &b) == 1)
			break;
	fclose(f);
	return b;
}

/* proc_info: what /proc/PID/stat says of pid; 0, or -1 (gone, or unreadable) */
static int proc_info(long pid, struct proc_info *pi)
{
	char path[64], buf[1024], *p;
	unsigned long long start_ticks;
	long boot = boot_s(), tck = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (boot < 0 || tck <= 0 || !(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command name in parentheses (which may hold anything): state ppid pgrp ... field 22 starttime */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %c %ld %ld %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &pi->state, &pi->ppid, &pi->pgrp, &start_ticks) != 4)
		return -1;
	pi->start_s = (double)boot + (double)start_ticks / (double)tck;
	return 0;
}

/* runs: one of pid's argv words has the basename of command (an interpreter runs scripts: node SCRIPT) */
static int runs(long pid, const char *command)
{
	char path[64], buf[8192];
	const char *want = strrchr(command, '/') ? strrchr(command, '/') + 1 : command;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	if (!*want || !(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		const char *w = strrchr(buf + i, '/') ? strrchr(buf + i, '/') + 1 : buf + i;

		if (strcmp(w, want) == 0)
			return 1;
	}
	return 0;
}

/* one_pid: the registry_server_pids callback: kill the group of that pid if it is a leftover */
static void one_pid(void *ud, const char *name, long pid, int64_t updated_s)
{
	const struct cfg *cfg = ud;
	const struct cfg_server *srv = NULL;
	struct proc_info pi;

	for (size_t i = 0; i < cfg->nservers; i++)
		if (strcmp(cfg->servers[i].name, name) == 0)
			srv = &cfg->servers[i];
	if (!srv || srv->transport != CFG_STDIO || !srv->command || pid <= 1 || proc_info(pid, &pi) < 0)
		return;
	/* +1: the row's time is in whole seconds, written just after the start */
	if (pi.state == 'Z' || pi.pgrp != pid || pi.ppid == (long)getpid() || pi.start_s > (double)updated_s + 1.0 ||
	    !runs(pid, srv->command))
		return;
	if (kill((pid_t)-pid, SIGKILL) < 0) {
		log_warn("server %s: pid %ld, left running by a broker that ended without stopping it, cannot be killed: %s",
			 name, pid, strerror(errno));
		return;
	}
	log_warn("server %s: pid %ld was left running by a broker that ended without stopping it; killed (its process group)",
		 name, pid);
}

void leftover_kill(struct registry *reg, const struct cfg *cfg)
{
	if (reg && registry_server_pids(reg, one_pid, (void *)cfg) < 0)
		log_warn("registry: the pids of the servers of the last broker cannot be read: %s; any it left running stay",
			 registry_errmsg(reg));
}
