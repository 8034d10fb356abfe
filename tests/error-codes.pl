#!/usr/bin/perl
# error-codes.pl: the OpenAI error codes the gateway's C sources can send, one per line, sorted: the
# "code" argument of every error builder (oai_send_error, wire_error, wire_errorf, tl_error,
# bad_request, send_broker_failure, send_down) and every `code = "..."` assignment.
#   perl tests/error-codes.pl FILE.c...
# Used by tests/blackbox/docs.bats: each must be in README.md's Errors table.
use strict;
use warnings;

my $arg = qr/(?:"(?:[^"\\]|\\.)*"|[^,"()]|\((?:[^()]|\([^()]*\))*\))+/;    # one C argument (strings, calls)
my %codes;
for my $f (@ARGV) {
	open(my $fh, '<', $f) or die "$f: $!\n";
	local $/;
	my $src = <$fh>;
	close $fh;
	$src =~ s{/\*.*?\*/}{}gs;                                                    # comments out
	my @pats = (
		qr/\boai_send_error\s*\(\s*$arg,\s*$arg,\s*$arg,\s*"([a-z][a-z_]*)"/,
		qr/\bwire_errorf\s*\(\s*$arg,\s*$arg,\s*"([a-z][a-z_]*)"/,
		qr/\bwire_error\s*\(\s*$arg,\s*$arg,\s*$arg,\s*"([a-z][a-z_]*)"/,
		qr/\btl_error\s*\(\s*$arg,\s*$arg,\s*$arg,\s*"([a-z][a-z_]*)"/,
		qr/\bbad_request\s*\(\s*$arg,\s*$arg,\s*"([a-z][a-z_]*)"/,
		qr/\bsend_broker_failure\s*\(\s*$arg,\s*$arg,\s*$arg,\s*"([a-z][a-z_]*)"/,
		qr/\bsend_down\s*\(\s*$arg,\s*$arg,\s*(?:$arg\?\s*)?"([a-z][a-z_]*)"(?:\s*:\s*"([a-z][a-z_]*)")?/,
		qr/\bcode\s*=\s*"([a-z][a-z_]*)"/,
	);
	for my $p (@pats) {
		while ($src =~ /$p/g) {
			$codes{$1} = 1;
			$codes{$2} = 1 if defined $2;
		}
	}
}
print "$_\n" for sort keys %codes;
