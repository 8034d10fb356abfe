/* display.c: the chatbot's output: the answer as it streams, tool-call lines, notices; nothing the model sends can drive the terminal. */
#include "display.h"
#include "core/utf8.h"

#include <stdarg.h>
#include <string.h>

#define DISPLAY_DIM "\033[2m"
#define DISPLAY_RED "\033[31m"
#define DISPLAY_OFF "\033[0m"

void display_init(struct display *d, FILE *out, FILE *info, int color)
{
	memset(d, 0, sizeof *d);
	d->out = out;
	d->info = info;
	d->color = color;
	d->at_bol = 1;
}

/* display_close_running: the open "running" line is left as it is, the cursor on a new line */
static void display_close_running(struct display *d)
{
	if (!d->running[0])
		return;
	d->running[0] = '\0';
	fputc('\n', d->info);
	fflush(d->info);
}

static void display_put(struct display *d, const char *buf, size_t k)
{
	if (k == 0)
		return;
	display_close_running(d);
	(void)fwrite(buf, 1, k, d->out);
	d->at_bol = buf[k - 1] == '\n';
}

void display_text(struct display *d, const char *s, size_t n)
{
	char buf[4096];
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (k + 2 >= sizeof buf) {
			display_put(d, buf, k);
			k = 0;
		}
		if (d->pending_c2) {
			d->pending_c2 = 0;
			if (c >= 0x80 && c <= 0x9f)
				continue; /* a C1 control, U+0080..U+009F */
			buf[k++] = (char)0xc2;
		}
		if (c == 0xc2) {
			d->pending_c2 = 1;
			continue;
		}
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			continue;
		buf[k++] = (char)c;
	}
	display_put(d, buf, k);
	fflush(d->out);
}

/* display_newline: end a half-written answer line (or an open running line) before a line on info */
static void display_newline(struct display *d)
{
	display_close_running(d);
	if (!d->at_bol) {
		fputc('\n', d->out);
		d->at_bol = 1;
	}
	fflush(d->out);
}

void display_end(struct display *d)
{
	d->pending_c2 = 0;
	display_newline(d);
}

void display_one_line(const char *src, size_t max, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t k = 0, i = 0, lim = max < outlen - 4 ? max : outlen - 4;
	int space = 0, cut = 0;

	while (s[i]) {
		size_t len = utf8_seq_len(s + i, 4), need; /* never past the NUL, not a continuation byte */

		if (len == 0)
			len = 1; /* a stray byte: shown alone */

		if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
			space = 1;
			i++;
			continue;
		}
		if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && len == 2 && s[i + 1] <= 0x9f)) {
			i += len;
			continue;
		}
		need = len + (space && k > 0);
		if (k + need > lim) {
			cut = 1;
			break;
		}
		if (space && k > 0)
			out[k++] = ' ';
		space = 0;
		memcpy(out + k, s + i, len);
		k += len;
		i += len;
	}
	if (cut) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

/* display_call: "[tool SERVER] NAME ARGS" of a call, each part made one line, into out */
static void display_call(const char *server, const char *name, const char *args, char *out, size_t outlen)
{
	char srv[80], nm[140], a[DISPLAY_ARGS_MAX + 8];

	display_one_line(server, 64, srv, sizeof srv);
	display_one_line(name, 128, nm, sizeof nm);
	display_one_line(args, DISPLAY_ARGS_MAX, a, sizeof a);
	snprintf(out, outlen, "[tool %s] %s %s", srv, nm, *a ? a : "{}");
}

void display_tool_start(struct display *d, const char *server, const char *name, const char *args)
{
	char call[sizeof d->running];

	display_call(server, name, args, call, sizeof call);
	display_newline(d);
	if (d->color) { /* left open: its result replaces it */
		fprintf(d->info, DISPLAY_DIM "  %s ..." DISPLAY_OFF, call);
		snprintf(d->running, sizeof d->running, "%s", call);
	} else {
		fprintf(d->info, "  %s running...\n", call);
	}
	fflush(d->info);
}

void display_tool(struct display *d, const char *server, const char *name, const char *args, const char *result,
		  int is_error)
{
	char call[sizeof d->running], r[DISPLAY_RESULT_MAX + 8];

	display_call(server, name, args, call, sizeof call);
	display_one_line(result, DISPLAY_RESULT_MAX, r, sizeof r);
	if (d->running[0] && strcmp(d->running, call) == 0) {
		d->running[0] = '\0';
		fputs("\r\033[K", d->info); /* this call's running line: replaced */
	}
	display_newline(d);
	fprintf(d->info, "%s  %s -> %s%s\n", d->color ? (is_error ? DISPLAY_RED : DISPLAY_DIM) : "", call, r,
		d->color ? DISPLAY_OFF : "");
	fflush(d->info);
}

void display_notice(struct display *d, enum display_kind kind, const char *fmt, ...)
{
	char text[2048], line[2100];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	display_one_line(text, sizeof line - 8, line, sizeof line);
	display_newline(d);
	fprintf(d->info, "%s%s%s\n", d->color && kind == DISPLAY_ERROR ? DISPLAY_RED : "", line,
		d->color && kind == DISPLAY_ERROR ? DISPLAY_OFF : "");
	fflush(d->info);
}
