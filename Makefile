# Makefile: builds, runs, tests and installs mcpgw (see README.md).
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR    = $(PREFIX)/bin
LIBEXEC   = $(PREFIX)/lib/mcpgw
SHAREDIR  = $(PREFIX)/share/mcpgw
DOCDIR    = $(PREFIX)/share/doc/mcpgw
SYSCONF  ?= /etc/mcpgw
STATEDIR ?= /var/lib/mcpgw
UNITDIR  ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
# the example configs and systemd units name the paths of this install
INSTALL_SED = sed -e 's|/usr/local/lib/mcpgw|$(LIBEXEC)|g' -e 's|/usr/local/share/|$(PREFIX)/share/|g' -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/mcpgw|$(SYSCONF)|g'

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN      = -Wall -Wextra -Wstrict-prototypes -Wshadow -Wformat=2 -Wno-format-nonliteral
CPPFLAGS += -std=c11 -D_GNU_SOURCE -Ilib -MMD -MP
LDLIBS_BASE = -ljansson -lsqlite3
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_SRC   = $(wildcard lib/*.c)
LIB_OBJ   = $(LIB_SRC:.c=.o)
LIB_A     = lib/libmcpgw.a

BROKER    = broker/mcpgw-broker
BROKER_SRC= $(wildcard broker/*.c)
MCPCLIENT = mcp-client/mcpgw-mcp-client
MCPCLIENT_SRC = $(wildcard mcp-client/*.c)
SQLITESRV = mcp-server-sqlite/mcp-server-sqlite
SQLITE_SRC= $(wildcard mcp-server-sqlite/*.c)
CHAT      = chat/mcpgw-chat
CHAT_SRC  = $(wildcard chat/*.c)
CGI_SRC   = $(wildcard cgi-bin/*.c)
CGI_BIN   = $(CGI_SRC:.c=.fcgi)
UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BIN  = $(UNIT_SRC:.c=)

PROGS = $(BROKER) $(MCPCLIENT) $(SQLITESRV) $(CGI_BIN) $(CHAT)
ALL_OBJ = $(LIB_OBJ) $(BROKER_SRC:.c=.o) $(MCPCLIENT_SRC:.c=.o) $(SQLITE_SRC:.c=.o) $(CGI_SRC:.c=.o) $(UNIT_SRC:.c=.o) \
	  $(CHAT_SRC:.c=.o) \
	  bench/fixed.o bench/stdio_floor.o

.PHONY: all deps run start stop status check unit blackbox install uninstall clean bench bench-progs
# keep the objects of pattern-built programs (make would delete them as intermediates)
.SECONDARY:
all: $(PROGS)

%.o: %.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BROKER): $(BROKER_SRC:.c=.o) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_BASE) -lcurl

# the conformance client runs the broker's own MCP client code (everything but its main)
$(MCPCLIENT): $(MCPCLIENT_SRC:.c=.o) $(filter-out broker/main.o,$(BROKER_SRC:.c=.o)) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_BASE) -lcurl

mcp-client/%.o: CPPFLAGS += -Ibroker

$(SQLITESRV): $(SQLITE_SRC:.c=.o) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_BASE)

# the chatbot: no libfcgi (it links neither lib/hio.o nor lib/oai.o)
$(CHAT): $(CHAT_SRC:.c=.o) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ -ljansson -lsqlite3 -lcurl -lpthread

cgi-bin/%.fcgi: cgi-bin/%.o $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ -lfcgi $(LDLIBS_BASE) -lcurl

# bench/: the yardstick FastCGI responder and the direct stdio client of `make bench`
BENCH_BIN = bench/fixed.fcgi bench/stdio_floor
bench-progs: $(BENCH_BIN)

bench/fixed.fcgi: bench/fixed.o
	$(CC) $(LDFLAGS) -o $@ $^ -lfcgi

bench/stdio_floor: bench/stdio_floor.o
	$(CC) $(LDFLAGS) -o $@ $^ -ljansson

# test_randid scans the checkout's sources for other random number sources
tests/unit/test_randid.o: CPPFLAGS += -DMCPGW_SRC_ROOT='"$(CURDIR)"'

# test_conversation checks the chatbot's session names (chat/)
tests/unit/test_conversation.o: CPPFLAGS += -Ichat
tests/unit/test_conversation: tests/unit/test_conversation.o chat/conversation.o chat/history.o $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS_BASE)

tests/unit/test_%: tests/unit/test_%.o $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lfcgi $(LDLIBS_BASE) -lcurl

# Installs the Debian packages the build, `make run` and the tests need (root only; a no-op when present).
deps:
	@sh deploy/install-deps.sh

run: deps all
	@sh deploy/mcpgwctl run
start: deps all
	@sh deploy/mcpgwctl start
stop:
	@sh deploy/mcpgwctl stop
status:
	@sh deploy/mcpgwctl status

unit: deps all $(UNIT_BIN)
	@sh tests/check.sh unit

blackbox: deps all
	@sh tests/check.sh blackbox

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@sh tests/check.sh

# Measures mcpgw against its yardsticks (bench/run.sh): prints a table, writes bench/results.md.
bench:
	@sh deploy/install-deps.sh --bench
	@$(MAKE) --no-print-directory all bench-progs
	@bash bench/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXEC)/cgi-bin $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONF)
	install -m 0755 $(BROKER) $(SQLITESRV) $(CHAT) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(CGI_BIN) $(DESTDIR)$(LIBEXEC)/cgi-bin/
	install -m 0755 deploy/mcpgwctl $(DESTDIR)$(BINDIR)/mcpgwctl
	install -m 0644 lighttpd.conf.example servers_config.json .env.example $(DESTDIR)$(SHAREDIR)/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	@[ -e $(DESTDIR)$(SYSCONF)/servers_config.json ] || install -m 0644 servers_config.json $(DESTDIR)$(SYSCONF)/
	@[ -e $(DESTDIR)$(SYSCONF)/.env ] || install -m 0600 .env.example $(DESTDIR)$(SYSCONF)/.env
	install -m 0755 $(MCPCLIENT) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(SHAREDIR)/apache $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 lighttpd-cgi.conf.example $(DESTDIR)$(SHAREDIR)/
	for f in deploy/apache/*.conf deploy/apache/htaccess.example; do \
		$(INSTALL_SED) $$f >$(DESTDIR)$(SHAREDIR)/apache/$${f##*/} && chmod 0644 $(DESTDIR)$(SHAREDIR)/apache/$${f##*/} || exit 1; done
	for f in deploy/systemd/*.service deploy/systemd/*.socket; do \
		$(INSTALL_SED) $$f >$(DESTDIR)$(UNITDIR)/$${f##*/} && chmod 0644 $(DESTDIR)$(UNITDIR)/$${f##*/} || exit 1; done
	install -m 0644 deploy/systemd/mcpgw.sysusers $(DESTDIR)$(SYSUSERSDIR)/mcpgw.conf
	install -d -m 0700 $(DESTDIR)$(STATEDIR)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mcpgw-broker $(DESTDIR)$(BINDIR)/mcp-server-sqlite $(DESTDIR)$(BINDIR)/mcpgwctl \
	      $(DESTDIR)$(BINDIR)/mcpgw-chat
	rm -f $(DESTDIR)$(BINDIR)/mcpgw-mcp-client $(DESTDIR)$(UNITDIR)/mcpgw-broker.service $(DESTDIR)$(UNITDIR)/mcpgw-fcgi@.service \
	      $(DESTDIR)$(UNITDIR)/mcpgw-fcgi@.socket $(DESTDIR)$(SYSUSERSDIR)/mcpgw.conf
	rm -rf $(DESTDIR)$(LIBEXEC) $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -f $(ALL_OBJ) $(ALL_OBJ:.o=.d) $(LIB_A) $(PROGS) $(UNIT_BIN) bench/fixed.fcgi bench/stdio_floor

-include $(ALL_OBJ:.o=.d)
