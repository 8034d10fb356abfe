/* jsonrpc.h: JSON-RPC 2.0 / MCP messages and newline-delimited framing. */
#ifndef MCPGW_JSONRPC_H
#define MCPGW_JSONRPC_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

/* Standard JSON-RPC codes, and the MCP SDKs' transport codes. */
#define JR_PARSE_ERROR -32700
#define JR_INVALID_REQUEST -32600
#define JR_METHOD_NOT_FOUND -32601
#define JR_INVALID_PARAMS -32602
#define JR_INTERNAL_ERROR -32603
#define JR_CONNECTION_CLOSED -32000 /* server unavailable / connection lost */
#define JR_REQUEST_TIMEOUT -32001   /* no answer within the timeout */

/* MCP protocol revisions we speak, newest first (NULL-terminated). */
extern const char *const jr_mcp_versions[];
#define JR_MCP_LATEST "2025-11-25" /* == jr_mcp_versions[0] */

enum jr_kind { JR_INVALID = 0, JR_REQUEST, JR_NOTIFICATION, JR_RESPONSE, JR_ERROR_RESPONSE };

/* jr_classify: what kind of message msg (borrowed) is. */
enum jr_kind jr_classify(const json_t *msg);

/* Builders: each returns a new reference or NULL on ENOMEM.
 * params/result/data are stolen (even on failure); id is borrowed (copied). */
json_t *jr_request(json_int_t id, const char *method, json_t *params);
json_t *jr_notification(const char *method, json_t *params);
json_t *jr_result(const json_t *id, json_t *result);
json_t *jr_error(const json_t *id, int code, const char *message, json_t *data);

/* jr_mcp_version_supported: 1 if v is one of jr_mcp_versions. */
int jr_mcp_version_supported(const char *v);

/* jr_append: serialise v (borrowed, any JSON value) compactly onto out, no newline.
 * 0 or -1 (ENOMEM or unserialisable; out as it was). */
int jr_append(buf_t *out, const json_t *v);
/* jr_append_line: serialise msg (borrowed) compactly plus '\n' onto out.
 * 0 or -1 (ENOMEM or unserialisable). */
int jr_append_line(buf_t *out, const json_t *msg);

/* Line reader: bytes in, one message per line out. */
struct jr_reader {
	buf_t buf;
	size_t max_line; /* a longer line is an error (JR_READ_TOOLONG) */
	size_t off;      /* bytes of buf already handed out (compacted at a feed, buf_compact) */
	size_t scan;     /* bytes after off already searched for '\n' */
	int skipping;    /* inside an over-long line: drop bytes up to its '\n' */
};

enum jr_read { JR_READ_MORE = 0, JR_READ_LINE = 1, JR_READ_TOOLONG = -1, JR_READ_NOMEM = -2 };

void jr_reader_init(struct jr_reader *r, size_t max_line);
void jr_reader_free(struct jr_reader *r);
/* jr_reader_feed: append n bytes. -1 on ENOMEM. Lines already handed out
 * are dropped here, by moving the rest at most once per feed and only when
 * it is no longer than what was read, so the work stays linear in the bytes
 * fed however short the lines are. */
int jr_reader_feed(struct jr_reader *r, const void *p, size_t n);
/* jr_reader_next: JR_READ_LINE and *line (NUL-terminated, '\r\n' or '\n'
 * stripped, valid until the next jr_reader_feed, jr_reader_free or
 * jr_reader_next) and *len set; JR_READ_MORE when no full line is buffered
 * (when every byte was handed out, a buffer grown past BUF_KEEP_MAX for a
 * large message is released here, not kept while the peer is quiet); JR_READ_TOOLONG when the buffered line exceeds
 * max_line: the line is dropped, also the part of it that has not arrived
 * yet (bytes up to its '\n'), and reading goes on with the next line.
 * Blank lines, and blanks before a line, are skipped. */
int jr_reader_next(struct jr_reader *r, char **line, size_t *len);

/* jr_reader_take: the block holding the line jr_reader_next last returned
 * (the line's pointer stays valid: it is in this block), handed to the
 * caller to free, *size its bytes in use; what was read after that line is
 * kept in a new buffer. Call only right after a JR_READ_LINE. NULL on
 * ENOMEM (nothing taken). A large message can so be passed on without a copy. */
char *jr_reader_take(struct jr_reader *r, size_t *size);

/* jr_string_lossy: a JSON string of s, even when s is not valid UTF-8 (such
 * bytes become '?'). New reference, NULL on ENOMEM. */
json_t *jr_string_lossy(const char *s);

/* jr_parse: parse one line as JSON (depth-limited by jansson), NULL on error
 * with err filled. Returns a new reference. */
json_t *jr_parse(const char *line, size_t len, json_error_t *err);

#endif
