#!/usr/bin/perl
# fastcgi_pass against Go's net/http/fcgi (t/peers/fcgi_app.go, built here)
# and build/peers/fcgi_hello: the params a non-PHP app gets, bodies both
# ways, a slow answer, and connection reuse: with an upstream `keepalive`
# and `fastcgi_keep_conn on`, N requests travel over M << N backend
# connections (counted by the peers themselves); without, one each.
# Multiplexing (fastcgi_multiplex) is tested in t/fastcgi_multiplex.t.
use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_hex);
use Test::Portico qw(parse_response need_bin wait_for);
use Test::Portico::Peers qw(need_tool);

need_bin();
need_tool('Go FastCGI tests', 'go');

my $s = Test::Portico->new;
my $go = eval { Test::Portico::Peers->go_app($s, name => 'goapp') };
if (!$go) {
    # go is installed: a responder that does not build or start is a failure
    plan tests => 1;
    fail("build and start t/peers/fcgi_app.go");
    diag $@;
    exit 1;
}
my $hello = Test::Portico::Peers->fcgi_hello($s, name => 'hello');
my $go_port = ($go->addr =~ /:(\d+)$/)[0];

$s->conf(<<"CONF");
    upstream go_keep {
        server ${\ $go->addr};
        keepalive 4;
    }
    upstream hello_keep {
        server ${\ $hello->addr};
        keepalive 4;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        client_max_body_size 32m;
        include %%CONF%%/fastcgi.conf;
        fastcgi_read_timeout 20s;
        location / {
            fastcgi_pass go_keep;
            fastcgi_keep_conn on;
        }
        location /hello {
            fastcgi_pass hello_keep;
            fastcgi_keep_conn on;
        }
    }
    # the same backends, one connection per request (nginx's default)
    server {
        listen 127.0.0.1:%%PORT2%%;
        server_name localhost;
        root %%ROOT%%/html;
        include %%CONF%%/fastcgi.conf;
        location / { fastcgi_pass ${\ $go->addr}; }
        location /hello { fastcgi_pass ${\ $hello->addr}; }
    }
CONF
$s->start;
my @workers = @{ $s->wait_workers(1) || [] };

sub get_at {
    my ($port, $path, %h) = @_;
    my ($r) = parse_response($s->http(Test::Portico::_request_text('GET', $path, %h), port => $port, timeout => 20));
    return $r // { status => 0, body => '', headers => {} };
}

sub post_at {
    my ($port, $path, $body, %h) = @_;
    my ($r) = parse_response($s->http(Test::Portico::_request_text('POST', $path, -body => $body, %h),
        port => $port, timeout => 30));
    return $r // { status => 0, body => '', headers => {} };
}

sub lines_of {
    my %e;
    for (split /\n/, shift->{body} // '') { $e{$1} = $2 if /^(PARAM \S+?|HEADER \S+?|\w+)=(.*)$/ }
    return \%e;
}

# ---- params and bodies with a non-PHP app
my $r = get_at($s->port, '/echo/x?a=1&b=2', 'X-Test' => 'go');
is $r->{status}, 200, 'GET /echo through the Go responder';
my $e = lines_of($r);
# net/http/fcgi turns the standard params into the http.Request and keeps
# only the others in ProcessEnv: both views are checked
is $e->{URI}, '/echo/x?a=1&b=2', 'REQUEST_URI reached net/http';
is $e->{QUERY}, 'a=1&b=2', 'QUERY_STRING reached net/http';
is $e->{METHOD}, 'GET', 'REQUEST_METHOD reached net/http';
is $e->{HOST}, 'localhost', 'HTTP_HOST reached net/http';
like $e->{REMOTE}, qr/^127\.0\.0\.1:\d+$/, 'REMOTE_ADDR and REMOTE_PORT reached net/http';
is $e->{'PARAM SCRIPT_FILENAME'}, $s->dir . '/html/echo/x', 'SCRIPT_FILENAME param';
is $e->{'PARAM DOCUMENT_URI'}, '/echo/x', 'DOCUMENT_URI param';
is $e->{'PARAM GATEWAY_INTERFACE'}, 'CGI/1.1', 'GATEWAY_INTERFACE param';
is $e->{'PARAM SERVER_NAME'}, 'localhost', 'SERVER_NAME param';
is $e->{'HEADER X-Test'}, 'go', 'request header reaches the app';
is $e->{BODY_LEN}, 0, 'no body on GET';

my $body = join '', map { chr(($_ * 7 + 3) % 256) } 0 .. 65535;
$body x= 40;    # 2.5 MiB, not a multiple of a record
$body .= 'tail';
$r = post_at($s->port, '/echo', $body, 'Content-Type' => 'application/octet-stream');
is $r->{status}, 200, 'POST 2.5 MiB to the Go responder';
$e = lines_of($r);
is $e->{CONTENT_LENGTH}, length $body, 'CONTENT_LENGTH reached net/http';
is $e->{BODY_LEN}, length $body, 'the app read the whole body';
is $e->{BODY_MD5}, md5_hex($body), 'body intact';

$r = get_at($s->port, '/big?mib=10');
is $r->{status}, 200, '10 MiB from the Go responder';
my $expect = join '', map { (chr(65 + $_ % 26) . '0123456') x 8192 } 0 .. 159;
is length $r->{body}, length $expect, '10 MiB received';
is md5_hex($r->{body}), md5_hex($expect), '10 MiB intact';

$r = get_at($s->port, '/slow?ms=300');
is $r->{status}, 200, 'a slow answer within fastcgi_read_timeout';
is $r->{body}, "slow done\n", 'slow body';

# ---- keep-alive: N requests over M << N connections
my $N = 30;
for my $case ([ 'Go net/http/fcgi', $go, '/echo' ], [ 'fcgi_hello', $hello, '/hello' ]) {
    my ($name, $peer, $path) = @$case;
    # let the previous requests' connections settle in the pool
    my $before = $peer->accepted;
    my $ok = 0;
    for my $i (1 .. $N) {
        my $x = get_at($s->port, "$path?i=$i");
        $ok++ if $x->{status} == 200;
    }
    is $ok, $N, "$name keepalive: $N requests, all 200";
    my $used = $peer->accepted - $before;
    cmp_ok $used, '<=', 2, "$name keepalive: $N requests over $used new backend connection(s)";

    # and a client keep-alive connection: several requests, one backend conn
    $before = $peer->accepted;
    my $raw = $s->http(join('', map { "GET $path?k=$_ HTTP/1.1\r\nHost: localhost\r\n\r\n" } 1 .. 5),
        responses => 5, timeout => 20);
    my @rs = parse_response($raw);
    is scalar(grep { $_->{status} == 200 } @rs), 5, "$name: 5 pipelined client requests answered";
    cmp_ok $peer->accepted - $before, '<=', 1, "$name: pipelined requests reused a pooled connection";

    # the control: without keep_conn every request is a new connection
    $before = $peer->accepted;
    $ok = 0;
    for my $i (1 .. 5) {
        my $x = get_at($s->port2, "$path?i=$i");
        $ok++ if $x->{status} == 200;
    }
    is $ok, 5, "$name without keep_conn: 5 requests, all 200";
    ok wait_for(5, sub { $peer->accepted - $before == 5 }), "$name without keep_conn: 5 connections"
        or diag 'accepted: ' . ($peer->accepted - $before);
}

# ---- a pooled connection to a backend that went away and came back
$r = get_at($s->port, '/echo?before=restart');
is $r->{status}, 200, 'request before the restart (connection pooled)';
$go->stop;
$go = Test::Portico::Peers->go_app($s, name => 'goapp2', port => $go_port);
# the readiness probe's connection, once the app has counted it
wait_for(5, sub { $go->accepted >= 1 });
my $probes = $go->accepted;
$r = get_at($s->port, '/echo?after=restart');
is $r->{status}, 200, 'after the app restarted, the dead pooled connection is not used';
is lines_of($r)->{QUERY}, 'after=restart', 'the new app answered';
is $go->accepted - $probes, 1, 'one connection to the new app';

is_deeply [ $s->worker_pids ], \@workers, 'same worker after every request';
unlike $s->error_log, qr/\[(alert|emerg)\]|signal \d+/, 'no alert or crash in the error log';
$s->stop;
done_testing;
