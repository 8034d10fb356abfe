/* options.c: the sanitizer runtimes' default options, linked into every program of `make check-asan`'s build. */
/*
 * The runtimes read these before ASAN_OPTIONS, UBSAN_OPTIONS and LSAN_OPTIONS
 * (which still win, key by key). They are compiled in rather than passed in
 * the environment because most of the processes the tests start never see the
 * test's environment: lighttpd gives its FastCGI responders a fixed one
 * (bin-environment), Apache's mod_fcgid and mod_cgid likewise, and the broker
 * gives a stdio MCP server only the few variables of transport_stdio.c. Every
 * report goes to MCPGW_SANITIZE_LOG.<pid> (a directory of the build tree,
 * Makefile: check-asan), which tests/check.sh looks at after the run: a file
 * there fails the sanitizer stage, naming it. Built with clang, whose one
 * runtime takes log_path for UBSan too; gcc 12's separate libubsan ignores
 * the log_path of __ubsan_default_options and writes to stderr.
 */

#ifndef MCPGW_SANITIZE_LOG
#error "build with -DMCPGW_SANITIZE_LOG='\"/dir/report\"' (Makefile, SANITIZE=1)"
#endif

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__lsan_default_options(void);

/* __asan_default_options: AddressSanitizer's (and LeakSanitizer's, with it):
 * a leak check at exit, the first error ends the process (abort: the web
 * server and the tests see it die), reports to the log. Static string. */
const char *__asan_default_options(void)
{
	return "detect_leaks=1:halt_on_error=1:abort_on_error=1:disable_coredump=1:"
	       "detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:"
	       "log_path=" MCPGW_SANITIZE_LOG;
}

/* __ubsan_default_options: UndefinedBehaviorSanitizer's (the build has
 * -fno-sanitize-recover=undefined: the first report ends the process). */
const char *__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=" MCPGW_SANITIZE_LOG;
}

/* __lsan_default_options: LeakSanitizer's at exit (reports with ASan's). */
const char *__lsan_default_options(void)
{
	return "report_objects=1:log_path=" MCPGW_SANITIZE_LOG;
}
