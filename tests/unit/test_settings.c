/* test_settings.c: unit tests for .env loading (lib/core/dotenv.c), the settings table and its loading (settings.c, settingsdoc.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buildconf.h"
#include "core/log.h"
#include "core/dotenv.h"
#include "core/settings.h"
#include "core/settingsdoc.h"

#include <ctype.h>
#include <dirent.h>

static const char *const vars[] = { "MCPGW_HOME",
				    "MCPGW_ENV_FILE",
				    "MCPGW_CONFIG",
				    "MCPGW_STATE_DIR",
				    "MCPGW_BROKER_SOCKET",
				    "MCPGW_LOG_FILE",
				    "MCPGW_LOG_LEVEL",
				    "MCPGW_LISTEN",
				    "MCPGW_MAX_BODY_BYTES",
				    "MCPGW_MAX_JSON_DEPTH",
				    "MCPGW_MAX_MESSAGE_BYTES",
				    "MCPGW_TOOL_TIMEOUT",
				    "MCPGW_TOOL_RETRIES",
				    "MCPGW_INIT_TIMEOUT",
				    "MCPGW_RESTART_BACKOFF_MAX",
				    "MCPGW_MAX_CLIENTS",
				    "MCPGW_BROKER_TIMEOUT",
				    "MCPGW_BROKER_AUTOSTART",
				    "MCPGW_STARTUP_WAIT",
				    "OPENAI_API_KEY",
				    "OPENAI_BASE_URL",
				    "DEFAULT_MODEL",
				    "MCPGW_UPSTREAM_CONNECT_TIMEOUT",
				    "MCPGW_UPSTREAM_TIMEOUT",
				    "MCPGW_UPSTREAM_RETRIES",
				    "MCPGW_UPSTREAM_RETRY_MAX_WAIT",
				    "MCPGW_MAX_RESPONSE_BYTES",
				    "MCPGW_MAX_TOOL_ROUNDS",
				    "MCPGW_MAX_TOOL_OUTPUT_BYTES",
				    "MCPGW_INJECT_TOOLS",
				    "MCPGW_MODELS_CACHE_TTL",
				    "MCPGW_SESSION_TTL",
				    "MCPGW_STATE_STORE",
				    "MCPGW_STATE_STORE_TIMEOUT",
				    "MCPGW_CHAT_THREADS",
				    "MCPGW_MODEL_ALIASES",
				    "MCPGW_ALLOWED_HOSTS",
				    "MCPGW_CORS_ORIGINS",
				    "EMBEDDING_API_KEY",
				    "EMBEDDING_BASE_URL",
				    "MCPGW_EMBEDDING_MAX_INPUTS",
				    "MCPGW_EMBEDDING_MAX_INPUT_BYTES",
				    "MCPGW_EMBEDDING_MAX_ANSWER_BYTES",
				    "MCPGW_SERVER_MAX_TOOLS",
				    "MCPGW_SERVER_MAX_TOOLS_BYTES",
				    "MCPGW_LOCAL_EMBEDDING_MODELS",
				    "T_A",
				    "T_B",
				    "T_C",
				    "T_D",
				    "T_E",
				    "T_F",
				    "T_G",
				    "T_H",
				    "T_I",
				    "T_J",
				    "T_K",
				    "T_L",
				    "T_M",
				    "T_N",
				    "T_O",
				    "T_P",
				    "T_Q",
				    "T_R",
				    "export",
				    NULL };

static char err[1024];
static char home[PATH_MAX]; /* a fresh temp dir per test */

static int setup(void **state)
{
	(void)state;
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	for (size_t i = 0; i < settings_count; i++)
		unsetenv(settings_rows[i].name);
	strcpy(home, "/tmp/mcpgw-test-settings-XXXXXX");
	if (!mkdtemp(home))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char p[PATH_MAX + 16];

	(void)state;
	snprintf(p, sizeof p, "%s/.env", home);
	unlink(p);
	return rmdir(home);
}

/* write_file: home/name with the given content; full path in out. */
static void write_file(const char *name, const char *data, size_t len, char *out, size_t outlen)
{
	FILE *f;

	snprintf(out, outlen, "%s/%s", home, name);
	f = fopen(out, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void assert_env(const char *k, const char *want)
{
	const char *v = getenv(k);

	if (!v)
		fail_msg("%s is not set", k);
	if (strcmp(v, want) != 0)
		fail_msg("%s = [%s], want [%s]", k, v, want);
}

static void test_dotenv_syntax(void **state)
{
	static const char env[] = "# a comment\n"
				  "\n"
				  "   \t\n"
				  "T_A=plain\n"
				  "export T_B=exported\n"
				  "T_C = spaced value  \n"
				  "T_D=x # inline comment\n"
				  "T_E=http://h/p#frag\n"
				  "T_F='single $x \\n # not a comment'\n"
				  "T_G=\"dq \\\"q\\\" \\\\ \\n end\\t\\d\" # c\n"
				  "T_H=\n"
				  "T_I= # only a comment\n"
				  "T_J='' \n"
				  "T_K=#not-a-comment\n"
				  "T_L=crlf\r\n"
				  "  T_M=indented\n"
				  "T_N=a=b=c\n"
				  "T_O=\"\"\n"
				  "export=kw\n"
				  "T_P=it's\n"
				  "T_Q=last-wins-1\n"
				  "T_Q=last-wins-2";
	char path[PATH_MAX + 16];

	(void)state;
	write_file(".env", env, sizeof env - 1, path, sizeof path);
	assert_int_equal(dotenv_load(path, err, sizeof err), 0);
	assert_env("T_A", "plain");
	assert_env("T_B", "exported");
	assert_env("T_C", "spaced value");
	assert_env("T_D", "x");
	assert_env("T_E", "http://h/p#frag");
	assert_env("T_F", "single $x \\n # not a comment");
	assert_env("T_G", "dq \"q\" \\ \n end\t\\d");
	assert_env("T_H", "");
	assert_env("T_I", "");
	assert_env("T_J", "");
	assert_env("T_K", "#not-a-comment");
	assert_env("T_L", "crlf");
	assert_env("T_M", "indented");
	assert_env("T_N", "a=b=c");
	assert_env("T_O", "");
	assert_env("export", "kw");
	assert_env("T_P", "it's");
	assert_env("T_Q", "last-wins-2");
}

static void test_dotenv_env_wins(void **state)
{
	static const char env[] = "T_A=from-file\nT_B=from-file\nT_C=from-file\n";
	char path[PATH_MAX + 16];

	(void)state;
	assert_int_equal(setenv("T_A", "real", 1), 0);
	assert_int_equal(setenv("T_B", "", 1), 0);
	write_file(".env", env, sizeof env - 1, path, sizeof path);
	assert_int_equal(dotenv_load(path, err, sizeof err), 0);
	assert_env("T_A", "real");
	assert_env("T_B", "");
	assert_env("T_C", "from-file");
}

/* bad_line: content must fail with "PATH:want" and set nothing. */
static void bad_line(const char *content, const char *want)
{
	char path[PATH_MAX + 16], full[PATH_MAX + 128];

	write_file(".env", content, strlen(content), path, sizeof path);
	unsetenv("T_A");
	assert_int_equal(dotenv_load(path, err, sizeof err), -1);
	snprintf(full, sizeof full, "%s:%s", path, want);
	if (strcmp(err, full) != 0)
		fail_msg("for [%s]\n got: %s\nwant: %s", content, err, full);
	assert_null(getenv("T_A"));
}

static void test_dotenv_errors(void **state)
{
	char path[PATH_MAX + 16];

	(void)state;
	bad_line("T_A=1\nNOEQUALS\n", "2: expected KEY=VALUE");
	bad_line("T_A=1\n1X=2\n", "2: invalid variable name");
	bad_line("T_A=1\nA-B=2\n", "2: invalid variable name");
	bad_line("T_A=1\n=2\n", "2: invalid variable name");
	bad_line("T_A=1\nexport T_B\n", "2: expected KEY=VALUE");
	bad_line("T_A=1\n\n# c\nT_B='open\n", "4: unterminated single quote");
	bad_line("T_A=1\nT_B=\"open\\\"\n", "2: unterminated double quote");
	bad_line("T_A=1\nT_B='a'b\n", "2: unexpected text after the closing quote");
	bad_line("T_A=1\nT_B A=1\n", "2: expected KEY=VALUE");

	/* a NUL byte in a line */
	write_file(".env", "T_A=1\nT_B=x\0y\n", 14, path, sizeof path);
	unsetenv("T_A");
	assert_int_equal(dotenv_load(path, err, sizeof err), -1);
	assert_non_null(strstr(err, ":2: NUL byte in line"));
	assert_null(getenv("T_A"));
}

static void test_dotenv_files(void **state)
{
	char path[PATH_MAX + 16], want[PATH_MAX + 64];
	char *big;

	(void)state;
	snprintf(path, sizeof path, "%s/missing.env", home);
	assert_int_equal(dotenv_load(path, err, sizeof err), 0);
	/* a directory is unreadable */
	assert_int_equal(dotenv_load(home, err, sizeof err), -1);
	assert_non_null(strstr(err, home));

	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '#', 1024 * 1024 + 1);
	big[1023] = '\n';
	memcpy(big + 1024, "T_A=big\n", 8);
	write_file(".env", big, 1024 * 1024, path, sizeof path);
	assert_int_equal(dotenv_load(path, err, sizeof err), 0);
	assert_env("T_A", "big");
	unsetenv("T_A");
	write_file(".env", big, 1024 * 1024 + 1, path, sizeof path);
	assert_int_equal(dotenv_load(path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: larger than 1 MiB (1048576 bytes)", path);
	assert_string_equal(err, want);
	free(big);
}

static void test_defaults(void **state)
{
	struct settings s;
	char want[PATH_MAX + 64];

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_string_equal(s.home, home);
	snprintf(want, sizeof want, "%s/servers_config.json", home);
	assert_string_equal(s.config, want);
	snprintf(want, sizeof want, "%s/var", home);
	assert_string_equal(s.state_dir, want);
	snprintf(want, sizeof want, "%s/var/broker.sock", home);
	assert_string_equal(s.socket_path, want);
	snprintf(want, sizeof want, "%s/var/mcpgw.db", home);
	assert_string_equal(s.db_path, want);
	snprintf(want, sizeof want, "sqlite:%s/var/state.db", home);
	assert_string_equal(s.state_store, want);
	assert_int_equal(s.state_store_timeout_ms, 5000);
	assert_string_equal(s.log_file, "");
	assert_int_equal(s.log_level, LOGL_INFO);
	assert_string_equal(s.listen, "127.0.0.1:8000");
	assert_int_equal(s.max_body_bytes, 4194304);
	assert_int_equal(s.max_json_depth, 64);
	assert_int_equal(s.max_message_bytes, 16777216);
	assert_int_equal(s.tool_timeout_ms, 60000);
	assert_int_equal(s.tool_retries, 2);
	assert_int_equal(s.init_timeout_ms, 30000);
	assert_int_equal(s.restart_backoff_max_ms, 300000);
	assert_int_equal(s.max_clients, 4096);
	assert_int_equal(s.broker_timeout_ms, 5000);
	assert_int_equal(s.startup_wait_ms, 30000);
	assert_int_equal(s.broker_autostart, 1);
	assert_string_equal(s.openai_api_key, "");
	assert_string_equal(s.openai_base_url, "https://api.openai.com/v1");
	assert_string_equal(s.default_model, "gpt-3.5-turbo");
	assert_int_equal(s.upstream_connect_timeout_ms, 10000);
	assert_int_equal(s.upstream_timeout_ms, 300000);
	assert_int_equal(s.upstream_retries, 2);
	assert_int_equal(s.upstream_retry_max_wait_ms, 20000);
	assert_int_equal(s.max_response_bytes, 33554432);
	assert_int_equal(s.max_tool_rounds, 8);
	assert_int_equal(s.max_tool_output_bytes, 65536);
	assert_int_equal(s.inject_tools, 1);
	assert_int_equal(s.models_cache_ttl_ms, 300000);
	assert_int_equal(s.session_ttl_ms, 86400000);
	assert_int_equal(s.chat_threads, 16);
	assert_string_equal(s.model_aliases, "");
	assert_null(settings_model_alias(&s, "gpt-3.5-turbo"));
	assert_string_equal(s.embedding_api_key, "");
	assert_string_equal(s.embedding_base_url, "https://api.openai.com/v1");
	assert_int_equal(s.embedding_max_inputs, 2048);
	assert_int_equal(s.embedding_max_input_bytes, 32768);
	assert_string_equal(s.local_embedding_models, "mcpgw-embedding-local");
	assert_int_equal(settings_local_embedding_model(&s, "mcpgw-embedding-local"), 1);
	assert_int_equal(settings_local_embedding_model(&s, "text-embedding-ada-002"), 0);
}

/* an unset MCPGW_HOME is where the programs are installed (this test
 * program is not in a checkout's program directory: the install's
 * SYSCONF and STATEDIR), never the working directory */
static void test_home_default_install(void **state)
{
	struct settings s;
	char old[PATH_MAX], want[PATH_MAX + 64], envfile[PATH_MAX + 16];
	int fd;

	(void)state;
	assert_non_null(getcwd(old, sizeof old));
	snprintf(envfile, sizeof envfile, "%s/.env", home);
	fd = open(envfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "MCPGW_LISTEN=1.2.3.4:5\n", 23), 23);
	close(fd);
	/* not the .env of the install this machine may have */
	snprintf(want, sizeof want, "%s/none.env", home);
	assert_int_equal(setenv("MCPGW_ENV_FILE", want, 1), 0);
	assert_int_equal(chdir(home), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_int_equal(chdir(old), 0);
	assert_string_equal(s.home, MCPGW_SYSCONF);
	assert_string_equal(s.state_dir, MCPGW_STATEDIR);
	snprintf(want, sizeof want, "%s/servers_config.json", MCPGW_SYSCONF);
	assert_string_equal(s.config, want);
	snprintf(want, sizeof want, "%s/broker.sock", MCPGW_STATEDIR);
	assert_string_equal(s.socket_path, want);
	assert_string_equal(s.listen, "127.0.0.1:8000"); /* the cwd's .env was not read */
	assert_int_equal(unsetenv("MCPGW_ENV_FILE"), 0);
	/* a relative MCPGW_HOME is taken against the cwd, its state dir under it */
	assert_int_equal(chdir("/tmp"), 0);
	assert_int_equal(setenv("MCPGW_HOME", home + 5, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_int_equal(chdir(old), 0);
	assert_string_equal(s.home, home);
	snprintf(want, sizeof want, "%s/var", home);
	assert_string_equal(s.state_dir, want);
	assert_string_equal(s.listen, "1.2.3.4:5");
	unsetenv("MCPGW_LISTEN");
	snprintf(want, sizeof want, "%s/", home);
	assert_int_equal(setenv("MCPGW_HOME", want, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_string_equal(s.home, home);
	unlink(envfile);
}

/* settings_export: the resolved directories for ${MCPGW_STATE_DIR} and child programs */
static void test_export(void **state)
{
	struct settings s;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	assert_int_equal(setenv("MCPGW_STATE_DIR", "st", 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_int_equal(settings_export(&s), 0);
	assert_string_equal(getenv("MCPGW_HOME"), home);
	assert_string_equal(getenv("MCPGW_STATE_DIR"), s.state_dir);
	assert_int_equal(s.state_dir[0], '/');
	/* loading again gives the same */
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_string_equal(getenv("MCPGW_STATE_DIR"), s.state_dir);
}

static void test_from_dotenv(void **state)
{
	static const char env[] = "MCPGW_STATE_DIR=state\n"
				  "MCPGW_CONFIG=conf/servers.json\n"
				  "MCPGW_LOG_FILE=log/mcpgw.log\n"
				  "MCPGW_LOG_LEVEL=DEBUG\n"
				  "MCPGW_TOOL_TIMEOUT=0.5\n"
				  "MCPGW_INIT_TIMEOUT=2.25\n"
				  "MCPGW_TOOL_RETRIES=0\n"
				  "MCPGW_MAX_CLIENTS=65536\n"
				  "OPENAI_API_KEY=sk-test\n"
				  "OPENAI_BASE_URL=http://127.0.0.1:9/v1/\n"
				  "DEFAULT_MODEL=\n";
	char path[PATH_MAX + 16], want[PATH_MAX + 64];
	struct settings s;

	(void)state;
	write_file(".env", env, sizeof env - 1, path, sizeof path);
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	assert_int_equal(setenv("MCPGW_MAX_CLIENTS", "7", 1), 0); /* real env wins */
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	snprintf(want, sizeof want, "%s/state", home);
	assert_string_equal(s.state_dir, want);
	snprintf(want, sizeof want, "%s/state/broker.sock", home);
	assert_string_equal(s.socket_path, want);
	snprintf(want, sizeof want, "%s/state/mcpgw.db", home);
	assert_string_equal(s.db_path, want);
	snprintf(want, sizeof want, "%s/conf/servers.json", home);
	assert_string_equal(s.config, want);
	snprintf(want, sizeof want, "%s/log/mcpgw.log", home);
	assert_string_equal(s.log_file, want);
	assert_int_equal(s.log_level, LOGL_DEBUG);
	assert_int_equal(s.tool_timeout_ms, 500);
	assert_int_equal(s.init_timeout_ms, 2250);
	assert_int_equal(s.tool_retries, 0);
	assert_int_equal(s.max_clients, 7);
	assert_string_equal(s.openai_api_key, "sk-test");
	assert_string_equal(s.openai_base_url, "http://127.0.0.1:9/v1");
	assert_string_equal(s.default_model, "gpt-3.5-turbo"); /* empty = default */
}

static void test_absolute_and_env_file(void **state)
{
	char path[PATH_MAX + 16];
	struct settings s;

	(void)state;
	write_file("other.env", "MCPGW_LISTEN=0.0.0.0:9000\n", 26, path, sizeof path);
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	assert_int_equal(setenv("MCPGW_ENV_FILE", "other.env", 1), 0);
	assert_int_equal(setenv("MCPGW_STATE_DIR", "/run/mcpgw", 1), 0);
	assert_int_equal(setenv("MCPGW_BROKER_SOCKET", "/run/b.sock", 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_string_equal(s.listen, "0.0.0.0:9000");
	assert_string_equal(s.state_dir, "/run/mcpgw");
	assert_string_equal(s.socket_path, "/run/b.sock");
	assert_string_equal(s.db_path, "/run/mcpgw/mcpgw.db");
	assert_int_equal(unlink(path), 0);
}

/* bad_setting: var=value must make settings_load fail with exactly want. */
static void bad_setting(const char *var, const char *value, const char *want)
{
	struct settings s;

	assert_int_equal(setenv(var, value, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), -1);
	if (strcmp(err, want) != 0)
		fail_msg("%s=%s\n got: %s\nwant: %s", var, value, err, want);
	unsetenv(var);
}

static void test_bounds(void **state)
{
	struct settings s;
	char big[5000];

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	bad_setting("MCPGW_TOOL_RETRIES", "x", "MCPGW_TOOL_RETRIES: expected an integer 0..10, got 'x'");
	bad_setting("MCPGW_TOOL_RETRIES", "11", "MCPGW_TOOL_RETRIES: expected an integer 0..10, got '11'");
	bad_setting("MCPGW_TOOL_RETRIES", "-1", "MCPGW_TOOL_RETRIES: expected an integer 0..10, got '-1'");
	bad_setting("MCPGW_TOOL_RETRIES", " 1", "MCPGW_TOOL_RETRIES: expected an integer 0..10, got ' 1'");
	bad_setting("MCPGW_TOOL_RETRIES", "1 ", "MCPGW_TOOL_RETRIES: expected an integer 0..10, got '1 '");
	bad_setting("MCPGW_MAX_BODY_BYTES", "1023",
		    "MCPGW_MAX_BODY_BYTES: expected an integer 1024..1073741824, got '1023'");
	bad_setting("MCPGW_MAX_BODY_BYTES", "99999999999999999999999",
		    "MCPGW_MAX_BODY_BYTES: expected an integer 1024..1073741824, got '99999999999999999999999'");
	bad_setting("MCPGW_MAX_JSON_DEPTH", "1", "MCPGW_MAX_JSON_DEPTH: expected an integer 2..1000, got '1'");
	bad_setting("MCPGW_MAX_MESSAGE_BYTES", "4095",
		    "MCPGW_MAX_MESSAGE_BYTES: expected an integer 4096..1073741824, got '4095'");
	bad_setting("MCPGW_MAX_CLIENTS", "0x10", "MCPGW_MAX_CLIENTS: expected an integer 1..65536, got '0x10'");
	bad_setting("MCPGW_TOOL_TIMEOUT", "0", "MCPGW_TOOL_TIMEOUT: expected seconds 0.001..86400, got '0'");
	bad_setting("MCPGW_TOOL_TIMEOUT", "1e3", "MCPGW_TOOL_TIMEOUT: expected seconds 0.001..86400, got '1e3'");
	bad_setting("MCPGW_INIT_TIMEOUT", "-1", "MCPGW_INIT_TIMEOUT: expected seconds 0.001..86400, got '-1'");
	bad_setting("MCPGW_RESTART_BACKOFF_MAX", "86401",
		    "MCPGW_RESTART_BACKOFF_MAX: expected seconds 0.001..86400, got '86401'");
	bad_setting("MCPGW_BROKER_TIMEOUT", "3600.5", "MCPGW_BROKER_TIMEOUT: expected seconds 0..3600, got '3600.5'");
	bad_setting("MCPGW_STARTUP_WAIT", "-1", "MCPGW_STARTUP_WAIT: expected seconds 0..3600, got '-1'");
	bad_setting("MCPGW_STARTUP_WAIT", "3601", "MCPGW_STARTUP_WAIT: expected seconds 0..3600, got '3601'");
	bad_setting("MCPGW_LOG_LEVEL", "loud", "MCPGW_LOG_LEVEL: expected error, warn, info or debug, got 'loud'");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	bad_setting("DEFAULT_MODEL", big, "DEFAULT_MODEL: expected at most 255 bytes, got 4999 bytes");
	bad_setting("MCPGW_LISTEN", big, "MCPGW_LISTEN: expected at most 255 bytes, got 4999 bytes");
	big[0] = '/';
	bad_setting("MCPGW_STATE_DIR", big, "MCPGW_STATE_DIR: expected at most 4095 bytes, got 4999 bytes");
	big[0] = 'a';
	big[4090] = '\0'; /* fits alone, not joined with home */
	assert_int_equal(setenv("MCPGW_CONFIG", big, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), -1);
	assert_non_null(strstr(err, "MCPGW_CONFIG: expected at most 4095 bytes, got "));
	unsetenv("MCPGW_CONFIG");
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
}

/* good_setting: var=value loads; the settings land in *s */
static void good_setting(const char *var, const char *value, struct settings *s)
{
	assert_int_equal(setenv(var, value, 1), 0);
	if (settings_load(s, err, sizeof err) != 0)
		fail_msg("%s=%s: %s", var, value, err);
	unsetenv(var);
}

static void test_upstream_settings(void **state)
{
	struct settings s;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	good_setting("MCPGW_UPSTREAM_CONNECT_TIMEOUT", "2.5", &s);
	assert_int_equal(s.upstream_connect_timeout_ms, 2500);
	bad_setting("MCPGW_UPSTREAM_CONNECT_TIMEOUT", "0",
		    "MCPGW_UPSTREAM_CONNECT_TIMEOUT: expected seconds 0.001..86400, got '0'");
	good_setting("MCPGW_UPSTREAM_TIMEOUT", "0.2", &s);
	assert_int_equal(s.upstream_timeout_ms, 200);
	bad_setting("MCPGW_UPSTREAM_TIMEOUT", "5m", "MCPGW_UPSTREAM_TIMEOUT: expected seconds 0.001..86400, got '5m'");
	good_setting("MCPGW_UPSTREAM_RETRIES", "0", &s);
	assert_int_equal(s.upstream_retries, 0);
	bad_setting("MCPGW_UPSTREAM_RETRIES", "11", "MCPGW_UPSTREAM_RETRIES: expected an integer 0..10, got '11'");
	good_setting("MCPGW_UPSTREAM_RETRY_MAX_WAIT", "0", &s);
	assert_int_equal(s.upstream_retry_max_wait_ms, 0);
	bad_setting("MCPGW_UPSTREAM_RETRY_MAX_WAIT", "3601",
		    "MCPGW_UPSTREAM_RETRY_MAX_WAIT: expected seconds 0..3600, got '3601'");
	good_setting("MCPGW_MAX_RESPONSE_BYTES", "4096", &s);
	assert_int_equal(s.max_response_bytes, 4096);
	bad_setting("MCPGW_MAX_RESPONSE_BYTES", "4095",
		    "MCPGW_MAX_RESPONSE_BYTES: expected an integer 4096..1073741824, got '4095'");
}

static void test_chat_settings(void **state)
{
	struct settings s;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	good_setting("MCPGW_MAX_TOOL_ROUNDS", "100", &s);
	assert_int_equal(s.max_tool_rounds, 100);
	bad_setting("MCPGW_MAX_TOOL_ROUNDS", "0", "MCPGW_MAX_TOOL_ROUNDS: expected an integer 1..100, got '0'");
	good_setting("MCPGW_MAX_TOOL_OUTPUT_BYTES", "256", &s);
	assert_int_equal(s.max_tool_output_bytes, 256);
	bad_setting("MCPGW_MAX_TOOL_OUTPUT_BYTES", "16777217",
		    "MCPGW_MAX_TOOL_OUTPUT_BYTES: expected an integer 256..16777216, got '16777217'");
	good_setting("MCPGW_MODELS_CACHE_TTL", "0", &s);
	assert_int_equal(s.models_cache_ttl_ms, 0);
	bad_setting("MCPGW_MODELS_CACHE_TTL", "-1", "MCPGW_MODELS_CACHE_TTL: expected seconds 0..86400, got '-1'");
	good_setting("MCPGW_SESSION_TTL", "2592000", &s);
	assert_int_equal(s.session_ttl_ms, 2592000000L);
	bad_setting("MCPGW_SESSION_TTL", "2592001", "MCPGW_SESSION_TTL: expected seconds 0.001..2592000, got '2592001'");
	good_setting("MCPGW_STATE_STORE", "sqlite:/srv/shared/state.db", &s);
	assert_string_equal(s.state_store, "sqlite:/srv/shared/state.db");
	bad_setting("MCPGW_STATE_STORE", "postgresql://gw:secret@db/mcpgw",
		    "MCPGW_STATE_STORE: unknown scheme 'postgresql'; supported: sqlite:/ABSOLUTE/PATH (e.g. "
		    "sqlite:/var/lib/mcpgw/state.db); postgresql is planned, not built in");
	bad_setting("MCPGW_STATE_STORE", "sqlite:state.db",
		    "MCPGW_STATE_STORE: sqlite needs an absolute file path, e.g. sqlite:/var/lib/mcpgw/state.db");
	good_setting("MCPGW_STATE_STORE_TIMEOUT", "0.25", &s);
	assert_int_equal(s.state_store_timeout_ms, 250);
	bad_setting("MCPGW_STATE_STORE_TIMEOUT", "61", "MCPGW_STATE_STORE_TIMEOUT: expected seconds 0.001..60, got '61'");
	good_setting("MCPGW_CHAT_THREADS", "1", &s);
	assert_int_equal(s.chat_threads, 1);
	bad_setting("MCPGW_CHAT_THREADS", "257", "MCPGW_CHAT_THREADS: expected an integer 1..256, got '257'");
}

static void test_inject_tools(void **state)
{
	static const char *const off[] = { "0", "false", "no", "off", "OFF", "False", NULL };
	static const char *const on[] = { "1", "true", "yes", "on", "YES", "True", NULL };
	struct settings s;
	int b;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	for (int i = 0; off[i]; i++) {
		good_setting("MCPGW_INJECT_TOOLS", off[i], &s);
		assert_int_equal(s.inject_tools, 0);
		good_setting("MCPGW_INJECT_TOOLS", on[i], &s);
		assert_int_equal(s.inject_tools, 1);
	}
	bad_setting("MCPGW_INJECT_TOOLS", "2",
		    "MCPGW_INJECT_TOOLS: expected 1, 0, true, false, yes, no, on or off, got '2'");
	bad_setting("MCPGW_INJECT_TOOLS", "yes ",
		    "MCPGW_INJECT_TOOLS: expected 1, 0, true, false, yes, no, on or off, got 'yes '");
	assert_int_equal(settings_parse_bool(NULL, &b), -1);
	assert_int_equal(settings_parse_bool("", &b), -1);
}

static void test_broker_autostart(void **state)
{
	static const char *const off[] = { "0", "false", "no", "off", "Off", NULL };
	static const char *const on[] = { "1", "true", "yes", "on", "ON", NULL };
	struct settings s;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	for (int i = 0; off[i]; i++) {
		good_setting("MCPGW_BROKER_AUTOSTART", off[i], &s);
		assert_int_equal(s.broker_autostart, 0);
		good_setting("MCPGW_BROKER_AUTOSTART", on[i], &s);
		assert_int_equal(s.broker_autostart, 1);
	}
	/* empty counts as unset: the default */
	good_setting("MCPGW_BROKER_AUTOSTART", "", &s);
	assert_int_equal(s.broker_autostart, 1);
	bad_setting("MCPGW_BROKER_AUTOSTART", "sometimes",
		    "MCPGW_BROKER_AUTOSTART: expected 1, 0, true, false, yes, no, on or off, got 'sometimes'");
}

static void test_model_aliases(void **state)
{
	struct settings s;
	const char *a, *t;
	char big[5000];
	size_t n, o;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	good_setting("MCPGW_MODEL_ALIASES", " fast = gpt-4o-mini ,smart=gpt-4o,local=org/llama:8b", &s);
	assert_string_equal(s.model_aliases, " fast = gpt-4o-mini ,smart=gpt-4o,local=org/llama:8b");
	assert_string_equal(settings_model_alias(&s, "fast"), "gpt-4o-mini");
	assert_string_equal(settings_model_alias(&s, "smart"), "gpt-4o");
	assert_string_equal(settings_model_alias(&s, "local"), "org/llama:8b");
	assert_null(settings_model_alias(&s, "gpt-4o"));
	assert_null(settings_model_alias(&s, "fas"));
	assert_int_equal(settings_model_alias_at(&s, 0, &a, &t), 0);
	assert_string_equal(a, "fast");
	assert_string_equal(t, "gpt-4o-mini");
	assert_int_equal(settings_model_alias_at(&s, 2, &a, &t), 0);
	assert_string_equal(a, "local");
	assert_int_equal(settings_model_alias_at(&s, 3, &a, &t), -1);
	good_setting("MCPGW_MODEL_ALIASES", "a=b", &s);
	assert_string_equal(settings_model_alias(&s, "a"), "b");
	assert_int_equal(settings_model_alias_at(&s, 1, &a, &t), -1);

	bad_setting("MCPGW_MODEL_ALIASES", "fast",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'fast'");
	bad_setting("MCPGW_MODEL_ALIASES", "a=b,",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'a=b,'");
	bad_setting("MCPGW_MODEL_ALIASES", "a=b,,c=d",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'a=b,,c=d'");
	bad_setting("MCPGW_MODEL_ALIASES", "=b", "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got '=b'");
	bad_setting("MCPGW_MODEL_ALIASES",
		    "a= ", "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'a= '");
	bad_setting("MCPGW_MODEL_ALIASES", "a=b=c",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'a=b=c'");
	bad_setting("MCPGW_MODEL_ALIASES", "my model=x",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'my model=x'");
	bad_setting("MCPGW_MODEL_ALIASES", "a=b,a=c", "MCPGW_MODEL_ALIASES: alias 'a' is given twice");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[1] = '=';
	bad_setting("MCPGW_MODEL_ALIASES", big, "MCPGW_MODEL_ALIASES: expected at most 4095 bytes, got 4999 bytes");
	/* the longest value as one pair, and as many short pairs */
	big[4095] = '\0';
	good_setting("MCPGW_MODEL_ALIASES", big, &s);
	assert_int_equal(strlen(settings_model_alias(&s, "a")), 4093);
	for (n = 0, o = 0; o + 8 < 4095; n++)
		o += (size_t)snprintf(big + o, sizeof big - o, "%s%03zx=b", n ? "," : "", n);
	good_setting("MCPGW_MODEL_ALIASES", big, &s);
	assert_int_equal(settings_model_alias_at(&s, n - 1, &a, &t), 0);
	assert_string_equal(t, "b");
	assert_int_equal(settings_model_alias_at(&s, n, &a, &t), -1);
}

/* MCPGW_ALLOWED_HOSTS and MCPGW_CORS_ORIGINS: a list of the shape lib/http/origin.c matches, or "*" alone */
static void test_browser_settings(void **state)
{
	static const char hosts[] = "MCPGW_ALLOWED_HOSTS: expected * or host[:port][,host[:port]...], got ";
	static const char origins[] =
		"MCPGW_CORS_ORIGINS: expected * or scheme://host[:port][,scheme://host[:port]...], got ";
	const char *bad_hosts[] = { "evil example", "a.b:", "a.b:0", "a.b:65536", "a.b,",      "a,,b",
				    "*,a.b",        "::1",  "a/b",   "[::1",      "a.b:80:80", NULL };
	const char *bad_origins[] = { "https://app.example/",
				      "app.example",
				      "null",
				      "*,https://a.b",
				      "https://",
				      "https://a.b:99999",
				      "1http://a.b",
				      "https://a.b/path",
				      "https://a b",
				      NULL };
	char want[256];
	struct settings s;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	good_setting("MCPGW_ALLOWED_HOSTS", "gw.example.com, gw.lan:8080,[fd00::1]:443", &s);
	assert_string_equal(s.allowed_hosts, "gw.example.com, gw.lan:8080,[fd00::1]:443");
	good_setting("MCPGW_ALLOWED_HOSTS", "*", &s);
	good_setting("MCPGW_CORS_ORIGINS", "http://localhost:5173 , https://app.example.com,chrome-extension://abc", &s);
	assert_string_equal(s.cors_origins, "http://localhost:5173 , https://app.example.com,chrome-extension://abc");
	good_setting("MCPGW_CORS_ORIGINS", "*", &s);
	for (int i = 0; bad_hosts[i]; i++) {
		snprintf(want, sizeof want, "%s'%s'", hosts, bad_hosts[i]);
		bad_setting("MCPGW_ALLOWED_HOSTS", bad_hosts[i], want);
	}
	for (int i = 0; bad_origins[i]; i++) {
		snprintf(want, sizeof want, "%s'%s'", origins, bad_origins[i]);
		bad_setting("MCPGW_CORS_ORIGINS", bad_origins[i], want);
	}
}

static void test_embedding_settings(void **state)
{
	struct settings s;
	char big[5000];
	size_t n, o;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	/* the embeddings upstream defaults to the chat upstream */
	assert_int_equal(setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/", 1), 0);
	assert_int_equal(setenv("OPENAI_API_KEY", "sk-chat", 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_string_equal(s.embedding_base_url, "http://127.0.0.1:9/v1");
	assert_string_equal(s.embedding_api_key, "sk-chat");
	assert_int_equal(setenv("EMBEDDING_API_KEY", "sk-embed", 1), 0);
	good_setting("EMBEDDING_BASE_URL", "http://127.0.0.1:10/v1//", &s);
	assert_string_equal(s.embedding_base_url, "http://127.0.0.1:10/v1");
	assert_string_equal(s.embedding_api_key, "sk-embed");
	assert_string_equal(s.openai_base_url, "http://127.0.0.1:9/v1");
	assert_string_equal(s.openai_api_key, "sk-chat");
	unsetenv("EMBEDDING_API_KEY");
	unsetenv("OPENAI_BASE_URL");
	unsetenv("OPENAI_API_KEY");

	good_setting("MCPGW_EMBEDDING_MAX_INPUTS", "1", &s);
	assert_int_equal(s.embedding_max_inputs, 1);
	bad_setting("MCPGW_EMBEDDING_MAX_INPUTS", "0",
		    "MCPGW_EMBEDDING_MAX_INPUTS: expected an integer 1..65536, got '0'");
	bad_setting("MCPGW_EMBEDDING_MAX_INPUTS", "65537",
		    "MCPGW_EMBEDDING_MAX_INPUTS: expected an integer 1..65536, got '65537'");
	good_setting("MCPGW_EMBEDDING_MAX_INPUT_BYTES", "16777216", &s);
	assert_int_equal(s.embedding_max_input_bytes, 16777216);
	bad_setting("MCPGW_EMBEDDING_MAX_INPUT_BYTES", "15",
		    "MCPGW_EMBEDDING_MAX_INPUT_BYTES: expected an integer 16..16777216, got '15'");
	good_setting("MCPGW_EMBEDDING_MAX_ANSWER_BYTES", "65536", &s);
	assert_int_equal(s.embedding_max_answer_bytes, 65536);
	bad_setting("MCPGW_EMBEDDING_MAX_ANSWER_BYTES", "65535",
		    "MCPGW_EMBEDDING_MAX_ANSWER_BYTES: expected an integer 65536..1073741824, got '65535'");
	good_setting("MCPGW_SERVER_MAX_TOOLS", "1", &s);
	assert_int_equal(s.server_max_tools, 1);
	bad_setting("MCPGW_SERVER_MAX_TOOLS", "0", "MCPGW_SERVER_MAX_TOOLS: expected an integer 1..65536, got '0'");
	good_setting("MCPGW_SERVER_MAX_TOOLS_BYTES", "4096", &s);
	assert_int_equal(s.server_tools_bytes, 4096);
	bad_setting("MCPGW_SERVER_MAX_TOOLS_BYTES", "4095",
		    "MCPGW_SERVER_MAX_TOOLS_BYTES: expected an integer 4096..1073741824, got '4095'");

	good_setting("MCPGW_LOCAL_EMBEDDING_MODELS", " text-embedding-ada-002 ,mine,org/emb:1", &s);
	assert_int_equal(settings_local_embedding_model(&s, "text-embedding-ada-002"), 1);
	assert_int_equal(settings_local_embedding_model(&s, "mine"), 1);
	assert_int_equal(settings_local_embedding_model(&s, "org/emb:1"), 1);
	assert_int_equal(settings_local_embedding_model(&s, "mcpgw-embedding-local"), 0);
	assert_int_equal(settings_local_embedding_model(&s, "min"), 0);
	assert_string_equal(settings_local_embedding_model_at(&s, 0), "text-embedding-ada-002");
	assert_string_equal(settings_local_embedding_model_at(&s, 2), "org/emb:1");
	assert_null(settings_local_embedding_model_at(&s, 3));
	good_setting("MCPGW_LOCAL_EMBEDDING_MODELS", "", &s); /* empty = default */
	assert_string_equal(settings_local_embedding_model_at(&s, 0), "mcpgw-embedding-local");
	assert_null(settings_local_embedding_model_at(&s, 1));
	bad_setting("MCPGW_LOCAL_EMBEDDING_MODELS", "a,",
		    "MCPGW_LOCAL_EMBEDDING_MODELS: expected model[,model...], got 'a,'");
	bad_setting("MCPGW_LOCAL_EMBEDDING_MODELS", "a,,b",
		    "MCPGW_LOCAL_EMBEDDING_MODELS: expected model[,model...], got 'a,,b'");
	bad_setting("MCPGW_LOCAL_EMBEDDING_MODELS", "my model",
		    "MCPGW_LOCAL_EMBEDDING_MODELS: expected model[,model...], got 'my model'");
	bad_setting("MCPGW_LOCAL_EMBEDDING_MODELS", "a=b",
		    "MCPGW_LOCAL_EMBEDDING_MODELS: expected model[,model...], got 'a=b'");
	bad_setting("MCPGW_LOCAL_EMBEDDING_MODELS", "a,b, a", "MCPGW_LOCAL_EMBEDDING_MODELS: model 'a' is given twice");
	memset(big, 'm', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	bad_setting("MCPGW_LOCAL_EMBEDDING_MODELS", big,
		    "MCPGW_LOCAL_EMBEDDING_MODELS: expected at most 4095 bytes, got 4999 bytes");
	/* the longest value as one name, and as many one-letter names */
	big[4095] = '\0';
	good_setting("MCPGW_LOCAL_EMBEDDING_MODELS", big, &s);
	assert_int_equal(strlen(settings_local_embedding_model_at(&s, 0)), 4095);
	for (n = 0, o = 0; o + 5 < 4095; n++)
		o += (size_t)snprintf(big + o, sizeof big - o, "%s%03zx", n ? "," : "", n);
	good_setting("MCPGW_LOCAL_EMBEDDING_MODELS", big, &s);
	assert_string_equal(settings_local_embedding_model_at(&s, n - 1), big + o - 3);
	assert_null(settings_local_embedding_model_at(&s, n));
}

static void test_parse_numbers(void **state)
{
	long v;

	(void)state;
	assert_int_equal(settings_parse_long("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(settings_parse_long("+7", 0, 100, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(settings_parse_long("-7", -10, 100, &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(settings_parse_long("", 0, 100, &v), -1);
	assert_int_equal(settings_parse_long(NULL, 0, 100, &v), -1);
	assert_int_equal(settings_parse_long("+", 0, 100, &v), -1);
	assert_int_equal(settings_parse_long("101", 0, 100, &v), -1);
	assert_int_equal(settings_parse_long("9223372036854775808", 0, LONG_MAX, &v), -1);
	assert_int_equal(settings_parse_long("9223372036854775807", 0, LONG_MAX, &v), 0);
	assert_int_equal(v, LONG_MAX);
	assert_int_equal(settings_parse_seconds("0.5", 0, 100000, &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(settings_parse_seconds(".25", 0, 100000, &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(settings_parse_seconds("60", 0, 100000, &v), 0);
	assert_int_equal(v, 60000);
	assert_int_equal(settings_parse_seconds("1.0005", 0, 100000, &v), 0);
	assert_int_equal(v, 1001);
	assert_int_equal(settings_parse_seconds("1.00049", 0, 100000, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(settings_parse_seconds("0.001", 1, 100000, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(settings_parse_seconds("0.0004", 1, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds("1.", 0, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds(".", 0, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds("", 0, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds("+1", 0, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds("1s", 0, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds("1.5.", 0, 100000, &v), -1);
	assert_int_equal(settings_parse_seconds("99999999999999999999999", 0, LONG_MAX, &v), -1);
	assert_int_equal(settings_parse_seconds(NULL, 0, 100000, &v), -1);
}

/* row_long: the INT, BOOL or ENUM field of row r in s */
static long row_long(const struct settings *s, const struct settings_row *r)
{
	const char *f = (const char *)s + r->off;

	switch (r->ctype) {
	case SETTINGS_C_INT: return *(const int *)(const void *)f;
	case SETTINGS_C_LONG: return *(const long *)(const void *)f;
	case SETTINGS_C_SIZE: return (long)*(const size_t *)(const void *)f;
	default: fail_msg("%s: not a number field", r->name);
	}
	return 0;
}

/* the table's own rules: names, defaults in bounds, fields of the right type, docs fit a markdown cell */
static void test_table_rows(void **state)
{
	(void)state;
	assert_true(settings_count >= 40);
	for (size_t i = 0; i < settings_count; i++) {
		const struct settings_row *r = &settings_rows[i];
		long v;

		for (const char *p = r->name; *p; p++)
			if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
				fail_msg("row %zu: bad name '%s'", i, r->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(settings_rows[j].name, r->name) == 0)
				fail_msg("%s: two rows", r->name);
		assert_ptr_equal(settings_find(r->name), r);
		if (!r->doc || !r->doc[0] || strchr(r->doc, '|') || strchr(r->doc, '[') || strchr(r->doc, '\n'))
			fail_msg("%s: doc must be one line without '|' or a link", r->name);
		if ((r->more && (strchr(r->more, '|') || strchr(r->more, '\n'))) ||
		    (r->def_doc && strchr(r->def_doc, '|')))
			fail_msg("%s: more and def_doc must not hold '|' or a newline", r->name);
		if (!r->readers)
			fail_msg("%s: read by nobody", r->name);
		if ((r->def == NULL) == (r->def_fn == NULL))
			fail_msg("%s: one of def and def_fn", r->name);
		if (r->def_fn && !r->def_doc)
			fail_msg("%s: a computed default needs def_doc", r->name);
		if (r->kind == SETTINGS_INT && (r->min > r->max || (r->ctype == SETTINGS_C_SIZE && r->min < 0) ||
						(r->ctype == SETTINGS_C_INT && r->max > INT_MAX)))
			fail_msg("%s: bounds %ld..%ld do not fit its field", r->name, r->min, r->max);
		if ((r->kind == SETTINGS_STRING || r->kind == SETTINGS_PATH) && r->off != SETTINGS_NOFIELD &&
		    r->ctype != SETTINGS_C_CHARS)
			fail_msg("%s: a text row fills a char array", r->name);
		if ((r->kind == SETTINGS_ENUM || r->kind == SETTINGS_BOOL) && (!r->words || !r->words[0].word))
			fail_msg("%s: no words", r->name);
		if (r->kind != SETTINGS_STRING && r->kind != SETTINGS_PATH && r->off != SETTINGS_NOFIELD &&
		    r->ctype == SETTINGS_C_CHARS)
			fail_msg("%s: a number row fills a number", r->name);
		if (r->flags & SETTINGS_SECRET && r->kind != SETTINGS_STRING)
			fail_msg("%s: secrets are text", r->name);
		/* a written default parses and is within bounds ("$NAME/..." after expansion: below) */
		if (r->def && r->def[0] != '$' && settings_parse_value(r, r->def, &v) < 0)
			fail_msg("%s: its default '%s' is not one of its values", r->name, r->def);
		if (r->def && r->def[0] == '$') {
			const struct settings_row *ref;
			char name[64];
			size_t n = strspn(r->def + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

			assert_true(n > 0 && n < sizeof name);
			memcpy(name, r->def + 1, n);
			name[n] = '\0';
			ref = settings_find(name);
			if (!ref || ref >= r || ref->ctype != SETTINGS_C_CHARS)
				fail_msg("%s: default %s names no earlier text row", r->name, r->def);
		}
	}
}

/* every row loads its default: the field holds the default's value */
static void test_table_defaults(void **state)
{
	struct settings s;
	char def[8192], text[512];

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	for (size_t i = 0; i < settings_count; i++) {
		const struct settings_row *r = &settings_rows[i];
		long v;

		/* documented the way README and --help show it */
		assert_non_null(settingsdoc_default_text(r, text, sizeof text));
		assert_true(text[0] && !strchr(text, '`'));
		if (r->off == SETTINGS_NOFIELD || getenv(r->name)) /* MCPGW_HOME: set for the test */
			continue;
		if (settings_default_value(r, &s, def, sizeof def, err, sizeof err) < 0)
			fail_msg("%s: %s", r->name, err);
		if (r->kind == SETTINGS_STRING || r->kind == SETTINGS_PATH) {
			const char *f = (const char *)&s + r->off;

			if (r->kind == SETTINGS_PATH && def[0] && def[0] != '/') /* relative: under MCPGW_HOME */
				assert_true(strncmp(f, home, strlen(home)) == 0 && strcmp(f + strlen(home) + 1, def) == 0);
			else if (strcmp(f, def) != 0)
				fail_msg("%s: loaded '%s', default '%s'", r->name, f, def);
			continue;
		}
		if (settings_parse_value(r, def, &v) < 0)
			fail_msg("%s: default '%s' not one of its values", r->name, def);
		if (row_long(&s, r) != v)
			fail_msg("%s: loaded %ld, default %ld", r->name, row_long(&s, r), v);
	}
}

/* ms as the seconds text a user writes */
static void fmt_seconds(char *dst, size_t n, long ms)
{
	snprintf(dst, n, "%ld.%03ld", ms / 1000, ms % 1000);
}

/* every bound of every number row: the bound loads, one past it fails with
 * the one wording; every enum takes its words in any case and nothing else */
static void test_table_bounds(void **state)
{
	struct settings s;
	char v[64], want[512], expect[256];

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	for (size_t i = 0; i < settings_count; i++) {
		const struct settings_row *r = &settings_rows[i];
		long bad[2], ok[2] = { r->min, r->max };

		if (r->off == SETTINGS_NOFIELD)
			continue;
		settings_expect(r, expect, sizeof expect);
		if (r->kind == SETTINGS_ENUM || r->kind == SETTINGS_BOOL) {
			for (const struct settings_word *w = r->words; w->word; w++) {
				snprintf(v, sizeof v, "%s", w->word);
				v[0] = (char)toupper((unsigned char)v[0]);
				good_setting(r->name, v, &s);
				assert_int_equal(row_long(&s, r), w->value);
			}
			snprintf(want, sizeof want, "%s: expected %s, got 'sometimes'", r->name, expect);
			bad_setting(r->name, "sometimes", want);
			continue;
		}
		if (r->kind != SETTINGS_INT)
			continue;
		bad[0] = r->unit == SETTINGS_SECONDS ? r->min - 1 : r->min - 1;
		bad[1] = r->unit == SETTINGS_SECONDS ? r->max + 1 : r->max + 1;
		for (int k = 0; k < 2; k++) {
			if (r->unit == SETTINGS_SECONDS)
				fmt_seconds(v, sizeof v, ok[k]);
			else
				snprintf(v, sizeof v, "%ld", ok[k]);
			good_setting(r->name, v, &s);
			assert_int_equal(row_long(&s, r), ok[k]);
			if (bad[k] < 0 && r->unit == SETTINGS_SECONDS)
				snprintf(v, sizeof v, "-1"); /* seconds are written without a sign */
			else if (r->unit == SETTINGS_SECONDS)
				fmt_seconds(v, sizeof v, bad[k]);
			else
				snprintf(v, sizeof v, "%ld", bad[k]);
			snprintf(want, sizeof want, "%s: expected %s, got '%s'", r->name, expect, v);
			bad_setting(r->name, v, want);
		}
	}
}

/* secrets: never in an error, nor in the printed table, whatever the value */
static void test_table_secrets(void **state)
{
	struct settings s;
	char big[3000], *out = NULL;
	size_t outlen = 0, nsecret = 0;
	FILE *f;

	(void)state;
	assert_int_equal(setenv("MCPGW_HOME", home, 1), 0);
	memset(big, '-', sizeof big);
	for (size_t i = 0; i + 10 < sizeof big; i += 10)
		memcpy(big + i, "TOPSECRET-", 10);
	big[sizeof big - 1] = '\0';
	for (size_t i = 0; i < settings_count; i++) {
		const struct settings_row *r = &settings_rows[i];

		if (!(r->flags & SETTINGS_SECRET))
			continue;
		nsecret++;
		settings_bad(r, "sk-TOPSECRET", err, sizeof err);
		assert_null(strstr(err, "TOPSECRET"));
		assert_non_null(strstr(err, r->name));
		assert_int_equal(setenv(r->name, big, 1), 0);
		assert_int_equal(settings_load(&s, err, sizeof err), -1);
		assert_null(strstr(err, "TOPSECRET"));
		assert_non_null(strstr(err, r->name));
		/* a value every secret takes (MCPGW_API_KEYS wants keys of 16 characters or more) */
		assert_int_equal(setenv(r->name, "sk-TOPSECRET-0123456789", 1), 0);
	}
	assert_true(nsecret >= 2); /* OPENAI_API_KEY, EMBEDDING_API_KEY */
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	assert_int_equal(settingsdoc_print(f, SETTINGSDOC_TEXT), 0);
	assert_int_equal(settingsdoc_print(f, SETTINGSDOC_MARKDOWN), 0);
	assert_int_equal(fclose(f), 0);
	assert_null(strstr(out, "TOPSECRET"));
	assert_non_null(strstr(out, "OPENAI_API_KEY"));
	free(out);
}

/* settings_env_long: one row from the environment alone, its default, the one wording */
static void test_table_env_long(void **state)
{
	long v;

	(void)state;
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_ROWS", &v, err, sizeof err), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(setenv("MCP_SQLITE_MAX_ROWS", "", 1), 0);
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_ROWS", &v, err, sizeof err), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(setenv("MCP_SQLITE_MAX_ROWS", "7", 1), 0);
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_ROWS", &v, err, sizeof err), 0);
	assert_int_equal(v, 7);
	assert_int_equal(setenv("MCP_SQLITE_MAX_ROWS", "0", 1), 0);
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_ROWS", &v, err, sizeof err), -1);
	assert_string_equal(err, "MCP_SQLITE_MAX_ROWS: expected an integer 1..10000000, got '0'");
	assert_int_equal(unsetenv("MCP_SQLITE_MAX_ROWS"), 0);
	/* the SQLite server's bounds on one value, a result and its heap (issue 15 case 4) */
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_VALUE_BYTES", &v, err, sizeof err), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_RESULT_BYTES", &v, err, sizeof err), 0);
	assert_int_equal(v, 8388608);
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_HEAP_BYTES", &v, err, sizeof err), 0);
	assert_int_equal(v, 33554432);
	assert_int_equal(setenv("MCP_SQLITE_MAX_HEAP_BYTES", "1048575", 1), 0);
	assert_int_equal(settings_env_long("MCP_SQLITE_MAX_HEAP_BYTES", &v, err, sizeof err), -1);
	assert_string_equal(err, "MCP_SQLITE_MAX_HEAP_BYTES: expected an integer 1048576..17179869184, got '1048575'");
	assert_int_equal(unsetenv("MCP_SQLITE_MAX_HEAP_BYTES"), 0);
	assert_int_equal(settings_env_long("MCPGW_LOG_LEVEL", &v, err, sizeof err), 0);
	assert_int_equal(v, LOGL_INFO);
	assert_int_equal(settings_env_long("DEFAULT_MODEL", &v, err, sizeof err), -1);
	assert_string_equal(err, "DEFAULT_MODEL: not an integer setting");
	assert_int_equal(settings_env_long("NO_SUCH_SETTING", &v, err, sizeof err), -1);
}

/* names that look like settings in the sources but are none */
static const char *const not_settings[] = {
	"MCPGW_VERSION", /* lib/core/version.h */
	"MCPGW_SYSCONF",
	"MCPGW_STATEDIR", /* lib/core/buildconf.h: the install paths compiled in */
	/* deploy/mcpgwctl: the Define names of deploy/apache/\*.conf it fills in */
	"MCPGW_ROOT",
	"MCPGW_STATE",
	"MCPGW_SOCKETS",
	"MCPGW_CONFDIR",
	"MCPGW_MODULES",
	"MCPGW_GROUP",
	"MCPGW_PATH",
	"MCPGW_FCGID",
	"MCPGW_PROXY_FCGI",
	"MCPGW_CGI",
	"MCPGW_BODY_LIMIT",
	"MCPGW_FCGID_REQUEST_LEN",
	/* FastCGI parameters the shipped web server configs set (mod_fcgid, lighttpd), never a request's */
	"MCPGW_NO_CONTENT_LENGTH",
	"MCPGW_BODY_TOO_LARGE",
	"MCPGW_BODY_BUFFERED",
	NULL,
};

/* scan_names: every MCPGW_[A-Z0-9_]* token (not inside a longer name) of the
 * file at path without a row or a place in not_settings: reported, counted */
static size_t scan_names(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096], name[128];
	size_t missing = 0;

	assert_non_null(f);
	while (fgets(line, sizeof line, f)) {
		for (char *p = line; (p = strstr(p, "MCPGW_")); p++) {
			size_t n = 6 + strspn(p + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
			int known = 0;

			if ((p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) || n >= sizeof name ||
			    p[n - 1] == '_')
				continue; /* inside a longer name, or a prefix ("MCPGW_*") */
			memcpy(name, p, n);
			name[n] = '\0';
			if (n > 2 && strcmp(name + n - 2, "_H") == 0)
				continue; /* an include guard */
			for (int i = 0; not_settings[i]; i++)
				known |= strcmp(not_settings[i], name) == 0;
			if (!known && !settings_find(name)) {
				print_error("%s: %s: no row in lib/core/settings.c, nor in not_settings\n", path, name);
				missing++;
			}
		}
	}
	fclose(f);
	return missing;
}

/* every MCPGW_ name the programs and mcpgwctl use is a setting with a row, or a named non-setting */
static void test_table_covers_sources(void **state)
{
	static const char *const dirs[] = { "lib/core", "lib/mcp", "lib/openai", "lib/http",          "broker",
					    "cgi-bin",  "chat",    "mcp-client", "mcp-server-sqlite", NULL };
	char path[PATH_MAX];
	size_t missing = 0, files = 0;

	(void)state;
	for (int i = 0; dirs[i]; i++) {
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof path, "%s/%s", MCPGW_SRC_ROOT, dirs[i]);
		d = opendir(path);
		if (!d)
			continue; /* a side that does not exist (yet) */
		while ((e = readdir(d))) {
			size_t n = strlen(e->d_name);

			if (n < 3 || (strcmp(e->d_name + n - 2, ".c") != 0 && strcmp(e->d_name + n - 2, ".h") != 0))
				continue;
			snprintf(path, sizeof path, "%s/%s/%s", MCPGW_SRC_ROOT, dirs[i], e->d_name);
			missing += scan_names(path);
			files++;
		}
		closedir(d);
	}
	snprintf(path, sizeof path, "%s/deploy/mcpgwctl", MCPGW_SRC_ROOT);
	missing += scan_names(path);
	assert_true(files > 50);
	assert_int_equal(missing, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dotenv_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotenv_env_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotenv_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotenv_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_home_default_install, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_dotenv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_and_env_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chat_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_tools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broker_autostart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embedding_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_browser_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_env_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_covers_sources, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
