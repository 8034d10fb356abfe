/* toolname.h: stable, unique, OpenAI-valid exposed names for MCP tools. */
#ifndef MCPGW_TOOLNAME_H
#define MCPGW_TOOLNAME_H

#include <stddef.h>

#define TOOLNAME_MAX 64

struct toolname {
	const char *server;             /* in: server name (borrowed) */
	const char *mcp_name;           /* in: the tool's MCP name (borrowed), up to 128 bytes or more */
	char exposed[TOOLNAME_MAX + 1]; /* out */
};

/* toolname_valid: 1 if s matches ^[a-zA-Z0-9_-]{1,64}$. */
int toolname_valid(const char *s);

/* toolname_assign: fill exposed for all n entries so that every name is
 * valid and unique. Rules, applied to the whole set (so the result does not
 * depend on the order of entries):
 *  1. mcp_name valid and used by no other server -> exposed = mcp_name.
 *  2. otherwise (a clash across servers, or an invalid name) ->
 *     "<server>_<mcp_name>" with every byte outside [a-zA-Z0-9_-] replaced by '_';
 *     if longer than 64: the first 55 bytes + '_' + 8 hex digits of
 *     FNV-1a-32("<server>\0<mcp_name>").
 *  3. any exposed names still equal after that (sanitising made them meet)
 *     all take the hashed form: first 55 bytes + '_' + hash.
 *  4. (astronomically rare, or exact duplicate server+mcp_name entries) names
 *     still equal after rule 3 are re-hashed, all of them, round after round,
 *     with the FNV-1a continued over "\0<salt>:<ordinal>" (salt = how often
 *     that entry was re-hashed, ordinal = rank among identical
 *     server+mcp_name entries), until every name is unique.
 * NULL server or mcp_name count as "". Returns 0, or -1 on ENOMEM (or ELOOP
 * if 1000 rounds could not separate the names, which does not happen). */
int toolname_assign(struct toolname *t, size_t n);

#endif
