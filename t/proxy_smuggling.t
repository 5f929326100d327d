#!/usr/bin/perl
# Response-side desync attempts from a scripted upstream (double
# Content-Length, CL + TE, invalid status lines and fields, bad chunks,
# bytes after the body, 1xx floods): each ends in 502 (or, once the head is
# out, a cut connection), a log line, and a connection that is never
# pooled; the upstream never sees more requests than the client sent, and
# pipelined client requests get their own responses, in order.
use strict;
use warnings;
use Test::More;
use IO::Select;
use Test::Portico qw(parse_response need_bin free_port wait_for);
use Test::Portico::Peers;

need_bin();
my $s = Test::Portico->new;
my $log = $s->dir . '/up.log';

my %answer = (
    '/dupcl'     => "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    '/clte'      => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    '/badstatus' => "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    '/nocolon'   => "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\nok",
    '/spacecolon'=> "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    '/negcl'     => "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
    '/garbage'   => "\x00\x01garbage\r\n\r\n",
    '/flood'     => ("HTTP/1.1 100 Continue\r\n\r\n" x 20) . "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    '/badchunk'  => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    '/extra'     => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
    '/chunkextra'=> "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
);
my $up = Test::Portico::Peers->perl_peer(code => sub {
    my $srv = shift;
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $srv->accept) {
        my $pid = fork // next;
        if ($pid) { close $c; next }
        alarm 30;
        my $buf = '';
        while (1) {
            while ($buf !~ /\r\n\r\n/) { my $n = sysread($c, my $b, 65536); exit 0 unless $n; $buf .= $b }
            my $end = index($buf, "\r\n\r\n");
            my $head = substr($buf, 0, $end + 4, '');
            my ($cl) = $head =~ /\r\nContent-Length: (\d+)/i;
            while (length $buf < ($cl // 0)) { my $n = sysread($c, my $b, 65536); exit 0 unless $n; $buf .= $b }
            substr($buf, 0, $cl // 0, '');
            my ($target) = $head =~ /^\S+ (\S+)/;
            if (open my $fh, '>>', $log) { print {$fh} "REQ $target\n"; close $fh }
            my $out = $answer{$target} // do { my $b = "fine $target"; "HTTP/1.1 200 OK\r\nContent-Length: " . length($b) . "\r\n\r\n$b" };
            syswrite($c, $out);
        }
    }
});
my $U = $up->addr;
$s->conf(<<"CONF");
    upstream up { server $U; keepalive 8; }
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { proxy_pass http://up; proxy_read_timeout 5s; }
    }
CONF
$s->start;

sub upcount { my $t = $s->read_file('up.log') // ''; my @l = $t =~ /^REQ /mg; scalar @l }
my $sent = 0;
sub one {
    my $path = shift;
    $sent++;
    my @r = parse_response($s->http("GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", timeout => 10));
    return @r;
}

for my $p (qw(/dupcl /clte /badstatus /nocolon /spacecolon /negcl /garbage /flood)) {
    my @r = one($p);
    is scalar(@r), 1, "$p: one response";
    is $r[0]{status}, 502, "$p: 502";
    my $fine = (one("/fine$p"))[0];
    is $fine->{body}, "fine /fine$p", "$p: the next request gets its own answer (connection not reused)";
}
my @r = one('/badchunk');
{
    # core: a cut chunked response still gets its terminator (finish_response)
    ok !(@r && $r[0]{status} == 200), '/badchunk: never a complete 200';
}
like $s->error_log, qr/invalid chunked/, '/badchunk: logged';
for my $p (qw(/extra /chunkextra)) {
    @r = one($p);
    is $r[0]{body}, 'ok', "$p: the complete response passes";
    is scalar(@r), 1, "$p: the extra bytes never become a response";
    for (1 .. 3) {
        my $n = (one("/after$p/$_"))[0];
        is $n->{body}, "fine /after$p/$_", "$p: request $_ after it gets its own answer";
    }
}
like $s->error_log, qr/more data than specified/, 'extra bytes logged';
like $s->error_log, qr/too many informational/, '1xx flood logged';
like $s->error_log, qr/upstream sent invalid response/, 'invalid heads logged';

# pipelined requests on one client connection: answers in order
my @paths = map { "/pipe/$_" } 1 .. 5;
my $raw = join '', map { "GET $_ HTTP/1.1\r\nHost: localhost\r\n\r\n" } @paths;
$raw .= "GET /pipe/last HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
push @paths, '/pipe/last';
$sent += @paths;
@r = parse_response($s->http($raw, timeout => 10));
is_deeply [ map { $_->{body} } @r ], [ map { "fine $_" } @paths ], 'pipelined: each request gets its own response, in order';

# a pipelined request behind a refused answer is still its own
$raw = "GET /dupcl HTTP/1.1\r\nHost: localhost\r\n\r\nGET /pipe/next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
$sent += 2;
@r = parse_response($s->http($raw, timeout => 10));
is $r[0]{status}, 502, 'pipelined after a bad upstream answer: 502 first';
ok !defined $r[1] || $r[1]{body} eq 'fine /pipe/next', '... and never a smuggled response next';

ok wait_for(2, sub { upcount() <= $sent }), 'the upstream saw no more requests than the client sent (' . upcount() . " <= $sent)";
unlike $s->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts';
$s->stop;
$up->stop;
done_testing;
