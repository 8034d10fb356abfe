/* test_settings.c: unit tests for .env loading and MCPGW_* settings (lib/settings.c). */
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
#include "core/settings.h"

static const char *const vars[] = {
	"MCPGW_HOME", "MCPGW_ENV_FILE", "MCPGW_CONFIG", "MCPGW_STATE_DIR", "MCPGW_BROKER_SOCKET",
	"MCPGW_LOG_FILE", "MCPGW_LOG_LEVEL", "MCPGW_LISTEN", "MCPGW_MAX_BODY_BYTES",
	"MCPGW_MAX_JSON_DEPTH", "MCPGW_MAX_MESSAGE_BYTES", "MCPGW_TOOL_TIMEOUT", "MCPGW_TOOL_RETRIES",
	"MCPGW_INIT_TIMEOUT", "MCPGW_RESTART_BACKOFF_MAX", "MCPGW_MAX_CLIENTS", "MCPGW_BROKER_TIMEOUT",
	"MCPGW_BROKER_AUTOSTART", "MCPGW_STARTUP_WAIT",
	"OPENAI_API_KEY", "OPENAI_BASE_URL", "DEFAULT_MODEL",
	"MCPGW_UPSTREAM_CONNECT_TIMEOUT", "MCPGW_UPSTREAM_TIMEOUT", "MCPGW_UPSTREAM_RETRIES",
	"MCPGW_UPSTREAM_RETRY_MAX_WAIT", "MCPGW_MAX_RESPONSE_BYTES", "MCPGW_MAX_TOOL_ROUNDS",
	"MCPGW_MAX_TOOL_OUTPUT_BYTES", "MCPGW_INJECT_TOOLS", "MCPGW_MODELS_CACHE_TTL", "MCPGW_SESSION_TTL",
	"MCPGW_STATE_STORE", "MCPGW_STATE_STORE_TIMEOUT", "MCPGW_CHAT_THREADS", "MCPGW_MODEL_ALIASES", "EMBEDDING_API_KEY", "EMBEDDING_BASE_URL",
	"MCPGW_EMBEDDING_MAX_INPUTS", "MCPGW_EMBEDDING_MAX_INPUT_BYTES", "MCPGW_LOCAL_EMBEDDING_MODELS",
	"T_A", "T_B", "T_C", "T_D", "T_E", "T_F", "T_G", "T_H", "T_I", "T_J", "T_K", "T_L", "T_M",
	"T_N", "T_O", "T_P", "T_Q", "T_R", "export", NULL
};

static char err[1024];
static char home[PATH_MAX]; /* a fresh temp dir per test */

static int setup(void **state)
{
	(void)state;
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
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
	static const char env[] =
		"# a comment\n"
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
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), 0);
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
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), 0);
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
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), -1);
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
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), -1);
	assert_non_null(strstr(err, ":2: NUL byte in line"));
	assert_null(getenv("T_A"));
}

static void test_dotenv_files(void **state)
{
	char path[PATH_MAX + 16], want[PATH_MAX + 64];
	char *big;

	(void)state;
	snprintf(path, sizeof path, "%s/missing.env", home);
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), 0);
	/* a directory is unreadable */
	assert_int_equal(settings_load_dotenv(home, err, sizeof err), -1);
	assert_non_null(strstr(err, home));

	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '#', 1024 * 1024 + 1);
	big[1023] = '\n';
	memcpy(big + 1024, "T_A=big\n", 8);
	write_file(".env", big, 1024 * 1024, path, sizeof path);
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), 0);
	assert_env("T_A", "big");
	unsetenv("T_A");
	write_file(".env", big, 1024 * 1024 + 1, path, sizeof path);
	assert_int_equal(settings_load_dotenv(path, err, sizeof err), -1);
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
	assert_int_equal(s.max_clients, 512);
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
	static const char env[] =
		"MCPGW_STATE_DIR=state\n"
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
	bad_setting("DEFAULT_MODEL", big, "DEFAULT_MODEL: too long (4999 bytes, at most 255)");
	bad_setting("MCPGW_LISTEN", big, "MCPGW_LISTEN: too long (4999 bytes, at most 255)");
	big[0] = '/';
	bad_setting("MCPGW_STATE_DIR", big, "MCPGW_STATE_DIR: too long (4999 bytes, at most 4095)");
	big[0] = 'a';
	big[4090] = '\0'; /* fits alone, not joined with home */
	assert_int_equal(setenv("MCPGW_CONFIG", big, 1), 0);
	assert_int_equal(settings_load(&s, err, sizeof err), -1);
	assert_non_null(strstr(err, "MCPGW_CONFIG: path too long"));
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
	bad_setting("MCPGW_MODEL_ALIASES", "a= ", "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'a= '");
	bad_setting("MCPGW_MODEL_ALIASES", "a=b=c",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'a=b=c'");
	bad_setting("MCPGW_MODEL_ALIASES", "my model=x",
		    "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got 'my model=x'");
	bad_setting("MCPGW_MODEL_ALIASES", "a=b,a=c", "MCPGW_MODEL_ALIASES: alias 'a' is given twice");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[1] = '=';
	bad_setting("MCPGW_MODEL_ALIASES", big, "MCPGW_MODEL_ALIASES: too long (4999 bytes, at most 4095)");
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
	bad_setting("MCPGW_EMBEDDING_MAX_INPUTS", "0", "MCPGW_EMBEDDING_MAX_INPUTS: expected an integer 1..65536, got '0'");
	bad_setting("MCPGW_EMBEDDING_MAX_INPUTS", "65537",
		    "MCPGW_EMBEDDING_MAX_INPUTS: expected an integer 1..65536, got '65537'");
	good_setting("MCPGW_EMBEDDING_MAX_INPUT_BYTES", "16777216", &s);
	assert_int_equal(s.embedding_max_input_bytes, 16777216);
	bad_setting("MCPGW_EMBEDDING_MAX_INPUT_BYTES", "15",
		    "MCPGW_EMBEDDING_MAX_INPUT_BYTES: expected an integer 16..16777216, got '15'");

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
		    "MCPGW_LOCAL_EMBEDDING_MODELS: too long (4999 bytes, at most 4095)");
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
