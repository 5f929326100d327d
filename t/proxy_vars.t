#!/usr/bin/perl
# proxy_pass with variables (nginx's rules): evaluated per request; with a
# URI part the evaluated URI replaces the whole request URI ($request_uri
# passes the client's target as is), without one the usual rules apply; the
# host may be an address (a variable port choosing one of two upstreams) or
# a name a literal proxy_pass uses (an upstream{}); any other host name is
# refused with 502 and nginx's "no resolver defined" line. $proxy_host
# follows the evaluated host. The upstreams are two more portico instances
# that say who they are and what they got.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin free_port);

need_bin();
my @up = map { Test::Portico->new } 1 .. 2;
for my $i (0, 1) {
    my $n = $i + 1;
    $up[$i]->conf(<<"CONF");
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "up$n uri=\$request_uri host=\$http_host\\n"; }
    }
CONF
    $up[$i]->start;
}
my ($P1, $P2) = map { $_->port } @up;
my $s = Test::Portico->new;
my $closed = free_port($P1, $P2, $s->port);
$s->conf(<<"CONF");
    upstream second {
        server 127.0.0.1:$P2;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        location /ru/ { proxy_pass http://127.0.0.1:$P1\$request_uri; }
        location /only/ { proxy_pass http://\$arg_h/fixed; }
        location /sel/ { proxy_pass http://127.0.0.1:\$arg_backend; }
        location /name/ { proxy_pass http://\$arg_up; }
        location /static/ { proxy_pass http://second; }
        location /ph/ { proxy_pass http://\$arg_h; }
    }
CONF
$s->start;

sub get { $s->get($_[0], -timeout => 10) }
sub body { my $r = get($_[0]); $r->{status} == 200 ? $r->{body} : "status $r->{status}" }

like body('/ru/a%41b/../c?x=1&y=2'), qr{^up1 uri=/ru/a%41b/\.\./c\?x=1&y=2 },
    '$request_uri in the URI part: the client\'s target as sent, args included';
like body("/only/z?h=127.0.0.1:$P1"), qr{^up1 uri=/fixed host=},
    'a URI part with variables replaces the whole request URI (args not added)';

like body("/sel/x?backend=$P1"), qr{^up1 uri=/sel/x\?backend=$P1 }, '$arg_backend selects the first upstream';
like body("/sel/x?backend=$P2"), qr{^up2 uri=/sel/x\?backend=$P2 }, '... and the second';
like body("/sel/x?backend=$P1"), qr{^up1 }, '... per request';

like body("/name/q?up=second"), qr{^up2 uri=/name/q\?up=second }, 'a name: the upstream{} a literal proxy_pass uses';
like body("/name/q?up=127.0.0.1:$P1"), qr{^up1 uri=/name/q\?up=127\.0\.0\.1:$P1 }, 'an address through the same location';
like body("/ph/?h=127.0.0.1:$P1"), qr{host=127\.0\.0\.1:$P1\n}, 'Host is the evaluated $proxy_host';

my $r = get('/name/q?up=unknown.example');
is $r->{status}, 502, 'a host name without a resolver: 502';
like $s->error_log, qr/no resolver defined to resolve unknown\.example/, '... logged as nginx does';
$r = get('/name/q?up=unknown.example:8080');
is $r->{status}, 502, 'a host name with a port: 502 too';

$r = get("/sel/x?backend=$closed");
is $r->{status}, 502, 'a refused address: 502';
like $s->error_log, qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream/,
    '... logged with the reason';

$r = get('/name/q?up=a@b');
is $r->{status}, 500, 'an evaluated host that is not a host: 500';
like $s->error_log, qr/invalid host in proxy_pass: "http:\/\/a\@b"/, '... logged';
$r = get('/sel/x?backend=1%0d%0aX:%20y');
is $r->{status}, 500, 'escaped CR LF in a variable port: refused, nothing injected';

unlike $s->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log';
done_testing;
