/* fuzz_toolname.c: libFuzzer target of the exposed tool names (lib/mcp/toolname.c): MCP servers' names and their tools' names made OpenAI-valid and unique. */
#include <string.h>

#include "fuzz.h"
#include "mcp/toolname.h"

/* Input: entries separated by '\n', each "server\ttool" (a line without a
 * tab is a tool of server "s"; bytes are kept as they are, any byte but
 * NUL and the separators). Checks: every exposed name is valid
 * (toolname_valid) and unique; a valid tool name no other server uses is
 * kept as it is; the result does not depend on the order of the entries
 * (the same set reversed gives each entry the same name). */

#define MAX_ENTRIES 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *p, *nl, *tab;
	struct toolname *t = calloc(MAX_ENTRIES, sizeof *t), *r = calloc(MAX_ENTRIES, sizeof *r);
	size_t n = 0;

	FUZZ_CHECK(text && t && r);
	memcpy(text, data, size);
	text[size] = '\0';
	for (p = text; n < MAX_ENTRIES && p <= text + strlen(text); p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		tab = strchr(p, '\t');
		if (tab) {
			*tab = '\0';
			t[n].server = p;
			t[n].mcp_name = tab + 1;
		} else {
			t[n].server = "s";
			t[n].mcp_name = p;
		}
		n++;
		if (!nl)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].server = t[n - 1 - i].server;
		r[i].mcp_name = t[n - 1 - i].mcp_name;
	}
	if (toolname_assign(t, n) == 0 && toolname_assign(r, n) == 0) {
		for (size_t i = 0; i < n; i++) {
			int clash = 0;

			FUZZ_CHECK(toolname_valid(t[i].exposed));
			FUZZ_CHECK(strcmp(t[i].exposed, r[n - 1 - i].exposed) == 0);
			for (size_t j = 0; j < n; j++) {
				if (j != i)
					FUZZ_CHECK(strcmp(t[i].exposed, t[j].exposed) != 0);
				if (strcmp(t[i].mcp_name, t[j].mcp_name) == 0 && strcmp(t[i].server, t[j].server) != 0)
					clash = 1;
			}
			if (toolname_valid(t[i].mcp_name) && !clash && strcmp(t[i].exposed, t[i].mcp_name) != 0) {
				/* only an exact duplicate entry (same server and name) may take another name */
				int dup = 0;
				for (size_t j = 0; j < n; j++)
					dup |= j != i && strcmp(t[i].mcp_name, t[j].mcp_name) == 0;
				FUZZ_CHECK(dup);
			}
		}
	}
	free(text);
	free(t);
	free(r);
	return 0;
}
