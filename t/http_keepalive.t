#!/usr/bin/perl
# Persistent connections and the limits around them: reuse, pipelining,
# keepalive_requests, keepalive_timeout, client_header_timeout (slow client),
# client_max_body_size (413), Expect: 100-continue, request bodies (length
# and chunked) on locations that do not read them.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::Portico qw(parse_response need_bin);

need_bin();

my $s = Test::Portico->new;
$s->write_file('html/file.txt', "static file\n");
$s->conf(<<'CONF');
    default_type text/plain;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        root %%ROOT%%/html;
        client_max_body_size 100;
        location = /id { return 200 "conn=$connection n=$connection_requests uri=$uri"; }
        location /r/ { return 200 "$uri"; }
    }
    server {
        listen 127.0.0.1:%%PORT2%%;
        server_name localhost;
        keepalive_requests 2;
        location / { return 200 "$connection_requests"; }
    }
    server {
        listen 127.0.0.1:%%PORT3%%;
        server_name localhost;
        keepalive_timeout 1s;
        client_header_timeout 1s;
        location / { return 200 "short"; }
    }
CONF
$s->start;

# A raw client: write, read what comes within a bounded time, see EOF.
sub client {
    my ($port) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    binmode $c;
    return { sock => $c, in => '', closed => 0 };
}
sub send_raw {
    my ($c, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    syswrite($c->{sock}, $data);
}
# reads until $cond->($in) is true, EOF, or $timeout seconds
sub read_until {
    my ($c, $cond, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    my $sel = IO::Select->new($c->{sock});
    until ($cond->($c->{in}) || $c->{closed} || time >= $deadline) {
        next unless $sel->can_read(0.05);
        my $n = sysread($c->{sock}, my $buf, 65536);
        if (!$n) { $c->{closed} = 1; last }
        $c->{in} .= $buf;
    }
    return $c->{in};
}
sub responses { my @r = parse_response($_[0], incomplete_ok => 1); scalar @r }
sub req { my ($path, $extra) = @_; "GET $path HTTP/1.1\r\nHost: localhost\r\n" . ($extra // '') . "\r\n" }

# ---- reuse
{
    my $c = client($s->port);
    send_raw($c, req('/id'));
    read_until($c, sub { responses($_[0]) >= 1 });
    send_raw($c, req('/id'));
    read_until($c, sub { responses($_[0]) >= 2 });
    my @r = parse_response($c->{in});
    is scalar @r, 2, 'keep-alive: two responses on one connection';
    my ($c1) = ($r[0]{body} // '') =~ /conn=(\d+) n=1/;
    my ($c2) = ($r[1]{body} // '') =~ /conn=(\d+) n=2/;
    ok defined $c1 && defined $c2 && $c1 == $c2, 'same $connection, $connection_requests 1 then 2'
        or diag explain [map { $_->{body} } @r];
    is $r[0]{headers}{connection}, 'keep-alive', 'Connection: keep-alive';
    ok !$c->{closed}, 'connection still open';
}

# ---- HTTP/1.0 keep-alive only on request
{
    my $raw = $s->http("GET /id HTTP/1.0\r\nHost: localhost\r\n\r\n");
    my ($r) = parse_response($raw);
    is $r->{headers}{connection}, 'close', 'HTTP/1.0 without keep-alive: close';
    my $c = client($s->port);
    send_raw($c, "GET /id HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n" x 2);
    read_until($c, sub { responses($_[0]) >= 2 });
    my @r = parse_response($c->{in});
    is scalar @r, 2, 'HTTP/1.0 with Connection: keep-alive is kept';
}

# ---- pipelining: three requests in one write, answers in order
{
    my $c = client($s->port);
    send_raw($c, req('/r/one') . req('/r/two') . req('/r/three'));
    read_until($c, sub { responses($_[0]) >= 3 });
    my @r = parse_response($c->{in});
    is_deeply [map { $_->{body} } @r], ['/r/one', '/r/two', '/r/three'], 'pipelined responses in order';
    # a static file, a 404 and a redirect pipelined
    $c = client($s->port);
    send_raw($c, req('/file.txt') . req('/missing') . req('/r/x', "Connection: close\r\n") . req('/r/never'));
    read_until($c, sub { 0 });
    @r = parse_response($c->{in});
    is_deeply [map { $_->{status} } @r], [200, 404, 200], 'mixed pipeline; nothing after Connection: close';
    ok $c->{closed}, 'closed after Connection: close';
}

# ---- keepalive_requests
{
    my $c = client($s->port2);
    send_raw($c, req('/') . req('/') . req('/'));
    read_until($c, sub { 0 });
    my @r = parse_response($c->{in});
    is scalar @r, 2, 'keepalive_requests 2: two answered';
    is $r[1]{headers}{connection}, 'close', 'the last allowed response says close';
    ok $c->{closed}, 'then the connection is closed';
}

# ---- keepalive_timeout closes an idle connection
{
    my $c = client($s->port3);
    send_raw($c, req('/'));
    read_until($c, sub { responses($_[0]) >= 1 });
    is responses($c->{in}), 1, 'answered on the short-timeout server';
    read_until($c, sub { 0 }, 5);
    ok $c->{closed}, 'idle keep-alive connection closed by keepalive_timeout';
}

# ---- keepalive_timeout runs from the last response: the timer left set for
# the first request's deadline is not taken for the second's (http_connection
# re-arms it lazily), nor does the second request's head cancel it for good
{
    my $c = client($s->port3);
    send_raw($c, req('/'));
    read_until($c, sub { responses($_[0]) >= 1 });
    sleep 0.7;
    send_raw($c, req('/'));
    read_until($c, sub { responses($_[0]) >= 2 });
    is responses($c->{in}), 2, 'second request after 0.7 s idle answered';
    read_until($c, sub { 0 }, 0.6); # 1.3 s after the first response
    ok !$c->{closed}, 'still open 0.6 s after the second response (keepalive_timeout 1s)';
    my $t0 = time;
    read_until($c, sub { 0 }, 5);
    ok $c->{closed}, '... closed by keepalive_timeout after it';
    cmp_ok time - $t0, '<', 1.5, '... within the timeout of the second response';
    # a partial head after an idle wait gets client_header_timeout from its first byte
    $c = client($s->port3);
    send_raw($c, req('/'));
    read_until($c, sub { responses($_[0]) >= 1 });
    sleep 0.6;
    send_raw($c, "GET / HTTP/1.1\r\n");
    read_until($c, sub { 0 }, 0.7); # 1.3 s after the response, 0.7 s after the first byte
    ok !$c->{closed}, 'partial head: not closed by the keep-alive deadline it replaced';
    read_until($c, sub { 0 }, 5);
    ok $c->{closed}, '... closed by client_header_timeout';
}

# ---- client_header_timeout closes a slow client
{
    my $c = client($s->port3);
    send_raw($c, "GET / HTTP/1.1\r\nHost: local");
    read_until($c, sub { 0 }, 5);
    ok $c->{closed}, 'incomplete head: closed by client_header_timeout';
    is $c->{in}, '', 'no response to a timed-out head (as nginx)';
    ok Test::Portico::wait_for(3, sub { $s->error_log =~ /client timed out/ }), 'timeout logged';
    # a connection that sends nothing at all is closed too
    $c = client($s->port3);
    read_until($c, sub { 0 }, 5);
    ok $c->{closed}, 'silent connection closed';
}

# ---- client_max_body_size
{
    my $c = client($s->port);
    send_raw($c, "POST /r/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 101\r\n\r\n" . ('x' x 101) . req('/r/after'));
    read_until($c, sub { 0 });
    my @r = parse_response($c->{in});
    is $r[0]{status}, 413, 'Content-Length over client_max_body_size: 413';
    is scalar @r, 1, '... and nothing after it answered';
    ok $c->{closed}, '... connection closed';
    like $s->error_log, qr/client intended to send too large body: 101 bytes/, '... logged';

    $c = client($s->port);
    send_raw($c, "POST /r/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "40\r\n" . ('y' x 64) . "\r\n40\r\n" . ('y' x 64) . "\r\n0\r\n\r\n");
    read_until($c, sub { 0 });
    @r = parse_response($c->{in});
    is $r[0] && $r[0]{status}, 413, 'chunked body over client_max_body_size: 413';

    $c = client($s->port);
    send_raw($c, "POST /r/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n" . ('x' x 100));
    read_until($c, sub { responses($_[0]) >= 1 });
    @r = parse_response($c->{in});
    is $r[0]{status}, 200, 'body of exactly client_max_body_size: accepted';
}

# ---- Expect: 100-continue
{
    my $c = client($s->port);
    send_raw($c, "POST /r/cont HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    read_until($c, sub { $_[0] =~ /\r\n\r\n/ });
    like $c->{in}, qr{^HTTP/1\.1 100 Continue\r\n\r\n\z}, '100 Continue before the body';
    send_raw($c, "hello");
    read_until($c, sub { responses($_[0]) >= 2 });
    my @r = parse_response($c->{in});
    is_deeply [map { $_->{status} } @r], [100, 200], 'then the final response';
    is $r[1]{body}, '/r/cont', '... of the right request';

    $c = client($s->port);
    send_raw($c, "POST /r/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    read_until($c, sub { responses($_[0]) >= 1 });
    @r = parse_response($c->{in}, incomplete_ok => 1);
    is $r[0] && $r[0]{status}, 413, 'Expect with a too large body: 413, no 100';

    my ($r) = parse_response($s->http("POST /r/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nExpect: something\r\n\r\nx"));
    is $r->{status}, 417, 'unknown expectation: 417';
}

# ---- bodies on locations that do not read them are consumed, not parsed as requests
{
    my $c = client($s->port);
    send_raw($c, "GET /file.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "5\r\nGET /\r\n3;ext=1\r\nabc\r\n0\r\n\r\n" . req('/r/next'));
    read_until($c, sub { responses($_[0]) >= 2 });
    my @r = parse_response($c->{in});
    is_deeply [map { "$_->{status} $_->{body}" } @r], ["200 static file\n", '200 /r/next'],
        'chunked body on a static location: consumed, next request answered';

    $c = client($s->port);
    send_raw($c, "GET /file.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20\r\n\r\n"
        . "GET /r/smuggled HTTP" . req('/r/next'));
    read_until($c, sub { responses($_[0]) >= 2 });
    @r = parse_response($c->{in});
    is_deeply [map { "$_->{status} $_->{body}" } @r], ["200 static file\n", '200 /r/next'],
        'Content-Length body on a static location: consumed, never read as a request';

    $c = client($s->port);
    send_raw($c, "POST /r/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    sleep 0.2;
    send_raw($c, "lo\r\n0\r\n\r\n");
    read_until($c, sub { responses($_[0]) >= 1 });
    @r = parse_response($c->{in});
    is $r[0] && $r[0]{status}, 200, 'chunked body split across writes';
}

# ---- an idle keep-alive connection woken by a head in pieces, a head with
# its body behind it, and two pipelined heads: the first request after a
# pause is read with one recv and parsed where it lies when whole; the rest
# goes through the connection's buffer. Both idle states are exercised:
# just after a response, and parked (given back its buffers) after a pause.
for my $pause (0, 0.2) {
    my $c = client($s->port);
    send_raw($c, req('/r/first'));
    read_until($c, sub { responses($_[0]) >= 1 });
    sleep $pause;
    send_raw($c, "GET /r/split HTTP/1.1\r\nHo");
    sleep 0.05;
    send_raw($c, "st: localhost\r\n\r\n");
    read_until($c, sub { responses($_[0]) >= 2 });
    sleep $pause;
    send_raw($c, "POST /r/body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello" . req('/r/after'));
    read_until($c, sub { responses($_[0]) >= 4 });
    sleep $pause;
    send_raw($c, req('/r/p1') . req('/r/p2'));
    read_until($c, sub { responses($_[0]) >= 6 });
    my @r = parse_response($c->{in}, incomplete_ok => 1);
    is_deeply [map { "$_->{status} $_->{body}" } @r],
        ['200 /r/first', '200 /r/split', '200 /r/body', '200 /r/after', '200 /r/p1', '200 /r/p2'],
        "woken after ${pause}s idle: split head, head with body, pipelined heads answered in order";
    ok !$c->{closed}, "... connection kept (${pause}s)";
}

$s->stop;
done_testing;
