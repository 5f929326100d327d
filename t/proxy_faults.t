#!/usr/bin/perl
# Upstream faults: refused, reset, silent (504 after proxy_read_timeout),
# garbage, death in the middle of a body. Each gives 502/504 (or a cut
# client connection once the head is out), one log line with the reason,
# no crash, and the keep-alive pool keeps serving good requests afterwards.
use strict;
use warnings;
use Test::More;
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::Portico qw(parse_response need_bin free_port wait_for);
use Test::Portico::Peers;

need_bin();
my $s = Test::Portico->new;
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
            my ($target) = $head =~ /^\S+ (\S+)/;
            if ($target eq '/reset') { setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)); close $c; exit 0 }
            if ($target eq '/close') { close $c; exit 0 }
            if ($target eq '/slow') { sleep 5; exit 0 }
            if ($target eq '/garbage') { syswrite($c, "SSH-2.0-OpenSSH_9.0\r\n\r\n"); exit 0 }
            if ($target eq '/midbody') { syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"); sleep 0.2; exit 0 }
            if ($target eq '/midchunk') { syswrite($c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n0123456789"); sleep 0.2; exit 0 }
            my $b = "good $target";
            syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: " . length($b) . "\r\n\r\n$b");
        }
    }
});
my $U = $up->addr;
my $dead = free_port($s->port, $up->port);
$s->conf(<<"CONF");
    upstream up { server $U max_fails=0; keepalive 4; }
    upstream dead { server 127.0.0.1:$dead; }
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { proxy_pass http://up; proxy_read_timeout 1s; }
        location /refused { proxy_pass http://dead; }
    }
CONF
$s->start;

sub one {
    my @r = parse_response($s->http("GET $_[0] HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", timeout => 10));
    return $r[0] // { status => 0, body => '', headers => {} };
}
sub good { my $p = "/ok$_[0]"; is one($p)->{body}, "good $p", "after $_[0]: the next request is served" }

is one('/refused')->{status}, 502, 'refused: 502';
like $s->error_log, qr/connect\(\) failed \(111/, 'refused: logged';
# warm the pool first so the faults below meet pooled connections too
good('/warm') for 1 .. 2;
for my $case ([ '/reset', 502, qr/upstream (reset the connection|prematurely closed)/ ],
              [ '/close', 502, qr/prematurely closed connection while reading response header/ ],
              [ '/slow', 504, qr/upstream timed out \(110: Connection timed out\) while reading response header/ ],
              [ '/garbage', 502, qr/upstream sent invalid response/ ]) {
    my ($p, $st, $re) = @$case;
    is one($p)->{status}, $st, "$p: $st";
    like $s->error_log, $re, "$p: logged";
    good($p);
}
for my $p ('/midbody', '/midchunk') {
    my $raw = $s->http("GET $p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", timeout => 10);
    my @r = parse_response($raw);
    {
        # core: finalize_request() cuts a response whose head went out, but
        # finish_response() still writes the chunked terminator ("0\r\n\r\n")
        ok !@r, "$p: never a complete response (no chunked terminator, no full length)";
    }
    like $raw, qr/^HTTP\/1.1 200/, "$p: the head had gone out (the connection is cut)";
    good($p);
}
like $s->error_log, qr/prematurely closed connection while reading upstream/, 'death mid-body logged';
# many good requests over the pool after all of it
my $ok = 0;
for (1 .. 20) { $ok++ if one("/final/$_")->{body} eq "good /final/$_" }
is $ok, 20, 'the pool is not poisoned';
ok $s->running && kill(0, $s->master_pid), 'server alive';
is scalar(@{ $s->wait_workers(1) || [] }), 1, 'worker alive';
unlike $s->error_log, qr/\[(alert|crit|emerg)\]|signal \d+/, 'no crash';
$s->stop;
$up->stop;
done_testing;
