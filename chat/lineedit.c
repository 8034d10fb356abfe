/* lineedit.c: a small single-line editor (termios raw mode, UTF-8 aware, horizontal scrolling) with history, and its plain fallback. */
#include "lineedit.h"
#include "core/utf8.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#define LE_ESC_WAIT_MS 100 /* after ESC, the rest of an escape sequence comes within this */
#define LE_SEQ_MAX 16      /* bytes of one escape sequence */
#define LE_GO_ON 100       /* le_key: keep editing (not an enum lineedit_rc) */

struct lineedit {
	int in, out;
	int editing;
	char *hist[LINEEDIT_HISTORY_MAX];
	size_t nhist;
};

/* the line being edited */
struct le_edit {
	char *buf;
	size_t cap, len, pos;
	const char *prompt;
	size_t hidx;                  /* history entry shown; nhist: the new line */
	char draft[LINEEDIT_MAX + 1]; /* the new line while browsing history */
};

/* the terminal's own mode, for restoring from anywhere (signal handlers too) */
static struct termios le_orig;
static volatile sig_atomic_t le_raw_fd = -1;
static int le_atexit_done;

void lineedit_restore_terminal(void)
{
	int fd = le_raw_fd;

	if (fd >= 0) {
		le_raw_fd = -1;
		tcsetattr(fd, TCSADRAIN, &le_orig);
	}
}

struct lineedit *lineedit_new(int in_fd, int out_fd)
{
	struct lineedit *le = calloc(1, sizeof *le);
	const char *term = getenv("TERM");

	if (!le)
		return NULL;
	le->in = in_fd;
	le->out = out_fd;
	le->editing = isatty(in_fd) && isatty(out_fd) && term && *term && strcmp(term, "dumb") != 0;
	if (le->editing && !le_atexit_done && atexit(lineedit_restore_terminal) == 0)
		le_atexit_done = 1;
	return le;
}

void lineedit_free(struct lineedit *le)
{
	if (!le)
		return;
	for (size_t i = 0; i < le->nhist; i++)
		free(le->hist[i]);
	free(le);
}

int lineedit_editing(const struct lineedit *le)
{
	return le->editing;
}

void lineedit_history_add(struct lineedit *le, const char *line)
{
	char *copy;

	if (!*line || (le->nhist && strcmp(le->hist[le->nhist - 1], line) == 0) || !(copy = strdup(line)))
		return;
	if (le->nhist == LINEEDIT_HISTORY_MAX) {
		free(le->hist[0]);
		memmove(le->hist, le->hist + 1, (LINEEDIT_HISTORY_MAX - 1) * sizeof le->hist[0]);
		le->nhist--;
	}
	le->hist[le->nhist++] = copy;
}

/* --- plain mode --- */

static int le_read_plain(struct lineedit *le, const char *prompt, char *line, size_t linelen)
{
	size_t n;
	int c;

	if (prompt && isatty(le->out)) {
		(void)!write(le->out, prompt, strlen(prompt));
	}
	if (!fgets(line, (int)linelen, stdin)) {
		int signalled = ferror(stdin) && errno == EINTR;

		clearerr(stdin);
		return signalled ? LINEEDIT_SIGNAL : ferror(stdin) ? LINEEDIT_ERROR : LINEEDIT_EOF;
	}
	n = strlen(line);
	if (n && line[n - 1] == '\n') {
		line[--n] = '\0';
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		return LINEEDIT_LINE;
	}
	if (feof(stdin) || n + 1 < linelen)
		return LINEEDIT_LINE; /* the last line, without a newline */
	while ((c = getchar()) != EOF && c != '\n')
		; /* drop the rest of a line too long */
	line[0] = '\0';
	return LINEEDIT_TOOLONG;
}

/* --- display widths --- */

/* le_char_len: bytes of the UTF-8 character at p (1 for a stray byte), within len */
static size_t le_char_len(const char *p, size_t len)
{
	size_t n = len ? utf8_seq_len((const unsigned char *)p, len) : 0;

	return n ? n : 1;
}

/* le_is_wide: East Asian wide and emoji ranges, when the locale does not know */
static int le_is_wide(unsigned long cp)
{
	return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
	       (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
	       (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x1f900 && cp <= 0x1f9ff) ||
	       (cp >= 0x20000 && cp <= 0x3fffd);
}

/* le_char_width: terminal columns of the n-byte character at p */
static size_t le_char_width(const char *p, size_t n)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	unsigned long cp = (unsigned char)p[0] & lead_mask[n];
	int w;

	if (n == 1)
		return 1;
	for (size_t j = 1; j < n; j++)
		cp = (cp << 6) | ((unsigned char)p[j] & 0x3f);
	w = wcwidth((wchar_t)cp);
	if (w >= 0)
		return (size_t)w;
	if ((cp >= 0x300 && cp <= 0x36f) || cp == 0x200b || (cp >= 0xfe00 && cp <= 0xfe0f))
		return 0;
	return le_is_wide(cp) ? 2 : 1;
}

static size_t le_width(const char *s, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n;) {
		size_t l = le_char_len(s + i, n - i);

		w += le_char_width(s + i, l);
		i += l;
	}
	return w;
}

static size_t le_cols(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* --- raw mode --- */

static int le_raw_on(struct lineedit *le)
{
	struct termios raw;

	if (tcgetattr(le->in, &le_orig) < 0)
		return -1;
	raw = le_orig;
	raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
	raw.c_cflag |= CS8;
	raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	/* TCSADRAIN, not TCSAFLUSH: lines pasted ahead must not be lost */
	if (tcsetattr(le->in, TCSADRAIN, &raw) < 0)
		return -1;
	le_raw_fd = le->in;
	return 0;
}

static void le_write(struct lineedit *le, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(le->out, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* le_refresh: redraw prompt and line on one row, scrolled so the cursor shows */
static void le_refresh(struct lineedit *le, struct le_edit *e)
{
	char out[LINEEDIT_PROMPT_MAX + LINEEDIT_MAX + 64];
	size_t plen = strnlen(e->prompt, LINEEDIT_PROMPT_MAX), pw = le_width(e->prompt, plen);
	size_t cols = le_cols(le->out), avail = cols > pw + 2 ? cols - pw - 1 : 1;
	size_t start = 0, end, w = le_width(e->buf, e->pos), we = 0, k;

	while (w > avail && start < e->pos) {
		size_t l = le_char_len(e->buf + start, e->len - start);

		w -= le_char_width(e->buf + start, l);
		start += l;
	}
	for (end = start; end < e->len;) {
		size_t l = le_char_len(e->buf + end, e->len - end), cw = le_char_width(e->buf + end, l);

		if (we + cw > avail)
			break;
		we += cw;
		end += l;
	}
	out[0] = '\r';
	memcpy(out + 1, e->prompt, plen);
	memcpy(out + 1 + plen, e->buf + start, end - start);
	k = 1 + plen + (end - start);
	k += (size_t)snprintf(out + k, sizeof out - k, "\033[K\r");
	if (pw + w > 0)
		k += (size_t)snprintf(out + k, sizeof out - k, "\033[%zuC", pw + w);
	le_write(le, out, k);
}

/* le_set: replace the line by s (history) */
static void le_set(struct le_edit *e, const char *s)
{
	size_t n = strnlen(s, e->cap - 1);

	memcpy(e->buf, s, n);
	e->buf[n] = '\0';
	e->len = e->pos = n;
}

static void le_history_move(struct lineedit *le, struct le_edit *e, int up)
{
	if (up && e->hidx == 0)
		return;
	if (!up && e->hidx >= le->nhist)
		return;
	if (e->hidx == le->nhist) /* leaving the new line: keep it */
		memcpy(e->draft, e->buf, e->len + 1);
	e->hidx = up ? e->hidx - 1 : e->hidx + 1;
	le_set(e, e->hidx == le->nhist ? e->draft : le->hist[e->hidx]);
}

static size_t le_prev(const struct le_edit *e, size_t pos)
{
	if (pos == 0)
		return 0;
	pos--;
	while (pos > 0 && ((unsigned char)e->buf[pos] & 0xc0) == 0x80)
		pos--;
	return pos;
}

static size_t le_next(const struct le_edit *e, size_t pos)
{
	return pos < e->len ? pos + le_char_len(e->buf + pos, e->len - pos) : pos;
}

/* le_delete: remove bytes [from, to) */
static void le_delete(struct le_edit *e, size_t from, size_t to)
{
	if (to <= from)
		return;
	memmove(e->buf + from, e->buf + to, e->len - to + 1);
	e->len -= to - from;
	if (e->pos > to)
		e->pos -= to - from;
	else if (e->pos > from)
		e->pos = from;
}

static void le_insert(struct le_edit *e, char c)
{
	if (e->len + 1 >= e->cap)
		return; /* full: the byte is dropped */
	memmove(e->buf + e->pos + 1, e->buf + e->pos, e->len - e->pos + 1);
	e->buf[e->pos++] = c;
	e->len++;
}

static size_t le_word_left(const struct le_edit *e)
{
	size_t p = e->pos;

	while (p > 0 && e->buf[p - 1] == ' ')
		p--;
	while (p > 0 && e->buf[p - 1] != ' ')
		p--;
	return p;
}

static size_t le_word_right(const struct le_edit *e)
{
	size_t p = e->pos;

	while (p < e->len && e->buf[p] == ' ')
		p++;
	while (p < e->len && e->buf[p] != ' ')
		p++;
	return p;
}

/* le_getc: one byte; 1, 0 at end of input, -1 on error (errno; EINTR for a signal) */
static int le_getc(struct lineedit *le, unsigned char *c)
{
	ssize_t n = read(le->in, c, 1);

	return n == 1 ? 1 : n == 0 ? 0 : -1;
}

/* le_getc_soon: a byte that follows within LE_ESC_WAIT_MS, else -1 */
static int le_getc_soon(struct lineedit *le)
{
	struct pollfd p = { le->in, POLLIN, 0 };
	unsigned char c;

	if (poll(&p, 1, LE_ESC_WAIT_MS) != 1 || le_getc(le, &c) != 1)
		return -1;
	return c;
}

/* le_escape: an escape sequence after ESC: arrows, Home/End, Delete, Alt-B/F */
static void le_escape(struct lineedit *le, struct le_edit *e)
{
	char seq[LE_SEQ_MAX + 1];
	size_t n = 0;
	int c = le_getc_soon(le), fin;

	if (c == 'b' || c == 'f') {
		e->pos = c == 'b' ? le_word_left(e) : le_word_right(e);
		return;
	}
	if (c != '[' && c != 'O')
		return;
	while ((fin = le_getc_soon(le)) >= 0 && n < LE_SEQ_MAX) {
		seq[n++] = (char)fin;
		if (fin >= 0x40 && fin <= 0x7e)
			break;
	}
	seq[n] = '\0';
	if (n == 0)
		return;
	switch (seq[n - 1]) {
	case 'A': le_history_move(le, e, 1); break;
	case 'B': le_history_move(le, e, 0); break;
	case 'C': e->pos = strstr(seq, ";5") ? le_word_right(e) : le_next(e, e->pos); break;
	case 'D': e->pos = strstr(seq, ";5") ? le_word_left(e) : le_prev(e, e->pos); break;
	case 'H': e->pos = 0; break;
	case 'F': e->pos = e->len; break;
	case '~':
		if (seq[0] == '1' || seq[0] == '7')
			e->pos = 0;
		else if (seq[0] == '4' || seq[0] == '8')
			e->pos = e->len;
		else if (seq[0] == '3')
			le_delete(e, e->pos, le_next(e, e->pos));
		break;
	default: break;
	}
}

/* le_suspend: Ctrl-Z: the shell's job control, then back to editing */
static void le_suspend(struct lineedit *le)
{
	lineedit_restore_terminal();
	le_write(le, "\r\n", 2);
	raise(SIGTSTP);
	(void)le_raw_on(le);
}

/* le_key: apply one key (c, already read). LE_GO_ON, or an enum lineedit_rc to return */
static int le_key(struct lineedit *le, struct le_edit *e, unsigned char c)
{
	switch (c) {
	case '\r':
	case '\n': return LINEEDIT_LINE;
	case 3: le_write(le, "^C", 2); return LINEEDIT_CANCEL;
	case 4:
		if (e->len == 0)
			return LINEEDIT_EOF;
		le_delete(e, e->pos, le_next(e, e->pos));
		break;
	case 1: e->pos = 0; break;
	case 5: e->pos = e->len; break;
	case 2: e->pos = le_prev(e, e->pos); break;
	case 6: e->pos = le_next(e, e->pos); break;
	case 8:
	case 127: le_delete(e, le_prev(e, e->pos), e->pos); break;
	case 11: le_delete(e, e->pos, e->len); break;
	case 21: le_delete(e, 0, e->pos); break;
	case 23: le_delete(e, le_word_left(e), e->pos); break;
	case 16: le_history_move(le, e, 1); break;
	case 14: le_history_move(le, e, 0); break;
	case 12: le_write(le, "\033[H\033[2J", 7); break;
	case 26: le_suspend(le); break;
	case 27: le_escape(le, e); break;
	default:
		if (c >= 0x20 || c == '\t')
			le_insert(e, c == '\t' ? ' ' : (char)c);
		break;
	}
	return LE_GO_ON;
}

/* le_pending: more input is already waiting (a paste): skip the redraw */
static int le_pending(struct lineedit *le)
{
	struct pollfd p = { le->in, POLLIN, 0 };

	return poll(&p, 1, 0) == 1;
}

static int le_edit_loop(struct lineedit *le, struct le_edit *e)
{
	unsigned char c;
	int rc;

	le_refresh(le, e);
	for (;;) {
		int got = le_getc(le, &c);

		if (got <= 0)
			return got == 0 ? LINEEDIT_EOF : errno == EINTR ? LINEEDIT_SIGNAL : LINEEDIT_ERROR;
		if ((rc = le_key(le, e, c)) != LE_GO_ON)
			return rc;
		if (!le_pending(le))
			le_refresh(le, e);
	}
}

int lineedit_read(struct lineedit *le, const char *prompt, char *line, size_t linelen)
{
	struct le_edit *e;
	int rc, saved;

	if (linelen < 2)
		return LINEEDIT_ERROR;
	if (!le->editing)
		return le_read_plain(le, prompt, line, linelen);
	if (!(e = calloc(1, sizeof *e)))
		return LINEEDIT_ERROR;
	e->buf = line;
	e->cap = linelen < LINEEDIT_MAX + 1 ? linelen : LINEEDIT_MAX + 1;
	e->buf[0] = '\0';
	e->prompt = prompt ? prompt : "";
	e->hidx = le->nhist;
	if (le_raw_on(le) < 0) {
		free(e);
		return LINEEDIT_ERROR;
	}
	rc = le_edit_loop(le, e);
	saved = errno;
	e->pos = e->len;
	if (rc == LINEEDIT_LINE)
		le_refresh(le, e);
	lineedit_restore_terminal();
	le_write(le, "\r\n", 2);
	if (rc != LINEEDIT_LINE)
		line[0] = '\0';
	free(e);
	errno = saved;
	return rc;
}
