#!/usr/bin/perl
# Issue 6, acceptance 2: every malformed or ambiguous request of the HTTP
# issue's table (t/http_smuggling.t), sent to a location that proxies to an
# HTTP upstream: each is refused by our parser, and the upstream never sees
# more requests than the client validly sent.
use strict;
use warnings;
use FindBin;
$ENV{PORTICO_SMUGGLING_VIA_PROXY} = 1;
do "$FindBin::Bin/http_smuggling.t";
die $@ if $@;
